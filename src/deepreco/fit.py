"""Track parameters for any method's tracks: the fitted-track table, and the choice of fitter.

Two Kalman fitters give the same table: ACTS's (`deepreco.acts.fit`, the ``acts`` extra) and deepreco's own
(`deepreco.reconstruct.ckf.fit`, the ckf's filter run over a given list of hits), which needs nothing beyond
deepreco. ``fitter=None`` takes ACTS's when it is installed, deepreco's otherwise.

The table has one row per track: ``track_id, fitted`` (False when the fit failed), ``n_hits, n_measurements,
chi2, ndf, chi2_ndf``, the perigee parameters at the beam line ``d0, z0, phi, theta, qop`` [mm, rad, e/GeV]
(ACTS's convention: the point of closest approach to the z axis is (-d0 sin phi, d0 cos phi, z0)) with their
5 x 5 covariance ``cov_<a>_<b>``, and the derived ``pt, charge, eta`` with ``sigma_pt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DeepRecoError
from .event import Event

PARAMETERS = ("d0", "z0", "phi", "theta", "qop")
COV_COLUMNS = tuple(f"cov_{a}_{b}" for i, a in enumerate(PARAMETERS) for b in PARAMETERS[i:])
COLUMNS = ("track_id", "fitted", "n_hits", "n_measurements", "chi2", "ndf", "chi2_ndf", *PARAMETERS,
           "pt", "charge", "eta", "sigma_pt", *COV_COLUMNS)
FITTERS = ("acts", "deepreco")


def track_members(event: Event, tracks: pd.DataFrame, hit_ids: np.ndarray):
    """The tracks' hits as rows of ``hit_ids`` (the fitter's hit order): (track_ids, n_hits, starts, members).

    ``members[starts[t]:starts[t + 1]]`` are the rows of track ``t``'s hits. Refuses tracks without the columns
    hit_id and track_id, and hits that are not in the event.
    """
    if not {"hit_id", "track_id"} <= set(tracks.columns):
        raise DeepRecoError("tracks need the columns hit_id and track_id")
    index_of_hit = pd.Series(np.arange(len(hit_ids)), index=hit_ids)
    hit_index = index_of_hit.reindex(tracks["hit_id"].to_numpy(np.int64)).to_numpy()
    if np.isnan(hit_index).any():
        raise DeepRecoError(f"{int(np.isnan(hit_index).sum())} track hit(s) are not in the event")
    track_ids, inverse = np.unique(tracks["track_id"].to_numpy(np.int64), return_inverse=True)
    n_hits = np.bincount(inverse, minlength=len(track_ids))
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(n_hits)])
    return track_ids, n_hits, starts, hit_index[order].astype(np.int64)


def empty_table(track_ids: np.ndarray, n_hits: np.ndarray) -> pd.DataFrame:
    """The table with every track not fitted."""
    n = len(track_ids)
    table = pd.DataFrame({c: np.full(n, np.nan) for c in COLUMNS})
    table["track_id"] = track_ids
    table["fitted"] = False
    table["n_hits"] = n_hits
    table["n_measurements"] = 0
    return table


def fill_table(table: pd.DataFrame, at: np.ndarray, params: np.ndarray, cov: np.ndarray, chi2, ndf,
               n_measurements) -> pd.DataFrame:
    """Rows ``at`` of ``table`` fitted: perigee ``params`` (n, 5), ``cov`` (n, 5, 5), and the derived columns."""
    if len(at):
        table.loc[at, "fitted"] = True
        table.loc[at, "chi2"] = np.asarray(chi2, np.float64)
        table.loc[at, "ndf"] = np.asarray(ndf, np.float64)
        table.loc[at, "n_measurements"] = np.asarray(n_measurements, np.int64)
        for k, name in enumerate(PARAMETERS):
            table.loc[at, name] = params[:, k]
        for i, a in enumerate(PARAMETERS):
            for j in range(i, 5):
                table.loc[at, f"cov_{a}_{PARAMETERS[j]}"] = cov[:, i, j]
        theta, qop = params[:, 3], params[:, 4]
        pt = np.sin(theta) / np.abs(qop)
        # d pT / d theta = cos(theta) / |qop|,  d pT / d qop = -pT / qop
        grad = np.column_stack([np.cos(theta) / np.abs(qop), -pt / qop])
        var_pt = np.einsum("ni,nij,nj->n", grad, cov[:, 3:5, 3:5], grad)
        table.loc[at, "pt"] = pt
        table.loc[at, "charge"] = np.sign(qop)
        table.loc[at, "eta"] = -np.log(np.tan(theta / 2.0))
        table.loc[at, "sigma_pt"] = np.sqrt(np.maximum(var_pt, 0.0))
    ndf = table["ndf"].to_numpy(np.float64)
    table["chi2_ndf"] = np.where(ndf > 0, table["chi2"].to_numpy(np.float64) / np.maximum(ndf, 1), np.nan)
    table["n_measurements"] = table["n_measurements"].astype(np.int64)
    return table


def default_fitter() -> str:
    """ACTS's fitter when the extra is installed, deepreco's otherwise."""
    from .acts import available

    return "acts" if available() else "deepreco"


def check_fitter(fitter: str | None) -> str:
    """The fitter to use (``None``: `default_fitter`); ACTS's asked for without the extra: the install hint."""
    if fitter is None:
        return default_fitter()
    if fitter not in FITTERS:
        raise DeepRecoError(f"unknown fitter {fitter!r}: choose from {', '.join(FITTERS)}")
    if fitter == "acts":
        from .acts import require

        require()
    return fitter


def fit_tracks(event: Event, tracks: pd.DataFrame, fitter: str | None = None, **options) -> pd.DataFrame:
    """Fit every track of ``tracks`` (hit_id, track_id) on ``event``: one row per track id (`COLUMNS`).

    ``fitter``: ``"acts"`` or ``"deepreco"`` (None: ACTS's when installed). ``options`` go to the fitter.
    """
    if check_fitter(fitter) == "acts":
        from .acts.fit import fit_tracks as fit
    else:
        from .reconstruct.ckf.fit import fit_tracks as fit
    return fit(event, tracks, **options)


def fitted_path(submission) -> Path:
    """Where the fitted parameters of a submission go: beside it, ``<name>-fit.csv``."""
    path = Path(submission)
    name = path.name
    for ext in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return path.with_name(f"{name}-fit.csv")


def fit_event(event_path, submission=None, method: str | None = None, out=None, fitter: str | None = None) -> dict:
    """Fit the tracks of one event, from a submission file or from a method run here; write the table.

    Exactly one of ``submission`` and ``method`` is given. The table goes to ``out`` (default: beside the
    submission as ``<name>-fit.csv``, or ``<event>-<method>-fit.csv`` beside the event), written atomically.
    Returns ``{"path", "fits", "summary", "fitter"}``; the summary (`deepreco.metrics.fit.fit_summary`) needs the
    event's truth and particles, and is None without them.
    """
    from .io import read_event, read_submission
    from .metrics.fit import fit_summary, match_fits

    if (submission is None) == (method is None):
        raise DeepRecoError("fit: give a submission (--tracks) or a method (-m)" +
                            (", not both" if method is not None else ""))
    fitter = check_fitter(fitter)
    event = read_event(event_path)
    if submission is not None:
        from .metrics import check_submission

        tracks = read_submission(submission, event_id=event.event_id)
        # as `score` does: a hit listed twice, a hit not in the event, ... is one line, and nothing is written
        check_submission(tracks, event.hits["hit_id"].to_numpy(), source=str(submission))
        path = Path(out) if out is not None else fitted_path(submission)
    else:
        from .reconstruct import get_method

        tracks = get_method(method).reconstruct(event)
        stem = Path(event_path).name.split("-")[0]
        path = Path(out) if out is not None else Path(event_path).with_name(f"{stem}-{method}-fit.csv")
    fits = fit_tracks(event, tracks, fitter=fitter)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fits.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    summary = None
    if event.truth is not None and event.particles is not None:
        summary = fit_summary(fits, match_fits(fits, tracks, event.truth, event.particles))
    return {"path": path, "fits": fits, "summary": summary, "fitter": fitter}
