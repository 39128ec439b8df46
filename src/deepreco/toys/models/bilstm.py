"""The bidirectional LSTM: a second LSTM reads the planes in reverse (seed table "Bidirectional LSTM").

    h_t^f = LSTM_f(x_t, h_{t-1}^f),   h_t^b = LSTM_b(x_t, h_{t+1}^b),
    g_t = relu(W_1 [h_t^f ; h_t^b] + b_1),   p_t = softmax(W_2 g_t + b_2)

Each plane's decision sees the whole event, the planes after it included ("it can see into the future").
"""

from __future__ import annotations

import torch
from torch import nn

from .common import PlaneModel


class BiLSTMClassifier(PlaneModel):
    """Bidirectional LSTM -> Dense -> Dense(softmax) over the planes (returns logits, (B, L, P))."""

    CPU = {"hidden": 256}
    SEED = {"hidden": 1024}  # 19.9 M parameters, as in the seed's table

    def __init__(self, n_layers: int, plane_shape: tuple[int, ...], hidden: int = 256):
        super().__init__(n_layers, plane_shape)
        self.lstm = nn.LSTM(self.n_pixels, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, self.n_pixels))

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.flatten(events))
        return self.head(h)
