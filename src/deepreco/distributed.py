"""Many events at once: a list of per-event tasks run on Dask (``dask.distributed``), or in a plain loop.

``run_events(task, items, workers=N)`` starts a `LocalCluster` of N worker processes (one thread each, torch
at one thread) for the run and closes it after; ``scheduler=ADDRESS`` uses a running cluster instead (``dask
scheduler`` and ``dask worker`` processes, on this machine or many). One worker and no scheduler is a plain
loop in this process, so small runs cost nothing extra. A task is a picklable callable of one item (an event's
index) whose result depends on that item alone, so the results are the same whichever way they are run, and a
task that ran on a worker that died can run again elsewhere (Dask does it). Results come back in the order of
the items.

A model is built once per process by `per_process`, not once per event. A killed client takes its
`LocalCluster` with it: Dask's worker processes exit at once when their parent's pipe closes, and the files
they were writing have no name yet (`deepreco.io` writes unnamed, then renames), so nothing is left behind.

>>> from deepreco.distributed import EventRunner
>>> with EventRunner(workers=1) as runner:                  # workers=2: a LocalCluster, the same results
...     runner.run(abs, [-1, 2, -3])
[1, 2, 3]
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from .console import err_console, progress_bar
from .errors import DeepRecoError
from .signals import PARENT_ENV, arm

CONNECT_TIMEOUT = 5.0  # seconds to reach a scheduler before giving up

_OBJECTS: dict = {}
_LOCK = threading.RLock()
BUILDS: dict[str, int] = {}  # how many times this process built each object (the tests count model loads)


def per_process(key: str, build: Callable):
    """``build()``, once per process for each ``key``: a model is loaded once per worker, not once per event."""
    with _LOCK:  # a worker with several threads builds each object once too
        if key not in _OBJECTS:
            _OBJECTS[key] = build()
            BUILDS[key] = BUILDS.get(key, 0) + 1
        return _OBJECTS[key]


def builds() -> dict[str, int]:
    """This process's build counts (run on every worker with ``Client.run``)."""
    return dict(BUILDS)


def check_workers(workers: int, scheduler: str | None = None) -> None:
    """One-line errors for a bad ``--workers`` / ``--scheduler`` before anything is written."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DeepRecoError(f"--workers must be a whole number of at least 1, got {workers!r}")
    if scheduler is not None and not str(scheduler).strip():
        raise DeepRecoError("--scheduler: empty address")


def _on_worker(task: Callable, item):
    """Run one task on a Dask worker, torch at one thread (the worker's one thread is one core) and the heap as in
    a plain process (`heap_as_in_a_plain_process`)."""
    if "torch-threads" not in _OBJECTS:
        import torch

        torch.set_num_threads(1)
        heap_as_in_a_plain_process()
        _OBJECTS["torch-threads"] = 1
    return task(item)


MMAP_THRESHOLD = 32 << 20  # glibc's largest sliding mmap threshold on 64 bits (DEFAULT_MMAP_THRESHOLD_MAX)


def heap_as_in_a_plain_process() -> bool:
    """Give this process glibc's heap thresholds where they settle in a plain process: arrays below 32 MiB from the
    heap, its top returned to the system above 64 MiB free. True where set (glibc), else nothing is done.

    Why: Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
    ``distributed.nanny.pre-spawn-environ``, so that freed memory goes back to the system at once), and setting it
    turns off glibc's sliding mmap threshold: every array above 128 KiB is then mapped afresh, its pages faulted in
    and zeroed at each use. The graph network's many chunk-sized temporaries paid for it: `gnn` took 1.7 times as
    long on a worker as in one process (`benchmarks/throughput.py`, README "Running on a cluster"). Set in each
    worker on its first task, so workers of any cluster get it (``dask worker`` starts them with a nanny too)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to ask, or not one with mallopt
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, 2 * MMAP_THRESHOLD))


def connect(scheduler: str | None, workers: int):
    """(client, cluster): a client of the scheduler at ``scheduler``, or of a `LocalCluster` of ``workers``
    processes started here (cluster None for a running scheduler)."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        from distributed.comm.addressing import resolve_address

        try:  # a malformed address, before a Client half made of it hangs on closing
            resolve_address(scheduler)
        except (ValueError, OSError) as exc:
            raise DeepRecoError(f"--scheduler {scheduler}: not a scheduler address ({exc})") from None
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False), None
        except (OSError, TimeoutError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DeepRecoError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT:g} s "
                                f"({first[:160]})") from None
    # Ctrl-C or SIGTERM while the cluster starts would leave it half made (Dask then fails to close it at exit):
    # the interrupt waits until it is up, then closes it; the deadline of deepreco.signals still holds.
    interrupted = []
    previous = {}

    def later(signum, frame):
        interrupted.append(signum)
        arm(signum)

    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, later) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # memory_limit=0: no nanny kills a worker for the memory a full event takes; the OS decides.
        # dashboard_address=":0": any free port (the default 8787 warns when another cluster holds it).
        # preload: each worker process dies with this one, even when this one is SIGKILLed (deepreco.signals)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               memory_limit=0, silence_logs=logging.ERROR, preload=["deepreco.signals"],
                               env={PARENT_ENV: str(os.getpid())})
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    try:
        if interrupted:
            raise KeyboardInterrupt
        return Client(cluster, set_as_default=False), cluster
    except BaseException:
        cluster.close()
        raise


def _restore_environ(saved: dict) -> None:
    """Put back this process's environment as ``saved``: a `LocalCluster`'s nanny writes the variables it gives
    each worker (``distributed.nanny.pre-spawn-environ``: ``OMP_NUM_THREADS=1``, ``MALLOC_TRIM_THRESHOLD_``, ...)
    into the environment of the process that starts it, where every process started afterwards would inherit
    them (a ``deepreco`` subprocess computing on one thread)."""
    for key in set(os.environ) | set(saved):
        if key not in saved:
            del os.environ[key]
        elif os.environ.get(key) != saved[key]:
            os.environ[key] = saved[key]


class EventsFailed(DeepRecoError):
    """Some items of a run failed, the others ran: ``failures`` is [(name, why)], one line each in the message."""

    def __init__(self, total: int, label: str, failures: list[tuple[str, str]], after: str = ""):
        self.total, self.label, self.failures = total, label, failures
        what = "events" if label == "events" else f"events ({label})"
        self.header = f"{len(failures)} of {total} {what} failed{after}:"
        self.details = [f"  {who}: {' '.join(str(why).split())}" for who, why in failures]
        super().__init__("\n".join([self.header, *self.details]))

    def then(self, after: str) -> EventsFailed:
        """The same failures, ``after`` said after the count (what became of the others)."""
        return EventsFailed(self.total, self.label, self.failures, after)


class EventRunner:
    """Where a run's events go: ``with EventRunner(workers, scheduler) as runner: runner.run(task, items)``.

    Entering connects to the scheduler (or starts the `LocalCluster`), so that a bad address fails before a
    caller writes anything; leaving closes what it started. One worker and no scheduler: a plain loop here.
    """

    def __init__(self, workers: int = 1, scheduler: str | None = None, progress: bool = False):
        check_workers(workers, scheduler)
        self.workers, self.scheduler, self.progress = workers, scheduler, progress
        self.client: Any = None
        self.cluster: Any = None

    @property
    def local(self) -> bool:
        return self.scheduler is None and self.workers == 1

    def __enter__(self) -> EventRunner:
        self._environ = dict(os.environ)
        if not self.local:
            self.client, self.cluster = connect(self.scheduler, self.workers)
            _restore_environ(self._environ)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self.cluster is not None and exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            # Ctrl-C or SIGTERM: the workers end now, not after their event (their files are complete or absent)
            _kill_workers(self.cluster)
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            _restore_environ(self._environ)
        self.client = self.cluster = None

    def run(self, task: Callable, items: Sequence, label: str = "events", name: Callable = repr) -> list:
        """``[task(item) for item in items]``, on the runner's workers; in the order of ``items``.

        A failed item (bad data: a `DeepRecoError`; an error of the code; a task whose workers died three times)
        is counted and every other item still runs; then `EventsFailed` says how many failed, and which and why
        on one line each (``name(item)``: what failed). A run of one item raises its `DeepRecoError` as it is.
        With ``progress``, a bar over the items on stderr (a terminal) that moves as each one finishes, and a
        summary line (items, items per second, failures).
        """
        items = list(items)
        results: list = [None] * len(items)
        failures: list[tuple[int, BaseException]] = []
        start = time.perf_counter()
        with progress_bar(label, len(items)) if self.progress else nullcontext() as advance:
            if self.local:
                for i, item in enumerate(items):
                    try:
                        results[i] = task(item)
                    except Exception as exc:  # noqa: BLE001 - reported with the others below
                        failures.append((i, exc))
                    if advance is not None:
                        advance()
            elif items:
                self._run_dask(task, items, results, failures, advance)
        same = {str(exc) for _, exc in failures if isinstance(exc, DeepRecoError)}
        if len(failures) == len(items) and len(same) == 1 and all(isinstance(e, DeepRecoError) for _, e in failures):
            raise failures[0][1]  # the same bad input for every failed item (one item, or an option): one line
        seconds = time.perf_counter() - start
        if self.progress:
            where = (f"scheduler {self.scheduler}" if self.scheduler else
                     f"{self.workers} worker{'s' if self.workers > 1 else ''}")
            err_console.print(f"{label}: {len(items)} in {seconds:.1f} s ({len(items) / max(seconds, 1e-9):.2f} / s)"
                              f" on {where}, {len(failures)} failed", highlight=False)
        if failures:
            raise EventsFailed(len(items), label, [(name(items[i]), _message(exc)) for i, exc in sorted(failures)])
        return results

    def _run_dask(self, task, items, results, failures, advance) -> None:
        from distributed import as_completed

        client = self.client
        run = uuid.uuid4().hex[:8]
        name = getattr(task, "__name__", None) or getattr(getattr(task, "func", None), "__name__", "task")
        futures = []
        try:
            futures = [client.submit(_on_worker, task, item, key=f"deepreco-{name}-{run}-{i}", pure=False)
                       for i, item in enumerate(items)]
            index = {f.key: i for i, f in enumerate(futures)}
            # results come with their futures: no second round trip an event
            for future, result in as_completed(futures, loop=client.loop, with_results=True, raise_errors=False):
                i = index[future.key]
                if future.status == "error":
                    failures.append((i, result))
                else:
                    results[i] = result
                future.release()
                if advance is not None:
                    advance()
        finally:
            # Ctrl-C or an error: a running cluster drops the tasks left (a local one closes with the runner).
            if futures:
                try:
                    client.cancel(futures)
                except Exception:  # noqa: BLE001 - the client may already be closing
                    pass


def _kill_workers(cluster) -> None:
    """SIGKILL every worker of a local cluster, quietly: Dask would log each lost connection with its traceback."""
    # tornado logs the client's pending gathers that the lost connections fail, under its own name
    for name in ("distributed", "tornado.application"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    for nanny in list(cluster.workers.values()):
        pid = getattr(nanny, "pid", None)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_events(task: Callable, items: Sequence, workers: int = 1, scheduler: str | None = None,
               progress: bool = False, label: str = "events") -> list:
    """``[task(item) for item in items]`` on ``workers`` local processes or the cluster at ``scheduler``
    (see `EventRunner.run`)."""
    with EventRunner(workers, scheduler, progress) as runner:
        return runner.run(task, items, label)


def _message(exc: BaseException) -> str:
    """One line: a failure's type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 200 else text[:197] + "..."
    if isinstance(exc, DeepRecoError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
