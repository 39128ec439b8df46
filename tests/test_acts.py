"""ACTS in the loop: the module-id table, the event conversion round trip, Kalman fits of muons, `deepreco fit`.

Skipped when the ``acts`` extra (pyacts) is not installed; CI installs it with ``.[test]``.
"""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from deepreco.errors import DeepRecoError

acts = pytest.importorskip("acts", reason="the acts extra (pyacts) is not installed")

from deepreco.acts.convert import from_acts, to_acts  # noqa: E402
from deepreco.acts.fit import fit_tracks, fitted_path  # noqa: E402
from deepreco.acts.geometry import acts_geometry  # noqa: E402
from deepreco.cli import app  # noqa: E402
from deepreco.io import write_submission  # noqa: E402
from deepreco.metrics.fit import fit_summary, match_fits  # noqa: E402

runner = CliRunner()


def _truth_tracks(event):
    t = event.truth[event.truth["particle_id"] != 0]
    return pd.DataFrame({"hit_id": t["hit_id"].to_numpy(), "track_id": t["particle_id"].to_numpy()})


def test_module_table_is_one_to_one_and_keeps_the_barrel_numbers():
    geo = acts_geometry()
    table = geo.table()
    assert len(table) == 18728 and table["geometry_id"].is_unique
    ids = [acts.GeometryIdentifier(int(g)) for g in table["geometry_id"]]
    sensitive = np.array([i.sensitive for i in ids])
    assert (np.array([i.volume for i in ids]) == table["volume_id"]).all()
    barrel = table["volume_id"].isin([8, 13, 17]).to_numpy()
    assert (sensitive[barrel] == table["module_id"].to_numpy()[barrel]).all()
    assert (sensitive[~barrel] != table["module_id"].to_numpy()[~barrel]).mean() > 0.9  # the endcaps differ
    # the same point in the same local frame lands in the same place in both geometries
    for row in (0, 9000, 18000):
        g = geo.surfaces[row].localToGlobal(geo.context, acts.Vector2(1.5, -2.5), acts.Vector3(0, 0, 1))
        mine = geo.detector.to_global(np.array([[1.5, -2.5, 0.0]]), np.array([row]))[0]
        assert np.allclose([g[0], g[1], g[2]], mine, atol=0.005)


def test_round_trip_keeps_every_hit_and_its_module(muons):
    event = muons[0]
    converted = to_acts(event)
    assert len(converted) == event.n_hits
    assert (np.diff(converted.geometry_id.astype(np.float64)) >= 0).all()  # ACTS's measurement order
    assert len(converted.measurements()) == event.n_hits
    back = from_acts(converted)
    a = event.hits.sort_values("hit_id").reset_index(drop=True)
    b = back.hits.sort_values("hit_id").reset_index(drop=True)
    assert (a["hit_id"] == b["hit_id"]).all()
    assert (a[["volume_id", "layer_id", "module_id"]].to_numpy() == b[["volume_id", "layer_id", "module_id"]]
            .to_numpy()).all()
    assert np.abs(a[["x", "y", "z"]].to_numpy() - b[["x", "y", "z"]].to_numpy()).max() < 1e-3
    ta = event.truth.sort_values("hit_id")
    tb = back.truth.sort_values("hit_id")
    assert (ta["particle_id"].to_numpy() == tb["particle_id"].to_numpy()).all()
    ca = event.cells.sort_values(["hit_id", "ch0", "ch1"]).to_numpy()
    cb = back.cells.sort_values(["hit_id", "ch0", "ch1"]).to_numpy()
    assert np.array_equal(ca, cb)
    assert set(back.particles["particle_id"]) == set(event.particles["particle_id"])


def test_fitted_muons_have_their_true_pt_within_the_uncertainty(muons):
    pulls, within = [], []
    for event in muons:
        tracks = _truth_tracks(event)
        fits = fit_tracks(event, tracks)
        assert fits["fitted"].mean() >= 0.95
        matched = match_fits(fits, tracks, event.truth, event.particles)
        pull = matched["pull_pt"].to_numpy()
        pulls.append(pull)
        within.append(np.mean(np.abs(pull) < 2.0))
        assert np.median(np.abs(matched["res_pt"])) < 0.05
        assert (matched["charge"].to_numpy() == np.sign(matched["true_qop"].to_numpy())).all()
    summary = fit_summary(fits, matched)
    assert 0.0 <= summary["failed_fraction"] <= 0.05
    assert np.mean(within) > 0.75  # in most events most muons are within two sigma
    width = 0.5 * np.diff(np.percentile(np.concatenate(pulls), [15.865, 84.135]))[0]
    assert 0.6 < width < 1.6, width


def test_fit_tracks_refuses_hits_not_in_the_event(muons):
    with pytest.raises(DeepRecoError, match="not in the event"):
        fit_tracks(muons[0], pd.DataFrame({"hit_id": [10**9], "track_id": [1]}))


def test_fit_command_writes_beside_the_submission(muons, tmp_path):
    event = muons[1]
    path = tmp_path / f"event{event.event_id:09d}"
    from deepreco.io import write_event

    write_event(event, tmp_path)
    sub = write_submission(_truth_tracks(event), tmp_path / "sub.csv")
    result = runner.invoke(app, ["fit", str(path), "--tracks", str(sub)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(fitted_path(sub))
    assert len(table) == 20 and table["fitted"].all()
    assert {"pt", "charge", "d0", "z0", "phi", "eta", "chi2_ndf", "cov_qop_qop"} <= set(table.columns)
    both = runner.invoke(app, ["fit", str(path), "--tracks", str(sub), "-m", "truth"])
    assert both.exit_code != 0 and both.output.startswith("error:") and len(both.output.strip().splitlines()) == 1


def test_missing_acts_is_one_line(monkeypatch):
    from deepreco.acts import require

    monkeypatch.setitem(sys.modules, "acts", None)
    with pytest.raises(DeepRecoError, match=r"pip install 'deepreco\[acts\]'"):
        require()


def test_evaluate_fit_pools_the_fits_over_events(muons, tmp_path):
    from deepreco.io import write_event

    for event in muons[:2]:
        write_event(event, tmp_path, format="parquet")
    result = runner.invoke(app, ["evaluate", str(tmp_path), "-m", "truth", "--fit", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout)["truth"]["fit"]
    assert fit["n_tracks"] == 40 and fit["failed_fraction"] <= 0.05 and fit["n_matched"] >= 38
    assert 0.3 < fit["median_chi2_ndf"] < 2.0  # 0.43: the pitch / sqrt(12) errors are conservative
    assert {row["variable"] for row in fit["resolution"]} == {"pt", "eta"}


def test_acts_ckf_finds_the_muons(muons):
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method

    method = get_method("acts-ckf")
    for event in muons[:2]:
        tracks = method.reconstruct(event)
        result = evaluate(event.truth, event.particles, tracks, pt_min=1.0)
        assert result["efficiency"] >= 0.9 and result["score"] > 0.9, result
        assert result["fake_rate"] < 0.2


def test_acts_ckf_stages_are_seeds_and_candidates_of_the_event(muons):
    from deepreco.acts.ckf import ActsCKF

    event = muons[0]
    found = ActsCKF().find(event, stages=True)
    ids = set(event.hits["hit_id"])
    seeds, candidates = found["seeds"], found["candidates"]
    assert seeds.shape[1] == 3 and len(seeds) >= 20 and set(seeds.ravel()) <= ids
    # every muon has a seed of three of its own hits
    pid = event.truth.set_index("hit_id")["particle_id"]
    pure = [set(pid[s]) for s in seeds]
    assert {p.pop() for p in pure if len(p) == 1} >= set(event.particles["particle_id"])
    # the final tracks are among the candidates before the ambiguity resolution
    final = found["tracks"].groupby("track_id")["hit_id"].apply(frozenset)
    assert set(final) <= {frozenset(c) for c in candidates}


def test_acts_ckf_is_registered_with_its_parameters():
    from deepreco.reconstruct import METHODS

    assert "acts-ckf" in METHODS
    assert METHODS.parameters("acts-ckf")["pt_min"] == 0.2
    with pytest.raises(DeepRecoError, match="no parameter"):
        METHODS.get("acts-ckf", pt=1.0)
