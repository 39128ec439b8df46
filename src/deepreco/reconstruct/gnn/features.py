"""Inputs of the graph networks: per-hit (node) and per-pair (edge) features, scaled to order one.

Node: r / 1000, phi / pi, z / 1000, eta / 3 (positions in mm), the hit's cluster: number of cells / 10 and
summed charge (the `cells` table's ``value``), and the direction the cluster's shape tells. A track crossing a
module of thickness t at an angle lights a cluster whose extent along u and v is about (n - 1) pitch; the
direction (du, dv, t) in the module frame, turned into the global frame, gives |cos| of its angle to the beam
(``c_z``) and to the azimuthal direction at the hit (``c_phi``). The signs of du and dv are not known, so each
component is the sum of the absolute contributions (exact for modules whose axes lie along r, phi, z, as the
TrackML detector's do). Without cells the cluster features are 0.

Edge (inner a, outer b): dr / 100, dphi * 10, dz / 100, deta * 10, z0 / 1000, curvature * 500 (the quantities
of `module_map.pair_features` plus the plain differences), and the pair's own |cos| to the beam and to the
azimuthal direction at a, less the cluster estimates of a and b: a true pair agrees with both clusters.
"""

from __future__ import annotations

import numpy as np

from ...event import Event
from .module_map import _detector, hit_coordinates, hit_modules, pair_features

N_NODE = 8
N_EDGE = 9


def _cell_rows(event: Event) -> tuple[np.ndarray, np.ndarray] | None:
    cells = getattr(event, "cells", None)
    if cells is None or len(cells) == 0:
        return None
    hit_ids = event.hits["hit_id"].to_numpy()
    order = np.argsort(hit_ids, kind="stable")
    cell_hits = cells["hit_id"].to_numpy()
    pos = np.clip(np.searchsorted(hit_ids[order], cell_hits), 0, len(hit_ids) - 1)
    row = order[pos]
    ok = hit_ids[row] == cell_hits
    return row[ok], np.flatnonzero(ok)


def cluster_directions(event: Event) -> np.ndarray:
    """(N, 2) float64: the cluster estimates (c_z, c_phi) of every hit (see the module's description)."""
    n = event.n_hits
    out = np.zeros((n, 2))
    found = _cell_rows(event)
    if found is None or n == 0:
        return out
    row, idx = found
    cells = event.cells
    ch = cells[["ch0", "ch1"]].to_numpy(np.int64)[idx]
    lo = np.full((n, 2), np.iinfo(np.int64).max)
    hi = np.full((n, 2), np.iinfo(np.int64).min)
    np.minimum.at(lo, row, ch)
    np.maximum.at(hi, row, ch)
    has = np.flatnonzero(hi[:, 0] >= lo[:, 0])
    det = _detector()
    mod = hit_modules(event.hits.iloc[has], det)
    has, mod = has[mod >= 0], mod[mod >= 0]
    extent = (hi[has] - lo[has]).astype(np.float64) * det.pitch[mod]  # (n_cells - 1) pitch along u and v
    local = np.column_stack([extent, det.thickness[mod]])
    rot = det.rotations[mod]  # local -> global columns
    xyz = event.hits[["x", "y", "z"]].to_numpy(np.float64)[has]
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    phi_hat = np.column_stack([-np.sin(phi), np.cos(phi), np.zeros(len(phi))])
    c_z = (np.abs(rot[:, 2, :]) * local).sum(axis=1)
    c_phi = (np.abs(np.einsum("ni,nij->nj", phi_hat, rot)) * local).sum(axis=1)
    norm = np.linalg.norm(local, axis=1)
    out[has, 0] = np.clip(c_z / norm, 0, 1)
    out[has, 1] = np.clip(c_phi / norm, 0, 1)
    return out


def node_features(event: Event) -> np.ndarray:
    """(N, `N_NODE`) float32."""
    hits = event.hits
    coords = hit_coordinates(hits[["x", "y", "z"]].to_numpy(np.float64))
    n_cells = np.zeros(len(hits))
    charge = np.zeros(len(hits))
    found = _cell_rows(event)
    if found is not None:
        row, idx = found
        n_cells = np.bincount(row, minlength=len(hits)).astype(np.float64)
        charge = np.bincount(row, weights=event.cells["value"].to_numpy(np.float64)[idx], minlength=len(hits))
    feats = np.column_stack([coords[:, 3] / 1000, coords[:, 4] / np.pi, coords[:, 2] / 1000, coords[:, 5] / 3,
                             np.minimum(n_cells, 50) / 10, np.minimum(charge, 5), cluster_directions(event)])
    return feats.astype(np.float32)


def edge_features(coords: np.ndarray, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(E, `N_EDGE`) float32 for (2, E) hit rows; ``coords`` from `module_map.hit_coordinates`, ``x`` the
    node features (`node_features`); compiled by numba when it is there (`fast.edge_features`, the same)."""
    from .fast import HAVE_NUMBA

    if HAVE_NUMBA:
        from .fast import edge_features as compiled

        return compiled(coords, x, edges)
    return _edge_features(coords, x, edges)


def _edge_features(coords: np.ndarray, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    a, b = edges
    pa, pb = coords[a], coords[b]
    dphi, z0, deta, curvature = pair_features(coords, a, b).T
    z0 = np.clip(z0, -3000, 3000)
    dr = pb[:, 3] - pa[:, 3]
    dz = pb[:, 2] - pa[:, 2]
    dx, dy = pb[:, 0] - pa[:, 0], pb[:, 1] - pa[:, 1]
    length = np.maximum(np.sqrt(dx ** 2 + dy ** 2 + dz ** 2), 1e-6)
    pair_cz = np.abs(dz) / length
    pair_cphi = np.abs(-np.sin(pa[:, 4]) * dx + np.cos(pa[:, 4]) * dy) / length
    cz_a, cz_b, cphi_a = x[a, 6], x[b, 6], x[a, 7]
    feats = np.column_stack([dr / 100, dphi * 10, dz / 100, deta * 10, z0 / 1000, curvature * 500,
                             (pair_cz - cz_a) * 5, (pair_cz - cz_b) * 5, (pair_cphi - cphi_a) * 5])
    return feats.astype(np.float32)
