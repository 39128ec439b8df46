"""The calorimeter networks, one a file: GravNet and DGCNN (DynamicEdgeConv) with object-condensation
heads, and the Dynamic Reduction Network for energy regression."""

from .drn import DRN
from .edgeconv import DynamicEdgeConv, EdgeConvOC
from .gravnet import GravNetConv, GravNetOC

MODELS = {"gravnet": GravNetOC, "edgeconv": EdgeConvOC, "drn": DRN}

__all__ = ["DRN", "MODELS", "DynamicEdgeConv", "EdgeConvOC", "GravNetConv", "GravNetOC"]
