"""Triton Python-backend models: the steps of the gnn and gravnet methods that are not networks, and one model
per method that makes the whole method one request (BLS: it calls the exported networks of the same
repository through Triton's business-logic scripting).

Each is ``REPO/NAME/config.pbtxt`` (``backend: "python"``), ``REPO/NAME/1/model.py`` (two lines: the class
Triton looks for, `triton_model` of this module) and ``REPO/NAME/1/model.pt`` (the model file the export was
given: the gnn's module map and thresholds, GravNet's t_beta and t_d). The server's Python needs deepreco
installed (``pip install deepreco``, torch included); Triton's ``triton_python_backend_utils`` is imported
only when a request runs, so the models are imported and run outside Triton with a stand-in of it (the tests).

The tables travel as float64 matrices, their columns in the order of `PY_MODELS`' inputs: TrackML's float32
positions and integer ids are exact in float64. A method's model answers what the in-process method gives,
as the client of ``--server`` does: the networks run in the server's onnxruntime, the rest in the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DeepRecoError
from ..registry import PYTHON_MODELS
from .client import RemoteNetwork
from .networks import Tensor, get_network

TRACK_HITS = ("hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id")
TRACK_CELLS = ("hit_id", "ch0", "ch1", "value")
CALO_HITS = ("hit_id", "x", "y", "z", "layer", "energy", "time")
CLUSTER_COLUMNS = ("cluster_id", "energy", "kind", "n_hits", "x", "y", "z")
T_HITS = Tensor("hits", "float64", ("hits", len(TRACK_HITS)))
T_CELLS = Tensor("cells", "float64", ("cells", len(TRACK_CELLS)))
T_CALO_HITS = Tensor("hits", "float64", ("hits", len(CALO_HITS)))
T_CLUSTER_OUT = (Tensor("cluster_id", "int64", ("hits",)), Tensor("hit_class", "int64", ("hits",)),
                 Tensor("clusters", "float64", ("clusters", len(CLUSTER_COLUMNS))))


@dataclass(frozen=True)
class PyModel:
    name: str
    what: str
    kind: str  # the model file it reads: "gnn" or "gravnet"
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    run: Callable  # (method, {input: array}, networks) -> {output: array}
    networks: tuple[str, ...] = ()  # the exported networks it calls (BLS)


# ---- tables from tensors -----------------------------------------------------------------------------------------
def _table(array: np.ndarray, columns: tuple[str, ...], what: str):
    import pandas as pd

    a = np.asarray(array)
    if a.ndim != 2 or a.shape[1] != len(columns):
        raise DeepRecoError(f"{what} must be (rows, {len(columns)}): {', '.join(columns)}; got shape {a.shape}")
    return pd.DataFrame({c: a[:, i] for i, c in enumerate(columns)})


def _tracking_event(arrays: dict, cells: bool = True):
    from ..event import Event

    return Event(hits=_table(arrays["hits"], TRACK_HITS, "hits"),
                 cells=_table(arrays["cells"], TRACK_CELLS, "cells") if cells else None)


def _calo_event(arrays: dict):
    from ..calo.event import CaloEvent

    hits = _table(arrays["hits"], CALO_HITS, "hits")
    return CaloEvent(hits=hits.astype({"hit_id": np.int64, "layer": np.int64}))


# ---- the steps --------------------------------------------------------------------------------------------------
def _gnn_graph(method, arrays, networks):
    """Module-map graph and the networks' inputs."""
    import torch

    from ..reconstruct.gnn.features import edge_features, node_features
    from ..reconstruct.gnn.method import cached_model
    from ..reconstruct.gnn.module_map import hit_coordinates

    event = _tracking_event(arrays)
    edges = cached_model(method.model).module_map.build(event, threads=torch.get_num_threads())
    x = node_features(event)
    coords = hit_coordinates(event.hits[["x", "y", "z"]].to_numpy(np.float64))
    return {"x": x, "edge_attr": edge_features(coords, x, edges), "edges": edges.astype(np.int64)}


def _gnn_tracks(method, arrays, networks):
    """Tracks from the network's scores of the filtered edges (and the reserve the bridging uses): the track
    building and the Kalman filter after it, as the method does (`GNNTracks.tracks`)."""
    event = _tracking_event(arrays, cells=False)
    return {"track_id": method.tracks(event, arrays["edges"], arrays["scores"], arrays["reserve"])}


def _gnn(method, arrays, networks):
    """The whole gnn method; its two networks by BLS."""
    import pandas as pd

    event = _tracking_event(arrays)
    method._remote = networks
    tracks = method.reconstruct(event)
    ids = pd.Series(tracks["track_id"].to_numpy(np.int64), index=tracks["hit_id"].to_numpy(np.int64))
    return {"track_id": ids.reindex(event.hits["hit_id"].to_numpy(np.int64)).fillna(-1).to_numpy(np.int64)}


def _cluster_outputs(hit_table, clusters) -> dict:
    table = np.zeros((len(clusters), len(CLUSTER_COLUMNS)))
    for i, c in enumerate(CLUSTER_COLUMNS):
        table[:, i] = clusters[c].to_numpy(np.float64)
    return {"cluster_id": hit_table["cluster_id"].to_numpy(np.int64),
            "hit_class": hit_table["hit_class"].to_numpy(np.int64), "clusters": table}


def _condensation(method, arrays, networks):
    """Clusters from the condensation network's outputs (GravNet's, served by its ONNX model)."""
    import dataclasses

    import torch

    out = {k: torch.from_numpy(np.asarray(arrays[k], np.float32)) for k in ("beta", "coords", "energy", "logits")}
    given = dataclasses.replace(method, model=lambda x: out)  # the condensation of the method, on these outputs
    return _cluster_outputs(*given.reconstruct(_calo_event(arrays)))


def _gravnet(method, arrays, networks):
    """The whole gravnet method; its network by BLS."""
    import dataclasses

    served = dataclasses.replace(method, model=networks["calo-gravnet"])
    return _cluster_outputs(*served.reconstruct(_calo_event(arrays)))


OC = tuple(Tensor(n, "float32", d) for n, d in (("beta", ("hits",)), ("coords", ("hits", 3)),
                                                 ("energy", ("hits",)), ("logits", ("hits", 4))))
PY_MODELS: dict[str, PyModel] = {m.name: m for m in (
    PyModel("gnn-graph", "gnn module-map graph: hits and cells in, the networks' inputs out", "gnn",
            (T_HITS, T_CELLS), (Tensor("x", "float32", ("hits", 8)), Tensor("edge_attr", "float32", ("edges", 9)),
                                Tensor("edges", "int64", (2, "edges"))), _gnn_graph),
    PyModel("gnn-tracks", "gnn track building and Kalman filter: the network's scores of the filtered edges in, "
            "a track per hit out",
            "gnn", (T_HITS, Tensor("edges", "int64", (2, "edges")), Tensor("scores", "float32", ("edges",)),
                    Tensor("reserve", "int64", (2, "reserve"))), (Tensor("track_id", "int64", ("hits",)),),
            _gnn_tracks),
    PyModel("gnn", "the whole gnn method in one request (BLS: gnn-filter and gnn-network)", "gnn",
            (T_HITS, T_CELLS), (Tensor("track_id", "int64", ("hits",)),), _gnn, ("gnn-filter", "gnn-network")),
    PyModel("calo-condensation", "condensation clustering from GravNet's outputs", "gravnet",
            (T_CALO_HITS, *OC), T_CLUSTER_OUT, _condensation),
    PyModel("gravnet", "the whole gravnet method in one request (BLS: calo-gravnet)", "gravnet",
            (T_CALO_HITS,), T_CLUSTER_OUT, _gravnet, ("calo-gravnet",)),
)}
for _model in PY_MODELS.values():
    PYTHON_MODELS.add(_model.name, _model)  # a name listed in deepreco.registry


def _method(model: PyModel, path: Path):
    """The in-process method whose steps a Python model runs, with the model file ``path``."""
    if model.kind == "gnn":
        from ..reconstruct.gnn.method import GNNTracks

        return GNNTracks(model=path)
    from ..calo.methods import GravNetClustering, OCClustering

    method = GravNetClustering(model=path)
    return OCClustering(method.model, method.t_beta, method.t_d, method.name, method.geometry)


# ---- the Triton side ----------------------------------------------------------------------------------------------
class _BLSNetwork(RemoteNetwork):
    """An exported network of the same Triton server, called like `deepreco.export.client.RemoteNetwork`
    (``run`` on arrays; called with tensors it gives what the torch module gives), through a BLS request."""

    def __init__(self, name: str):
        self.name, self.spec, self.url, self.address, self.timeout, self._client = \
            name, get_network(name), "bls", "bls", None, None

    def run(self, *arrays):
        import triton_python_backend_utils as pb_utils

        tensors = [pb_utils.Tensor(t.name, np.ascontiguousarray(a, dtype=t.dtype))
                   for t, a in zip(self.spec.inputs, arrays, strict=True)]
        response = pb_utils.InferenceRequest(model_name=self.name, inputs=tensors,
                                             requested_output_names=[t.name for t in self.spec.outputs]).exec()
        if response.has_error():
            raise DeepRecoError(f"network {self.name}: {response.error().message()}")
        return [np.array(pb_utils.get_output_tensor_by_name(response, t.name).as_numpy())
                for t in self.spec.outputs]


def triton_model(name: str, model_py: str) -> type:
    """The ``TritonPythonModel`` class of the Python-backend model ``name``, whose ``model.py`` is ``model_py``
    (its model file is ``model.pt`` beside it)."""
    spec = PY_MODELS[name]

    class TritonPythonModel:
        def initialize(self, args):
            self.method = _method(spec, Path(model_py).with_name("model.pt"))
            self.networks = {n: _BLSNetwork(n) for n in spec.networks}

        def execute(self, requests):
            import triton_python_backend_utils as pb_utils

            responses = []
            for request in requests:
                try:
                    arrays = {}
                    for t in spec.inputs:
                        tensor = pb_utils.get_input_tensor_by_name(request, t.name)
                        if tensor is None:
                            raise DeepRecoError(f"model {spec.name}: input {t.name} is missing")
                        arrays[t.name] = tensor.as_numpy()
                    out = spec.run(self.method, arrays, self.networks)
                    responses.append(pb_utils.InferenceResponse(output_tensors=[
                        pb_utils.Tensor(t.name, np.ascontiguousarray(out[t.name], dtype=t.dtype))
                        for t in spec.outputs]))
                except (DeepRecoError, ValueError, KeyError) as exc:  # a bad request: its error, the next one runs
                    responses.append(pb_utils.InferenceResponse(output_tensors=[],
                                                                error=pb_utils.TritonError(str(exc))))
            return responses

        def finalize(self):
            self.method = None

    TritonPythonModel.__name__ = TritonPythonModel.__qualname__ = "TritonPythonModel"
    return TritonPythonModel


# ---- the calorimeter networks with the in-process neighbour search (export --knn tree) -----------------------------
TREE_NETWORKS = ("calo-gravnet", "calo-edgeconv", "calo-drn")  # the networks that search neighbours mid-network
KNN_CHOICES = ("auto", "graph", "tree")


def resolve_knn(knn: str) -> str:
    """``auto``: ``graph`` where torch sees a CUDA GPU (the exact search in the ONNX graph is n^2 work, a GPU's),
    ``tree`` otherwise (on a CPU the in-process tree is 50 times faster at 20,000 hits, README); the others as
    given."""
    if knn != "auto":
        return knn
    import torch

    return "graph" if torch.cuda.is_available() else "tree"


def tree_network(name: str, path):
    """The in-process torch network ``name`` of the model file ``path``, with its neighbours from
    `deepreco.calo.models.knn.knn` (numba's tree): the module the served model of ``export --knn tree`` runs,
    the same code as the in-process method, so the same clusters hit for hit. One `DeepRecoError` line for a
    file of another kind."""
    if name not in TREE_NETWORKS:
        raise DeepRecoError(f"{name} searches no neighbours: --knn tree is for {', '.join(TREE_NETWORKS)}")
    return get_network(name).load(path)[1]


def run_tree_network(module, name: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """``module`` (a `tree_network`) on NumPy inputs in the network's order; NumPy outputs in its order."""
    import torch

    spec = get_network(name)
    with torch.no_grad():
        outs = module(*[torch.from_numpy(np.ascontiguousarray(a, dtype=t.dtype))
                        for t, a in zip(spec.inputs, arrays, strict=True)])
    return [o.numpy() for o in outs]


def triton_network(name: str, model_py: str) -> type:
    """The ``TritonPythonModel`` class of the calorimeter network ``name`` served with the in-process
    neighbour search (``model.pt`` beside ``model_py`` is its model file): inputs and outputs as its ONNX
    model's, so a client cannot tell which one the repository holds."""
    spec = get_network(name)

    class TritonPythonModel:
        def initialize(self, args):
            self.module = tree_network(name, Path(model_py).with_name("model.pt"))

        def execute(self, requests):
            import triton_python_backend_utils as pb_utils

            responses = []
            for request in requests:
                try:
                    arrays = []
                    for t in spec.inputs:
                        tensor = pb_utils.get_input_tensor_by_name(request, t.name)
                        if tensor is None:
                            raise DeepRecoError(f"model {name}: input {t.name} is missing")
                        arrays.append(tensor.as_numpy())
                    out = run_tree_network(self.module, name, arrays)
                    responses.append(pb_utils.InferenceResponse(output_tensors=[
                        pb_utils.Tensor(t.name, np.ascontiguousarray(o, dtype=t.dtype))
                        for t, o in zip(spec.outputs, out, strict=True)]))
                except (DeepRecoError, ValueError, RuntimeError, IndexError) as exc:  # a bad request: its error
                    responses.append(pb_utils.InferenceResponse(output_tensors=[],
                                                                error=pb_utils.TritonError(str(exc))))
            return responses

        def finalize(self):
            self.module = None

    TritonPythonModel.__name__ = TritonPythonModel.__qualname__ = "TritonPythonModel"
    return TritonPythonModel


def network_model_py_text(name: str) -> str:
    return (f"# Triton Python-backend model written by deepreco export --knn tree: {get_network(name).what}, with\n"
            "# the in-process neighbour search (numba's tree). The server's Python needs deepreco and numba;\n"
            "# model.pt beside this file is its model.\n"
            "from deepreco.export.pybackend import triton_network\n\n"
            f"TritonPythonModel = triton_network({name!r}, __file__)\n")


def model_py_text(model: PyModel) -> str:
    return (f"# Triton Python-backend model written by deepreco export: {model.what}.\n"
            "# The server's Python needs deepreco (pip install deepreco); model.pt beside this file is its model.\n"
            "from deepreco.export.pybackend import triton_model\n\n"
            f"TritonPythonModel = triton_model({model.name!r}, __file__)\n")


def model_source(model: PyModel, path=None) -> Path:
    """The model file a Python model reads: ``path``, or the shipped one of its kind."""
    from .loaders import SHIPPED

    if path is not None:
        return Path(path)
    return SHIPPED / ("gnn_tracks.pt" if model.kind == "gnn" else "calo_gravnet.pt")
