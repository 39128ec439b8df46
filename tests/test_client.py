"""Reconstruction as a client: a real `deepreco serve` in a subprocess runs the networks, the command line and
the methods call it through tritonclient (gRPC), and the results equal the in-process ones; a server that is
down is one line and nothing written, or the in-process networks with ``--fallback local``."""

import importlib.util
import json
import socket

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

if importlib.util.find_spec("mlserver") is None:  # not imported here: its protobufs clash with tritonclient's
    pytest.skip("mlserver is not installed", allow_module_level=True)
pytest.importorskip("tritonclient.grpc")

from test_serve import serve_networks, serving  # noqa: E402

from deepreco.calo.methods import get_method as calo_method  # noqa: E402
from deepreco.calo.simulate import gun_event  # noqa: E402
from deepreco.cli import app  # noqa: E402
from deepreco.errors import DeepRecoError  # noqa: E402
from deepreco.export.client import RemoteNetwork, grpc_address  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return serve_networks(tmp_path_factory, ["gnn-filter", "gnn-network", "lstm", "calo-gravnet", "deepcore"])


@pytest.fixture(scope="module")
def server(repo):
    """The gnn's two networks, the LSTM, GravNet and DeepCore on one server; yields its gRPC address."""
    with serving(repo) as (port, _):
        yield f"127.0.0.1:{port + 1}"


@pytest.fixture(scope="module")
def ttbar(ttbar_folder):
    return ttbar_folder


@pytest.fixture(scope="module")
def in_process(ttbar, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    result = runner.invoke(app, ["reconstruct", str(ttbar), "-m", "gnn", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (csv,) = out.glob("*.csv")
    return csv


def _down_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there


def moved_hits(a: pd.DataFrame, b: pd.DataFrame) -> int:
    """Hits whose track (the set of hits it has) differs between two submissions, or that only one assigns."""
    def tracks(df):
        members = df.groupby("track_id")["hit_id"].apply(lambda s: tuple(sorted(s)))
        return pd.Series(df["track_id"].map(members).to_numpy(), index=df["hit_id"])
    both = pd.concat([tracks(a).rename("a"), tracks(b).rename("b")], axis=1)
    return int((both["a"] != both["b"]).sum())


def test_gnn_on_the_server_writes_the_in_process_tracks(server, ttbar, in_process, tmp_path):
    # onnxruntime's filter and network scores differ from torch's by up to 1e-6 and 5e-4, which moves an edge
    # across a threshold now and then (measured on mu = 200 ttbar events, benchmarks/serving.py: one identical
    # submission, one with 40 of 121,868 hits in another track, TrackML score 0.91237 against 0.91227): the
    # bound is 0.1 % of the hits and 0.001 of score
    from deepreco.io import open_path
    from deepreco.metrics.score import score_event

    result = runner.invoke(app, ["reconstruct", str(ttbar), "-m", "gnn", "--out", str(tmp_path), "--server", server])
    assert result.exit_code == 0, result.output
    (csv,) = tmp_path.glob("*.csv")
    assert csv.name == in_process.name
    a, b = pd.read_csv(in_process), pd.read_csv(csv)
    assert len(a) > 100 and moved_hits(a, b) <= 0.001 * len(a)
    truth = open_path(ttbar).truth
    assert abs(score_event(truth, a.drop(columns="event_id")) - score_event(truth, b.drop(columns="event_id"))) \
        <= 0.001


def test_lstm_on_the_server_finds_the_in_process_tracks(server, ttbar):
    from deepreco.io import open_path
    from deepreco.reconstruct import get_method

    event = open_path(ttbar)
    remote = get_method("lstm", server=server)
    assert isinstance(remote._remote["lstm"], RemoteNetwork)
    # the served network is the shipped model alone: in-process without the default ensemble
    a, b = get_method("lstm", ensemble=False).reconstruct(event), remote.reconstruct(event)
    assert len(a) > 100 and moved_hits(a, b) <= 0.001 * len(a)
    with pytest.raises(DeepRecoError, match="complete_inward runs in-process only"):
        get_method("lstm", complete_inward=True, server=server)


def test_a_server_down_is_one_line_and_nothing_written(ttbar, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["reconstruct", str(ttbar), "-m", "gnn", "--out", str(out),
                                 "--server", _down_address()])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: server 127.0.0.1:") and "does not answer" in lines[0]
    assert not out.exists() or not any(out.iterdir())
    # a method without networks refuses the option; an HTTP address is refused with the gRPC one to give
    result = runner.invoke(app, ["reconstruct", str(ttbar), "-m", "dbscan", "--out", str(out), "--server", "x:1"])
    assert result.exit_code == 1 and "has no parameter server" in result.output
    with pytest.raises(DeepRecoError, match="gRPC address"):
        grpc_address("http://127.0.0.1:8000")


def test_fallback_local_runs_in_process_and_says_so(ttbar, in_process, tmp_path):
    result = runner.invoke(app, ["reconstruct", str(ttbar), "-m", "gnn", "--out", str(tmp_path),
                                 "--server", _down_address(), "--fallback", "local"])
    assert result.exit_code == 0, result.output
    assert "does not answer" in result.output and "in-process (--fallback local)" in result.output
    (csv,) = tmp_path.glob("*.csv")
    assert csv.read_bytes() == in_process.read_bytes()  # the same torch networks


def test_gravnet_on_the_server_gives_the_in_process_clusters(server):
    # the same clusters hit for hit; energies within 1e-5 relative (onnxruntime's float32 arithmetic against
    # torch's; measured up to 1.2e-6 on these events)
    local, remote = calo_method("gravnet"), calo_method("gravnet", server=server)
    assert isinstance(remote.model, RemoteNetwork)
    for index in range(2):
        event = gun_event(index, seed=0)
        (ha, ca), (hb, cb) = local.reconstruct(event), remote.reconstruct(event)
        pd.testing.assert_frame_equal(ha, hb)
        pd.testing.assert_frame_equal(ca.drop(columns="energy"), cb.drop(columns="energy"))
        np.testing.assert_allclose(cb["energy"], ca["energy"], rtol=1e-5)
        assert len(ca) >= 2


def test_deepcore_evaluate_on_the_server_gives_the_in_process_figures(server):
    def figures(*extra):
        result = runner.invoke(app, ["deepcore", "evaluate", "--events", "2", "--json", *extra])
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        return {k: {m: v for m, v in out[k].items() if m not in ("seconds_per_event", "stages")}
                for k in ("deepcore", "baseline")}

    local = figures()
    assert local == figures("--server", server) and local["deepcore"]["seeds"] > 0


def test_calo_evaluate_with_a_server_down_is_one_line():
    result = runner.invoke(app, ["calo", "evaluate", "--events", "1", "--methods", "gravnet",
                                 "--server", _down_address()])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "does not answer" in result.output


def test_a_server_that_dies_mid_run(repo, capsys):
    """The server answers the first event and is then killed: with --fallback local the next events run the
    network in-process (one warning) and give the in-process clusters; without it the next event is one
    error line."""
    import os
    import signal

    events = [gun_event(i, seed=4) for i in range(3)]
    local = [calo_method("gravnet").reconstruct(e)[0] for e in events]
    for fallback in ("local", None):
        with serving(repo) as (port, proc):
            method = calo_method("gravnet", server=f"127.0.0.1:{port + 1}", fallback=fallback)
            first = method.reconstruct(events[0])[0]
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            capsys.readouterr()
            if fallback == "local":
                later = [method.reconstruct(e)[0] for e in events[1:]]
                err = capsys.readouterr().err
                assert err.count("stopped answering") == 1 and "runs in-process from now on" in err
                for got, want in zip([first, *later], local, strict=True):
                    assert got["cluster_id"].tolist() == want["cluster_id"].tolist()
                    assert got["hit_class"].tolist() == want["hit_class"].tolist()
            else:
                with pytest.raises(DeepRecoError, match=r"^server 127.0.0.1:\d+, network calo-gravnet: "):
                    method.reconstruct(events[1])
