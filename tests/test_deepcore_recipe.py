"""DeepCore trained as seed 000 trained it: the stepped learning rate, the new loss, merged-cluster and jet-axis
windows, and model files from before these options."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.deepcore.detector import PixelBarrel
from deepreco.deepcore.evaluate import SHIPPED_MODEL
from deepreco.deepcore.events import simulate
from deepreco.deepcore.loss import deepcore_loss
from deepreco.deepcore.model import DeepCoreNet
from deepreco.deepcore.train import NEW_LOSS_FROM, load_model, make_task, save_model, train
from deepreco.deepcore.windows import AXIS, build_windows, directions, merged, write_shard
from deepreco.training import settings_for

torch.set_num_threads(1)
DET = PixelBarrel()


def hand_event(tracks, jets=((1500.0, 0.2, 0.3),), seed=1):
    """Particles from the origin, one per (pT [GeV], eta, phi, charge), and calorimeter jets (pT, eta, phi)."""
    pt, eta, phi, q = (np.array(c, dtype=float) for c in zip(*tracks, strict=True))
    n = len(pt)
    particles = pd.DataFrame({"particle_id": np.arange(1, n + 1), "vx": 0.0, "vy": 0.0, "vz": 0.0,
                              "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "q": q,
                              "nhits": 0, "particle_type": 211})
    return simulate(particles, pd.DataFrame(list(jets), columns=["pt", "eta", "phi"]), np.zeros(3),
                    np.random.default_rng(seed), DET)


def jet_tracks(seed=3, n=25):
    rng = np.random.default_rng(seed)
    tracks = [(rng.uniform(2, 50), 0.2 + rng.normal(0, 0.03), 0.3 + rng.normal(0, 0.03), rng.choice([-1, 1]))
              for _ in range(n)]
    # pairs 5 um apart on layer 1: merged clusters, the windows the recipe keeps
    for k in range(4):
        eta, phi = 0.2 + 0.02 * k, 0.28 + 0.015 * k
        tracks += [(100.0, eta, phi, 1), (100.0, eta, phi + 0.00015, -1)]
    return tracks


@pytest.fixture(scope="module")
def event():
    return hand_event(jet_tracks())


def test_the_schedule_gives_the_seeds_rates_at_its_epochs(tmp_path, event):
    path = write_shard(tmp_path / "s.npz", build_windows(event))
    # a run of 246 steps: step k stands for the seed's epoch k
    settings = settings_for("deepcore", overrides={"epochs": 1, "batch_size": 1, "lr_scale": 1.0, "max_steps": 246})
    task = make_task(settings, [path], [])
    opt, sched = task.optimizer(task.net)
    rates = []
    for _ in range(246):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    expect = {0: 2e-4, 10: 2e-4, 11: 1e-4, 39: 1e-4, 40: 7e-5, 199: 7e-5, 200: 1e-6, 238: 1e-6, 239: 1e-7,
              245: 1e-7}
    for epoch, lr in expect.items():
        assert rates[epoch] == pytest.approx(lr, rel=1e-9), epoch
    assert len(set(rates)) == 5 and sched["interval"] == "step"
    settings["lr_scale"] = 5.0
    opt, sched = make_task(settings, [path], []).optimizer(DeepCoreNet())
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_the_new_loss_ignores_the_pixels_outside_the_ncp():
    logits = torch.tensor([0.0, 2.0, -1.0]).view(1, 3, 1, 1)
    flags = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    kinds = torch.tensor([2, 1, 0], dtype=torch.int8).view(1, 3, 1, 1)
    pred, target = torch.zeros(1, 3, 5, 1, 1), torch.zeros(1, 3, 5, 1, 1)
    _, bce, _ = deepcore_loss(logits, pred, flags, kinds, target, other_weight=0.0)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert bce.item() == pytest.approx((10 * -math.log(sig(0.0)) + 1 * -math.log(1 - sig(2.0))) / 3, rel=1e-6)
    moved = logits.clone()
    moved[0, 2] = 7.0  # an "other" pixel: the new loss does not see it, the complete BCE does
    assert deepcore_loss(moved, pred, flags, kinds, target, other_weight=0.0)[1].item() == pytest.approx(bce.item())
    assert deepcore_loss(moved, pred, flags, kinds, target)[1] > deepcore_loss(logits, pred, flags, kinds, target)[1]


def test_the_task_switches_to_the_new_loss_at_its_step(tmp_path, event):
    w = build_windows(event)
    path = write_shard(tmp_path / "s.npz", w)
    settings = settings_for("deepcore", overrides={"epochs": 1, "batch_size": 4, "max_steps": 10,
                                                   "new_loss_from": 0.5})
    task = make_task(settings, [path], [])
    opt, sched = task.optimizer(task.net)
    batch = task.batch("train", np.arange(4))
    logits, pred = task.net(*batch[:2])
    complete = deepcore_loss(logits, pred, *batch[2:])[0].item()
    new = deepcore_loss(logits, pred, *batch[2:], other_weight=0.0)[0].item()
    assert new < complete
    seen = []
    for _ in range(10):
        seen.append(task.loss(task.net, *batch).item())
        opt.step()  # no gradients: the weights stay, only the step count moves
        sched["scheduler"].step()
    assert seen[:5] == pytest.approx([complete] * 5) and seen[5:] == pytest.approx([new] * 5)
    assert NEW_LOSS_FROM == pytest.approx(191 / 246)


def test_merged_cluster_and_jet_axis_windows(event):
    every = directions(event)
    recipe = directions(event, merged_only=True, jet_axis=True)
    cl = event.clusters.iloc[every["cluster"].to_numpy()]
    truly = cl["n_particles"].to_numpy() > 1
    is_merged = merged(cl, every["eta"].to_numpy())
    assert truly.sum() >= 4 and is_merged[truly].all()  # every two-track cluster is called merged
    assert is_merged.sum() < len(every) // 2  # and most one-track clusters are not
    kept = recipe[recipe["from_layer"] != AXIS]
    assert sorted(kept["cluster"]) == sorted(every["cluster"][is_merged])
    axis = recipe[recipe["from_layer"] == AXIS]
    assert len(axis) == 1 and axis["eta"].iloc[0] == 0.2 and axis["phi"].iloc[0] == 0.3
    w = build_windows(event, merged_only=True, jet_axis=True)
    assert len(w.inputs) == len(recipe) and (w.meta["from_layer"] == AXIS).sum() == 1
    assert w.inputs[(w.meta["from_layer"] == AXIS).to_numpy()].sum() > 0  # the axis window sees the core
    assert len(w.t_index) > 0


@pytest.mark.parametrize("options", [{"new_loss_from": 0.0}, {"merged_only": True, "jet_axis": True}],
                         ids=["new-loss", "merged-and-axis-windows"])
def test_each_option_trains_with_falling_loss(tmp_path, event, options):
    windows = {k: v for k, v in options.items() if k in ("merged_only", "jet_axis")}
    w = build_windows(event, **windows)
    path = write_shard(tmp_path / "s.npz", w)
    _, history = train([path], epochs=12, batch_size=32, lr_scale=25.0, seed=0,
                       new_loss_from=options.get("new_loss_from"))
    losses = history["loss"]
    assert len(losses) == 12 and losses[-1] < 0.95 * losses[0] and np.mean(losses[-3:]) < np.mean(losses[:3])


def test_old_model_files_load_with_the_old_windows(tmp_path):
    net, info = load_model(SHIPPED_MODEL)  # trained before the options existed
    assert net.windows == {"merged_only": False, "jet_axis": False} and "merged_only" not in info
    path = save_model(DeepCoreNet(), tmp_path / "m.pt", {}, {"merged_only": True, "jet_axis": True,
                                                            "new_loss_from": NEW_LOSS_FROM})
    net, info = load_model(path)
    assert net.windows == {"merged_only": True, "jet_axis": True} and info["new_loss_from"] == NEW_LOSS_FROM


def test_cli_trains_with_the_recipe_on_real_dijets(tmp_path):
    from typer.testing import CliRunner

    from deepreco.deepcore.cli import app

    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    runner = CliRunner()
    model = tmp_path / "m.pt"
    result = runner.invoke(app, ["train", "--events", "2", "--val-events", "0", "--seed", "5", "--work",
                                 str(tmp_path / "shards"), "--out", str(model), "--max-steps", "2",
                                 "--merged-only", "--jet-axis", "--new-loss-from", "0.5"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "shards" / "windows-merged-only-jet-axis").glob("*.npz"))) == 1
    net, info = load_model(model)
    assert net.windows == {"merged_only": True, "jet_axis": True} and info["new_loss_from"] == 0.5
    bad = runner.invoke(app, ["train", "--events", "2", "--out", str(tmp_path / "b.pt"), "--new-loss-from", "1.5"])
    assert bad.exit_code != 0 and "1.5 is not in the range" in bad.output and not (tmp_path / "b.pt").exists()
