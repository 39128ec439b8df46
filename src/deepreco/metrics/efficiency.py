"""Tracking efficiency in bins of particle pT or pseudorapidity, with Clopper-Pearson intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .tracking import MATCHINGS, _check_counts, match_particles

__all__ = ["default_bins", "efficiency_table"]

#: Central probability of the intervals: one standard deviation of a normal distribution (68.27 %).
ONE_SIGMA = 0.6826894921370859

_VARS = ("pt", "eta")


def default_bins(var: str) -> np.ndarray:
    """Default bin edges: pT 0.1 to 100 GeV, 5 log-spaced bins a decade; eta -4 to 4 in steps of 0.5."""
    if var == "pt":
        return np.logspace(-1.0, 2.0, 16)
    if var == "eta":
        return np.linspace(-4.0, 4.0, 17)
    raise ValueError(f"var must be one of {', '.join(_VARS)}, got {var!r}")


def clopper_pearson(k: np.ndarray, n: np.ndarray, cl: float = ONE_SIGMA):
    """Central Clopper-Pearson interval for k successes out of n trials (NaN where n is 0)."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    alpha = 1.0 - cl
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        upper = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    empty = n == 0
    return np.where(empty, np.nan, lower), np.where(empty, np.nan, upper)


def efficiency_table(truth: pd.DataFrame, particles: pd.DataFrame, submission: pd.DataFrame,
                     var: str = "pt", bins=None, matching: str = "double_majority",
                     pt_min: float | None = None, min_hits: int = 4, min_track_hits: int = 4,
                     cl: float = ONE_SIGMA, validate: bool = True) -> pd.DataFrame:
    """Efficiency of selected particles in bins of ``var`` ("pt" in GeV, or "eta").

    Particle selection, tracks and matchings are those of `tracking_metrics` (``matching`` is
    "double_majority" or "perfect"). ``pt_min`` defaults to 0 for ``var="pt"`` (the bins set the range)
    and to 1 GeV for ``var="eta"``. ``bins`` are edges (default `default_bins`); as in numpy.histogram the
    last bin includes its upper edge, and particles outside the edges are left out.

    Columns: low, high, n_particles, n_matched, efficiency (NaN in an empty bin), and lower, upper: the
    central Clopper-Pearson interval of probability ``cl`` (68.27 %; NaN in an empty bin). ``attrs`` hold
    var and matching.
    """
    if var not in _VARS:
        raise ValueError(f"var must be one of {', '.join(_VARS)}, got {var!r}")
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {', '.join(MATCHINGS)}, got {matching!r}")
    _check_counts(min_hits, min_track_hits)
    edges = default_bins(var) if bins is None else np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not (np.diff(edges) > 0).all():
        raise ValueError("bins must be at least 2 increasing edges")
    if pt_min is None:
        pt_min = 0.0 if var == "pt" else 1.0

    match = match_particles(truth, particles, submission, min_track_hits=min_track_hits,
                            with_pz=(var == "eta"), validate=validate)
    selected = match.selected(pt_min, min_hits)
    values = match.pt if var == "pt" else match.eta
    keep = selected & np.isfinite(values)
    values = values[keep]
    matched = match.matched[matching][keep]

    n_particles, _ = np.histogram(values, bins=edges)
    n_matched, _ = np.histogram(values[matched], bins=edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        efficiency = np.where(n_particles > 0, n_matched / np.maximum(n_particles, 1), np.nan)
    lower, upper = clopper_pearson(n_matched, n_particles, cl)
    table = pd.DataFrame({
        "low": edges[:-1],
        "high": edges[1:],
        "n_particles": n_particles.astype(np.int64),
        "n_matched": n_matched.astype(np.int64),
        "efficiency": efficiency,
        "lower": lower,
        "upper": upper,
    })
    table.attrs["var"] = var
    table.attrs["matching"] = matching
    return table
