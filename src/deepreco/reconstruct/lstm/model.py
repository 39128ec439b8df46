"""The track-extending LSTMs of seed 004 and their model file.

Each model reads a (B, 10, 8) sequence, the five seed hits in (phi, r, z, z/r) followed by five zeroed steps,
and writes (B, 10, 4): the five seed hits again and the next five (the seed's "y0 ~ y9"). Per step t,

    stacked LSTM:  h_t^(l) = LSTM^(l)(h_t^(l-1), h_{t-1}^(l)),  y_t = W h_t^(L) + b
    Bi-LSTM:       h_t = [LSTM_fwd(x_<=t), LSTM_bwd(x_>=t)],      y_t = W h_t + b

The seed's sizes are the presets ``lstm-1024``, ``lstm-2048``, ``lstm-256-512-1024`` and ``bilstm-seed``; the
defaults are small enough to train and run on a laptop CPU.

Inputs per step are the four features and their differences to the last seed hit; outputs are differences to
the last seed hit (see `features.Normaliser`).

A model file (`deepreco.modelfile`, kind ``lstm``) holds the architecture, the feature normalisation, the
weights, and the settings and record of the training, so that `load_model` needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import FormatError
from ...modelfile import ModelFile, load, save, shipped
from ...registry import LSTM_MODELS
from .features import N_FEATURES, N_INPUTS, Normaliser

KIND = "lstm"
ARCHITECTURES = ("lstm", "bilstm")
DEFAULT_HIDDEN = {"lstm": (64, 64), "bilstm": (48, 48)}
PRESETS = {  # the seed's sizes
    "lstm-1024": ("lstm", (1024,)),
    "lstm-2048": ("lstm", (2048,)),
    "lstm-256-512-1024": ("lstm", (256, 512, 1024)),
    "bilstm-seed": ("bilstm", (512,)),
}
for _name in (*ARCHITECTURES, *PRESETS):
    LSTM_MODELS.add(_name, PRESETS.get(_name, (_name, None)))  # a name listed in deepreco.registry


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


def build_model(model: str = "lstm", hidden: tuple[int, ...] | None = None, n_inputs: int = N_INPUTS) -> TrackLSTM:
    """``model`` is ``lstm``, ``bilstm`` or a preset of the seed's sizes; ``hidden`` (None: the model's sizes)
    replaces the sizes, so that a test can train a preset's kind of network at a small size; ``n_inputs`` per
    step (`features.INPUT_SETS`)."""
    if model in PRESETS:
        model, sizes = PRESETS[model]
        hidden = hidden or sizes
    if model not in ARCHITECTURES:
        raise FormatError(f"unknown LSTM model {model!r}; expected one of {', '.join((*ARCHITECTURES, *PRESETS))}")
    hidden = tuple(hidden) if hidden else DEFAULT_HIDDEN[model]
    if not hidden or min(hidden) < 1:
        raise FormatError(f"hidden sizes must be positive integers, got {hidden}")
    return TrackLSTM(hidden, bidirectional=model == "bilstm", n_inputs=n_inputs)


def architecture(net: TrackLSTM) -> dict:
    out = {"model": "bilstm" if net.bidirectional else "lstm", "hidden": list(net.hidden)}
    n_inputs = net.layers[0].input_size
    if n_inputs != N_INPUTS:  # files of the seed's inputs stay as they were
        out["n_inputs"] = n_inputs
    return out


def model_file(net: TrackLSTM, norm: Normaliser, record: dict | None = None,
               settings: dict | None = None) -> ModelFile:
    """The model file (kind ``lstm``) of a network and its feature normalisation."""
    return ModelFile(KIND, {"net": net.state_dict()}, {"architecture": architecture(net),
                                                       "normalisation": norm.to_dict()},
                     settings=dict(settings or {}), record=dict(record or {}))


def save_model(net: TrackLSTM, norm: Normaliser, path, info: dict | None = None,
               settings: dict | None = None) -> Path:
    """Write the model atomically; ``info`` is its training record, ``settings`` the training settings."""
    return save(model_file(net, norm, info, settings), path)


def shipped_model_path(direction: str = "outward") -> Path:
    """The model shipped with deepreco that extends tracks outward, the one that completes them inward
    (``inward``), or a member of the shipped ensemble (``member1`` to ``member3``)."""
    if direction.startswith("member"):
        return shipped(f"lstm_tracks_{direction}")
    return shipped("lstm_tracks" if direction == "outward" else "lstm_tracks_inward")


def load_model(path=None) -> tuple[TrackLSTM, Normaliser, dict]:
    """(model in eval mode, normalisation, training record) from a model file; None: the model shipped with
    deepreco. One-line `MissingFileError` / `FormatError` (see `deepreco.modelfile.load`)."""
    mf = load(shipped_model_path() if path is None else path, KIND)
    try:
        arch = mf.config["architecture"]
        net = build_model(arch["model"], tuple(arch["hidden"]), int(arch.get("n_inputs", N_INPUTS)))
        norm = Normaliser(**mf.config["normalisation"])
        if len(norm.in_mean) != net.layers[0].input_size:
            raise ValueError(f"{len(norm.in_mean)} normalised inputs for a network of {net.layers[0].input_size}")
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{mf.path}: lstm model file is incomplete ({type(exc).__name__} {exc})") from None
    return mf.load_into("net", net), norm, dict(mf.record)
