"""k nearest neighbours for the graph layers, without compiled extensions.

The neighbour indices carry no gradient (the layers recompute distances from the gathered coordinates), so
they come from SciPy's KD-tree in few dimensions (GravNet's 4D space: O(n log n)) or from chunked
``torch.cdist`` + ``topk`` in many (DGCNN's 64-dimensional feature space: O(n^2), the reason DGCNN is slow on big
events). Each point is its own first neighbour; a graph with fewer than k points pads with the point itself.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

KDTREE_MAX_DIM = 8
CHUNK = 2048


def _segments(batch: torch.Tensor | None, n: int) -> list[tuple[int, int]]:
    if batch is None or n == 0:
        return [(0, n)]
    counts = torch.bincount(batch).tolist()
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def knn(x: torch.Tensor, k: int, batch: torch.Tensor | None = None) -> torch.Tensor:
    """(n, k) long tensor: for each point the indices of its k nearest points of the same graph (sorted
    ``batch``), itself included."""
    n = x.shape[0]
    out = torch.empty((n, k), dtype=torch.long, device=x.device)
    xd = x.detach()
    for a, b in _segments(batch, n):
        m = b - a
        kk = min(k, m)
        if xd.shape[1] <= KDTREE_MAX_DIM:
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
