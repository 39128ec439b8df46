"""How many CPU threads a command computes on (``--threads``): one setting for torch, numba, OpenMP and MKL.

torch's intra-op threads are set (now if torch is loaded, else through ``OMP_NUM_THREADS``, which torch reads when
it loads); numba's parallel loops follow torch (`deepreco.calo.models.knn.use_threads`); the environment
variables reach the libraries loaded later and the processes started later. ``deepreco serve`` keeps its own
``--threads`` (onnxruntime threads a model).

The default (`default_threads`): the cores this process may run on less those that other processes keep busy
right now, at least one. Threads that outnumber the free cores wait for each other at every parallel step: with
one of two cores busy, gnn on a mu = 200 event took 15 % longer on 2 threads than on 1, and on a machine loaded by
other jobs twice as long (benchmarks/threads.py; the README's "Interrupting and resuming, threads").
"""

from __future__ import annotations

import os
import sys
import time

from .errors import DeepRecoError

_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_elsewhere(samples: int = 5, interval: float = 0.01) -> int:
    """How many threads of other processes are running or ready to run now: the fewest over a few samples
    of the kernel's count (``/proc/loadavg``), this process's own one taken away. 0 where it cannot be read."""
    try:
        counts = []
        for i in range(samples):
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
            if i + 1 < samples:
                time.sleep(interval)
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, min(counts) - 1)


def default_threads() -> int:
    """The usable cores less the ones other processes keep busy now, at least 1."""
    return max(1, usable_cores() - busy_elsewhere())


def set_threads(threads: int | None) -> int:
    """Compute on ``threads`` CPU threads from now on (None: `default_threads`); returns the number taken.
    A number below 1 is refused in one line."""
    if threads is None:
        if "torch" in sys.modules:  # a program that loaded torch before the command (a test, a notebook) chose
            return __import__("torch").get_num_threads()
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise DeepRecoError(f"--threads must be a whole number of at least 1, got {threads!r}")
    for name in _ENV:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
    return threads


def current_threads() -> int:
    """The threads the command computes on now: torch's setting when torch is loaded (`set_threads` sets it),
    else ``OMP_NUM_THREADS`` (which `set_threads` sets too), else 1."""
    if "torch" in sys.modules:
        return max(1, int(sys.modules["torch"].get_num_threads()))
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


def ordered_map(fn, items, threads: int = 1):
    """``fn`` of each of ``items`` on ``threads`` threads, yielded in order, with at most 2 ``threads`` results
    waiting: the memory stays bounded however many items there are (a pool's own map takes them all at once)."""
    if threads <= 1:
        yield from map(fn, items)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        waiting: deque = deque()
        for item in items:
            waiting.append(pool.submit(fn, item))
            if len(waiting) >= 2 * threads:
                yield waiting.popleft().result()
        while waiting:
            yield waiting.popleft().result()
