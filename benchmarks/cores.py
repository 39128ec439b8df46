"""What the machine's cores give when both work: one process alone against two at once, on three kinds of work.

    python benchmarks/cores.py [--rounds 3] [--seconds 2]

Every figure of "two threads" or "two workers" in the README rests on the two cores being two: a process on one of
them should not slow down when the other works. This measures it. Each kind of work runs in a fresh process on one
thread (imports and warm-up done before the clock starts), first alone, then as two such processes started at the
same instant, then alone beside a ``yes > /dev/null`` (`hog.busy_core`, the benchmarks' "other core busy"):

* ``compute``: a chain of floating-point multiply-adds in registers (numba), no memory traffic at all;
* ``cache``: torch matrix products of 256 x 256 float32 on one thread (the operands fit a core's L2 cache);
* ``memory``: NumPy sums over a 512 MB array (streaming from main memory).

A ratio (two at once / alone) near 1 says the cores are independent for that work; near 2 says the two processes
share one core's capacity (e.g. two hardware threads of one physical core, or a host that gives the machine less
than two cores' time). The time is each process's own wall clock over a fixed amount of work (about ``--seconds``
alone); the median over ``--rounds``. Writes ``benchmarks/results/cores.txt``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hog import busy_core

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("compute", "cache", "memory")


def _work(kind: str):
    """A function doing a fixed amount of ``kind`` work, and how many times to call it for about a second."""
    if kind == "compute":
        import numba

        @numba.njit(cache=False)
        def chain(n):
            a, b = 1.0, 0.0
            for _ in range(n):
                b = b * 0.999999 + a
                a = a * 0.9999995 + 1e-9 * b
            return a + b

        chain(10)
        return lambda: chain(20_000_000)
    if kind == "cache":
        import torch

        torch.set_num_threads(1)
        x, y = torch.randn(256, 256), torch.randn(256, 256)
        return lambda: [torch.mm(x, y) for _ in range(200)]
    import numpy as np

    big = np.ones(64 * 1024 * 1024)  # 512 MB of float64
    return lambda: [big.sum() for _ in range(4)]


def child(kind: str, start_at: float, seconds: float, repeats: int) -> None:
    """In a fresh process, on one thread: warm up; with ``repeats`` 0, print how many calls take about ``seconds``;
    else wait for the instant ``start_at`` and print the seconds of ``repeats`` calls."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    fn = _work(kind)
    t = time.perf_counter()
    fn()
    once = time.perf_counter() - t
    if repeats == 0:
        print(max(1, round(seconds / max(once, 1e-6))), flush=True)
        return
    while time.time() < start_at:
        time.sleep(0.001)
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    print(f"{time.perf_counter() - t:.4f}", flush=True)


def _run(kind: str, n_processes: int, repeats: int) -> list[float]:
    start_at = time.time() + 3.0  # after every process has imported and warmed up
    procs = [subprocess.Popen([sys.executable, __file__, "--child", kind, f"{start_at}", "0", f"{repeats}"],
                              stdout=subprocess.PIPE, text=True) for _ in range(n_processes)]
    out = []
    for p in procs:
        text, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a {kind} process failed (exit {p.returncode})")
        out.append(float(text.split()[-1]))
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    if args.rounds < 1 or not args.seconds > 0:
        parser.error("--rounds must be at least 1 and --seconds above 0")
    lines = ["# python benchmarks/cores.py" + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
             + (f" --seconds {args.seconds:g}" if args.seconds != 2.0 else ""),
             f"# {platform.machine()}, {os.cpu_count()} CPUs seen, usable {len(os.sched_getaffinity(0))}, "
             f"Python {platform.python_version()}; load average before: "
             + " ".join(f"{x:.1f}" for x in os.getloadavg()),
             "",
             f"{'work':8s} {'alone s':>8s} {'two at once s':>14s} {'ratio':>6s} {'beside yes s':>13s} {'ratio':>6s}"]
    for kind in KINDS:
        text = subprocess.run([sys.executable, __file__, "--child", kind, "0", f"{args.seconds}", "0"],
                              capture_output=True, text=True, check=True).stdout
        repeats = int(text.split()[-1])
        alone, both, hogged = [], [], []
        for _ in range(args.rounds):
            alone += _run(kind, 1, repeats)
            both += _run(kind, 2, repeats)
            hog = busy_core()
            try:
                time.sleep(0.5)
                hogged += _run(kind, 1, repeats)
            finally:
                hog.kill()
                hog.wait()
        a, b, h = statistics.median(alone), statistics.median(both), statistics.median(hogged)
        lines.append(f"{kind:8s} {a:8.2f} {b:14.2f} {b / a:6.2f} {h:13.2f} {h / a:6.2f}")
        print(lines[-1], flush=True)
    lines += ["", "ratio: the time of one process when two run at once (or beside yes) over its time alone, the median "
              f"over {args.rounds} round(s); each process does the same work on one thread."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cores.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
