"""Pieces of one particle joined: a track followed on from its end into the first hits of another.

A particle's track comes out in two pieces when its Kalman candidate stops (a hole too many, a hit outside the
gate after a large scattering, a module the geometry misses) and a later seed, or a piece of another method's
tracks, picks up its outer hits. The TrackML score then counts at most one piece, and neither when none holds
more than half the particle's hits. On list 1001 (seed 1) with `gnn`'s tracks 0.03 of the score's weight lay in
such pieces: own pieces of found particles (0.0095) and particles split into pieces none of which holds half their
hits (0.015); joining every piece with the same majority particle would give 0.919 instead of 0.905.

`join_tracks` seeds each track with its last three hits on distinct layers (the outermost ones), follows it
outward with the CKF on a hit set made of the first `HEAD` hits (nearest the origin) of every track, with the
gate, branching and holes of the pass, and joins it to the track whose first hits its best candidate takes (at
least `MIN_SHARED` of them): each track to at most one further track and from at most one earlier, the most hits
taken first, then the smallest chi2 per hit. Chains of pieces become one track (the smallest label among them). A
piece with hits on fewer than three layers is joined only as the later one.

On the ten development lists `gnn` scores 0.9067 with the joining against 0.8997 without (every list gains
0.006-0.008; duplicates 0.019 against 0.048), about 0.6 s an event (`benchmarks/gnn_kalman.py --tag join`);
`ckf`'s own tracks are rarely split (0.8688 -> 0.8689).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .ambiguity import best_per_seed
from .geometry import Hits, Layers
from .kalman import Finder
from .seeding import fit_seeds, track_triplets

HEAD = 3  # hits of a track (nearest the origin) that another track's end may run into
MIN_SHARED = 2  # of those a candidate must take to join


def _heads(labels: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """The rows of each track's first `HEAD` hits by ``reach`` (the distance from the origin)."""
    rows = np.flatnonzero(labels >= 0)
    order = rows[np.lexsort((reach[rows], labels[rows]))]
    lab = labels[order]
    new_track = np.r_[True, lab[1:] != lab[:-1]] if len(order) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(new_track, np.arange(len(order)), 0)) if len(order) else order
    return order[np.arange(len(order)) - start < HEAD]


def join_tracks(hits: Hits, lay: Layers, labels: np.ndarray, field: float = 2.0, chi2_max: float = 15.0,
                n_branches: int = 3, max_candidates: int = 3, max_holes: int = 2) -> np.ndarray:
    """A track label per hit row (-1: none) with the pieces of one particle joined (the module's docstring); the
    CKF's settings as `kalman.Finder` takes them."""
    labels = np.asarray(labels, np.int64)
    n_labels = int(labels.max(initial=-1)) + 1
    if n_labels < 2:
        return labels.copy()
    reach = np.hypot(hits.r, hits.z)
    ends = track_triplets(labels, -reach, hits.layer)[:, ::-1]  # the last three layers, ordered outward
    with np.errstate(divide="ignore", invalid="ignore"):
        seeds = fit_seeds(hits, ends, np.zeros(len(ends)), field)
    finite = np.all([np.isfinite(seeds[k]) for k in ("phi0", "d0", "z0", "cot", "qpt", "psi")], axis=0)
    seeds = {k: v[finite] for k, v in seeds.items()}
    if len(seeds["hits"]) == 0:
        return labels.copy()
    available = np.zeros(len(labels), bool)
    available[_heads(labels, reach)] = True
    finder = Finder(hits.without(~available), lay, field=field, chi2_max=chi2_max, n_branches=n_branches,
                    max_candidates=max_candidates, max_holes=max_holes)
    cand = finder.run(seeds)
    cand = cand.take(best_per_seed(cand.seed, cand.nh, cand.chi2))
    own = labels[seeds["hits"][cand.seed, 0]]
    # the hits each candidate took beyond its seed, and the tracks they belong to
    slot = np.arange(cand.hits.shape[1])[None, :]
    taken = (slot >= 3) & (slot < cand.nh[:, None])
    which = np.broadcast_to(np.arange(len(cand))[:, None], cand.hits.shape)[taken]
    other = labels[cand.hits[taken].astype(np.int64)]
    mine = (other >= 0) & (other != own[which])
    pair, shared = np.unique(which[mine] * n_labels + other[mine], return_counts=True)
    ok = shared >= MIN_SHARED
    pair, shared = pair[ok], shared[ok]
    c, b = pair // n_labels, pair % n_labels
    a = own[c]
    per_hit = cand.chi2[c] / cand.nh[c]
    order = np.lexsort((per_hit, -shared))
    a, b = a[order], b[order]
    _, first_a = np.unique(a, return_index=True)  # each track joins at most one further track ...
    keep = np.sort(first_a)
    a, b = a[keep], b[keep]
    _, first_b = np.unique(b, return_index=True)  # ... and is joined by at most one earlier
    a, b = a[first_b], b[first_b]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n_labels, n_labels))
    _, component = connected_components(graph, directed=False)
    # each chain takes the smallest label among its pieces
    smallest = np.full(component.max() + 1, n_labels, np.int64)
    np.minimum.at(smallest, component, np.arange(n_labels))
    out = labels.copy()
    on = labels >= 0
    out[on] = smallest[component[labels[on]]]
    return out
