"""The DeepCore CNN (seed 000): pixel maps of 4 layers + jet eta, pT in; per pixel of layer 2, 3 overlaps out.

The jet eta and pT are broadcast to two constant 30 x 30 maps and stacked with the 4 layer maps (6 channels).
Every convolution keeps the 30 x 30 size ("same" padding) and is followed by ReLU:

    h1 = ReLU(Conv7x7(6 -> 50)(x)),  h2 = ReLU(Conv5x5(50 -> 20)(h1)),  h3 = ReLU(Conv5x5(20 -> 20)(h2)),
    h4 = ReLU(Conv5x5(20 -> 18)(h3)), h5 = ReLU(Conv3x3(18 -> 18)(h4))
    parameters:  P = Conv3x3(18 -> 18) . [ReLU . Conv3x3(18 -> 18)] x 3 (h5)       -> (3 overlaps, 6, 30, 30)
    probability: p = sigmoid(Conv3x3(7 -> 6) . ReLU Conv3x3(9 -> 7) . ReLU Conv3x3(12 -> 9) . ReLU
                     Conv3x3(18 -> 12)(h5))                                          -> (3 overlaps, 2, 30, 30)

This is 77,373 parameters, the count on the slides, which fixes the heads at 18 = 3 x (5 + 1) and 6 = 3 x 2
channels: channel 0 of each overlap's probability pair is the TCP probability and channels 0..4 of each
parameter sextet are (Delta x, Delta y, Delta phi, Delta eta, pT); the remaining channels carry no loss. The
parameter head is linear (the slides: ReLU everywhere except the probability's sigmoid; a ReLU there could
not give the signed offsets). ``forward`` returns the probability's logits, for a numerically safe loss.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DeepCoreNet"]

N_OVERLAP = 3
N_PARAMS = 5


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


class DeepCoreNet(nn.Module):
    """The CNN of the slides. ``forward(maps (B, 4, 30, 30), jet (B, 2))`` -> (logits (B, 3, 30, 30),
    params (B, 3, 5, 30, 30)); ``predict`` gives probabilities instead of logits."""

    def __init__(self, n_layers: int = 4):
        super().__init__()
        self.trunk = nn.Sequential(_conv(n_layers + 2, 50, 7), nn.ReLU(), _conv(50, 20, 5), nn.ReLU(),
                                   _conv(20, 20, 5), nn.ReLU(), _conv(20, 18, 5), nn.ReLU(),
                                   _conv(18, 18, 3), nn.ReLU())
        self.param_head = nn.Sequential(_conv(18, 18, 3), nn.ReLU(), _conv(18, 18, 3), nn.ReLU(),
                                        _conv(18, 18, 3), nn.ReLU(), _conv(18, 3 * (N_PARAMS + 1), 3))
        self.prob_head = nn.Sequential(_conv(18, 12, 3), nn.ReLU(), _conv(12, 9, 3), nn.ReLU(),
                                       _conv(9, 7, 3), nn.ReLU(), _conv(7, 3 * 2, 3))

    def forward(self, maps: torch.Tensor, jet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = maps.shape
        x = torch.cat([maps, jet[:, :, None, None].expand(b, jet.shape[1], h, w)], dim=1)
        h5 = self.trunk(x)
        logits = self.prob_head(h5).view(b, N_OVERLAP, 2, h, w)[:, :, 0]
        params = self.param_head(h5).view(b, N_OVERLAP, N_PARAMS + 1, h, w)[:, :, :N_PARAMS]
        return logits, params

    @torch.no_grad()
    def predict(self, maps: torch.Tensor, jet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, params = self(maps, jet)
        return torch.sigmoid(logits), params
