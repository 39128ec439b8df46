"""The per-pixel models of HEP.TrkX's tables, one a file, and the names the benchmark knows them by.

Each takes (B, L, *plane) events and returns (B, L, P) logits, one softmax over each plane's P pixels.
``build_model(name, n_layers, plane_shape, size="cpu")`` makes one with the laptop-sized defaults;
``size="seed"`` gives the seed's sizes (e.g. LSTMs of 1024 units).
"""

from __future__ import annotations

from deepreco.errors import DeepRecoError
from deepreco.registry import TOY_MODELS

from .bilstm import BiLSTMClassifier
from .common import PlaneModel
from .conv_autoencoder import ConvAutoencoder3D
from .convnn import ConvNN3D
from .deep_lstm import DeepLSTMClassifier
from .lstm import LSTMClassifier
from .next_layer_lstm import NextLayerLSTM

__all__ = ["MODELS", "BiLSTMClassifier", "ConvAutoencoder3D", "ConvNN3D", "DeepLSTMClassifier", "LSTMClassifier",
           "NextLayerLSTM", "PlaneModel", "build_model"]

MODELS: dict[str, type[PlaneModel]] = {
    "lstm": LSTMClassifier,
    "deep_lstm": DeepLSTMClassifier,
    "bilstm": BiLSTMClassifier,
    "next_layer_lstm": NextLayerLSTM,
    "convnn": ConvNN3D,
    "conv_autoencoder": ConvAutoencoder3D,
}
for _name, _cls in MODELS.items():
    TOY_MODELS.add(_name, _cls)  # a name listed in deepreco.registry


def build_model(name: str, n_layers: int, plane_shape: tuple[int, ...], size: str = "cpu",
                **overrides) -> PlaneModel:
    """A model by name with the ``cpu`` or ``seed`` sizes; keyword ``overrides`` change single settings."""
    if name not in MODELS:
        raise DeepRecoError(f"unknown toy model {name!r}; expected one of {', '.join(MODELS)}")
    if size not in ("cpu", "seed"):
        raise DeepRecoError(f"unknown model size {size!r}; expected cpu or seed")
    cls = MODELS[name]
    kwargs = {**(cls.CPU if size == "cpu" else cls.SEED), **overrides}
    return cls(n_layers, tuple(plane_shape), **kwargs)
