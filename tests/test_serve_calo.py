"""The calorimeter networks through a real `deepreco serve` (a subprocess on free localhost ports, called by the
methods with tritonclient over gRPC): GravNet, DGCNN and the DRN written with ``--knn tree`` (the in-process
network and its tree search on the server) give the in-process clusters and energies exactly; DGCNN and the
DRN exported to ONNX (the search inside the graph) give the same clusters hit for hit in onnxruntime, and so does
GarNet's ONNX graph served; bad requests are 400s and the server goes on; a model file of another kind is one
line."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

if importlib.util.find_spec("mlserver") is None:  # not imported here: its protobufs clash with tritonclient's
    pytest.skip("mlserver is not installed", allow_module_level=True)
grpcclient = pytest.importorskip("tritonclient.grpc")

from test_serve import serving  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from deepreco.calo.methods import get_method  # noqa: E402
from deepreco.calo.simulate import gun_event  # noqa: E402
from deepreco.cli import app  # noqa: E402
from deepreco.export.client import RemoteNetwork  # noqa: E402
from deepreco.export.loaders import SHIPPED  # noqa: E402
from deepreco.export.pybackend import TREE_NETWORKS  # noqa: E402

torch.set_num_threads(1)
runner = CliRunner()


@pytest.fixture(scope="module")
def tree_repo(tmp_path_factory):
    """GravNet, DGCNN and the DRN as ``--knn tree`` models, and GarNet (no search to place: its ONNX graph), one
    repository (the command line writes each)."""
    root = tmp_path_factory.mktemp("tree")
    repo = root / "repo"
    repo.mkdir()
    for name in TREE_NETWORKS:
        result = runner.invoke(app, ["export", name, "--triton", str(root / name), "--knn", "tree"])
        assert result.exit_code == 0, result.output
        assert f"{name}: {name}/1/model.py, Python backend" in result.output
        (root / name / name).rename(repo / name)
    result = runner.invoke(app, ["export", "calo-garnet", "--triton", str(root / "calo-garnet")])
    assert result.exit_code == 0, result.output
    assert "calo-garnet: calo-garnet/1/model.onnx" in result.output
    (root / "calo-garnet" / "calo-garnet").rename(repo / "calo-garnet")
    return repo


@pytest.fixture(scope="module")
def tree_server(tree_repo):
    with serving(tree_repo) as (port, proc):
        yield f"127.0.0.1:{port + 1}", proc


def _events():
    return [gun_event(0, seed=0), gun_event(1, seed=2, source="tau", pileup=0.2)]


@pytest.mark.parametrize("name", ["gravnet", "edgeconv", "gravnet+drn", "edgeconv+drn"])
def test_tree_served_methods_give_the_in_process_clusters_exactly(tree_server, name):
    address, _ = tree_server
    local, remote = get_method(name), get_method(name, server=address)
    served = remote.drn if name.endswith("+drn") else remote.model
    assert isinstance(served, RemoteNetwork)
    for event in _events():
        (ha, ca), (hb, cb) = local.reconstruct(event), remote.reconstruct(event)
        assert len(ca) >= 2
        # the same torch code on the same inputs: every column, energies included, to the bit
        pd.testing.assert_frame_equal(ha, hb, check_exact=True)
        pd.testing.assert_frame_equal(ca, cb, check_exact=True)


def test_served_garnet_gives_the_in_process_clusters(tree_server):
    """GarNet's ONNX graph, run by the server's onnxruntime: the same clusters and hit classes, hit for hit, and the
    energies within 1e-4."""
    address, _ = tree_server
    local, remote = get_method("garnet"), get_method("garnet", server=address)
    assert isinstance(remote.model, RemoteNetwork)
    for event in _events():
        (ha, ca), (hb, cb) = local.reconstruct(event), remote.reconstruct(event)
        assert len(ca) >= 2
        np.testing.assert_array_equal(ha["cluster_id"].to_numpy(), hb["cluster_id"].to_numpy())
        np.testing.assert_array_equal(ha["hit_class"].to_numpy(), hb["hit_class"].to_numpy())
        np.testing.assert_allclose(ca["energy"], cb["energy"], rtol=1e-4)


def test_tree_model_bad_requests_are_400_and_the_server_goes_on(tree_server):
    address, proc = tree_server
    client = grpcclient.InferenceServerClient(address)

    def request(model, **arrays):
        items = []
        for key, a in arrays.items():
            item = grpcclient.InferInput(key, list(a.shape), "FP32" if a.dtype == np.float32 else "INT64")
            item.set_data_from_numpy(a)
            items.append(item)
        return client.infer(model, items)

    metadata = client.get_model_metadata("calo-drn", as_json=True)
    assert [i["name"] for i in metadata["inputs"]] == ["x", "batch", "log_energy"]
    x = np.zeros((6, 10), np.float32)
    bad = [({"x": np.zeros((5, 8), np.float32)}, "calo-gravnet", "input x has shape [-1, 9]"),
           ({"x": np.zeros((5, 9), np.int64)}, "calo-gravnet", "input x is FP32"),
           ({"x": x, "batch": np.array([1, 1, 0, 0, 2, 2]), "log_energy": np.zeros(3, np.float32)}, "calo-drn",
            "batch must be sorted")]
    for arrays, model, message in bad:
        with pytest.raises(InferenceServerException) as err:
            request(model, **arrays)
        assert "INVALID_ARGUMENT" in str(err.value.status()) and message in err.value.message()
        assert proc.poll() is None
    out = request("calo-gravnet", x=np.random.default_rng(0).normal(size=(50, 9)).astype(np.float32))
    assert out.as_numpy("coords").shape == (50, 3)
    client.close()


def test_a_model_file_of_another_kind_is_one_line_and_writes_nothing(tree_repo, tmp_path):
    result = runner.invoke(app, ["export", "calo-drn", "--triton", str(tmp_path / "r"), "--knn", "tree",
                                 "--model", str(SHIPPED / "calo_gravnet.pt")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "kind 'calo-gravnet'" in lines[0] and list(tmp_path.iterdir()) == []
    # a repository whose tree model holds another kind's file: refused before the server starts
    broken = tmp_path / "broken"
    (broken / "calo-drn" / "1").mkdir(parents=True)
    for f in ("config.pbtxt", "1/model.py"):
        (broken / "calo-drn" / f).write_bytes((tree_repo / "calo-drn" / f).read_bytes())
    (broken / "calo-drn" / "1" / "model.pt").write_bytes((SHIPPED / "calo_gravnet.pt").read_bytes())
    result = runner.invoke(app, ["serve", str(broken), "--port", "1"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "kind 'calo-gravnet'" in lines[0]
    result = runner.invoke(app, ["export", "calo-gravnet", "--out", str(tmp_path / "o"), "--knn", "tree"])
    assert result.exit_code != 0 and "--knn tree is for --triton" in result.output
    result = runner.invoke(app, ["export", "calo-gravnet", "--triton", str(tmp_path / "o"), "--knn", "kd"])
    assert result.exit_code == 1 and "unknown neighbour search 'kd'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]
