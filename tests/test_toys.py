"""HEP.TrkX's toy detectors, models, baselines and benchmark, as a user meets them (fast: one CPU core)."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deepreco.errors import DeepRecoError
from deepreco.toys import generate_2d, generate_3d, generate_toy, generate_track_images, hit_accuracy, pixel_accuracy
from deepreco.toys.accuracy import picked_hits
from deepreco.toys.baselines import hough_scores, kalman_scores
from deepreco.toys.losses import covariance_from_outputs, gaussian_nll, plane_cross_entropy
from deepreco.toys.models import MODELS, build_model
from deepreco.toys.models.conv_lstm_params import ConvLSTMTrackParams
from deepreco.toys.track_params import evaluate_track_params, train_track_params
from deepreco.toys.training import bf16_is_fast, lr_factor, predict_scores, train_model

torch.set_num_threads(1)


# --- the toy detectors ---------------------------------------------------------------------------------------

def test_3d_toy_shapes_and_counts():
    data = generate_3d(20, n_background=2, noise_prob=0.0, seed=1)
    assert data.events.shape == (20, 10, 32, 32) and data.signal.shape == data.events.shape
    assert (data.signal.sum(axis=(2, 3)) == 1).all()  # one signal pixel on every plane
    assert (data.n_background == 2).all()
    assert len(data.tracks) == 20 * 3 and set(data.tracks["track_id"]) == {1, 2, 3}
    assert data.events.max() == 1 and (data.events >= data.signal).all()
    # without noise every hit belongs to a track, and a plane holds at most 3 hits
    assert (data.labels[data.events > 0] > 0).all()
    assert data.events[:, 3:].sum(axis=(2, 3)).max() <= 3


def test_seed_layers_hold_the_signal_only():
    data = generate_3d(50, mean_background=10.0, noise_prob=0.3, seed=2)
    assert (data.events[:, :3] == data.signal[:, :3]).all()
    assert (data.events[:, 3:] > data.signal[:, 3:]).any()  # the noise is there after the seed planes


def test_background_and_noise_rates_follow_the_settings():
    data = generate_3d(2000, mean_background=3.0, noise_prob=0.0, seed=3)
    assert abs(data.n_background.mean() - 3.0) < 0.15
    noisy = generate_3d(200, n_background=0, noise_prob=0.05, seed=4)
    extra = (noisy.events[:, 3:].astype(int) - noisy.signal[:, 3:]).mean()
    assert abs(extra - 0.05) < 0.005


def test_noise_is_one_independent_draw_a_pixel():
    # drawn as a Binomial count of distinct uniform pixels: per plane the count is Binomial(1024, p), spread evenly
    data = generate_3d(3000, n_background=0, noise_prob=0.01, seed=12)
    noise = data.events[:, 3:].astype(int) - data.signal[:, 3:]
    per_plane = noise.reshape(-1, 1024).sum(axis=1)
    assert abs(per_plane.mean() - 10.24) < 0.1 and abs(per_plane.var() - 10.24 * 0.99) < 0.5
    by_pixel = noise.reshape(-1, 1024).mean(axis=0)
    assert abs(by_pixel.mean() - 0.01) < 1e-3 and by_pixel.std() < 0.004
    assert (generate_3d(2, noise_prob=1.0, seed=1).events[:, 3:] == 1).all()


def test_generators_are_reproducible_with_a_seed():
    a, b, c = generate_3d(5, seed=7), generate_3d(5, seed=7), generate_3d(5, seed=8)
    assert (a.events == b.events).all() and a.tracks.equals(b.tracks)
    assert not (a.events == c.events).all()


def test_2d_toy_and_hit_list_view():
    data = generate_2d(4, n_layers=50, width=50, n_background=3, noise_prob=0.01, seed=5)
    assert data.events.shape == (4, 50, 50)
    hits = data.hits()
    assert list(hits.columns) == ["event", "hit_id", "layer", "x", "track_id"]
    assert len(hits) == data.events.sum()
    assert (hits.groupby("event")["hit_id"].min() == 1).all()
    signal = hits[hits["track_id"] == 1]
    assert len(signal) == 4 * 50 and (signal.groupby("event").size() == 50).all()


def test_3d_hit_list_matches_the_image():
    data = generate_3d(3, seed=6)
    hits = data.hits()
    assert {"x", "y"} <= set(hits.columns)
    assert (data.events[hits["event"], hits["layer"], hits["x"], hits["y"]] == 1).all()
    sub = data.subset(np.array([2]))
    assert sub.n_events == 1 and (sub.events[0] == data.events[2]).all() and set(sub.tracks["event"]) == {0}


def test_track_images_for_the_parameter_model():
    imgs = generate_track_images(300, mean_tracks=3.0, max_tracks=6, seed=1)
    assert imgs.images.shape == (300, 32, 32) and imgs.params.shape == (300, 6, 2)
    assert imgs.n_tracks.min() >= 1 and imgs.n_tracks.max() <= 6
    mask = imgs.mask()
    icpt = np.where(mask, imgs.params[..., 1], 10.0)
    assert (np.diff(icpt, axis=1)[mask[:, 1:]] >= 0).all()  # sorted by intercept
    assert (imgs.params[~mask] == 0).all()
    assert (imgs.images.sum(axis=2) <= imgs.n_tracks[:, None]).all()  # one pixel a track a layer, at most


def test_bad_settings_raise_one_line_errors():
    for kwargs in ({"n_events": 0}, {"n_events": 5, "noise_prob": 1.5}, {"n_events": 5, "n_seed": 10}):
        with pytest.raises(DeepRecoError) as err:
            generate_3d(**kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(DeepRecoError):
        build_model("transformer", 10, (32, 32))


# --- the accuracies ----------------------------------------------------------------------------------------

def test_accuracies_by_hand():
    # 1 event, 4 planes of 3 pixels, 1 seed plane; the signal is pixel 0, 1, 2, 1
    signal = np.zeros((1, 4, 3))
    signal[0, [0, 1, 2, 3], [0, 1, 2, 1]] = 1
    events = signal.copy()
    events[0, 1, 2] = events[0, 2, 0] = 1  # a background hit on planes 1 and 2
    scores = np.array([[[9, 0, 0],      # seed plane: right
                        [0, 1, 5],      # top pixel 2 (a wrong hit): pixel wrong, hit wrong
                        [0, 1, 3],      # top pixel 2 (the signal): right
                        [7, 2, 0]]])    # top pixel 0 (no hit): pixel wrong, but the top *hit* is the signal
    assert pixel_accuracy(scores, signal, n_seed=1) == pytest.approx(1 / 3)
    assert hit_accuracy(scores, signal, events) == pytest.approx(3 / 4)  # HEP.TrkX: all planes
    assert hit_accuracy(scores, signal, events, n_seed=1) == pytest.approx(2 / 3)
    with pytest.raises(DeepRecoError):
        pixel_accuracy(scores[:, :3], signal)


def test_picked_hits_table_agrees_with_hit_accuracy():
    data = generate_3d(20, seed=12)
    scores = kalman_scores(data.events, data.n_seed)
    table = picked_hits(data, scores)
    truth = data.hits()
    assert (table.groupby("event")["track_id"].sum() == data.n_layers).all()  # one hit a plane
    right = ((table["track_id"] == 1) & (truth["track_id"] == 1)).sum()
    assert right / (20 * data.n_layers) == pytest.approx(hit_accuracy(scores, data.signal, data.events))


# --- the losses --------------------------------------------------------------------------------------------

def test_gaussian_likelihood_against_a_hand_computation():
    r = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    raw = torch.tensor([[math.log(0.5), math.log(2.0), math.atanh(0.25)]], dtype=torch.float64)
    # Sigma = [[0.5, 0.25 * sqrt(0.5 * 2)], [0.25, 2]] = [[0.5, 0.25], [0.25, 2]]; |Sigma| = 1 - 0.0625 = 0.9375
    # Sigma^-1 = [[2, -0.25], [-0.25, 0.5]] / 0.9375
    # r^T Sigma^-1 r = (2 * 0.09 + 2 * 0.25 * 0.06 + 0.5 * 0.04) / 0.9375 = 0.23 / 0.9375
    expected = math.log(0.9375) + 0.23 / 0.9375
    assert gaussian_nll(r, raw).item() == pytest.approx(expected, rel=1e-12)
    cov = covariance_from_outputs(raw)[0].numpy()
    assert np.allclose(cov, [[0.5, 0.25], [0.25, 2.0]])
    # the mask keeps only real tracks: a second, masked-out slot must not change the mean
    r2 = torch.cat([r, torch.tensor([[5.0, 5.0]], dtype=torch.float64)])
    raw2 = torch.cat([raw, raw])
    assert gaussian_nll(r2, raw2, torch.tensor([True, False])).item() == pytest.approx(expected, rel=1e-12)


def test_plane_cross_entropy_is_the_softmax_loss_per_plane():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    target = torch.tensor([[0, 2]])
    by_hand = (-math.log(math.exp(2) / (math.exp(2) + 2)) + math.log(3)) / 2
    assert plane_cross_entropy(logits, target).item() == pytest.approx(by_hand, rel=1e-6)


# --- the models train --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_toy():
    """6 planes of 8 x 8 pixels: the models' shapes are the 3D toy's, at a size a test can train."""
    return generate_toy(32, n_layers=6, size=8, dim=2, n_seed=2, mean_background=1.0, noise_prob=0.02, seed=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_trains_and_its_loss_falls(name, small_toy):
    torch.manual_seed(0)
    model = build_model(name, small_toy.n_layers, small_toy.plane_shape, hidden=32) if "lstm" in name else \
        build_model(name, small_toy.n_layers, small_toy.plane_shape)
    after_seed = slice(small_toy.n_seed, None)  # the loss the training minimises: the planes after the seed
    with torch.no_grad():
        before = plane_cross_entropy(model(torch.from_numpy(small_toy.events).float()),
                                     torch.from_numpy(small_toy.signal_index()), after_seed).item()
    # the deep convolutions want a gentler step than the LSTMs, and the autoencoder a few more of them
    lr, steps = (1e-2, 30) if "lstm" in name else (3e-3, 30 if name == "convnn" else 60)
    fit = train_model(model, small_toy, epochs=steps, batch_size=32, lr=lr, seed=0, progress=False)
    assert fit.steps == steps and fit.seconds > 0
    assert fit.epoch_losses[-1] < 0.85 * before
    scores = predict_scores(model, small_toy.events)
    assert scores.shape == (32, 6, 64) and np.allclose(scores.sum(axis=2), 1, atol=1e-4)


def test_learning_rate_schedule_warms_up_and_decays():
    assert lr_factor(0.3, "constant") == 1.0
    assert lr_factor(0.0) == pytest.approx(0.01) and lr_factor(0.05) == pytest.approx(1.0)
    assert lr_factor(0.025) == pytest.approx(0.505)
    assert lr_factor(1.0) == pytest.approx(0.01) and lr_factor(2.0) == pytest.approx(0.01)
    values = [lr_factor(p / 100) for p in range(5, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # no rise after the warm-up
    with pytest.raises(DeepRecoError):
        lr_factor(0.5, "linear")


def test_training_options_seed_planes_clipping_and_bf16(small_toy):
    target = torch.from_numpy(small_toy.signal_index())
    events = torch.from_numpy(small_toy.events).float()
    for kwargs in ({"seed_planes_in_loss": True, "schedule": "constant", "clip": None}, {"bf16": True}):
        torch.manual_seed(0)
        model = build_model("lstm", small_toy.n_layers, small_toy.plane_shape, hidden=32)
        fit = train_model(model, small_toy, epochs=20, batch_size=32, lr=1e-2, progress=False, **kwargs)
        planes = slice(None) if kwargs.get("seed_planes_in_loss") else slice(small_toy.n_seed, None)
        with torch.no_grad():
            final = plane_cross_entropy(model(events), target, planes).item()
        assert fit.epoch_losses[-1] < fit.first_loss and final < fit.first_loss
    assert isinstance(bf16_is_fast(), bool)


def test_seed_sizes_are_the_seed_tables():
    assert build_model("convnn", 10, (32, 32), "seed").n_params() == 16_065
    assert build_model("conv_autoencoder", 10, (32, 32), "seed").n_params() == 324_488


def test_track_parameter_model_trains_and_reports_pulls():
    data = generate_track_images(256, n_layers=16, width=16, seed=3)
    model = ConvLSTMTrackParams(n_layers=16, width=16, channels=(4, 8), latent=32, hidden=32)
    history = train_track_params(model, data, epochs=6, mse_epochs=3, batch_size=64, lr=3e-3, progress=False)
    assert history["mse"][-1] < history["mse"][0]
    assert history["nll"][-1] < history["nll"][0]
    report = evaluate_track_params(model, data)
    assert report.n_tracks == int(data.n_tracks.sum())
    assert all(np.isfinite(report.pull_width)) and report.chi2_mean > 0


# --- the baselines -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", [kalman_scores, hough_scores])
def test_baselines_find_a_clean_track(method):
    clean = generate_3d(50, n_background=0, noise_prob=0.0, seed=9)
    scores = method(clean.events, clean.n_seed)
    assert scores.shape == (50, 10, 1024)
    assert pixel_accuracy(scores, clean.signal) == 1.0
    busy = generate_3d(200, seed=10)
    assert hit_accuracy(method(busy.events, busy.n_seed), busy.signal, busy.events) > 0.9


def test_baselines_work_on_the_2d_toy():
    data = generate_2d(30, n_background=0, noise_prob=0.0, seed=11)
    for method in (kalman_scores, hough_scores):
        assert pixel_accuracy(method(data.events, data.n_seed), data.signal) == 1.0
    with pytest.raises(DeepRecoError):
        kalman_scores(data.events, n_seed=0)


# --- the command line --------------------------------------------------------------------------------------

@pytest.fixture
def tiny_benchmark(monkeypatch):
    from deepreco.toys import benchmark

    tiny = benchmark.BenchmarkConfig(
        name="quick", chunk_events=64, batch_size=32, steps={"default": 2}, max_seconds={"default": 10.0},
        lr={"default": 1e-3}, n_test=20, background_counts=(0, 3), n_per_count=10, track_events=128,
        track_epochs=2, track_max_seconds=10.0, models=("convnn", "kalman", "hough"))
    monkeypatch.setattr(benchmark, "QUICK", tiny)


def test_cli_benchmark_json_and_files(tiny_benchmark, tmp_path):
    from deepreco.toys.cli import app

    result = CliRunner().invoke(app, ["benchmark", "--quick", "--json", "--models", "lstm,kalman",
                                      "--out", str(tmp_path), "--seed", "1"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["models"]) == {"lstm", "kalman"}
    for row in out["models"].values():
        assert {"pixel_accuracy", "hit_accuracy", "params", "train_seconds"} <= set(row)
    assert out["models"]["kalman"]["hit_accuracy"] > 0.9
    assert out["vs_background"]["lstm"]["n_background"] == [0, 3]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"toys-quick.txt", "toys-quick.json", "toys-quick.png", "toys-quick-event.png",
            "toys-quick-tracks.png"} <= names


def test_cli_rejects_an_unknown_model(tiny_benchmark):
    from deepreco.toys.cli import app

    result = CliRunner().invoke(app, ["benchmark", "--quick", "--models", "nonsense"])
    assert result.exit_code == 1
    assert "unknown toy model 'nonsense'" in result.output


# --- the one trainer -----------------------------------------------------------------------------------------

def test_every_toy_kind_has_settings_and_a_task():
    from deepreco.training import TASKS, settings_for, task_factory

    kinds = [k for k in TASKS if k.startswith("toy-")]
    assert sorted(kinds) == sorted([f"toy-{m}" for m in MODELS] + ["toy-track-params"])
    for kind in kinds:
        assert settings_for(kind)["seed"] == 0 and callable(task_factory(kind))


def test_a_toy_model_trained_by_kind_writes_a_model_file_that_loads(tmp_path):
    from deepreco.modelfile import load
    from deepreco.toys.training import load_model
    from deepreco.training import fit, settings_for

    # the kind's own stream of 3D toy events (64 an epoch), 3 steps, a 16-unit LSTM
    settings = settings_for("toy-lstm", overrides={"chunk_events": 64, "batch_size": 32, "max_steps": 3,
                                                   "options": {"hidden": 16}})
    out = tmp_path / "toy_lstm.pt"
    r = fit("toy-lstm", settings, out, progress=False)
    assert r["steps"] == 3 and r["first_loss"] > 0
    model, record = load_model(out)
    assert record["steps"] == 3 and load(out, "toy-lstm").settings["options"] == {"hidden": 16}
    events = generate_3d(4, seed=5).events
    assert np.array_equal(predict_scores(model, events), predict_scores(r["net"], events))
    assert (out.parent / "toy_lstm.pt.checkpoints" / "last.ckpt").exists()
    with pytest.raises(DeepRecoError, match="give the model by name"):
        train_model(build_model("lstm", 10, (32, 32), hidden=8), generate_3d(8, seed=1), epochs=1, batch_size=8,
                    progress=False, out=tmp_path / "x.pt")


def test_the_track_parameter_model_trained_by_kind_writes_a_model_file(tmp_path):
    from deepreco.toys.track_params import load_model
    from deepreco.training import fit, settings_for

    settings = settings_for("toy-track-params", overrides={"events": 64, "epochs": 2, "mse_epochs": 1,
                                                           "options": {"channels": [4, 8], "latent": 16,
                                                                       "hidden": 16}})
    r = fit("toy-track-params", settings, tmp_path / "tp.pt", progress=False)
    assert r["phases"] == ["mse", "nll"] and r["steps"] == 2
    model, record = load_model(tmp_path / "tp.pt")
    images = generate_track_images(3, seed=9).images
    assert torch.equal(model(torch.from_numpy(images))[0], r["net"](torch.from_numpy(images))[0])
