"""Digitisation: the cells a particle lights in a module, and the hit as the cluster's centroid.

A crossing is a straight segment through the module's thickness (|w| <= t/2) along the local direction of
flight. The segment is cut at every grid line of the module's cell grid (the ACTS convention of
:class:`deepreco.detector.Detector`: the grid covers the bounding box, channel 0 at its low-u, low-v corner);
each piece lies in one cell, whose ``value`` is the length of the piece in mm (charge is proportional to
the path in silicon). The hit is the unweighted centroid of the lit cells' centres on the mid-plane
(w = 0), mapped to global coordinates: a strip's hit sits at the strip's centre along it, so strips keep
their coarse resolution, as in the real data. Everything is vectorised over all crossings at once.
"""

from __future__ import annotations

import numpy as np

from ..detector import Detector

__all__ = ["digitize"]

_MIN_COS = 0.05  # a grazing segment is cut at 20 thicknesses


def digitize(detector: Detector, module, position, direction):
    """Cells and hit positions of crossings (module rows (m,), mid-plane points and directions (m, 3)).

    Returns ``(hit_xyz (m, 3), cells)`` where ``cells`` is a dict of arrays ``crossing, ch0, ch1, value``.
    """
    module = np.asarray(module, dtype=np.int64)
    m = module.size
    local = detector.to_local(position, module)
    rot = detector.rotations[module]
    d = np.einsum("nji,nj->ni", rot, direction)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    dw = np.where(d[:, 2] >= 0, 1.0, -1.0) * np.maximum(np.abs(d[:, 2]), _MIN_COS)
    half_t = 0.5 * detector.thickness[module]
    half_len3 = half_t / np.abs(dw)  # half the path through the slab
    box = detector._box[module]
    pitch = detector.pitch[module]
    # segment ends in grid units
    g1 = (local[:, :2] - d[:, :2] * (half_t / dw)[:, None] + box) / pitch
    g2 = (local[:, :2] + d[:, :2] * (half_t / dw)[:, None] + box) / pitch
    lo, hi = np.minimum(g1, g2), np.maximum(g1, g2)
    first = np.floor(lo).astype(np.int64) + 1
    n_cut = np.maximum(np.ceil(hi).astype(np.int64) - first, 0)  # grid lines strictly inside the segment
    total = 2 + n_cut.sum(axis=1)
    owner = np.repeat(np.arange(m), total)
    offset = np.concatenate([[0], np.cumsum(total)[:-1]])
    pos_in = np.arange(owner.size) - offset[owner]
    tpar = np.empty(owner.size)
    # position 0 and 1 of each crossing's list are the segment ends; then the u cuts, then the v cuts
    nu = n_cut[owner, 0]
    k = pos_in - 2
    is_u = (k >= 0) & (k < nu)
    is_v = k >= nu
    span = g2 - g1
    with np.errstate(divide="ignore", invalid="ignore"):
        tu = (first[owner, 0] + k - g1[owner, 0]) / span[owner, 0]
        tv = (first[owner, 1] + (k - nu) - g1[owner, 1]) / span[owner, 1]
    tpar[:] = np.where(pos_in == 0, 0.0, 1.0)
    tpar[is_u] = tu[is_u]
    tpar[is_v] = tv[is_v]
    tpar = np.clip(tpar, 0.0, 1.0)
    order = np.lexsort((tpar, owner))
    owner, tpar = owner[order], tpar[order]
    same = owner[1:] == owner[:-1]
    a, b = tpar[:-1][same], tpar[1:][same]
    who = owner[:-1][same]
    length = (b - a) * 2.0 * half_len3[who]
    keep = length > 1e-9
    who, mid, length = who[keep], 0.5 * (a + b)[keep], length[keep]
    gu = g1[who, 0] + mid * span[who, 0]
    gv = g1[who, 1] + mid * span[who, 1]
    ch0 = np.floor(gu).astype(np.int64)
    ch1 = np.floor(gv).astype(np.int64)
    n_cells = detector.n_cells[module[who]]
    on_grid = (ch0 >= 0) & (ch0 < n_cells[:, 0]) & (ch1 >= 0) & (ch1 < n_cells[:, 1])
    # a crossing whose every piece falls off the grid (an edge hit) keeps its nearest cell
    has = np.bincount(who[on_grid], minlength=m) > 0
    keep = on_grid | ~has[who]
    who, ch0, ch1, length = who[keep], ch0[keep], ch1[keep], length[keep]
    ch0 = np.clip(ch0, 0, n_cells[keep, 0] - 1)
    ch1 = np.clip(ch1, 0, n_cells[keep, 1] - 1)
    # merge pieces that fell in the same cell (a segment cut exactly at a corner)
    key = np.lexsort((ch1, ch0, who))
    who, ch0, ch1, length = who[key], ch0[key], ch1[key], length[key]
    new = np.ones(who.size, bool)
    new[1:] = (who[1:] != who[:-1]) | (ch0[1:] != ch0[:-1]) | (ch1[1:] != ch1[:-1])
    grp = np.cumsum(new) - 1
    value = np.bincount(grp, weights=length)
    who, ch0, ch1 = who[new], ch0[new], ch1[new]
    count = np.bincount(who, minlength=m).astype(np.float64)
    cu = np.bincount(who, weights=ch0 + 0.5, minlength=m) / count
    cv = np.bincount(who, weights=ch1 + 0.5, minlength=m) / count
    uv = np.stack([cu, cv], axis=1) * pitch - box
    hit_local = np.column_stack([uv, np.zeros(m)])
    hit = detector.to_global(hit_local, module)
    cells = {"crossing": who, "ch0": ch0, "ch1": ch1, "value": value}
    return hit, cells
