"""deepreco serve: a real server in a subprocess on a free localhost port, called with the real tritonclient
over HTTP and gRPC; answers equal the in-process networks; bad requests are 4xx and the server goes on."""

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

if importlib.util.find_spec("mlserver") is None:  # not imported here: its protobufs clash with tritonclient's
    pytest.skip("mlserver is not installed", allow_module_level=True)
httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")

from tritonclient.utils import InferenceServerException  # noqa: E402

from deepreco.cli import app  # noqa: E402
from deepreco.export import write_repository  # noqa: E402
from deepreco.export.loaders import load_gnn, load_lstm  # noqa: E402
from deepreco.export.serve import free_port_pair  # noqa: E402

torch.set_num_threads(1)


@contextlib.contextmanager
def serving(repo: Path):
    """`deepreco serve repo` in its own process on free ports, ready; yields (HTTP port, process) and kills it
    (its whole process group) at the end whatever happens."""
    port = free_port_pair()
    log = open(repo.parent / f"{repo.name}-server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "deepreco", "serve", str(repo), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
        yield port, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:  # busy in a long request: SIGTERM waits for it
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def serve_networks(tmp_path_factory, names) -> Path:
    """A model repository of the networks ``names``."""
    repo = tmp_path_factory.mktemp("serve") / "repo"
    repo.mkdir()
    for name in names:
        write_repository(name, repo.parent / f"one-{name}")
        (repo.parent / f"one-{name}" / name).rename(repo / name)
    return repo


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The interaction network and the LSTM, served by `deepreco serve` in its own process, killed at the end
    whatever happens."""
    with serving(serve_networks(tmp_path_factory, ["gnn-network", "lstm"])) as running:
        yield running


def _graph(n=300, e=1500, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 8)).astype(np.float32), rng.normal(size=(e, 9)).astype(np.float32),
            rng.integers(0, n, size=(2, e)).astype(np.int64))


def _inputs(module, arrays, names, binary=True):
    items = []
    for name, a in zip(names, arrays, strict=True):
        item = module.InferInput(name, list(a.shape), "FP32" if a.dtype == np.float32 else "INT64")
        if module is httpclient:
            item.set_data_from_numpy(a, binary_data=binary)
        else:
            item.set_data_from_numpy(a)
        items.append(item)
    return items


def test_health_and_metadata(server):
    port, _ = server
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("gnn-network")
    meta = client.get_model_metadata("gnn-network")
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("x", "FP32", [-1, 8]), ("edge_attr", "FP32", [-1, 9]), ("edges", "INT64", [2, -1])]


def test_http_and_grpc_answers_equal_the_in_process_networks(server):
    port, _ = server
    _, network = load_gnn()
    x, attr, edges = _graph()
    with torch.no_grad():
        want = network(torch.from_numpy(x), torch.from_numpy(attr), torch.from_numpy(edges)).numpy()
    names = ["x", "edge_attr", "edges"]
    http = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
    got_http = http.infer("gnn-network", _inputs(httpclient, (x, attr, edges), names, binary=False),
                          outputs=[httpclient.InferRequestedOutput("logits", binary_data=False)]).as_numpy("logits")
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{port + 1}")
    got_grpc = grpc.infer("gnn-network", _inputs(grpcclient, (x, attr, edges), names)).as_numpy("logits")
    np.testing.assert_allclose(got_http, want, atol=5e-4, rtol=1e-4)
    np.testing.assert_array_equal(got_grpc, got_http)  # the same onnxruntime numbers by either protocol
    seeds = np.random.default_rng(1).normal(size=(33, 10, 8)).astype(np.float32)
    with torch.no_grad():
        want = load_lstm()(torch.from_numpy(seeds)).numpy()
    got = grpc.infer("lstm", _inputs(grpcclient, (seeds,), ["x"])).as_numpy("y")
    grpc.close()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bad_requests_are_client_errors_and_the_server_goes_on(server, protocol):
    port, proc = server
    module = httpclient if protocol == "http" else grpcclient
    client = module.InferenceServerClient(f"127.0.0.1:{port + (protocol == 'grpc')}")
    x, attr, edges = _graph(50, 120)
    names = ["x", "edge_attr", "edges"]
    kw = {"binary": False} if protocol == "http" else {}
    bad = [
        ("no-such-model", _inputs(module, (x, attr, edges), names, **kw), "no-such-model"),
        ("gnn-network", _inputs(module, (x, attr, edges), ["x", "edge_attr", "edge"], **kw), "takes inputs"),
        ("gnn-network", _inputs(module, (x[:, :5].copy(), attr, edges), names, **kw), "has shape [-1, 8]"),
        ("gnn-network", _inputs(module, (x, attr, edges.astype(np.float32)), names, **kw), "is INT64"),
        ("gnn-network", _inputs(module, (x, attr), names[:2], **kw), "takes inputs"),
    ]
    for model, inputs, message in bad:
        with pytest.raises(InferenceServerException) as info:
            client.infer(model, inputs)
        text = str(info.value)
        assert message in text, text
        status = str(info.value.status())
        assert status.startswith("4") or status in ("StatusCode.INVALID_ARGUMENT", "StatusCode.NOT_FOUND"), status
        # and the next good request is answered
        ok = client.infer("gnn-network", _inputs(module, (x, attr, edges), names, **kw))
        assert ok.as_numpy("logits").shape == (120,)
    client.close()
    assert proc.poll() is None


def test_serve_refuses_a_folder_without_models_or_with_a_broken_one(tmp_path):
    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and "no NAME/<version>/model.onnx" in result.output
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "no such model repository" in result.output
    (tmp_path / "net" / "1").mkdir(parents=True)
    (tmp_path / "net" / "1" / "model.onnx").write_bytes(b"not an onnx file")
    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and "model.onnx: onnxruntime cannot load it" in result.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_ctrl_c_ends_the_server_quietly(sig, tmp_path_factory):
    """Ctrl-C (or SIGTERM) is how a server ends: status 0 within seconds, and no traceback in its output (uvicorn
    logged one when MLServer cancelled the application's lifespan task)."""
    repo = serve_networks(tmp_path_factory, ["gnn-filter"])
    with serving(repo) as (_, proc):
        start = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(15)
        seconds = time.monotonic() - start
    log = (repo.parent / f"{repo.name}-server.log").read_text()
    assert code == 0 and seconds < 5 and "Shutting down" in log, (code, seconds, log)
    assert "Traceback" not in log and "Error" not in log, log
