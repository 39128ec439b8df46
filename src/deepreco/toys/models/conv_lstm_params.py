"""The end-to-end track-parameter model: a ConvNet reads a 2D toy image, an LSTM emits its tracks one by one.

As an image-captioning network: the convolutions turn the image ``X`` into a latent vector ``z``; the LSTM is
fed ``z`` at every step and its step ``k`` gives track ``k``'s parameters and their covariance,

    z = relu(W_z flatten(CNN(X)) + b_z),     h_k = LSTM(z, h_{k-1}),   k = 1 .. K
    y_k = W_y h_k + b_y              (slope, intercept)
    c_k = W_c h_k + b_c              (log var_slope, log var_intercept, atanh rho) -> Sigma_k

trained with the Gaussian log-likelihood ``log|Sigma_k| + (y - y_k)^T Sigma_k^-1 (y - y_k)`` over the
tracks an image has (``losses.gaussian_nll``). The tracks come out in the order of the targets: increasing
intercept.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvLSTMTrackParams(nn.Module):
    """Conv encoder + LSTM decoder: images (B, L, W) -> params (B, K, 2) and raw covariances (B, K, 3)."""

    CPU = {"channels": (8, 16, 32), "latent": 128, "hidden": 128}
    SEED = {"channels": (16, 32, 64), "latent": 256, "hidden": 256}

    def __init__(self, n_layers: int = 32, width: int = 32, max_tracks: int = 6,
                 channels: tuple[int, ...] = (8, 16, 32), latent: int = 128, hidden: int = 128):
        super().__init__()
        self.max_tracks = max_tracks
        blocks: list[nn.Module] = []
        c_in, h, w = 1, n_layers, width
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c_in, h, w = c, h // 2, w // 2
        self.encoder = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(c_in * h * w, latent), nn.ReLU())
        self.lstm = nn.LSTM(latent, hidden, batch_first=True)
        self.params = nn.Linear(hidden, 2)
        self.cov = nn.Linear(hidden, 3)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(images[:, None])
        h, _ = self.lstm(z[:, None].expand(-1, self.max_tracks, -1))
        return self.params(h), self.cov(h)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
