"""What the filter's threshold trades: `gnn`'s TrackML score against the edges the interaction network sees and
its seconds, on events simulated from real TrackML particle lists (issue 20, item 4: a smaller graph for 3 s an
event).

    python benchmarks/gnn_filter_threshold.py [--lists 1001 1003] [--thresholds 0.2 0.3 0.4 0.5] [--threads 1]

The events: the development lists simulated with seed 1 (the tracking benchmark's, made when missing). For each
threshold (the shipped model's is 0.2015, chosen on its validation events; the edge threshold and the bridging
of broken tracks stay as shipped) the method reconstructs each event once unmeasured, then once measured: the
edges after the filter, the seconds of the filter and of the network stage, the wall seconds of the event, and
the TrackML score. Results go to ``benchmarks/results/gnn_filter_threshold.txt``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from real_lists import real_list_folder

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path("/tmp/deepreco-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001, 1003])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from deepreco.threads import set_threads

    set_threads(args.threads)
    from deepreco.io import Dataset
    from deepreco.metrics.score import score_event
    from deepreco.reconstruct import get_method

    folder = real_list_folder(args.lists, DATA / f"lists-seed1-{'_'.join(map(str, args.lists))}")
    ds = Dataset(folder)
    events = [ds.read(name) for name in ds.names]
    lines = [f"# benchmarks/gnn_filter_threshold.py --lists {' '.join(map(str, args.lists))} --thresholds "
             f"{' '.join(map(str, args.thresholds))} --threads {args.threads}",
             f"# {platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, {args.threads} thread(s); "
             "seconds: filter = module map + filter, network = interaction network, total = the event's wall clock",
             "", f"{'threshold':>9s} {'event':>10s} {'edges':>10s} {'filter s':>8s} {'network s':>9s} {'total s':>7s} "
             f"{'score':>7s}"]
    for threshold in args.thresholds:
        method = get_method("gnn", filter_threshold=threshold)
        scores, totals = [], []
        for event in events:
            method.reconstruct(event)
            t = time.perf_counter()
            sub = method.reconstruct(event)
            total = time.perf_counter() - t
            run = method.last_run
            score = float(score_event(event.truth, sub))
            scores.append(score)
            totals.append(total)
            lines.append(f"{threshold:9.3f} {event.event_id:10d} {run['filtered_edges']:10,d} "
                         f"{run['seconds_graph'] + run['seconds_filter']:8.2f} {run['seconds_gnn']:9.2f} "
                         f"{total:7.2f} {score:7.4f}")
            print(lines[-1], flush=True)
        lines.append(f"{threshold:9.3f} {'mean':>10s} {'':>10s} {'':>8s} {'':>9s} {sum(totals) / len(totals):7.2f} "
                     f"{sum(scores) / len(scores):7.4f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gnn_filter_threshold.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
