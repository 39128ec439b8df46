"""GarNet (Qasim, Kieseler, Iiyama, Pierini, arXiv:1902.07987, GravNet's sibling) with object-condensation heads.

A GarNet layer has no neighbour search: every hit exchanges messages with ``aggregators`` learned points, the
same for all the event's hits. From each hit's features x_i it learns its distance to each aggregator and a
feature vector,

    d_ia = D x_i + c,   f_i = F x_i,   V_ia = exp(-d_ia^2),
    g_a = [ mean_i V_ia f_i , max_i V_ia f_i ]          (over the hits of the event),
    x'_i = W_1 x_i + sum_a V_ia (W_a g_a) + b,

so the work grows with hits x aggregators, not with hits x neighbours, and no kNN is searched: the seed's
"GravNet/GarNet greatly reduces computational needs" (seed 002). The return message, a product with the
concatenation of the ``aggregators`` weighted g_a, is computed as V (N x S) times the S projected g_a: the same
sum, without an (N, S x 2P) tensor. The network stacks blocks of dense layers and a GarNet layer, as `GravNetOC`
does, and ends in the same condensation heads (``heads.OCHeads``).
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import BlocksOC


class GarNetConv(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, aggregators: int = 8, prop_dim: int = 16):
        super().__init__()
        self.aggregators, self.prop_dim = aggregators, prop_dim
        self.lin_d = nn.Linear(in_dim, aggregators)
        self.lin_f = nn.Linear(in_dim, prop_dim)
        self.lin_x = nn.Linear(in_dim, out_dim)
        # W_a for every aggregator a: the message of aggregator a's [mean, max] back to the hits
        self.back = nn.Parameter(torch.empty(aggregators, out_dim, 2 * prop_dim))
        nn.init.kaiming_uniform_(self.back.view(-1, 2 * prop_dim), a=5 ** 0.5)  # nn.Linear's own initialisation

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """``batch``: the event of each hit (None: one event); each event's hits aggregate apart."""
        v = torch.exp(-self.lin_d(x).pow(2))                      # (n, S)
        msg = v[:, :, None] * self.lin_f(x)[:, None, :]           # (n, S, P): V_ia f_i
        if batch is None:  # one event (and the exported graph): plain reductions over the hits
            g = torch.cat([msg.mean(0), msg.amax(0)], dim=1)      # (S, 2P)
            return self.lin_x(x) + v @ torch.einsum("sop,sp->so", self.back, g)
        n_events = int(batch.max()) + 1 if len(batch) else 1
        total = torch.zeros((n_events, *msg.shape[1:]), dtype=x.dtype, device=x.device).index_add_(0, batch, msg)
        count = torch.bincount(batch, minlength=n_events).clamp(min=1).to(x.dtype)[:, None, None]
        biggest = torch.zeros_like(total).scatter_reduce_(0, batch[:, None, None].expand_as(msg), msg, "amax",
                                                          include_self=False)
        g = torch.cat([total / count, biggest], dim=2)            # (events, S, 2P)
        own = torch.einsum("sop,esp->eso", self.back, g)          # W_a g_a: (events, S, out)
        return self.lin_x(x) + torch.bmm(v[:, None, :], own[batch]).squeeze(1)


class GarNetOC(BlocksOC):
    """``blocks`` x (3 dense layers, GarNet layer); outputs beta, clustering coordinates, energy correction and
    class logits per hit, as `GravNetOC`."""

    kind = "garnet"

    def __init__(self, in_dim: int, hidden: int = 48, blocks: int = 3, aggregators: int = 8, prop_dim: int = 16,
                 cluster_dim: int = 3, n_classes: int = 4, anchor_mm: float = 40.0):
        super().__init__(in_dim, hidden, blocks, lambda width: GarNetConv(width, width, aggregators, prop_dim),
                         cluster_dim, n_classes, anchor_mm)
        self.config = dict(in_dim=in_dim, hidden=hidden, blocks=blocks, aggregators=aggregators, prop_dim=prop_dim,
                           cluster_dim=cluster_dim, n_classes=n_classes, anchor_mm=anchor_mm)
