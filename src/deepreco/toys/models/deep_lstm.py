"""The deep LSTM: dense layers before and after the LSTM (seed table "Deep LSTM").

    e_t = relu(W_in x_t + b_in),   h_t = LSTM(e_t, h_{t-1}),
    g_t = relu(W_1 h_t + b_1),     p_t = softmax(W_2 g_t + b_2)

The input layer compresses a plane to a learned embedding, so the LSTM sees a few features, not P pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import PlaneModel


class DeepLSTMClassifier(PlaneModel):
    """Dense -> LSTM -> Dense -> Dense(softmax) over the planes (returns logits, (B, L, P))."""

    CPU = {"hidden": 256}
    SEED = {"hidden": 1024}  # 11.5 M parameters, as in the seed's table

    def __init__(self, n_layers: int, plane_shape: tuple[int, ...], hidden: int = 256):
        super().__init__(n_layers, plane_shape)
        self.embed = nn.Sequential(nn.Linear(self.n_pixels, hidden), nn.ReLU())
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, self.n_pixels))

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.embed(self.flatten(events)))
        return self.head(h)
