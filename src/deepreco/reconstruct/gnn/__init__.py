"""Graph-network track finding, the idea seed 001 ends on, built as HEP.TrkX and Exa.TrkX did.

Stages, one module each: `truth` (the true graph of an event), `module_map` (graph construction from the
module pairs true tracks connect), `features` (node and edge inputs), `model` (edge filter, interaction
network, model file), `build` (tracks from scored edges), `train` (`train_gnn`, on the one trainer), `metric`
(the metric-learning graph), `method` (the ``gnn`` reconstruction method). Importing this package registers
the method; torch is imported only when a model is loaded or trained.
"""

from .build import build_tracks
from .method import GNNTracks
from .module_map import ModuleMap
from .truth import true_edges

__all__ = ["GNNTracks", "ModuleMap", "build_tracks", "true_edges", "train_gnn"]


def __getattr__(name):
    if name == "train_gnn":
        from .train import train_gnn

        return train_gnn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
