"""deepreco's own track fit (no ACTS): perigee conventions, fitted muons against the truth, the fit without ACTS."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from deepreco.cli import app
from deepreco.errors import DeepRecoError
from deepreco.fit import COLUMNS, fit_tracks, fitted_path
from deepreco.io import write_event, write_submission
from deepreco.metrics.fit import fit_summary, match_fits, true_perigee
from deepreco.reconstruct.ckf.fit import perigee_cov

runner = CliRunner()


@pytest.fixture
def no_acts(monkeypatch):
    """ACTS made unimportable, as for a user without the extra."""
    monkeypatch.setitem(sys.modules, "acts", None)
    monkeypatch.setitem(sys.modules, "acts.examples", None)


def _truth_tracks(event):
    t = event.truth[event.truth["particle_id"] != 0]
    return pd.DataFrame({"hit_id": t["hit_id"].to_numpy(), "track_id": t["particle_id"].to_numpy()})


def test_perigee_of_a_state_is_the_particles_true_perigee():
    # particles made off the axis, both charges, barrel states at their vertices: the fitter's perigee and the
    # metrics' (written independently, from the circle's centre) agree, d0's sign convention included
    rng = np.random.default_rng(3)
    n = 200
    r, phi_v = rng.uniform(0.5, 30.0, n), rng.uniform(-np.pi, np.pi, n)
    pt, psi, pz = rng.uniform(0.2, 20.0, n), rng.uniform(-np.pi, np.pi, n), rng.normal(0, 5.0, n)
    q = rng.choice([-1.0, 1.0], n)
    particles = pd.DataFrame({"particle_id": np.arange(n), "vx": r * np.cos(phi_v), "vy": r * np.sin(phi_v),
                              "vz": rng.normal(0, 50.0, n), "px": pt * np.cos(psi), "py": pt * np.sin(psi),
                              "pz": pz, "q": q})
    true = true_perigee(particles)
    state = np.column_stack([phi_v, particles["vz"], psi, pz / pt, q / pt])
    params, cov = perigee_cov(state, np.eye(5)[None].repeat(n, 0) * 1e-6, np.ones(n, bool), r)
    # only the half-turn nearest the vertex is a perigee the fit would use
    near = np.abs(true["z0"] - particles["vz"]) < 1e3
    for k, name in enumerate(("d0", "z0", "phi", "theta", "qop")):
        assert np.allclose(params[near, k], true[name][near], atol=1e-6), name
    assert (np.linalg.eigvalsh(cov) > 0).all()


def test_fitted_muons_have_their_true_pt_within_the_uncertainty(muons):
    pulls = []
    for event in muons:
        tracks = _truth_tracks(event)
        fits = fit_tracks(event, tracks, fitter="deepreco")
        assert fits["fitted"].all()
        matched = match_fits(fits, tracks, event.truth, event.particles)
        assert len(matched) == 20
        assert np.median(np.abs(matched["res_pt"])) < 0.03
        assert (matched["charge"].to_numpy() == np.sign(matched["true_qop"].to_numpy())).all()
        assert np.mean(np.abs(matched["pull_pt"]) < 2.0) > 0.75  # in each event most muons within two sigma
        pulls.append(matched[[f"pull_{k}" for k in ("d0", "z0", "phi", "theta", "qop", "pt")]])
    summary = fit_summary(fits, matched)
    assert 0.3 < summary["median_chi2_ndf"] < 2.0
    pulls = pd.concat(pulls)
    for name in pulls.columns:  # 60 muons: a width within 0.55-1.6 (a wrong covariance is off by far more)
        width = 0.5 * np.diff(np.percentile(pulls[name], [15.865, 84.135]))[0]
        assert 0.55 < width < 1.6, (name, width)
        assert abs(np.median(pulls[name])) < 0.5, name


def test_fit_without_acts_gives_the_table(muons, no_acts):
    from deepreco.fit import default_fitter

    assert default_fitter() == "deepreco"
    event = muons[0]
    tracks = _truth_tracks(event)
    # a track of two hits, and one of hits on a single layer: rows that say not fitted
    hits = event.hits.set_index("hit_id")
    layer = hits.loc[tracks["hit_id"], ["volume_id", "layer_id"]].to_numpy()
    same = tracks["hit_id"].to_numpy()[(layer == layer[0]).all(axis=1)][:3]
    extra = pd.DataFrame({"hit_id": np.concatenate([tracks["hit_id"].to_numpy()[:2], same]),
                          "track_id": [-1, -1] + [-2] * len(same)})
    fits = fit_tracks(event, pd.concat([tracks[~tracks["hit_id"].isin(extra["hit_id"])], extra]))
    assert tuple(fits.columns) == COLUMNS
    assert not fits.loc[fits["track_id"] < 0, "fitted"].any()
    assert fits.loc[fits["track_id"] > 0, "fitted"].mean() >= 0.95
    row = fits[fits["fitted"]].iloc[0]
    assert row["ndf"] == 2 * row["n_measurements"] - 5 and row["sigma_pt"] > 0
    with pytest.raises(DeepRecoError, match=r"pip install 'deepreco\[acts\]'"):
        fit_tracks(event, tracks, fitter="acts")


def test_fit_refuses_bad_tracks(muons):
    event = muons[0]
    with pytest.raises(DeepRecoError, match="not in the event"):
        fit_tracks(event, pd.DataFrame({"hit_id": [10**9], "track_id": [1]}), fitter="deepreco")
    with pytest.raises(DeepRecoError, match="hit_id and track_id"):
        fit_tracks(event, pd.DataFrame({"hit_id": [1]}), fitter="deepreco")
    with pytest.raises(DeepRecoError, match="unknown fitter"):
        fit_tracks(event, _truth_tracks(event), fitter="kalman")


def test_fit_command_without_acts(muons, tmp_path, no_acts):
    event = muons[1]
    write_event(event, tmp_path)
    path = tmp_path / f"event{event.event_id:09d}"
    sub = write_submission(_truth_tracks(event), tmp_path / "sub.csv")
    result = runner.invoke(app, ["fit", str(path), "--tracks", str(sub)])
    assert result.exit_code == 0, result.output
    assert "deepreco fitter" in result.output
    table = pd.read_csv(fitted_path(sub))
    assert tuple(table.columns) == COLUMNS and len(table) == 20 and table["fitted"].all()
    for args in (["--fitter", "acts"], ["--fitter", "kalman"]):
        bad = runner.invoke(app, ["fit", str(path), "--tracks", str(sub), "--out", str(tmp_path / "x.csv"), *args])
        assert bad.exit_code != 0 and bad.output.startswith("error:") and len(bad.output.strip().splitlines()) == 1
        assert not (tmp_path / "x.csv").exists()
    # a hit in two tracks is refused as `score` refuses it (it was fitted in both)
    twice = _truth_tracks(event)
    twice = pd.concat([twice, twice.iloc[:1].assign(track_id=twice["track_id"].max() + 1)], ignore_index=True)
    dup = write_submission(twice, tmp_path / "dup.csv")
    bad = runner.invoke(app, ["fit", str(path), "--tracks", str(dup), "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code == 1 and "listed more than once" in bad.output, bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "x.csv").exists()
    # what to fit: one of a submission and a method, and the line says which was wrong
    for args, says in (([], "error: fit: give a submission (--tracks) or a method (-m)\n"),
                       (["--tracks", str(sub), "-m", "ckf"], "or a method (-m), not both")):
        bad = runner.invoke(app, ["fit", str(path), "--out", str(tmp_path / "x.csv"), *args])
        assert bad.exit_code == 1 and says in bad.output and not (tmp_path / "x.csv").exists(), bad.output


def test_evaluate_fit_without_acts(muons, tmp_path, no_acts):
    for event in muons[:2]:
        write_event(event, tmp_path, format="parquet")
    result = runner.invoke(app, ["evaluate", str(tmp_path), "-m", "truth", "--fit", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout)["truth"]["fit"]
    assert fit["n_tracks"] == 40 and fit["failed_fraction"] == 0.0 and fit["n_matched"] == 40
    assert 0.3 < fit["median_chi2_ndf"] < 2.0
    assert 0.55 < fit["pull_width_qop"] < 1.6
    alone = runner.invoke(app, ["evaluate", str(tmp_path), "-m", "truth", "--fitter", "kalman"])  # no --fit
    assert alone.exit_code == 1
    assert alone.output.strip() == "error: --fitter chooses the fitter of --fit: give --fit too"


def test_a_hit_moved_far_off_is_rejected_and_a_clean_track_loses_none(muons):
    import dataclasses

    event = muons[0]
    tracks = _truth_tracks(event)
    clean = fit_tracks(event, tracks, fitter="deepreco")
    without_cut = fit_tracks(event, tracks, fitter="deepreco", outlier_chi2=np.inf)
    # clean muons: no hit dropped, the same fits as without the cut
    assert (clean["n_measurements"] == without_cut["n_measurements"]).all()
    assert np.allclose(clean["qop"], without_cut["qop"])
    # one hit in the middle of a muon of 5-20 GeV moved 5 mm along the module (hundreds of sigma)
    matched = match_fits(clean, tracks, event.truth, event.particles)
    pid = int(matched.loc[matched["true_pt"].between(5.0, 20.0), "track_id"].iloc[0])
    ids = tracks.loc[tracks["track_id"] == pid, "hit_id"].to_numpy()
    hits = event.hits.copy()
    row = hits.index[hits["hit_id"] == ids[len(ids) // 2]][0]
    r = np.hypot(hits.at[row, "x"], hits.at[row, "y"])
    phi = np.arctan2(hits.at[row, "y"], hits.at[row, "x"]) + 5.0 / r
    hits.loc[row, ["x", "y"]] = r * np.cos(phi), r * np.sin(phi)
    moved = dataclasses.replace(event, hits=hits)
    one = tracks[tracks["track_id"] == pid]
    fit = fit_tracks(moved, one, fitter="deepreco").iloc[0]
    plain = fit_tracks(moved, one, fitter="deepreco", outlier_chi2=np.inf).iloc[0]
    assert fit["fitted"] and fit["n_measurements"] == plain["n_measurements"] - 1
    assert fit["ndf"] == 2 * fit["n_measurements"] - 5 and fit["chi2_ndf"] < 3.0
    true_pt = float(matched.loc[matched["track_id"] == pid, "true_pt"].iloc[0])
    assert abs(fit["pt"] - true_pt) < 3 * fit["sigma_pt"]
    assert abs(plain["pt"] - true_pt) > 3 * plain["sigma_pt"]  # without the cut the moved hit pulls it off
