"""Pixel simulation: charge along the path through the silicon, Lorentz drift, threshold, ADC, clusters.

Each crossing deposits Q = 76 e/um x path length x (1 + 0.075 (L - L_mpv)) electrons, L a standard Landau
variate (L_mpv = -0.22, its mode): a most probable 21,700 e at normal incidence in 285 um and a long tail of
delta rays, cut at 10 times the most probable value (harder delta rays leave the sensor). The charge is spread
in ``N_STEPS`` equal parts along the straight path from w = -T/2 to +T/2; each part drifts to the collecting
side w = +T/2, and the field turns it by the Lorentz angle, so it lands at

    u' = u + tan(theta_L) (T/2 - w) + N(0, sigma_d),   v' = v + N(0, sigma_d),   sigma_d = 7 um sqrt((T/2 - w)/T),

in whichever pixel holds (u', v'): sharing between pixels comes from the path and the drift, as in the real
sensor. Per pixel: the sum over particles, + N(0, 150 e) of noise, a threshold of 1,000 e, and an 8-bit ADC of
135 e a count (saturating at 34,425 e); the charge handed on is ADC x 135 e.

Clusters are the connected sets (8-neighbourhood) of fired pixels on a ladder, found with one sparse graph over
the whole event; their position is the charge centroid, moved back by half the Lorentz drift. Nothing splits
them: tracks closer than a pixel or two make one merged cluster, as in a TeV jet core.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.stats import landau

from .detector import PixelBarrel

__all__ = ["ADC_GAIN", "cluster", "digitize", "pixel_keys"]

E_PER_UM = 76.0
LANDAU_WIDTH = 0.075
LANDAU_MODE = -0.22
N_STEPS = 20
DIFFUSION_UM = 7.0
NOISE_E = 150.0
THRESHOLD_E = 1000.0
ADC_GAIN = 135.0
ADC_MAX = 255


def pixel_keys(det: PixelBarrel, layer, ladder, iu, iv) -> np.ndarray:
    """One int64 per pixel, ordered by layer, ladder, iu, iv (so a ladder's pixels are contiguous)."""
    ladder_id = np.asarray(layer, dtype=np.int64) * 100 + np.asarray(ladder, dtype=np.int64)
    return (ladder_id * det.n_u + np.asarray(iu, dtype=np.int64)) * det.n_v + np.asarray(iv, dtype=np.int64)


def unkey(det: PixelBarrel, key: np.ndarray):
    """(layer, ladder, iu, iv) from pixel keys."""
    iv = key % det.n_v
    rest = key // det.n_v
    iu = rest % det.n_u
    ladder_id = rest // det.n_u
    return ladder_id // 100, ladder_id % 100, iu, iv


def digitize(det: PixelBarrel, crossings: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Fired pixels of an event: layer, ladder, iu, iv, adc, charge [e], particle_id (the largest depositor)."""
    n = len(crossings)
    half_t = 0.5 * det.thickness
    du, dv = crossings["du_dw"].to_numpy(), crossings["dv_dw"].to_numpy()
    path_um = 1000 * det.thickness * np.sqrt(1 + du ** 2 + dv ** 2)
    mpv = E_PER_UM * path_um
    total = mpv * (1 + LANDAU_WIDTH * (landau.rvs(size=n, random_state=rng) - LANDAU_MODE))
    total = np.clip(total, 0.2 * mpv, 10 * mpv)
    w = (np.arange(N_STEPS) + 0.5) / N_STEPS * det.thickness - half_t  # depth of each step
    drift = half_t - w
    u = crossings["u"].to_numpy()[:, None] + du[:, None] * w + det.tan_lorentz * drift
    v = crossings["v"].to_numpy()[:, None] + dv[:, None] * w
    sigma = 1e-3 * DIFFUSION_UM * np.sqrt(drift / det.thickness)
    u = u + rng.normal(size=u.shape) * sigma
    v = v + rng.normal(size=v.shape) * sigma
    iu, iv = det.pixel_index(u, v)
    q = np.repeat(total[:, None] / N_STEPS, N_STEPS, axis=1)
    inside = (iu >= 0) & (iu < det.n_u) & (iv >= 0) & (iv < det.n_v)
    layer = np.repeat(crossings["layer"].to_numpy()[:, None], N_STEPS, 1)
    ladder = np.repeat(crossings["ladder"].to_numpy()[:, None], N_STEPS, 1)
    owner = np.repeat(np.arange(n)[:, None], N_STEPS, 1)
    key = pixel_keys(det, layer[inside], ladder[inside], iu[inside], iv[inside])
    q, owner = q[inside], owner[inside]
    # charge per (pixel, crossing), then per pixel; the largest depositor is the pixel's truth
    pair = np.unique(np.stack([key, owner], 1), axis=0, return_inverse=True)
    pairs, inv = pair[0], pair[1].ravel()
    pair_q = np.bincount(inv, weights=q, minlength=len(pairs))
    pixels, pinv = np.unique(pairs[:, 0], return_inverse=True)
    charge = np.bincount(pinv, weights=pair_q, minlength=len(pixels))
    order = np.lexsort((-pair_q, pinv))
    first = order[np.r_[0, np.flatnonzero(np.diff(pinv[order])) + 1]] if len(order) else order
    main = crossings["particle_id"].to_numpy()[pairs[first, 1]] if len(first) else np.zeros(0, np.int64)
    charge = charge + rng.normal(size=len(charge)) * NOISE_E
    fired = charge > THRESHOLD_E
    adc = np.minimum(np.floor(charge[fired] / ADC_GAIN), ADC_MAX).astype(np.int16)
    lay, lad, iu_f, iv_f = unkey(det, pixels[fired])
    return pd.DataFrame({"layer": lay.astype(np.int8), "ladder": lad.astype(np.int16), "iu": iu_f.astype(np.int32),
                         "iv": iv_f.astype(np.int32), "adc": adc, "charge": adc * ADC_GAIN,
                         "particle_id": main[fired]})


def cluster(det: PixelBarrel, pixels: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Clusters of fired pixels (8-connected on one ladder) and each pixel's cluster index.

    Cluster columns: layer, ladder, u, v (charge centroid, Lorentz-corrected), x, y, z, charge, size, size_u,
    size_v, n_particles (distinct largest depositors among its pixels: > 1 means merged).
    """
    key = pixel_keys(det, pixels["layer"], pixels["ladder"], pixels["iu"], pixels["iv"])
    order = np.argsort(key, kind="stable")
    skey = key[order]
    iu = pixels["iu"].to_numpy()[order]
    iv = pixels["iv"].to_numpy()[order]
    src, dst = [], []
    for du_, dv_ in ((0, 1), (1, -1), (1, 0), (1, 1)):  # half the neighbourhood: the graph is undirected
        ok = (iu + du_ < det.n_u) & (iv + dv_ >= 0) & (iv + dv_ < det.n_v)
        target = skey + du_ * det.n_v + dv_
        pos = np.minimum(np.searchsorted(skey, target), len(skey) - 1)
        hit = ok & (skey[pos] == target) if len(skey) else ok
        src.append(np.flatnonzero(hit))
        dst.append(pos[hit])
    src, dst = np.concatenate(src), np.concatenate(dst)
    n = len(skey)
    graph = sparse.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    n_cl, lab_sorted = connected_components(graph, directed=False)
    labels = np.empty(n, dtype=np.int64)
    labels[order] = lab_sorted
    q = pixels["charge"].to_numpy(np.float64)
    u_pix, v_pix = det.pixel_centre(pixels["iu"].to_numpy(), pixels["iv"].to_numpy())
    qs = np.bincount(labels, weights=q, minlength=n_cl)
    u = np.bincount(labels, weights=q * u_pix, minlength=n_cl) / qs - 0.5 * det.tan_lorentz * det.thickness
    v = np.bincount(labels, weights=q * v_pix, minlength=n_cl) / qs
    layer = np.zeros(n_cl, np.int64)
    ladder = np.zeros(n_cl, np.int64)
    layer[labels] = pixels["layer"].to_numpy()
    ladder[labels] = pixels["ladder"].to_numpy()
    size = np.bincount(labels, minlength=n_cl)

    def extent(col):
        lo = np.full(n_cl, np.iinfo(np.int64).max)
        hi = np.full(n_cl, -1)
        np.minimum.at(lo, labels, col)
        np.maximum.at(hi, labels, col)
        return hi - lo + 1

    owners = np.unique(np.stack([labels, pixels["particle_id"].to_numpy()], 1), axis=0)
    n_part = np.bincount(owners[:, 0], minlength=n_cl)
    x = np.zeros(n_cl)
    y = np.zeros(n_cl)
    for lay in np.unique(layer):
        m = layer == lay
        x[m], y[m], _ = det.to_global(int(lay), ladder[m], u[m], v[m])
    clusters = pd.DataFrame({"layer": layer, "ladder": ladder, "u": u, "v": v, "x": x, "y": y, "z": v,
                             "charge": qs, "size": size, "size_u": extent(pixels["iu"].to_numpy()),
                             "size_v": extent(pixels["iv"].to_numpy()), "n_particles": n_part})
    return clusters, labels
