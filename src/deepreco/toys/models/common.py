"""What every per-pixel model shares: the (B, L, *plane) input, the (B, L, P) logits out, the two sizes."""

from __future__ import annotations

import math

import torch
from torch import nn


class PlaneModel(nn.Module):
    """Base of the hit classifiers: ``forward(events (B, L, *plane)) -> logits (B, L, P)``, P pixels a plane.

    A softmax over a plane's P logits gives the probability that each pixel is the signal track's. Subclasses
    set ``CPU`` (the defaults, sized for a laptop CPU) and ``SEED`` (the sizes of the seed's tables).
    """

    CPU: dict = {}
    SEED: dict = {}

    def __init__(self, n_layers: int, plane_shape: tuple[int, ...]):
        super().__init__()
        self.n_layers = n_layers
        self.plane_shape = tuple(plane_shape)
        self.n_pixels = math.prod(self.plane_shape)

    def flatten(self, events: torch.Tensor) -> torch.Tensor:
        return events.reshape(events.shape[0], events.shape[1], self.n_pixels)

    def volume(self, events: torch.Tensor) -> torch.Tensor:
        """(B, 1, L, *plane) for the convolutions; a 2D toy's planes become (1, W) images."""
        return events.reshape(events.shape[0], 1, events.shape[1], *self.plane_shape[-2:]) \
            if len(self.plane_shape) == 2 else events.reshape(events.shape[0], 1, events.shape[1], 1, -1)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def he_init(module: nn.Module) -> None:
    """He (Kaiming) normal initialisation of every convolution, zero biases: the variance a ReLU stack keeps.

    PyTorch's default (uniform, variance 1/(3 fan_in)) divides the signal's variance by about 6 at each ReLU
    layer; after the autoencoder's eight convolutions the sparse hits hardly reach the decoder and in 2
    CPU-minutes it learned nothing (pixel / hit accuracy 0.001 / 0.388, the loss stuck near log 1024); with this
    initialisation 0.152 / 0.849, and the ConvNN 0.575 / 0.703 instead of 0.480 / 0.637. (Keras, which HEP.TrkX
    used, starts from Glorot's uniform, also larger than PyTorch's default.)
    """
    for m in module.modules():
        if isinstance(m, nn.Conv3d | nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
