"""Seconds per event of the calorimeter clusterers on ~100,000-hit events, on one and on two threads.

    python benchmarks/calo_speed.py [--particles 1090 1200] [--threads 1 2] [--repeat 3] [--methods clue gravnet]
                                     [--busy]

Pile-up-like events of many soft particles over both endcaps (`deepreco.calo.evaluate.pileup_event`, the
events of `benchmarks/calo.py`'s time scan, `deepreco.calo.evaluate.timing_vs_hits`, run ``--repeat`` times);
the best and the median are kept. Each thread count runs in its own process, so torch and numba
take that many threads from the start. ``--busy``: a ``yes > /dev/null`` process keeps one core busy meanwhile.
Results go to ``benchmarks/results/calo_speed.txt`` (``calo_speed_busy.txt``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
from pathlib import Path

from hog import busy_core

RESULTS = Path(__file__).resolve().parent / "results"


def _run(threads: int, particles: list[int], methods: list[str], repeat: int, queue) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)
    import pandas as pd
    import torch

    from deepreco.calo.evaluate import timing_vs_hits

    torch.set_num_threads(threads)
    runs = pd.concat([timing_vs_hits(methods, particles) for _ in range(repeat)])
    stats = runs.groupby(["method", "particles", "hits"], sort=False)["seconds"].agg(["min", "median"])
    queue.put([(threads, m, int(n), int(h), float(r["min"]), float(r["median"])) for (m, n, h), r in stats.iterrows()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, nargs="+", default=[1090, 1200])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--methods", nargs="+", default=["clue", "gravnet"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="one core kept busy by another process meanwhile")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs; load average at start "
             f"{os.getloadavg()[0]:.2f}" + ("; one core kept busy by `yes` meanwhile" if args.busy else ""), "",
             f"{'threads':>7s} {'method':8s} {'particles':>9s} {'hits':>8s} {'best s':>7s} {'median s':>8s}"]
    hog = busy_core() if args.busy else None
    try:
        for threads in args.threads:
            queue = ctx.Queue()
            proc = ctx.Process(target=_run, args=(threads, args.particles, args.methods, args.repeat, queue))
            proc.start()
            for row in queue.get():
                lines.append(f"{row[0]:7d} {row[1]:8s} {row[2]:9d} {row[3]:8d} {row[4]:7.3f} {row[5]:8.3f}")
                print(lines[-1], flush=True)
            proc.join()
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"calo_speed{'_busy' if args.busy else ''}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
