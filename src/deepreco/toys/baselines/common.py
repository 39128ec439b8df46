"""Geometry shared by the baselines: pixel centres and the seed planes' straight-line fit."""

from __future__ import annotations

import numpy as np

from deepreco.errors import DeepRecoError


def pixel_centres(plane_shape: tuple[int, ...]) -> list[np.ndarray]:
    """One array a plane axis, broadcastable to the plane: the centre ``i + 0.5`` of pixel i along that axis."""
    d = len(plane_shape)
    return [(np.arange(n) + 0.5).reshape([n if a == k else 1 for a in range(d)]) for k, n in enumerate(plane_shape)]


def check_events(events: np.ndarray, n_seed: int) -> np.ndarray:
    events = np.asarray(events)
    if events.ndim not in (3, 4):
        raise DeepRecoError(f"toy events must be (N, L, W) or (N, L, H, W), got shape {events.shape}")
    if not 1 <= n_seed < events.shape[1]:
        raise DeepRecoError(f"the baselines need 1 to {events.shape[1] - 1} seed planes, got {n_seed}")
    return events


def seed_hits(events: np.ndarray, n_seed: int) -> np.ndarray:
    """(N, n_seed, d) centre of the hit on each seed plane (the seed planes hold the signal's hit alone).

    A seed plane without a hit (impossible in the toy) would give the plane's first pixel.
    """
    n, _, *plane = events.shape
    flat = events[:, :n_seed].reshape(n, n_seed, -1).argmax(axis=2)
    return np.stack(np.unravel_index(flat, plane), axis=-1) + 0.5
