"""Fitting predicted points to real hits: a k-nearest-neighbour search per detector layer.

The LSTM's predicted points lie close to the track's path but are uncertain along it: where the next hit may
be on one layer or the next (a missed hit, a barrel-to-endcap turn), a regression puts it in between. So the
predicted points are joined into a path (the last real hit, the five predictions, and one step more), the
path is crossed with every layer (barrel cylinders by radius, endcap disks by z, within their extents), and
each crossing is matched to the nearest hit of that layer (`layer_crossings` + `match`). `LayerIndex.query`
instead puts each point on the layer whose surface it is nearest, the seed's plain per-point fit.
One k-d tree per layer; all points of a layer are queried at once.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

BARREL_VOLUMES = (8, 13, 17)


class LayerIndex:
    """The hits of one event, grouped by layer, with a k-d tree per layer.

    Layer surfaces (radius of a barrel layer, z of an endcap disk) and extents are taken from the hits, so the
    index needs no detector description. Distances on a layer weigh the direction along the beam (z on a
    barrel layer, r on a disk) by ``along_weight``: predictions are far less certain in that direction than
    in azimuth (the track's polar angle is known less well than its azimuth, and strips are long).
    """

    def __init__(self, hits, margin: float = 20.0, along_weight: float = 0.3):
        self.along_weight = float(along_weight)
        self.xyz = hits[["x", "y", "z"]].to_numpy(np.float64)
        r = np.hypot(self.xyz[:, 0], self.xyz[:, 1])
        volume = hits["volume_id"].to_numpy(np.int64)
        key = volume * 1000 + hits["layer_id"].to_numpy(np.int64)
        keys, layer = np.unique(key, return_inverse=True)
        order = np.argsort(layer, kind="stable")
        bounds = np.searchsorted(layer[order], np.arange(len(keys) + 1))
        self.rows = [order[bounds[i]:bounds[i + 1]] for i in range(len(keys))]
        self.barrel = np.isin(keys // 1000, BARREL_VOLUMES)
        z = self.xyz[:, 2]
        self.surface = np.array([np.median(r[rows]) if b else np.median(z[rows])
                                 for rows, b in zip(self.rows, self.barrel, strict=True)])
        self.mean_r = np.array([r[rows].mean() for rows in self.rows])
        self.trees = [cKDTree(self.metric(self.xyz[rows], i)) for i, rows in enumerate(self.rows)]
        # extent along the surface: z range of a barrel layer, r range of a disk
        along = [z[rows] if b else r[rows] for rows, b in zip(self.rows, self.barrel, strict=True)]
        self.low = np.array([a.min() for a in along]) - margin
        self.high = np.array([a.max() for a in along]) + margin
        self.layer = layer

    def __len__(self) -> int:
        return len(self.trees)

    def metric(self, points: np.ndarray, layer: int) -> np.ndarray:
        """Coordinates on ``layer`` whose euclidean distance is the weighted one: on a barrel layer (x, y, w z);
        on a disk the azimuth at the layer's mean radius and w r."""
        if self.barrel[layer]:
            return np.column_stack([points[:, 0], points[:, 1], self.along_weight * points[:, 2]])
        phi = np.arctan2(points[:, 1], points[:, 0])
        rad = self.mean_r[layer]
        return np.column_stack([rad * np.cos(phi), rad * np.sin(phi),
                                self.along_weight * np.hypot(points[:, 0], points[:, 1])])

    def nearest_layer(self, points: np.ndarray) -> np.ndarray:
        """For (M, 3) points, the index of the layer whose surface each is nearest (-1: none holds it)."""
        if len(self) == 0 or len(points) == 0:
            return np.full(len(points), -1, np.int64)
        r = np.hypot(points[:, 0], points[:, 1])[:, None]
        z = points[:, 2][:, None]
        across = np.where(self.barrel, r, z)  # coordinate normal to the surface
        along = np.where(self.barrel, z, r)
        dist = np.abs(across - self.surface)
        dist[(along < self.low) | (along > self.high)] = np.inf
        best = np.argmin(dist, axis=1)
        return np.where(np.isfinite(dist[np.arange(len(points)), best]), best, -1)

    def query(self, points: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest hits (rows, distances; -1 / inf where fewer) on each point's nearest layer."""
        return query_layers(self, points, self.nearest_layer(points), k)


def layer_crossings(index: LayerIndex, path: np.ndarray, skip_layer: np.ndarray | None = None,
                    min_step: float = 1.0):
    """Where (B, P, 3) polylines cross the layers, in order along each path.

    Returns (path index, crossing points (N, 3), layer of each, position along the path (segment + fraction)),
    sorted by path then position. Crossings of ``skip_layer`` (B,) (the layer of the track's last hit: modules
    are planar, so a path may cross its own layer again just after the hit) and crossings closer than
    ``min_step`` [mm] to the path's first point are left out.
    """
    a, b = path[:, :-1, None, :], path[:, 1:, None, :]  # (B, S, 1, 3)
    d = b - a
    surface, barrel = index.surface[None, None, :], index.barrel[None, None, :]
    # barrel: |a_xy + t d_xy| = R, the first root ahead (leaving the cylinder outward, entering it inward);
    # endcap: a_z + t d_z = Z
    qa = d[..., 0] ** 2 + d[..., 1] ** 2
    qb = 2.0 * (a[..., 0] * d[..., 0] + a[..., 1] * d[..., 1])
    qc = a[..., 0] ** 2 + a[..., 1] ** 2 - surface ** 2
    disc = qb * qb - 4.0 * qa * qc
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(np.where(disc >= 0, disc, np.nan))
        t_in, t_out = (-qb - root) / (2.0 * qa), (-qb + root) / (2.0 * qa)
        t_barrel = np.where(t_in > 0.0, t_in, t_out)
        t_endcap = (surface - a[..., 2]) / d[..., 2]
    t = np.where(barrel, t_barrel, t_endcap)
    ok = np.isfinite(t) & (t > 0.0) & (t <= 1.0)
    point = a + np.where(ok, t, 0.0)[..., None] * d
    along = np.where(barrel, point[..., 2], np.hypot(point[..., 0], point[..., 1]))
    ok &= (along >= index.low) & (along <= index.high)
    first = path[:, :1, None, :]
    ok &= np.linalg.norm(point - first, axis=-1) > min_step
    if skip_layer is not None:
        ok &= np.arange(len(index))[None, None, :] != skip_layer[:, None, None]
    track, segment, layer = np.nonzero(ok)
    position = segment + t[track, segment, layer]
    order = np.lexsort((position, track))
    track, segment, layer, position = track[order], segment[order], layer[order], position[order]
    return track, point[track, segment, layer], layer, position


def query_layers(index: LayerIndex, points: np.ndarray, layer: np.ndarray, k: int = 4):
    """The ``k`` nearest hits (rows, distances; -1 / inf where fewer) of each point on its given layer."""
    rows = np.full((len(points), k), -1, np.int64)
    dist = np.full((len(points), k), np.inf)
    for lay in np.unique(layer[layer >= 0]):
        sel = np.flatnonzero(layer == lay)
        kk = min(k, len(index.rows[lay]))
        d, i = index.trees[lay].query(index.metric(points[sel], lay), k=kk)
        d, i = d.reshape(len(sel), kk), i.reshape(len(sel), kk)
        rows[sel, :kk] = index.rows[lay][i]
        dist[sel, :kk] = d
    return rows, dist


def nearest_free(rows: np.ndarray, dist: np.ndarray, taken: np.ndarray, max_distance) -> tuple[np.ndarray, np.ndarray]:
    """Of each point's candidate hits, the nearest not in its row of ``taken`` and within ``max_distance``."""
    used = (rows[:, :, None] == taken[:, None, :]).any(axis=2)
    dist = np.where(used | (rows < 0), np.inf, dist)
    best = np.argmin(dist, axis=1)
    d = dist[np.arange(len(rows)), best]
    ok = d <= max_distance
    return np.where(ok, rows[np.arange(len(rows)), best], -1), np.where(ok, d, np.inf)


def match(index: LayerIndex, points: np.ndarray, taken: np.ndarray, max_distance: np.ndarray | float,
          k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Match (M, 3) points to hits: the nearest on the point's layer that is not in the point's row of ``taken``
    ((M, T) hit rows, -1 for none) and lies within ``max_distance``. Returns (hit row or -1, distance)."""
    rows, dist = index.query(points, k)
    return nearest_free(rows, dist, taken, max_distance)


def resolve(track: np.ndarray, hit: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Give each hit to one track: among the (track, hit, cost) claims, the lowest cost wins (seed hits come
    with cost -1, so a track keeps its own seed). Returns the mask of winning claims."""
    order = np.lexsort((track, cost))
    first = np.zeros(len(hit), bool)
    _, idx = np.unique(hit[order], return_index=True)
    first[order[idx]] = True
    return first


def track_directions(xyz: np.ndarray, rows: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors: each track hit's local direction, from the hit before it to the hit after it on its
    track (``rows``, track ``owner``; ordered by distance from the origin; at a track's ends the hit itself
    stands in for the missing neighbour); zero where a track has a single hit."""
    order = np.lexsort((np.linalg.norm(xyz[rows], axis=1), owner))
    o_rows, o_own = rows[order], owner[order]
    n = len(order)
    before = np.r_[False, o_own[1:] == o_own[:-1]]
    after = np.r_[o_own[:-1] == o_own[1:], False]
    a = np.where(before[:, None], xyz[o_rows[np.maximum(np.arange(n) - 1, 0)]], xyz[o_rows])
    b = np.where(after[:, None], xyz[o_rows[np.minimum(np.arange(n) + 1, n - 1)]], xyz[o_rows])
    u = b - a
    length = np.linalg.norm(u, axis=1, keepdims=True)
    out = np.zeros_like(u)
    out[order] = np.where(length > 1e-9, u / np.maximum(length, 1e-9), 0.0)
    return out


def overlap_hits(index: LayerIndex, hits, rows: np.ndarray, owner: np.ndarray, free: np.ndarray,
                 max_distance: float, by: str = "layer") -> tuple[np.ndarray, np.ndarray]:
    """Second hits of tracks on layers they already cross: where modules overlap, a particle leaves two hits on
    one layer a few mm apart. For each track hit (``rows``, track ``owner``), a ``free`` hit of the same layer on
    another module within ``max_distance`` (the layer's weighted distance): with ``by="layer"`` the nearest of 3
    neighbours in that distance; with ``by="direction"`` of 6 neighbours the one nearest the line through the hit
    along the track's local direction (`track_directions`), within ``max_distance`` [mm] of it (in a dense layer
    the nearest hit is often another particle's: the second hit lies where the track goes). Each hit goes to the
    nearest claimant. Returns (track, hit row) of the hits picked up."""
    if len(rows) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cand, dist = query_layers(index, index.xyz[rows], index.layer[rows], k=6 if by == "direction" else 3)
    module = hits["module_id"].to_numpy(np.int64)
    ok = (cand >= 0) & (dist <= max_distance)
    ok &= free[np.maximum(cand, 0)] & (module[np.maximum(cand, 0)] != module[rows][:, None])
    if by == "direction":
        u = track_directions(index.xyz, rows, owner)
        delta = index.xyz[np.maximum(cand, 0)] - index.xyz[rows][:, None, :]
        along = np.einsum("nkj,nj->nk", delta, u)
        across = np.linalg.norm(delta - along[..., None] * u[:, None, :], axis=-1)
        has = np.linalg.norm(u, axis=1) > 0
        dist = np.where(has[:, None], across, dist)
        ok &= dist <= max_distance
    dist = np.where(ok, dist, np.inf)
    best = np.argmin(dist, axis=1)
    d = dist[np.arange(len(rows)), best]
    take = np.isfinite(d)
    track, hit, d = owner[take], cand[np.arange(len(rows)), best][take], d[take]
    win = resolve(track, hit, d)
    return track[win], hit[win]
