"""The CKF's hot loops compiled with numba (optional): the helix's crossing with a cylinder, the search of one
layer (window, propagation to each hit's surface, covariance, chi2 and gate) in one pass over the pairs, the triplet
search, the ambiguity resolution, and the filter's start and step (`start`, `advance`: all of a step's
searches, branching, updates and scattering for a part's candidates in one call).

Why: the filter steps candidates layer by layer, and most calls hold few candidates (on a list event half the
searches carry at most 6), so NumPy's cost there is its per-operation overhead, not arithmetic: a search is some
two hundred array operations. Here a search is one call, and each (candidate, hit) pair is made, carried, gated
and kept or dropped in registers.

The arithmetic is `helix` and `kalman`'s, operation for operation, in float64, with the pairs in the order of
`seeding.grid_pair_blocks` (coordinate bin, then candidate, then the hit's place in the grid). The results agree
with NumPy's to rounding (NumPy's sin and cos are its own vectorised ones, numba's the C library's; the tests
compare both); without numba the NumPy code runs. One shortcut keeps the results to rounding: the next layer is
searched in the order of the path to it, stopping at the first layer crossed (the same layer as a search of all of
them: tested).
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
        return _cylinder_from(x, y, psi, h, radius, iterations, np.nan)

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _cylinder_from(x, y, psi, h, radius, iterations, start):
        """`_cylinder1`, Newton's iterations from ``start`` (NaN: from the straight-line crossing, as
        `helix.path_to_cylinder`); sin(h s) and cos(h s) taken once an iteration."""
        cos, sin = np.cos(psi), np.sin(psi)
        a = x * cos + y * sin
        b = -x * sin + y * cos
        d = radius * radius - (x * x + y * y)
        if np.isnan(start):
            disc = a * a + d
            s = -a + np.sqrt(max(disc, 0.0))
        else:
            s = start
        for _ in range(iterations):
            hs = h * s
            c_hs, s_hs = np.cos(hs), np.sin(hs)
            if abs(hs) < 1e-3:  # `_arcs1`'s series
                hs2 = hs * hs
                sa, ca = s * (1.0 - hs2 / 6.0), 0.5 * hs * s * (1.0 - hs2 / 12.0)
            else:
                sa, ca = s_hs / h, (1.0 - c_hs) / h
            f = 2.0 * a * sa + 2.0 * b * ca + sa * sa + ca * ca - d
            fp = 2.0 * (a + sa) * c_hs + 2.0 * (b + ca) * s_hs
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
    def _propagate1(st, barrel, position, to_barrel, to_position, curvature, out, start=np.nan):
        """`helix.propagate` for one state ``st`` (5,), into ``out`` (5,); returns (ok, s). ``start``: where the
        search for a cylinder's crossing starts (`_cylinder_from`)."""
        phi, w, psi, t, k = st[0], st[1], st[2], st[3], st[4]
        r = position if barrel else w
        z = w if barrel else position
        x, y = r * np.cos(phi), r * np.sin(phi)
        h = -curvature * k
        if to_barrel:
            s, ok = _cylinder_from(x, y, psi, h, to_position, 6, start)
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
    def _diagonal1(jac, cov, i):
        """Element (i, i) of J C J^T, as `_sandwich` sums it."""
        acc = 0.0
        for m in range(5):
            row = 0.0
            for k in range(5):
                row += jac[i, k] * cov[k, m]
            acc += row * jac[i, m]
        return acc

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _short_step_jac1(st, barrel, position, s, curvature, jac):
        """The Jacobian of `helix.short_step_cov` for one state into ``jac`` (5, 5) (the covariance carried is then
        `_sandwich`'s J C J^T)."""
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
    def _gated1(st, cv, barrel, pos, layer_barrel, hit, surface, meas, var, chi2_max, curvature, pred, pcov, jac, tmp):
        """One (candidate, hit) pair of a layer's search: the candidate carried to the hit's own surface (into
        ``pred``, ``pcov``) and its chi2; inf where the helix misses that surface or the pair fails the gate. Each
        coordinate alone bounds chi2 from below (r_i^2 / S_ii <= r^T S^-1 r): most of a window's hits fail there,
        before the whole covariance is carried (``pcov`` is then not filled)."""
        ok, s = _propagate1(st, barrel, pos, layer_barrel, surface[hit], curvature, pred)
        if not ok:
            return np.inf
        r0 = _wrap(meas[hit, 0] - pred[0])
        r1 = meas[hit, 1] - pred[1]
        _short_step_jac1(st, barrel, pos, s, curvature, jac)
        if r0 * r0 >= chi2_max * (_diagonal1(jac, cv, 0) + var[hit, 0, 0]) or \
                r1 * r1 >= chi2_max * (_diagonal1(jac, cv, 1) + var[hit, 1, 1]):
            return np.inf
        _sandwich(jac, cv, tmp, pcov)
        s00 = pcov[0, 0] + var[hit, 0, 0]
        s01 = pcov[0, 1] + var[hit, 0, 1]
        s11 = pcov[1, 1] + var[hit, 1, 1]
        dt = s00 * s11 - s01 * (pcov[1, 0] + var[hit, 1, 0])
        chi2 = (r0 ** 2 * s11 - 2 * r0 * r1 * s01 + r1 ** 2 * s00) / dt
        return chi2 if chi2 < chi2_max else np.inf

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _bins(lo, hi, base, n_bins, bin_width):
        """The grid's coordinate bins each window [lo, hi] covers (as `seeding.grid_pair_blocks_by_bin` clips them):
        (first, last, the largest last - first)."""
        n = lo.shape[0]
        b_lo = np.empty(n, np.int64)
        b_hi = np.empty(n, np.int64)
        most = -1
        for q in range(n):
            b_lo[q], b_hi[q] = _bin_range1(lo[q], hi[q], base, n_bins, bin_width)
            most = max(most, b_hi[q] - b_lo[q])
        return b_lo, b_hi, most

    @numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
    def _bin_range1(lo, hi, base, n_bins, bin_width):
        """`_bins` for one window: (first, last)."""
        return (np.int64(min(max(np.floor(lo / bin_width) - base, 0.0), float(n_bins))),
                np.int64(min(max(np.floor(hi / bin_width) - base, -1.0), float(n_bins - 1))))

    @numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
    def _window1(st, cv, barrel, pos, layer_barrel, layer_position, offset, vmax0, vmax1, n_sigma):
        """The search window of one candidate on a layer (`kalman.Finder._pairs`): (half width in phi, lowest and
        highest coordinate): n_sigma of the candidate's and the layer's largest hit errors, widened by the step to
        hits off the layer's mean surface."""
        phi, w, psi, t = st[0], st[1], st[2], st[3]
        r = pos if barrel else w
        off = offset + abs(pos - layer_position)
        if layer_barrel:
            ds = off / max(abs(np.cos(psi - phi)), 0.1)
            m_phi, m_w = ds * abs(np.sin(psi - phi)) / max(r, 1.0), ds * abs(t)
        else:
            ds = off / max(abs(t), 0.05)
            m_phi, m_w = ds * abs(np.sin(psi - phi)) / max(r, 1.0), ds * abs(np.cos(psi - phi))
        hw = n_sigma * np.sqrt(cv[0, 0] + vmax0) + 1.2 * m_phi + 1e-4
        span = n_sigma * np.sqrt(cv[1, 1] + vmax1) + 1.2 * m_w + 0.1
        return min(min(hw, 0.5), 0.99 * _PI), w - span, w + span

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
            half[q], lo[q], hi[q] = _window1(st[q], cv[q], barrel[q], pos[q], layer_barrel, layer_position, offset,
                                             vmax0, vmax1, n_sigma)
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
                    chi2 = _gated1(st[q], cv[q], barrel[q], pos[q], layer_barrel, hit, surface, meas, var, chi2_max,
                                   curvature, pred, pcov, jac, tmp)
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
    def _transport_jac1(st, barrel, position, to_barrel, ok, s, curvature, jac):
        """`helix.transport_jacobian` for one state propagated (`_propagate1`: ``ok``, ``s``) into ``jac``."""
        phi, w, psi, t, k = st[0], st[1], st[2], st[3], st[4]
        r = position if barrel else w
        cphi, sphi = np.cos(phi), np.sin(phi)
        x, y = r * cphi, r * sphi
        h = -curvature * k
        hs = h * s
        c_hs, s_hs = np.cos(hs), np.sin(hs)
        if abs(hs) < 1e-3:  # `_arcs1`'s series, differentiated
            hs2 = hs * hs
            sa, ca = s * (1.0 - hs2 / 6.0), 0.5 * hs * s * (1.0 - hs2 / 12.0)
            dsa_dh, dca_dh = -h * s * s * s / 3.0 * (1.0 - hs2 / 10.0), 0.5 * s * s * (1.0 - hs2 / 4.0)
        else:
            sa, ca = s_hs / h, (1.0 - c_hs) / h
            dsa_dh, dca_dh = (s * c_hs - sa) / h, (s * s_hs - ca) / h
        cpsi, spsi = np.cos(psi), np.sin(psi)
        xn = x + cpsi * sa - spsi * ca
        yn = y + spsi * sa + cpsi * ca
        ux, uy = cpsi * c_hs - spsi * s_hs, spsi * c_hs + cpsi * s_hs  # d(xn, yn)/ds
        xh, yh = cpsi * dsa_dh - spsi * dca_dh, spsi * dsa_dh + cpsi * dca_dh  # d(xn, yn)/dh
        rn2 = xn * xn + yn * yn
        rn = np.sqrt(rn2)
        along = xn * ux + yn * uy
        if abs(along) < 1e-9:
            along = 1e-9
        for i in range(5):
            dx = -y if i == 0 else (cphi if (i == 1 and not barrel) else 0.0)
            dy = x if i == 0 else (sphi if (i == 1 and not barrel) else 0.0)
            dz = 1.0 if (i == 1 and barrel) else 0.0
            dpsi = 1.0 if i == 2 else 0.0
            dt = 1.0 if i == 3 else 0.0
            dh = -curvature if i == 4 else 0.0
            dxn = dx - (yn - y) * dpsi + xh * dh
            dyn = dy + (xn - x) * dpsi + yh * dh
            if not ok:
                ds = 0.0
            elif to_barrel:  # the crossing stays on |p| = R
                ds = -(xn * dxn + yn * dyn) / along
            else:  # z + t s = Z
                ds = -(dz + s * dt) / t
            dxn += ux * ds
            dyn += uy * ds
            jac[0, i] = (xn * dyn - yn * dxn) / rn2
            jac[1, i] = dz + s * dt + t * ds if to_barrel else (xn * dxn + yn * dyn) / rn
            jac[2, i] = dpsi + s * dh + h * ds
            jac[3, i] = dt
            jac[4, i] = 1.0 if i == 4 else 0.0

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _transport1(st, cov, barrel, position, to_barrel, to_position, curvature, out, new_cov, jac, tmp):
        """`helix.transport` of one state into ``out`` (5,) and ``new_cov`` (5, 5); returns (ok, s). ``jac``,
        ``tmp`` (5, 5): scratch."""
        good, s = _propagate1(st, barrel, position, to_barrel, to_position, curvature, out)
        _transport_jac1(st, barrel, position, to_barrel, good, s, curvature, jac)
        _sandwich(jac, cov, tmp, new_cov)
        return good, s

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def transport(state, cov, barrel, position, to_barrel, to_position, curvature):
        """`helix.transport` over arrays of one length: (states, covariances, ok, s); the Jacobian
        `_transport_jac1`'s, the same arithmetic as `helix.transport_jacobian`."""
        n = state.shape[0]
        out = np.empty((n, 5))
        new_cov = np.empty((n, 5, 5))
        ok = np.empty(n, np.bool_)
        path = np.empty(n)
        jac = np.empty((5, 5))
        tmp = np.empty((5, 5))
        for q in range(n):
            ok[q], path[q] = _transport1(state[q], cov[q], barrel[q], position[q], to_barrel[q], to_position[q],
                                         curvature, out[q], new_cov[q], jac, tmp)
        return out, new_cov, ok, path

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _next_layer1(st, barrel, pos, layer, curvature, lay_barrel, lay_position, lay_lo, lay_hi, inward, by_r, by_z):
        """`kalman.next_layer` of one candidate: (layer, path), -1 / inf where none. ``by_r``: the barrel layers
        by radius, ``by_z``: the disks by z (`layer_orders`). The path to the crossings grows along each list in
        the direction of flight, so each is searched from the candidate on and the first layer crossed within its
        extent is the nearest of its kind: the same layer as a search of all of them."""
        phi, w, psi, t, k = st[0], st[1], st[2], st[3], st[4]
        rq = pos if barrel else w
        z = w if barrel else pos
        x, y = rq * np.cos(phi), rq * np.sin(phi)
        h = -curvature * k
        r = np.hypot(x, y)
        sign = -1.0 if inward else 1.0
        best, best_s = -1, np.inf
        n_r = by_r.shape[0]
        for i in range(n_r):
            L = by_r[n_r - 1 - i] if inward else by_r[i]
            if layer == L:
                continue
            if inward:
                if not lay_position[L] < r - 0.5:
                    continue
            elif not lay_position[L] > r + 0.5:
                continue
            s, ok = _cylinder1(x, y, psi, h, lay_position[L], 6)
            zc = z + t * s
            s = sign * s
            if ok and s > 0 and zc >= lay_lo[L] and zc <= lay_hi[L]:
                best_s = s
                best = L
                break
        if t == 0.0:
            return best, best_s
        c, sn = np.cos(psi), np.sin(psi)
        limit = x * c + y * sn
        n_z = by_z.shape[0]
        up = (t > 0.0) != inward  # flying towards larger z
        for i in range(n_z):
            L = by_z[i] if up else by_z[n_z - 1 - i]
            if layer == L:
                continue
            s = sign * (lay_position[L] - z) / t
            if not s > 0:  # behind
                continue
            if not (np.isfinite(s) and abs(h * s) < 0.5 * _PI and s < best_s):
                break
            if inward and not s < limit:
                break
            sa, ca = _arcs1(h, sign * s)
            rr = np.hypot(x + c * sa - sn * ca, y + sn * sa + c * ca)
            if rr >= lay_lo[L] and rr <= lay_hi[L]:
                best_s = s
                best = L
                break
        return best, best_s

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def next_layer(state, barrel, pos, layer, curvature, lay_barrel, lay_position, lay_lo, lay_hi, inward):
        """`kalman.next_layer` over the candidates: (layer, path), -1 / inf where none."""
        n = state.shape[0]
        best = np.full(n, -1, np.int64)
        best_s = np.full(n, np.inf)
        by_r, by_z = layer_orders(lay_barrel, lay_position)
        for q in range(n):
            best[q], best_s[q] = _next_layer1(state[q], barrel[q], pos[q], layer[q], curvature, lay_barrel,
                                              lay_position, lay_lo, lay_hi, inward, by_r, by_z)
        return best, best_s

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def layer_orders(lay_barrel, lay_position):
        """The barrel layers by radius and the disks by z (layer numbers)."""
        order = np.argsort(lay_position, kind="mergesort")
        return order[lay_barrel[order]], order[~lay_barrel[order]]

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

    # ------------------------------------------------------------------ the filter's start and step, compiled
    #
    # `start` and `advance` run `kalman.Finder.start` and one step of `kalman.Finder._advance` for all candidates
    # of a part in one call each, candidate after candidate (the same arithmetic as the NumPy steps, operation for
    # operation), without the interpreter's lock, so that the parts of other threads run beside them; what crosses
    # the parts (the merge of candidates that end on the same two hits) stays in `kalman.Finder.prune`. A candidate
    # here is four rows: its state (5,), covariance (5, 5), hits (MAX_HITS,) and ``info`` (barrel, surface
    # position, layer, number of hits, chi2, holes).

    _BARREL, _POS, _LAYER, _NH, _CHI2, _HOLES = 0, 1, 2, 3, 4, 5

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _search1(det, layer, st, cv, barrel, pos, n_sigma, chi2_max, curvature, exclude, n_ex, k_best, best_h,
                 best_p, best_v, best_x, pred, pcov, jac, tmp):
        """The ``k_best`` hits of ``layer`` of smallest chi2 within the gate for one candidate (`layer_pairs`'
        window, propagation, covariance and chi2; hits on the modules ``exclude[:n_ex]`` left out), in
        ``best_h``, ``best_p`` (their predicted states), ``best_v`` (covariances), ``best_x`` (chi2), by chi2 and
        on a tie in the order of the search. Returns how many."""
        meas, var, surface, module = det[0], det[1], det[2], det[3]
        lay_barrel, lay_position, offset, var_max = det[5], det[6], det[10], det[11]
        gkey, gindex, gcoord, gstart, gbase, gbins, gwidth = det[12], det[13], det[14], det[15], det[16], det[17], \
            det[18]
        g0, g1 = gstart[layer], gstart[layer + 1]
        if g1 == g0:
            return 0
        key, index, coord = gkey[g0:g1], gindex[g0:g1], gcoord[g0:g1]
        base, n_bins, bin_width = gbase[layer], gbins[layer], gwidth[layer]
        layer_barrel, layer_position = lay_barrel[layer], lay_position[layer]
        half, lo, hi = _window1(st, cv, barrel, pos, layer_barrel, layer_position, offset[layer], var_max[layer, 0],
                                var_max[layer, 1], n_sigma)
        b_lo, b_hi = _bin_range1(lo, hi, base, n_bins, bin_width)
        m = 0
        for b in range(b_lo, b_hi + 1):
            centre = b * 20.0 + st[0] + 3.0 * _PI
            a = np.searchsorted(key, centre - half, side="left")
            e = np.searchsorted(key, centre + half, side="right")
            for p in range(a, e):
                if coord[p] < lo or coord[p] > hi:
                    continue
                hit = index[p]
                skip = False
                for x in range(n_ex):
                    if exclude[x] == module[hit]:
                        skip = True
                        break
                if skip:
                    continue
                chi2 = _gated1(st, cv, barrel, pos, layer_barrel, hit, surface, meas, var, chi2_max, curvature, pred,
                               pcov, jac, tmp)
                if not chi2 < chi2_max:
                    continue
                if m < k_best:
                    i = m
                    m += 1
                elif chi2 < best_x[k_best - 1]:
                    i = k_best - 1
                else:
                    continue
                while i > 0 and best_x[i - 1] > chi2:
                    best_h[i], best_x[i] = best_h[i - 1], best_x[i - 1]
                    best_p[i] = best_p[i - 1]
                    best_v[i] = best_v[i - 1]
                    i -= 1
                best_h[i], best_x[i] = hit, chi2
                best_p[i] = pred
                best_v[i] = pcov
        return m

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _update1(pred, pcov, hit, meas, var, st, cv):
        """`kalman.update` of one candidate with ``hit``: the state and covariance into ``st``, ``cv``; returns
        chi2."""
        res0 = _wrap(meas[hit, 0] - pred[0])
        res1 = meas[hit, 1] - pred[1]
        s00, s01 = pcov[0, 0] + var[hit, 0, 0], pcov[0, 1] + var[hit, 0, 1]
        s10, s11 = pcov[1, 0] + var[hit, 1, 0], pcov[1, 1] + var[hit, 1, 1]
        dt = s00 * s11 - s01 * s10
        i00, i11, i01, i10 = s11 / dt, s00 / dt, -s01 / dt, -s10 / dt
        chi2 = res0 * i00 * res0 + res0 * i01 * res1 + res1 * i10 * res0 + res1 * i11 * res1
        for i in range(5):
            g0 = pcov[i, 0] * i00 + pcov[i, 1] * i10
            g1 = pcov[i, 0] * i01 + pcov[i, 1] * i11
            st[i] = pred[i] + (g0 * res0 + g1 * res1)
            for j in range(5):
                cv[i, j] = pcov[i, j] - (g0 * pcov[0, j] + g1 * pcov[1, j])
        st[0] = _wrap(st[0])
        st[2] = _wrap(st[2])
        for i in range(5):
            for j in range(i + 1, 5):
                v = 0.5 * (cv[i, j] + cv[j, i])
                cv[i, j] = v
                cv[j, i] = v
        return chi2

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _scatter1(st, cv, layer, lay_barrel, lay_x0, mass):
        """`kalman.add_scattering` for one candidate on ``layer``, in place."""
        t, k, psi, phi = st[3], st[4], st[2], st[0]
        sin_theta = 1.0 / np.sqrt(1.0 + t * t)
        cos_inc = sin_theta * abs(np.cos(psi - phi)) if lay_barrel[layer] else abs(t) * sin_theta
        p = min(1.0 / max(abs(k), 1e-3), 1000.0) / sin_theta
        theta0 = _highland1(p, lay_x0[layer] / max(cos_inc, 0.05), mass)
        one_t2 = 1.0 + t * t
        cv[2, 2] += theta0 ** 2 * one_t2
        cv[3, 3] += theta0 ** 2 * one_t2 ** 2

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _take_hit(st, cv, info, hh, pred, pcov, hit, layer, det, max_hits):
        """`kalman.Finder._apply` for one candidate, in place: updated with ``hit`` on ``layer``."""
        chi2 = _update1(pred, pcov, hit, det[0], det[1], st, cv)
        info[_CHI2] += chi2
        info[_POS] = det[2][hit]
        info[_BARREL] = 1.0 if det[5][layer] else 0.0
        info[_LAYER] = layer
        nh = np.int64(info[_NH])
        hh[min(nh, max_hits - 1)] = hit
        info[_NH] = min(nh + 1, max_hits)

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _overlaps1(st, cv, info, hh, layer, det, n_sigma, chi2_max, curvature, overlaps, max_hits, scratch):
        """`kalman.Finder.overlap` for one candidate just updated on ``layer``: the best hit of an overlapping
        module, up to ``overlaps`` times, each search leaving out the modules of the candidate's last hits."""
        best_h, best_p, best_v, best_x, pred, pcov, jac, tmp, exclude = scratch
        module = det[3]
        for j in range(overlaps):
            nh = np.int64(info[_NH])
            for i in range(j + 1):
                exclude[i] = module[hh[max(nh - 1 - i, 0)]]
            if _search1(det, layer, st, cv, info[_BARREL] > 0.5, info[_POS], n_sigma, chi2_max, curvature, exclude,
                        j + 1, 1, best_h, best_p, best_v, best_x, pred, pcov, jac, tmp) == 0:
                break
            _take_hit(st, cv, info, hh, best_p[0], best_v[0], best_h[0], layer, det, max_hits)

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def start(trip, psi, cot, qpt, det, curvature, chi2_max, n_sigma, overlaps, from_first, mass,
              max_hits):
        """`kalman.Finder.start` (and `_back_to_first` with ``from_first``) for the seeds (hit numbers ``trip``
        (n, 3), ``psi``, ``cot``, ``qpt``): returns (started, state, cov, info, hits) per seed, ``started`` False
        for a seed that failed its second or third hit."""
        n = trip.shape[0]
        meas, var, surface, hit_layer = det[0], det[1], det[2], det[4]
        lay_barrel, lay_x0 = det[5], det[9]
        ok_out = np.zeros(n, np.bool_)
        o_st = np.zeros((n, 5))
        o_cv = np.zeros((n, 5, 5))
        o_info = np.zeros((n, 6))
        o_hh = np.full((n, max_hits), -1, np.int32)
        best_h = np.empty(1, np.int64)
        best_p = np.empty((1, 5))
        best_v = np.empty((1, 5, 5))
        best_x = np.empty(1)
        pred, pcov, jac, tmp = np.empty(5), np.empty((5, 5)), np.empty((5, 5)), np.empty((5, 5))
        exclude = np.empty(max(overlaps, 1) + 1, np.int64)
        scratch = (best_h, best_p, best_v, best_x, pred, pcov, jac, tmp, exclude)
        t_st, t_cv = np.empty(5), np.empty((5, 5))
        for q in range(n):
            b = trip[q, 0]
            st, cv, info, hh = o_st[q], o_cv[q], o_info[q], o_hh[q]
            st[0], st[1], st[2], st[3], st[4] = meas[b, 0], meas[b, 1], psi[q], cot[q], qpt[q]
            cv[0, 0], cv[0, 1], cv[1, 0], cv[1, 1] = var[b, 0, 0], var[b, 0, 1], var[b, 1, 0], var[b, 1, 1]
            cv[2, 2] = 0.02 ** 2
            one_t2 = 1.0 + cot[q] ** 2
            p = min(1.0 / max(abs(qpt[q]), 1e-3), 1000.0) * np.sqrt(one_t2)
            cv[3, 3] = ((3.0 * _highland1(p, 0.02 * np.sqrt(one_t2), 0.13957) + 0.002) * one_t2) ** 2
            cv[4, 4] = (0.3 * abs(qpt[q]) + 0.05) ** 2
            layer = hit_layer[b]
            hh[0] = b
            info[_BARREL] = 1.0 if lay_barrel[layer] else 0.0
            info[_POS], info[_LAYER], info[_NH], info[_CHI2], info[_HOLES] = surface[b], layer, 1.0, 0.0, 0.0
            _overlaps1(st, cv, info, hh, layer, det, n_sigma, chi2_max, curvature, overlaps, max_hits, scratch)
            _scatter1(st, cv, layer, lay_barrel, lay_x0, mass)
            alive = True
            for j in (1, 2):
                hj = trip[q, j]
                lj = hit_layer[hj]
                good, _ = _transport1(st, cv, info[_BARREL] > 0.5, info[_POS], lay_barrel[lj], surface[hj], curvature,
                                      t_st, t_cv, jac, tmp)
                chi2 = _update1(t_st, t_cv, hj, meas, var, st, cv)
                if not (good and np.isfinite(chi2) and chi2 < 2 * chi2_max):
                    alive = False
                    break
                info[_CHI2] += chi2
                info[_BARREL] = 1.0 if lay_barrel[lj] else 0.0
                info[_POS], info[_LAYER] = surface[hj], lj
                nh = np.int64(info[_NH])
                hh[nh] = hj
                info[_NH] = nh + 1
                _overlaps1(st, cv, info, hh, lj, det, n_sigma, chi2_max, curvature, overlaps, max_hits, scratch)
                _scatter1(st, cv, lj, lay_barrel, lay_x0, mass)
            if alive and from_first:  # back along the helix to the first hit's surface
                lf = hit_layer[b]
                good, _ = _transport1(st, cv, info[_BARREL] > 0.5, info[_POS], lay_barrel[lf], surface[b], curvature,
                                      t_st, t_cv, jac, tmp)
                for i in range(5):
                    good = good and np.isfinite(t_st[i])
                alive = good
                st[:] = t_st
                cv[:] = t_cv
                info[_BARREL] = 1.0 if lay_barrel[lf] else 0.0
                info[_POS], info[_LAYER] = surface[b], lf
            ok_out[q] = alive
        return ok_out, o_st, o_cv, o_info, o_hh

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def advance(a_st, a_cv, a_info, a_hh, det, curvature, chi2_max, n_sigma, n_branches, max_holes, overlaps,
                inward, mass, max_hits):
        """One step of `kalman.Finder._advance` for the candidates (state, covariance, ``info`` (barrel, surface
        position, layer, hits, chi2, holes), hit rows): to the next layer, search, branch on the ``n_branches``
        best hits (each then taking an overlapping module's hit, `_overlaps1`) or go on with a hole, the layer's
        scattering. Returns (went on: parent, state, cov, info, hits; finished: parent, state, cov, info, hits),
        ``parent`` the candidate each came from; the finished are those that left the detector or were lost on
        the way (as they were) and those with more than ``max_holes`` holes."""
        n = a_st.shape[0]
        lay_barrel, lay_position, lay_lo, lay_hi, lay_x0 = det[5], det[6], det[7], det[8], det[9]
        kb = max(n_branches, 1)
        cap = n * kb
        b_par = np.empty(cap, np.int64)
        b_st, b_cv, b_info = np.empty((cap, 5)), np.empty((cap, 5, 5)), np.empty((cap, 6))
        b_hh = np.empty((cap, max_hits), np.int32)
        f_par = np.empty(n + cap, np.int64)
        f_st, f_cv, f_info = np.empty((n + cap, 5)), np.empty((n + cap, 5, 5)), np.empty((n + cap, 6))
        f_hh = np.empty((n + cap, max_hits), np.int32)
        best_h = np.empty(kb, np.int64)
        best_p = np.empty((kb, 5))
        best_v = np.empty((kb, 5, 5))
        best_x = np.empty(kb)
        hits_k, pred_k, pcov_k = np.empty(kb, np.int64), np.empty((kb, 5)), np.empty((kb, 5, 5))
        pred, pcov, jac, tmp = np.empty(5), np.empty((5, 5)), np.empty((5, 5)), np.empty((5, 5))
        exclude = np.empty(max(overlaps, 1) + 1, np.int64)
        scratch = (best_h, best_p, best_v, best_x, pred, pcov, jac, tmp, exclude)
        t_st, t_cv = np.empty(5), np.empty((5, 5))
        c_st, c_cv, c_info = np.empty(5), np.empty((5, 5)), np.empty(6)
        by_r, by_z = layer_orders(lay_barrel, lay_position)
        m = 0
        nf = 0
        for c in range(n):
            st, cv, info = a_st[c], a_cv[c], a_info[c]
            nl, _ = _next_layer1(st, info[_BARREL] > 0.5, info[_POS], np.int64(info[_LAYER]), curvature, lay_barrel,
                                 lay_position, lay_lo, lay_hi, inward, by_r, by_z)
            good = nl >= 0
            if good:
                good, _ = _transport1(st, cv, info[_BARREL] > 0.5, info[_POS], lay_barrel[nl], lay_position[nl],
                                      curvature, t_st, t_cv, jac, tmp)
            if not good:  # left the detector, or lost on the way: finished as it was
                f_par[nf] = c
                f_st[nf], f_cv[nf], f_info[nf], f_hh[nf] = st, cv, info, a_hh[c]
                nf += 1
                continue
            c_st[:] = t_st
            c_cv[:] = t_cv
            c_info[:] = info
            c_info[_BARREL] = 1.0 if lay_barrel[nl] else 0.0
            c_info[_POS] = lay_position[nl]
            k = _search1(det, nl, c_st, c_cv, lay_barrel[nl], lay_position[nl], n_sigma, chi2_max, curvature, exclude,
                         0, kb, best_h, best_p, best_v, best_x, pred, pcov, jac, tmp)
            first = m
            if k == 0:  # a hole
                b_par[m] = c
                b_st[m], b_cv[m], b_info[m], b_hh[m] = c_st, c_cv, c_info, a_hh[c]
                b_info[m, _HOLES] += 1.0
                b_info[m, _LAYER] = nl
                m += 1
            else:
                hits_k[:k] = best_h[:k]  # the overlaps' searches below use best_*
                pred_k[:k] = best_p[:k]
                pcov_k[:k] = best_v[:k]
                for i in range(k):
                    b_par[m] = c
                    b_st[m], b_cv[m], b_info[m], b_hh[m] = c_st, c_cv, c_info, a_hh[c]
                    _take_hit(b_st[m], b_cv[m], b_info[m], b_hh[m], pred_k[i], pcov_k[i], hits_k[i], nl, det, max_hits)
                    _overlaps1(b_st[m], b_cv[m], b_info[m], b_hh[m], nl, det, n_sigma, chi2_max, curvature, overlaps,
                               max_hits, scratch)
                    m += 1
            for i in range(first, m):  # the layer's scattering; too many holes: finished
                _scatter1(b_st[i], b_cv[i], np.int64(b_info[i, _LAYER]), lay_barrel, lay_x0, mass)
        keep = np.empty(m, np.bool_)
        for i in range(m):
            keep[i] = b_info[i, _HOLES] <= max_holes
            if not keep[i]:
                f_par[nf] = b_par[i]
                f_st[nf], f_cv[nf], f_info[nf], f_hh[nf] = b_st[i], b_cv[i], b_info[i], b_hh[i]
                nf += 1
        idx = np.flatnonzero(keep)
        return (b_par[idx], b_st[idx], b_cv[idx], b_info[idx], b_hh[idx],
                f_par[:nf].copy(), f_st[:nf].copy(), f_cv[:nf].copy(), f_info[:nf].copy(), f_hh[:nf].copy())

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def resolve(hits, nh, order, min_hits, min_free, used):
        """The loop of `ambiguity.resolve`: the tracks (rows of ``hits``, ``nh`` hits each) in ``order``, each
        keeping its hits ``used`` does not hold when there are at least ``min_hits`` (per track) and ``min_free``
        of its hits; ``used`` filled in place. Returns (track, hit) of the hits kept."""
        total = 0
        for i in range(hits.shape[0]):
            total += nh[i]
        out_t = np.empty(total, np.int64)
        out_h = np.empty(total, np.int64)
        m = 0
        for i in order:
            k = 0
            for j in range(nh[i]):
                if not used[hits[i, j]]:
                    k += 1
            if k < min_hits[i] or k < min_free * nh[i]:
                continue
            start = m
            for j in range(nh[i]):
                h = hits[i, j]
                if not used[h]:
                    out_t[m] = i
                    out_h[m] = h
                    m += 1
            for j in range(start, m):
                used[out_h[j]] = True
        return out_t[:m].copy(), out_h[:m].copy()
