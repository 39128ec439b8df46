"""The graph pipeline's hot loops compiled with numba (optional): the module map's candidate pairs and cuts, and
the edge features, one pass over the pairs with nothing in between.

NumPy makes every candidate pair of a module pair an array row and cuts the arrays (the candidates of a mu = 200
event are tens of millions, each cut a pass over memory); here each candidate is made, cut and kept or dropped
in registers. The arithmetic is NumPy's, operation for operation and in the same float widths, so that the edges
kept and their features are the same (tested against the NumPy code, which machines without numba run).
"""

from __future__ import annotations

import numpy as np

try:  # numba is optional (the ``fast`` extra): without it module_map.py and features.py compute the same in NumPy
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

HAVE_NUMBA = numba is not None


if HAVE_NUMBA:
    _PI32 = np.float32(np.pi)
    _TWO_PI32 = np.float32(2 * np.pi)
    _TINY32 = np.float32(1e-9)
    _TWO32 = np.float32(2.0)

    @numba.njit(cache=True, nogil=True)
    def _module_pair_edges(pairs, pair_layer, start, count, rows, coords, lo, hi):
        """The kept (inner, outer) hit rows of the candidate pairs of module ``pairs`` (m, 2), in the order of
        `ModuleMap._cut` over `ModuleMap.build_blocks`' candidates: pair by pair, inner hit, then outer hit."""
        size = 0
        for i in range(pairs.shape[0]):
            size += count[pairs[i, 0]] * count[pairs[i, 1]]
        out_a = np.empty(size, np.int64)
        out_b = np.empty(size, np.int64)
        n = 0
        for i in range(pairs.shape[0]):
            ma, mb, li = pairs[i, 0], pairs[i, 1], pair_layer[i]
            lo0, lo1, lo2, lo3 = lo[li, 0], lo[li, 1], lo[li, 2], lo[li, 3]
            hi0, hi1, hi2, hi3 = hi[li, 0], hi[li, 1], hi[li, 2], hi[li, 3]
            for ia in range(start[ma], start[ma] + count[ma]):
                a = rows[ia]
                xa, ya, za, ra, pa, ea = coords[a, 0], coords[a, 1], coords[a, 2], coords[a, 3], coords[a, 4], \
                    coords[a, 5]
                za_lo = za - lo1
                za_hi = za - hi1
                for ib in range(start[mb], start[mb] + count[mb]):
                    b = rows[ib]
                    dr = coords[b, 3] - ra
                    dz = coords[b, 2] - za
                    ra_dz = ra * dz
                    if dr > 0:
                        ok = (za_lo * dr >= ra_dz) and (ra_dz >= za_hi * dr)
                    else:
                        ok = (za_lo * dr <= ra_dz) and (ra_dz <= za_hi * dr)
                    if not (ok or dr == 0):
                        continue
                    dphi = (coords[b, 4] - pa + _PI32) % _TWO_PI32 - _PI32
                    if not (dphi >= lo0 and dphi <= hi0):
                        continue
                    deta = coords[b, 5] - ea
                    if not (deta >= lo2 and deta <= hi2):
                        continue
                    chord = np.hypot(coords[b, 0] - xa, coords[b, 1] - ya)
                    curvature = _TWO32 * np.sin(dphi) / max(chord, _TINY32)
                    if not (curvature >= lo3 and curvature <= hi3):
                        continue
                    out_a[n] = a
                    out_b[n] = b
                    n += 1
        return out_a[:n], out_b[:n]

    @numba.njit(cache=True, nogil=True)
    def _edge_features(coords, x, a_rows, b_rows):
        """`features.edge_features`, edge by edge: float64 where NumPy computes in float64 (the coordinates),
        float32 where it does (`module_map.pair_features`' output and what is made from it)."""
        e = a_rows.shape[0]
        out = np.empty((e, 9), np.float32)
        for i in range(e):
            a, b = a_rows[i], b_rows[i]
            dx = coords[b, 0] - coords[a, 0]
            dy = coords[b, 1] - coords[a, 1]
            dz = coords[b, 2] - coords[a, 2]
            dr = coords[b, 3] - coords[a, 3]
            dphi = coords[b, 4] - coords[a, 4]
            dphi = (dphi + np.pi) % (2 * np.pi) - np.pi
            if abs(dr) > 1e-6:
                z0 = coords[a, 2] - coords[a, 3] * dz / dr
            else:
                z0 = np.copysign(1e9, dz)
            chord = np.hypot(dx, dy)
            curvature = 2.0 * np.sin(dphi) / max(chord, 1e-9)
            # pair_features' float32 columns; z0 clipped in float32 as edge_features does
            dphi32 = np.float32(dphi)
            z032 = min(max(np.float32(z0), np.float32(-3000)), np.float32(3000))
            deta32 = np.float32(coords[b, 5] - coords[a, 5])
            curv32 = np.float32(curvature)
            length = max(np.sqrt(dx ** 2 + dy ** 2 + dz ** 2), 1e-6)
            pair_cz = abs(dz) / length
            pair_cphi = abs(-np.sin(coords[a, 4]) * dx + np.cos(coords[a, 4]) * dy) / length
            out[i, 0] = dr / 100
            out[i, 1] = dphi32 * np.float32(10)
            out[i, 2] = dz / 100
            out[i, 3] = deta32 * np.float32(10)
            out[i, 4] = z032 / np.float32(1000)
            out[i, 5] = curv32 * np.float32(500)
            out[i, 6] = (pair_cz - np.float64(x[a, 6])) * 5
            out[i, 7] = (pair_cz - np.float64(x[b, 6])) * 5
            out[i, 8] = (pair_cphi - np.float64(x[a, 7])) * 5
        return out


def module_pair_edges(pairs, pair_layer, start, count, rows, coords, lo, hi) -> np.ndarray:
    """(2, e) kept hit rows of the candidates of module ``pairs``; see `_module_pair_edges`."""
    a, b = _module_pair_edges(pairs, pair_layer, start, count, rows, coords, lo, hi)
    return np.stack([a, b])


def edge_features(coords: np.ndarray, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(E, 9) float32: `features.edge_features` compiled."""
    return _edge_features(np.ascontiguousarray(coords, np.float64), np.ascontiguousarray(x, np.float32),
                          np.ascontiguousarray(edges[0], np.int64), np.ascontiguousarray(edges[1], np.int64))
