"""The track-extending LSTMs of seed 004 and their model file.

Each model reads a (B, 10, 8) sequence, the five seed hits in (phi, r, z, z/r) followed by five zeroed steps,
and writes (B, 10, 4): the five seed hits again and the next five (the seed's "y0 ~ y9"). Per step t,

    stacked LSTM:  h_t^(l) = LSTM^(l)(h_t^(l-1), h_{t-1}^(l)),  y_t = W h_t^(L) + b
    Bi-LSTM:       h_t = [LSTM_fwd(x_<=t), LSTM_bwd(x_>=t)],      y_t = W h_t + b

The seed's sizes are the presets ``lstm-1024``, ``lstm-2048``, ``lstm-256-512-1024`` and ``bilstm-seed``; the
defaults are small enough to train and run on a laptop CPU.

Inputs per step are the four features and their differences to the last seed hit; outputs are differences to
the last seed hit (see `features.Normaliser`).

A model file is a `torch.save` dictionary holding its kind, architecture, feature normalisation and weights,
so that `load_model` needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import FormatError
from ..modelfile import atomic_save, read_payload
from .features import N_FEATURES, N_INPUTS, Normaliser

KIND = "deepreco.lstm-track-extender"
VERSION = 2
ARCHITECTURES = ("lstm", "bilstm")
DEFAULT_HIDDEN = {"lstm": (64, 64), "bilstm": (48, 48)}
PRESETS = {  # the seed's sizes
    "lstm-1024": ("lstm", (1024,)),
    "lstm-2048": ("lstm", (2048,)),
    "lstm-256-512-1024": ("lstm", (256, 512, 1024)),
    "bilstm-seed": ("bilstm", (512,)),
}


class TrackLSTM(nn.Module):
    """Stacked (``bidirectional=False``) or bidirectional LSTM layers of sizes ``hidden``, then a linear map."""

    def __init__(self, hidden: tuple[int, ...] = (64, 64), bidirectional: bool = False,
                 n_inputs: int = N_INPUTS, n_outputs: int = N_FEATURES):
        super().__init__()
        self.hidden = tuple(int(h) for h in hidden)
        self.bidirectional = bool(bidirectional)
        width = 2 if self.bidirectional else 1
        sizes = (n_inputs, *(h * width for h in self.hidden))
        self.layers = nn.ModuleList(nn.LSTM(sizes[i], h, batch_first=True, bidirectional=self.bidirectional)
                                    for i, h in enumerate(self.hidden))
        self.head = nn.Linear(sizes[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x, _ = layer(x)
        return self.head(x)


def build_model(model: str = "lstm", hidden: tuple[int, ...] | None = None) -> TrackLSTM:
    """``model`` is ``lstm``, ``bilstm`` or a preset of the seed's sizes (then ``hidden`` is ignored)."""
    if model in PRESETS:
        model, hidden = PRESETS[model]
    if model not in ARCHITECTURES:
        raise FormatError(f"unknown LSTM model {model!r}; expected one of {', '.join((*ARCHITECTURES, *PRESETS))}")
    hidden = tuple(hidden) if hidden else DEFAULT_HIDDEN[model]
    if not hidden or min(hidden) < 1:
        raise FormatError(f"hidden sizes must be positive integers, got {hidden}")
    return TrackLSTM(hidden, bidirectional=model == "bilstm")


def architecture(net: TrackLSTM) -> dict:
    return {"model": "bilstm" if net.bidirectional else "lstm", "hidden": list(net.hidden)}


def model_payload(net: TrackLSTM, norm: Normaliser, info: dict | None = None) -> dict:
    return {"kind": KIND, "version": VERSION, "architecture": architecture(net), "normalisation": norm.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "info": dict(info or {})}


def save_model(net: TrackLSTM, norm: Normaliser, path, info: dict | None = None) -> Path:
    return atomic_save(model_payload(net, norm, info), path)


def shipped_model_path(direction: str = "outward") -> Path:
    """The model shipped with deepreco that extends tracks outward, or the one that completes them inward."""
    from importlib import resources

    name = "lstm_tracks.pt" if direction == "outward" else "lstm_tracks_inward.pt"
    return Path(str(resources.files("deepreco") / "data" / "models" / name))


def load_model(path=None) -> tuple[TrackLSTM, Normaliser, dict]:
    """(model in eval mode, normalisation, info) from a model file; None: the model shipped with deepreco.

    Raises `MissingFileError` when the file is not there and `FormatError` (one line, naming the file) when it
    is not a torch file, is corrupt, or holds another kind of model.
    """
    path = shipped_model_path() if path is None else Path(path)
    payload = read_payload(path, "LSTM model")
    if not isinstance(payload, dict) or "kind" not in payload:
        raise FormatError(f"{path}: not a deepreco LSTM track model (no model kind in the file)")
    if payload["kind"] != KIND:
        raise FormatError(f"{path}: holds a {payload['kind']!r} model, not an LSTM track model ({KIND})")
    if payload.get("version") != VERSION:
        raise FormatError(f"{path}: LSTM model file version {payload.get('version')}, expected {VERSION}")
    try:
        arch = payload["architecture"]
        net = build_model(arch["model"], tuple(arch["hidden"]))
        net.load_state_dict(payload["state_dict"])
        norm = Normaliser(**payload["normalisation"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: LSTM model file is incomplete or inconsistent ({first[:120]})") from None
    net.eval()
    return net, norm, dict(payload.get("info", {}))
