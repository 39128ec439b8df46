"""The Dynamic Reduction Network (Gray, Klijnsma et al., arXiv:2003.08013) regressing a cluster's energy.

A cluster's hits are encoded by an MLP, then twice

    x'_i = sum_{j in kNN(x_i)} h_Theta(x_i || x_j - x_i)          (EdgeConv in the learned space)
    reduce: pair the points that are each other's nearest neighbour and max-pool each pair's features,

then a global max pool, the cluster's log raw energy appended, and an MLP to the output: the log of the
true energy over the cluster's summed energy. DRN reduces with graclus (a greedy heavy-edge matching from
torch_cluster); mutual-nearest-neighbour matching is its parallel form and needs no compiled code.
"""

from __future__ import annotations

import torch
from torch import nn

from .knn import knn


def _scatter_max(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.full((n, x.shape[1]), float("-inf"), dtype=x.dtype, device=x.device)
    out = out.scatter_reduce(0, index[:, None].expand_as(x), x, reduce="amax", include_self=True)
    return out


def mutual_nn_pairs(x: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """New node index of each node (pairs of mutual nearest neighbours share one) and the new batch."""
    n = x.shape[0]
    nn1 = knn(x, 2, batch)[:, 1]
    idx = torch.arange(n, device=x.device)
    mutual = nn1[nn1] == idx
    rep = torch.where(mutual, torch.minimum(idx, nn1), idx)
    uniq, new = torch.unique(rep, return_inverse=True)
    return new, batch[uniq]


class EdgeConvAdd(nn.Module):
    def __init__(self, dim: int, k: int):
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.ELU(), nn.Linear(dim, dim), nn.ELU())

    def forward(self, x, batch):
        idx = knn(x, self.k, batch)
        xi = x[:, None, :].expand(-1, idx.shape[1], -1)
        return self.mlp(torch.cat([xi, x[idx] - xi], dim=-1)).sum(dim=1) / self.k


class DRN(nn.Module):
    kind = "drn"

    def __init__(self, in_dim: int, hidden: int = 32, k: int = 8, reductions: int = 2):
        super().__init__()
        self.config = dict(in_dim=in_dim, hidden=hidden, k=k, reductions=reductions)
        self.inp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU())
        self.convs = nn.ModuleList([EdgeConvAdd(hidden, k) for _ in range(reductions)])
        self.out = nn.Sequential(nn.Linear(hidden + 1, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, batch: torch.Tensor, log_energy: torch.Tensor) -> torch.Tensor:
        """One output per graph (cluster): log(E_true / E_sum). ``log_energy``: log of each cluster's summed
        energy (GeV)."""
        n_graphs = log_energy.shape[0]
        h = self.inp(x)
        for conv in self.convs:
            h = h + conv(h, batch)
            new, batch = mutual_nn_pairs(h, batch)
            h = _scatter_max(h, new, int(new.max()) + 1)
        g = _scatter_max(h, batch, n_graphs)
        return self.out(torch.cat([g, log_energy[:, None]], dim=1)).squeeze(-1)
