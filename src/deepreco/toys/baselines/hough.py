"""A Hough transform seeded on the seed planes: every hit votes for the straight line through it and the seed.

The seed planes' hits fix an anchor, their centroid ``(t_0, x_0)`` (a least-squares line through them passes
there). A line through the anchor has one free parameter per plane axis, its slope, so each hit ``(t, x)`` on a
later plane votes for ``k = (x - x_0) / (t - t_0)`` in a histogram of slopes (1D for the 2D toy, 2D for the
3D toy). The signal's hits all vote for one bin; background tracks, which miss the anchor, and noise spread
their votes. The peak of the (3-bin smoothed) histogram gives the track; a least-squares refit of the seed hits
and of the hits within ``window`` pixels of it gives the final line.

Scores are ``-distance^2`` to that line, the hits the refit kept lifted above all, so on each plane the top
pixel is the line's and the top hit the nearest to it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from .common import check_events, pixel_centres, seed_hits

__all__ = ["hough_scores"]


def hough_scores(events: np.ndarray, n_seed: int = 3, bin_width: float | None = None,
                 window: float = 1.0) -> np.ndarray:
    """Hough-transform scores (N, L, P) for the toy ``events`` (N, L, *plane) with ``n_seed`` seed planes.

    ``bin_width`` (pixels per plane) defaults to ``1 / (L - 1)``: one pixel of drift over the detector.
    """
    events = check_events(events, n_seed)
    n, n_layers, *plane = events.shape
    d, size = len(plane), plane[0]
    seeds = seed_hits(events, n_seed)  # (n, n_seed, d)
    t0 = (n_seed - 1) / 2.0
    x0 = seeds.mean(axis=1)  # (n, d)

    # the votes: every hit after the seed planes, as (event, plane, pixel index per axis)
    hit = np.nonzero(events[:, n_seed:] > 0)
    ev, t = hit[0], hit[1] + n_seed
    pos = np.stack(hit[2:], axis=-1) + 0.5
    slope = (pos - x0[ev]) / (t - t0)[:, None]
    bin_width = 1.0 / (n_layers - 1) if bin_width is None else bin_width
    k_max = size / (n_layers - 1)  # steepest slope a track inside the detector can have
    n_bins = int(np.ceil(2 * k_max / bin_width))
    b = np.floor((slope + k_max) / bin_width).astype(np.int64)
    ok = np.all((b >= 0) & (b < n_bins), axis=1)
    flat = ev[ok] * n_bins**d + np.ravel_multi_index(tuple(b[ok].T), (n_bins,) * d)
    acc = np.bincount(flat, minlength=n * n_bins**d).reshape((n,) + (n_bins,) * d).astype(np.float32)
    # a 3-bin box smooths the pixel quantisation, which can split one track's votes over neighbouring bins
    acc = uniform_filter(acc, size=(1,) + (3,) * d, mode="constant")
    peak = np.stack(np.unravel_index(acc.reshape(n, -1).argmax(axis=1), (n_bins,) * d), axis=-1)
    k = (peak + 0.5) * bin_width - k_max  # (n, d)

    # refit: least squares through the seed hits and the hits within `window` of the Hough line
    near = np.all(np.abs(pos - (x0[ev] + k[ev] * (t - t0)[:, None])) <= window + 0.5, axis=1)
    seed_t = np.arange(n_seed, dtype=np.float64)
    tt = np.concatenate([np.repeat(seed_t[None], n, 0).ravel(), t[near]])
    xx = np.concatenate([seeds.reshape(-1, d), pos[near]])
    ee = np.concatenate([np.repeat(np.arange(n), n_seed), ev[near]])
    sw = np.bincount(ee, minlength=n).astype(np.float64)
    st, stt = np.bincount(ee, tt, n), np.bincount(ee, tt * tt, n)
    denom = sw * stt - st**2
    slope_fit = np.empty((n, d))
    icpt = np.empty((n, d))
    for a in range(d):
        sx, stx = np.bincount(ee, xx[:, a], n), np.bincount(ee, tt * xx[:, a], n)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope_fit[:, a] = np.where(denom > 0, (sw * stx - st * sx) / denom, k[:, a])
        icpt[:, a] = (sx - slope_fit[:, a] * st) / sw

    centres = pixel_centres(tuple(plane))
    scores = np.empty((n, n_layers, int(np.prod(plane))), dtype=np.float32)
    for p in range(n_layers):
        line = icpt + slope_fit * p  # (n, d)
        dist2 = sum((centres[a][None] - line[:, a].reshape((n,) + (1,) * d)) ** 2 for a in range(d))
        scores[:, p] = -dist2.reshape(n, -1)
    kept = np.nonzero(near)[0]
    flat_pix = np.ravel_multi_index(tuple(np.asarray(hit[2 + a])[kept] for a in range(d)), tuple(plane))
    scores[ev[kept], t[kept], flat_pix] += 1000.0  # the refit's hits outrank every other pixel of their plane
    seed_flat = events[:, :n_seed].reshape(n, n_seed, -1).argmax(axis=2)
    scores[np.arange(n)[:, None], np.arange(n_seed)[None], seed_flat] += 1000.0
    return scores
