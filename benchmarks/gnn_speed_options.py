"""What `gnn`'s time could be cut by without retraining, and what each cut costs (issue 20, item 4): the filter's
threshold (fewer edges for the interaction network) and fewer message-passing rounds of the network at inference.

    python benchmarks/gnn_speed_options.py [--lists 1001 1003]

Lists simulated with seed 1 (`real_lists.py`, made when missing), one thread. The threshold rows run the whole
method (seconds of the event, of its network, the edges after the filter, the TrackML score); the rounds rows run
the graph's own tracks (``kalman=False, later_passes=False``) with the shipped network's ``n_iterations`` lowered
(it was trained with 6, its weights shared across rounds). Writes ``benchmarks/results/gnn_speed_options.txt``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from real_lists import real_list_event

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path("/tmp/deepreco-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001, 1003])
    args = parser.parse_args()
    import torch

    from deepreco.io import Dataset
    from deepreco.metrics import score_event
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.gnn.method import cached_model

    torch.set_num_threads(1)
    lines = [f"# python benchmarks/gnn_speed_options.py --lists {' '.join(map(str, args.lists))}",
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gnn_speed_options.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
