"""Tracks from a scored graph: keep the edges over a threshold, split where tracks cross, label components.

1. Overlaps: where two modules of a layer overlap, a track leaves two hits on the layer, and the true graph
   has a diamond (a -> b1, a -> b2, b1 -> c, b2 -> c). Two hits of one layer with a kept edge from a common
   hit and a kept edge to a common hit are merged into one node.
2. Forks: where two tracks cross or share a hit, a node has more than one kept edge toward one side. Each
   node keeps its best-ranked outgoing and incoming edge, and an edge survives when it is both: the best way
   out of its inner node and the best way in to its outer node. This walks every component node by node along
   the highest ranks and cuts the weaker branch of every fork. An edge's rank is its score; with the hits'
   positions, less a penalty for turning: the change of the edge's direction (polar angle and azimuth, in
   radians, times ``turn_weights``) from the best-scored edge into its inner hit and from the best-scored
   edge out of its outer hit. A track that crosses another keeps its straight way when the network scores
   the two branches alike (on two validation events: TrackML score 0.810 -> 0.836).
3. Connected components of the surviving edges are the tracks. A hit left alone by the cut (an overlap hit at
   a track's end, a hit that lost its fork) joins the track of its best kept edge.
4. Breaks: where the filter or the network lost one true edge (or the hit between two layers is missing or
   taken), a track falls into two pieces, the first ending where the second starts one or two layers further
   out, or on the same layer (the two hits of a module overlap, one in each piece). Given ``reserve`` (the
   module-map edges the filter scored low but not hopeless), a piece's outer end and another's inner end are
   joined when a reserve edge, or a path of two, connects them, or, for the two hits of an overlap, a reserve
   edge joins the hit before the first to the second or the first to the hit after the second; and the join
   turns little: the change of direction (``bridge_weights`` as above) from the first piece's last step to the
   join and from the join to the second piece's first step, under ``max_bridge_turn``. Each end joins at most
   once, to its least-turning partner; a second pass joins again among the ends left (on two validation
   events: TrackML score 0.852 -> 0.892, with the second pass 0.896).
   Tracks with fewer than ``min_hits`` hits are then dropped. Each hit ends in at most one track.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def _best_per(node: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` nodes, the index of its best-scored edge (-1: none)."""
    best = np.full(n, -1, np.int64)
    if len(node) == 0:
        return best
    order = np.lexsort((-score, node))
    first = np.ones(len(order), bool)
    first[1:] = node[order][1:] != node[order][:-1]
    best[node[order][first]] = order[first]
    return best


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _sibling_pairs(key: np.ndarray, other: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Pairs (i, j) of ``other`` nodes on one layer that share a ``key`` node, as i * n + j keys (i < j)."""
    order = np.lexsort((other, key))
    key, other = key[order], other[order]
    pairs = []
    for shift in range(1, 4):  # a node has at most a few kept edges to one side
        same = key[shift:] == key[:-shift]
        i, j = other[:-shift][same], other[shift:][same]
        ok = layer[i] == layer[j]
        pairs.append(np.stack([np.minimum(i, j)[ok], np.maximum(i, j)[ok]]))
    return np.concatenate(pairs, axis=1)


def _direction_change(a: np.ndarray, b: np.ndarray, weights: tuple[float, float]) -> np.ndarray:
    """Weighted change of direction (polar angle, azimuth, radians) between step vectors ``a`` and ``b``."""
    theta_a, theta_b = (np.arctan2(np.hypot(d[:, 0], d[:, 1]), d[:, 2]) for d in (a, b))
    dphi = np.angle(np.exp(1j * (np.arctan2(b[:, 1], b[:, 0]) - np.arctan2(a[:, 1], a[:, 0]))))
    return weights[0] * np.abs(theta_b - theta_a) + weights[1] * np.abs(dphi)


def _turn_penalty(src: np.ndarray, dst: np.ndarray, ref: np.ndarray, xyz: np.ndarray,
                  weights: tuple[float, float]) -> np.ndarray:
    """Per edge, the weighted change of direction (polar angle, azimuth) from edge ``ref`` (-1: none)."""
    d = xyz[dst] - xyz[src]
    has = ref >= 0
    out = np.zeros(len(src))
    out[has] = _direction_change(d[ref[has]], d[has], weights)
    return out


def _piece_ends(comp: np.ndarray, xyz: np.ndarray, layer: np.ndarray | None):
    """Per hit, whether it is its piece's inner (outer) end, ordered by distance from the origin, and for an end
    the piece's nearest other hit on another layer (-1: none), which gives the piece's direction there."""
    n = len(comp)
    order = np.lexsort((np.linalg.norm(xyz, axis=1), comp))
    c = comp[order]
    first = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    last = np.flatnonzero(np.r_[c[1:] != c[:-1], True])
    lay = np.arange(n) if layer is None else np.asarray(layer)
    ends, towards = [], []
    for pos, step in ((first, 1), (last, -1)):
        end = np.zeros(n, bool)
        end[order[pos]] = True
        nb = np.full(n, -1, np.int64)
        found = np.full(len(pos), -1, np.int64)
        for k in (1, 2, 3):  # skip the end's overlap sibling on the same layer
            p = np.clip(pos + step * k, 0, n - 1)
            ok = (found < 0) & (c[p] == c[pos]) & (lay[order[p]] != lay[order[pos]])
            found[ok] = order[p[ok]]
        nb[order[pos]] = found
        ends.append(end)
        towards.append(nb)
    return ends[0], towards[0], ends[1], towards[1]


def _bridge(comp: np.ndarray, reserve: np.ndarray, xyz: np.ndarray, layer: np.ndarray | None,
            weights: tuple[float, float], max_turn: float) -> np.ndarray:
    """Join pieces of ``comp``: a piece's outer end x to another's inner end y, when the reserve edges join x to
    y (directly or through one hit), or, with x and y on one layer (overlap siblings), the hit before x to y or
    x to the hit after y; of the joins that turn less than ``max_turn``, each end takes its least-turning."""
    from scipy.sparse import csr_matrix

    n = len(comp)
    is_in, after_in, is_out, before_out = _piece_ends(comp, xyz, layer)
    a, b = reserve
    out_end = is_out[a] & (before_out[a] >= 0)  # edges leaving a piece's outer end that has a direction
    in_end = is_in[b] & (after_in[b] >= 0)  # edges entering a piece's inner end that has a direction
    direct = is_out[a] & is_in[b] & (out_end | in_end)

    def matrix(rows, cols):
        return csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))

    leave, enter = matrix(a[out_end], b[out_end]), matrix(a[in_end], b[in_end])
    # candidates (x, y) and the step (u, v) that joins them
    two = (leave @ enter).tocoo()
    x, y, u, v = [a[direct], two.row], [b[direct], two.col], [a[direct], two.row], [b[direct], two.col]
    if layer is not None:  # overlap siblings x, y on one layer
        ends = np.flatnonzero(is_out & (before_out >= 0))
        starts = np.flatnonzero(is_in & (after_in >= 0))
        before = (matrix(before_out[ends], ends).T @ enter).tocoo()  # the hit before x -> y
        after = (leave @ matrix(after_in[starts], starts)).tocoo()  # x -> the hit after y
        lay = np.asarray(layer)
        for found in ((before.row, before.col, before_out[before.row], before.col),
                      (after.row, after.col, after.row, after_in[after.col])):
            same = lay[found[0]] == lay[found[1]]
            for out, new in zip((x, y, u, v), found, strict=True):
                out.append(new[same])
    x, y, u, v = (np.concatenate(t).astype(np.int64) for t in (x, y, u, v))
    ok = comp[x] != comp[y]
    x, y, u, v = x[ok], y[ok], u[ok], v[ok]
    # the turn from the first piece's last step to the join, and from the join to the second piece's first step
    step = xyz[v] - xyz[u]
    turn = np.zeros(len(x))
    has = before_out[x] >= 0
    turn[has] += _direction_change(xyz[x[has]] - xyz[before_out[x[has]]], step[has], weights)
    has = after_in[y] >= 0
    turn[has] += _direction_change(step[has], xyz[after_in[y[has]]] - xyz[y[has]], weights)
    ok = turn < max_turn
    x, y, turn = x[ok], y[ok], turn[ok]
    best_x = _best_per(x, -turn, n)
    best_y = _best_per(y, -turn, n)
    idx = np.arange(len(x))
    join = (best_x[x] == idx) & (best_y[y] == idx)
    return _components(n, comp[x[join]], comp[y[join]])[comp]


def build_tracks(n_hits: int, edges: np.ndarray, scores: np.ndarray, threshold: float = 0.5,
                 min_hits: int = 3, layer: np.ndarray | None = None, xyz: np.ndarray | None = None,
                 turn_weights: tuple[float, float] = (10.0, 0.3), reserve: np.ndarray | None = None,
                 bridge_weights: tuple[float, float] = (20.0, 0.3), max_bridge_turn: float = 1.0) -> np.ndarray:
    """Track label of every hit (-1: no track) from (2, E) edges (inner, outer) and their scores; ``layer``
    (one number per hit) enables the merging of overlap hits, ``xyz`` (hit positions, (n_hits, 3)) the turn
    penalty at forks, ``xyz`` with ``reserve`` ((2, R) further edges, inner to outer) the joining of broken
    tracks."""
    edges = np.asarray(edges, np.int64).reshape(2, -1)
    scores = np.asarray(scores, np.float64)
    if edges.shape[1] != len(scores):
        raise ValueError(f"{edges.shape[1]} edges but {len(scores)} scores")
    kept = scores > threshold
    src, dst, score = edges[0, kept], edges[1, kept], scores[kept]
    labels = np.full(n_hits, -1, np.int64)
    if len(src) == 0:
        return labels
    # 1. overlap hits with a common predecessor and a common successor become one node
    node = np.arange(n_hits)
    if layer is not None:
        layer = np.asarray(layer)
        after = _sibling_pairs(src, dst, layer)
        before = _sibling_pairs(dst, src, layer)
        both = np.intersect1d(after[0] * n_hits + after[1], before[0] * n_hits + before[1])
        if len(both):
            node = _components(n_hits, both // n_hits, both % n_hits)
    s, d = node[src], node[dst]
    inside = s != d
    s, d, sc = s[inside], d[inside], score[inside]
    # 2. each node's best way out and best way in
    best_out = _best_per(s, sc, n_hits)
    best_in = _best_per(d, sc, n_hits)
    if xyz is not None:
        xyz = np.asarray(xyz, np.float64)
        a, b = src[inside], dst[inside]
        rank = sc - _turn_penalty(a, b, best_in[s], xyz, turn_weights) \
            - _turn_penalty(a, b, best_out[d], xyz, turn_weights)
        best_out = _best_per(s, rank, n_hits)
        best_in = _best_per(d, rank, n_hits)
    idx = np.arange(len(s))
    mutual = (best_out[s] == idx) & (best_in[d] == idx)
    # 3. components; hits left alone join the track of their best kept edge
    comp = _components(n_hits, s[mutual], d[mutual])[node]
    size = np.bincount(comp, minlength=n_hits)
    alone = size[comp] == 1
    for side, other in ((src, dst), (dst, src)):
        cand = alone[side] & ~alone[other]
        best = _best_per(side[cand], score[cand], n_hits)
        has = np.flatnonzero(best >= 0)
        comp[has] = comp[other[cand][best[has]]]
        alone[has] = False
    if reserve is not None and xyz is not None:
        reserve = np.asarray(reserve, np.int64).reshape(2, -1)
        for _ in range(2):  # the second pass joins the new ends, and ends whose first choice was taken
            comp = _bridge(comp, reserve, xyz, layer, bridge_weights, max_bridge_turn)
    size = np.bincount(comp, minlength=n_hits)
    ok = size[comp] >= min_hits
    labels[ok] = np.unique(comp[ok], return_inverse=True)[1]
    return labels
