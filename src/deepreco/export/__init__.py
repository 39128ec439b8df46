"""Every network out of the Python process: ONNX export checked against PyTorch (`onnx`), the networks by name
(`networks`), the in-graph neighbour search of the calorimeter networks (`knn`), and the one place that reads
model files (`loaders`); a Triton model repository of them (`triton`)."""

from .networks import NETWORKS, get_network
from .onnx import export_networks, export_one
from .triton import write_repository

__all__ = ["NETWORKS", "export_networks", "export_one", "get_network", "write_repository"]
