"""DGCNN / DynamicEdgeConv (Wang et al., arXiv:1801.07829) with object-condensation heads.

An EdgeConv layer updates each point from its k nearest neighbours in the layer's input space,

    x'_i = max_{j in kNN(x_i)} h_Theta(x_i || x_j - x_i),

with h_Theta an MLP; the graph is rebuilt from the features in every layer ("dynamic"), the first one from
the hits' projective positions. Heavier than GravNet (an MLP per edge, kNN in 64 dimensions), as the seed
says, and the reference it was measured against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .heads import OCHeads
from .knn import knn

EDGE_CHUNK = 4096


class DynamicEdgeConv(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, k: int = 16):
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Linear(2 * in_dim, out_dim), nn.ELU(), nn.Linear(out_dim, out_dim), nn.ELU())

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None, space: torch.Tensor | None = None
                ) -> torch.Tensor:
        # hits on the cell grid have many neighbours at equal distances: in the hits' space the neighbours come
        # from SciPy's KD-tree, whose choice among equals the shipped model was trained with
        idx = knn(x, self.k, batch) if space is None else knn(space, self.k, batch, method="scipy")
        lin1, act1, lin2, act2 = self.mlp
        # h_Theta's first layer split, W (x_i || x_j - x_i) = (W_a - W_b) x_i + W_b x_j: two products per point
        # instead of one per edge (the same function, the same weights)
        d = x.shape[1]
        w_a, w_b = lin1.weight[:, :d], lin1.weight[:, d:]
        own = F.linear(x, w_a - w_b, lin1.bias)
        other = F.linear(x, w_b)
        if torch.is_grad_enabled():
            return act2(lin2(act1(own[:, None, :] + other[idx]))).max(dim=1).values
        # inference: a slice of points at a time, so the (points, k, features) tensor stays small
        out = torch.empty((x.shape[0], lin2.out_features), dtype=own.dtype, device=x.device)
        for s in range(0, x.shape[0], EDGE_CHUNK):
            e = s + EDGE_CHUNK
            out[s:e] = act2(lin2(act1(own[s:e, None, :] + other[idx[s:e]]))).amax(dim=1)
        return out


class EdgeConvOC(nn.Module):
    """``layers`` DynamicEdgeConv layers (the first with its graph from the input columns ``space_cols``)."""

    kind = "edgeconv"

    def __init__(self, in_dim: int, hidden: int = 64, layers: int = 3, k: int = 16, cluster_dim: int = 3,
                 n_classes: int = 4, space_cols: tuple[int, ...] = (0, 1, 2), anchor_mm: float = 40.0):
        super().__init__()
        self.config = dict(in_dim=in_dim, hidden=hidden, layers=layers, k=k, cluster_dim=cluster_dim,
                           n_classes=n_classes, space_cols=tuple(space_cols), anchor_mm=anchor_mm)
        self.space_cols = list(space_cols)
        self.inp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ELU())
        self.convs = nn.ModuleList([DynamicEdgeConv(hidden, hidden, k) for _ in range(layers)])
        self.heads = OCHeads(in_dim + (layers + 1) * hidden, hidden, cluster_dim, n_classes, anchor_mm)

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        h = self.inp(x)
        outs = [x, h]
        for i, conv in enumerate(self.convs):
            h = conv(h, batch, space=x[:, self.space_cols] if i == 0 else None)
            outs.append(h)
        return self.heads(torch.cat(outs, dim=1), x)
