"""Stopping a command: Ctrl-C and SIGTERM end any command within `GRACE` seconds, and no process outlives it.

Every command starts with `install()`. The first SIGINT or SIGTERM unwinds the command as Ctrl-C does (a
``KeyboardInterrupt``: a training checkpoints, a run over events drops its workers) and arms a deadline kept by
`faulthandler`'s own C thread, which needs no interpreter lock: should the unwinding hang, or the main thread sit in
a long call into compiled code, the process ends `GRACE` seconds after the signal all the same. A second signal
ends it at once. Files are never half-written (`deepreco.io` writes unnamed, then links), so a hard end is safe.

The processes a command starts die with it, even when it is SIGKILLed and has no say: `die_with_parent` asks the
Linux kernel (``prctl(PR_SET_PDEATHSIG)``) to kill a process when its parent ends. The Dask workers of a
`LocalCluster` call it when they start (`dask_setup`, a Dask preload), and so does each process torchrun starts.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
import threading

GRACE = 1.0  # seconds from the first signal to a forced exit: the promise is 2 s, on a loaded machine too
PARENT_ENV = "DEEPRECO_PARENT_PID"  # the process whose death ends a worker (set by whoever starts it)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_stopping: list[int] = []
_installed: list[bool] = []
_deadline_file = None


def arm(signum: int) -> None:
    """A stop was asked for with ``signum``: in a command (`install`), the process ends `GRACE` seconds from now
    at the latest (at once if one was asked for already); elsewhere (the library in a notebook) nothing more.
    Whoever calls this unwinds the command."""
    if not _installed:
        return
    if _stopping:  # a second signal: now
        os._exit(128 + signum)
    _stopping.append(signum)
    global _deadline_file
    if _deadline_file is None:  # faulthandler writes the stack of each thread where the deadline finds them
        # (the process's own stderr: a command may have sys.stderr redirected to a buffer, which has no file)
        _deadline_file = sys.__stderr__ if os.environ.get("DEEPRECO_DEBUG") else open(os.devnull, "w")  # noqa: SIM115
    faulthandler.dump_traceback_later(GRACE, exit=True, file=_deadline_file)


def _on_signal(signum, frame) -> None:
    arm(signum)
    raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM unwind this command as Ctrl-C does, and end it `GRACE` seconds later at the latest.
    Under torchrun, this process also dies with torchrun."""
    if threading.current_thread() is not threading.main_thread():
        return  # a command called from a thread (tests): the caller owns the signals
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    _installed.append(True)
    if "TORCHELASTIC_RUN_ID" in os.environ:  # started by torchrun: its agent is the parent
        die_with_parent(os.getppid())


def interrupted() -> int | None:
    """The signal that is stopping this command, if one is."""
    return _stopping[0] if _stopping else None


def die_with_parent(parent: int) -> bool:
    """The kernel kills this process (SIGKILL) when its parent, process ``parent``, ends; if it has already
    ended, this process exits now. False where the kernel cannot (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent ended before the request was made: nobody will send the signal
        os._exit(1)
    return True


def dask_setup(worker) -> None:
    """Dask preload (``preload=["deepreco.signals"]``): a worker process of a `LocalCluster` dies with the
    process that started the cluster, whose pid is in ``DEEPRECO_PARENT_PID``."""
    parent = os.environ.get(PARENT_ENV)
    if parent:
        die_with_parent(int(parent))
