"""Ambiguity resolution: each hit to at most one track, greedily by track quality.

Candidates from one seed compete first: the seed keeps its best candidate (most hits, then smallest chi2).
Tracks from different seeds then share hits (the same particle seeded twice, or crossing tracks); they are
taken in order of quality (most hits, then smallest chi2 per hit) and each keeps only the hits no better track
holds. A track is kept when at least ``min_hits`` of its hits are free and they are at least ``min_free`` of
its hits (a duplicate of a better track keeps almost none and goes).
"""

from __future__ import annotations

import numpy as np

from . import fast


def best_per_seed(seed: np.ndarray, nh: np.ndarray, chi2: np.ndarray) -> np.ndarray:
    """Index of the best candidate of each seed (most hits, then smallest chi2)."""
    if len(seed) == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((chi2, -nh, seed))
    first = np.ones(len(order), bool)
    first[1:] = seed[order][1:] != seed[order][:-1]
    return order[first]


def resolve(hits: np.ndarray, nh: np.ndarray, chi2: np.ndarray, n_hits: int, min_hits: int | np.ndarray = 5,
            min_free: float = 0.5, used: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy resolution of tracks given as padded hit rows (n, max_hits; -1 padding) with nh hits each.

    ``min_hits`` may be given per track.

    Returns (track index, hit row) pairs of the hits each accepted track keeps. ``used`` (bool per hit, updated
    in place) marks hits already taken, e.g. by an earlier round.
    """
    if used is None:
        used = np.zeros(n_hits, bool)
    min_hits = np.broadcast_to(min_hits, nh.shape)
    ndf = np.maximum(2 * nh - 5, 1)
    order = np.lexsort((chi2 / ndf, -nh))
    if fast.HAVE_NUMBA:  # the same loop compiled
        return fast.resolve(np.ascontiguousarray(hits), np.ascontiguousarray(nh, np.int64), order,
                            np.ascontiguousarray(min_hits, np.int64), float(min_free), used)
    out_track, out_hit = [], []
    for i in order:
        row = hits[i, :nh[i]]
        free = row[~used[row]]
        if len(free) < min_hits[i] or len(free) < min_free * nh[i]:
            continue
        used[free] = True
        out_track.append(np.full(len(free), i))
        out_hit.append(free)
    if not out_track:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_track), np.concatenate(out_hit)
