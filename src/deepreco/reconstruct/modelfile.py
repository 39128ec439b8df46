"""What every model file of the track finders shares: atomic writes, reading with one-line errors, and a
per-process cache of loaded models."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import FormatError, MissingFileError

_CACHE: dict[str, object] = {}


def atomic_save(payload: dict, path) -> Path:
    """``torch.save`` to a temporary name beside ``path``, then rename: the file is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_payload(path: Path, what: str):
    """The object a torch file holds (tensors and plain types only); `MissingFileError` ("no such ``what``
    file") when it is not there, `FormatError` naming the file when it is not a readable torch file."""
    if not path.is_file():
        raise MissingFileError(f"{path}: no such {what} file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError,
            struct.error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: not a readable model file ({first[:120]})") from None


def cached(load: Callable, path=None):
    """``load(path)``, once per process for each file (None: the shipped one); a file written again since
    (a model retrained in place) is read again."""
    key = f"{getattr(load, '__qualname__', load)}:{path}"
    if path is not None and Path(path).is_file():
        stat = Path(path).stat()
        key += f"@{stat.st_mtime_ns}:{stat.st_size}"
    if key not in _CACHE:
        _CACHE[key] = load(path)
    return _CACHE[key]
