"""k nearest neighbours in torch operations that an exported graph keeps: the served calorimeter networks find
the true neighbours of every event, not the ones of the event they were traced on.

The points are searched ``chunk`` queries at a time inside a ``scan`` (an ONNX ``Scan``). Each step computes
the float64 squared distances of its queries to every point as `deepreco.calo.models.knn.tree_knn` computes
them (differences of float64 copies of the points, squared, added over the coordinates in order: the same
operations, so the same bits, in torch and in onnxruntime, in any number of dimensions), takes the k-th
smallest, and then the k points that come first in (distance, index) order: every point nearer than the k-th
distance, and of those at exactly that distance the lowest indices (a second ``topk`` on a key that is -1
nearer, the index at the k-th distance and infinite farther: distinct where it matters, so no runtime's tie
rule of ``topk`` decides, however many points tie). The neighbours are then those of the in-process search
exactly, in order. (The search before this one took candidates by float32 distances, k + 8 of them, and
missed true neighbours where more than 8 points tied at the k-th distance, and in DGCNN's 64-D features,
where the |q|^2 + |p|^2 - 2 q.p form of a matrix product loses digits when the distances are small against
the points' norms.)

Memory is ``chunk`` x n float64 numbers a few times a step (64 x 100,000: 51 MB each) whatever the event's
size; the work is n^2 d, which a GPU does fast and a CPU core slowly at 100,000 hits: a CPU server takes the
in-process tree instead (``deepreco export --triton REPO --knn tree``, `deepreco.export.pybackend`).
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

CHUNK = 64  # queries a step (chunk x n float64 distances)
UNROLL_MAX_DIM = 8  # dimensions up to which the coordinate loop is written out in the graph (GravNet's 4)
ROWS_CHUNK = 256  # rows a step of `chunked_rows`


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
    # k dummy candidates at an infinite distance, so that topk always has k columns
    cand_t = torch.cat([exact, exact.new_zeros(k, d)]).T.contiguous()
    far = torch.cat([exact.new_zeros(n), exact.new_full((k,), inf)])
    if valid is not None:
        far = far + torch.cat([torch.where(valid, 0.0, inf).to(torch.float64), exact.new_zeros(k)])
    index = torch.arange(n + k, device=points.device)
    key_index = index.to(torch.float64)  # exact up to 2^53 points
    # queries padded to whole chunks (always at least one padding row: a shape the exporter keeps symbolic)
    pad = chunk - n % chunk
    q = torch.cat([exact, exact.new_zeros(pad, d)]).reshape(-1, chunk, d)
    qi = torch.arange(n + pad, device=points.device).reshape(-1, chunk)
    if group is None:
        qg = torch.zeros_like(qi)
    else:
        cg = torch.cat([group.to(torch.int64), group.new_full((k,), -1).to(torch.int64)])
        qg = torch.cat([group.to(torch.int64), group.new_zeros(pad).to(torch.int64)]).reshape(-1, chunk)

    def add(dist, xs):
        qcol, pcol = xs
        t = qcol[:, None] - pcol[None, :]
        return dist + t * t, qcol[:1].clone()

    def step(carry, xs):
        qc, qic, qgc = xs
        # coordinate by coordinate, in order: (chunk, n) arrays, the tree's sums; above UNROLL_MAX_DIM an inner
        # scan rather than d copies of the same operations (DGCNN's 64-D layers export in half the time)
        if d <= UNROLL_MAX_DIM:
            dist = far[None, :]
            for c in range(d):
                t = qc[:, c:c + 1] - cand_t[c:c + 1, :]
                dist = dist + t * t
        else:
            dist, _ = scan(add, far[None, :].expand(qc.shape[0], -1).clone(), (qc.T.contiguous(), cand_t))
        if group is not None:
            dist = torch.where(cg[None, :] != qgc[:, None], inf, dist)
        dist = torch.where(index[None, :] == qic[:, None], -1.0, dist)  # itself first
        kth = torch.topk(dist, k, dim=1, largest=False).values[:, k - 1:]
        key = torch.where(dist < kth, -1.0, torch.where(dist == kth, key_index[None, :], inf))
        _, cands = torch.topk(key, k, dim=1, largest=False)
        fine = torch.gather(dist, 1, cands)
        # each chosen one's rank in (distance, index) order: distinct numbers, so that no runtime's tie rule
        # of topk (or sort) decides
        a, b = fine[:, :, None], fine[:, None, :]
        before = (b < a) | ((b == a) & (cands[:, None, :] < cands[:, :, None]))
        rank = before.to(torch.float32).sum(2)
        _, pick = torch.topk(rank, k, dim=1, largest=False)
        values = torch.gather(fine, 1, pick)
        idx = torch.gather(cands, 1, pick)
        idx = torch.where(torch.isinf(values), qic[:, None].expand(-1, k), idx)
        return carry.clone(), idx

    _, idx = scan(step, torch.zeros(1, device=points.device), (q, qi, qg))
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
