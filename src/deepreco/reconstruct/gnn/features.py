"""Inputs of the graph networks: per-hit (node) and per-pair (edge) features, scaled to order one.

Node: r / 1000, phi / pi, z / 1000, eta / 3 (positions in mm), and the hit's cluster: number of cells / 10 and
summed charge (the `cells` table's ``value``; both 0 when the event has no cells). The cluster's size tells the
crossing angle, which a position alone does not.

Edge (inner a, outer b): dr / 100, dphi * 10, dz / 100, deta * 10, z0 / 1000, curvature * 1000 / 2
(the quantities of `module_map.pair_features` plus the plain differences).
"""

from __future__ import annotations

import numpy as np

from ...event import Event
from .module_map import hit_coordinates

N_NODE = 6
N_EDGE = 6


def node_features(event: Event) -> np.ndarray:
    """(N, `N_NODE`) float32."""
    hits = event.hits
    coords = hit_coordinates(hits[["x", "y", "z"]].to_numpy(np.float64))
    n_cells = np.zeros(len(hits))
    charge = np.zeros(len(hits))
    cells = getattr(event, "cells", None)
    if cells is not None and len(cells):
        hit_ids = hits["hit_id"].to_numpy()
        order = np.argsort(hit_ids, kind="stable")
        pos = np.clip(np.searchsorted(hit_ids[order], cells["hit_id"].to_numpy()), 0, len(hits) - 1)
        row = order[pos]
        ok = hit_ids[row] == cells["hit_id"].to_numpy()
        n_cells = np.bincount(row[ok], minlength=len(hits)).astype(np.float64)
        charge = np.bincount(row[ok], weights=cells["value"].to_numpy(np.float64)[ok], minlength=len(hits))
    feats = np.column_stack([coords[:, 3] / 1000, coords[:, 4] / np.pi, coords[:, 2] / 1000, coords[:, 5] / 3,
                             np.minimum(n_cells, 50) / 10, np.minimum(charge, 5)])
    return feats.astype(np.float32)


def edge_features(coords: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(E, `N_EDGE`) float32 for (2, E) hit rows; ``coords`` from `module_map.hit_coordinates`."""
    a, b = edges
    pa, pb = coords[a], coords[b]
    dr = pb[:, 3] - pa[:, 3]
    dz = pb[:, 2] - pa[:, 2]
    dphi = (pb[:, 4] - pa[:, 4] + np.pi) % (2 * np.pi) - np.pi
    deta = pb[:, 5] - pa[:, 5]
    safe = np.where(np.abs(dr) > 1e-3, dr, 1e-3)
    z0 = np.clip(pa[:, 2] - pa[:, 3] * dz / safe, -3000, 3000)
    chord = np.hypot(pb[:, 0] - pa[:, 0], pb[:, 1] - pa[:, 1])
    curvature = 2.0 * np.sin(dphi) / np.maximum(chord, 1e-3)
    feats = np.column_stack([dr / 100, dphi * 10, dz / 100, deta * 10, z0 / 1000, curvature * 500])
    return feats.astype(np.float32)
