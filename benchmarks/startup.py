"""Start-up time of the command line: `deepreco --help`, `--version`, the groups' help, and each kind of one-line
error (a missing file, a bad number, an unknown name, an unknown command), with the heavy modules each loaded.

    python benchmarks/startup.py [--repeat 5] [--busy] [--before SRC]

Each command runs as a fresh process (``python -m deepreco``) ``--repeat`` times, on one thread
(``OMP_NUM_THREADS=1``, ...): start-up is one Python process, which two threads would not speed up.
The table gives the median wall time, and which of torch, pandas, numpy, numba, pythia8mc, sklearn the command
imported (from one more run under ``python -X importtime``; ``-`` for none). ``--busy``: also the median with
the other core kept busy by a spinning process. ``--before SRC``: also the median with another checkout's
``src`` folder first on PYTHONPATH (the code before a change), in the same run. About a minute on an idle
2-core machine without ``--busy`` and ``--before`` (EVENT: the event shipped in the package; TMP: an empty
temporary folder). Results go to ``benchmarks/results/startup.txt``, with the
load average before and after: on a shared machine every figure is several times its idle value.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
EVENT = str(Path(__file__).resolve().parents[1] / "src" / "deepreco" / "data" / "event000001001")
HEAVY = ("torch", "pandas", "numpy", "numba", "pythia8mc", "sklearn")

# (what it shows, argv); {tmp} is a fresh empty folder, {event} the event shipped with the package
COMMANDS = [
    ("help", ["--help"]),
    ("version", ["--version"]),
    ("help of a group", ["calo", "--help"]),
    ("help of a command", ["train", "gnn", "--help"]),
    ("missing event", ["info", "/nonexistent/event000000001-hits.csv"]),
    ("missing event", ["reconstruct", "/nonexistent", "-m", "ckf", "--out", "{tmp}/out"]),
    ("missing file", ["score", "{event}", "{tmp}/submission.csv"]),
    ("missing folder", ["train", "gnn", "--data", "/nonexistent", "--out", "{tmp}/gnn.pt"]),
    ("missing folder", ["calo", "evaluate", "--models-dir", "/nonexistent"]),
    ("missing model file", ["deepcore", "evaluate", "--model", "/nonexistent.pt"]),
    ("bad number", ["evaluate", "{event}", "-m", "ckf", "--pt-min", "nan"]),
    ("bad number", ["simulate", "-g", "ttbar", "--pileup", "5000", "--out", "{tmp}/out"]),
    ("unwritable output", ["reconstruct", "{event}", "-m", "ckf", "--out", "/proc/out"]),
    ("unknown name", ["simulate", "-g", "nope", "--out", "{tmp}/out"]),
    ("unknown option", ["simulate", "-g", "gun", "--set", "nope=1", "--out", "{tmp}/out"]),
    ("bad option value", ["simulate", "-g", "gun", "--set", "n=abc", "--out", "{tmp}/out"]),
    ("unknown name", ["reconstruct", "{event}", "-m", "nope", "--out", "{tmp}/out"]),
    ("unknown name", ["evaluate", "{event}", "-m", "nope"]),
    ("unknown name", ["export", "nope", "--out", "{tmp}/out"]),
    ("unknown name", ["train", "lstm", "--model", "nope", "--out", "{tmp}/lstm.pt"]),
    ("unknown name", ["calo", "evaluate", "--methods", "nope"]),
    ("unknown name", ["calo", "train", "--models", "nope"]),
    ("unknown name", ["deepcore", "evaluate", "--fallback", "nope"]),
    ("unknown name", ["toys", "benchmark", "--models", "nope"]),
    ("unknown command", ["train", "nope"]),
]

ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}


def _spin(stop):
    while not stop.is_set():
        pass


def _env(src: str | None) -> dict:
    env = {**os.environ, **ONE_THREAD}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve()), env.get("PYTHONPATH", "")])
    return env


def _argv(argv: list[str], tmp: str) -> list[str]:
    return [a.format(tmp=tmp, event=EVENT) for a in argv]


def _time(argv: list[str], repeat: int, src: str | None = None) -> tuple[float, int]:
    times, code = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            t0 = time.perf_counter()
            code = subprocess.run([sys.executable, "-m", "deepreco", *_argv(argv, tmp)], capture_output=True,
                                  env=_env(src)).returncode
            times.append(time.perf_counter() - t0)
    return statistics.median(times), code


def _heavy(argv: list[str]) -> str:
    """The heavy top-level modules the command imported, from ``python -X importtime``."""
    with tempfile.TemporaryDirectory() as tmp:
        err = subprocess.run([sys.executable, "-X", "importtime", "-m", "deepreco", *_argv(argv, tmp)],
                             capture_output=True, text=True, env=_env(None)).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")}
    return ",".join(m for m in HEAVY if m in names) or "-"


def _busy(argv: list[str], repeat: int) -> float:
    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,))
    spinner.start()
    try:
        return _time(argv, repeat)[0]
    finally:
        stop.set()
        spinner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="also with the other core kept busy")
    parser.add_argument("--before", metavar="SRC", help="a checkout's src folder: the code before a change")
    args = parser.parse_args()
    start = time.perf_counter()
    lines = [f"# deepreco start-up, {platform.machine()} Python {platform.python_version()}, {os.cpu_count()} cores, "
             f"one thread a command, median of {args.repeat} runs; load average "
             f"{os.getloadavg()[0]:.1f} at the start" + (f"; before: {args.before}" if args.before else ""),
             f"{'kind':<19}{'command':<56}{'exit':>5}{'median s':>10}"
             + (f"{'busy s':>8}" if args.busy else "") + (f"{'before s':>10}" if args.before else "")
             + "  heavy imports"]
    print("\n".join(lines), flush=True)
    for kind, argv in COMMANDS:
        before = _time(argv, args.repeat, args.before)[0] if args.before else None
        median, code = _time(argv, args.repeat)
        busy = _busy(argv, args.repeat) if args.busy else None
        shown = "deepreco " + " ".join(argv).replace("{event}", "EVENT").replace("{tmp}", "TMP")
        lines.append(f"{kind:<19}{shown:<56}{code:>5}{median:>10.2f}" + (f"{busy:>8.2f}" if busy is not None else "")
                     + (f"{before:>10.2f}" if before is not None else "") + f"  {_heavy(argv)}")
        print(lines[-1], flush=True)
    lines.append(f"# load average {os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - start:.0f} s in all")
    print(lines[-1])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
