"""The LSTM hit classifier: planes fed one at a time, a softmax over the current plane's pixels at each step.

HEP.TrkX's first model (seed table "LSTM": LSTM(1024) then a time-distributed Dense(1024, softmax)). With
``x_t`` the flattened plane ``t`` (P pixels),

    h_t = LSTM(x_t, h_{t-1}),        p_t = softmax(W h_t + b)   (P scores for plane t)

The memory carries the state estimate of the seeded track from plane to plane, like a Kalman filter.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import PlaneModel


class LSTMClassifier(PlaneModel):
    """Unidirectional LSTM over the planes, one softmax per plane (returns logits, (B, L, P))."""

    CPU = {"hidden": 256}
    SEED = {"hidden": 1024}  # 9.4 M parameters on 32 x 32 planes, as in the seed's table

    def __init__(self, n_layers: int, plane_shape: tuple[int, ...], hidden: int = 256):
        super().__init__(n_layers, plane_shape)
        self.lstm = nn.LSTM(self.n_pixels, hidden, batch_first=True)
        self.out = nn.Linear(hidden, self.n_pixels)

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.flatten(events))
        return self.out(h)
