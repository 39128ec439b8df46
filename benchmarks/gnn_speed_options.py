"""What `gnn`'s time could be cut by without retraining, and what each cut costs (issue 20, item 4): the filter's
threshold (fewer edges for the interaction network), fewer message-passing rounds of the network at inference, and
what a narrower network would save.

    python benchmarks/gnn_speed_options.py [--lists 1001 1003] [--widths 32 24 16]

Lists simulated with seed 1 (`real_lists.py`, made when missing), one thread. The threshold rows run the whole
method (seconds of the event, of its network, the edges after the filter, the TrackML score); the rounds rows run
the graph's own tracks (``kalman=False, later_passes=False``) with the shipped network's ``n_iterations`` lowered
(it was trained with 6, its weights shared across rounds), then the whole method with 5 and 4 rounds (the Kalman
filter and the later passes after them). The width rows time untrained interaction networks of ``--widths`` hidden
units (6 rounds, random weights of a fixed seed, the best of two runs) on the event's filtered graph, as the method
runs its network (chunks of 4,096 edges): what a network trained at that width would take, with no score (none was
trained). Writes ``benchmarks/results/gnn_speed_options.txt``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from real_lists import real_list_event

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path("/tmp/deepreco-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001, 1003])
    parser.add_argument("--widths", type=int, nargs="*", default=[32, 24, 16])
    args = parser.parse_args()
    if any(w < 1 for w in args.widths):
        parser.error("--widths must be positive")
    import torch

    from deepreco.io import Dataset
    from deepreco.metrics import score_event
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.gnn.features import edge_features, node_features
    from deepreco.reconstruct.gnn.method import cached_model
    from deepreco.reconstruct.gnn.model import InteractionNetwork
    from deepreco.reconstruct.gnn.module_map import hit_coordinates

    torch.set_num_threads(1)
    lines = [f"# python benchmarks/gnn_speed_options.py --lists {' '.join(map(str, args.lists))} --widths "
             + " ".join(map(str, args.widths)),
             "# one thread; load before: " + " ".join(f"{x:.1f}" for x in os.getloadavg()), "",
             "list  setting                       s / event  s network  edges after filter  TrackML score"]
    network = cached_model(None).gnn
    for number in args.lists:
        hits = real_list_event(number, DATA / f"list{number}-seed1")
        ds = Dataset(hits.parent)
        event = ds.read(ds.names[0])
        get_method("gnn").reconstruct(event)  # compiled kernels loaded
        runs = [(f"filter_threshold {t}", {"filter_threshold": t}, 6) for t in (None, 0.3, 0.4, 0.5, 0.6)]
        runs += [(f"graph alone, {k} rounds", {"kalman": False, "later_passes": False}, k) for k in (6, 5, 4)]
        runs += [(f"whole method, {k} rounds", {}, k) for k in (5, 4)]
        for name, params, rounds in runs:
            network.n_iterations = rounds
            method = get_method("gnn", **params)
            t0 = time.perf_counter()
            found = method.reconstruct(event)
            seconds = time.perf_counter() - t0
            run = method.last_run
            lines.append(f"{number}  {name:28s}  {seconds:9.2f}  {run['seconds_gnn']:9.2f}  "
                         f"{run['filtered_edges']:18,d}  {score_event(event.truth, found):.4f}")
            print(lines[-1], flush=True)
        network.n_iterations = 6
        if args.widths:  # the network alone, untrained, at other widths: its time on this event's filtered graph
            graph = get_method("gnn").score_graph(event)
            x = node_features(event)
            coords = hit_coordinates(event.hits[["x", "y", "z"]].to_numpy(np.float64))
            tensors = [torch.from_numpy(a) for a in (x, edge_features(coords, x, graph["edges"]), graph["edges"])]
            for width in args.widths:
                torch.manual_seed(0)
                net = InteractionNetwork(width, 6).eval()
                times = []
                for _ in range(2):
                    with torch.no_grad():
                        t0 = time.perf_counter()
                        net(*tensors, chunk=4096)
                        times.append(time.perf_counter() - t0)
                size = sum(p.numel() for p in net.parameters())
                lines.append(f"{number}  {f'network width {width}, untrained':28s}  {'':9s}  {min(times):9.2f}  "
                             f"{graph['edges'].shape[1]:18,d}  (time only; {size:,d} parameters)")
                print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gnn_speed_options.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
