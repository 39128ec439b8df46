"""Progress inside one long call: the library names its stages, whoever listens shows them.

One 100k-hit event takes a minute to reconstruct, so a bar that counts events sits at 0 % all that time. The
methods mark their stages instead, and the command line listens and draws the stage in hand under its bar:

>>> from deepreco.progress import listen, stage
>>> seen = []
>>> with listen(lambda name, total: lambda n=1: seen.append((name, n))):
...     with stage("following", total=2) as advance:
...         advance()
...         advance()
>>> seen
[('following', 1), ('following', 1)]

With nobody listening a stage costs a function call and prints nothing: the library needs no terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# listener(name, total) -> advance(n=1); total None when the stage's size is not known
Listener = Callable[[str, "int | None"], Callable[..., None]]

_LISTENER: ContextVar[Listener | None] = ContextVar("deepreco_progress", default=None)


def _ignore(n: int = 1) -> None:
    pass


@contextmanager
def stage(name: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """Mark a stage of the work (``graph``, ``filter``, ...); yields ``advance(n=1)`` for its ``total`` steps.

    ``advance`` may be called from any thread (the chunks of a thread pool)."""
    listener = _LISTENER.get()
    yield _ignore if listener is None else listener(name, total)


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Send the stages marked in this context (this thread) to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
