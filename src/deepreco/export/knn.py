"""k nearest neighbours in torch operations that an exported graph keeps: the served calorimeter networks find
the true neighbours of every event, not the ones of the event they were traced on.

The points are searched ``chunk`` queries at a time inside a ``scan`` (an ONNX ``Scan``). Each step keeps
k + ``MARGIN`` candidates by float32 squared distances and ranks them by their float64 distances, computed as
`deepreco.calo.models.knn.tree_knn` computes them (the differences of float64 copies of the points, squared,
summed over the coordinates in order: the same operations, so the same bits, in torch and in onnxruntime),
ties going to the lower index. The neighbours are then those of the in-process search exactly, whenever the
true k-th neighbour is among the candidates. In few dimensions (``DIRECT_MAX_DIM``: GravNet's 4D spaces) the
candidates' float32 distances are the differences squared, within a few float32 roundings of the true ones,
so only more than ``MARGIN`` points within about 1e-6 (relative) of the k-th distance could push it out; the
form |q|^2 + |p|^2 - 2 q.p that a matrix product gives (used above that, in DGCNN's 64D features) loses
digits when the distances are small against the points' norms (measured: GravNet's third layer packs a
hundred hits within 1e-5 of each other, and that form missed true neighbours). Memory is ``chunk`` x n x d
numbers a step (64 x 100,000 x 4: 100 MB) whatever the event's size; the work is n^2 d, which a GPU does fast
and a CPU core slowly at 100,000 hits (``benchmarks/serving.py`` measures it). Chosen over the two other ways
because it is one self-contained ONNX file per network that onnxruntime and Triton's ONNX Runtime backend run
as they are: an ONNX custom op needs a compiled library in every server, and a Python step between network
pieces needs the Python backend and several models per network.

The neighbours are those of `deepreco.calo.models.knn.knn`: each point first, then by increasing distance,
equal distances by index; fewer than k candidates (a small event or cluster) pad with the point itself.
``group`` keeps the search within each point's graph (DRN's clusters; the groups need not be sorted) and
``valid`` leaves points out (DRN's merged points).
"""

from __future__ import annotations

import torch
from torch._higher_order_ops.scan import scan

CHUNK = 256  # queries a step with the matrix-product form
DIRECT_CHUNK = 64  # queries a step with the differences (chunk x n x d float32 numbers)
DIRECT_MAX_DIM = 8  # dimensions up to which the candidates' distances are the differences squared
MARGIN = 8  # candidates beyond k taken in float32, then ranked by their float64 distances


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
              chunk: int | None = None) -> torch.Tensor:
    """(n, k) int64: for each of the (n, d) ``points`` the indices of its k nearest, itself first."""
    n, d = points.shape
    direct = d <= DIRECT_MAX_DIM
    chunk = chunk or (DIRECT_CHUNK if direct else CHUNK)
    p = points - points.mean(0)  # centred: the matrix-product form cancels less
    m = k + MARGIN
    # m dummy candidates at an infinite distance, so that topk always has m columns
    cand = torch.cat([p, p.new_zeros(m, d)])
    far = torch.cat([p.new_zeros(n), p.new_full((m,), float("inf"))])
    if valid is not None:
        far = far + torch.cat([torch.where(valid, 0.0, float("inf")).to(p.dtype), p.new_zeros(m)])
    sq = (cand * cand).sum(1)
    cand_t = cand.T.contiguous()
    exact = torch.cat([points.to(torch.float64), points.new_zeros(m, d, dtype=torch.float64)])
    # queries padded to whole chunks (always at least one padding row: a shape the exporter keeps symbolic)
    pad = chunk - n % chunk
    q = torch.cat([p, p.new_zeros(pad, d)]).reshape(-1, chunk, d)
    qi = torch.arange(n + pad, device=p.device).reshape(-1, chunk)
    if group is None:
        qg = torch.zeros_like(qi)
    else:
        cg = torch.cat([group.to(torch.int64), group.new_full((m,), -1).to(torch.int64)])
        qg = torch.cat([group.to(torch.int64), group.new_zeros(pad).to(torch.int64)]).reshape(-1, chunk)

    def step(carry, xs):
        qc, qic, qgc = xs
        if direct:
            dist = far[None, :]
            for c in range(d):  # coordinate by coordinate: (chunk, n) arrays, contiguous
                t = qc[:, c:c + 1] - cand_t[c:c + 1, :]
                dist = dist + t * t
        else:
            dist = (qc * qc).sum(1)[:, None] - 2.0 * qc @ cand.T + (sq + far)[None, :]
        if group is not None:
            dist = torch.where(cg[None, :] != qgc[:, None], float("inf"), dist)
        rough, cands = torch.topk(dist, m, dim=1, largest=False)
        qx = exact[torch.clamp(qic, max=n - 1)]
        fine = squared_distance(exact[cands], qx[:, None, :])
        fine = torch.where(torch.isinf(rough), float("inf"), fine)
        fine = torch.where(cands == qic[:, None], -1.0, fine)  # itself first
        # each candidate's rank in (distance, index) order: distinct numbers, so that no runtime's tie rule
        # of topk (or sort) decides
        a, b = fine[:, :, None], fine[:, None, :]
        before = (b < a) | ((b == a) & (cands[:, None, :] < cands[:, :, None]))
        rank = before.to(torch.float32).sum(2)
        _, pick = torch.topk(rank, k, dim=1, largest=False)
        values = torch.gather(fine, 1, pick)
        idx = torch.gather(cands, 1, pick)
        idx = torch.where(torch.isinf(values), qic[:, None].expand(-1, k), idx)
        return carry.clone(), idx

    _, idx = scan(step, torch.zeros(1, device=p.device), (q, qi, qg))
    return idx.reshape(-1, k)[:n]


def chunked_rows(fn, rows: torch.Tensor, idx: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
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
