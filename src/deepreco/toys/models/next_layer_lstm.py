"""The next-layer LSTM: from planes 0..t, predict where the track hits plane t+1 (seed "Next-layer LSTM").

    h_t = LSTM(x_t, h_{t-1}),   p_{t+1} = softmax(W h_t + b)    for t = 0 .. L-2

A pure extrapolator, the network analogue of a Kalman filter's prediction step: it never sees plane t+1's
hits when scoring it. Plane 0 is a seed plane, whose only hit is the signal's; its scores are the plane itself.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import PlaneModel


class NextLayerLSTM(PlaneModel):
    """LSTM whose step t scores plane t+1; returns logits (B, L, P) aligned on the planes they score."""

    CPU = {"hidden": 256}
    SEED = {"hidden": 1024}  # 9.4 M parameters, as in the seed's table

    def __init__(self, n_layers: int, plane_shape: tuple[int, ...], hidden: int = 256):
        super().__init__(n_layers, plane_shape)
        self.lstm = nn.LSTM(self.n_pixels, hidden, batch_first=True)
        self.out = nn.Linear(hidden, self.n_pixels)

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        x = self.flatten(events)
        h, _ = self.lstm(x[:, :-1])
        # a fixed, large logit on plane 0's hit: it carries no gradient and makes plane 0 right by construction
        first = 20.0 * (x[:, :1] - 0.5)
        return torch.cat([first, self.out(h)], dim=1)
