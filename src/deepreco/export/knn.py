"""k nearest neighbours in torch operations that an exported graph keeps: the served calorimeter networks find
the true neighbours of every event, not the ones of the event they were traced on.

The points are searched ``CHUNK`` queries at a time inside a ``scan`` (an ONNX ``Scan``): each step forms the
(CHUNK, n) squared distances |q|^2 + |p|^2 - 2 q.p in float32 (points centred), keeps the k + ``MARGIN``
smallest with ``topk``, and ranks those by their exact float64 distances (float64 everywhere was three times
slower in onnxruntime). Memory is CHUNK x n numbers a step (100 MB at 100,000 hits), whatever the event's size;
the work is n^2 d, which a GPU does fast and a CPU core slowly at 100,000 hits (``benchmarks/serving.py``
measures it). Chosen over the two other ways because it is one self-contained ONNX file per network that onnxruntime
and Triton's ONNX Runtime backend run as they are: an ONNX custom op needs a compiled library in every
server, and a Python step between network pieces needs the Python backend and several models per network.

The neighbours are those of `deepreco.calo.models.knn.knn`: each point first, then by increasing distance;
fewer than k candidates (a small event or cluster) pad with the point itself. ``group`` keeps the search
within each point's graph (DRN's clusters; the groups need not be sorted) and ``valid`` leaves points out
(DRN's merged points). Among exactly equal distances the choice may differ from the in-process search.
"""

from __future__ import annotations

import torch
from torch._higher_order_ops.scan import scan

CHUNK = 256
MARGIN = 8  # candidates beyond k taken in float32, then ranked by their exact distances


def graph_knn(points: torch.Tensor, k: int, group: torch.Tensor | None = None, valid: torch.Tensor | None = None,
              chunk: int = CHUNK) -> torch.Tensor:
    """(n, k) int64: for each of the (n, d) ``points`` the indices of its k nearest, itself first."""
    n, d = points.shape
    # float32 distances (centred, so that |q|^2 + |p|^2 - 2 q.p cancels little) choose k + MARGIN candidates;
    # their exact float64 distances choose the k
    p = points - points.mean(0)
    m = k + MARGIN
    # m dummy candidates at an infinite distance, so that topk always has m columns
    cand = torch.cat([p, p.new_zeros(m, d)])
    far = torch.cat([p.new_zeros(n), p.new_full((m,), float("inf"))])
    if valid is not None:
        far = far + torch.cat([torch.where(valid, 0.0, float("inf")).to(p.dtype), p.new_zeros(m)])
    sq = (cand * cand).sum(1) + far
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
        dist = (qc * qc).sum(1)[:, None] - 2.0 * qc @ cand.T + sq[None, :]
        if group is not None:
            dist = torch.where(cg[None, :] != qgc[:, None], float("inf"), dist)
        rough, cands = torch.topk(dist, m, dim=1, largest=False)
        qx = exact[torch.clamp(qic, max=n - 1)]
        fine = (exact[cands] - qx[:, None, :]).pow(2).sum(-1)
        fine = torch.where(torch.isinf(rough), float("inf"), fine)
        fine = torch.where(cands == qic[:, None], -1.0, fine)  # itself first
        values, pick = torch.topk(fine, k, dim=1, largest=False)
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
