"""DeepCore's jet-core iteration scored on tracks (issue 26, item 3): association on the fitted parameters, the
seed's efficiency / fake / duplicate definitions on a hand-made case, and `deepcore evaluate --tracks`."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.deepcore.baseline import jetcore_seeds
from deepreco.deepcore.detector import PixelBarrel
from deepreco.deepcore.evaluate import associate_tracks, sim_states, sim_tracks, track_rates
from deepreco.deepcore.events import simulate
from deepreco.deepcore.strips import strip_hits
from deepreco.deepcore.tracking import REF_COLUMNS, build_tracks, cov_columns

torch.set_num_threads(1)
DET = PixelBarrel()


def muon_event(pt, eta=0.2, phi=0.3, q=1):
    """One muon from the origin inside a 1.5 TeV jet's axis, its pixels and strip hits."""
    parts = pd.DataFrame({"particle_id": [1], "vx": 0.0, "vy": 0.0, "vz": 0.0, "px": [pt * np.cos(phi)],
                          "py": [pt * np.sin(phi)], "pz": [pt * np.sinh(eta)], "q": [float(q)], "nhits": 0,
                          "particle_type": 13})
    ev = simulate(parts, pd.DataFrame({"pt": [1500.0], "eta": [eta], "phi": [phi]}), np.zeros(3),
                  np.random.default_rng(1), DET)
    return ev, strip_hits(ev.particles, 5)


@pytest.mark.parametrize("pt, q", [(100.0, 1), (3.0, -1)])
def test_a_muons_track_is_associated_with_it_on_the_fitted_parameters(pt, q):
    ev, sh = muon_event(pt, q=q)
    tracks, _ = build_tracks(ev, sh, jetcore_seeds(ev, DET))
    assert len(tracks) == 1
    sims = sim_tracks(ev, pt_min=0.9)
    states = sim_states(sims, DET.radii[1], DET.field_t)
    assert np.isfinite(states).all()
    pid, chi2 = associate_tracks(tracks, states, sims["particle_id"].to_numpy())
    assert pid.tolist() == [1] and chi2[0] < 25
    # the same track with q / pT off by 5 sigma of its own fit is no longer associated
    off = tracks.assign(ref_qpt=tracks["ref_qpt"] + 6 * np.sqrt(tracks["cov_44"]))
    pid_off, chi2_off = associate_tracks(off, states, sims["particle_id"].to_numpy())
    assert pid_off.tolist() == [-1] and chi2_off[0] > 25
    r = track_rates(pid, sims)
    assert r == {"track_efficiency": 1.0, "track_fake_rate": 0.0, "track_duplicate_rate": 0.0, "reco_tracks": 1,
                 "sim_tracks": 1}


def hand_tracks(states, sigma=(1e-4, 0.05, 1e-3, 1e-3, 1e-3)):
    """Tracks whose fitted reference state is ``states`` with a diagonal covariance of ``sigma``."""
    states = np.atleast_2d(states)
    cov = np.zeros((len(states), 15))
    for k, name in enumerate(cov_columns()):
        i, j = int(name[4]), int(name[5])
        if i == j:
            cov[:, k] = sigma[i] ** 2
    return pd.DataFrame({**{c: states[:, i] for i, c in enumerate(REF_COLUMNS)},
                         **{c: cov[:, k] for k, c in enumerate(cov_columns())}})


def test_fakes_and_duplicates_are_counted_as_the_seed_defines_them():
    # three simulated particles: 7 and 8 selected (in a jet core, pT > 0.9 GeV), 9 not (too soft)
    sims = pd.DataFrame({"particle_id": [7, 8, 9], "selected": [True, True, False]})
    states = np.array([[0.30, 10.0, 0.31, 0.2, 0.10],
                       [0.30, 10.3, 0.31, 0.2, -0.20],  # 0.3 mm from particle 7 in z: 6 sigma apart
                       [1.00, -5.0, 1.02, 0.0, 0.8]])
    tracks = hand_tracks(np.array([
        states[0],  # particle 7
        states[0] + [0, 0.05, 0, 0, 0],  # particle 7 again, 1 sigma off in z: a duplicate
        states[2] + [2e-4, 0, 0, 0, 0],  # the soft particle 9: associated, neither fake nor in the efficiency
        [2.0, 0.0, 2.0, 0.5, 0.3]]))  # nothing near: a fake
    pid, chi2 = associate_tracks(tracks, states, sims["particle_id"].to_numpy())
    assert pid.tolist() == [7, 7, 9, -1]
    assert chi2[0] == pytest.approx(0) and chi2[1] == pytest.approx(1) and chi2[2] == pytest.approx(4)
    r = track_rates(pid, sims)
    # particle 8 has no track: efficiency 1 / 2; 1 fake and 1 duplicate among 4 tracks
    assert r == {"track_efficiency": 0.5, "track_fake_rate": 0.25, "track_duplicate_rate": 0.25, "reco_tracks": 4,
                 "sim_tracks": 2}
    # a track whose fit failed (NaN state) is associated with nothing; no tracks, no rates but the efficiency
    bad = tracks.assign(ref_z=[np.nan, 10.0, -5.0, 0.0])
    assert associate_tracks(bad, states, sims["particle_id"].to_numpy())[0][0] == -1
    none = track_rates(np.zeros(0, np.int64), sims)
    assert none["track_efficiency"] == 0.0 and none["track_fake_rate"] is None


def test_cli_evaluate_tracks_gives_track_figures_for_every_method():
    from typer.testing import CliRunner

    from deepreco.deepcore.cli import app

    result = CliRunner().invoke(app, ["evaluate", "--events", "1", "--seed", "2", "--tracks", "--json",
                                      "--threads", "1"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["track_level"]["sim_tracks"] > 5 and out["tracks"] > 5
    assert out["track_level"]["deepcore_threshold_scale"] == 0.6
    for name in ("deepcore", "baseline", "baseline_kmeans"):
        r = out[name]
        assert {"efficiency", "fake_rate", "duplicate_rate", "seconds_per_event"} <= set(r)  # today's keys
        for key in ("track_efficiency", "track_fake_rate", "track_duplicate_rate"):
            assert 0 <= r[key] <= 1, (name, key)
        assert r["reco_tracks"] > 0
        if name == "deepcore":  # its seeds for building, at 0.6 of the thresholds, have a cleaning of their own
            assert r["track_seeds"] >= r["seeds"]
            assert r["seeding_seconds_per_event"] > r["seconds_per_event"] - r["stages"]["cleaning"]
        else:
            assert r["seeding_seconds_per_event"] == r["seconds_per_event"]
        assert r["iteration_seconds_per_event"] == pytest.approx(r["seeding_seconds_per_event"]
                                                                 + r["building_seconds_per_event"])
        assert r["building_seconds_per_event"] > 0
    raw = out["deepcore"]["before_cleaning"]  # DeepCore's seeds before cleaning, built too
    assert 0 <= raw["track_duplicate_rate"] <= 1 and raw["reco_tracks"] >= out["deepcore"]["reco_tracks"] - 2
    assert raw["seeding_seconds_per_event"] < out["deepcore"]["seeding_seconds_per_event"]
    # DeepCore's tracks find most of the core's tracks on this event
    assert out["deepcore"]["track_efficiency"] > 0.7
    # without --tracks, no track keys
    plain = json.loads(CliRunner().invoke(app, ["evaluate", "--events", "1", "--seed", "2", "--json"]).output)
    assert "track_efficiency" not in plain["deepcore"] and "track_level" not in plain


def test_bad_tracks_argument_and_bad_events_are_one_line():
    from typer.testing import CliRunner

    from deepreco.deepcore.cli import app
    from deepreco.deepcore.evaluate import evaluate

    with pytest.raises(ValueError, match="tracks must be True or False"):
        evaluate(1, tracks="yes")
    result = CliRunner().invoke(app, ["evaluate", "--events", "0", "--tracks"])
    assert result.exit_code != 0 and "--events" in result.output
