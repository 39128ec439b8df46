"""Triplet seeding on the pixel layers: three hits compatible with a helix from the beam line.

Doublets (bottom b, middle m) on pairs of pixel layers (barrel to the next or next-but-one barrel layer or to
the first two disks, disk to the next or next-but-one disk on the same side) must point back to the beam line:

    cot(theta) = (z_m - z_b) / (r_m - r_b),   z0 = z_b - r_b cot(theta),   |z0| < z0_max,
    |phi_m - phi_b| <= asin(r_m / 2R) - asin(r_b / 2R) + d0_max (1 / r_b - 1 / r_m),   R = pT_min / (0.3 B).

Each doublet is extended to a top hit t near its extrapolation (the straight line in r-z, the circle through
the origin, b and m in x-y, phi(r) = phi0 + asin(r / 2R) to third order). A triplet from the innermost barrel
layer ends by the third barrel layer: its long lever arms to the outer layers made 1.2 M of the 1.7 M triplets
at 0.3 GeV, for 0.2 % of the score weight that only they seeded (dropping them cost 0.004 of score and halved
the time). The triplet's circle through the three points gives the seed fit: radius rho
(pT = 0.3 B rho), centre c, d0 = | |c| - rho |, the arc lengths s between the hits and

    cot(theta)_bm = (z_m - z_b) / s_bm,   cot(theta)_mt = (z_t - z_m) / s_mt,   z0 = z_b - cot(theta) s_0b.

Cuts: pT > pT_min, |d0| < d0_max (these two first: most candidates fail them), |z0| < z0_max, and
|cot_bm - cot_mt| within the multiple scattering at the middle layer (Highland, below) plus the hits' errors,
times ``n_sigma``.
"""

from __future__ import annotations

import numpy as np

from ...threads import current_threads, ordered_map
from . import fast
from .geometry import Hits, Layers
from .helix import CURVATURE_PER_TESLA, wrap


def pixel_layer_pairs(lay: Layers) -> list[tuple[int, int]]:
    """(inner, outer) pixel layer pairs a track from the beam line crosses in turn, one layer skipped at most."""
    barrel = [int(i) for i in np.flatnonzero(lay.pixel & lay.barrel)[np.argsort(lay.position[lay.pixel & lay.barrel])]]
    disks = {}
    for side in (-1, 1):
        sel = np.flatnonzero(lay.pixel & ~lay.barrel & (np.sign(lay.position) == side))
        disks[side] = [int(i) for i in sel[np.argsort(np.abs(lay.position[sel]))]]
    pairs = []
    for i, b in enumerate(barrel):
        pairs += [(b, o) for o in barrel[i + 1:i + 3]]
        for side in (-1, 1):
            pairs += [(b, o) for o in disks[side][:3]]
    for side in (-1, 1):
        d = disks[side]
        for j in range(len(d)):
            pairs += [(d[j], o) for o in d[j + 1:j + 3]]
    return pairs


def top_layer_pairs(lay: Layers) -> list[tuple[int, int]]:
    """(middle, top) pairs: those of `pixel_layer_pairs` and, for tracks that leave the pixels early, from the
    outer pixel layers to the first short-strip barrel layer and disks (strips are precise enough across)."""
    pairs = pixel_layer_pairs(lay)
    barrel = np.flatnonzero(lay.pixel & lay.barrel)
    barrel = [int(i) for i in barrel[np.argsort(lay.position[barrel])]]
    strip_barrel = np.flatnonzero(lay.volume == 13)
    first_strip = int(strip_barrel[np.argmin(lay.position[strip_barrel])])
    pairs += [(b, first_strip) for b in barrel[1:]]
    for side, vol in ((-1, 12), (1, 14)):
        sel = np.flatnonzero(lay.pixel & ~lay.barrel & (np.sign(lay.position) == side))
        disks = [int(i) for i in sel[np.argsort(np.abs(lay.position[sel]))]]
        strip_disks = np.flatnonzero(lay.volume == vol)
        first_disk = int(strip_disks[np.argmin(np.abs(lay.position[strip_disks]))])
        pairs += [(d, first_strip) for d in disks[:4]]
        pairs += [(d, first_disk) for d in disks[3:]]
    return pairs


def strip_layer_pairs(lay: Layers) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(bottom, middle) and (middle, top) pairs of the strip barrel layers, each to the next: seeds for tracks
    that start beyond the pixels (the secondaries of the pixel support and the strip layers)."""
    barrel = np.flatnonzero(~lay.pixel & lay.barrel)
    barrel = [int(i) for i in barrel[np.argsort(lay.position[barrel])]]
    pairs = list(zip(barrel[:-1], barrel[1:], strict=True))
    return pairs[:-2], pairs[1:-1]


def window_pairs(phi, half_width, sorted_phi, sorted_index):
    """All (query, hit) pairs with |phi_hit - phi_query| <= half_width (half_width < pi), by binary search.

    ``sorted_phi`` are a layer's hit azimuths in ascending order and ``sorted_index`` their hit numbers.
    """
    n = len(sorted_phi)
    if n == 0 or len(phi) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ext_phi = np.concatenate([sorted_phi - 2 * np.pi, sorted_phi, sorted_phi + 2 * np.pi])
    lo = np.searchsorted(ext_phi, phi - half_width, side="left")
    hi = np.searchsorted(ext_phi, phi + half_width, side="right")
    count = np.maximum(hi - lo, 0)
    query = np.repeat(np.arange(len(phi)), count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return query, sorted_index[(np.repeat(lo, count) + within) % n]


class Grid:
    """A layer's hits sorted by (coordinate bin, phi), for `grid_pair_blocks`.

    Three copies of each hit (phi - 2 pi, phi, phi + 2 pi) make the azimuth windows wrap; a bin spans 20 > 5 pi
    in the sort key.
    """

    def __init__(self, hit_phi, hit_coord, hit_index, bin_width: float):
        self.bin_width = bin_width
        self.size = len(hit_phi)
        if self.size == 0:
            return
        self.base = np.floor(hit_coord.min() / bin_width)
        hbin = (np.floor(hit_coord / bin_width) - self.base).astype(np.int64)
        self.n_bins = int(hbin.max()) + 1
        key = np.concatenate([hbin * 20.0 + hit_phi + k * np.pi for k in (1.0, 3.0, 5.0)])
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.index = np.tile(np.asarray(hit_index), 3)[order]
        self.coord = np.tile(hit_coord, 3)[order]


BLOCK = 1 << 18  # candidate pairs examined at a time: bounds the temporaries however dense the event


def grid_pair_blocks(phi, half_width, lo, hi, grid: Grid, block: int | None = None):
    """All (query, hit) pairs with |phi_hit - phi| <= half_width and lo <= coord_hit <= hi, in blocks.

    The hits are sorted by (coordinate bin, phi) once (`Grid`); each query then searches only the bins its
    coordinate window covers, so the pairs made are few even where the azimuth window alone would hold many
    hits. Yields (query, hit) arrays, each made from about ``block`` candidate positions (None: `BLOCK`; one
    query with more makes a block of its own); their concatenation does not depend on ``block``. The
    candidates grow with the square of the hit density (queries times hits per window): a caller that cuts
    each block before taking the next keeps only what passes (on a 288,000-hit event the triplet search made
    in one piece took GBs).
    """
    for _, q, h in grid_pair_blocks_by_bin(phi, half_width, lo, hi, grid, block):
        yield q, h


def grid_pair_blocks_by_bin(phi, half_width, lo, hi, grid: Grid, block: int | None = None):
    """`grid_pair_blocks` with the coordinate bin of each block, counted from each query's first (j, q, h): the
    pairs come in the order of (j, query), so a caller that splits the queries into chunks restores the order of
    the whole by concatenating the chunks' blocks of each j in turn."""
    if grid.size == 0 or len(phi) == 0:
        return
    block = BLOCK if block is None else block
    base, n_bins, bin_width = grid.base, grid.n_bins, grid.bin_width
    key, idx, coord = grid.key, grid.index, grid.coord
    b_lo = np.clip(np.floor(lo / bin_width) - base, 0, n_bins).astype(np.int64)
    b_hi = np.clip(np.floor(hi / bin_width) - base, -1, n_bins - 1).astype(np.int64)
    w = np.minimum(half_width, 0.99 * np.pi)
    for j in range(int(np.max(b_hi - b_lo, initial=-1)) + 1):
        q = np.flatnonzero(b_lo + j <= b_hi)
        if len(q) == 0:
            break
        centre = (b_lo[q] + j) * 20.0 + phi[q] + 3.0 * np.pi
        start = np.searchsorted(key, centre - w[q], side="left")
        count = np.searchsorted(key, centre + w[q], side="right") - start
        # consecutive queries, cut where the running count passes a multiple of the block
        block_of = (np.cumsum(count) - count) // block
        edges = np.flatnonzero(np.r_[True, block_of[1:] != block_of[:-1], True])
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            qb, sb, cb = q[a:b], start[a:b], count[a:b]
            qq = np.repeat(qb, cb)
            pos = np.repeat(sb, cb) + np.arange(cb.sum()) - np.repeat(np.cumsum(cb) - cb, cb)
            good = (coord[pos] >= lo[qq]) & (coord[pos] <= hi[qq])
            if good.any():
                yield j, qq[good], idx[pos[good]]


def highland(p, x_over_x0, mass: float = 0.13957):
    """Highland width of the projected scattering angle: 13.6 MeV / (beta p) sqrt(x) (1 + 0.038 ln(x / beta^2))."""
    beta2 = p * p / (p * p + mass * mass)
    x = np.maximum(x_over_x0, 1e-9)
    return 0.0136 / (np.sqrt(beta2) * p) * np.sqrt(x) * np.maximum(1.0 + 0.038 * np.log(x / beta2), 0.1)


def _circle(x1, y1, x2, y2, x3, y3):
    """Centre and radius of the circle through three points (radius inf for collinear points)."""
    ax, ay = x2 - x1, y2 - y1
    bx, by = x3 - x1, y3 - y1
    d = 2.0 * (ax * by - ay * bx)
    with np.errstate(divide="ignore", invalid="ignore"):
        ux = (by * (ax * ax + ay * ay) - ay * (bx * bx + by * by)) / d
        uy = (ax * (bx * bx + by * by) - bx * (ax * ax + ay * ay)) / d
    return x1 + ux, y1 + uy, np.hypot(ux, uy), d


def _arc(chord, rho):
    return 2.0 * rho * np.arcsin(np.clip(chord / (2.0 * rho), 0.0, 1.0))


def find_seeds(hits: Hits, lay: Layers, pt_min: float = 0.5, z0_max: float = 200.0, d0_max: float = 1.0,
               cot_max: float = 45.0, n_sigma: float = 4.0, field: float = 2.0) -> dict[str, np.ndarray]:
    """Triplet seeds: hit numbers (b, m, t) and the seed fit.

    Returns a dict of arrays: ``hits`` (n, 3) hit numbers in order, ``phi0``, ``d0``, ``z0``, ``cot``,
    ``qpt`` (q / pT) perigee parameters, ``psi`` (direction azimuth at b) and ``quality`` (the r-z
    mismatch in standard deviations, smaller is better).

    The doublets grow with the square of the hit density: they are made for one middle layer at a time and
    dropped once its triplets are made (the triplets come out in the order of `top_layer_pairs`, whatever the
    order of the work).
    """
    triplets, quality = find_triplets(hits, lay, pt_min, z0_max, d0_max, cot_max, n_sigma, field)
    return fit_seeds(hits, triplets, quality, field)


def find_triplets(hits: Hits, lay: Layers, pt_min: float = 0.5, z0_max: float = 200.0, d0_max: float = 1.0,
                  cot_max: float = 45.0, n_sigma: float = 4.0, field: float = 2.0,
                  layer_pairs: tuple[list, list] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The triplets of `find_seeds` before their fit: hit numbers (n, 3) and quality (n,).

    ``layer_pairs``: the (bottom, middle) and (middle, top) layer pairs (None: `pixel_layer_pairs` and
    `top_layer_pairs`; `strip_layer_pairs` for seeds beyond the pixels).

    The triplets grow faster than the hits (1.5 M at 149k hits, 3.9 M at 208k): a caller that follows some of
    them fits only those, when it follows them (`fit_seeds` treats each triplet on its own; a fitted seed holds
    88 bytes and its fit makes about 200 more in temporaries).
    """
    cuts = {"kappa": 0.5 / (pt_min / (CURVATURE_PER_TESLA * field)), "pt_min": pt_min, "z0_max": z0_max,
            "d0_max": d0_max, "cot_max": cot_max, "n_sigma": n_sigma, "field": field}
    pairs, top_pairs = layer_pairs or (pixel_layer_pairs(lay), top_layer_pairs(lay))
    found: list[list[tuple]] = [[] for _ in top_pairs]

    def middle(lm: int) -> list[tuple[int, list[tuple]]]:
        """The triplets of the middle layer ``lm``, per top layer pair (its place in ``top_pairs``)."""
        blocks = [d for lb, m in pairs if m == lm for d in _doublets(hits, lay, lb, lm, cuts)]
        if not blocks:
            return []
        bi = np.concatenate([d[0] for d in blocks])
        mi = np.concatenate([d[1] for d in blocks])
        del blocks
        return [(k, _triplets(hits, lay, bi, mi, lm, lt, cuts)) for k, (m, lt) in enumerate(top_pairs) if m == lm]

    # the middle layers side by side on the threads, their compiled search without the interpreter's lock, the
    # busiest first (bottom hits x middle hits, what the doublets grow with), so that the last to start is a
    # small one (the outer pass has three middle layers of unequal work); the triplets are the same in the same
    # order on any number of threads and in any order of the work (`found` is in `top_pairs` order)
    work = {m: 0 for _, m in pairs}
    for lb, lm in pairs:
        work[lm] += len(hits.in_layer(lb)) * len(hits.in_layer(lm))
    for done in ordered_map(middle, sorted(work, key=lambda m: -work[m]), current_threads()):
        for k, part in done:
            found[k] = part
    parts = [p for f in found for p in f]
    del found
    n = sum(len(p[0]) for p in parts)
    triplets, quality = np.empty((n, 3), np.int64), np.empty(n)
    at = 0
    while parts:  # each part dropped once copied: the triplets are never held twice
        b, m, t, q = parts.pop(0)
        triplets[at:at + len(b)] = np.column_stack([b, m, t])
        quality[at:at + len(b)] = q
        at += len(b)
    return triplets, quality


def _doublets(hits: Hits, lay: Layers, lb: int, lm: int, cuts: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Doublets (bottom hit numbers, middle hit numbers) on layers (lb, lm) pointing back to the beam line, in
    blocks (`grid_pair_blocks`)."""
    kappa, z0_max, d0_max, cot_max = cuts["kappa"], cuts["z0_max"], cuts["d0_max"], cuts["cot_max"]
    hb, hm = hits.in_layer(lb), hits.in_layer(lm)
    if len(hb) == 0 or len(hm) == 0:
        return []
    pix_barrel = _pixel_barrel(lay)
    next_barrel = {int(a): int(b) for a, b in zip(pix_barrel[:-1], pix_barrel[1:], strict=True)}
    rb, zb = hits.r[hb], hits.z[hb]
    if lay.barrel[lm]:
        rm_max = np.full(len(hb), lay.position[lm] + hits.offset[lm])
    else:
        # where lines from the luminous region through the bottom hit meet the disk
        zm = lay.position[lm]
        with np.errstate(divide="ignore", invalid="ignore"):
            ends = [rb * (zm - z0) / (zb - z0) for z0 in (-z0_max, z0_max)]
        ends = [np.where(np.sign(zb - z0) == np.sign(zm - z0), e, np.nan) for z0, e in zip((-z0_max, z0_max), ends,
                                                                                           strict=True)]
        r_lo, r_hi = np.fmin(ends[0], ends[1]), np.fmax(ends[0], ends[1])
        r_lo = np.where(np.isnan(ends[0]) | np.isnan(ends[1]), rb, r_lo)
        reach = np.isfinite(r_hi) & (r_hi > lay.lo[lm] - 5.0) & (r_lo < lay.hi[lm] + 5.0)
        hb, rb, r_hi = hb[reach], rb[reach], r_hi[reach]
        if next_barrel.get(lb) is not None:
            # a track meets the next barrel layer before the disk unless it leaves that layer's z range
            nb = next_barrel[lb]
            zlim = np.maximum(np.abs(lay.lo[nb]), np.abs(lay.hi[nb])) - 5.0
            zn = [zb[reach] + (zb[reach] - z0) * (lay.position[nb] - rb) / rb for z0 in (-z0_max, z0_max)]
            leaves = (np.abs(zn[0]) > zlim) | (np.abs(zn[1]) > zlim)
            hb, rb, r_hi = hb[leaves], rb[leaves], r_hi[leaves]
        rm_max = np.minimum(r_hi, lay.hi[lm]) + 5.0
    half = (np.arcsin(np.minimum(rm_max * kappa, 1.0)) - np.arcsin(np.minimum(rb * kappa, 1.0))
            + d0_max * np.maximum(1.0 / rb - 1.0 / rm_max, 0.0) + 0.003)
    if lay.barrel[lm]:
        dr_lo = np.maximum(lay.position[lm] - hits.offset[lm] - rb, 0.0)
        dr_hi = lay.position[lm] + hits.offset[lm] - rb
        ends = np.stack([zb + (zb - z0) * d / rb for z0 in (-z0_max, z0_max) for d in (dr_lo, dr_hi)])
        c_lo, c_hi, cm = ends.min(0) - 1.0, ends.max(0) + 1.0, hits.z[hm]
    else:
        c_lo, c_hi, cm = rb, rm_max, hits.r[hm]
    grid = Grid(hits.phi[hm], cm, hm, 50.0)
    out = []
    for qi, mi in grid_pair_blocks(hits.phi[hb], np.minimum(half, 1.0), c_lo, c_hi, grid):
        bi = hb[qi]
        r1, r2 = hits.r[bi], hits.r[mi]
        dr = r2 - r1
        good = dr > 1.0
        bi, mi, r1, r2, dr = bi[good], mi[good], r1[good], r2[good], dr[good]
        cot = (hits.z[mi] - hits.z[bi]) / dr
        z0 = hits.z[bi] - r1 * cot
        dphi = np.abs(wrap(hits.phi[mi] - hits.phi[bi]))
        lim = (np.arcsin(np.minimum(r2 * kappa, 1.0)) - np.arcsin(np.minimum(r1 * kappa, 1.0))
               + d0_max * (1.0 / r1 - 1.0 / r2) + 0.002)
        good = (np.abs(cot) < cot_max) & (np.abs(z0) < z0_max) & (dphi < lim)
        out.append((bi[good], mi[good]))
    return out


DOUBLET_CHUNK = 1 << 20  # doublets extended at a time: their two dozen per-doublet arrays are a chunk's


def _triplets(hits: Hits, lay: Layers, bi: np.ndarray, mi: np.ndarray, lm: int, lt: int, cuts: dict) -> list[tuple]:
    """Triplets (b, m, t, quality) from the doublets (bi, mi) of middle layer ``lm`` and the hits of ``lt``, in
    blocks (`grid_pair_blocks`), the doublets in chunks of `DOUBLET_CHUNK` (10 M doublets on one middle layer
    at 300k hits); the triplets in the order of the doublets taken whole."""
    ht = hits.in_layer(lt)
    if len(ht) == 0:
        return []
    if lay.barrel[lt]:
        grid = Grid(hits.phi[ht], hits.z[ht], ht, 20.0)
    else:
        grid = Grid(hits.phi[ht], hits.r[ht], ht, 20.0)
    by_bin: dict[int, list[tuple]] = {}
    for a in range(0, len(bi), DOUBLET_CHUNK):
        for j, part in _triplet_blocks(hits, lay, bi[a:a + DOUBLET_CHUNK], mi[a:a + DOUBLET_CHUNK], lm, lt, cuts,
                                       grid):
            by_bin.setdefault(j, []).append(part)
    return [part for j in sorted(by_bin) for part in by_bin[j]]


def _triplet_blocks(hits: Hits, lay: Layers, bi: np.ndarray, mi: np.ndarray, lm: int, lt: int, cuts: dict,
                    grid: Grid):
    """The triplets of `_triplets` from some doublets: (coordinate bin j, (b, m, t, quality)) blocks."""
    kappa, pt_min, z0_max, d0_max = cuts["kappa"], cuts["pt_min"], cuts["z0_max"], cuts["d0_max"]
    n_sigma, field = cuts["n_sigma"], cuts["field"]
    pix_barrel = _pixel_barrel(lay)
    # a triplet from the innermost barrel layer ends by the third (see the module's docstring)
    far_radius = lay.position[pix_barrel[2]] + 10.0
    theta0_ref = highland(pt_min, 0.02)  # scattering at the middle layer for the slowest seed, per unit 1/sin
    r1, r2 = hits.r[bi], hits.r[mi]
    dr = r2 - r1
    # dphi / dr of the circle through the origin, b and m
    cot, slope = (hits.z[mi] - hits.z[bi]) / dr, wrap(hits.phi[mi] - hits.phi[bi]) / dr
    if lay.barrel[lt]:
        rt = np.full(len(bi), lay.position[lt])
        ok = np.ones(len(bi), bool)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            rt = r2 + (lay.position[lt] - hits.z[mi]) / cot
        ok = np.isfinite(rt) & (rt > r2) & (rt < lay.hi[lt] + 10.0) & (rt > lay.lo[lt] - 10.0)
    if lay.barrel[lt] and lay.position[lt] > far_radius:
        ok &= hits.layer[bi] != pix_barrel[0]
    bi, mi, r1, r2, cot, slope, rt = bi[ok], mi[ok], r1[ok], r2[ok], cot[ok], slope[ok], rt[ok]
    # phi(r) = phi0 + asin(k r) on the circle through the origin (k = 1 / 2R ~ dphi/dr): the linear
    # extrapolation plus the cubic term of the asin
    k3 = slope**3 / 6.0
    phi_t = hits.phi[mi] + slope * (rt - r2) + k3 * (rt**3 - r2**3 - (r2**3 - r1**3) / (r2 - r1) * (rt - r2))
    lever = rt - r2
    d0_term = d0_max * np.abs(1.0 / rt - 1.0 / r2 - (1.0 / r2 - 1.0 / r1) * lever / (r2 - r1))
    ms = n_sigma * theta0_ref * np.sqrt(1.0 + cot * cot) ** 0.5 * lever / rt
    curv = 0.05 * (kappa * rt) ** 3  # neglected higher terms of the extrapolation
    half = np.minimum(d0_term + ms + curv + 0.003, 1.0)
    # r-z window: where the straight line in r-z meets the top layer, widened by the scattering and by the
    # spread of the layer's hits about its mean surface
    tol_cot = n_sigma * theta0_ref * (1.0 + cot * cot)
    if lay.barrel[lt]:
        z_pred = hits.z[mi] + cot * (rt - r2)
        tol = 2.0 + tol_cot * lever + np.abs(cot) * hits.offset[lt]
        lo, hi = z_pred - tol, z_pred + tol
    else:
        dz = np.abs(lay.position[lt] - hits.z[mi])
        tol = 2.0 + (tol_cot * dz + hits.offset[lt]) / np.maximum(np.abs(cot), 1e-3) ** 2 * np.abs(cot)
        lo, hi = rt - tol, rt + tol
    if fast.HAVE_NUMBA:  # the loop below compiled: each candidate made, checked and cut at once
        js, qs, ts, quality = fast.triplets(
            phi_t, half, lo, hi, grid.key, grid.index, grid.coord, float(grid.base), int(grid.n_bins),
            float(grid.bin_width), bi, mi, r2, cot, tol_cot, hits.x, hits.y, hits.z, hits.r, float(lay.x0[lm]),
            float(pt_min), float(z0_max), float(d0_max), float(n_sigma), CURVATURE_PER_TESLA * field, 0.13957)
        cut = np.flatnonzero(np.r_[True, js[1:] != js[:-1], True]) if len(js) else np.zeros(1, np.int64)
        for a, b in zip(cut[:-1], cut[1:], strict=True):
            qi = qs[a:b]
            yield int(js[a]), (bi[qi], mi[qi], ts[a:b], quality[a:b])
        return
    for j, qi, ti in grid_pair_blocks_by_bin(phi_t, half, lo, hi, grid):
        # the same r-z window at the top hit's own radius
        lever_t = hits.r[ti] - r2[qi]
        z_dev = np.abs(hits.z[ti] - hits.z[mi[qi]] - cot[qi] * lever_t)
        good = (z_dev < 2.0 + tol_cot[qi] * lever_t) & (lever_t > 1.0)
        qi, ti = qi[good], ti[good]
        if len(qi) == 0:
            continue
        bq, mq = bi[qi], mi[qi]
        # Exactly collinear triplets have an infinite radius: their NaN d0 and arc lengths fail every cut.
        with np.errstate(invalid="ignore"):
            keep, quality = _triplet_cuts(hits, bq, mq, ti, lay.x0[lm], pt_min, z0_max, d0_max, n_sigma, field)
        yield j, (bq[keep], mq[keep], ti[keep], quality[keep])


def _pixel_barrel(lay: Layers) -> np.ndarray:
    """The pixel barrel layers, innermost first."""
    sel = np.flatnonzero(lay.pixel & lay.barrel)
    return sel[np.argsort(lay.position[sel])]


def _triplet_cuts(hits: Hits, b, m, t, x0, pt_min, z0_max, d0_max, n_sigma, field):
    xc, yc, rho, _ = _circle(hits.x[b], hits.y[b], hits.x[m], hits.y[m], hits.x[t], hits.y[t])
    pt = CURVATURE_PER_TESLA * field * rho
    d0 = np.abs(np.hypot(xc, yc) - rho)
    # the cheap cuts first (4 in 5 candidates fail them), the r-z ones on what is left
    keep = (pt > pt_min) & (d0 < d0_max)
    quality = np.full(len(b), np.inf)
    sel = np.flatnonzero(keep)
    b, m, t, rho, pt = b[sel], m[sel], t[sel], rho[sel], pt[sel]
    s_bm = _arc(np.hypot(hits.x[m] - hits.x[b], hits.y[m] - hits.y[b]), rho)
    s_mt = _arc(np.hypot(hits.x[t] - hits.x[m], hits.y[t] - hits.y[m]), rho)
    cot1 = (hits.z[m] - hits.z[b]) / s_bm
    cot2 = (hits.z[t] - hits.z[m]) / s_mt
    cot = (hits.z[t] - hits.z[b]) / (s_bm + s_mt)
    s_0b = _arc(hits.r[b], rho)
    z0 = hits.z[b] - cot * s_0b
    p = np.minimum(pt, 100.0) * np.sqrt(1.0 + cot * cot)
    sin_theta = 1.0 / np.sqrt(1.0 + cot * cot)
    theta0 = highland(p, x0 / sin_theta)
    # d cot = -(1 + cot^2) d theta; the hits' errors enter over the lever arms
    sigma = np.hypot(theta0 * (1.0 + cot * cot), 0.05 * (1.0 + np.abs(cot)) * (1.0 / s_bm + 1.0 / s_mt))
    mismatch = np.abs(cot1 - cot2) / sigma
    keep[sel] = (np.abs(z0) < z0_max) & (mismatch < n_sigma)
    quality[sel] = mismatch
    return keep, quality


def fit_seeds(hits: Hits, triplets: np.ndarray, quality: np.ndarray, field: float = 2.0) -> dict[str, np.ndarray]:
    """The helix through each triplet: perigee parameters and the direction at its first hit."""
    b, m, t = triplets.T if len(triplets) else (np.zeros(0, np.int64),) * 3
    xb, yb, xm, ym, xt, yt = hits.x[b], hits.y[b], hits.x[m], hits.y[m], hits.x[t], hits.y[t]
    xc, yc, rho, d = _circle(xb, yb, xm, ym, xt, yt)
    # d > 0: counter-clockwise turn, which a negative particle makes in a field along +z
    q = -np.sign(d)
    qpt = q / (CURVATURE_PER_TESLA * field * rho)
    s_bm = _arc(np.hypot(xm - xb, ym - yb), rho)
    s_mt = _arc(np.hypot(xt - xm, yt - ym), rho)
    cot = (hits.z[t] - hits.z[b]) / (s_bm + s_mt)
    # direction at b: tangent to the circle, turning the way the hits do
    tx, ty = -(yb - yc), xb - xc  # counter-clockwise tangent
    sgn = np.where(d > 0, 1.0, -1.0)
    psi = np.arctan2(sgn * ty, sgn * tx)
    dist = np.hypot(xc, yc)
    d0 = q * (dist - rho)
    phi0 = np.arctan2(yc, xc) + np.where(d > 0, -0.5, 0.5) * np.pi
    z0 = hits.z[b] - cot * _arc(hits.r[b], rho)
    return {"hits": np.asarray(triplets, np.int64).reshape(-1, 3), "phi0": wrap(phi0), "d0": d0, "z0": z0,
            "cot": cot, "qpt": qpt, "psi": psi, "quality": np.asarray(quality, np.float64)}


def track_triplets(labels: np.ndarray, reach: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """(T, 3) hit rows: of each track (``labels`` >= 0) with hits on three layers or more, its first hit on each
    of its first three layers, the hits ordered by ``reach`` (the distance from the origin: its innermost layers;
    minus that distance: its outermost layers, the outermost hit on each, outermost first)."""
    rows = np.flatnonzero(labels >= 0)
    order = rows[np.lexsort((reach[rows], labels[rows]))]
    lab, lay = labels[order], layer[order]
    new_track = np.r_[True, lab[1:] != lab[:-1]] if len(order) else np.zeros(0, bool)
    new_layer = new_track | np.r_[True, lay[1:] != lay[:-1]] if len(order) else new_track
    count = np.cumsum(new_layer)
    start = np.maximum.accumulate(np.where(new_track, np.arange(len(order)), 0))
    rank = count - count[start] if len(order) else count
    n_labels = int(labels.max(initial=-1)) + 1
    out = np.full((n_labels, 3), -1, np.int64)
    for k in range(3):
        first = new_layer & (rank == k)
        out[lab[first], k] = order[first]
    return out[(out >= 0).all(axis=1)]
