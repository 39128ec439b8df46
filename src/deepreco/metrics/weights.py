"""Per-hit weights of the TrackML score (phase 1 definition).

A hit's weight is the product of two factors, normalised so that the weights of an event sum to 1:

* a transverse-momentum factor of its particle, `weight_pt`: 0 below 0.05 GeV, 0.2 from 0.05 to 0.5 GeV,
  rising linearly to 1 at 3 GeV, and 1 above;
* an order factor, from `order_weight_matrix`: the hits of a particle are ordered by their distance
  ``|tz - vz|`` along the beam from the particle's vertex, and the first and last hits weigh more than the
  middle ones.

The values are those of the challenge's reference library (``trackml.weights.weight_hits_phase1``), corner
cases included:

* the particle's hit count is the ``nhits`` column of the particles table (not the truth count); particles
  with fewer than 4 hits weigh 0, counts above 20 are treated as 20, hits of index 20 or more weigh 0;
* the hit index is the average rank of ``|tz - vz|`` within the particle (ties share the mean rank), minus
  one, truncated to an integer;
* a hit index at or above ``nhits`` (the table's count is smaller than the truth count) is an error;
* hits whose particle is not in the particles table (noise, particle 0, among them) weigh 0, and so do
  particles whose pT is NaN.

Where the reference divides 0 by 0 (an event whose hits all weigh 0) these functions return zeros.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepreco.errors import EventError

from .validation import IdIndex, float_column, integer_ids, require_columns

__all__ = ["add_weights", "hit_weights", "order_weight_matrix", "weight_pt"]

#: Relative weights at evenly spaced points along a track, from its first hit to its last.
ORDER_PROPOSAL = (10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0)
#: Particles with fewer hits than this weigh 0.
ORDER_MIN_HITS = 4
#: Hit counts above this are treated as this; hit indices at or above it weigh 0.
ORDER_MAX_HITS = 20


def order_weight_matrix(
    proposal=ORDER_PROPOSAL, min_hits: int = ORDER_MIN_HITS, max_hits: int = ORDER_MAX_HITS
) -> np.ndarray:
    """Order weights as a ``(max_hits + 1, max_hits)`` matrix indexed by ``[nhits, ihit]``.

    Row ``n`` (for ``min_hits <= n <= max_hits``) holds the weights of the ``n`` hits of an ``n``-hit
    particle: the proposal values are spread evenly from the first hit (index 0) to the last (index
    ``n - 1``), interpolated linearly at each hit index, and scaled so that the row sums to 1. Rows below
    ``min_hits`` and entries at ``ihit >= nhits`` are 0.
    """
    knots = np.asarray(proposal, dtype=np.float64)
    if knots.ndim != 1 or knots.size < 2:
        raise ValueError("proposal must be a sequence of at least 2 values")
    matrix = np.zeros((max_hits + 1, max_hits), dtype=np.float64)
    steps = np.arange(knots.size, dtype=np.float64)
    for nhits in range(max(min_hits, 2), max_hits + 1):
        # the proposal's knots sit at evenly spaced positions between hit 0 and hit nhits - 1
        positions = steps * (nhits - 1) / (knots.size - 1)
        row = np.interp(np.arange(nhits, dtype=np.float64), positions, knots)
        matrix[nhits, :nhits] = row / row.sum()
    return matrix


_ORDER_MATRIX = order_weight_matrix()
_ORDER_MATRIX.flags.writeable = False


def weight_pt(pt, pt_inf: float = 0.5, pt_sup: float = 3.0, w_min: float = 0.2, w_max: float = 1.0,
              pt_cut: float = 0.05):
    """Transverse-momentum weight of a particle (pT in GeV); array in, array out (a scalar for a scalar).

    0 below ``pt_cut`` (0.05 GeV), ``w_min`` (0.2) from there to ``pt_inf`` (0.5 GeV), then linear up to
    ``w_max`` (1.0) at ``pt_sup`` (3 GeV), and ``w_max`` above. NaN stays NaN.
    """
    xp = [min(pt_cut, pt_inf), pt_inf, pt_sup]
    fp = [w_min, w_min, w_max]
    return np.interp(pt, xp, fp, left=0.0, right=w_max)


def _order_index(group: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Hit index within each group: average rank of `dist` (ties share it) minus 1, truncated.

    Rows with NaN distance get index 0. Vectorised: one lexsort, then run boundaries.
    """
    index = np.zeros(group.size, dtype=np.int64)
    rows = np.flatnonzero(~np.isnan(dist))
    if rows.size == 0:
        return index
    order = rows[np.lexsort((dist[rows], group[rows]))]
    g = group[order]
    d = dist[order]
    n = order.size
    at = np.arange(n)
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(g[1:], g[:-1], out=new_group[1:])
    # position of each row within its group (0-based)
    pos = at - np.maximum.accumulate(np.where(new_group, at, 0))
    # runs of equal distance within a group share the average of their positions
    new_run = new_group.copy()
    new_run[1:] |= d[1:] != d[:-1]
    run = np.cumsum(new_run) - 1
    run_first = pos[new_run]
    run_last = np.empty_like(run_first)
    run_last[:-1] = pos[np.flatnonzero(new_run)[1:] - 1]
    run_last[-1] = pos[-1]
    # (first + last) / 2 truncated: the reference's int(mean rank - 1); both are >= 0
    index[order] = (run_first[run] + run_last[run]) // 2
    return index


def hit_weights(truth: pd.DataFrame, particles: pd.DataFrame) -> np.ndarray:
    """TrackML hit weights (float64, one per truth row, in truth's row order), summing to 1.

    `truth` needs ``particle_id`` and ``tz``; `particles` needs ``particle_id``, ``vz``, ``px``, ``py``
    and ``nhits``. See the module docstring for the definition. An event whose hits all weigh 0 gets
    zeros. Raises EventError on missing columns, non-integer or duplicated particle ids in `particles`,
    and on a hit whose order index reaches its particle's ``nhits`` (the reference raises there too).
    """
    require_columns(truth, ("particle_id", "tz"), "truth", EventError)
    require_columns(particles, ("particle_id", "vz", "px", "py", "nhits"), "particles", EventError)
    hit_particle = integer_ids(truth["particle_id"], "particle_id", "truth", EventError)
    table_ids = integer_ids(particles["particle_id"], "particle_id", "particles", EventError)
    table = IdIndex(table_ids, "particle_id", "particles", EventError)
    n = hit_particle.size
    if n == 0:
        return np.zeros(0, dtype=np.float64)

    row, known = table.find(hit_particle)
    krow = row[known]

    pt = np.hypot(float_column(particles, "px"), float_column(particles, "py"))
    w_pt = np.zeros(n)
    w_pt[known] = np.nan_to_num(weight_pt(pt)[krow], nan=0.0)

    table_nhits = np.nan_to_num(float_column(particles, "nhits"), nan=0.0)
    nhits = np.zeros(n, dtype=np.int64)
    nhits[known] = np.trunc(table_nhits[krow]).astype(np.int64)

    dist = np.full(n, np.nan)
    dist[known] = np.abs(float_column(truth, "tz")[known] - float_column(particles, "vz")[krow])
    ihit = _order_index(row, dist)

    w_order = np.zeros(n)
    usable = nhits >= ORDER_MIN_HITS
    capped = np.minimum(nhits, ORDER_MAX_HITS)
    usable &= ihit < ORDER_MAX_HITS
    bad = usable & (ihit >= capped)
    if bad.any():
        first = np.flatnonzero(bad)[0]
        raise EventError(
            f"truth/particles: {int(bad.sum())} hits have an order index at or above their particle's "
            f"nhits, e.g. particle {hit_particle[first]} (nhits {nhits[first]}, hit index {ihit[first]}): "
            "the particles table counts fewer hits than the truth"
        )
    w_order[usable] = _ORDER_MATRIX[capped[usable], ihit[usable]]

    weight = w_pt * w_order
    total = weight.sum()
    if total > 0:
        weight /= total
    else:
        weight[:] = 0.0
    return weight


def add_weights(truth: pd.DataFrame, particles: pd.DataFrame) -> pd.DataFrame:
    """A copy of `truth` with its ``weight`` column set to `hit_weights` (added when absent)."""
    weights = hit_weights(truth, particles)
    out = truth.copy()
    out["weight"] = weights
    return out
