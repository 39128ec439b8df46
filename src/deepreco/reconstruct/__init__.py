"""Reconstruction methods, classical or learned, behind one interface.

Every method is a `Method`: parameters in ``__init__``, ``reconstruct(event) -> DataFrame(hit_id, track_id)``
(hits left out belong to no track), and for learned ones ``fit`` / ``save`` / ``load``. Methods are found by
name, so they can be swapped and compared:

>>> from deepreco.reconstruct import get_method
>>> tracks = get_method("truth").reconstruct(event)          # doctest: +SKIP
"""

from .base import METHODS, Method, available_methods, get_method, reconstruct, register
from .evaluate import evaluate_method, reconstruct_dataset

# Importing a method's module registers it.
from . import ckf, dbscan, gnn, lstm, truth  # noqa: E402, F401  isort: skip
from ..acts import ckf as _acts_ckf  # noqa: E402, F401  isort: skip  (acts-ckf; ACTS itself loads when it runs)

__all__ = ["METHODS", "Method", "available_methods", "evaluate_method", "get_method", "reconstruct",
           "reconstruct_dataset", "register"]
