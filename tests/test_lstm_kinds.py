"""Models per kind of track for the lstm method (issue 22, seed 004's "models per kind of track"): a model trained
on the windows of one pT range, and the method routing each track to the model of its kind."""

import numpy as np
import pytest
import torch

from deepreco.errors import DeepRecoError
from deepreco.reconstruct import reconstruct
from deepreco.reconstruct.lstm import train_lstm
from deepreco.reconstruct.lstm.features import N_SEED, seed_pt
from deepreco.reconstruct.lstm.train import collect_windows

torch.set_num_threads(1)


def test_seed_pt_of_hits_on_a_circle_through_the_origin():
    # a 1 GeV track in 2 T: R = 1000 pT / (0.3 B) = 1666.7 mm; its circle through the origin, centre on the y axis
    radius = 1000.0 / 0.6
    turn = np.linspace(0.02, 0.4, 5)
    points = np.stack([radius * np.sin(turn), radius - radius * np.cos(turn), 10.0 * turn], axis=-1)[None]
    assert seed_pt(points)[0] == pytest.approx(1.0, rel=1e-6)
    assert seed_pt(points, field=4.0)[0] == pytest.approx(2.0, rel=1e-6)


def test_training_on_a_pt_range_keeps_only_its_windows(pion_set, tmp_path):
    windows, _ = collect_windows(pion_set)
    low, _ = collect_windows(pion_set, pt_range=(0.0, 3.0))
    pt = seed_pt(windows[:, :N_SEED])
    assert 0 < len(low) < len(windows) and len(low) == int((pt < 3.0).sum())
    assert (seed_pt(low[:, :N_SEED]) < 3.0).all()
    with pytest.raises(DeepRecoError, match=r"no true track with 10 or more hits .* in \[0.0, 0.1\) GeV"):
        collect_windows(pion_set, pt_range=(0.0, 0.1))


@pytest.mark.parametrize("bad", [[1.0], [2.0, 1.0], ["a", 1.0], 3.0])
def test_a_bad_pt_range_is_one_clear_error(pion_set, tmp_path, bad):
    config = tmp_path / "bad.yaml"
    config.write_text(f"pt_range: {bad}\n")
    with pytest.raises(DeepRecoError, match="pt_range must be"):
        train_lstm(pion_set, tmp_path / "m.pt", epochs=1, hidden=(8,), progress=False, config=config)


def test_each_track_goes_to_the_model_of_its_kind(pion_set, muon_gun, tmp_path):
    config = tmp_path / "low.yaml"
    config.write_text("pt_range: [0.0, 3.0]\n")
    figures = train_lstm(pion_set, tmp_path / "low.pt", epochs=2, seed=1, hidden=(16,), batch_size=16,
                         learning_rate=1e-2, progress=False, checkpoint=False, config=config)
    assert figures["train_loss"][-1] < figures["train_loss"][0]
    low = str(tmp_path / "low.pt")

    def tracks(**params):
        out = reconstruct(muon_gun, "lstm", seeding="truth", **params)
        return out.sort_values("hit_id").reset_index(drop=True)

    shipped, tiny = tracks(ensemble=False), tracks(model=low)  # a low_pt_model goes with one model
    assert not shipped.equals(tiny)  # the two models differ on these muons (1 to 10 GeV)
    assert tracks(low_pt_model=low, low_pt_below=0.0).equals(shipped)  # no track is low
    assert tracks(low_pt_model=low, low_pt_below=1e6).equals(tiny)  # every track is
    mixed = tracks(low_pt_model=low, low_pt_below=4.0)
    assert not mixed.equals(shipped) and not mixed.equals(tiny)


def test_inputs_with_xyz_and_cells_train_and_reconstruct(pion_set, muon_gun, tmp_path):
    from deepreco.errors import EventError
    from deepreco.event import Event
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm import load_model

    for inputs, width in [("polar+xyz", 14), ("polar+xyz+cells", 16)]:
        config = tmp_path / f"{inputs}.yaml"
        config.write_text(f"inputs: {inputs}\n")
        out = tmp_path / f"{inputs}.pt"
        figures = train_lstm(pion_set, out, epochs=3, seed=2, hidden=(16,), batch_size=16, learning_rate=1e-2,
                             progress=False, checkpoint=False, config=config)
        assert figures["train_loss"][-1] < 0.7 * figures["train_loss"][0]
        net, norm, _ = load_model(out)
        assert net.layers[0].input_size == width == len(norm.in_mean) and norm.inputs_set == inputs
        tracks = reconstruct(muon_gun, "lstm", seeding="truth", model=out)
        assert tracks["hit_id"].is_unique and tracks["track_id"].nunique() >= 10
    # the cluster directions come from the event's cells: without them, one clear error
    bare = Event(muon_gun.hits, muon_gun.particles, muon_gun.truth)
    with pytest.raises(EventError, match="cluster directions; the event has no cells"):
        get_method("lstm", seeding="truth", model=out).reconstruct(bare)
    with pytest.raises(DeepRecoError, match="served network takes the seed's polar inputs"):
        get_method("lstm", model=out, server="localhost:1", fallback="local")
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: polar+nope\n")
    with pytest.raises(DeepRecoError, match="inputs must be one of polar, polar\\+xyz, polar\\+xyz\\+cells"):
        train_lstm(pion_set, tmp_path / "bad.pt", epochs=1, hidden=(8,), progress=False, config=bad)


def test_a_model_of_other_inputs_is_not_exported_but_says_why(pion_set, tmp_path):
    from deepreco.errors import FormatError
    from deepreco.export.loaders import load_lstm

    config = tmp_path / "xyz.yaml"
    config.write_text("inputs: polar+xyz\n")
    out = tmp_path / "xyz.pt"
    train_lstm(pion_set, out, epochs=1, hidden=(8,), progress=False, checkpoint=False, config=config)
    with pytest.raises(FormatError, match="reads polar\\+xyz inputs; only models of the seed's polar inputs"):
        load_lstm(out)
    assert load_lstm(None).layers[0].input_size == 8


def test_the_shipped_ensemble_finds_a_muon_gun_and_clones_from_its_parameters(muon_gun):
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm import load_model
    from deepreco.reconstruct.lstm.method import SHIPPED_ENSEMBLE
    from deepreco.reconstruct.lstm.model import shipped_model_path

    paths = [shipped_model_path(member) for member in SHIPPED_ENSEMBLE]
    assert len(set(paths)) == 4 and all(p.is_file() for p in paths)
    for path in paths[1:]:  # members of the shipped size, each with its training record
        net, _, record = load_model(path)
        assert net.hidden == (64, 64) and record["best_epoch"] == 40
    method = get_method("lstm", seeding="truth", ensemble=True)
    tracks = method.reconstruct(muon_gun)
    assert evaluate(muon_gun.truth, muon_gun.particles, tracks)["efficiency"] > 0.95
    explicit = get_method("lstm", seeding="truth", models=[str(p) for p in paths]).reconstruct(muon_gun)
    assert tracks.sort_values("hit_id").reset_index(drop=True).equals(
        explicit.sort_values("hit_id").reset_index(drop=True))
    clone = type(method)(**method.get_params())
    assert clone.ensemble and clone.models is None
    # the default: the shipped ensemble, unless a model, models, a server or a low-pT model is named
    assert get_method("lstm").ensemble and get_method("lstm").get_params()["ensemble"]
    assert not get_method("lstm", model=str(paths[1])).ensemble
    assert not get_method("lstm", models=[str(paths[1])]).ensemble
    assert not get_method("lstm", low_pt_model=str(paths[1])).ensemble
    assert not get_method("lstm", server="localhost:1", fallback="local").ensemble
    with pytest.raises(DeepRecoError, match="ensemble must be true or false, got 'maybe'"):
        get_method("lstm", ensemble="maybe")
    with pytest.raises(DeepRecoError, match="ensemble=True uses the shipped models"):
        get_method("lstm", ensemble=True, model=str(paths[1]))
    with pytest.raises(DeepRecoError, match="an ensemble .* runs in-process only"):
        get_method("lstm", ensemble=True, server="localhost:1", fallback="local")


def test_the_second_hit_on_a_layer_is_the_one_along_the_track_with_overlap_fit_direction():
    import pandas as pd

    from deepreco.reconstruct.lstm.assign import LayerIndex, overlap_hits, track_directions

    # a straight track through three barrel layers; on the middle layer two free hits on other modules: A on the
    # track's line 1.5 mm further out, B 1 mm off it beside the track's hit (nearer in the layer's distance)
    hits = pd.DataFrame({"hit_id": np.arange(1, 6), "x": [32.0, 72.0, 116.0, 73.5, 72.0],
                         "y": [0.0, 0.0, 0.0, 0.0, 1.0], "z": [16.0, 36.0, 58.0, 36.75, 36.0],
                         "volume_id": 8, "layer_id": [2, 4, 6, 4, 4], "module_id": [1, 1, 1, 2, 3]})
    index = LayerIndex(hits, along_weight=0.5)
    rows, owner = np.array([0, 1, 2]), np.zeros(3, np.int64)
    free = np.array([False, False, False, True, True])
    u = track_directions(index.xyz, rows, owner)
    assert np.allclose(u[1], np.array([84.0, 0.0, 42.0]) / np.hypot(84.0, 42.0))
    assert overlap_hits(index, hits, rows, owner, free, 10.0, by="layer")[1].tolist() == [4]
    assert overlap_hits(index, hits, rows, owner, free, 10.0, by="direction")[1].tolist() == [3]
    assert len(overlap_hits(index, hits, rows, owner, np.zeros(5, bool), 10.0, by="direction")[1]) == 0
    with pytest.raises(DeepRecoError, match="unknown overlap_fit 'nope'; expected layer or direction"):
        reconstruct(None, "lstm", overlap_fit="nope")
