"""Every network out of the Python process: ONNX export checked against PyTorch (`onnx`), the networks by name
(`networks`), the in-graph neighbour search of the calorimeter networks (`knn`), and the one place that reads
model files (`loaders`)."""

from .networks import NETWORKS, get_network
from .onnx import export_networks, export_one

__all__ = ["NETWORKS", "export_networks", "export_one", "get_network"]
