"""acts-ckf beside deepreco's ckf and gnn on simulated real-list events: TrackML score, time, memory.

    python benchmarks/acts_tracking.py [--lists 1001] [--methods acts-ckf ckf gnn] [--threads 1] [--data DIR]
                                       [--name acts_tracking]

Each TrackML development particle list (1000-1009 only) is simulated once by deepreco (seed 1, the same events as
`benchmarks/fit.py`) into ``--data``. Each method runs in its own process with ``--threads`` threads (torch,
BLAS, OpenMP), so that its peak resident memory is its own; the time is the reconstruction's wall clock and its
process CPU time (the machine is shared: the CPU time says what the work costs when the wall clock is stretched by
other jobs). Results: ``benchmarks/results/<name>.txt`` and ``.json``. (Not ``acts.py``: run as a script,
its folder comes first on the path and the file would stand in for the ``acts`` package.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path

from real_lists import check_development, real_list_event

RESULTS = Path(__file__).resolve().parent / "results"


def _run(method: str, path: str, threads: int, queue) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    from deepreco.io import read_event
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method

    torch.set_num_threads(threads)
    event = read_event(path)
    algo = get_method(method)
    wall, cpu = time.perf_counter(), time.process_time()
    tracks = algo.reconstruct(event)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = evaluate(event.truth, event.particles, tracks, pt_min=1.0)
    queue.put({"method": method, "seconds": wall, "cpu_seconds": cpu, "threads": threads,
               "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               **{k: v for k, v in result.items() if isinstance(v, int | float)}})


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001])
    parser.add_argument("--methods", nargs="+", default=["acts-ckf", "ckf", "gnn"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default="/tmp/deepreco-bench/fit-reallists")
    parser.add_argument("--name", default="acts_tracking")
    args = parser.parse_args()
    check_development(args.lists)
    rows = []
    ctx = mp.get_context("spawn")
    for number in args.lists:
        path = str(real_list_event(number, Path(args.data) / str(number), seed=1))
        for method in args.methods:
            queue = ctx.Queue()
            proc = ctx.Process(target=_run, args=(method, path, args.threads, queue))
            proc.start()
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit(f"{method} failed on list {number} (exit code {proc.exitcode})")
            row = queue.get()
            rows.append({"list": number, **row})
            print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(rows, indent=1))
    lines = [f"Track finding on deepreco-simulated real-list events, {args.threads} thread(s) per method, each in its "
             "own process; machine shared with other jobs (wall clock stretched; CPU time beside it)", "",
             f"{'list':>5} {'method':>9} {'score':>6} {'eff.':>6} {'fakes':>6} {'dupl.':>6} {'wall s':>7} "
             f"{'CPU s':>7} {'MB':>6}"]
    for r in rows:
        lines.append(f"{r['list']:>5} {r['method']:>9} {r['score']:6.3f} {r['efficiency']:6.3f} {r['fake_rate']:6.3f} "
                     f"{r['duplicate_rate']:6.3f} {r['seconds']:7.1f} {r['cpu_seconds']:7.1f} "
                     f"{r['peak_memory_mb']:6.0f}")
    (RESULTS / f"{args.name}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
