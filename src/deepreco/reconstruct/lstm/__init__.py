"""Seed 004's track finder (Finnie & Finnie, TrackML 2018): DBSCAN seeds, an LSTM that predicts each track's
next hits in (phi, r, z, z/r), and a nearest-neighbour fit of the predictions to real hits, layer by layer.

Stages, one module each: `features` (hit features, training windows), `seeding` (seeds and their quality),
`model` (the LSTMs and their file), `train` (`train_lstm`), `assign` (k-nearest-neighbour fitting per layer),
`method` (the ``lstm`` reconstruction method). Importing this package registers the method; torch is imported
only when a model is built, loaded or trained.
"""

from .method import LSTMTracks
from .seeding import seed_quality, true_seeds

__all__ = ["LSTMTracks", "build_model", "load_model", "save_model", "seed_quality", "train_lstm", "true_seeds"]


def __getattr__(name):
    if name in ("build_model", "load_model", "save_model"):
        from . import model

        return getattr(model, name)
    if name == "train_lstm":
        from .train import train_lstm

        return train_lstm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
