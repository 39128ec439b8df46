"""Seed 004's pipeline (``lstm``): DBSCAN seeds, the LSTM that extends them, nearest-neighbour fitting."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.deepcore.model import DeepCoreNet
from deepreco.deepcore.train import save_model as save_deepcore
from deepreco.errors import FormatError, MissingFileError
from deepreco.event import Event
from deepreco.generate import particle_gun
from deepreco.io import write_event
from deepreco.metrics import evaluate
from deepreco.reconstruct import get_method, reconstruct
from deepreco.reconstruct.lstm import LSTMTracks, build_model, load_model, seed_quality, train_lstm, true_seeds
from deepreco.reconstruct.lstm.features import N_INPUTS, N_OUT, training_windows
from deepreco.reconstruct.lstm.method import predict_next
from deepreco.simulate import simulate_event

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def muons():
    """20 muons of 1 to 10 GeV from the origin, with the real noise rates of TrackML events."""
    return simulate_event(particle_gun(n=20, pdg=13, pt=(1.0, 10.0), seed=5), seed=5, event_id=1)


@pytest.fixture(scope="module")
def pion_set(tmp_path_factory):
    """Two small events of 60 pions each, written as a dataset to train on."""
    folder = tmp_path_factory.mktemp("pions")
    for i in range(2):
        particles = particle_gun(n=60, pdg=211, pt=(1.0, 10.0), seed=100 + i)
        write_event(simulate_event(particles, seed=100 + i, event_id=i, noise_fraction=0.0), folder)
    return folder


def test_training_windows_are_true_tracks_ordered_outward(muons):
    windows, track = training_windows(muons, max_windows=1)
    assert windows.shape[1:] == (N_OUT, 3) and len(windows) == len(track) >= 15
    distance = np.linalg.norm(windows, axis=2)
    assert (np.diff(distance, axis=1) >= 0).all()


def test_lstm_trains_and_its_loss_falls(pion_set, tmp_path):
    out = tmp_path / "model.pt"
    figures = train_lstm(pion_set, out, epochs=4, seed=3, hidden=(16,), batch_size=16, learning_rate=1e-2,
                         progress=False)
    assert figures["train_loss"][-1] < 0.7 * figures["train_loss"][0]
    assert figures["val_loss"][-1] < figures["val_loss"][0]
    assert len(figures["val_loss"]) == 4 and figures["n_val"] > 0
    assert (tmp_path / "model.pt.checkpoints" / "last.ckpt").is_file()
    net, norm, info = load_model(out)
    assert net.hidden == (16,) and info["best_epoch"] == figures["best_epoch"]
    again = train_lstm(pion_set, tmp_path / "again.pt", epochs=1, seed=3, hidden=(16,), batch_size=16,
                       learning_rate=1e-2, progress=False, checkpoint=False)
    assert again["train_loss"][0] == figures["train_loss"][0]  # the same seed gives the same training


def test_bidirectional_and_seed_sized_models_build():
    assert build_model("bilstm").bidirectional
    assert build_model("lstm-256-512-1024").hidden == (256, 512, 1024)
    out = build_model("bilstm", (8, 8))(torch.zeros(3, N_OUT, N_INPUTS))
    assert out.shape == (3, N_OUT, 4)


@pytest.mark.parametrize(("params", "efficiency"), [
    ({}, 0.95),
    # the seed's pipeline as it is: seed hits + each predicted point's nearest hit on its layer; a noise hit
    # nearest the prediction costs it a muon now and then (simulation seeds 5 to 8: 18, 19, 19, 16 of 20)
    ({"keep_clusters": False, "fit": "point", "overlap_distance": 0.0}, 0.85),
])
def test_shipped_model_finds_a_muon_gun(muons, params, efficiency):
    tracks = reconstruct(muons, "lstm", **params)
    assert tracks["hit_id"].is_unique
    result = evaluate(muons.truth, muons.particles, tracks)
    assert result["efficiency"] > efficiency
    assert result["score"] > 0.7


def test_seeds_of_a_muon_gun_are_perfect(muons):
    method = LSTMTracks()
    seeds = method.seeds(muons)
    quality = seed_quality(muons, seeds)
    assert quality["particles"] >= 19 and quality["perfect"] > 0.3
    # the rest are chance alignments with noise (about 1,350 noise hits in the innermost pixel barrel alone):
    # no seed mixes two muons
    pid = muons.truth.set_index("hit_id")["particle_id"].reindex(muons.hits["hit_id"]).to_numpy()[seeds]
    assert ((pid == pid[:, :1]).all(axis=1) | (pid == 0).any(axis=1)).all()
    assert seed_quality(muons, true_seeds(muons))["perfect"] == 1.0


def test_inference_is_batched_and_batch_size_does_not_matter(muons):
    net, norm, _ = load_model()
    seeds = muons.hits[["x", "y", "z"]].to_numpy(np.float64)[true_seeds(muons)]
    assert np.allclose(predict_next(net, norm, seeds, batch_size=7), predict_next(net, norm, seeds), atol=1e-4)


def test_true_seeding_separates_seeding_from_extension(muons):
    tracks = reconstruct(muons, "lstm", seeding="truth")
    assert evaluate(muons.truth, muons.particles, tracks)["efficiency"] > 0.95


def test_event_without_truth_reconstructs(muons):
    tracks = reconstruct(Event(hits=muons.hits, event_id=1), "lstm")
    assert len(np.unique(tracks["track_id"])) >= 19


def test_empty_event_gives_an_empty_submission():
    cols = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
    tracks = reconstruct(Event(hits=pd.DataFrame(columns=cols)), "lstm")
    assert len(tracks) == 0 and list(tracks.columns) == ["hit_id", "track_id"]


def test_bad_model_files_give_clear_errors(tmp_path):
    with pytest.raises(MissingFileError, match="absent.pt: no such model file"):
        get_method("lstm", model=tmp_path / "absent.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 this is not a model")
    with pytest.raises(FormatError, match="corrupt.pt: not a readable model file"):
        load_model(corrupt)
    other = tmp_path / "other.pt"
    save_deepcore(DeepCoreNet(), other)
    with pytest.raises(FormatError, match="other.pt: a model of kind 'deepcore', expected kind 'lstm'"):
        get_method("lstm", model=other)
    bare = tmp_path / "state_dict.pt"
    torch.save(build_model("lstm", (8,)).state_dict(), bare)
    with pytest.raises(FormatError, match="state_dict.pt: not a deepreco model file"):
        load_model(bare)
