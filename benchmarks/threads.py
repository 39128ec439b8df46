"""Threads against a busy core: gnn and ckf on one realistic mu = 200 event, on 1 and 2 threads, each with the
machine as it is and with one more core kept busy (a ``yes > /dev/null`` process), and what the default
(`deepreco.threads.default_threads`) picks and takes in each case.

    python benchmarks/threads.py [--methods gnn,ckf] [--rounds 1] > benchmarks/results/threads.txt

The event: the particles of real TrackML event 1001 (development list) simulated on the TrackML detector with
seed 1 (`deepreco simulate -g trackml`). Each run is a ``deepreco reconstruct EVENT -m METHOD --threads N``
subprocess; the time is the one the command reports for its event (``gnn: 1 in X s``: reading the event,
reconstructing, writing the submission; not the start of Python nor the loading of the model), the best of
``--rounds``. The load average of the machine before each run is printed beside it: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hog import busy_core

PARTICLES = Path("/work/shared/data/trackml/train/event000001001-particles.csv.gz")
DEEPRECO = [sys.executable, "-m", "deepreco"]


def _run(args) -> subprocess.CompletedProcess:
    r = subprocess.run([*DEEPRECO, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"deepreco {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _default_threads() -> int:
    r = subprocess.run([sys.executable, "-c", "from deepreco.threads import default_threads; "
                        "print(default_threads())"], capture_output=True, text=True, check=True)
    return int(r.stdout)


def _seconds(event: Path, method: str, threads: int | None, out: Path) -> float:
    args = ["reconstruct", event, "-m", method, "--out", out]
    if threads is not None:
        args += ["--threads", threads]
    r = _run(args)
    found = re.search(r": 1 in ([0-9.]+) s \(", r.stderr)
    if found is None:
        raise SystemExit(f"no time in the output of deepreco {' '.join(map(str, args))}:\n{r.stderr}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="gnn,ckf")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    import torch

    print(f"# benchmarks/threads.py --methods {args.methods} --rounds {args.rounds}")
    print(f"# {platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}; the machine is shared with other jobs (load average before each run shown)")
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events"
        _run(["simulate", "-g", "trackml", "--particles", PARTICLES, "-n", "1", "--seed", "1", "--out", events])
        event = next(events.glob("*-hits.*"))
        hits = sum(1 for _ in open(event)) - 1 if event.suffix == ".csv" else None
        print(f"event: the particles of TrackML event 1001 simulated with seed 1, {hits:,} hits\n")
        print(f"{'method':6s} {'other core':10s} {'threads':>8s} {'seconds':>8s}   load average (1, 5, 15 min)")
        for method in args.methods.split(","):
            _run(["reconstruct", event, "-m", method, "--out", Path(tmp) / "warm", "--threads", "1"])  # caches
            for busy in (False, True):
                hog = busy_core() if busy else None
                try:
                    if hog is not None:
                        time.sleep(1.0)  # the hog is running before the default is measured
                    for threads in (1, 2, None):
                        load = _load()
                        picked = _default_threads() if threads is None else threads
                        best = min(_seconds(event, method, threads, Path(tmp) / f"out-{method}-{threads}")
                                   for _ in range(args.rounds))
                        shown = f"{picked}" if threads is not None else f"{picked} (default)"
                        print(f"{method:6s} {'busy' if busy else 'as is':10s} {shown:>8s} {best:8.1f}   {load}",
                              flush=True)
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()


if __name__ == "__main__":
    main()
