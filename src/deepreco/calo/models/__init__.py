"""The calorimeter networks, one a file: GravNet, GarNet and DGCNN (DynamicEdgeConv) with object-condensation
heads, and the Dynamic Reduction Network for energy regression."""

from ...registry import CALO_NETWORKS
from .drn import DRN
from .edgeconv import DynamicEdgeConv, EdgeConvOC
from .garnet import GarNetConv, GarNetOC
from .gravnet import GravNetConv, GravNetOC

MODELS = {"gravnet": GravNetOC, "edgeconv": EdgeConvOC, "garnet": GarNetOC, "drn": DRN}
for _name, _cls in MODELS.items():
    CALO_NETWORKS.add(_name, _cls)  # a name listed in deepreco.registry

__all__ = ["DRN", "MODELS", "DynamicEdgeConv", "EdgeConvOC", "GarNetConv", "GarNetOC", "GravNetConv", "GravNetOC"]
