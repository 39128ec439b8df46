"""The grid seeding run many times in fresh processes, after two processes compiled its kernels at once.

    python benchmarks/grid_stress.py [--runs 7] [--data DIR]

Why (issue 22): in session 30 a process seeding a generated event with ``seeding="grid"`` died twice in about ten
runs with a segmentation fault inside the compiled clustering, after the tests' two workers had compiled the
kernels at once; numba's cache is a candidate (numba issue #4807: a cached function calling another cached one,
compiled by concurrent processes). This script reproduces that condition in a numba cache of its own (a new
temporary ``NUMBA_CACHE_DIR``, so no other cache is touched): two processes compile the kernels at the same moment
on a small pion event, then two loops, side by side, each start ``--runs`` fresh processes that seed one of the
tracking benchmark's generated events (the first three of ``--data``, in turn) on one thread. Every process's
exit status is reported (-11: a segmentation fault; `faulthandler` prints the Python line). Output:
``benchmarks/results/grid_stress.txt``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE = """
import faulthandler, sys, time
faulthandler.enable()
start = time.perf_counter()
from deepreco.reconstruct.lstm.seeding import grid_seeds
if sys.argv[1] == "compile":
    from deepreco.generate import particle_gun
    from deepreco.simulate import simulate_event
    gun = particle_gun(n=400, pdg=(211, -211), pt=(0.3, 3.0), vertex_sigma=(0.1, 50.0), seed=7)
    seeds, _ = grid_seeds(simulate_event(gun, seed=7, event_id=1, noise_fraction=0.1), threads=1, z0_max=60.0)
else:
    from deepreco.io import Dataset
    events = [e for _, e in zip(range(3), Dataset(sys.argv[2]), strict=False)]
    start = time.perf_counter()
    seeds, _ = grid_seeds(events[int(sys.argv[1]) % len(events)], threads=1)
print(f"run {sys.argv[1]}: {len(seeds)} seeds in {time.perf_counter() - start:.1f} s", flush=True)
"""


def _loop(runs: int, data: str, env: dict, first: int) -> subprocess.Popen:
    """A shell loop of ``runs`` fresh processes, each printing its run, seeds, seconds and exit status."""
    body = "; ".join(f"{sys.executable} -c \"$ONE\" {first + i} {data} 2>&1; echo \"exit $?\"" for i in range(runs))
    return subprocess.Popen(["bash", "-c", body], env=env, stdout=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes in each of the two loops")
    parser.add_argument("--data", default="/tmp/deepreco-bench/ttbar-mu200-seed1000-n3",
                        help="the tracking benchmark's generated events (benchmarks/tracking.py makes them)")
    args = parser.parse_args()
    if not any(Path(args.data).glob("*-hits.parquet")):
        raise SystemExit(f"--data {args.data}: no events; run python benchmarks/tracking.py first")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "ONE": ONE, "OMP_NUM_THREADS": "1"}
        compilers = [subprocess.Popen([sys.executable, "-c", ONE, "compile"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outputs = [p.communicate()[0] for p in compilers]
        statuses = [p.returncode for p in compilers]
        lines = [f"compile {i}: {out.strip()} (exit {status})"
                 for i, (out, status) in enumerate(zip(outputs, statuses, strict=True))]
        loops = [_loop(args.runs, args.data, env, first) for first in (0, 1)]
        outputs = [p.communicate()[0] for p in loops]
    for i, out in enumerate(outputs):
        for line in out.strip().splitlines():
            lines.append(f"loop {i}: {line}")
            if line.startswith("exit "):
                statuses.append(int(line.split()[1]))
    failed = sum(status != 0 for status in statuses)
    text = (f"{started}: two processes compiled the grid kernels at once into a fresh numba cache, then two loops of "
            f"{args.runs} fresh processes each seeded generated events from {args.data} (one thread each)\n"
            + "\n".join(lines) + f"\n{len(statuses)} processes, {failed} failed\n")
    out = Path(__file__).resolve().parent / "results" / "grid_stress.txt"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(text)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
