"""The true graph of an event: which pairs of hits a graph network should connect.

A particle's hits are ordered by their distance from its production vertex (outward along the first half
turn; loopers that come back in are cut where the distance starts to fall back). Consecutive hits on one
layer (overlapping modules) form a group; every hit of a group is joined to every hit of the next group, from
the inner to the outer one. Noise hits (particle_id 0) have no edges.
"""

from __future__ import annotations

import numpy as np

from ...event import Event


def layer_key(hits) -> np.ndarray:
    """One integer per (volume_id, layer_id)."""
    return hits["volume_id"].to_numpy(np.int64) * 100 + hits["layer_id"].to_numpy(np.int64)


def track_order(event: Event) -> tuple[np.ndarray, np.ndarray]:
    """(rows, particle index): the event's particle hits, grouped by particle and ordered outward within each,
    up to where a looper turns back toward its vertex."""
    if event.truth is None:
        from ...errors import EventError

        raise EventError("the event has no truth table: the true graph needs particle_id per hit")
    truth = event.truth.set_index("hit_id").reindex(event.hits["hit_id"])
    pid = truth["particle_id"].to_numpy(np.int64)
    rows = np.flatnonzero(pid != 0)
    _, part = np.unique(pid[rows], return_inverse=True)
    xyz = event.hits[["x", "y", "z"]].to_numpy(np.float64)[rows]
    if event.particles is not None and len(event.particles):
        vtx = event.particles.set_index("particle_id").reindex(pid[rows])[["vx", "vy", "vz"]].to_numpy(np.float64)
        vtx = np.nan_to_num(vtx)
    else:
        vtx = np.zeros_like(xyz)
    dist = np.linalg.norm(xyz - vtx, axis=1)
    order = np.lexsort((dist, part))
    rows, part = rows[order], part[order]
    # A looper's hits on its way back in sort among its outgoing ones; keep the hits up to the first turn.
    tpt = truth[["tpx", "tpy"]].to_numpy(np.float64)[rows] if "tpx" in truth else None
    if tpt is not None:
        radial = (xyz[order, 0] * tpt[:, 0] + xyz[order, 1] * tpt[:, 1])  # > 0 while moving outward in r
        keep = radial >= 0
        rows, part = rows[keep], part[keep]
    return rows, part


def true_edges(event: Event) -> np.ndarray:
    """(2, E) hit rows (inner, outer) of the true graph, see the module's description."""
    rows, part = track_order(event)
    if len(rows) < 2:
        return np.zeros((2, 0), np.int64)
    layer = layer_key(event.hits)[rows]
    new_group = np.ones(len(rows), bool)
    new_group[1:] = (part[1:] != part[:-1]) | (layer[1:] != layer[:-1])
    gpart = part[new_group]
    start = np.flatnonzero(new_group)
    size = np.diff(np.append(start, len(rows)))
    # Group g joins group g + 1 when both belong to one particle.
    link = np.flatnonzero(gpart[:-1] == gpart[1:])
    n_pairs = size[link] * size[link + 1]
    g = np.repeat(link, n_pairs)
    k = np.arange(n_pairs.sum()) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    inner = start[g] + k // size[g + 1]
    outer = start[g + 1] + k % size[g + 1]
    return np.stack([rows[inner], rows[outer]])
