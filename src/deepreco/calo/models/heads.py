"""The object-condensation output of every clustering network, per hit:

- ``beta`` in (0, 1): how much the hit is its object's condensation point;
- ``coords``: the clustering space, where a particle's hits gather within distance 1 and others stay away.
  It starts from where the hit is: the position projected to the face in units of ``anchor_mm`` (and the
  endcap side far apart), plus what the network learns. A shower is then already compact and the network
  learns corrections (pull the halo in, push touching showers apart), which it does in far fewer steps than
  building the space from nothing (measured: 800 steps without the anchor left showers merged);
- ``energy``: log of the ratio of the object's true energy to the sum of its hits' energies (a correction);
- ``logits``: the hit class (noise, EM, hadronic, MIP).
"""

from __future__ import annotations

import torch
from torch import nn


class BlocksOC(nn.Module):
    """``blocks`` x (3 dense ELU layers, a message-passing layer made by ``conv(hidden)``, LayerNorm), the inputs and
    every block's output joined, then the condensation heads: GravNet's and GarNet's common body."""

    def __init__(self, in_dim: int, hidden: int, blocks: int, conv, cluster_dim: int, n_classes: int,
                 anchor_mm: float):
        super().__init__()
        self.dense = nn.ModuleList()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        dim = in_dim
        for _ in range(blocks):
            self.dense.append(nn.Sequential(nn.Linear(dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                            nn.Linear(hidden, hidden), nn.ELU()))
            self.convs.append(conv(hidden))
            self.norms.append(nn.LayerNorm(hidden))
            dim = hidden
        self.heads = OCHeads(in_dim + blocks * hidden, hidden, cluster_dim, n_classes, anchor_mm)

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        outs = [x]
        h = x
        for dense, conv, norm in zip(self.dense, self.convs, self.norms, strict=True):
            h = norm(conv(dense(h), batch))
            outs.append(h)
        return self.heads(torch.cat(outs, dim=1), x)


class OCHeads(nn.Module):
    def __init__(self, in_dim: int, hidden: int, cluster_dim: int = 3, n_classes: int = 4, anchor_mm: float = 40.0):
        super().__init__()
        self.anchor = 1000.0 / anchor_mm if anchor_mm > 0 else 0.0  # the inputs are in metres
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU())
        self.beta = nn.Linear(hidden, 1)
        self.coords = nn.Linear(hidden, cluster_dim)
        self.energy = nn.Linear(hidden, 1)
        self.logits = nn.Linear(hidden, n_classes)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``h``: the network's features; ``x``: its inputs (``features.hit_features``)."""
        t = self.trunk(h)
        coords = self.coords(t)
        if self.anchor:
            start = torch.zeros_like(coords)
            start[:, :2] = x[:, :2] * self.anchor
            start[:, -1] = x[:, 8] * 50.0  # the two endcaps 100 apart
            coords = coords + start
        return {"beta": torch.sigmoid(self.beta(t)).squeeze(-1), "coords": coords,
                "energy": self.energy(t).squeeze(-1), "logits": self.logits(t)}
