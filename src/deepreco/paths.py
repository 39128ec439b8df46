"""Is an input there? Checked before anything heavy is imported, so that a mistyped path is a one-line error at
once, not after a second of importing pandas and torch. The messages are those the readers give
(`deepreco.io`, `deepreco.modelfile`): whichever finds the fault first, the user reads the same line. And the
folders a command writes to, made so that a stopped command leaves none of them empty behind (`made_folder`).

Only the standard library here: the command line calls it first thing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import MissingFileError


def check_event(path) -> None:
    """An event (any of its files or its prefix, ``dir/event000001000``), or a folder or zip of events."""
    if path is None:
        return
    path = Path(path)
    if path.exists():
        return
    # a prefix names the files beside it that start with it and a dash (deepreco.io.read_event)
    if path.parent.is_dir() and any(name.startswith(path.name + "-") for name in os.listdir(path.parent)):
        return
    raise MissingFileError(f"{path}: no such file or event prefix")


def check_file(path, what: str = "file") -> None:
    """A file: ``what`` names it in the message ("model file", ...)."""
    if path is not None and not Path(path).is_file():
        raise MissingFileError(f"{path}: no such {what}")


def check_exists(path) -> None:
    """A file or a folder (a dataset, a model repository)."""
    if path is not None and not Path(path).exists():
        raise MissingFileError(f"{path}: no such file or directory")


@contextmanager
def made_folder(folder) -> Iterator[Path]:
    """Make ``folder`` and the folders above it that are missing; should the block raise (an error, Ctrl-C),
    remove those of them that are still empty, deepest first: a command stopped before writing anything leaves
    the file system as it found it (``--out runs/new/tracks`` leaves no ``runs/new``)."""
    folder = Path(folder)
    missing = []
    path = folder
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for path in missing:
            try:
                path.rmdir()  # only an empty folder goes
            except OSError:
                break
        raise
