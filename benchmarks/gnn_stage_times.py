"""Seconds of each stage of `gnn` on one event simulated from a real TrackML particle list (issue 20, item 4).

    python benchmarks/gnn_stage_times.py [--list 1001] [--threads 1] [--busy] [--params "{'ckf': {'outer_d0_max': 0}}"]

The event is the tracking benchmark's (list simulated with seed 1, made when missing, `real_lists.py`). The method
runs once unmeasured (compiled kernels loaded), then once with a `deepreco.progress.listen` listener that notes the
time each stage starts: a stage's seconds run to the next stage's start (the last to the end). Prints the total, the
stages and the TrackML score; writes ``benchmarks/results/gnn_stage_times_<list>_<N>thread[s][_busy].txt``.
``--busy``: a ``yes > /dev/null`` process keeps one core busy meanwhile; ``--params``: keyword arguments of the
method, a Python dict literal (e.g. a pass switched off), added to the file name as ``_params``.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from pathlib import Path

from hog import busy_core
from real_lists import real_list_event

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path("/tmp/deepreco-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=int, default=1001)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--params", default="{}", help="method keywords, a Python dict literal")
    args = parser.parse_args()
    import torch

    from deepreco.io import Dataset
    from deepreco.metrics import score_event
    from deepreco.progress import listen
    from deepreco.reconstruct import get_method

    torch.set_num_threads(args.threads)
    params = ast.literal_eval(args.params)
    hits = real_list_event(args.list, DATA / f"list{args.list}-seed1")
    ds = Dataset(hits.parent)
    event = ds.read(ds.names[0])
    method = get_method("gnn", **params)
    method.reconstruct(event)
    busy = busy_core() if args.busy else None
    try:
        marks: list[tuple[str, float]] = []
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        with listen(lambda name, total: (marks.append((name, time.perf_counter())), lambda n=1: None)[1]):
            t0 = time.perf_counter()
            tracks = method.reconstruct(event)
            t1 = time.perf_counter()
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    marks.append(("end", t1))
    stages: dict[str, float] = {}
    for (name, start), (_, stop) in zip(marks[:-1], marks[1:], strict=True):
        stages[name] = stages.get(name, 0.0) + stop - start
    lines = [f"# python benchmarks/gnn_stage_times.py --list {args.list} --threads {args.threads}"
             + (" --busy" if args.busy else "") + (f" --params \"{args.params}\"" if params else ""),
             f"# list {args.list} (seed 1), {event.n_hits:,} hits; load before: {load}",
             f"total {t1 - t0:.2f} s (before the first stage {marks[0][1] - t0:.2f})"]
    lines += [f"  {name:22s} {seconds:6.2f}" for name, seconds in stages.items()]
    lines.append(f"TrackML score {score_event(event.truth, tracks):.4f}")
    suffix = f"_{args.list}_{args.threads}thread{'s' if args.threads > 1 else ''}" + ("_busy" if args.busy else "") \
        + ("_params" if params else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"gnn_stage_times{suffix}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
