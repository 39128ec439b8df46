"""The 3D convolutional autoencoder: max-pooling down to one cell a plane, a dense decoder per plane
(seed "Conv autoencoder").

The encoder keeps the plane axis and halves the pixel axes at each pooling (32 -> 16 -> 8 -> 4 -> 2 -> 1):

    A = conv(8) conv(8) pool conv(16) conv(16) pool conv(32) pool conv(64) pool conv(96) pool conv(128) (X)
    p_t = softmax(W A[:, t] + b)          (A[:, t]: the 128 features of plane t)

The whole plane is squeezed into 128 numbers, so the decoder places the track coarsely: poor at naming the
exact pixel, good at ranking the few hits of a plane.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepreco.errors import DeepRecoError

from .common import PlaneModel, he_init


def _conv(c_in: int, c_out: int, size: int) -> nn.Module:
    # the seed's kernels shrink with the planes: 3 x 3 down to 4 x 4 pixels, then 3 x 2 x 2, then 3 x 1 x 1
    k = min(3, size)
    if k == 2:  # "same" padding of an even kernel: one pixel after, none before (Keras' choice)
        return nn.Sequential(nn.ZeroPad3d((0, 1, 0, 1, 1, 1)), nn.Conv3d(c_in, c_out, (3, 2, 2)), nn.ReLU())
    return nn.Sequential(nn.Conv3d(c_in, c_out, (3, k, k), padding=(1, k // 2, k // 2)), nn.ReLU())


def _down(dropout: float) -> nn.Module:
    return nn.Sequential(nn.MaxPool3d((1, 2, 2)), nn.Dropout(dropout))


class ConvAutoencoder3D(PlaneModel):
    """Conv/pool encoder to (128, L, 1, 1) and a time-distributed dense decoder (returns logits, (B, L, P))."""

    CPU = {"width": 1.0, "dropout": 0.1}
    SEED = {"width": 1.0, "dropout": 0.2}  # 324,488 parameters on 32 x 32 planes, as in the seed's table

    def __init__(self, n_layers: int, plane_shape: tuple[int, ...], width: float = 1.0, dropout: float = 0.2):
        super().__init__(n_layers, plane_shape)
        if len(plane_shape) != 2 or plane_shape[0] != plane_shape[1] or plane_shape[0] & (plane_shape[0] - 1):
            raise DeepRecoError(f"the conv autoencoder needs square planes of 2^k pixels, got {plane_shape}")
        size = plane_shape[0]
        n_pool = int(math.log2(size))
        ch = [max(1, round(c * width)) for c in (8, 16, 32, 64, 96, 128, 128, 128, 128, 128, 128)]
        blocks: list[nn.Module] = [_conv(1, ch[0], size), _conv(ch[0], ch[0], size)]
        # the seed's pattern for 32 pixels: two convolutions after the first pooling, one after each other
        for k in range(n_pool):
            size //= 2
            blocks += [_down(dropout), _conv(ch[k], ch[k + 1], size)]
            if k == 0:
                blocks.append(_conv(ch[1], ch[1], size))
        self.encoder = nn.Sequential(*blocks)
        self.decoder = nn.Linear(ch[n_pool], self.n_pixels)
        he_init(self)
        self.to(memory_format=torch.channels_last_3d)

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        x = self.volume(events).to(memory_format=torch.channels_last_3d)
        code = self.encoder(x)[..., 0, 0]  # (B, C, L)
        return self.decoder(code.transpose(1, 2))
