"""The graph pipeline (`gnn`) stage by stage on the tracking benchmark's events.

    python benchmarks/gnn_stages.py [--events 3] [--seed 1000] [--model FILE] [--embedding FILE]
    python benchmarks/gnn_stages.py --lists 1001 1003     # events simulated from real lists (seed 1)

Per event and on average: the module-map graph (efficiency = share of the true graph's edges it holds, size in
edges, seconds), the graph after the edge filter (same figures), the interaction network's edge efficiency and
purity at the model's threshold, the same on the HEP.TrkX setting (the graph between the hits of particles with
pT > 1 GeV in the barrel volumes 8, 13, 17, as HEP.TrkX built theirs, with the scores of the full event), and the
seconds of each stage; and where the TrackML score goes: the score of the tracks the model's own track building
makes from the network's scores, from the same scores without the network's false edges or with all true edges
kept, from the truth as scores on the filtered graph, on the module-map graph, and on the true graph itself
(the ceilings that graph construction, filter and track building leave). With ``--embedding`` (a model of
`deepreco.reconstruct.gnn.metric`) the metric-learning graph is measured too, at the radius stored with it.
Results go to ``benchmarks/results/gnn_stages.txt``/``.json`` (``--lists``: ``gnn_stages_lists.*``). The events
are those of ``benchmarks/tracking.py`` (simulated there when missing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _fraction(a, b) -> float:
    return float(a) / float(b) if b else 0.0


def _track_score(event, edges, scores, threshold: float, reserve) -> float:
    """TrackML score of the gnn method's track building from ``edges`` with these ``scores`` (and the edges
    that may join broken tracks, ``reserve``)."""
    import numpy as np
    import pandas as pd

    from deepreco.metrics import evaluate
    from deepreco.reconstruct.gnn import build_tracks
    from deepreco.reconstruct.gnn.truth import layer_key

    labels = build_tracks(event.n_hits, edges, np.asarray(scores, np.float64), threshold,
                          layer=layer_key(event.hits), xyz=event.hits[["x", "y", "z"]].to_numpy(np.float64),
                          reserve=reserve)
    rows = np.flatnonzero(labels >= 0)
    sub = pd.DataFrame({"hit_id": event.hits["hit_id"].to_numpy()[rows], "track_id": labels[rows]})
    return float(evaluate(event.truth, event.particles, sub)["score"])


def main() -> None:
    import numpy as np
    import torch

    from deepreco.io import Dataset
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.gnn import true_edges
    from deepreco.simulate.dataset import simulate_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--model", default=None, help="gnn model file (default: the shipped one)")
    parser.add_argument("--embedding", default=None, help="metric-learning model file to measure as well")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lists", type=int, nargs="+", default=None,
                        help="real development particle lists (1000-1009) instead of generated events")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.lists:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from real_lists import real_list_folder

        data = real_list_folder(args.lists, Path("/tmp/deepreco-bench/lists-seed1-" + "_".join(map(str, args.lists))))
    else:
        data = Path(f"/tmp/deepreco-bench/ttbar-mu200-seed{args.seed}-n{args.events}")
        if not data.is_dir() or not any(data.iterdir()):
            simulate_dataset("ttbar", args.events, data, seed=args.seed, format="parquet", workers=2, pileup=200)
    method = get_method("gnn", model=args.model)
    from deepreco.reconstruct.gnn.method import cached_model

    model = cached_model(args.model)
    embedding = None
    if args.embedding:
        from deepreco.reconstruct.gnn.metric import load_embedding, radius_graph

        embedding, emb_info = load_embedding(args.embedding)
    rows = []
    for event in Dataset(data, parts=("hits", "cells", "particles", "truth")):
        n = event.n_hits
        truth = true_edges(event)
        tkey = truth[0] * n + truth[1]
        out = method.score_graph(event, keep_graph=True)
        row = {"event_id": event.event_id, "n_hits": n, "true_edges": truth.shape[1]}
        for stage, edges in (("graph", out["graph"]), ("filter", out["edges"])):
            row[f"{stage}_edges"] = edges.shape[1]
            row[f"{stage}_efficiency"] = _fraction(np.isin(tkey, edges[0] * n + edges[1]).sum(), len(tkey))
        y = np.isin(out["edges"][0] * n + out["edges"][1], tkey)
        passed = out["scores"] > model.edge_threshold
        row["edge_efficiency"] = _fraction((passed & y).sum(), y.sum())
        row["edge_purity"] = _fraction((passed & y).sum(), passed.sum())
        row["pipeline_edge_efficiency"] = _fraction((passed & y).sum(), len(tkey))
        # HEP.TrkX setting: hits of particles with pT > 1 GeV in the barrel, their graph only
        hit_pid = event.truth.set_index("hit_id").reindex(event.hits["hit_id"])["particle_id"].to_numpy()
        p = event.particles.set_index("particle_id")
        pt = np.hypot(p["px"], p["py"]).reindex(hit_pid).fillna(0.0).to_numpy()
        barrel = np.isin(event.hits["volume_id"].to_numpy(), (8, 13, 17))
        sel = (pt > 1.0) & barrel
        e = out["edges"]
        in_set = sel[e[0]] & sel[e[1]]
        t_in = sel[truth[0]] & sel[truth[1]]
        row["hep_trkx_edge_efficiency"] = _fraction((passed & y & in_set).sum(), (y & in_set).sum())
        row["hep_trkx_edge_purity"] = _fraction((passed & y & in_set).sum(), (passed & in_set).sum())
        row["hep_trkx_pipeline_efficiency"] = _fraction((passed & y & in_set).sum(), t_in.sum())
        # where the score goes: the same track building from other edge scores
        g, th, r = out["graph"], model.edge_threshold, out["reserve"]
        row["score_network"] = _track_score(event, e, out["scores"], th, r)
        row["score_without_false_edges"] = _track_score(event, e, np.where(y, out["scores"], 0.0), th, r)
        row["score_with_all_true_edges"] = _track_score(event, e, np.where(y, 1.0, out["scores"]), th, r)
        row["score_truth_on_filtered_graph"] = _track_score(event, e, y.astype(float), 0.5, r)
        row["score_truth_on_module_map_graph"] = _track_score(event, g, np.isin(g[0] * n + g[1], tkey), 0.5, r)
        row["score_truth_on_true_graph"] = _track_score(event, truth, np.ones(truth.shape[1]), 0.5, r)
        for key in ("seconds_graph", "seconds_filter", "seconds_gnn"):
            row[key] = out[key]
        start = time.perf_counter()
        method.reconstruct(event)
        row["seconds_total"] = time.perf_counter() - start
        if embedding is not None:
            start = time.perf_counter()
            g = radius_graph(event, embedding, emb_info["radius"], emb_info["k_max"])
            row["metric_seconds"] = time.perf_counter() - start
            row["metric_edges"] = g.shape[1]
            row["metric_efficiency"] = _fraction(np.isin(tkey, g[0] * n + g[1]).sum(), len(tkey))
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "event_id"}
    mean["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {args.threads} torch thread(s); "
             f"python {platform.python_version()}",
             (f"events: {len(rows)} simulated from the real lists {args.lists} (seed 1)" if args.lists else
              f"events: {len(rows)} simulated ttbar + mu = 200 (seed {args.seed})")
             + f"; model: {args.model or 'shipped'}",
             "", f"{'stage':34s} {'efficiency':>10s} {'purity':>8s} {'edges':>11s} {'seconds':>8s}",
             f"{'true graph':34s} {1.0:10.4f} {'':>8s} {mean['true_edges']:11,.0f}",
             f"{'module map':34s} {mean['graph_efficiency']:10.4f} {'':>8s} {mean['graph_edges']:11,.0f} "
             f"{mean['seconds_graph']:8.2f}",
             f"{'edge filter':34s} {mean['filter_efficiency']:10.4f} {'':>8s} {mean['filter_edges']:11,.0f} "
             f"{mean['seconds_filter']:8.2f}",
             f"{'interaction network (its graph)':34s} {mean['edge_efficiency']:10.4f} {mean['edge_purity']:8.4f} "
             f"{'':>11s} {mean['seconds_gnn']:8.2f}",
             f"{'  whole pipeline, of true edges':34s} {mean['pipeline_edge_efficiency']:10.4f}",
             f"{'  HEP.TrkX setting (barrel, pT>1)':34s} {mean['hep_trkx_edge_efficiency']:10.4f} "
             f"{mean['hep_trkx_edge_purity']:8.4f}",
             f"{'  HEP.TrkX setting, of true edges':34s} {mean['hep_trkx_pipeline_efficiency']:10.4f}",
             f"{'reconstruct (all stages + tracks)':34s} {'':>10s} {'':>8s} {'':>11s} {mean['seconds_total']:8.2f}"]
    if embedding is not None:
        lines.append(f"{'metric learning (radius graph)':34s} {mean['metric_efficiency']:10.4f} {'':>8s} "
                     f"{mean['metric_edges']:11,.0f} {mean['metric_seconds']:8.2f}")
    lines.append(f"peak memory {mean['peak_memory_mb']:.0f} MB")
    lines += ["", "TrackML score of the track building (edge threshold "
              f"{model.edge_threshold:g}) from these edge scores:"]
    for key, text in (("score_network", "the network's"),
                      ("score_without_false_edges", "the network's, its false edges set to 0"),
                      ("score_with_all_true_edges", "the network's, the true edges set to 1"),
                      ("score_truth_on_filtered_graph", "the truth, on the filtered graph"),
                      ("score_truth_on_module_map_graph", "the truth, on the module-map graph"),
                      ("score_truth_on_true_graph", "the truth, on the true graph")):
        lines.append(f"  {text:44s} {mean[key]:.4f}")
    RESULTS.mkdir(exist_ok=True)
    name = "gnn_stages_lists" if args.lists else "gnn_stages"
    (RESULTS / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps({"mean": mean, "events": rows}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
