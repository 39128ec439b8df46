"""The 3D ConvNN: ten 3 x 3 x 3 convolutions with no downsampling, then a softmax per plane (seed "ConvNN").

With ``X`` the event as a (1, L, H, W) volume,

    A_0 = X,   A_k = relu(conv3d_k(A_{k-1}))  (k = 1..10, ``channels`` maps),   S = conv3d_11(A_10)  (1 map),
    p_t = softmax(S[t].flatten())

Convolutions are track-stub matchers: early layers find stubs, later ones join them; ten 3-wide layers reach
10 planes and 10 pixels in every direction, enough to carry the seed planes' track through the detector.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import PlaneModel, he_init


class ConvNN3D(PlaneModel):
    """``depth`` same-size 3D convolutions and a 1-map output convolution (returns logits, (B, L, P))."""

    CPU = {"channels": 8, "depth": 10}
    SEED = {"channels": 8, "depth": 10}  # 16,065 parameters, as in the seed's table

    def __init__(self, n_layers: int, plane_shape: tuple[int, ...], channels: int = 8, depth: int = 10):
        super().__init__(n_layers, plane_shape)
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(depth):
            layers += [nn.Conv3d(c_in, channels, 3, padding=1), nn.ReLU()]
            c_in = channels
        layers.append(nn.Conv3d(c_in, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)
        he_init(self)
        # channels-last runs the 3D convolutions about twice as fast on CPU (oneDNN's preferred layout)
        self.to(memory_format=torch.channels_last_3d)

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        x = self.volume(events).to(memory_format=torch.channels_last_3d)
        return self.flatten(self.net(x)[:, 0])
