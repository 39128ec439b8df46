"""One model-file format for every learned model of deepreco.

A model file is a ``torch.save`` dictionary of tensors and plain types only, so that it loads with
``torch.load(weights_only=True)`` (no code runs while reading a file from elsewhere)::

    format    "deepreco.model"
    version   1
    kind      what it holds: "lstm", "gnn", "embedding", "deepcore", "calo-gravnet", "calo-edgeconv", "calo-garnet",
              "calo-drn", and the HEP.TrkX toys' "toy-<model>" ("toy-lstm", ..., "toy-track-params")
    config    what the loader needs besides weights: constructor arguments per network, inference settings
              (thresholds, radius, normalisation constants)
    settings  the YAML settings of the training that made it (`deepreco train KIND --config` remakes it)
    record    the training record: losses per epoch, seconds, threads, data, commit
    weights   {network name: state_dict}
    tensors   {name: tensor} a kind needs besides networks (the gnn's module map)

Writes are atomic (a temporary name, then rename); reads give one-line errors (`MissingFileError`,
`FormatError`) naming the file, and for a file of another kind both kinds.

>>> from deepreco.modelfile import load, shipped
>>> model = load(shipped("lstm_tracks"), "lstm")            # the seed-004 LSTM shipped with deepreco
>>> model.kind, sorted(model.weights)
('lstm', ['net'])
>>> load(shipped("lstm_tracks"), "gnn")                     # doctest: +ELLIPSIS
Traceback (most recent call last):
deepreco.errors.FormatError: ...lstm_tracks.pt: a model of kind 'lstm', expected kind 'gnn'
"""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import FormatError, MissingFileError
from .paths import made_folder

FORMAT = "deepreco.model"
VERSION = 1
SHIPPED = Path(__file__).resolve().parent / "data" / "models"

_CACHE: dict[str, object] = {}


@dataclass
class ModelFile:
    """The parts of a model file (see the module's docstring)."""

    kind: str
    weights: dict[str, dict[str, torch.Tensor]]
    config: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    path: Path | None = None

    def payload(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "kind": self.kind, "config": _plain(self.config),
                "settings": _plain(self.settings), "record": _plain(self.record),
                "weights": {name: {k: v.detach().cpu() for k, v in sd.items()} for name, sd in self.weights.items()},
                "tensors": {k: v.detach().cpu() for k, v in self.tensors.items()}}

    def load_into(self, name: str, net: torch.nn.Module) -> torch.nn.Module:
        """``net`` with the weights ``name`` of this file, in eval mode; `FormatError` when they do not fit."""
        try:
            net.load_state_dict(self.weights[name])
        except (KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FormatError(f"{self.path}: {self.kind} weights {name!r} do not fit the network ({first[:120]})") \
                from None
        return net.eval()


def _plain(value):
    """``value`` with tuples as lists and numpy, path or other scalars as Python ones: what weights_only loading
    takes."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, torch.Tensor):
        return value
    for kind in (bool, int, float, str):  # subclasses (numpy's float64, torch's version string) as the base type
        if isinstance(value, kind):
            return kind(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return str(value)


def atomic_save(payload, path) -> Path:
    """``torch.save`` to a temporary name beside ``path``, then rename: the file is whole or absent."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with made_folder(path.parent):
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def save(model: ModelFile, path) -> Path:
    """Write ``model`` to ``path`` atomically."""
    return atomic_save(model.payload(), path)


def read_torch(path) -> object:
    """What a torch file holds (tensors and plain types only); one-line errors for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such model file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError,
            struct.error, AttributeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: not a readable model file ({first[:120]})") from None


def load(path, kind: str | tuple[str, ...]) -> ModelFile:
    """The model file at ``path``, which must hold a model of ``kind`` (or one of several kinds).

    Raises `MissingFileError` when there is no such file and `FormatError` (one line, naming the file) when it
    is not a deepreco model file, is of another version, or holds another kind (both kinds named).
    """
    path = Path(path)
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    payload = read_torch(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FormatError(f"{path}: not a deepreco model file (expected kind {' or '.join(repr(k) for k in kinds)})")
    if payload.get("version") != VERSION:
        raise FormatError(f"{path}: model file version {payload.get('version')}, this deepreco reads {VERSION}")
    if payload.get("kind") not in kinds:
        raise FormatError(f"{path}: a model of kind {payload.get('kind')!r}, expected kind "
                          f"{' or '.join(repr(k) for k in kinds)}")
    try:
        return ModelFile(kind=payload["kind"], weights=dict(payload["weights"]), config=dict(payload["config"]),
                         settings=dict(payload.get("settings") or {}), record=dict(payload.get("record") or {}),
                         tensors=dict(payload.get("tensors") or {}), path=path)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: {payload.get('kind')} model file is incomplete ({type(exc).__name__} {exc})") \
            from None


def shipped(name: str) -> Path:
    """The path of a model shipped with deepreco (``lstm_tracks``, ``gnn_tracks``, ``deepcore``, ...)."""
    return SHIPPED / f"{name}.pt"


def cached(load: Callable, path=None):
    """``load(path)``, once per process for each file (None: the shipped one); a file written again since
    (a model retrained in place) is read again."""
    key = f"{getattr(load, '__module__', '')}.{getattr(load, '__qualname__', load)}:{path}"
    if path is not None and Path(path).is_file():
        stat = Path(path).stat()
        key += f"@{stat.st_mtime_ns}:{stat.st_size}"
    if key not in _CACHE:
        _CACHE[key] = load(path)
    return _CACHE[key]
