"""`ckf`'s Kalman filter on one and on two threads (its seed parts advanced side by side, `kalman.Finder.run`), in
one process on one event, the thread counts alternating so that both see the same machine; also with the other
core kept busy. The tracks must be the same on every thread count (the script stops otherwise).

    python benchmarks/ckf_threads.py [--list 1001] [--rounds 2] [--busy]

The event: real list 1001 simulated with seed 1 (`real_lists.py`, made when missing). Only the Kalman filter's
parts follow the thread count here (torch is set to the same number, numba is not used in parallel by `ckf`).
Writes ``benchmarks/results/ckf_threads[_busy].txt``.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()
    import torch

    from deepreco.io import Dataset
    from deepreco.metrics import score_event
    from deepreco.reconstruct import get_method

    hits = real_list_event(args.list, DATA / f"list{args.list}-seed1")
    ds = Dataset(hits.parent)
    event = ds.read(ds.names[0])
    method = get_method("ckf")
    torch.set_num_threads(1)
    method.reconstruct(event)  # compiled kernels loaded
    lines = [f"# python benchmarks/ckf_threads.py --list {args.list} --rounds {args.rounds}"
             + (" --busy" if args.busy else ""),
             f"# list {args.list} (seed 1), {event.n_hits:,} hits; load before: "
             + " ".join(f"{x:.1f}" for x in os.getloadavg())
             + ("; the other core kept busy by `yes` meanwhile" if args.busy else ""), "",
             "threads  seconds  TrackML score"]
    tracks: dict[int, set] = {}
    seconds: dict[int, list[float]] = {1: [], 2: []}
    hog = busy_core() if args.busy else None
    try:
        for _ in range(args.rounds):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                t0 = time.perf_counter()
                found = method.reconstruct(event)
                seconds[threads].append(time.perf_counter() - t0)
                lines.append(f"{threads:7d} {seconds[threads][-1]:8.2f}  {score_event(event.truth, found):.4f}")
                print(lines[-1], flush=True)
                made = set(found.groupby("track_id")["hit_id"].apply(lambda s: tuple(sorted(s))))
                if tracks.setdefault(threads, made) != made or tracks.get(3 - threads, made) != made:
                    raise SystemExit("the tracks differ between runs or thread counts")
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    lines += ["", f"best: 1 thread {min(seconds[1]):.2f} s, 2 threads {min(seconds[2]):.2f} s "
              f"({min(seconds[2]) / min(seconds[1]):.2f} of one thread's); the same tracks on both"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ckf_threads{'_busy' if args.busy else ''}.txt").write_text("\n".join(lines) + "\n")
    print(lines[-1])


if __name__ == "__main__":
    main()
