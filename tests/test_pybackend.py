"""Triton Python-backend models (`deepreco.export.pybackend`): the repository's ``model.py`` files imported as
Triton imports them and executed against a stand-in of ``triton_python_backend_utils`` (no Triton server runs
here), whose BLS requests run the repository's ONNX models in onnxruntime; the answers are compared with the
in-process methods."""

import importlib.util
import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("tritonclient.grpc")

from deepreco.calo.methods import get_method as calo_method  # noqa: E402
from deepreco.calo.simulate import gun_event  # noqa: E402
from deepreco.cli import app  # noqa: E402
from deepreco.export.onnx import session  # noqa: E402
from deepreco.export.pybackend import CALO_HITS, CLUSTER_COLUMNS, PY_MODELS, TRACK_CELLS, TRACK_HITS  # noqa: E402
from deepreco.export.triton import parse_config  # noqa: E402
from deepreco.reconstruct import get_method  # noqa: E402

torch.set_num_threads(1)
runner = CliRunner()
NUMPY_OF = {"TYPE_FP32": np.float32, "TYPE_FP64": np.float64, "TYPE_INT64": np.int64}


def stand_in(repo):
    """A minimal ``triton_python_backend_utils``: tensors, responses, errors and BLS requests, the last run
    by onnxruntime on ``repo/NAME/1/model.onnx`` after checking the inputs against the model's config.pbtxt
    (names, dtypes, ranks), as Triton does."""
    from tritonclient.grpc import model_config_pb2

    pb = types.ModuleType("triton_python_backend_utils")
    sessions = {}

    class Tensor:
        def __init__(self, name, array):
            self._name, self._array = name, np.asarray(array)

        def name(self):
            return self._name

        def as_numpy(self):
            return self._array

    class TritonError:
        def __init__(self, message):
            self._message = message

        def message(self):
            return self._message

    class InferenceResponse:
        def __init__(self, output_tensors, error=None):
            self._outputs, self._error = list(output_tensors), error

        def output_tensors(self):
            return self._outputs

        def has_error(self):
            return self._error is not None

        def error(self):
            return self._error

    def check(name, tensors, kind):
        config = parse_config((repo / name / "config.pbtxt").read_text(), name)
        declared = {t.name: t for t in (config.input if kind == "input" else config.output)}
        assert sorted(t.name() for t in tensors) == sorted(declared), (name, kind)
        for t in tensors:
            want = declared[t.name()]
            assert t.as_numpy().dtype == NUMPY_OF[model_config_pb2.DataType.Name(want.data_type)], (name, t.name())
            assert t.as_numpy().ndim == len(want.dims), (name, t.name())

    class InferenceRequest:
        def __init__(self, model_name, inputs, requested_output_names):
            self.model_name, self.inputs, self.outputs = model_name, inputs, requested_output_names

        def exec(self):
            check(self.model_name, self.inputs, "input")
            if self.model_name not in sessions:
                sessions[self.model_name] = session(repo / self.model_name / "1" / "model.onnx")
            out = sessions[self.model_name].run(self.outputs, {t.name(): t.as_numpy() for t in self.inputs})
            return InferenceResponse([Tensor(n, o) for n, o in zip(self.outputs, out, strict=True)])

    def get_tensor(holder, name):
        tensors = holder.inputs if hasattr(holder, "inputs") else holder.output_tensors()
        return next((t for t in tensors if t.name() == name), None)

    pb.Tensor, pb.TritonError, pb.InferenceResponse, pb.InferenceRequest = (Tensor, TritonError, InferenceResponse,
                                                                            InferenceRequest)
    pb.get_input_tensor_by_name = pb.get_output_tensor_by_name = get_tensor
    pb.check = check
    return pb


class Request:
    def __init__(self, pb, **arrays):
        self.inputs = [pb.Tensor(k, v) for k, v in arrays.items()]


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    """A repository of the two whole-method models and the step models (their networks with them), written by
    the command line; yields (pb stand-in, load(name) -> an initialized TritonPythonModel)."""
    root = tmp_path_factory.mktemp("triton")
    repo = root / "repo"
    repo.mkdir()
    for name in ("gnn", "gravnet"):  # GravNet in ONNX: the stand-in's BLS runs model.onnx files
        result = runner.invoke(app, ["export", name, "--triton", str(root / name), "--knn", "graph"])
        assert result.exit_code == 0, result.output
        for folder in (root / name).iterdir():
            folder.rename(repo / folder.name)
    for name in ("gnn-graph", "gnn-tracks", "calo-condensation"):
        result = runner.invoke(app, ["export", name, "--triton", str(root / name)])
        assert result.exit_code == 0, result.output
        (root / name / name).rename(repo / name)
    pb = stand_in(repo)
    mp = pytest.MonkeyPatch()
    mp.setitem(sys.modules, "triton_python_backend_utils", pb)

    def load(name):
        spec = importlib.util.spec_from_file_location(f"triton_{name}", repo / name / "1" / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.TritonPythonModel()
        model.initialize({"model_name": name, "model_version": "1", "model_repository": str(repo / name)})
        return model

    def execute(name, model, **arrays):
        pb.check(name, Request(pb, **arrays).inputs, "input")
        (response,) = model.execute([Request(pb, **arrays)])
        if not response.has_error():
            pb.check(name, response.output_tensors(), "output")
        return response

    yield pb, repo, load, execute
    mp.undo()


@pytest.fixture(scope="module")
def ttbar(ttbar_folder):
    from deepreco.io import open_path

    return open_path(ttbar_folder)


def _outputs(response) -> dict:
    return {t.name(): t.as_numpy() for t in response.output_tensors()}


def test_configs_are_python_backend_model_configs(triton):
    _, repo, _, _ = triton
    for name, model in PY_MODELS.items():
        config = parse_config((repo / name / "config.pbtxt").read_text(), name)
        assert (config.name, config.backend, config.max_batch_size) == (name, "python", 0)
        assert [t.name for t in config.input] == [t.name for t in model.inputs]
        assert (repo / name / "1" / "model.pt").stat().st_size > 10_000
        for network in model.networks:  # what a BLS model calls is in the repository, as an ONNX model
            assert (repo / network / "1" / "model.onnx").is_file()


def test_gravnet_method_in_one_request_gives_the_in_process_clusters(triton):
    _, _, load, execute = triton
    event = gun_event(0, seed=0, source="tau", pileup=1)
    hits = event.hits[list(CALO_HITS)].to_numpy(np.float64)
    method = calo_method("gravnet", calibrated=False)  # the served method: energies before calibration
    hit_table, clusters = method.reconstruct(event)
    out = _outputs(execute("gravnet", load("gravnet"), hits=hits))
    np.testing.assert_array_equal(out["cluster_id"], hit_table["cluster_id"].to_numpy())
    np.testing.assert_array_equal(out["hit_class"], hit_table["hit_class"].to_numpy())
    served = pd.DataFrame(out["clusters"], columns=CLUSTER_COLUMNS)
    np.testing.assert_array_equal(served["cluster_id"], clusters["cluster_id"])
    np.testing.assert_array_equal(served["n_hits"], clusters["n_hits"])
    np.testing.assert_allclose(served["energy"], clusters["energy"], rtol=1e-4)
    # the condensation step alone, on the in-process network's outputs: the in-process clusters exactly
    from deepreco.calo.features import hit_features

    with torch.no_grad():
        net = {k: v.numpy() for k, v in method.model(hit_features(event.hits)).items()}
    out = _outputs(execute("calo-condensation", load("calo-condensation"), hits=hits, **net))
    np.testing.assert_array_equal(out["cluster_id"], hit_table["cluster_id"].to_numpy())
    np.testing.assert_array_equal(out["clusters"], clusters[list(CLUSTER_COLUMNS)].to_numpy(np.float64))


def test_gnn_method_in_one_request_and_its_steps(triton, ttbar):
    _, _, load, execute = triton
    hits = ttbar.hits[list(TRACK_HITS)].to_numpy(np.float64)
    cells = ttbar.cells[list(TRACK_CELLS)].to_numpy(np.float64)
    method = get_method("gnn")
    local = method.reconstruct(ttbar)
    # the whole method: the networks in onnxruntime, whose scores differ from torch's in the last bits (see
    # test_client): the same bound, 0.1 % of the hits in another track
    out = _outputs(execute("gnn", load("gnn"), hits=hits, cells=cells))
    served = pd.DataFrame({"hit_id": ttbar.hits["hit_id"].to_numpy(np.int64), "track_id": out["track_id"]})
    served = served[served["track_id"] >= 0]
    from test_client import moved_hits

    assert len(local) > 1000
    assert moved_hits(local, served) <= 0.001 * len(ttbar.hits)
    # the steps: graph building and track building are the in-process code, so exactly its numbers
    stages = method.score_graph(ttbar, keep_graph=True)
    graph = _outputs(execute("gnn-graph", load("gnn-graph"), hits=hits, cells=cells))
    np.testing.assert_array_equal(graph["edges"], stages["graph"])
    assert graph["x"].shape == (len(hits), 8) and graph["edge_attr"].shape == (stages["graph"].shape[1], 9)
    tracks = _outputs(execute("gnn-tracks", load("gnn-tracks"), hits=hits, edges=stages["edges"],
                              scores=stages["scores"].astype(np.float32), reserve=stages["reserve"]))
    rows = tracks["track_id"] >= 0
    built = pd.DataFrame({"hit_id": hits[rows, 0].astype(np.int64), "track_id": tracks["track_id"][rows]})
    assert len(built) == len(local) and moved_hits(local, built) == 0


def test_a_bad_request_is_its_error_and_the_next_one_is_answered(triton):
    _, _, load, execute = triton
    model = load("gravnet")
    pb = sys.modules["triton_python_backend_utils"]
    for bad, message in (({"hits": np.zeros((5, 3))}, "hits must be (rows, 7)"), ({}, "input hits is missing")):
        (response,) = model.execute([Request(pb, **bad)])
        assert response.has_error() and message in response.error().message()
    event = gun_event(1, seed=0)
    out = _outputs(execute("gravnet", model, hits=event.hits[list(CALO_HITS)].to_numpy(np.float64)))
    assert len(out["cluster_id"]) == len(event.hits)


def test_a_python_model_is_refused_as_an_onnx_file(tmp_path):
    result = runner.invoke(app, ["export", "gravnet", "--out", str(tmp_path / "onnx")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: gravnet is a Triton Python-backend model")
    assert list(tmp_path.iterdir()) == []


def test_knn_auto_is_the_tree_without_a_gpu_and_the_graph_with_one(tmp_path, monkeypatch):
    """``export --triton`` without ``--knn`` (auto): a calorimeter network is the tree's Python-backend model
    where torch sees no CUDA GPU, the ONNX graph where it sees one."""
    import torch

    from deepreco.export.pybackend import resolve_knn

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["export", "calo-gravnet", "--triton", str(tmp_path / "repo")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "repo" / "calo-gravnet" / "1").iterdir()) == ["model.pt", "model.py"]
    assert resolve_knn("auto") == "tree" and resolve_knn("graph") == "graph"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_knn("auto") == "graph" and resolve_knn("tree") == "tree"


def test_a_knn_tree_network_model_is_the_in_process_network(tmp_path, monkeypatch):
    """``export --knn tree``: DGCNN as a Python-backend model (its model.py imported as Triton imports it) answers
    what the in-process network gives, to the bit; a bad request is its error and the next one is answered."""
    from deepreco.export.networks import get_network

    result = runner.invoke(app, ["export", "calo-edgeconv", "--triton", str(tmp_path / "repo"), "--knn", "tree"])
    assert result.exit_code == 0, result.output
    repo = tmp_path / "repo"
    config = parse_config((repo / "calo-edgeconv" / "config.pbtxt").read_text(), "calo-edgeconv")
    assert (config.backend, [t.name for t in config.output]) == ("python", ["beta", "coords", "energy", "logits"])
    pb = stand_in(repo)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb)
    spec = importlib.util.spec_from_file_location("triton_calo_edgeconv", repo / "calo-edgeconv" / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    model.initialize({"model_name": "calo-edgeconv", "model_version": "1"})
    x = np.random.default_rng(0).normal(size=(400, 9)).astype(np.float32)
    (bad,) = model.execute([Request(pb, y=x)])
    assert bad.has_error() and "input x is missing" in bad.error().message()
    (response,) = model.execute([Request(pb, x=x)])
    pb.check("calo-edgeconv", response.output_tensors(), "output")
    _, reference = get_network("calo-edgeconv").load(None)
    with torch.no_grad():
        want = [o.numpy() for o in reference(torch.from_numpy(x))]
    for name, w in zip(["beta", "coords", "energy", "logits"], want, strict=True):
        np.testing.assert_array_equal(_outputs(response)[name], w)
