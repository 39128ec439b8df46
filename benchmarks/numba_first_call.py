"""Seconds of `ckf`'s first call after an install (numba compiles its kernels and caches them beside the sources)
and of the next call, for this tree and an earlier commit.

    python benchmarks/numba_first_call.py [--before bed90d2]

Each code is ``git archive REV src`` in a fresh temporary folder (no numba cache yet), run in fresh Python processes
twice: the first reconstructs a 20-muon event (seed 1) after compiling, the second loads the cache. Prints and
writes ``benchmarks/results/numba_first_call.txt``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUN = """
import time
from deepreco.generate import particle_gun
from deepreco.simulate import simulate_event
from deepreco.reconstruct import get_method
ev = simulate_event(particle_gun(n=20, pdg=13, pt=(1, 10), seed=1), seed=1, event_id=1)
t = time.perf_counter()
get_method("ckf").reconstruct(ev)
print(f"{time.perf_counter() - t:.1f}")
"""


def seconds(rev: str) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        return [float(subprocess.run([sys.executable, "-c", RUN], env=env, check=True, capture_output=True,
                                     text=True).stdout.split()[-1]) for _ in range(2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="bed90d2")
    args = parser.parse_args()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"# python benchmarks/numba_first_call.py --before {args.before}", f"# load average before: {load}",
             "code       first call s   next call s"]
    for name, rev in (("before", args.before), ("this", "HEAD")):
        first, second = seconds(rev)
        lines.append(f"{name:8s} {first:12.1f} {second:13.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "numba_first_call.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
