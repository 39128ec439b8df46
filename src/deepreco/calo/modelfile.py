"""Model files: one torch file per trained model, tagged with what it is.

A file holds {"format": "deepreco.calo", "kind": <name>, "config": constructor arguments, "state_dict",
"extra": inference settings and training facts}. Loading checks the tag and the kind, so a model of another
kind (or any other file) is a FormatError, not a crash deep in the network.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..errors import FormatError, MissingFileError

FORMAT = "deepreco.calo"
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "models"


def save_model(model: torch.nn.Module, path: Path, extra: dict | None = None) -> Path:
    """Write atomically (a temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "kind": model.kind, "config": model.config,
            "state_dict": model.state_dict(), "extra": extra or {}}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(blob, tmp)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is for everyone
    os.replace(tmp, path)
    return path


def load_model(path: Path | str, kinds: tuple[str, ...] | None = None) -> tuple[torch.nn.Module, dict]:
    """The model and its ``extra``; ``kinds`` restricts which kinds are accepted. A bare name such as
    ``calo_gravnet`` is looked up among the shipped models."""
    from .models import MODELS

    path = Path(path)
    if not path.exists() and (SHIPPED / f"{path.name}.pt").exists():
        path = SHIPPED / f"{path.name}.pt"
    if not path.exists():
        raise MissingFileError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on a foreign file
        raise FormatError(f"{path}: not a torch model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or blob.get("kind") not in MODELS:
        raise FormatError(f"{path}: not a deepreco calorimeter model")
    if kinds is not None and blob["kind"] not in kinds:
        raise FormatError(f"{path}: a {blob['kind']} model, expected {' or '.join(kinds)}")
    model = MODELS[blob["kind"]](**blob["config"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError:
        raise FormatError(f"{path}: weights do not fit a {blob['kind']} model") from None
    model.eval()
    return model, blob.get("extra", {})
