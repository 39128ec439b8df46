"""Seeds for the LSTM: the first five hits (outward) of each DBSCAN cluster, or of each true particle.

Seed quality as the seed reports it: the share of seeds whose five hits all come from one particle ("perfect").
"""

from __future__ import annotations

import itertools

import numpy as np

from .features import N_SEED, origin_circle, outward_order


def _xyz(event) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(event.hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))


def first_hits(labels: np.ndarray, distance: np.ndarray, n: int = N_SEED,
               layer: np.ndarray | None = None) -> np.ndarray:
    """(S, n) hit rows: the ``n`` hits nearest the origin of each group (label >= 0) with at least ``n`` hits.

    With ``layer`` given, a hit on the same layer as the group's hit before it is skipped (one hit per layer,
    as the model was trained).
    """
    rows = np.flatnonzero(labels >= 0)
    if len(rows) == 0:
        return np.zeros((0, n), np.int64)
    order = rows[np.lexsort((distance[rows], labels[rows]))]
    if layer is not None:
        lab, lay = labels[order], layer[order]
        again = np.zeros(len(order), bool)
        again[1:] = (lab[1:] == lab[:-1]) & (lay[1:] == lay[:-1])
        order = order[~again]
    _, start, count = np.unique(labels[order], return_index=True, return_counts=True)
    start = start[count >= n]
    return order[start[:, None] + np.arange(n)]


def cluster_seeds(event, labels: np.ndarray, n: int = N_SEED, clean: bool = False,
                  outermost: bool = False) -> np.ndarray:
    """Seeds from cluster labels (one per hit, -1: none): the first ``n`` hits of each cluster of >= ``n``
    (after `remove_outliers` when ``clean``); with ``outermost`` the last ``n``, ordered from the outside in."""
    layer = event.hits["volume_id"].to_numpy(np.int64) * 1000 + event.hits["layer_id"].to_numpy(np.int64)
    labels = np.asarray(labels)
    if clean:
        labels = remove_outliers(event, labels, layer)
    distance = outward_order(*_xyz(event))
    return first_hits(labels, -distance if outermost else distance, n, layer)


def remove_outliers(event, labels: np.ndarray, layer: np.ndarray, max_residual: float = 10.0) -> np.ndarray:
    """Outlier removal (the seed's step after DBSCAN): fit each cluster with straight lines phi(r) and z(r), keep
    on each layer the hit nearest the fit, and drop hits whose residual r |dphi| + 0.2 |dz| exceeds
    ``max_residual`` [mm] (the z residual weighs less: strips are long and z0 is not known)."""
    labels = labels.copy()
    idx = np.flatnonzero(labels >= 0)
    if len(idx) == 0:
        return labels
    x, y, z = (v[idx] for v in _xyz(event))
    lab = np.unique(labels[idx], return_inverse=True)[1]
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    centre = np.arctan2(np.bincount(lab, np.sin(phi)), np.bincount(lab, np.cos(phi)))[lab]
    dphi = np.angle(np.exp(1j * (phi - centre)))

    def line(v):
        n, sr, sv = np.bincount(lab), np.bincount(lab, r), np.bincount(lab, v)
        srr, srv = np.bincount(lab, r * r), np.bincount(lab, r * v)
        det = n * srr - sr * sr
        slope = np.where(np.abs(det) > 1e-9, (n * srv - sr * sv) / np.where(det == 0, 1, det), 0.0)
        return v - (sv - slope * sr)[lab] / n[lab] - slope[lab] * r

    residual = r * np.abs(line(dphi)) + 0.2 * np.abs(line(z))
    order = np.lexsort((residual, layer[idx], lab))
    first = np.ones(len(order), bool)
    first[1:] = (lab[order][1:] != lab[order][:-1]) | (layer[idx][order][1:] != layer[idx][order][:-1])
    drop = np.zeros(len(idx), bool)
    drop[order[~first]] = True
    drop |= residual > max_residual
    labels[idx[drop]] = -1
    return labels


def helix_residuals(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (..., n, 3) points, how well one helix from the beam line fits them: a circle through the origin in
    x-y (x^2 + y^2 = 2 a x + 2 b y, least squares) and z a straight line in the arc length s along it. Returns
    the largest distance of a point from the circle [mm] and the largest z residual [mm], per point set."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    ab = origin_circle(points)
    a, b = ab[..., :1], ab[..., 1:]
    radius = np.hypot(a, b)
    across = np.abs(np.hypot(x - a, y - b) - radius).max(axis=-1)
    turn = np.angle(np.exp(1j * (np.arctan2(y - b, x - a) - np.arctan2(-b, -a))))
    s = radius * np.abs(turn)
    ds, dz = s - s.mean(axis=-1, keepdims=True), z - z.mean(axis=-1, keepdims=True)
    slope = (ds * dz).sum(axis=-1, keepdims=True) / np.maximum((ds * ds).sum(axis=-1, keepdims=True), 1e-9)
    return across, np.abs(dz - slope * ds).max(axis=-1)


def fitted_seeds(event, labels: np.ndarray, n: int = N_SEED, window: int = 7, max_across: float = 0.5,
                 max_z: float = 2.0) -> np.ndarray:
    """Seeds after outlier removal by a helix fit: of each cluster's first ``window`` hits outward (one per
    layer), the earliest ``n`` (in the order of `itertools.combinations`) that one helix from the beam line fits
    within ``max_across`` [mm] across and ``max_z`` [mm] in z (`helix_residuals`); a cluster with no such
    ``n`` gives no seed.

    Why: a cluster of DBSCAN in (phi0, z / s) mixes tracks where a wrong z0 hypothesis moves the inner hits by
    more than eps (at s = 32 mm a z0 off by 1.3 mm is enough) and where noise hits fall in; five hits of one
    particle lie on one helix to a fraction of a mm (on a mu = 200 event: 95 % of the perfect seeds within
    0.20 mm across and 1.5 mm in z, the others' medians 1.7 mm and 10 mm).
    """
    xyz = np.column_stack(_xyz(event))
    layer = event.hits["volume_id"].to_numpy(np.int64) * 1000 + event.hits["layer_id"].to_numpy(np.int64)
    rows = np.flatnonzero(np.asarray(labels) >= 0)
    if len(rows) == 0:
        return np.zeros((0, n), np.int64)
    order = rows[np.lexsort((outward_order(*xyz[rows].T), labels[rows]))]
    lab, lay = labels[order], layer[order]
    again = np.zeros(len(order), bool)
    again[1:] = (lab[1:] == lab[:-1]) & (lay[1:] == lay[:-1])
    order = order[~again]
    _, start, count = np.unique(labels[order], return_index=True, return_counts=True)
    enough = count >= n
    start, count = start[enough], np.minimum(count[enough], window)
    hits = np.full((len(start), window), -1, np.int64)
    inside = np.arange(window)[None, :] < count[:, None]
    hits[inside] = order[(start[:, None] + np.arange(window))[inside]]
    combos = np.array(list(itertools.combinations(range(window), n)))
    chosen = np.full(len(start), -1)
    for c, combo in enumerate(combos):
        todo = np.flatnonzero((chosen < 0) & (combo[-1] < count))
        if len(todo):
            across, dz = helix_residuals(xyz[hits[todo][:, combo]])
            chosen[todo[(across < max_across) & (dz < max_z)]] = c
    found = np.flatnonzero(chosen >= 0)
    return hits[found[:, None], combos[chosen[found]]]


def hypothesis_seeds(event, per_hypothesis, n: int = N_SEED, max_first_radius: float = 200.0,
                     min_size: int = N_SEED, max_size: int = 20, max_across: float = 0.3,
                     max_z: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Seeds from the clusters of every arc hypothesis, not only from the final labelling, and the clusters
    they claim: ``(seeds (S, n) hit rows, labels)``, labels one per hit (-1: none; a seed's cluster is its row).

    Why: the final labelling gives each hit the largest cluster it is in, over all hypotheses; a track that
    is a cluster of its own in one hypothesis loses its hits to a larger (merged) cluster of another, and the
    helix fit then rejects the merged cluster's seed (learned arcs on the tracking events: 26 % of the tracks
    seeded). Here each hypothesis's clusters (one hit per module, `dbscan._one_hit_per_module`, of ``min_size``
    to ``max_size`` hits) are seeded with `fitted_seeds` (within ``max_across`` and ``max_z`` [mm]: tighter than
    its defaults, as a hypothesis's clusters are not capped in size and mix more), seeds that start beyond
    ``max_first_radius`` [mm] are dropped, and the candidates are taken greedily, clusters of more hits first:
    a seed is kept when none of its hits is in a seed kept before (duplicates of one track from several
    hypotheses merge into the first). A hit of the kept seeds' clusters is labelled with the first kept seed
    whose cluster holds it. On the first tracking event (learned arcs) 38.5 % of the tracks seeded at 94.2 %
    perfect (0.5 / 2.0 mm: 37.3 % at 77.3 %; the final labelling's seeds 26.0 % at 92.2 %). What is still lost
    there: 37 % of the tracks have 5 hits in one cluster in no hypothesis (the arcs and eps, not the seeding from
    clusters; ``benchmarks/lstm_seed_losses.py``).
    """
    from ..dbscan import _one_hit_per_module

    xy = event.hits[["x", "y"]].to_numpy(np.float64)
    n_hits = len(xy)
    candidates, sizes, origin = [], [], []
    cleaned = []
    for h, labels in enumerate(per_hypothesis):
        labels = _one_hit_per_module(event.hits, np.asarray(labels, np.int64))
        cleaned.append(labels)
        seeds = fitted_seeds(event, labels, n, max_across=max_across, max_z=max_z)
        seeds = seeds[np.hypot(*xy[seeds[:, 0]].T) < max_first_radius]
        size = np.bincount(labels[labels >= 0], minlength=1)[labels[seeds[:, 0]]]
        fine = (size >= min_size) & (size <= max_size)
        seeds, size = seeds[fine], size[fine]
        candidates.append(seeds)
        sizes.append(size)
        origin.append(np.column_stack([np.full(len(seeds), h), labels[seeds[:, 0]]]))
    if not candidates or not sum(len(c) for c in candidates):
        return np.zeros((0, n), np.int64), np.full(n_hits, -1, np.int64)
    seeds, size, origin = np.concatenate(candidates), np.concatenate(sizes), np.concatenate(origin)
    order = np.argsort(-size, kind="stable")
    used = bytearray(n_hits)
    kept = []
    for i, row in zip(order.tolist(), seeds[order].tolist(), strict=True):
        if not any(used[h] for h in row):
            kept.append(i)
            for h in row:
                used[h] = 1
    kept = np.array(kept, np.int64)
    # each hit to the first kept seed (in the order taken) whose cluster holds it
    rank = np.full(n_hits, len(kept), np.int64)
    for h, labels in enumerate(cleaned):
        mine = origin[kept, 0] == h
        if not mine.any():
            continue
        first = np.full(labels.max() + 1, len(kept), np.int64)
        np.minimum.at(first, origin[kept[mine], 1], np.flatnonzero(mine))
        inside = labels >= 0
        rank[inside] = np.minimum(rank[inside], first[labels[inside]])
    out = np.where(rank < len(kept), rank, -1)
    out[seeds[kept]] = np.arange(len(kept))[:, None]  # a seed's own hits are its, whatever cluster came first
    return seeds[kept], out


def true_seeds(event, n: int = N_SEED) -> np.ndarray:
    """The first ``n`` hits (outward) of each true particle with at least ``n`` hits: seeding done perfectly."""
    if event.truth is None:
        from ...errors import DeepRecoError

        raise DeepRecoError("true seeds need the event's truth")
    pid = event.truth.set_index("hit_id")["particle_id"].reindex(event.hits["hit_id"]).to_numpy(np.int64)
    _, labels = np.unique(pid, return_inverse=True)
    labels = np.where(pid == 0, -1, labels)
    return cluster_seeds(event, labels, n)


def seed_quality(event, seeds: np.ndarray, min_hits: int = 10) -> dict:
    """Seed 004's two seeding figures, with their definitions.

    Every seed given is counted (the whole detector; the seed kept only x, y, z > 0, which changes the counts,
    not the density of hits). A track is a true particle with at least ``min_hits`` hits (10: the tracks the
    seed trained and tested on). Returns

    - ``n_seeds``;
    - ``perfect``: the share of seeds whose 5 hits all come from one particle (not noise): the seed's "seed
      quality" (85.8 %);
    - ``perfect_first``: the share of seeds that are exactly their particle's first 5 hits outward (one per
      layer, as `true_seeds`): stricter, what the LSTM was trained on;
    - ``particles``: distinct particles with a perfect seed; ``tracks``: the event's tracks;
    - ``seeded``: the share of tracks with at least one perfect seed: the seed's "total seeds per event found"
      (69 %: 43,820 seeded of 63,810 tracks over its 100 test events).
    """
    if event.truth is None:
        return {"n_seeds": len(seeds), "perfect": float("nan"), "perfect_first": float("nan"), "particles": 0,
                "tracks": 0, "seeded": float("nan")}
    pid = event.truth.set_index("hit_id")["particle_id"].reindex(event.hits["hit_id"]).to_numpy(np.int64)
    particle, count = np.unique(pid[pid != 0], return_counts=True)
    tracks = particle[count >= min_hits]
    if len(seeds) == 0:
        return {"n_seeds": 0, "perfect": float("nan"), "perfect_first": float("nan"), "particles": 0,
                "tracks": len(tracks), "seeded": 0.0 if len(tracks) else float("nan")}
    p = pid[seeds]
    perfect = (p == p[:, :1]).all(axis=1) & (p[:, 0] != 0)
    first = true_seeds(event)
    first_of = {int(pid[row[0]]): tuple(np.sort(row)) for row in first}
    exact = np.array([ok and first_of.get(int(q[0])) == tuple(np.sort(row))
                      for ok, q, row in zip(perfect, p, seeds, strict=True)], bool)
    found = np.unique(p[perfect, 0])
    return {"n_seeds": len(seeds), "perfect": float(perfect.mean()), "perfect_first": float(exact.mean()),
            "particles": len(found), "tracks": len(tracks),
            "seeded": float(np.isin(tracks, found).mean()) if len(tracks) else float("nan")}
