"""A linear Kalman filter that follows the seeded track plane by plane, all events at once.

Per plane axis the state is ``s = (x, t_x)`` (position in pixels, slope in pixels per plane); the axes are
independent for a straight track, so each has its own 2 x 2 covariance ``C``:

    predict:  s <- F s,  C <- F C F^T + Q,                F = [[1, 1], [0, 1]]
    gate:     chi2(pixel) = sum over axes (c - x)^2 / (C_xx + R),   R = 1/12 (a pixel's uniform spread)
    update:   K = C H^T / (C_xx + R),  s <- s + K (m - x),  C <- (1 - K H) C,   H = [1, 0]

It starts from a flat prior (anywhere on the plane, any slope that stays inside) and updates with the seed
planes' hits, which are the signal's; on each later plane it takes the hit of least chi2 when that is under
``gate``, and skips the plane otherwise. Scores are ``-chi2`` of every pixel, the picked hit lifted above all.
"""

from __future__ import annotations

import numpy as np

from .common import check_events, pixel_centres

__all__ = ["kalman_scores"]

R_PIXEL = 1.0 / 12.0  # variance of a uniform position within a 1-pixel-wide bin


def kalman_scores(events: np.ndarray, n_seed: int = 3, gate: float = 16.0, process_noise: float = 0.0) -> np.ndarray:
    """Kalman-filter scores (N, L, P) for the toy ``events`` (N, L, *plane) with ``n_seed`` seed planes."""
    events = check_events(events, n_seed)
    n, n_layers, *plane = events.shape
    d, size = len(plane), plane[0]
    centres = pixel_centres(tuple(plane))

    x = np.full((n, d), size / 2.0)
    tx = np.zeros((n, d))
    # flat prior: uniform position (var S^2/12) and the slope of two uniform end points (var 2 S^2/12/(L-1)^2)
    cxx = np.full((n, d), size**2 / 12.0)
    cxt = np.zeros((n, d))
    ctt = np.full((n, d), 2 * size**2 / 12.0 / (n_layers - 1) ** 2)
    scores = np.empty((n, n_layers, int(np.prod(plane))), dtype=np.float32)
    rows = np.arange(n)

    for t in range(n_layers):
        if t > 0:  # predict one plane on
            x = x + tx
            cxx, cxt = cxx + 2 * cxt + ctt + process_noise, cxt + ctt
        var = cxx + R_PIXEL
        chi2 = sum((centres[a][None] - x[:, a].reshape((n,) + (1,) * d)) ** 2 / var[:, a].reshape((n,) + (1,) * d)
                   for a in range(d))
        chi2 = chi2.reshape(n, -1)
        hit_chi2 = np.where(events[:, t].reshape(n, -1) > 0, chi2, np.inf)
        best = hit_chi2.argmin(axis=1)
        best_chi2 = hit_chi2[rows, best]
        # a seed plane's hit is the signal's: always take it; later, only inside the gate
        take = np.isfinite(best_chi2) & ((t < n_seed) | (best_chi2 < gate))
        scores[:, t] = -chi2
        scores[rows[take], t, best[take]] = 1.0

        m = np.stack(np.unravel_index(best, plane), axis=-1) + 0.5  # (n, d) the picked hit's centre
        gain_x, gain_t = cxx / var, cxt / var
        resid = np.where(take[:, None], m - x, 0.0)
        x, tx = x + gain_x * resid, tx + gain_t * resid
        upd = take[:, None]
        cxx, cxt, ctt = (np.where(upd, cxx - gain_x * cxx, cxx), np.where(upd, cxt - gain_x * cxt, cxt),
                         np.where(upd, ctt - gain_t * cxt, ctt))
    return scores
