"""Seed 004's four LSTM variants (their presets train) and their ensemble (`LSTMTracks(models=[...])`)."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.errors import DeepRecoError, MissingFileError
from deepreco.io import write_event
from deepreco.reconstruct import reconstruct
from deepreco.reconstruct.lstm import build_model, load_model, save_model, train_lstm, true_seeds
from deepreco.reconstruct.lstm.features import Normaliser, training_windows, window_features
from deepreco.reconstruct.lstm.method import LSTMTracks, predict_mean, predict_next
from deepreco.reconstruct.lstm.model import shipped_model_path

torch.set_num_threads(1)
VARIANTS = {  # the seed's four, and small sizes of the same kinds of network for the trainer's test
    "bilstm-seed": (16,), "lstm-2048": (32,), "lstm-1024": (16,), "lstm-256-512-1024": (8, 16, 32)}


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, muon_gun):
    """The shipped model under two names, and a second, different model (its weights perturbed)."""
    folder = tmp_path_factory.mktemp("ensemble")
    a, b = folder / "a.pt", folder / "b.pt"
    shutil.copy(shipped_model_path(), a)
    shutil.copy(shipped_model_path(), b)
    net, norm, _ = load_model(a)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    c = save_model(net, norm, folder / "c.pt")
    return a, b, c


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_at_its_own_size_learns_a_batch(variant, muon_gun):
    """The preset as the seed sized it: seven Adam steps on one batch of true windows lower its loss."""
    torch.manual_seed(0)
    windows, _ = training_windows(muon_gun, max_windows=2)
    features = window_features(windows[:24])
    norm = Normaliser.fit(features)
    x, y = torch.from_numpy(norm.inputs(features)), torch.from_numpy(norm.targets(features))
    net = build_model(variant)
    assert net.hidden == {"bilstm-seed": (512,), "lstm-2048": (2048,), "lstm-1024": (1024,),
                          "lstm-256-512-1024": (256, 512, 1024)}[variant]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(7):
        loss = torch.mean((net(x) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_trains_on_the_trainer_and_its_loss_falls(variant, pion_set, tmp_path):
    """The preset's kind of network (bidirectional or stacked, its number of layers) at small sizes, on the
    project's trainer: the training and validation losses fall over four epochs, and the file loads back."""
    out = tmp_path / "m.pt"
    rec = train_lstm(pion_set, out, epochs=4, seed=1, model=variant, hidden=VARIANTS[variant], batch_size=16,
                     learning_rate=1e-2, progress=False, checkpoint=False)
    assert rec["train_loss"][-1] < 0.8 * rec["train_loss"][0]
    assert rec["val_loss"][-1] < rec["val_loss"][0]
    net, _, _ = load_model(out)
    assert net.hidden == VARIANTS[variant] and net.bidirectional == (variant == "bilstm-seed")


def test_ensemble_of_two_identical_models_equals_one_model(muon_gun, two_models):
    a, b, _ = two_models
    one = reconstruct(muon_gun, "lstm", model=a, seeding="truth")
    both = reconstruct(muon_gun, "lstm", models=[a, b], seeding="truth")
    pd.testing.assert_frame_equal(one, both)
    seeds = muon_gun.hits[["x", "y", "z"]].to_numpy(np.float64)[true_seeds(muon_gun)]
    net, norm, _ = load_model(a)
    assert np.array_equal(predict_mean([(net, norm), (net, norm)], seeds), predict_next(net, norm, seeds))
    assert len(both) > 0


def test_ensemble_of_two_models_is_the_mean_of_their_points(muon_gun, two_models):
    a, _, c = two_models
    seeds = muon_gun.hits[["x", "y", "z"]].to_numpy(np.float64)[true_seeds(muon_gun)]
    (na, ma, _), (nc, mc, _) = load_model(a), load_model(c)
    pa, pc = predict_next(na, ma, seeds), predict_next(nc, mc, seeds)
    assert np.abs(pa - pc).max() > 1.0  # the two models differ
    assert np.allclose(predict_mean([(na, ma), (nc, mc)], seeds), (pa + pc) / 2, rtol=0, atol=1e-9)
    one = reconstruct(muon_gun, "lstm", model=a, seeding="truth")
    mixed = reconstruct(muon_gun, "lstm", models=[a, c], seeding="truth")
    assert len(mixed) > 0 and not one.equals(mixed)


def test_ensemble_arguments_are_checked(tmp_path, two_models):
    a, b, _ = two_models
    with pytest.raises(DeepRecoError, match="not both"):
        LSTMTracks(model=a, models=[a, b])
    with pytest.raises(DeepRecoError, match="not both"):
        LSTMTracks(models=[])
    with pytest.raises(MissingFileError, match="absent.pt: no such model file"):
        LSTMTracks(models=[a, tmp_path / "absent.pt"])
    with pytest.raises(DeepRecoError, match="in-process only"):
        LSTMTracks(models=[a, b], server="localhost:1")



def test_cli_names_an_ensemble_with_repeated_model_options(muon_gun, two_models, tmp_path):
    import json

    from typer.testing import CliRunner

    from deepreco.cli import app

    a, b, _ = two_models
    write_event(muon_gun, tmp_path / "ev")
    runner = CliRunner()

    def score(*models):
        args = ["evaluate", str(tmp_path / "ev"), "-m", "lstm", "--json"]
        result = runner.invoke(app, args + [x for m in models for x in ("--model", str(m))])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["lstm"]["score"]

    one = score(a)
    assert one > 0.5 and score(a, b) == one
    result = runner.invoke(app, ["evaluate", str(tmp_path / "ev"), "-m", "lstm", "--model", str(a), "--model",
                                 str(tmp_path / "absent.pt")])
    assert result.exit_code != 0 and "absent.pt: no such model file" in result.output
