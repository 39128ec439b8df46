"""k nearest neighbours for the graph layers, exact, with nothing to build: numba compiles the fast path when
it is installed, and SciPy / torch stand in when it is not.

The neighbour indices carry no gradient (the layers recompute distances from the gathered coordinates), so
they may come from anywhere. Three ways, the same neighbours up to ties (tested against the brute force):

- ``"tree"`` (the default when numba is installed): an all-points kNN over a median-split KD tree compiled
  with numba. The points of each leaf search the tree together: a node farther from the leaf's box than the
  leaf's current worst k-th distance is skipped, and in a reached leaf each point first checks the leaf's box
  against its own k-th distance; distances are computed a leaf at a time in loops that vectorise. In many
  dimensions (DGCNN's 64 features) the tree is built on the first ``PROJECT_DIMS`` principal axes plus the
  norm of the remaining coordinates: distances there never exceed the true ones, so the pruning stays exact
  while every distance compared is the full one. Measured on one core, the shipped GravNet's 4D spaces of a
  110,530-hit event: 0.15 to 0.25 s a layer against 0.27 to 0.41 s for SciPy's cKDTree; DGCNN's 64D features
  of a 32,560-hit event: 0.5 to 1 s a layer against 12 s for the brute force.
- ``"scipy"``: SciPy's cKDTree in up to ``KDTREE_MAX_DIM`` dimensions, chunked ``torch.cdist`` + ``topk``
  above (quadratic); the fallback without numba.
- ``"brute"``: chunked ``torch.cdist`` + ``topk`` always, the reference.

Each point is its own first neighbour (the tree guarantees it; the others put it first unless another point
coincides with it); a graph with fewer than k points pads with the point itself. The tree ranks by the float64
squared distance summed over the coordinates in order, equal distances by index: the rule the exported
networks' search (`deepreco.export.knn`) follows too, so that both find the same neighbours.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

try:  # numba is optional: without it the SciPy / torch paths give the same neighbours, slower
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

KDTREE_MAX_DIM = 8
CHUNK = 2048
LEAF_SIZE = 32  # points a leaf, in few dimensions; twice that in many (measured fastest on the shipped models)
PROJECT_DIMS = 6  # principal axes the tree splits in many dimensions (measured: 4 to 8 alike, 16 slower)
METHODS = ("tree", "scipy", "brute")
HAVE_NUMBA = numba is not None


def _segments(batch: torch.Tensor | None, n: int) -> list[tuple[int, int]]:
    if batch is None or n == 0:
        return [(0, n)]
    if batch.dim() != 1 or len(batch) != n:
        raise ValueError(f"batch must be one graph index per point ({n}), got shape {tuple(batch.shape)}")
    if n > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted (the points of each graph contiguous)")
    counts = torch.bincount(batch).tolist()
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def default_method() -> str:
    return "tree" if HAVE_NUMBA else "scipy"


def knn(x: torch.Tensor, k: int, batch: torch.Tensor | None = None, method: str | None = None) -> torch.Tensor:
    """(n, k) long tensor: for each point the indices of its k nearest points of the same graph (sorted
    ``batch``), itself first. ``method``: "tree" (needs numba), "scipy" or "brute"; by default the fastest
    there is."""
    method = method or default_method()
    if method not in METHODS:
        raise ValueError(f"knn method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "tree" and not HAVE_NUMBA:
        raise ValueError("knn method 'tree' needs numba (pip install numba); use 'scipy' or 'brute'")
    if x.dim() != 2:
        raise ValueError(f"knn expects an (n, d) tensor, got shape {tuple(x.shape)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n = x.shape[0]
    out = torch.empty((n, k), dtype=torch.long, device=x.device)
    xd = x.detach()
    if n and not bool(torch.isfinite(xd).all()):
        raise ValueError("knn: the points have NaN or infinite coordinates")
    for a, b in _segments(batch, n):
        m = b - a
        if m == 0:
            continue
        kk = min(k, m)
        if method == "tree":
            idx = torch.as_tensor(tree_knn(xd[a:b].cpu().double().numpy(), kk), device=x.device)
        elif method == "scipy" and xd.shape[1] <= KDTREE_MAX_DIM:
            pts = xd[a:b].cpu().double().numpy()
            _, idx = cKDTree(pts).query(pts, k=kk)
            idx = torch.as_tensor(np.asarray(idx).reshape(m, kk), device=x.device)
        else:
            parts = []
            seg = xd[a:b]
            for s in range(0, m, CHUNK):
                d = torch.cdist(seg[s:s + CHUNK], seg)
                parts.append(d.topk(kk, dim=1, largest=False).indices)
            idx = torch.cat(parts)
        if kk < k:
            idx = torch.cat([idx, idx[:, :1].expand(m, k - kk)], dim=1)
        out[a:b] = idx + a
    return out


def tree_knn(points: np.ndarray, k: int, leaf_size: int | None = None, project_dims: int = PROJECT_DIMS
             ) -> np.ndarray:
    """(n, k) int64: the exact k nearest neighbours of every point among ``points`` (n, d), itself first,
    the others by increasing distance. Needs numba."""
    pts = np.ascontiguousarray(points, dtype=np.float64)
    n, d = pts.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be within 1..{n}, got {k}")
    leaf_size = leaf_size or (LEAF_SIZE if d <= KDTREE_MAX_DIM else 2 * LEAF_SIZE)
    slack = 0.0
    if d > KDTREE_MAX_DIM:
        # rotate onto the principal axes (distances unchanged), the widest first: the tree takes the first
        # project_dims, and a distance summed over the rest stops as soon as it passes the k-th
        centred = pts - pts.mean(0)
        # in torch, on torch's threads: numpy's OpenBLAS takes every core whatever --threads says, and with the
        # other core busy its threads wait for each other (measured: a 32 x 32 eigh 55 ms against 0.16 ms on one
        # thread, 80 % of a DRN training step)
        c = torch.from_numpy(centred)
        vecs = torch.linalg.eigh(c.T @ c)[1].numpy()
        rotated = centred @ vecs[:, ::-1]
        # and one more tree axis, the norm of the rest: |rest_a| - |rest_b| never exceeds |rest_a - rest_b|
        rest = np.sqrt((rotated[:, project_dims:] ** 2).sum(1))
        tree_pts = np.ascontiguousarray(np.column_stack([rotated[:, :project_dims], rest]))
        # the rotation's rounding (a few d float64 epsilons of the points' norms) may put two points farther
        # apart in the tree's space than their computed distance: the tree prunes only beyond that slack, and
        # ranks by the distances of the points as given (the exported search's arithmetic, bit for bit)
        slack = 1e-12 * d * (1.0 + float(np.abs(centred).max(initial=0.0)))
    else:
        tree_pts = pts
    use_threads()
    return _all_knn(tree_pts, pts, k, max(int(leaf_size), 2), slack)


def use_threads() -> None:
    """numba's parallel loops take as many threads as torch is set to (``torch.set_num_threads``).

    The first call starts numba's thread pool, which (OpenMP layer) sets the OpenMP thread count of the libgomp
    that torch shares to NUMBA_NUM_THREADS (the cores): torch then ran on every core whatever ``--threads``
    said, and a calorimeter training's losses moved in their last bits with the machine's load. torch's count
    is put back."""
    n = torch.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


if HAVE_NUMBA:
    @numba.njit(cache=True, nogil=True)
    def _select(perm, key, lo, hi, kth):
        """Reorder perm[lo:hi] and key[lo:hi] (the key of each position) alike so that position kth holds
        its sorted element, smaller keys before, larger after."""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            a, b, c = key[lo], key[mid], key[hi - 1]
            pivot = max(min(a, b), min(max(a, b), c))
            # three-way partition (Dijkstra), safe with many equal keys
            lt, i, gt = lo, lo, hi
            while i < gt:
                v = key[i]
                if v < pivot:
                    perm[lt], perm[i] = perm[i], perm[lt]
                    key[lt], key[i] = key[i], key[lt]
                    lt += 1
                    i += 1
                elif v > pivot:
                    gt -= 1
                    perm[gt], perm[i] = perm[i], perm[gt]
                    key[gt], key[i] = key[i], key[gt]
                else:
                    i += 1
            if kth < lt:
                hi = lt
            elif kth >= gt:
                lo = gt
            else:
                return

    @numba.njit(cache=True, nogil=True)
    def _build(tp, leaf_size):
        """A median-split tree over tp (n, m): the point order and, per node, its range, children and box."""
        n, m = tp.shape
        cap = 4 * (n // max(leaf_size // 2, 1) + 2)
        start = np.empty(cap, np.int64)
        end = np.empty(cap, np.int64)
        left = np.full(cap, -1, np.int64)
        right = np.full(cap, -1, np.int64)
        lo = np.empty((cap, m))
        hi = np.empty((cap, m))
        perm = np.arange(n)
        key = np.empty(n)
        stack = np.empty(cap, np.int64)
        start[0], end[0] = 0, n
        n_nodes, top = 1, 1
        stack[0] = 0
        while top > 0:
            top -= 1
            node = stack[top]
            a, b = start[node], end[node]
            for c in range(m):
                lo[node, c] = np.inf
                hi[node, c] = -np.inf
            for i in range(a, b):
                p = perm[i]
                for c in range(m):
                    v = tp[p, c]
                    if v < lo[node, c]:
                        lo[node, c] = v
                    if v > hi[node, c]:
                        hi[node, c] = v
            if b - a <= leaf_size:
                continue
            dim, spread = 0, -1.0
            for c in range(m):
                if hi[node, c] - lo[node, c] > spread:
                    dim, spread = c, hi[node, c] - lo[node, c]
            if spread <= 0.0:
                continue  # all points equal: one leaf, however large
            for i in range(a, b):
                key[i] = tp[perm[i], dim]
            mid = (a + b) // 2
            _select(perm, key, a, b, mid)
            left[node], right[node] = n_nodes, n_nodes + 1
            start[n_nodes], end[n_nodes] = a, mid
            start[n_nodes + 1], end[n_nodes + 1] = mid, b
            stack[top], stack[top + 1] = n_nodes, n_nodes + 1
            top += 2
            n_nodes += 2
        return perm, start[:n_nodes], end[:n_nodes], left[:n_nodes], right[:n_nodes], lo[:n_nodes], hi[:n_nodes]

    @numba.njit(cache=True, nogil=True)
    def _box_gap2(lo, hi, a, b):
        """Squared distance between the boxes of nodes a and b (0 when they overlap)."""
        s = 0.0
        for c in range(lo.shape[1]):
            g = lo[b, c] - hi[a, c]
            if g < 0.0:
                g = lo[a, c] - hi[b, c]
            if g > 0.0:
                s += g * g
        return s

    @numba.njit(cache=True, nogil=True)
    def _widen(worst, slack):
        """A squared distance ``worst`` widened by ``slack`` (a distance): what the tree's space may exceed."""
        if slack == 0.0 or worst == np.inf:
            return worst
        r = np.sqrt(max(worst, 0.0)) + slack
        return r * r

    @numba.njit(cache=True, nogil=True, parallel=True)
    def _all_knn(tp, fp, k, leaf_size, slack):
        n, m = tp.shape
        full = fp.shape[1] != m  # the tree's space is a projection of fp's: distances from fp
        perm, start, end, left, right, lo, hi = _build(tp, leaf_size)
        n_nodes = len(start)
        # points in tree order; the tree coordinates column-wise so that the distance loops vectorise
        tt = np.empty((m, n))
        for c in range(m):
            for r in range(n):
                tt[c, r] = tp[perm[r], c]
        ft = np.empty((n, fp.shape[1]))
        if full:
            for r in range(n):
                ft[r] = fp[perm[r]]
        out = np.empty((n, k), np.int64)
        big = 0
        n_leaves = 0
        for node in range(n_nodes):
            if left[node] < 0:
                big = max(big, end[node] - start[node])
                n_leaves += 1
        leaves = np.empty(n_leaves, np.int64)
        n_leaves = 0
        for node in range(n_nodes):
            if left[node] < 0:
                leaves[n_leaves] = node
                n_leaves += 1
        # the leaves search in parallel (numba's thread count), each with its own buffers; each writes its
        # own points' rows of out
        for li in numba.prange(n_leaves):
            q = leaves[li]
            dist = np.empty((big, k))
            nbr = np.empty((big, k), np.int64)
            buf = np.empty(big)
            stack = np.empty(n_nodes + 2, np.int64)
            qa, qb = start[q], end[q]
            nq = qb - qa
            for i in range(nq):
                for j in range(k):
                    dist[i, j] = np.inf
                    nbr[i, j] = -1
                dist[i, 0] = -1.0  # itself first, whatever ties there are
                nbr[i, 0] = qa + i
            bound = np.inf
            top = 1
            stack[0] = 0
            while top > 0:
                top -= 1
                node = stack[top]
                if _box_gap2(lo, hi, q, node) > _widen(bound, slack):
                    continue
                if left[node] >= 0:
                    # the nearer child last, so that it is searched first and tightens the bound sooner
                    g_l = _box_gap2(lo, hi, q, left[node])
                    g_r = _box_gap2(lo, hi, q, right[node])
                    if g_l <= g_r:
                        stack[top] = right[node]
                        stack[top + 1] = left[node]
                    else:
                        stack[top] = left[node]
                        stack[top + 1] = right[node]
                    top += 2
                    continue
                ra, rb = start[node], end[node]
                nr = rb - ra
                for i in range(nq):
                    qi = qa + i
                    worst = dist[i, k - 1]
                    wide = _widen(worst, slack)  # the bound in the tree's space
                    # the point's own gap to the leaf's box first (in tree space, never above the distance)
                    g = 0.0
                    for c in range(m):
                        v = tt[c, qi]
                        if v < lo[node, c]:
                            g += (lo[node, c] - v) ** 2
                        elif v > hi[node, c]:
                            g += (v - hi[node, c]) ** 2
                    if g > wide:
                        continue
                    for r in range(nr):
                        buf[r] = 0.0
                    for c in range(m):
                        v = tt[c, qi]
                        for r in range(nr):
                            t = tt[c, ra + r] - v
                            buf[r] += t * t
                    for r in range(nr):
                        s = buf[r]
                        if s > wide or ra + r == qi:
                            continue
                        pr = perm[ra + r]
                        if full:  # the tree's space gave a lower bound; now the distance itself
                            s = 0.0
                            for c0 in range(0, ft.shape[1], 8):
                                for c in range(c0, min(c0 + 8, ft.shape[1])):
                                    t = ft[qi, c] - ft[ra + r, c]
                                    s += t * t
                                if s > worst:
                                    break
                        # (distance, index) order: an equal distance goes to the lower index
                        if s > worst or (s == worst and nbr[i, k - 1] >= 0 and perm[nbr[i, k - 1]] < pr):
                            continue
                        j = k - 1
                        while j > 0 and (dist[i, j - 1] > s or (dist[i, j - 1] == s and perm[nbr[i, j - 1]] > pr)):
                            dist[i, j] = dist[i, j - 1]
                            nbr[i, j] = nbr[i, j - 1]
                            j -= 1
                        dist[i, j] = s
                        nbr[i, j] = ra + r
                        worst = dist[i, k - 1]
                        wide = _widen(worst, slack)
                bound = 0.0
                for i in range(nq):
                    if dist[i, k - 1] > bound:
                        bound = dist[i, k - 1]
            for i in range(nq):
                for j in range(k):
                    out[perm[qa + i], j] = perm[nbr[i, j]]
        return out
