"""Seeds for the LSTM: the first five hits (outward) of each DBSCAN cluster, or of each true particle.

Seed quality as the seed reports it: the share of seeds whose five hits all come from one particle ("perfect").
"""

from __future__ import annotations

import itertools

import numpy as np

from .assign import BARREL_VOLUMES
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


def helix_fit(points: np.ndarray) -> tuple[np.ndarray, ...]:
    """For (..., n, 3) points, the helix from the beam line that fits them: a circle through the origin in x-y
    (x^2 + y^2 = 2 a x + 2 b y, least squares, `features.origin_circle`) and z a straight line in the arc length
    s along it. Returns the centre a, b and radius (...) [mm], each point's s (..., n) [mm], the slope dz / ds and
    z0 (...) [mm], the helix's z at the beam line."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    ab = origin_circle(points)
    a, b = ab[..., 0], ab[..., 1]
    radius = np.hypot(a, b)
    turn = np.angle(np.exp(1j * (np.arctan2(y - b[..., None], x - a[..., None]) - np.arctan2(-b, -a)[..., None])))
    s = radius[..., None] * np.abs(turn)
    ds, dz = s - s.mean(axis=-1, keepdims=True), z - z.mean(axis=-1, keepdims=True)
    slope = (ds * dz).sum(axis=-1) / np.maximum((ds * ds).sum(axis=-1), 1e-9)
    return a, b, radius, s, slope, z.mean(axis=-1) - slope * s.mean(axis=-1)


def helix_residuals(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (..., n, 3) points, how well one helix from the beam line fits them (`helix_fit`): the largest distance
    of a point from the circle [mm] and the largest z residual [mm], per point set."""
    a, b, radius, s, slope, z0 = helix_fit(points)
    across = np.abs(np.hypot(points[..., 0] - a[..., None], points[..., 1] - b[..., None]) - radius[..., None])
    dz = points[..., 2] - z0[..., None] - slope[..., None] * s
    return across.max(axis=-1), np.abs(dz).max(axis=-1)


def _cluster_windows(labels: np.ndarray, dist: np.ndarray, layer: np.ndarray, n: int, window: int):
    """Each cluster's points in outward order (``dist``; ties by row), one per layer (a point on the layer of the
    one before it is left out), for the clusters that keep at least ``n``: (cluster labels, how many of the
    first ``window`` they fill, (C, window) rows, -1 padded)."""
    rows = np.flatnonzero(labels >= 0)
    order = rows[np.lexsort((dist[rows], labels[rows]))]
    lab, lay = labels[order], layer[order]
    again = np.zeros(len(order), bool)
    again[1:] = (lab[1:] == lab[:-1]) & (lay[1:] == lay[:-1])
    order = order[~again]
    clusters, start, count = np.unique(labels[order], return_index=True, return_counts=True)
    enough = count >= n
    clusters, start, count = clusters[enough], start[enough], np.minimum(count[enough], window)
    hits = np.full((len(start), window), -1, np.int64)
    inside = np.arange(window)[None, :] < count[:, None]
    hits[inside] = order[(start[:, None] + np.arange(window))[inside]]
    return clusters, count, hits


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
    if not (np.asarray(labels) >= 0).any():
        return np.zeros((0, n), np.int64)
    _, count, hits = _cluster_windows(np.asarray(labels), outward_order(*xyz.T), layer, n, window)
    combos = np.array(list(itertools.combinations(range(window), n)))
    chosen = np.full(len(count), -1)
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
    kept = _best_first(seeds, -size, n_hits)  # larger clusters first
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


COMBOS = np.array(list(itertools.combinations(range(7), N_SEED)), np.int64)  # 5 of a cluster's first 7 hits


def cluster_candidates(labels, phi, module, layer, dist, x, y, z, combos=COMBOS, min_size: int = N_SEED,
                       max_size: int = 20, max_first_radius: float = 200.0, max_across: float = 0.5,
                       max_z: float = 2.0):
    """The seed candidates of one clustering of some points (``labels`` one per point, -1: none; the points'
    azimuth, module and layer ids, outward distance and x, y, z as arrays): each cluster is cleaned to one point per
    module (`dbscan.one_hit_per_module`); one of ``min_size`` to ``max_size`` points is ordered outward, one point
    per layer (a point on the layer of the one before it is left out), and of its first points the ``combos``
    (rows of positions, 5 of the first 7) that one helix from the beam line fits best is its candidate, when
    that fit is within ``max_across`` and ``max_z`` [mm] (`helix_residuals`: score max(across / max_across,
    z / max_z) < 1) and its first point lies inside ``max_first_radius`` [mm]. Returns (seeds (m, 5) point rows,
    scores (m,), clusters (m,), member offsets (m + 1,), members: the rows of each candidate's cleaned cluster).
    Compiled in `fast.cluster_candidates` when numba is installed; this is the NumPy version (the same output)."""
    from .. import dbscan

    n = combos.shape[1]
    labels = dbscan.one_hit_per_module(np.asarray(labels, np.int64), phi, module)
    size = np.bincount(labels[labels >= 0], minlength=1)
    labels = np.where((labels >= 0) & (size[np.maximum(labels, 0)] >= min_size)
                      & (size[np.maximum(labels, 0)] <= max_size), labels, -1)
    window = combos.max() + 1
    clusters, count, hits = _cluster_windows(labels, dist, layer, n, window)
    best, chosen = np.full(len(count), np.inf), np.full(len(count), -1)
    xyz = np.column_stack([x, y, z])
    for c, combo in enumerate(combos):
        todo = np.flatnonzero(combo[-1] < count)
        if len(todo):
            across, dz = helix_residuals(xyz[hits[todo][:, combo]])
            score = np.maximum(across / max_across, dz / max_z)
            better = score < best[todo]
            best[todo[better]], chosen[todo[better]] = score[better], c
    found = np.flatnonzero(best < 1.0)
    seeds = hits[found[:, None], combos[chosen[found]]]
    inner = np.hypot(x[seeds[:, 0]], y[seeds[:, 0]]) < max_first_radius
    found, seeds = found[inner], seeds[inner]
    cluster = clusters[found]
    members = [np.flatnonzero(labels == c) for c in cluster]
    offsets = np.concatenate([[0], np.cumsum([len(m) for m in members])]).astype(np.int64)
    return (seeds, best[found], cluster, offsets,
            np.concatenate(members).astype(np.int64) if members else np.zeros(0, np.int64))


def grid_seeds(event, n_curvatures: int = 41, pt_min: float = 0.12, z0_step: float = 5.0, z0_max: float = 150.0,
               z0_range: tuple[float, float] | None = None, min_share: float = 0.05, eps: float = 0.008,
               z_scale: float = 0.2, min_samples: int = 3, max_radius: float = 700.0, field: float = 2.0,
               max_first_radius: float = 200.0, max_size: int = 20, max_across: float = 0.5, max_z: float = 2.0,
               second_pass: bool = True, complete: bool = True, complete_distance: float = 3.0,
               strict_across: float = 0.3, strict_z: float = 1.0, forward: bool = True,
               threads: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Seed 004's DBSCAN seeding over a dense grid of arcs: ``(seeds (S, 5) hit rows, labels)``, labels one per
    hit (-1: none; a hit in a kept seed's cluster has the seed's row, the first such seed).

    The hits inside ``max_radius`` [mm] (the pixel and short-strip layers, where a track's first hits are; the
    outer layers only add other tracks' hits to the clusters) are clustered by DBSCAN (``eps``,
    ``min_samples``) in (cos phi0, sin phi0, ``z_scale`` (z - z0) / s) (`dbscan.unrolled_coordinates`; a hit
    beyond the reach 1 / |k| of an arc is left out of its clustering) for every arc of a grid: ``n_curvatures``
    curvatures evenly from -k to k, k that of a track of ``pt_min`` [GeV] in ``field`` [T], times the origins z0
    every ``z0_step`` [mm] over the event's luminous region. Why so many: a cluster holds a track's hits only when
    the arc is near the track's; the tolerance in z0 is eps / z_scale times a hit's arc length (1.3 mm at 32 mm,
    the innermost layer, whose hit the completion below brings back when the cluster misses it), and half the
    tracks of at least 10 hits on a mu = 200 event have pT below 0.5 GeV.
    The luminous region is ``z0_range`` (lo, hi) [mm] when given, else measured: a first pass over a coarse grid
    (11 curvatures, z0 every 4 ``z0_step`` within +-``z0_max``) seeds the event as below, each seed counts for
    the coarse z0 nearest its own (`helix_z0`), and the region spans the coarse z0 values with at least
    ``min_share`` of the largest count, widened by 2 ``z0_step`` on each side (on events simulated from
    TrackML's particle lists, whose beam spot is short, about -25 to 20 mm; the secondaries' seeds spread thinly
    over +-150 mm: below 1 % of the peak. On deepreco's generated events, sigma_z = 55 mm, about +-135 mm).

    Every cluster of every arc gives at most one candidate (`cluster_candidates`: its best five of its first
    seven hits on one helix, within ``max_across`` / ``max_z`` [mm], of a cluster of at most ``max_size`` hits
    after one hit per module, starting inside ``max_first_radius`` [mm]); the candidates are taken greedily, best
    helix fit first, and one is kept when none of its hits is in one kept before (the duplicates of one track
    from neighbouring arcs merge into the best). With ``second_pass``, the hits no kept seed's cluster holds are
    clustered again at the curvatures halfway between the grid's, and their candidates, within the stricter
    ``strict_across`` / ``strict_z`` [mm], kept the same way (a track whose phi0 the curvature spacing moves by
    more than eps at its outer hits is found there: on a gun of 20 muons, 2 cross the 145 mm from the third pixel
    layer to the strips, and are seeded only then; the second pass's clusters are of the hits the first left, more
    often noise and pieces: at 0.5 / 2.0 mm 55 % of its seeds were perfect on a generated event, 77 % at 0.3 /
    1.0). With ``complete``, each kept seed then becomes its track's first five hits (`complete_seeds`, within
    ``complete_distance`` [mm] of its helix's layer crossings, the five within ``strict_across`` / ``strict_z``).
    With ``forward``, the points on the pixel disks that no kept seed's cluster holds are clustered once more
    (every other curvature of the grid) with one point per module in place of one per layer, strict fits, and
    seeds whose five hits span at least three disks kept: a track beyond |eta| ~ 3.5 crosses only the last few
    disks, on two or three overlapping modules each, so its five first hits are on fewer than five layers and the
    passes above never seed it (deepreco's generated events, |eta| < 4.5, hold many: 0.09 of a mu = 200 event's
    score weight; TrackML's lists stop at |eta| = 4). Five hits on two disks are left out: two tracks' pieces
    that point the same way fit one helix as well (a quarter of such seeds were mixed on a generated event).

    The arcs run on ``threads`` threads (None: `deepreco.threads.current_threads`; the same seeds on any number):
    the compiled DBSCAN (`dbscan_fast`) and candidates (`fast`) run without the interpreter's lock.
    """
    from ...threads import current_threads, ordered_map
    from ..dbscan import cylinder_dbscan, module_ids
    from . import fast

    hits = event.hits
    n_hits = len(hits)
    x, y, z = _xyz(event)
    r = np.hypot(x, y)
    near = np.flatnonzero(r < max_radius)
    x, y, z, r = x[near], y[near], z[near], r[near]
    phi = np.arctan2(y, x)
    module = module_ids(hits)[near]
    layer = (hits["volume_id"].to_numpy(np.int64) * 1000 + hits["layer_id"].to_numpy(np.int64))[near]
    dist = outward_order(x, y, z)
    k_max = 0.3 * field / (2.0 * 1000.0 * pt_min)
    candidates = fast.cluster_candidates if fast.HAVE_NUMBA else cluster_candidates
    if not fast.HAVE_NUMBA:
        _slow_notice()
    threads = current_threads() if threads is None else max(1, int(threads))

    def grid(curvatures: np.ndarray, z0_values: np.ndarray, points: np.ndarray, across: float = max_across,
             along: float = max_z, layers: np.ndarray = layer) -> tuple:
        def arc(k: float) -> list:
            reach = points[np.abs(k) * r[points] < 1.0]  # a circle through the origin of curvature k ends at 1 / k
            bend = np.arcsin(k * r[reach])
            s = np.maximum(bend / k if k != 0 else r[reach], 1e-9)
            phi0 = phi[reach] + bend
            args = (phi[reach], module[reach], layers[reach], dist[reach], x[reach], y[reach], z[reach], COMBOS,
                    N_SEED, max_size, max_first_radius, across, along)
            found = []
            for z0 in z0_values:
                seeds, scores, _, offsets, members = candidates(
                    cylinder_dbscan(phi0, z_scale * (z[reach] - z0) / s, eps, min_samples), *args)
                found.append((reach[seeds], scores, np.diff(offsets), reach[members]))
            return found

        parts = [c for found in ordered_map(arc, curvatures.tolist(), threads) for c in found]
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))

    if z0_range is None:
        coarse = np.arange(-z0_max, z0_max + 0.5 * z0_step, 4 * z0_step)
        seeds, scores, sizes, members = grid(np.linspace(-k_max, k_max, 11), coarse, np.arange(len(near)))
        kept = _best_first(seeds, scores, len(near))
        if len(kept) == 0:
            return np.zeros((0, N_SEED), np.int64), np.full(n_hits, -1, np.int64)
        z0 = helix_z0(np.column_stack([x, y, z])[seeds[kept]])
        count = np.bincount(np.clip(np.round((z0 - coarse[0]) / (4 * z0_step)).astype(np.int64), 0,
                                    len(coarse) - 1), minlength=len(coarse))
        dense = coarse[count >= min_share * count.max()]
        z0_range = (dense.min() - 2 * z0_step, dense.max() + 2 * z0_step)
    lo, hi = np.floor(z0_range[0] / z0_step), np.ceil(z0_range[1] / z0_step)
    z0_values = np.arange(lo, hi + 0.5) * z0_step

    def keep(seeds, scores, sizes, members) -> tuple[np.ndarray, np.ndarray]:
        # the candidates kept (best fit first) and, for every point, the first kept seed whose cluster holds it
        kept = _best_first(seeds, scores, len(near))
        rank = np.full(len(seeds), len(kept), np.int64)
        rank[kept] = np.arange(len(kept))
        first = np.full(len(near), len(kept), np.int64)
        np.minimum.at(first, members, rank[np.repeat(np.arange(len(seeds)), sizes)])
        return seeds[kept], np.where(first < len(kept), first, -1)

    def add(found, held, more, held_more) -> tuple[np.ndarray, np.ndarray]:
        # a later pass's seeds after the ones before, its clusters on the points those left
        return np.concatenate([found, more]), np.where(held >= 0, held, np.where(held_more >= 0,
                                                                                  held_more + len(found), -1))

    curvatures = np.linspace(-k_max, k_max, n_curvatures)
    found, held = keep(*grid(curvatures, z0_values, np.arange(len(near))))
    if second_pass and n_curvatures > 1:
        # the points no kept seed's cluster holds, clustered again at the curvatures halfway between
        found, held = add(found, held, *keep(*grid(0.5 * (curvatures[1:] + curvatures[:-1]), z0_values,
                                                   np.flatnonzero(held < 0), strict_across, strict_z)))
    if forward:
        # the free points on the pixel disks: a track beyond |eta| ~ 3.5 crosses only the last few disks, on two
        # or three overlapping modules each, so five of its hits are on fewer than five layers; here one point
        # per module stands for one per layer
        points = np.flatnonzero((held < 0) & ~np.isin(layer // 1000, BARREL_VOLUMES) & (r < max_first_radius))
        seeds, scores, sizes, members = grid(curvatures[::2], z0_values, points, strict_across, strict_z, module)
        # five hits on two disks are as often two tracks' pieces that point the same way: three disks at least
        ordered = np.sort(layer[seeds], axis=1)
        ok = (np.diff(ordered, axis=1) != 0).sum(axis=1) >= 2
        found, held = add(found, held, *keep(seeds[ok], scores[ok], sizes[ok], members[np.repeat(ok, sizes)]))
    labels = np.full(n_hits, -1, np.int64)
    if len(found) == 0:
        return np.zeros((0, N_SEED), np.int64), labels
    labels[near] = held
    found = near[found]
    if complete:
        found = complete_seeds(event, found, max_distance=complete_distance, max_across=strict_across,
                               max_z=strict_z)
    labels[found] = np.arange(len(found))[:, None]  # a seed's own hits are its
    return found, labels


_NOTICED = []


def _slow_notice() -> None:
    """One line on stderr, once a process: the grid seeding without numba."""
    if not _NOTICED:
        _NOTICED.append(True)
        import sys

        print("note: numba is not installed, so lstm's grid seeding runs in NumPy and scikit-learn: minutes an event "
              "instead of seconds (pip install 'deepreco[fast]')", file=sys.stderr)


def _best_first(seeds: np.ndarray, scores: np.ndarray, n_points: int) -> np.ndarray:
    """The candidates kept, best score first (the first of equals), each when none of its points is in one kept
    before: their indices in that order."""
    order = np.argsort(scores, kind="stable")
    used = bytearray(n_points)
    kept = []
    for i, row in zip(order.tolist(), seeds[order].tolist(), strict=True):
        if not any(used[h] for h in row):
            kept.append(i)
            for h in row:
                used[h] = 1
    return np.array(kept, np.int64)


def helix_z0(points: np.ndarray) -> np.ndarray:
    """(..., n, 3) points -> (...,) the z at the beam line of the helix from the beam line that fits them
    (`helix_fit`)."""
    return helix_fit(points)[-1]


def complete_seeds(event, seeds: np.ndarray, index=None, max_distance: float = 3.0, max_across: float = 0.3,
                   max_z: float = 1.0, samples: int = 24, chunk: int = 1024) -> np.ndarray:
    """Seeds moved to their track's first five hits: each seed's helix (`helix_fit`) is followed from the beam
    line to its last hit, the nearest hit to each layer crossing within ``max_distance`` (the LSTM fit's
    distance on a layer, `assign.LayerIndex` of ``index``, None: a new one) joins the seed's hits (the seed's own
    hit keeps its layer), and the first five of them outward become the seed when one helix from the beam line
    fits those five within ``max_across`` / ``max_z`` [mm] (else the seed stays). A hit of another seed is not
    taken, and a hit two seeds would take goes to the first of them (the other stays as it was): no hit is in two
    seeds.

    Why: DBSCAN in (phi0, z / s) often leaves a track's innermost hit out of its cluster (at s = 32 mm a z0 off by
    1.3 mm moves it by eps), and the best five of seven hits may skip a hit between; the LSTM, trained to follow
    a track's first five hits, predicts worse from a later or gapped five. On an event simulated from TrackML
    list 1001, of the perfect grid seeds 63 % hold their particle's first hit, 82 % once completed.
    """
    from .assign import LayerIndex, layer_crossings, query_layers

    seeds = np.asarray(seeds, np.int64)
    if len(seeds) == 0:
        return seeds
    xyz = np.column_stack(_xyz(event))
    index = LayerIndex(event.hits, along_weight=0.5) if index is None else index
    a, b, radius, s, slope, z0 = helix_fit(xyz[seeds])
    origin = np.arctan2(-b, -a)
    sense = np.where(np.sum(np.angle(np.exp(1j * (np.arctan2(xyz[seeds, 1] - b[:, None], xyz[seeds, 0] - a[:, None])
                                                       - origin[:, None]))), axis=1) < 0, -1.0, 1.0)
    arc = np.linspace(0.0, 1.0, samples)[None, :] * (s.max(axis=1) + 1.0)[:, None]
    angle = origin[:, None] + sense[:, None] * arc / radius[:, None]
    path = np.stack([a[:, None] + radius[:, None] * np.cos(angle), b[:, None] + radius[:, None] * np.sin(angle),
                     z0[:, None] + slope[:, None] * arc], axis=-1)
    # in chunks: the crossings of every path segment with every layer are (seeds, segments, layers) arrays
    chunks = [layer_crossings(index, path[i:i + chunk]) for i in range(0, len(path), chunk)]
    which = np.concatenate([part[0] + i for i, part in zip(range(0, len(path), chunk), chunks, strict=True)])
    crossing = np.concatenate([part[1] for part in chunks])
    layer = np.concatenate([part[2] for part in chunks])
    rows, dist = query_layers(index, crossing, layer, k=1)
    taken = np.zeros(len(xyz), bool)
    taken[seeds] = True
    near = (dist[:, 0] <= max_distance) & ~taken[np.maximum(rows[:, 0], 0)]  # no other seed's hit
    which = np.concatenate([np.repeat(np.arange(len(seeds)), seeds.shape[1]), which[near]])
    rows = np.concatenate([seeds.ravel(), rows[near, 0]])
    cost = np.concatenate([np.full(seeds.size, -1.0), dist[near, 0]])
    layer = index.layer[rows]
    order = np.lexsort((cost, layer, which))  # one hit per seed and layer: its own, else the nearest
    which, rows, layer = which[order], rows[order], layer[order]
    first = np.r_[True, (which[1:] != which[:-1]) | (layer[1:] != layer[:-1])]
    which, rows = which[first], rows[first]
    order = np.lexsort((outward_order(*xyz[rows].T), which))
    which, rows = which[order], rows[order]
    start = np.searchsorted(which, np.arange(len(seeds)))
    enough = np.bincount(which, minlength=len(seeds)) >= seeds.shape[1]  # not so when two of its hits share a layer
    moved = rows[np.minimum(start[:, None] + np.arange(seeds.shape[1]), len(rows) - 1)]
    across, dz = helix_residuals(xyz[moved])
    moved = np.where((enough & (across < max_across) & (dz < max_z))[:, None], moved, seeds)
    # a hit two seeds take goes to the first (the grid's seeds come best fit first); the others stay as they were
    owner = np.full(len(xyz), len(seeds), np.int64)
    np.minimum.at(owner, moved.ravel(), np.repeat(np.arange(len(seeds)), seeds.shape[1]))
    clash = (owner[moved] != np.arange(len(seeds))[:, None]).any(axis=1)
    return np.where(clash[:, None], seeds, moved)
