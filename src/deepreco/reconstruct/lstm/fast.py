"""The grid seeding's hot loop compiled with numba (optional): one clustering's seed candidates in one call.

`seeding.grid_seeds` clusters the event's inner hits thousands of times (one DBSCAN per arc hypothesis) and
takes a candidate seed from each cluster; NumPy spends most of that on its per-operation overhead (sorts and
bincounts over the whole event for a few hundred small clusters). Here each cluster is cleaned (one hit per
module), ordered, and its best five hits found by helix fits, in one pass. The steps and their order are those
of `seeding.cluster_candidates` (which machines without numba run; `tests/test_lstm_seeding.py` compares the two).
"""

from __future__ import annotations

import numpy as np

try:  # numba is optional (the ``fast`` extra)
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

HAVE_NUMBA = numba is not None

if HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True, inline="always")
    def _wrap(a):
        return np.arctan2(np.sin(a), np.cos(a))

    # inlined: a cached function calling another cached one, both compiled by processes at once (pytest's workers),
    # is a known source of segmentation faults in numba's cache (numba issue #4807)
    @numba.njit(cache=True, nogil=True, boundscheck=True, inline="always")
    def _helix_score(x, y, z, s, max_across, max_z, bound):
        """`seeding.helix_residuals` of one point set, as max(across / max_across, z / max_z); ``s`` is scratch
        space of the points' length. When the across part alone reaches ``bound``, that part is returned."""
        n = len(x)
        s00 = s01 = s11 = b0 = b1 = 0.0
        for i in range(n):
            ax, ay = 2.0 * x[i], 2.0 * y[i]
            r2 = x[i] * x[i] + y[i] * y[i]
            s00 += ax * ax
            s01 += ax * ay
            s11 += ay * ay
            b0 += ax * r2
            b1 += ay * r2
        s00 += 1e-9
        s11 += 1e-9
        det = s00 * s11 - s01 * s01
        a = (s11 * b0 - s01 * b1) / det
        b = (s00 * b1 - s01 * b0) / det
        radius = np.hypot(a, b)
        across = 0.0
        for i in range(n):
            ux, uy = x[i] - a, y[i] - b
            across = max(across, abs(np.hypot(ux, uy) - radius))
            # the turn from the origin to the point about the centre: atan2 of the cross and dot products of
            # (-a, -b) and (ux, uy), the same angle as NumPy's wrapped difference of two azimuths
            s[i] = radius * abs(np.arctan2(-a * uy + b * ux, -a * ux - b * uy))
        if across / max_across >= bound:
            return across / max_across
        ms, mz = s.mean(), z.mean()
        sdz = sss = 0.0
        for i in range(n):
            sdz += (s[i] - ms) * (z[i] - mz)
            sss += (s[i] - ms) * (s[i] - ms)
        slope = sdz / max(sss, 1e-9)
        dz = 0.0
        for i in range(n):
            dz = max(dz, abs((z[i] - mz) - slope * (s[i] - ms)))
        return max(across / max_across, dz / max_z)

    @numba.njit(cache=True, nogil=True, boundscheck=True)
    def cluster_candidates(labels, phi, module, layer, dist, x, y, z, combos, min_size, max_size, max_first_radius,
                           max_across, max_z):
        """The seed candidates of one clustering (see `seeding.cluster_candidates`): (seeds (m, n) point rows,
        scores (m,), their clusters (m,), member offsets (m + 1,), members (the rows of each candidate's cluster
        after the one-hit-per-module cleaning))."""
        n = len(labels)
        n_seed = combos.shape[1]
        window = combos.max() + 1
        n_clusters = labels.max() + 1 if n else 0
        size = np.zeros(max(n_clusters, 0), np.int64)
        for i in range(n):
            if labels[i] >= 0:
                size[labels[i]] += 1
        start = np.zeros(max(n_clusters, 0) + 1, np.int64)
        for c in range(n_clusters):
            start[c + 1] = start[c] + size[c]
        rows = np.empty(start[-1], np.int64)
        fill = start[:-1].copy()
        for i in range(n):
            if labels[i] >= 0:
                rows[fill[labels[i]]] = i
                fill[labels[i]] += 1
        seeds = np.empty((n_clusters, n_seed), np.int64)
        scores = np.empty(n_clusters)
        cluster = np.empty(n_clusters, np.int64)
        offsets = np.zeros(n_clusters + 1, np.int64)
        members = np.empty(start[-1], np.int64)
        largest = size.max() if n_clusters > 0 else 0
        d = np.empty(largest)
        kept = np.empty(largest, np.int64)
        ordered = np.empty(largest, np.int64)
        px, py, pz, scratch = np.empty(n_seed), np.empty(n_seed), np.empty(n_seed), np.empty(n_seed)
        m = 0
        for c in range(n_clusters):
            if size[c] < min_size:
                continue
            hits = rows[start[c]:start[c + 1]]
            k = len(hits)
            sc = ss = 0.0
            for i in range(k):
                sc += np.cos(phi[hits[i]])
                ss += np.sin(phi[hits[i]])
            centre = np.arctan2(ss, sc)
            for i in range(k):
                d[i] = abs(_wrap(phi[hits[i]] - centre))
            n_kept = 0
            for i in range(k):  # one hit per module: the nearest the centre, the first of equals
                keep = True
                for j in range(k):
                    if j != i and module[hits[j]] == module[hits[i]] and (d[j] < d[i] or (d[j] == d[i] and j < i)):
                        keep = False
                        break
                if keep:
                    kept[n_kept] = hits[i]
                    n_kept += 1
            if n_kept < min_size or n_kept > max_size:
                continue
            # outward order (ties by row: an insertion sort is stable), then one hit per layer: a hit on the
            # layer of the one before it goes
            for i in range(1, n_kept):
                h = kept[i]
                j = i - 1
                while j >= 0 and dist[kept[j]] > dist[h]:
                    kept[j + 1] = kept[j]
                    j -= 1
                kept[j + 1] = h
            count = 0
            for i in range(n_kept):
                if i > 0 and layer[kept[i]] == layer[kept[i - 1]]:
                    continue
                ordered[count] = kept[i]
                count += 1
            if count < n_seed:
                continue
            w = min(count, window)
            best, chosen = np.inf, -1
            for q in range(combos.shape[0]):
                if combos[q, n_seed - 1] >= w:
                    continue
                for i in range(n_seed):
                    h = ordered[combos[q, i]]
                    px[i], py[i], pz[i] = x[h], y[h], z[h]
                score = _helix_score(px, py, pz, scratch, max_across, max_z, min(best, 1.0))
                if score < best:
                    best, chosen = score, q
            if not best < 1.0:
                continue
            first = ordered[combos[chosen, 0]]
            if np.hypot(x[first], y[first]) >= max_first_radius:
                continue
            for i in range(n_seed):
                seeds[m, i] = ordered[combos[chosen, i]]
            scores[m] = best
            cluster[m] = c
            offsets[m + 1] = offsets[m] + n_kept
            members[offsets[m]:offsets[m + 1]] = np.sort(kept[:n_kept])  # the cleaned cluster's rows, in order
            m += 1
        return seeds[:m], scores[:m], cluster[:m], offsets[:m + 1], members[:offsets[m]]
