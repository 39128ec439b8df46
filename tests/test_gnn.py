"""The graph-network track finder (`gnn`): true graph, module map, networks, track building, the method."""

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from deepreco.errors import DeepRecoError, EventError, FormatError, MissingFileError
from deepreco.generate import particle_gun
from deepreco.io import Dataset, write_event
from deepreco.metrics import evaluate
from deepreco.modelfile import load as load_model_file
from deepreco.reconstruct import get_method
from deepreco.reconstruct.gnn import ModuleMap, build_tracks, true_edges
from deepreco.reconstruct.gnn.features import N_EDGE, N_NODE, edge_features, node_features
from deepreco.reconstruct.gnn.metric import (
    choose_radius,
    embed,
    load_embedding,
    radius_graph,
    save_embedding,
    train_embedding,
)
from deepreco.reconstruct.gnn.model import EdgeFilter, GNNModel, InteractionNetwork, edge_mlp, mlp, project
from deepreco.reconstruct.gnn.module_map import hit_coordinates
from deepreco.reconstruct.gnn.train import tune_edge_threshold
from deepreco.simulate import simulate_event
from deepreco.training import read_checkpoint


def _gun_event(seed: int, n: int = 40):
    """Muons of 2 to 10 GeV into one corner of the barrel (so that a few events cover its module pairs)."""
    particles = particle_gun(n=n, pdg=[13, -13], pt=(2.0, 10.0), eta=(0.2, 0.6), phi=(0.3, 0.7), seed=seed)
    return simulate_event(particles, seed=seed, event_id=seed, noise_fraction=0.05)


@pytest.fixture(scope="module")
def gun_events():
    return [_gun_event(seed) for seed in range(1, 12)]


def _pid(event):
    return event.truth.set_index("hit_id").reindex(event.hits["hit_id"])["particle_id"].to_numpy()


def test_true_edges_join_consecutive_hits_of_one_particle(gun_events):
    event = gun_events[0]
    edges = true_edges(event)
    pid = _pid(event)
    assert edges.shape[0] == 2 and edges.shape[1] > 0
    assert (pid[edges[0]] == pid[edges[1]]).all() and (pid[edges[0]] != 0).all()
    r = np.hypot(event.hits["x"].to_numpy(), event.hits["y"].to_numpy())
    assert (r[edges[1]] > r[edges[0]]).mean() > 0.99  # outward in these barrel muons
    # every particle hit but the first of each particle has an edge coming in
    hits_per_particle = np.bincount(np.unique(pid[pid != 0], return_inverse=True)[1])
    assert edges.shape[1] >= (hits_per_particle - 1).sum() - 5


def test_true_edges_need_truth(gun_events):
    event = gun_events[0]
    with pytest.raises(DeepRecoError, match="truth"):
        true_edges(type(event)(hits=event.hits))


def test_module_map_keeps_the_true_edges_it_learnt_and_most_of_new_ones(gun_events, tmp_path):
    mm = ModuleMap.fit(gun_events[:5])
    seen = gun_events[0]
    graph, truth = mm.build(seen), true_edges(seen)
    n = seen.n_hits
    assert np.isin(truth[0] * n + truth[1], graph[0] * n + graph[1]).all()
    new = gun_events[-1]
    graph, truth = mm.build(new), true_edges(new)
    n = new.n_hits
    assert np.isin(truth[0] * n + truth[1], graph[0] * n + graph[1]).mean() > 0.8
    assert graph.shape[1] < 20 * truth.shape[1]
    # saved and loaded, the map builds the same graph
    mm2 = ModuleMap.load(mm.save(tmp_path / "map.npz"))
    assert np.array_equal(mm2.build(new), graph)
    # small chunks shared by two threads give the same graph, in the same order
    assert np.array_equal(mm.build(new, max_chunk=500, threads=2), graph)
    (tmp_path / "bad.npz").write_bytes(b"not a map")
    with pytest.raises(FormatError, match="bad.npz"):
        ModuleMap.load(tmp_path / "bad.npz")


def test_features_are_finite_and_sized(gun_events):
    event = gun_events[0]
    x = node_features(event)
    e = true_edges(event)
    f = edge_features(hit_coordinates(event.hits[["x", "y", "z"]].to_numpy()), x, e)
    assert x.shape == (event.n_hits, N_NODE) and f.shape == (e.shape[1], N_EDGE)
    assert np.isfinite(x).all() and np.isfinite(f).all()
    assert (x[:, 4] > 0).all()  # every simulated hit has cells
    # the cluster shape tells the polar angle in the pixel barrel: compare with the true direction
    truth = event.truth.set_index("hit_id").reindex(event.hits["hit_id"])
    p = truth[["tpx", "tpy", "tpz"]].to_numpy()
    cos_z = np.abs(p[:, 2]) / np.linalg.norm(p, axis=1).clip(1e-9)
    pixel_barrel = (event.hits["volume_id"].to_numpy() == 8) & (truth["particle_id"].to_numpy() != 0)
    assert pixel_barrel.sum() > 20
    # (coarse at small angles: one more pixel along z moves the estimate by ~0.2 here)
    assert np.median(np.abs(x[pixel_barrel, 6] - cos_z[pixel_barrel])) < 0.15
    assert np.corrcoef(x[pixel_barrel, 6], cos_z[pixel_barrel])[0, 1] > 0.5
    no_cells = type(event)(hits=event.hits)
    assert (node_features(no_cells)[:, 4:] == 0).all()


def test_two_crossing_tracks_give_two_tracks():
    # Tracks A (hits 0-4) and B (5-9) cross between their second and third hits: the graph also has the two
    # crossing edges, scored lower than the true ones.
    a, b = np.arange(5), np.arange(5, 10)
    true = np.concatenate([np.stack([a[:-1], a[1:]]), np.stack([b[:-1], b[1:]])], axis=1)
    cross = np.array([[a[1], b[1]], [b[2], a[2]]])
    edges = np.concatenate([true, cross], axis=1)
    scores = np.concatenate([np.full(true.shape[1], 0.9), [0.7, 0.7]])
    labels = build_tracks(10, edges, scores, threshold=0.5)
    assert len(set(labels[a])) == 1 and len(set(labels[b])) == 1 and labels[0] != labels[5]
    # an overlap hit (two hits of A on one layer: 2 and 10) joins A
    edges = np.concatenate([edges, [[1, 10], [10, 3]]], axis=1)
    labels = build_tracks(11, edges, np.concatenate([scores, [0.8, 0.8]]), threshold=0.5)
    assert labels[10] == labels[0]
    # a diamond (two hits 2 and 10 on one layer, both joined to 1 and to 3) stays one track with the layers
    # given, whichever edges score best
    layer = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 2])
    edges = np.concatenate([true, [[1, 10], [10, 3]]], axis=1)
    for diamond in ([0.95, 0.6], [0.6, 0.95]):
        s = np.concatenate([np.full(true.shape[1], 0.9), diamond])
        labels = build_tracks(11, edges, s, threshold=0.5, layer=layer)
        assert len(set(labels[[0, 1, 2, 3, 4, 10]])) == 1 and labels[5] != labels[0]
    # below the threshold nothing is a track; short tracks are dropped
    assert (build_tracks(10, true, np.full(true.shape[1], 0.2), threshold=0.5) == -1).all()
    assert (build_tracks(3, np.array([[0], [1]]), np.array([0.9]), min_hits=3) == -1).all()
    with pytest.raises(ValueError):
        build_tracks(10, true, np.ones(3))


def test_the_turn_penalty_keeps_a_track_straight_at_a_fork():
    # Track A (hits 0-3) runs along x at z = 0, track B (4-7) climbs steeply in z. A fake edge 1 -> 6 scores a
    # little higher than A's own 1 -> 2: by score alone hit 1 leaves A for B, B keeps its better edge 5 -> 6, and
    # A falls apart into two pieces too short to keep; with the positions the fake edge's turn costs it the fork.
    xyz = np.array([[10, 0, 0], [20, 0, 0], [30, 0, 0], [40, 0, 0],
                    [10, 1, 10], [20, 1, 15], [30, 0.5, 20], [40, 0, 25]], float)
    edges = np.array([[0, 1, 2, 4, 5, 6, 1], [1, 2, 3, 5, 6, 7, 6]])
    scores = np.array([0.9, 0.85, 0.9, 0.9, 0.95, 0.9, 0.9])
    by_score = build_tracks(8, edges, scores, threshold=0.5)
    assert (by_score[:4] == -1).all() and len(set(by_score[4:])) == 1
    labels = build_tracks(8, edges, scores, threshold=0.5, xyz=xyz)
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1 and labels[0] != labels[4] and labels[0] >= 0
    # without turning weights the positions change nothing
    assert (build_tracks(8, edges, scores, threshold=0.5, xyz=xyz, turn_weights=(0.0, 0.0)) == by_score).all()


def test_a_broken_track_is_joined_again_through_the_reserve_edges():
    # Track A: hits 0-7 on a straight line from the origin; the network kept all its edges but 3 -> 4. Track C
    # (hits 8-11) climbs steeply and starts where A broke.
    xyz = np.array([[10 * (i + 1), 0, 5 * (i + 1)] for i in range(8)]
                   + [[50, 0, 40], [60, 0, 60], [70, 0, 80], [80, 0, 100]], float)
    kept = np.array([[0, 1, 2, 4, 5, 6, 8, 9, 10], [1, 2, 3, 5, 6, 7, 9, 10, 11]])
    scores = np.full(kept.shape[1], 0.9)
    without = build_tracks(12, kept, scores, xyz=xyz)
    assert len(set(without[:8])) == 2
    labels = build_tracks(12, kept, scores, xyz=xyz, reserve=np.array([[3, 3], [8, 4]]))
    assert len(set(labels[:8])) == 1 and len(set(labels[8:])) == 1 and labels[0] != labels[8]
    # a join that turns sharply is refused: A's end and C's start stay apart
    labels = build_tracks(12, kept, scores, xyz=xyz, reserve=np.array([[3], [8]]))
    assert (labels == without).all()
    # hit 4 was taken by track B (12, 13, 4), which comes in from the side: A's pieces join through it (a path
    # of two reserve edges), B's end does not join A's second piece, and hit 4 stays B's
    xyz = np.concatenate([xyz, [[20, 20, 0], [35, 10, 0]]])
    kept = np.array([[0, 1, 2, 5, 6, 12, 13], [1, 2, 3, 6, 7, 13, 4]])
    scores = np.full(kept.shape[1], 0.9)
    assert len(set(build_tracks(14, kept, scores, xyz=xyz)[[0, 1, 2, 3, 5, 6, 7]])) == 2
    labels = build_tracks(14, kept, scores, xyz=xyz, reserve=np.array([[3, 4], [4, 5]]))
    assert len(set(labels[[0, 1, 2, 3, 5, 6, 7]])) == 1 and labels[4] == labels[12] != labels[0]
    # overlap siblings: A's first piece ends on hit 3, its second starts on hit 8 of the same layer (the other
    # module of an overlap); a reserve edge from the hit before (2) to 8 joins them, with the layers given
    xyz = np.array([[10 * (i + 1), 0, 5 * (i + 1)] for i in range(8)] + [[41, 1, 20.5]], float)
    layer = np.array([0, 1, 2, 3, 4, 5, 6, 7, 3])
    kept = np.array([[0, 1, 2, 8, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]])
    scores = np.full(kept.shape[1], 0.9)
    reserve = np.array([[2], [8]])
    assert len(set(build_tracks(9, kept, scores, xyz=xyz, layer=layer, reserve=reserve)[[0, 1, 2, 3, 4]])) == 1
    assert len(set(build_tracks(9, kept, scores, xyz=xyz, reserve=reserve)[[0, 1, 2, 3, 4]])) == 2


def test_edge_mlp_equals_the_mlp_of_the_concatenated_inputs():
    torch.manual_seed(1)
    net = mlp(2 * 5 + 3, 8, 2)
    a, b, e = torch.randn(7, 5), torch.randn(7, 5), torch.randn(20, 3)
    src, dst = torch.randint(0, 7, (20,)), torch.randint(0, 7, (20,))
    expected = net(torch.cat([a[src], b[dst], e], dim=1))
    assert torch.allclose(edge_mlp(net, project(net, a, b), e, src, dst), expected, atol=1e-6)


def test_interaction_network_learns_a_small_graph(gun_events):
    torch.manual_seed(0)
    event = gun_events[0]
    mm = ModuleMap.fit(gun_events[:1])
    graph = mm.build(event)
    truth = true_edges(event)
    n = event.n_hits
    y = torch.from_numpy(np.isin(graph[0] * n + graph[1], truth[0] * n + truth[1]).astype(np.float32))
    x = torch.from_numpy(node_features(event))
    attr = torch.from_numpy(edge_features(hit_coordinates(event.hits[["x", "y", "z"]].to_numpy()), x.numpy(), graph))
    edges = torch.from_numpy(graph)
    net = InteractionNetwork(hidden=16, n_iterations=2)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x, attr, edges), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    # inference in chunks of edges gives the same scores
    with torch.no_grad():
        whole = net(x, attr, edges)
        chunked = net(x, attr, edges, chunk=7)
    assert torch.allclose(whole, chunked, atol=1e-5)


TINY = {"val": 1, "filter_epochs": 3, "gnn_epochs": 6, "hidden": 16, "iterations": 3}


@contextlib.contextmanager
def one_thread():
    """Runs compared weight for weight train on one thread, as the subprocesses do."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_the_union_of_two_module_maps_keeps_what_either_connects(gun_events):
    a, b = ModuleMap.fit(gun_events[:3]), ModuleMap.fit(gun_events[3:6])
    u = a.union(b)
    for m in (a, b):
        rows = np.searchsorted(u.layer_pairs[:, 0] * 100 + u.layer_pairs[:, 1],
                               m.layer_pairs[:, 0] * 100 + m.layer_pairs[:, 1])
        assert (u.lo[rows] <= m.lo).all() and (u.hi[rows] >= m.hi).all()
    assert len(u.pairs) == len(np.unique(np.concatenate([a.pairs, b.pairs]), axis=0)) > max(len(a.pairs), len(b.pairs))
    assert u.n_events == 6
    for event in gun_events[6:]:  # the union's graph holds both maps' graphs
        n = event.n_hits
        keys = [g[0] * n + g[1] for g in (a.build(event), b.build(event), u.build(event))]
        assert np.isin(keys[0], keys[2]).all() and np.isin(keys[1], keys[2]).all()
    assert np.array_equal(a.union(a).pairs, a.pairs) and np.array_equal(a.union(a).hi, a.hi)


@pytest.fixture(scope="module")
def tiny_model(gun_events, tmp_path_factory):
    from deepreco.reconstruct.gnn import train_gnn

    data = tmp_path_factory.mktemp("gnn-data")
    for event in gun_events:
        write_event(event, data, format="parquet")
    out = tmp_path_factory.mktemp("gnn-model") / "gnn.pt"
    with one_thread():
        figures = train_gnn(out, overrides={"data": str(data), **TINY}, progress=False)
    return out, figures, data


def test_training_reports_each_stage_and_writes_a_model(tiny_model):
    out, figures, data = tiny_model
    ckpts = out.with_name(out.name + ".checkpoints")
    # the trainer's checkpoints of both stages: the filter's, then the network's
    assert sorted(p.name for p in (ckpts / "filter.checkpoints").iterdir()) == \
        ["epoch000.ckpt", "epoch001.ckpt", "epoch002.ckpt", "last.ckpt"]
    assert (ckpts / "epoch005.ckpt").is_file() and (ckpts / "last.ckpt").is_file()
    assert not out.with_name(out.name + ".ckpt").exists()
    for key in ("graph_efficiency", "graph_edges", "filter_efficiency", "filter_edges", "edge_efficiency",
                "edge_purity", "val_score", "edge_threshold", "filter_threshold"):
        assert key in figures
    assert figures["graph_efficiency"] > 0.8
    assert figures["train_loss"][-1] < figures["train_loss"][0]
    assert figures["filter_train_loss"][-1] < figures["filter_train_loss"][0]
    assert len(figures["val_loss"]) == 6 and figures["steps"] == 6 * figures["samples"]
    model = GNNModel.load(out)
    assert model.info["val_score"] == figures["val_score"] and model.info["best_epoch"] == figures["best_epoch"]
    # the model file keeps the settings that remake it: the shipped defaults with the run's own
    assert model.settings["gnn_epochs"] == 6 and model.settings["filter_hidden"] == 32
    assert model.settings["data"] == str(data)
    # choosing the threshold again on the same validation event gives the same choice, stored in the file
    again = tune_edge_threshold(out, data, events=1)
    assert again["edge_threshold"] == figures["edge_threshold"]
    assert again["val_score"] == pytest.approx(figures["val_score"])
    assert GNNModel.load(out).edge_threshold == figures["edge_threshold"]


def test_map_from_unites_the_map_learnt_from_the_data_with_a_models(tiny_model, gun_events, tmp_path):
    from deepreco.reconstruct.gnn import train_gnn
    from deepreco.reconstruct.gnn.train import prepare
    from deepreco.training import settings_for

    out, _, _ = tiny_model
    for event in gun_events[:3]:
        write_event(event, tmp_path / "few", format="parquet")
    few = {"data": str(tmp_path / "few"), "val": 1, "network_events": 1}
    learnt = prepare(settings_for("gnn", None, few))["map"]
    united = prepare(settings_for("gnn", None, {**few, "map_from": str(out)}))
    old = GNNModel.load(out).module_map
    assert united["figures"]["map_from"] == str(out)
    assert np.array_equal(united["map"].pairs, learnt.union(old).pairs)
    assert len(united["map"].pairs) > len(learnt.pairs)
    with pytest.raises(DeepRecoError, match="start_from .* map_from"):
        train_gnn(tmp_path / "x.pt", overrides={**few, "map_from": str(out), "start_from": str(out)}, progress=False)
    assert not (tmp_path / "x.pt").exists()


def _killed_run(data, out, stage: str, epoch: int, batch: int):
    """`train_gnn` in a subprocess on one thread, SIGKILLed before batch ``batch`` of epoch ``epoch`` of ``stage``
    (trainer kind ``gnn-filter`` or ``gnn``), with a checkpoint every 3 steps."""
    script = textwrap.dedent(f"""
        import os, signal, torch
        import lightning.pytorch as pl
        from deepreco.reconstruct.gnn import train_gnn
        torch.set_num_threads(1)

        class Kill(pl.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                if module.kind == {stage!r} and trainer.current_epoch == {epoch} and batch_idx == {batch}:
                    os.kill(os.getpid(), signal.SIGKILL)

        train_gnn({str(out)!r}, overrides={{"data": {str(data)!r}, **{TINY!r}, "checkpoint_every_steps": 3}},
                  progress=False, callbacks=[Kill()])
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("stage", ["gnn-filter", "gnn"])
def test_a_killed_training_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tiny_model, tmp_path, stage):
    from typer.testing import CliRunner

    from deepreco.cli import app

    whole, _, data = tiny_model
    out = tmp_path / "killed.pt"
    # the filter: 10 chunks an epoch, killed in its second epoch; the network: 10 sectors an epoch, in its fifth
    proc = _killed_run(data, out, stage, *((1, 4) if stage == "gnn-filter" else (4, 5)))
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not out.exists()
    ckpts = out.with_name("killed.pt.checkpoints")
    last = (ckpts / "filter.checkpoints" if stage == "gnn-filter" else ckpts) / "last.ckpt"
    assert read_checkpoint(last)["global_step"] == (12 if stage == "gnn-filter" else 45)  # mid-epoch
    with one_thread():
        result = CliRunner().invoke(app, ["train", "gnn", "--out", str(out), "--resume", str(last)])
    assert result.exit_code == 0, result.output
    resumed, uninterrupted = load_model_file(out, "gnn"), load_model_file(whole, "gnn")
    assert resumed.record["train_loss"] == uninterrupted.record["train_loss"]
    assert resumed.record["filter_train_loss"] == uninterrupted.record["filter_train_loss"]
    for name in ("filter", "gnn"):
        for k, w in uninterrupted.weights[name].items():
            assert torch.equal(resumed.weights[name][k], w), (name, k)
    assert resumed.config == uninterrupted.config  # thresholds and sizes
    assert {**resumed.settings, "checkpoint_every_steps": None} == uninterrupted.settings


def test_two_processes_under_torchrun_take_the_steps_of_one(tiny_model, tmp_path):
    """Each global batch of 2 chunks (filter) or sectors (network) is split over the processes, and each process's
    loss is the mean of its samples' losses, weighted by its share: the same gradient as one process."""
    from deepreco.reconstruct.gnn import train_gnn

    data = tiny_model[2]
    # 8 training events of a chunk and a sector each: 4 whole global batches an epoch (a last batch of one sample
    # would be taken by one process and left out by two); a validation event (a sample) for each process
    settings = {"data": str(data), **TINY, "max_events": 10, "val": 2, "filter_epochs": 2, "gnn_epochs": 2,
                "filter_batch_size": 2, "gnn_batch_size": 2}
    config = tmp_path / "gnn.yaml"
    config.write_text(yaml.safe_dump(settings))
    with one_thread():
        train_gnn(tmp_path / "one.pt", config, progress=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "deepreco",
           "train", "gnn", "--config", str(config), "--out", str(tmp_path / "two.pt")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one, two = load_model_file(tmp_path / "one.pt", "gnn"), load_model_file(tmp_path / "two.pt", "gnn")
    assert one.record["processes"] == 1 and two.record["processes"] == 2
    assert one.record["steps"] == two.record["steps"] == 8
    for key in ("filter_train_loss", "train_loss", "val_loss"):
        assert np.allclose(two.record[key], one.record[key], rtol=1e-5, atol=0), key
    for name in ("filter", "gnn"):
        for k, w in one.weights[name].items():
            assert torch.allclose(two.weights[name][k], w, atol=1e-5), (name, k)


def test_bad_gnn_settings_and_checkpoints_give_one_line(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from deepreco.cli import app

    data = tiny_model[2]
    out = tmp_path / "m.pt"
    unknown = tmp_path / "gnn.yaml"
    unknown.write_text("gnn_epochz: 3\n")
    lstm_ckpt = tmp_path / "lstm.ckpt"
    torch.save({"deepreco": {"kind": "lstm", "settings": {}}, "state_dict": {}}, lstm_ckpt)
    for args, message in [(["--config", str(unknown)], "gnn.yaml: unknown gnn setting gnn_epochz"),
                          (["--resume", str(lstm_ckpt)], "lstm.ckpt: a checkpoint of a 'lstm' training, expected a "
                                                         "'gnn' one"),
                          (["--gnn-epochs", "0"], "Invalid value for '--gnn-epochs'")]:
        result = CliRunner().invoke(app, ["train", "gnn", "--data", str(data), "--out", str(out), *args])
        code = 2 if args[0] == "--gnn-epochs" else 1  # a number out of range is a usage error, found while parsing
        assert result.exit_code == code and result.stderr.startswith("error: "), result.output
        assert result.stderr.strip().count("\n") == 0 and message in result.stderr, result.stderr
        assert not out.exists() and not out.with_name("m.pt.checkpoints").exists()


def test_training_can_start_from_a_models_network(tiny_model, tmp_path):
    from deepreco.reconstruct.gnn import train_gnn

    start, _, data = tiny_model
    out = tmp_path / "again.pt"
    # at a vanishing learning rate the network stays the one it started from
    settings = {"data": str(data), "val": 1, "filter_epochs": 1, "gnn_epochs": 1, "hidden": 16, "iterations": 3}
    train_gnn(out, overrides={**settings, "init_gnn": str(start), "learning_rate": 1e-12}, progress=False)
    before, after = GNNModel.load(start).gnn.state_dict(), GNNModel.load(out).gnn.state_dict()
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    assert GNNModel.load(out).settings["init_gnn"] == str(start)
    with pytest.raises(DeepRecoError, match="its network has"):
        train_gnn(tmp_path / "other.pt", overrides={**settings, "hidden": 8, "init_gnn": str(start)}, progress=False)


def test_starting_from_a_model_keeps_its_map_and_filter_and_trains_its_network(tiny_model, tmp_path):
    from deepreco.reconstruct.gnn import train_gnn

    start, _, data = tiny_model
    out = tmp_path / "further.pt"
    figures = train_gnn(out, overrides={"data": str(data), "val": 1, "gnn_epochs": 2, "seed": 1,
                                        "start_from": str(start)}, progress=False)
    before, after = GNNModel.load(start), GNNModel.load(out)
    assert figures["start_from"] == str(start) and "filter_train_loss" not in figures
    assert not out.with_name("further.pt.checkpoints").joinpath("filter.checkpoints").exists()
    assert np.array_equal(before.module_map.pairs, after.module_map.pairs)
    assert after.filter_threshold == before.filter_threshold
    assert all(torch.equal(v, after.filter.state_dict()[k]) for k, v in before.filter.state_dict().items())
    assert after.gnn.hparams == before.gnn.hparams  # its own size, not the settings' default hidden 32
    assert any(not torch.allclose(v, after.gnn.state_dict()[k]) for k, v in before.gnn.state_dict().items())
    with pytest.raises(DeepRecoError, match="not both"):
        train_gnn(tmp_path / "x.pt", overrides={"data": str(data), "val": 1, "start_from": str(start),
                                                "init_gnn": str(start)}, progress=False)


def test_two_threads_score_the_same_graph(tiny_model, gun_events):
    method = get_method("gnn", model=tiny_model[0], chunk=100)
    before = torch.get_num_threads()
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            outs.append(method.score_graph(gun_events[-1], keep_graph=True))
        finally:
            torch.set_num_threads(before)
    one, two = outs
    assert np.array_equal(one["graph"], two["graph"]) and np.array_equal(one["edges"], two["edges"])
    assert np.allclose(one["scores"], two["scores"], atol=1e-5)


def test_graph_filtered_block_by_block_is_the_graph_filtered_whole(tiny_model, gun_events):
    # the module-map graph grows with the square of the hits: by default it is filtered as its blocks are made
    # (issue 21, memory); the chunks the filter sees, and so every score, are those of the whole graph
    from deepreco.reconstruct.gnn.method import _slices

    method = get_method("gnn", model=tiny_model[0], chunk=100)
    event = gun_events[-1]
    whole, streamed = method.score_graph(event, keep_graph=True), method.score_graph(event)
    assert "graph" not in streamed and streamed["graph_edges"] == whole["graph"].shape[1] > 300
    for key in ("edges", "filter_scores", "scores", "reserve"):
        assert np.array_equal(whole[key], streamed[key]), key
    blocks = [np.arange(2 * n).reshape(2, n) + k for k, n in enumerate((5, 0, 130, 7, 64, 1))]
    joined = np.concatenate(blocks, axis=1)
    cut = list(_slices(blocks, 50))
    assert [c.shape[1] for c in cut] == [50, 50, 50, 50, 7]
    assert np.array_equal(np.concatenate(cut, axis=1), joined)


def test_gnn_method_reconstructs_a_muon_gun(tiny_model, gun_events):
    out = tiny_model[0]
    method = get_method("gnn", model=out)
    event = gun_events[-1]  # the validation event: not learnt from
    tracks = method.reconstruct(event)
    result = evaluate(event.truth, event.particles, tracks)
    assert result["efficiency"] > 0.85 and result["score"] > 0.75
    assert method.last_run["filtered_edges"] <= method.last_run["graph_edges"]
    # an empty event gives an empty table; an event without cells is refused (the networks read them)
    empty = type(event)(hits=event.hits.iloc[:0])
    assert len(method.reconstruct(empty)) == 0
    with pytest.raises(EventError, match="needs the event's cells"):
        method.reconstruct(type(event)(hits=event.hits, truth=event.truth, particles=event.particles))


def test_gnn_tracks_followed_by_the_kalman_filter(tiny_model, gun_events):
    out = tiny_model[0]
    event = gun_events[-1]
    plain = get_method("gnn", model=out, kalman=False, later_passes=False)  # the graph's own tracks
    followed = get_method("gnn", model=out)  # kalman and later_passes: the defaults
    results = [evaluate(event.truth, event.particles, m.reconstruct(event)) for m in (plain, followed)]
    # the tiny network's tracks, followed along their helices: whole muons, not pieces of them
    assert results[1]["score"] > results[0]["score"] and results[1]["score"] > 0.9
    assert results[1]["efficiency_perfect"] >= results[0]["efficiency_perfect"]
    assert followed.last_run["seconds_kalman"] > 0 and plain.last_run["seconds_kalman"] == 0
    with pytest.raises(DeepRecoError, match="has no parameter bogus"):
        get_method("gnn", model=out, kalman=True, ckf={"bogus": 1})


def test_a_device_torch_cannot_use_is_refused_in_one_line():
    with pytest.raises(DeepRecoError, match="gnn device 'tpu': not a torch device") as caught:
        get_method("gnn", device="tpu")
    assert "\n" not in str(caught.value)
    if not torch.cuda.is_available():  # the machines of this project's CI: no GPU
        with pytest.raises(DeepRecoError, match="gnn device 'cuda': torch cannot use it here"):
            get_method("gnn", device="cuda")
    assert get_method("gnn", device="cpu").device == "cpu"


def test_bad_model_files_are_refused(tmp_path):
    with pytest.raises(MissingFileError):
        get_method("gnn", model=tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(FormatError, match="junk.pt"):
        get_method("gnn", model=tmp_path / "junk.pt")
    torch.save({"kind": "something else"}, tmp_path / "other.pt")
    with pytest.raises(FormatError, match="other.pt: not a deepreco model file"):
        get_method("gnn", model=tmp_path / "other.pt")
    shipped_lstm = Path(__file__).parents[1] / "src" / "deepreco" / "data" / "models" / "lstm_tracks.pt"
    with pytest.raises(FormatError, match="a model of kind 'lstm', expected kind 'gnn'"):
        get_method("gnn", model=shipped_lstm)
    assert EdgeFilter().hparams["hidden"] == 32


def test_metric_learning_graph_keeps_the_true_edges_at_its_radius(gun_events, tmp_path):
    net, history = train_embedding(gun_events[:4], hidden=16, dim=4, epochs=3, steps_per_event=10, wedge=0.6,
                                   seed=0)
    assert history["train_loss"][-1] < history["train_loss"][0]
    event = gun_events[0]
    radius = choose_radius(net, [event], efficiency=1.0)
    graph, truth = radius_graph(event, net, radius * 1.001, k_max=event.n_hits), true_edges(event)
    n = event.n_hits
    assert np.isin(truth[0] * n + truth[1], graph[0] * n + graph[1]).all()
    layer = event.hits["layer_id"].to_numpy() + 100 * event.hits["volume_id"].to_numpy()
    assert (layer[graph[0]] != layer[graph[1]]).all()
    net2, info = load_embedding(save_embedding(net, tmp_path / "emb.pt", {"radius": radius, "k_max": 64}))
    assert info["radius"] == radius
    assert np.array_equal(radius_graph(event, net2, radius, 64), radius_graph(event, net, radius, 64))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(FormatError, match="junk.pt"):
        load_embedding(tmp_path / "junk.pt")


def test_train_embedding_command_writes_a_model_with_its_validation_figures(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from deepreco.cli import app

    data = tiny_model[2]
    out = tmp_path / "emb.pt"
    args = ["train", "embedding", "--data", str(data), "--out", str(out), "--events", "4", "--val", "2",
            "--epochs", "2", "--steps", "5", "--hidden", "16", "--dim", "4", "--efficiency", "0.9", "--k-max", "64"]
    with one_thread():
        res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    net, info = load_embedding(out)
    ckpts = out.with_name("emb.pt.checkpoints")
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch000.ckpt", "epoch001.ckpt", "last.ckpt"]
    assert len(info["train_loss"]) == len(info["val_loss"]) == 2 and info["radius"] > 0
    assert info["val_edges"] > 0 and 0.5 < info["val_efficiency"] <= 1.0
    assert load_model_file(out, "embedding").settings["steps_per_event"] == 5
    # resumed from the first epoch's checkpoint, the run ends with the same weights
    with one_thread():
        res = CliRunner().invoke(app, ["train", "embedding", "--out", str(tmp_path / "again.pt"), "--resume",
                                       str(ckpts / "epoch000.ckpt")])
    assert res.exit_code == 0, res.output
    again, again_info = load_embedding(tmp_path / "again.pt")
    assert again_info["train_loss"] == info["train_loss"] and again_info["radius"] == info["radius"]
    assert all(torch.equal(again.state_dict()[k], w) for k, w in net.state_dict().items())
    # the radius keeps the asked share of the validation events' true edges
    dataset = Dataset(data, parts=("hits", "cells", "particles", "truth"))
    val = [dataset.read(name) for name in dataset.names[-2:]]
    lengths = []
    for event in val:
        emb, edges = embed(net, node_features(event)), true_edges(event)
        lengths.append(np.linalg.norm(emb[edges[0]] - emb[edges[1]], axis=1))
    lengths = np.concatenate(lengths)
    assert np.mean(lengths <= info["radius"]) == pytest.approx(0.9, abs=0.005)
    # more events asked for than the folder holds: a one-line error, no file
    res = CliRunner().invoke(app, [*args[:4], "--out", str(tmp_path / "none.pt"), "--events", "40"])
    assert res.exit_code != 0 and "holds 11 events" in res.output
    assert not (tmp_path / "none.pt").exists()


def test_embedding_under_torchrun_takes_the_steps_of_one_process(tiny_model, tmp_path):
    """The embedding's loss is the mean over its wedges: 2 processes with a global batch of 2 wedges take the
    steps of one process."""
    from deepreco.reconstruct.gnn.metric import train_embedding_model

    config = tmp_path / "embedding.yaml"
    config.write_text(yaml.safe_dump({"data": str(tiny_model[2]), "events": 4, "val": 2, "epochs": 2,
                                      "steps_per_event": 2, "batch_size": 2, "hidden": 16, "dim": 4}))
    with one_thread():
        train_embedding_model(tmp_path / "one.pt", config, progress=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "deepreco",
           "train", "embedding", "--config", str(config), "--out", str(tmp_path / "two.pt")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one, two = load_model_file(tmp_path / "one.pt", "embedding"), load_model_file(tmp_path / "two.pt", "embedding")
    assert two.record["processes"] == 2 and one.record["steps"] == two.record["steps"] == 8
    for key in ("train_loss", "val_loss"):
        assert np.allclose(two.record[key], one.record[key], rtol=1e-5, atol=0), key
    for k, w in one.weights["net"].items():
        assert torch.allclose(two.weights["net"][k], w, atol=1e-5), k
