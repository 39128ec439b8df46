"""Which true edges the gnn's first two stages keep, by the production radius of their particle: the share of
the true graph's edges that the module map's graph holds and that the edge filter then keeps, on events
simulated from real TrackML particle lists (displaced secondaries) and on generated ttbar events.

    python benchmarks/gnn_coverage.py [--lists 1001,1003] [--seed 1] [--models A.pt B.pt] [--tag NAME]

Each list's particles are simulated on the TrackML detector with ``--seed`` (made once into /tmp/deepreco-bench).
``--models``: the gnn model files to compare (default: the shipped one). The radius is that of the particle's
production vertex in the transverse plane (mm). Results go to ``benchmarks/results/gnn_coverage[_TAG].txt``
and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path("/tmp/deepreco-bench")
TRACKML = Path("/work/shared/data/trackml/train")
BINS = [0.0, 1.0, 30.0, 100.0, 300.0, 1e9]
LABELS = ["< 1", "1-30", "30-100", "100-300", "> 300"]


def event_of(list_id: int, seed: int):
    from deepreco.io import Dataset
    from deepreco.simulate.dataset import simulate_dataset

    out = DATA / f"gnn-coverage-{list_id}-seed{seed}"
    if not (out.is_dir() and len(Dataset(out)) == 1):
        simulate_dataset("trackml", 1, out, seed=seed, format="parquet", overwrite=True,
                         particles=str(TRACKML / f"event00000{list_id}-particles.csv.gz"))
    ds = Dataset(out, parts=("hits", "cells", "particles", "truth"))
    return ds.read(ds.names[0])


def coverage(model, event) -> dict:
    from deepreco.reconstruct.gnn.train import _edge_scores, _labelled_graph
    from deepreco.reconstruct.gnn.truth import true_edges

    g = _labelled_graph(model.module_map, event)
    truth = true_edges(event)
    n = event.n_hits
    pid = event.truth.set_index("hit_id").reindex(event.hits["hit_id"])["particle_id"].to_numpy(np.int64)
    vtx = event.particles.set_index("particle_id")[["vx", "vy"]]
    r = np.hypot(*vtx.reindex(pid[truth[0]]).to_numpy(np.float64).T)
    scores = _edge_scores(model.filter, g, g["edges"])
    keys = g["edges"][0].astype(np.int64) * n + g["edges"][1]
    key_true = truth[0] * n + truth[1]
    in_map = np.isin(key_true, keys)
    in_filter = np.isin(key_true, keys[scores > model.filter_threshold])
    rows = {}
    for label, lo, hi in zip(["all", *LABELS], [0.0, *BINS[:-1]], [1e9, *BINS[1:]], strict=True):
        sel = (r >= lo) & (r < hi)
        rows[label] = {"true_edges": int(sel.sum()), "map": float(in_map[sel].mean()) if sel.any() else None,
                       "filter": float(in_filter[sel].mean()) if sel.any() else None}
    return {"n_hits": int(n), "graph_edges": int(g["edges"].shape[1]),
            "filter_edges": int((scores > model.filter_threshold).sum()), "by_radius": rows}


def main() -> None:
    from deepreco.reconstruct.gnn.model import GNNModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", default="1001,1003")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=[None], help="gnn model files (default: the shipped one)")
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()} {platform.system()}", "seed": args.seed, "events": {}}
    lines = [f"gnn: share of the true edges kept by the module map and then the filter, by production radius "
             f"(mm) of the particle; lists simulated with seed {args.seed}", ""]
    for list_id in [int(x) for x in args.lists.split(",")]:
        event = event_of(list_id, args.seed)
        for path in args.models:
            model = GNNModel.load(path)
            name = path or "shipped"
            res = coverage(model, event)
            results["events"][f"{list_id} {name}"] = res
            lines.append(f"list {list_id} ({res['n_hits']:,} hits), model {name}: map graph {res['graph_edges']:,} "
                         f"edges, after the filter {res['filter_edges']:,}")
            lines.append(f"  {'radius (mm)':>12} {'true edges':>10} {'map':>7} {'filter':>7}")
            for label, row in res["by_radius"].items():
                if row["map"] is None:
                    continue
                lines.append(f"  {label:>12} {row['true_edges']:>10,} {row['map']:>7.3f} {row['filter']:>7.3f}")
            print("\n".join(lines[-2 - len(res["by_radius"]):]), flush=True)
    stem = "gnn_coverage" + (f"_{args.tag}" if args.tag else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
