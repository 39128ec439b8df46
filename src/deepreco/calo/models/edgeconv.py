"""DGCNN / DynamicEdgeConv (Wang et al., arXiv:1801.07829) with object-condensation heads.

An EdgeConv layer updates each point from its k nearest neighbours in the layer's input space,

    x'_i = max_{j in kNN(x_i)} h_Theta(x_i || x_j - x_i),

with h_Theta an MLP; the graph is rebuilt from the features in every layer ("dynamic"), the first one from
the hits' projective positions. Heavier than GravNet (an MLP per edge, kNN in 64 dimensions), as the seed
says, and the reference it was measured against.
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import OCHeads
from .knn import knn


class DynamicEdgeConv(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, k: int = 16):
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Linear(2 * in_dim, out_dim), nn.ELU(), nn.Linear(out_dim, out_dim), nn.ELU())

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None, space: torch.Tensor | None = None
                ) -> torch.Tensor:
        idx = knn(x if space is None else space, self.k, batch)
        xi = x[:, None, :].expand(-1, idx.shape[1], -1)
        return self.mlp(torch.cat([xi, x[idx] - xi], dim=-1)).max(dim=1).values


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
