"""DBSCAN of unrolled hits compiled with numba (optional): scikit-learn's labels, on a grid of cells.

The points DBSCAN clusters for seed 004 are (cos phi0, sin phi0, w): they lie on a cylinder, so a 2-d grid of
(phi0, w) cells at least eps wide holds every neighbour of a point in its own and the 8 cells around it (a chord
of at most eps spans an arc of at most eps (1 + eps^2 / 24), so the cells are made a little wider than eps; on a
small point set the phi columns are wider still, so that the cells do not far outnumber the points). The points
are sorted by cell once (a counting sort), each cell's neighbours are three runs of consecutive points, and the
three passes (neighbours counted, core points joined, border points labelled) read them in order. scikit-learn's
DBSCAN builds a tree and lists every neighbourhood: on the 95,441 hits of an event simulated from TrackML list
1001 one clustering took 0.33 s there and 0.02 s here (one thread; `tests/test_lstm_seeding.py` checks that the
labels are the same).

The labels are scikit-learn's: clusters numbered in the order of their first core point (by index), a border
point in the cluster of lowest number among its core neighbours, noise -1; a point is core with at least
``min_samples`` points (itself included) within eps.
"""

from __future__ import annotations

import numpy as np

try:  # numba is optional (the ``fast`` extra): without it dbscan.cylinder_dbscan runs scikit-learn's DBSCAN
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

HAVE_NUMBA = numba is not None

if HAVE_NUMBA:

    # inlined: a cached function calling another cached one, both compiled by processes at once (pytest's workers),
    # is a known source of segmentation faults in numba's cache (numba issue #4807)
    @numba.njit(cache=True, nogil=True, boundscheck=True, inline="always")
    def _find(parent, i):
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            nxt = parent[i]
            parent[i] = root
            i = nxt
        return root

    @numba.njit(cache=True, nogil=True, inline="always")
    def _run(pc, wc, dp, nphi, nw):
        """The first cell (as a flat index) and one past the last of the w run next to cell (pc, wc) at phi
        offset dp; (0, 0) when dp names the same phi column twice (fewer than 3 columns)."""
        if nphi < 3 and dp != 0:
            return 0, 0
        q = pc + dp
        if q < 0:
            q += nphi
        elif q >= nphi:
            q -= nphi
        return q * nw + max(wc - 1, 0), q * nw + min(wc + 1, nw - 1) + 1

    @numba.njit(cache=True, nogil=True, boundscheck=True)
    def dbscan_cylinder(phi, w, eps, min_samples, max_w_cells=1024):
        """DBSCAN labels (-1: noise) of the points (cos phi, sin phi, w) with scikit-learn's eps and
        min_samples. w cells beyond a window of ``max_w_cells`` around the middle are merged into the window's
        edge cells (more candidates there, the same labels: distances decide)."""
        n = len(phi)
        labels = np.full(n, -1, np.int64)
        if n == 0:
            return labels
        two_pi = 2.0 * np.pi
        step = eps * (1.0 + 1e-6)
        inv = 1.0 / step
        cw = np.empty(n, np.int64)
        wlo = np.int64(1) << 62
        whi = -wlo
        for i in range(n):
            c = np.int64(np.floor(w[i] * inv))
            cw[i] = c
            wlo = min(wlo, c)
            whi = max(whi, c)
        lo = max(wlo, (wlo + whi) // 2 - max_w_cells // 2)
        hi = min(whi, lo + max_w_cells - 1)
        nw = hi - lo + 1
        # phi columns at least step wide; fewer on a small point set (about 8 points a column of a full w range:
        # the cells' starts are counted and summed at every call, a cost that must not outgrow the points')
        nphi = min(int(two_pi / step), max(3, (8 * n) // nw))
        if nphi < 3:
            nphi = 1
        cp = np.empty(n, np.int64)
        for i in range(n):
            cp[i] = min(int((phi[i] % two_pi) * nphi / two_pi), nphi - 1)
        start = np.zeros(nphi * nw + 1, np.int64)
        for i in range(n):
            cw[i] = min(max(cw[i], lo), hi) - lo
            start[cp[i] * nw + cw[i] + 1] += 1
        for c in range(nphi * nw):
            start[c + 1] += start[c]
        fill = start[:-1].copy()
        order = np.empty(n, np.int64)
        for i in range(n):
            c = cp[i] * nw + cw[i]
            order[fill[c]] = i
            fill[c] += 1
        cs, sn, ww = np.empty(n), np.empty(n), np.empty(n)
        pc, wc = np.empty(n, np.int64), np.empty(n, np.int64)
        for t in range(n):
            i = order[t]
            cs[t], sn[t], ww[t] = np.cos(phi[i]), np.sin(phi[i]), w[i]
            pc[t], wc[t] = cp[i], cw[i]
        eps2 = eps * eps
        count = np.zeros(n, np.int64)
        for t in range(n):
            for dp in range(-1, 2):
                a, b = _run(pc[t], wc[t], dp, nphi, nw)
                for u in range(start[a], start[b]):
                    dx, dy, dz = cs[t] - cs[u], sn[t] - sn[u], ww[t] - ww[u]
                    if dx * dx + dy * dy + dz * dz <= eps2:
                        count[t] += 1
        parent = np.arange(n)
        for t in range(n):
            if count[t] < min_samples:
                continue
            for dp in range(-1, 2):
                a, b = _run(pc[t], wc[t], dp, nphi, nw)
                for u in range(start[a], start[b]):
                    if u <= t or count[u] < min_samples:
                        continue
                    dx, dy, dz = cs[t] - cs[u], sn[t] - sn[u], ww[t] - ww[u]
                    if dx * dx + dy * dy + dz * dz <= eps2:
                        ra, rb = _find(parent, t), _find(parent, u)
                        if ra != rb:
                            parent[max(ra, rb)] = min(ra, rb)
        first = np.full(n, n, np.int64)  # each cluster's first core point, by the points' own index
        for t in range(n):
            if count[t] >= min_samples:
                r = _find(parent, t)
                first[r] = min(first[r], order[t])
        roots = np.flatnonzero(first < n)
        rank = np.argsort(first[roots])
        number = np.full(n, -1, np.int64)
        for i in range(len(rank)):
            number[roots[rank[i]]] = i
        lab = np.full(n, -1, np.int64)
        for t in range(n):
            if count[t] >= min_samples:
                lab[t] = number[_find(parent, t)]
        for t in range(n):
            if count[t] >= min_samples or count[t] < 2:
                continue
            best = -1
            for dp in range(-1, 2):
                a, b = _run(pc[t], wc[t], dp, nphi, nw)
                for u in range(start[a], start[b]):
                    if count[u] < min_samples:
                        continue
                    dx, dy, dz = cs[t] - cs[u], sn[t] - sn[u], ww[t] - ww[u]
                    if dx * dx + dy * dy + dz * dz <= eps2 and (best < 0 or lab[u] < best):
                        best = lab[u]
            lab[t] = best
        for t in range(n):
            labels[order[t]] = lab[t]
        return labels
