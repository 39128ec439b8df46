"""The CKF's hot loops compiled with numba (optional): the helix's crossing with a cylinder, and the search of one
layer (window, propagation to each hit's surface, covariance, chi2 and gate) in one pass over the pairs.

Why: the filter steps candidates layer by layer, and most calls hold few candidates (on a list event half the
searches carry at most 6), so NumPy's cost there is its per-operation overhead, not arithmetic: a search is some
two hundred array operations. Here a search is one call, and each (candidate, hit) pair is made, carried, gated
and kept or dropped in registers.

The arithmetic is `helix` and `kalman`'s, operation for operation, in float64, with the pairs in the order of
`seeding.grid_pair_blocks` (coordinate bin, then candidate, then the hit's place in the grid). The results agree
with NumPy's to rounding (NumPy's sin and cos are its own vectorised ones, numba's the C library's; the tests
compare both); without numba the NumPy code runs.
"""

from __future__ import annotations

import numpy as np

try:  # numba is optional (the ``fast`` extra)
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

HAVE_NUMBA = numba is not None

if HAVE_NUMBA:
    _PI = np.pi
    _TWO_PI = 2.0 * np.pi

    @numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
    def _wrap(a):
        return (a + _PI) % _TWO_PI - _PI

    @numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
    def _arcs1(h, s):
        hs = h * s
        if abs(hs) < 1e-3:
            hs2 = hs * hs
            return s * (1.0 - hs2 / 6.0), 0.5 * hs * s * (1.0 - hs2 / 12.0)
        return np.sin(hs) / h, (1.0 - np.cos(hs)) / h

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _cylinder1(x, y, psi, h, radius, iterations):
        """`helix.path_to_cylinder` for one helix: (s, ok)."""
        cos, sin = np.cos(psi), np.sin(psi)
        a = x * cos + y * sin
        b = -x * sin + y * cos
        d = radius * radius - (x * x + y * y)
        disc = a * a + d
        s = -a + np.sqrt(max(disc, 0.0))
        for _ in range(iterations):
            sa, ca = _arcs1(h, s)
            hs = h * s
            f = 2.0 * a * sa + 2.0 * b * ca + sa * sa + ca * ca - d
            fp = 2.0 * (a + sa) * np.cos(hs) + 2.0 * (b + ca) * np.sin(hs)
            if abs(fp) < 1e-9:
                fp = 1e-9
            step = f / fp
            s = s - step
            if abs(step) < 1e-9:
                break
        sa, ca = _arcs1(h, s)
        f = 2.0 * a * sa + 2.0 * b * ca + sa * sa + ca * ca - d
        ok = np.isfinite(s) and abs(f) < 1e-6 * max(radius, 1.0) and abs(h * s) < 0.5 * _PI
        return s, ok

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def path_to_cylinder(x, y, psi, h, radius, iterations):
        """`helix.path_to_cylinder` over flat float64 arrays of one length."""
        n = x.shape[0]
        s = np.empty(n)
        ok = np.empty(n, np.bool_)
        for i in range(n):
            s[i], ok[i] = _cylinder1(x[i], y[i], psi[i], h[i], radius[i], iterations)
        return s, ok

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _propagate1(st, barrel, position, to_barrel, to_position, curvature, out):
        """`helix.propagate` for one state ``st`` (5,), into ``out`` (5,); returns (ok, s)."""
        phi, w, psi, t, k = st[0], st[1], st[2], st[3], st[4]
        r = position if barrel else w
        z = w if barrel else position
        x, y = r * np.cos(phi), r * np.sin(phi)
        h = -curvature * k
        if to_barrel:
            s, ok = _cylinder1(x, y, psi, h, to_position, 6)
        else:
            s = (to_position - z) / t if t != 0.0 else np.inf
            ok = np.isfinite(s) and abs(h * s) < 0.5 * _PI
        if not ok:
            s = 0.0
        sa, ca = _arcs1(h, s)
        cos, sin = np.cos(psi), np.sin(psi)
        xn = x + cos * sa - sin * ca
        yn = y + sin * sa + cos * ca
        zn = z + t * s
        out[0] = np.arctan2(yn, xn)
        out[1] = zn if to_barrel else np.hypot(xn, yn)
        out[2] = _wrap(psi + h * s)
        out[3] = t
        out[4] = k
        return ok, s

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _short_step_cov1(st, cov, barrel, position, s, curvature, jac, tmp, out):
        """`helix.short_step_cov` for one state into ``out`` (5, 5); ``jac``, ``tmp``: (5, 5) scratch."""
        phi, w, psi, t = st[0], st[1], st[2], st[3]
        r = max(position if barrel else w, 1.0)
        c, sn = np.cos(psi - phi), np.sin(psi - phi)
        if abs(c) < 0.1:
            c = np.copysign(0.1, c)
        dh = -curvature
        h = dh * st[4]
        jac[:] = 0.0
        for i in range(5):
            jac[i, i] = 1.0
        jac[0, 4] = dh * s * s / (2.0 * r)
        jac[2, 4] = dh * s
        ds_dt = -s / t if abs(t) > 1e-6 else 0.0
        dphi_dpsi = s / (r * c) if barrel else s * c / r
        jac[0, 2] = dphi_dpsi
        jac[0, 0] = 1.0 - dphi_dpsi
        jac[0, 3] = 0.0 if barrel else ds_dt * sn / r
        tan = sn / c
        jac[1, 0] = -t * s * tan if barrel else s * sn
        jac[1, 2] = t * s * tan if barrel else -s * sn
        jac[1, 3] = s if barrel else ds_dt * c
        jac[2, 3] = 0.0 if barrel else h * ds_dt
        _sandwich(jac, cov, tmp, out)

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _sandwich(jac, cov, tmp, out):
        """``out`` = J C J^T for (5, 5) ``jac`` and ``cov``, made symmetric (``tmp``: (5, 5) scratch)."""
        for i in range(5):
            for j in range(5):
                acc = 0.0
                for m in range(5):
                    acc += jac[i, m] * cov[m, j]
                tmp[i, j] = acc
        for i in range(5):
            for j in range(5):
                acc = 0.0
                for m in range(5):
                    acc += tmp[i, m] * jac[j, m]
                out[i, j] = acc
        for i in range(5):
            for j in range(i + 1, 5):
                v = 0.5 * (out[i, j] + out[j, i])
                out[i, j] = v
                out[j, i] = v

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _bins(lo, hi, base, n_bins, bin_width):
        """The grid's coordinate bins each window [lo, hi] covers (as `seeding.grid_pair_blocks_by_bin` clips them):
        (first, last, the largest last - first)."""
        n = lo.shape[0]
        b_lo = np.empty(n, np.int64)
        b_hi = np.empty(n, np.int64)
        most = -1
        for q in range(n):
            b_lo[q] = np.int64(min(max(np.floor(lo[q] / bin_width) - base, 0.0), float(n_bins)))
            b_hi[q] = np.int64(min(max(np.floor(hi[q] / bin_width) - base, -1.0), float(n_bins - 1)))
            most = max(most, b_hi[q] - b_lo[q])
        return b_lo, b_hi, most

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def layer_pairs(st, cv, barrel, pos, layer_barrel, layer_position, offset, vmax0, vmax1, n_sigma, chi2_max,
                    curvature, key, index, coord, base, n_bins, bin_width, surface, meas, var, module, exclude):
        """`kalman.Finder._pairs` for the candidates (state ``st``, covariance ``cv``, surface ``barrel`` /
        ``pos``) on one layer, its hits in the grid (``key``, ``index``, ``coord``, ``base``, ``n_bins``,
        ``bin_width``: `seeding.Grid`); ``exclude`` (n, k) module keys per candidate left out (k = 0: none).

        Returns (candidate, hit, predicted state, its covariance, chi2) of the pairs within the gate."""
        n = st.shape[0]
        half = np.empty(n)
        lo = np.empty(n)
        hi = np.empty(n)
        for q in range(n):
            phi, w, psi, t = st[q, 0], st[q, 1], st[q, 2], st[q, 3]
            r = pos[q] if barrel[q] else w
            off = offset + abs(pos[q] - layer_position)
            if layer_barrel:
                ds = off / max(abs(np.cos(psi - phi)), 0.1)
                m_phi, m_w = ds * abs(np.sin(psi - phi)) / max(r, 1.0), ds * abs(t)
            else:
                ds = off / max(abs(t), 0.05)
                m_phi, m_w = ds * abs(np.sin(psi - phi)) / max(r, 1.0), ds * abs(np.cos(psi - phi))
            hw = n_sigma * np.sqrt(cv[q, 0, 0] + vmax0) + 1.2 * m_phi + 1e-4
            span = n_sigma * np.sqrt(cv[q, 1, 1] + vmax1) + 1.2 * m_w + 0.1
            half[q] = min(min(hw, 0.5), 0.99 * _PI)
            lo[q], hi[q] = w - span, w + span
        b_lo, b_hi, most = _bins(lo, hi, base, n_bins, bin_width)
        cap = 64
        out_c = np.empty(cap, np.int64)
        out_h = np.empty(cap, np.int64)
        out_p = np.empty((cap, 5))
        out_v = np.empty((cap, 5, 5))
        out_x = np.empty(cap)
        m = 0
        pred = np.empty(5)
        pcov = np.empty((5, 5))
        jac = np.empty((5, 5))
        tmp = np.empty((5, 5))
        n_ex = exclude.shape[1]
        for j in range(most + 1):
            for q in range(n):
                if b_lo[q] + j > b_hi[q]:
                    continue
                centre = (b_lo[q] + j) * 20.0 + st[q, 0] + 3.0 * _PI
                a = np.searchsorted(key, centre - half[q], side="left")
                b = np.searchsorted(key, centre + half[q], side="right")
                for p in range(a, b):
                    if coord[p] < lo[q] or coord[p] > hi[q]:
                        continue
                    hit = index[p]
                    skip = False
                    for e in range(n_ex):
                        if exclude[q, e] == module[hit]:
                            skip = True
                            break
                    if skip:
                        continue
                    ok, s = _propagate1(st[q], barrel[q], pos[q], layer_barrel, surface[hit], curvature, pred)
                    if not ok:
                        continue
                    _short_step_cov1(st[q], cv[q], barrel[q], pos[q], s, curvature, jac, tmp, pcov)
                    r0 = _wrap(meas[hit, 0] - pred[0])
                    r1 = meas[hit, 1] - pred[1]
                    s00 = pcov[0, 0] + var[hit, 0, 0]
                    s01 = pcov[0, 1] + var[hit, 0, 1]
                    s11 = pcov[1, 1] + var[hit, 1, 1]
                    det = s00 * s11 - s01 * (pcov[1, 0] + var[hit, 1, 0])
                    chi2 = (r0 ** 2 * s11 - 2 * r0 * r1 * s01 + r1 ** 2 * s00) / det
                    if not chi2 < chi2_max:
                        continue
                    if m == cap:
                        cap *= 2
                        out_c = _grow(out_c, cap)
                        out_h = _grow(out_h, cap)
                        out_p = _grow(out_p, cap)
                        out_v = _grow(out_v, cap)
                        out_x = _grow(out_x, cap)
                    out_c[m], out_h[m], out_x[m] = q, hit, chi2
                    out_p[m] = pred
                    out_v[m] = pcov
                    m += 1
        return out_c[:m].copy(), out_h[:m].copy(), out_p[:m].copy(), out_v[:m].copy(), out_x[:m].copy()

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _grow(a, cap):
        out = np.empty((cap,) + a.shape[1:], a.dtype)
        out[:a.shape[0]] = a
        return out

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def transport(state, cov, barrel, position, to_barrel, to_position, curvature, fd_steps):
        """`helix.transport` over arrays of one length: (states, covariances, ok, s); the Jacobian by the same
        forward differences (``fd_steps``) of `_propagate1`."""
        n = state.shape[0]
        out = np.empty((n, 5))
        new_cov = np.empty((n, 5, 5))
        ok = np.empty(n, np.bool_)
        path = np.empty(n)
        shifted = np.empty(5)
        moved = np.empty(5)
        jac = np.empty((5, 5))
        tmp = np.empty((5, 5))
        for q in range(n):
            good, s = _propagate1(state[q], barrel[q], position[q], to_barrel[q], to_position[q], curvature, out[q])
            path[q] = s
            for i in range(5):
                shifted[:] = state[q]
                shifted[i] += fd_steps[i]
                good_i, _ = _propagate1(shifted, barrel[q], position[q], to_barrel[q], to_position[q], curvature,
                                        moved)
                good = good and good_i
                for j in range(5):
                    d = moved[j] - out[q, j]
                    if j == 0 or j == 2:
                        d = _wrap(d)
                    jac[j, i] = d / fd_steps[i]
            ok[q] = good
            _sandwich(jac, cov[q], tmp, new_cov[q])
        return out, new_cov, ok, path

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def next_layer(state, barrel, pos, layer, curvature, lay_barrel, lay_position, lay_lo, lay_hi, inward):
        """`kalman.next_layer` over the candidates: (layer, path), -1 / inf where none."""
        n = state.shape[0]
        best = np.full(n, -1, np.int64)
        best_s = np.full(n, np.inf)
        sign = -1.0 if inward else 1.0
        n_layers = lay_barrel.shape[0]
        for q in range(n):
            phi, w, psi, t, k = state[q, 0], state[q, 1], state[q, 2], state[q, 3], state[q, 4]
            rq = pos[q] if barrel[q] else w
            z = w if barrel[q] else pos[q]
            x, y = rq * np.cos(phi), rq * np.sin(phi)
            h = -curvature * k
            r = np.hypot(x, y)
            for L in range(n_layers):
                if not lay_barrel[L] or layer[q] == L:
                    continue
                if inward:
                    if not lay_position[L] < r - 0.5:
                        continue
                elif not lay_position[L] > r + 0.5:
                    continue
                s, ok = _cylinder1(x, y, psi, h, lay_position[L], 6)
                zc = z + t * s
                s = sign * s
                if ok and s > 0 and zc >= lay_lo[L] and zc <= lay_hi[L] and s < best_s[q]:
                    best_s[q] = s
                    best[q] = L
            limit = x * np.cos(psi) + y * np.sin(psi)
            disk_s = np.inf
            disk = -1
            for L in range(n_layers):
                if lay_barrel[L] or layer[q] == L:
                    continue
                s = sign * (lay_position[L] - z) / t if t != 0.0 else np.nan
                if not (np.isfinite(s) and s > 0 and abs(h * s) < 0.5 * _PI and s < best_s[q]):
                    continue
                if inward and not s < limit:
                    continue
                sa, ca = _arcs1(h, sign * s)
                c, sn = np.cos(psi), np.sin(psi)
                rr = np.hypot(x + c * sa - sn * ca, y + sn * sa + c * ca)
                if rr >= lay_lo[L] and rr <= lay_hi[L] and s < disk_s:
                    disk_s = s
                    disk = L
            if disk >= 0 and disk_s < best_s[q]:
                best_s[q] = disk_s
                best[q] = disk
        return best, best_s

    @numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
    def _arc1(chord, rho):
        return 2.0 * rho * np.arcsin(min(max(chord / (2.0 * rho), 0.0), 1.0))

    @numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
    def _highland1(p, x_over_x0, mass):
        beta2 = p * p / (p * p + mass * mass)
        x = max(x_over_x0, 1e-9)
        return 0.0136 / (np.sqrt(beta2) * p) * np.sqrt(x) * max(1.0 + 0.038 * np.log(x / beta2), 0.1)

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def triplets(phi_t, half, lo, hi, key, index, coord, base, n_bins, bin_width, bi, mi, r2, cot, tol_cot,
                 hx, hy, hz, hr, x0, pt_min, z0_max, d0_max, n_sigma, curvature, mass):
        """The loop of `seeding._triplet_blocks` over the doublets (b ``bi``, m ``mi``): the top layer's hits in
        each doublet's window (``phi_t`` +- ``half``, ``lo``-``hi``; the grid of `seeding.Grid`), the r-z check at the
        hit's own radius, then `seeding._triplet_cuts`. Returns (coordinate bin j, doublet, top hit, quality) of
        the triplets kept, in the order of `seeding.grid_pair_blocks_by_bin` (j, doublet, place in the grid)."""
        n = phi_t.shape[0]
        b_lo, b_hi, most = _bins(lo, hi, base, n_bins, bin_width)
        cap = 1024
        out_j = np.empty(cap, np.int64)
        out_q = np.empty(cap, np.int64)
        out_t = np.empty(cap, np.int64)
        out_x = np.empty(cap)
        m = 0
        for j in range(most + 1):
            for q in range(n):
                if b_lo[q] + j > b_hi[q]:
                    continue
                w = min(half[q], 0.99 * _PI)
                centre = (b_lo[q] + j) * 20.0 + phi_t[q] + 3.0 * _PI
                a = np.searchsorted(key, centre - w, side="left")
                e = np.searchsorted(key, centre + w, side="right")
                b, mid = bi[q], mi[q]
                for p in range(a, e):
                    if coord[p] < lo[q] or coord[p] > hi[q]:
                        continue
                    t = index[p]
                    lever_t = hr[t] - r2[q]
                    z_dev = abs(hz[t] - hz[mid] - cot[q] * lever_t)
                    if not (z_dev < 2.0 + tol_cot[q] * lever_t and lever_t > 1.0):
                        continue
                    # _triplet_cuts: the circle through the three hits (seeding._circle)
                    x1, y1 = hx[b], hy[b]
                    ax, ay = hx[mid] - x1, hy[mid] - y1
                    bx, by = hx[t] - x1, hy[t] - y1
                    d = 2.0 * (ax * by - ay * bx)
                    ux = (by * (ax * ax + ay * ay) - ay * (bx * bx + by * by)) / d
                    uy = (ax * (bx * bx + by * by) - bx * (ax * ax + ay * ay)) / d
                    xc, yc, rho = x1 + ux, y1 + uy, np.hypot(ux, uy)
                    pt = curvature * rho
                    d0 = abs(np.hypot(xc, yc) - rho)
                    if not (pt > pt_min and d0 < d0_max):
                        continue
                    s_bm = _arc1(np.hypot(hx[mid] - hx[b], hy[mid] - hy[b]), rho)
                    s_mt = _arc1(np.hypot(hx[t] - hx[mid], hy[t] - hy[mid]), rho)
                    cot1 = (hz[mid] - hz[b]) / s_bm
                    cot2 = (hz[t] - hz[mid]) / s_mt
                    c = (hz[t] - hz[b]) / (s_bm + s_mt)
                    z0 = hz[b] - c * _arc1(hr[b], rho)
                    mom = min(pt, 100.0) * np.sqrt(1.0 + c * c)
                    sin_theta = 1.0 / np.sqrt(1.0 + c * c)
                    theta0 = _highland1(mom, x0 / sin_theta, mass)
                    sigma = np.hypot(theta0 * (1.0 + c * c), 0.05 * (1.0 + abs(c)) * (1.0 / s_bm + 1.0 / s_mt))
                    mismatch = abs(cot1 - cot2) / sigma
                    if not (abs(z0) < z0_max and mismatch < n_sigma):
                        continue
                    if m == cap:
                        cap *= 2
                        out_j = _grow(out_j, cap)
                        out_q = _grow(out_q, cap)
                        out_t = _grow(out_t, cap)
                        out_x = _grow(out_x, cap)
                    out_j[m], out_q[m], out_t[m], out_x[m] = j, q, t, mismatch
                    m += 1
        return out_j[:m].copy(), out_q[:m].copy(), out_t[:m].copy(), out_x[:m].copy()
