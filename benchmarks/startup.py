"""Start-up time of the command line: `deepreco --help`, the groups' help, and one-line errors on bad input.

    python benchmarks/startup.py [--repeat 7] [--before SRC]

Each command runs as a fresh process (the installed `deepreco` script) ``--repeat`` times; the table gives the
median and the fastest wall time. Start-up is one process on one core, so the thread count does not enter;
the figures are taken once as the machine is and once with one more core busy (a spinning process).
``--before SRC``: also the median with another checkout's ``src`` folder first on PYTHONPATH (the code before
a change), in the same run. Results go to ``benchmarks/results/startup.txt``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
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
    ["reconstruct", "/nonexistent", "-m", "ckf", "--out", "{tmp}/out"],
    ["score", "/nonexistent", "{tmp}/submission.csv"],
    ["train", "gnn", "--data", "/nonexistent", "--out", "{tmp}/gnn.pt"],
    ["calo", "evaluate", "--models-dir", "/nonexistent"],
    ["deepcore", "evaluate", "--model", "/nonexistent.pt"],
    ["simulate", "-g", "nope", "--out", "{tmp}/out"],
]


def _spin(stop):
    while not stop.is_set():
        pass


def _time(argv: list[str], repeat: int, src: str | None = None) -> tuple[float, float, int]:
    exe = shutil.which("deepreco")
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve()), env.get("PYTHONPATH", "")])
    times, code = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        argv = [a.format(tmp=tmp) for a in argv]
        for _ in range(repeat):
            t0 = time.perf_counter()
            code = subprocess.run([exe, *argv], capture_output=True, env=env).returncode
            times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--before", metavar="SRC", help="a checkout's src folder: the code before a change")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    lines = [f"# deepreco start-up, {platform.machine()} {platform.python_version()}, {args.repeat} runs each, "
             f"load average {load:.1f} at the start" + (f"; before: {args.before}" if args.before else ""),
             f"{'command':<58}{'exit':>5}{'median s':>10}{'min s':>8}{'busy med':>10}"
             + (f"{'before med':>12}" if args.before else "")]
    for argv in COMMANDS:
        before = _time(argv, args.repeat, args.before)[0] if args.before else None
        median, fastest, code = _time(argv, args.repeat)
        stop = mp.Event()
        spinner = mp.Process(target=_spin, args=(stop,))
        spinner.start()
        try:
            busy, _, _ = _time(argv, args.repeat)
        finally:
            stop.set()
            spinner.join()
        lines.append(f"{'deepreco ' + ' '.join(argv):<58}{code:>5}{median:>10.2f}{fastest:>8.2f}{busy:>10.2f}"
                     + (f"{before:>12.2f}" if before is not None else ""))
        print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
