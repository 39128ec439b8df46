"""Start-up time of the command line: `deepreco --help`, the groups' help, and one-line errors on bad input.

    python benchmarks/startup.py [--repeat 7]

Each command runs as a fresh process (the installed `deepreco` script) ``--repeat`` times; the table gives the
median and the fastest wall time. Start-up is one process on one core, so the thread count does not enter;
the figures are taken once on an idle machine and once with the other core busy (a spinning process).
Results go to ``benchmarks/results/startup.txt``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

COMMANDS = [
    ["--help"],
    ["calo", "--help"],
    ["deepcore", "--help"],
    ["train", "--help"],
    ["info", "/nonexistent/event000000001-hits.csv"],
    ["evaluate", "/nonexistent", "-m", "nope"],
    ["simulate", "-g", "nope", "--out", "{tmp}/out"],
]


def _spin(stop):
    while not stop.is_set():
        pass


def _time(argv: list[str], repeat: int) -> tuple[float, float, int]:
    exe = shutil.which("deepreco")
    times, code = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        argv = [a.format(tmp=tmp) for a in argv]
        for _ in range(repeat):
            t0 = time.perf_counter()
            code = subprocess.run([exe, *argv], capture_output=True).returncode
            times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    lines = [f"# deepreco start-up, {platform.machine()} {platform.python_version()}, {args.repeat} runs each",
             f"{'command':<58}{'exit':>5}{'median s':>10}{'min s':>8}{'busy med':>10}"]
    for argv in COMMANDS:
        median, fastest, code = _time(argv, args.repeat)
        stop = mp.Event()
        spinner = mp.Process(target=_spin, args=(stop,))
        spinner.start()
        try:
            busy, _, _ = _time(argv, args.repeat)
        finally:
            stop.set()
            spinner.join()
        lines.append(f"{'deepreco ' + ' '.join(argv):<58}{code:>5}{median:>10.2f}{fastest:>8.2f}{busy:>10.2f}")
        print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
