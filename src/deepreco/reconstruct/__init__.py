"""Reconstruction methods, classical or learned, behind one interface.

Every method is a `Method`: parameters in ``__init__``, ``reconstruct(event) -> DataFrame(hit_id, track_id)``
(hits left out belong to no track), and for learned ones ``fit`` / ``save`` / ``load``. Methods are found by
name, so they can be swapped and compared:

>>> from deepreco.generate import particle_gun
>>> from deepreco.simulate import simulate_event
>>> from deepreco.reconstruct import get_method, reconstruct
>>> event = simulate_event(particle_gun(5, seed=1), seed=1, noise_fraction=0.0)  # five muons
>>> tracks = get_method("truth").reconstruct(event)          # the oracle: one track per particle
>>> tracks.columns.tolist(), tracks["track_id"].nunique()
(['hit_id', 'track_id'], 5)
>>> from deepreco.metrics import score_event
>>> score_event(event.truth, reconstruct(event, "truth"))   # the same by name: "dbscan", "ckf", "lstm", "gnn"
1.0
"""

from .base import METHODS, Method, available_methods, get_method, reconstruct, register
from .evaluate import evaluate_method, reconstruct_dataset

# Importing a method's module registers it.
from . import ckf, dbscan, gnn, lstm, truth  # noqa: E402, F401  isort: skip
from ..acts import ckf as _acts_ckf  # noqa: E402, F401  isort: skip  (acts-ckf; ACTS itself loads when it runs)

__all__ = ["METHODS", "Method", "available_methods", "evaluate_method", "get_method", "reconstruct",
           "reconstruct_dataset", "register"]
