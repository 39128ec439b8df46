"""DeepCore (seed 000): windows, targets, loss, seeds, baseline, training and model files, on hand-made events."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.deepcore.baseline import jetcore_seeds
from deepreco.deepcore.detector import PixelBarrel
from deepreco.deepcore.evaluate import associate, pair_differences, rates, sim_tracks
from deepreco.deepcore.events import simulate
from deepreco.deepcore.loss import deepcore_loss
from deepreco.deepcore.model import DeepCoreNet
from deepreco.deepcore.seeds import above, clean_seeds, extract_seeds
from deepreco.deepcore.train import load_model, save_model, train
from deepreco.deepcore.windows import HALF, ShardStream, _targets, build_windows, dense_targets, read_shard, write_shard
from deepreco.errors import FormatError, MissingFileError
from deepreco.modelfile import ModelFile, load, save

torch.set_num_threads(1)
DET = PixelBarrel()


def hand_event(tracks, jets=((1500.0, 0.2, 0.3),), vertex=(0.0, 0.0, 0.0), seed=1):
    """Particles from the vertex, one per (pT [GeV], eta, phi, charge), and calorimeter jets (pT, eta, phi)."""
    pt, eta, phi, q = (np.array(c, dtype=float) for c in zip(*tracks, strict=True))
    n = len(pt)
    particles = pd.DataFrame({"particle_id": np.arange(1, n + 1), "vx": vertex[0], "vy": vertex[1], "vz": vertex[2],
                              "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "q": q,
                              "nhits": 0, "particle_type": 211})
    jets = pd.DataFrame(list(jets), columns=["pt", "eta", "phi"])
    return simulate(particles, jets, np.array(vertex, float), np.random.default_rng(seed), DET)


def test_helix_crossing_lies_on_the_ladder_and_bends_with_charge():
    ev = hand_event([(2.0, 0.0, 0.3, 1), (2.0, 0.0, 0.3, -1)])
    cr = ev.crossings
    assert set(cr["layer"]) == {0, 1, 2, 3}
    for layer in range(4):
        c = cr[cr["layer"] == layer]
        u, v, w = DET.to_local(layer, c["ladder"].to_numpy(), c["x"].to_numpy(), c["y"].to_numpy(), c["z"].to_numpy())
        assert np.allclose(w, 0, atol=1e-6) and np.allclose(u, c["u"])
    # a positive track turns clockwise seen from +z: its phi falls with radius, the negative one's rises
    last = cr[cr["layer"] == 3].set_index("particle_id")["phi"]
    assert last[1] < 0.3 < last[2]
    # the direction turns by r / R at radius r (the position's phi by half that), R = pT / (0.3 B)
    assert last[2] - 0.3 == pytest.approx(0.160 / (2.0 / (0.299792458 * 3.8)), rel=0.05)


def test_windows_are_centred_on_the_line_through_the_layer1_cluster():
    ev = hand_event([(200.0, 0.2, 0.3, 1)], jets=((1500.0, 0.21, 0.31),))
    w = build_windows(ev)
    assert w.inputs.shape == (1, 4, 30, 30)
    assert w.meta["from_layer"].tolist() == [0]
    for layer in range(4):
        charged = np.argwhere(w.inputs[0, layer] > 0)
        assert len(charged) > 0
        assert np.all(np.abs(charged - (HALF - 0.5)) <= 3.5), (layer, charged)
    assert w.jet[0] == pytest.approx([0.21, 1.5])
    assert 0.2 < w.inputs[0].sum() / 4 < 10  # charge / 14,000 e: order 1 per layer


def test_windows_fall_back_to_layer2_when_layer1_is_empty():
    ev = hand_event([(200.0, 0.2, 0.3, 1), (150.0, 0.22, 0.33, -1)])
    ev.clusters = ev.clusters[ev.clusters["layer"] != 0].reset_index(drop=True)  # a broken layer-1 module
    w = build_windows(ev)
    assert set(w.meta["from_layer"]) == {1}
    assert len(w.inputs) == (ev.clusters["layer"] == 1).sum() >= 2
    far = hand_event([(200.0, 0.2, 0.3, 1)], jets=((1500.0, -0.5, 2.0),))
    assert len(build_windows(far).inputs) == 0  # nothing within DeltaR < 0.1


def test_targets_keep_three_overlaps_ordered_tcp_then_ncp():
    crossings = pd.DataFrame({"layer": 1, "ladder": 3, "u": 0.0123, "v": 1.0, "eta": 0.5, "phi": 0.7,
                              "pt": [50.0, 20.0, 10.0, 5.0, 0.5]})  # 4 tracks > 1 GeV in one pixel, 1 soft
    iu, iv = DET.pixel_index(0.0123, 1.0)
    meta = pd.DataFrame({"ladder2": [3], "iu2": [iu], "iv2": [iv], "eta": [0.49], "phi": [0.71]})
    t_index, kind, params = _targets(DET, crossings, meta)
    flags, kinds, dense = dense_targets(1, t_index, kind, params)
    assert flags[0, :, HALF, HALF].tolist() == [1, 1, 1]  # the 4th track has no slot left
    assert flags.sum() == 3 and (kinds == 1).sum() == 3 * 12  # radius-2 disk: 13 pixels, 12 around the TCP
    uc, vc = DET.pixel_centre(iu, iv)
    assert dense[0, 0, :, HALF, HALF] == pytest.approx(
        [(0.0123 - uc) / 0.1, (1.0 - vc) / 0.1, -1.0, 1.0, 10 / 50.0], abs=1e-5)
    assert dense[0, 1:, 4, HALF, HALF].tolist() == pytest.approx([0.5, 1.0])  # 10 GeV / pT, slots by pT
    # an NCP pixel one step along u carries the offset from its own centre: one pixel = 1.0 unit less
    assert dense[0, 0, 0, HALF + 1, HALF] == pytest.approx(dense[0, 0, 0, HALF, HALF] - 1.0, abs=1e-5)


def test_loss_matches_a_hand_computation():
    logits = torch.tensor([0.0, 2.0, -1.0]).view(1, 3, 1, 1)
    flags = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    kinds = torch.tensor([2, 1, 0], dtype=torch.int8).view(1, 3, 1, 1)
    pred = torch.zeros(1, 3, 5, 1, 1)
    target = torch.zeros(1, 3, 5, 1, 1)
    target[0, 0, :, 0, 0] = torch.tensor([1.0, 2.0, 10.0, 0.0, 0.0])  # 10^2 is clipped at 25
    target[0, 1, :, 0, 0] = torch.tensor([0.5, 0.0, 0.0, 0.0, 0.0])
    target[0, 2, :, 0, 0] = torch.tensor([9.0, 9.0, 9.0, 9.0, 9.0])  # no TCP/NCP: no squared error
    total, bce, mse = deepcore_loss(logits, pred, flags, kinds, target)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    hand_bce = (10 * -math.log(sig(0.0)) + 1 * -math.log(1 - sig(2.0)) + 0.01 * -math.log(1 - sig(-1.0))) / 3
    hand_mse = (1 + 4 + 25 + 0.25) / 10
    assert bce.item() == pytest.approx(hand_bce, rel=1e-6)
    assert mse.item() == pytest.approx(hand_mse, rel=1e-6)
    assert total.item() == pytest.approx(hand_bce + hand_mse, rel=1e-6)


def _meta(missing=(False, True)):
    return pd.DataFrame({"event": 7, "jet": 0, "eta": 0.1, "phi": 0.2, "ladder2": 1, "iu2": 80, "iv2": 1800,
                         "layer2_missing": list(missing)})


def test_seed_thresholds_depend_on_overlap_and_missing_layer2():
    prob = np.zeros((2, 3, 30, 30))
    prob[0, 0, 10, 10] = 0.86  # > 0.85: a seed
    prob[0, 0, 11, 11] = 0.80  # < 0.85: none
    prob[0, 2, 12, 12] = 0.70  # > 0.65 on the third overlap: a seed
    prob[1, 0, 5, 5] = 0.55  # layer 2 missing: > 0.50 is enough
    prob[1, 1, 6, 6] = 0.35  # < 0.40: none
    params = np.zeros((2, 3, 5, 30, 30))
    params[0, 0, :, 10, 10] = [0.3, -0.2, 1.0, -1.0, 0.5]
    seeds = extract_seeds(prob, params, _meta(), DET)
    assert sorted(seeds["prob"].round(2)) == [0.55, 0.7, 0.86]
    s = seeds[seeds["prob"].round(2) == 0.86].iloc[0]
    uc, vc = DET.pixel_centre(80 - HALF + 10, 1800 - HALF + 10)
    x, y, z = DET.to_global(1, 1, uc + 0.03, vc - 0.02)
    assert (s["x"], s["y"], s["z"]) == pytest.approx((x, y, z))
    assert (s["phi"], s["eta"], s["inv_pt"]) == pytest.approx((0.21, 0.09, 0.05))
    # at 0.6 times the thresholds (the seeds for track building) the 0.80 pixel passes too (0.80 > 0.51), the
    # 0.35 one on a missing layer 2 too (> 0.24); above() takes the seed's list back from the looser one
    loose = extract_seeds(prob, params, _meta(), DET, scale=0.6)
    assert sorted(loose["prob"].round(2)) == [0.35, 0.55, 0.7, 0.8, 0.86]
    assert sorted(loose["threshold"]) == [0.4, 0.5, 0.65, 0.85, 0.85]
    pd.testing.assert_frame_equal(above(loose, 1.0), seeds)
    assert len(above(loose, 0.3)) == 5 and sorted(above(loose, 1.05)["prob"].round(2)) == [0.55, 0.7]
    for bad in (0, -1.0, float("nan"), True, "0.6"):
        with pytest.raises(ValueError, match="threshold scale must be a positive number"):
            extract_seeds(prob, params, _meta(), DET, scale=bad)


def test_cleaning_keeps_the_most_probable_of_close_seeds():
    base = {"event": 1, "jet": 0, "sample": 0, "slot": 0, "y": 0.0, "z": 5.0, "phi": 0.1, "eta": 0.2, "inv_pt": 0.1}
    seeds = pd.DataFrame([{**base, "x": 68.0, "prob": 0.9}, {**base, "x": 68.03, "prob": 0.95},
                          {**base, "x": 68.1, "prob": 0.99}, {**base, "x": 68.0, "eta": 0.203, "prob": 0.8},
                          {**base, "x": 68.0, "event": 2, "prob": 0.7}])
    kept = clean_seeds(seeds)
    assert sorted(kept["prob"].tolist()) == [0.7, 0.8, 0.95, 0.99]  # 0.9 is 30 um from 0.95; others apart


def test_cleaning_works_across_windows_in_global_coordinates():
    """Two windows of one jet (centres 4 pixels apart, directions 0.004 apart in phi) see the same two tracks: each
    window predicts both, at its own pixels and relative to its own direction. After cleaning: one seed per track,
    the more probable prediction; the two tracks, 150 um apart on layer 2, stay two seeds."""
    meta = pd.DataFrame({"event": 3, "jet": 0, "eta": [0.1, 0.1], "phi": [0.200, 0.204], "ladder2": 1,
                         "iu2": [80, 84], "iv2": 1800, "layer2_missing": False})
    prob = np.zeros((2, 3, 30, 30))
    params = np.zeros((2, 3, 5, 30, 30))
    # track A crosses pixel (iu 85, iv 1800); track B pixel (iu 86, iv 1800): 100 um further along u
    for w, (shift, dphi) in enumerate(((0, 0.0), (-4, -0.4))):  # window 1: 4 pixels on, direction 0.004 on
        params[w, 0, :, 20 + shift, 15] = [0.2, 0.1, dphi + 0.1, 0.0, 0.5]  # A, slot 0
        params[w, 1, :, 21 + shift, 15] = [0.7, 0.1, dphi - 0.1, 0.0, 0.4]  # B: + 150 um in all, in slot 1
    prob[0, 0, 20, 15], prob[0, 1, 21, 15] = 0.95, 0.80
    prob[1, 0, 16, 15], prob[1, 1, 17, 15] = 0.90, 0.99
    seeds = extract_seeds(prob, params, meta, DET)
    assert len(seeds) == 4
    a, b = seeds[seeds["slot"] == 0], seeds[seeds["slot"] == 1]
    for pair in (a, b):  # each track's two predictions coincide in global coordinates
        assert np.ptp(pair["x"]) < 1e-9 and np.ptp(pair["y"]) < 1e-9 and np.ptp(pair["phi"]) < 1e-9
    kept = clean_seeds(seeds)
    assert len(kept) == 2
    assert sorted(kept["prob"].round(2)) == [0.95, 0.99]  # per track the more probable window's seed
    assert set(kept["sample"]) == {0, 1}
    # the same two tracks from the two windows, each window's prediction slightly off (30 um, 0.0015): still one
    off = seeds.copy()
    off.loc[off["sample"] == 1, "z"] += 0.03
    off.loc[off["sample"] == 1, "eta"] += 0.0015
    assert len(clean_seeds(off)) == 2
    # predictions further apart than the angle cut stay apart; a looser angle cut joins them
    off.loc[off["sample"] == 1, "eta"] += 0.003
    assert len(clean_seeds(off)) == 4 and len(clean_seeds(off, dangle=0.01)) == 2
    # seeds of two events never clean each other
    other = seeds.assign(event=4)
    assert len(clean_seeds(pd.concat([seeds, other], ignore_index=True))) == 4


def test_cleaning_refuses_bad_cuts_and_tables():
    seeds = pd.DataFrame({"event": [1, 1], "prob": [0.9, 0.8], "x": 0.0, "y": 68.0, "z": 0.0, "eta": 0.0,
                          "phi": 0.0})
    for bad in (0, -0.05, float("nan"), float("inf"), "0.05", True):
        with pytest.raises(ValueError, match="dxy must be a positive number"):
            clean_seeds(seeds, dxy=bad)
    with pytest.raises(ValueError, match="dangle must be a positive number"):
        clean_seeds(seeds, dangle=0.0)
    with pytest.raises(ValueError, match="no column prob"):
        clean_seeds(seeds.drop(columns="prob"))


def test_pair_differences_tell_duplicates_from_two_particles():
    seeds = pd.DataFrame({"event": 1, "particle_id": [5, 5, 6, -1], "sample": [0, 1, 1, 0],
                          "x": [0.0, 0.01, 0.1, 0.0], "y": 68.0, "z": [0.0, 0.02, 0.0, 0.0],
                          "eta": [0.1, 0.101, 0.1, 0.1], "phi": [3.1415, -3.1415, 0.0, 0.0]})
    d = pair_differences(seeds)
    assert len(d) == 3  # the fake (-1) takes no part
    dup = d[d["same_particle"]].iloc[0]
    assert not dup["same_window"]
    assert (dup["dxy"], dup["dz"], dup["deta"]) == pytest.approx((0.01, 0.02, 0.001))
    assert dup["dphi"] == pytest.approx(2 * np.pi - 6.283, abs=1e-9)  # across the +-pi seam
    assert d["same_window"].sum() == 1 and (~d["same_particle"]).sum() == 2


def test_baseline_finds_separate_tracks_and_association_scores_them():
    ev = hand_event([(30.0, 0.20, 0.30, 1), (20.0, 0.25, 0.34, -1), (5.0, 0.17, 0.27, 1)])
    tracks = sim_tracks(ev)
    assert tracks.loc[tracks["selected"], "particle_id"].nunique() == 3  # a track may cross 2 ladders
    seeds = jetcore_seeds(ev, DET)
    pid, chi2 = associate(seeds, tracks)
    r = rates(pid, tracks)
    assert r["efficiency"] == 1.0 and r["fake_rate"] == 0.0 and r["tracks"] == 3
    # a pair of clusters from two tracks that passes the cuts is a seed too: close to one track, a duplicate
    assert r["duplicate_rate"] == np.mean(pd.Series(pid).duplicated(keep=False))


def test_kmeans_variant_splits_a_merged_cluster():
    ev = hand_event([(100.0, 0.2, 0.3, 1), (100.0, 0.2, 0.30015, -1)])  # 5 um apart on layer 1: one cluster
    assert (ev.clusters["layer"] == 0).sum() == 1 and (ev.clusters["layer"] == 1).sum() == 1
    assert len(jetcore_seeds(ev, DET)) == 1
    assert len(jetcore_seeds(ev, DET, split=True)) >= 2


def test_network_has_the_slides_parameter_count_and_shapes():
    net = DeepCoreNet()
    assert sum(p.numel() for p in net.parameters()) == 77373
    prob, params = net.predict(torch.zeros(2, 4, 30, 30), torch.zeros(2, 2))
    assert prob.shape == (2, 3, 30, 30) and params.shape == (2, 3, 5, 30, 30)
    assert float(prob.min()) >= 0 and float(prob.max()) <= 1


@pytest.fixture
def shard(tmp_path):
    rng = np.random.default_rng(3)
    tracks = [(rng.uniform(2, 50), 0.2 + rng.normal(0, 0.03), 0.3 + rng.normal(0, 0.03), rng.choice([-1, 1]))
              for _ in range(25)]
    w = build_windows(hand_event(tracks))
    assert len(w.inputs) >= 10 and len(w.t_index) > 0
    return write_shard(tmp_path / "s.npz", w), w


def test_shards_round_trip_and_stream(shard):
    path, w = shard
    back = read_shard(path)
    assert np.allclose(back.inputs, w.inputs, atol=2e-3) and np.array_equal(back.t_index, w.t_index)
    maps, jet, flags, kinds, params = next(iter(ShardStream([path], batch_size=4, shuffle=False)))
    f, k, p = dense_targets(len(w.inputs), w.t_index, w.t_kind, w.t_params)
    assert torch.equal(flags, torch.from_numpy(f[:4])) and torch.allclose(params, torch.from_numpy(p[:4]))


def test_a_few_training_steps_lower_the_loss(shard):
    path, _ = shard
    model, history = train([path], epochs=16, batch_size=32, lr_scale=25.0, seed=0)  # one batch a step
    losses = history["loss"]
    assert len(losses) == 16 and losses[-1] < 0.95 * losses[0]
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_model_files_round_trip_and_bad_files_are_refused(tmp_path):
    net = DeepCoreNet()
    path = save_model(net, tmp_path / "m.pt", {"note": "test"})
    loaded, info = load_model(path)
    x, j = torch.rand(1, 4, 30, 30), torch.rand(1, 2)
    assert torch.equal(loaded.predict(x, j)[0], net.predict(x, j)[0]) and info == {"note": "test"}
    with pytest.raises(MissingFileError):
        load_model(tmp_path / "absent.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(FormatError):
        load_model(tmp_path / "bad.pt")
    torch.save({"state_dict": {"w": torch.zeros(3)}}, tmp_path / "other.pt")
    with pytest.raises(FormatError, match="other.pt: not a deepreco model file"):
        load_model(tmp_path / "other.pt")
    save(ModelFile("deepcore", {"net": {"w": torch.zeros(3)}}), tmp_path / "wrong.pt")
    with pytest.raises(FormatError, match="do not fit"):
        load_model(tmp_path / "wrong.pt")


def test_cli_reports_a_missing_model_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from deepreco.deepcore.cli import app

    result = CliRunner().invoke(app, ["evaluate", "--events", "1", "--model", str(tmp_path / "none.pt")])
    assert result.exit_code == 1
    assert "none.pt: no such model file" in result.output and result.output.strip().count("\n") <= 1


def test_cli_and_evaluate_refuse_bad_cleaning_cuts():
    from typer.testing import CliRunner

    from deepreco.deepcore.cli import app
    from deepreco.deepcore.evaluate import evaluate

    result = CliRunner().invoke(app, ["evaluate", "--events", "1", "--clean-angle", "0"])
    assert result.exit_code == 1
    assert "dxy and dangle must be positive" in result.output and result.output.strip().count("\n") <= 1
    with pytest.raises(ValueError, match="name is taken"):
        evaluate(1, variants={"baseline": (0.05, 0.01)})
    with pytest.raises(ValueError, match="expected two numbers"):
        evaluate(1, variants={"loose": 0.01})
    with pytest.raises(ValueError, match="n_events must be a positive integer"):
        evaluate(0)


def test_cli_trains_and_evaluates_on_real_dijets(tmp_path):
    import json

    from typer.testing import CliRunner

    from deepreco.deepcore.cli import app

    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    model = tmp_path / "m.pt"
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--events", "2", "--val-events", "1", "--seed", "5", "--work",
                                 str(tmp_path / "shards"), "--out", str(model), "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    assert model.is_file() and len(list((tmp_path / "shards").glob("*.npz"))) == 1
    _, record = load_model(model)
    assert record["steps"] == min(2, -(-record["samples"] // 32))
    assert record["val_loss"][-1] > 0 and record["val_samples"] > 0
    assert load(model, "deepcore").settings["events"] == 2
    assert (tmp_path / "m.pt.checkpoints" / "last.ckpt").is_file()
    result = runner.invoke(app, ["evaluate", "--events", "1", "--seed", "5", "--model", str(model), "--json",
                                 "--pileup", "2"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    for name in ("deepcore", "baseline"):
        assert {"efficiency", "fake_rate", "duplicate_rate", "seconds_per_event"} <= set(out[name])
    assert out["tracks"] > 0 and 0 <= out["baseline"]["efficiency"] <= 1
