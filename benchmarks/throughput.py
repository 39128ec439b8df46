"""Many events on the 2 cores: one process on 1 and on 2 threads against two Dask workers of one thread each.

    python benchmarks/throughput.py [--lists 1000 ... 1009] [--methods gnn ckf] [--busy]

One process on two threads shares each event's work between the cores (since session 28 also `gnn`'s Kalman step and
later passes and all of `ckf`, which ran on one thread when this benchmark was first run); two workers each take an
event (`evaluate_method(workers=2)`, the `--workers 2` of `deepreco evaluate`). Events: the real development lists
(1000-1009, seed 1), as ``benchmarks/tracking.py --lists`` simulates them. Each setting runs in its own process
(``evaluate_method`` on the folder); the time is the wall clock of the whole run, from the call to its figures: the
Dask cluster's start, the workers' imports and their loading of the model included (seconds per event = that /
events). ``--busy``: a ``yes > /dev/null`` keeps one core busy throughout. The figures (score and the others) are
the same every way, and the script checks it. Results: ``benchmarks/results/throughput[_busy].txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from hog import busy_core

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))

SETTINGS = (("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2), ("2 workers, 1 thread each", 2, 1))


def _one(folder: str, method: str, workers: int, threads: int) -> dict:
    """One setting, in this (fresh) process: the figures and the wall clock of the whole run."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    from deepreco.io import Dataset
    from deepreco.reconstruct import evaluate_method

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    r = evaluate_method(Dataset(folder), method, workers=workers)
    wall = time.perf_counter() - t0
    return {"wall": wall, "n_events": r["n_events"], "score": r["score"], "efficiency": r["efficiency"],
            "fake_rate": r["fake_rate"], "seconds_per_event_inside": r["seconds_per_event"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lists", type=int, nargs="+", default=list(range(1000, 1010)))
    parser.add_argument("--methods", nargs="+", default=["gnn", "ckf"])
    parser.add_argument("--busy", action="store_true", help="one core kept busy by `yes > /dev/null`")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)  # folder method workers threads: a child run
    args = parser.parse_args()
    if args.one:
        folder, method, workers, threads = args.one
        print(json.dumps(_one(folder, method, int(workers), int(threads))))
        return
    from real_lists import check_development, real_list_folder

    check_development(args.lists)
    folder = real_list_folder(args.lists, Path("/tmp/deepreco-bench/lists-seed1-" + "_".join(map(str, args.lists))))
    busy = busy_core() if args.busy else None
    lines = [f"# python benchmarks/throughput.py --lists {' '.join(map(str, args.lists))} --methods "
             f"{' '.join(args.methods)}{' --busy' if args.busy else ''}",
             f"# {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
             f"{'one core kept busy by yes' if args.busy else 'nothing else of ours running'}",
             f"events: the real development lists {' '.join(map(str, args.lists))} simulated with seed 1 ({folder})",
             "",
             f"{'method':6s} {'setting':26s} {'wall s':>8s} {'s / event':>9s} {'events / s':>10s} {'score':>7s} "
             f"{'s / event inside':>16s}"]
    try:
        for method in args.methods:
            scores = set()
            for name, workers, threads in SETTINGS:
                out = subprocess.run([sys.executable, __file__, "--one", str(folder), method, str(workers),
                                      str(threads)], capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(f"{method}, {name}: failed\n{out.stderr[-3000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                scores.add(round(r["score"], 6))
                line = (f"{method:6s} {name:26s} {r['wall']:8.1f} {r['wall'] / r['n_events']:9.2f} "
                        f"{r['n_events'] / r['wall']:10.3f} {r['score']:7.4f} {r['seconds_per_event_inside']:16.2f}")
                print(line, flush=True)
                lines.append(line)
            if len(scores) != 1:
                raise SystemExit(f"{method}: the settings gave different scores {sorted(scores)}")
    finally:
        if busy is not None:
            busy.terminate()
            busy.wait()
    lines += ["", "wall s: the whole run (a Dask cluster's start, the workers' imports and model loading included);",
              "s / event inside: the mean of each event's own reconstruction time, as evaluate_method reports it."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"throughput{'_busy' if args.busy else ''}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
