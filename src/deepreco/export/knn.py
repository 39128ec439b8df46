"""k nearest neighbours in torch operations that an exported graph keeps: the served calorimeter networks find
the true neighbours of every event, not the ones of the event they were traced on.

The points are searched ``chunk`` queries at a time inside a ``scan`` (an ONNX ``Scan``). The neighbours are
those of `deepreco.calo.models.knn.tree_knn` exactly, in order: ranked by the float64 squared distance as the
tree computes it (differences of float64 copies of the points, squared, added over the coordinates in order:
the same operations, so the same bits, in torch and in onnxruntime, in any number of dimensions), equal
distances by index. For float32 points (every exported network's) a step screens first:

- the float32 squared distances of its queries to every point, the same operations in float32 (half the
  bytes of float64, and no ``where`` over the full width: those dominated the float64 step), and the k + SPARE
  nearest by them (one ``topk``);
- the float64 distances of those candidates only, their k-th smallest, and the proof that no other point is
  as near: each float32 operation rounds by at most 2^-24 relative, so a float32 sum of d squared
  differences is within (d + 1) 2^-24 (1 + o(1)) relative of the exact one, and the float64 sum within
  (d + 1) 2^-53; every other point's float32 distance is at least the last candidate's, L, so
  k-th * (1 + (d + 2) 2^-23) + 2^-100 < L (the 2^-100 for float32 underflow, flushed to zero included) proves
  that every point within the k-th float64 distance is a candidate. No float32 sum can overflow when the
  coordinates are below sqrt(1e38 / 4d) (checked once), so an infinite float32 distance (L = inf) is an
  infinite float64 one (a dummy, a left-out point, another group);
- the k candidates first in (distance, index) order, by each one's rank among the k + SPARE: distinct
  numbers, so that no runtime's tie rule of ``topk`` or sort decides.

A chunk with a row not proved (more than SPARE points within the rounding of its k-th distance: ties,
duplicates, points packed tighter than float32 tells apart) takes the exact step (an ONNX ``If``): the
float64 distances to every point, their k-th smallest, and then the k points first in (distance, index)
order, every point nearer than the k-th distance and of those at exactly that distance the lowest indices (a
second ``topk`` on a key that is -1 nearer, the index at the k-th distance and infinite farther). (The search
before the exact one took k + 8 candidates by float32 |q|^2 + |p|^2 - 2 q.p and kept them without a proof:
it missed true neighbours where more than 8 points tied at the k-th distance, and in DGCNN's 64-D features,
where that form loses the digits of small distances beside large norms.)

Memory is ``chunk`` x n numbers a few times a step (16 x 100,000 float64: 13 MB) whatever the event's size;
16 queries a step keep a step's float32 arrays in a CPU core's 2 MB cache up to some 30,000 points (in
exploratory runs on the loaded machine, not kept as a benchmark, 16 was 1.4 times faster than 64 at 20,000
points and 8 a little faster still, at twice the steps). The work is n^2 d, which a
GPU does fast and a CPU core slowly at 100,000 hits: a CPU server takes the in-process tree instead
(``deepreco export --triton REPO --knn tree``, `deepreco.export.pybackend`).
In-graph was chosen over an ONNX custom op because it is one self-contained ONNX file per network that
onnxruntime and Triton's ONNX Runtime backend run as they are (a custom op needs a compiled library in every
server).

The neighbours are those of `deepreco.calo.models.knn.knn`: each point first, then by increasing distance,
equal distances by index; fewer than k candidates (a small event or cluster) pad with the point itself.
``group`` keeps the search within each point's graph (DRN's clusters; the groups need not be sorted) and
``valid`` leaves points out (DRN's merged points).
"""

from __future__ import annotations

import torch
from torch._higher_order_ops.scan import scan

CHUNK = 16  # queries a step (chunk x n distances)
UNROLL_MAX_DIM = 8  # dimensions up to which the coordinate loop is written out in the graph (GravNet's 4)
ROWS_CHUNK = 256  # rows a step of `chunked_rows`
SPARE = 8  # float32 candidates beyond k: room for points about as far as the k-th
SCREEN_REL = 2.0 ** -23  # times d + 2: bounds |float32 - float64| / float64 of a squared distance (docstring)
SCREEN_ABS = 2.0 ** -100  # bounds the float32 sum's loss to underflow (flushed to zero included)
SCREEN_MAX = 1e38  # float32 sums of squares stay below this (FLT_MAX 3.4e38) when the coordinates are tame


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum over the last dim of (a - b)^2, added in coordinate order (no reduction whose order a runtime picks):
    the arithmetic of the in-process tree, bit for bit."""
    t = a - b
    t = t * t
    out = t[..., 0]
    for c in range(1, t.shape[-1]):
        out = out + t[..., c]
    return out


def graph_knn(points: torch.Tensor, k: int, group: torch.Tensor | None = None, valid: torch.Tensor | None = None,
              chunk: int = CHUNK) -> torch.Tensor:
    """(n, k) int64: for each of the (n, d) ``points`` the indices of its k nearest, itself first."""
    n, d = points.shape
    inf = float("inf")
    exact = points.to(torch.float64)
    # k + SPARE dummy candidates at an infinite distance (coordinates inf), so that topk always has enough
    # columns; points left out (``valid``) get infinite coordinates as candidates too
    c = k + SPARE
    cand = torch.cat([exact, exact.new_full((c, d), inf)])
    if valid is not None:
        cand = torch.where(torch.cat([valid, valid.new_zeros(c)])[:, None], cand, inf)
    cand_t = cand.T.contiguous()
    index = torch.arange(n + c, device=points.device)
    key_index = index.to(torch.float64)  # exact up to 2^53 points
    # queries padded to whole chunks (always at least one padding row: a shape the exporter keeps symbolic);
    # a padding row's own column is the first dummy (its answer is dropped)
    pad = chunk - n % chunk
    q = torch.cat([exact, exact.new_zeros(pad, d)]).reshape(-1, chunk, d)
    qi = torch.cat([index[:n], index.new_full((pad,), n)]).reshape(-1, chunk)
    if group is None:
        cg = qg = None
    else:
        cg = torch.cat([group.to(torch.int64), group.new_full((c,), -1).to(torch.int64)])
        qg = torch.cat([group.to(torch.int64), group.new_zeros(pad).to(torch.int64)]).reshape(-1, chunk)
    screen = points.dtype == torch.float32  # float32 points: their float32 distances bound the float64 ones
    cand32_t = cand_t.to(torch.float32)

    def add(dist, xs):
        qcol, pcol = xs
        t = qcol[:, None] - pcol[None, :]
        return dist + t * t, qcol[:1].clone()

    def distances(qc, ct):
        """(chunk, n + c) squared distances of the queries ``qc`` to the candidates ``ct`` (d, n + c), added
        coordinate by coordinate in order (the tree's sums); above UNROLL_MAX_DIM an inner scan rather than d
        copies of the same operations (DGCNN's 64-D layers export in half the time)"""
        if d <= UNROLL_MAX_DIM:
            t = qc[:, :1] - ct[:1, :]
            dist = t * t
            for i in range(1, d):
                t = qc[:, i:i + 1] - ct[i:i + 1, :]
                dist = dist + t * t
        else:
            t = qc[:, :1] - ct[:1, :]
            dist, _ = scan(add, t * t, (qc[:, 1:].T.contiguous(), ct[1:]))
        return dist

    def first_k(dist, cands, qic):
        """The k of ``cands`` (chunk, m) at ``dist`` first in (distance, index) order, in that order, by each
        one's rank: distinct numbers, so that no runtime's tie rule of topk (or sort) decides."""
        a, b = dist[:, :, None], dist[:, None, :]
        before = (b < a) | ((b == a) & (cands[:, None, :] < cands[:, :, None]))
        rank = before.to(torch.float32).sum(2)
        _, pick = torch.topk(rank, k, dim=1, largest=False)
        values = torch.gather(dist, 1, pick)
        idx = torch.gather(cands, 1, pick)
        return torch.where(torch.isinf(values), qic[:, None].expand(-1, k), idx)

    def exact_step(qc, qic, qgc):
        """Every candidate's float64 distance, the k-th smallest, then the k first in (distance, index)
        order: every point nearer than the k-th distance and of those at exactly that distance the lowest
        indices (a second topk on a key that is -1 nearer, the index at the k-th distance and infinite
        farther: distinct where it matters, however many points tie)."""
        dist = distances(qc, cand_t)
        if qgc is not None:
            dist = torch.where(cg[None, :] != qgc[:, None], inf, dist)
        dist = dist.scatter(1, qic[:, None], -1.0)  # itself first
        kth = torch.topk(dist, k, dim=1, largest=False).values[:, k - 1:]
        key = torch.where(dist < kth, -1.0, torch.where(dist == kth, key_index[None, :], inf))
        _, cands = torch.topk(key, k, dim=1, largest=False)
        return first_k(torch.gather(dist, 1, cands), cands, qic)

    def screened_step(qc, qic, qgc):
        """The k + SPARE nearest by float32 distances, their float64 distances, and the proof that no other
        point is as near as the k-th of those (module docstring); a chunk with a row not proved takes the exact
        step."""
        dist = distances(qc.to(torch.float32), cand32_t)
        if qgc is not None:
            dist = torch.where(cg[None, :] != qgc[:, None], inf, dist)
        dist = dist.scatter(1, qic[:, None], -1.0)  # itself first
        rough, cands = torch.topk(dist, c, dim=1, largest=False)
        fine = squared_distance(qc[:, None, :], cand[cands])
        if qgc is not None:
            fine = torch.where(cg[cands] != qgc[:, None], inf, fine)
        fine = torch.where(cands == qic[:, None], -1.0, fine)
        kth = torch.topk(fine, k, dim=1, largest=False).values[:, k - 1]
        last = rough[:, c - 1].to(torch.float64)
        proved = torch.isinf(last) | (kth * (1.0 + SCREEN_REL * (d + 2)) + SCREEN_ABS < last) | (qic == n)
        return torch.cond(proved.all() & tame, lambda f, i, qc_, qic_, qgc_: first_k(f, i, qic_),
                          lambda f, i, qc_, qic_, qgc_: exact_step(qc_, qic_, qgc_ if group is not None else None),
                          (fine, cands, qc, qic, qgc if qgc is not None else qic))

    def step(carry, xs):
        qc, qic, qgc = xs
        qgc = qgc if group is not None else None
        return carry.clone(), (screened_step if screen else exact_step)(qc, qic, qgc)

    if screen:
        # no float32 sum of squares can overflow (a point's squared distance to another at most 4 d B^2), so a
        # float32 distance is infinite where the float64 one is: left-out points, dummies, other groups
        tame = torch.cat([exact.abs().reshape(-1), exact.new_zeros(1)]).amax(0) < (SCREEN_MAX / (4.0 * d)) ** 0.5
    _, idx = scan(step, torch.zeros(1, device=points.device), (q, qi, qg if group is not None else qi))
    return idx.reshape(-1, k)[:n]


def chunked_rows(fn, rows: torch.Tensor, idx: torch.Tensor, chunk: int = ROWS_CHUNK) -> torch.Tensor:
    """``fn(rows_c, idx_c)`` over chunks of ``chunk`` rows inside a ``scan``, so that a per-edge tensor
    (chunk, k, features) stays small; ``fn`` returns one row per input row."""
    n = rows.shape[0]
    pad = chunk - n % chunk
    r = torch.cat([rows, rows.new_zeros(pad, *rows.shape[1:])]).reshape(-1, chunk, *rows.shape[1:])
    i = torch.cat([idx, idx.new_zeros(pad, *idx.shape[1:])]).reshape(-1, chunk, *idx.shape[1:])

    def step(carry, xs):
        return carry.clone(), fn(*xs)

    _, out = scan(step, torch.zeros(1, device=rows.device), (r, i))
    return out.reshape(-1, *out.shape[2:])[:n]
