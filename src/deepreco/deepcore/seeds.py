"""DeepCore seeds from the network's output: per-overlap thresholds, parameters to the detector, cleaning.

A pixel of overlap k whose probability passes the threshold (0.85, 0.75, 0.65 for k = 1, 2, 3; 0.50, 0.40,
0.30 when the layer-2 window is empty, a missing module; all times ``scale``) gives one seed: its 5 parameters
turn back into a point on layer 2 (pixel centre + offset x 0.01 cm), a direction (window direction + 0.01 x (Delta phi,
Delta eta)) and 1 / pT. Every seed has the same uncertainties (:data:`SIGMA`), those of the seed's slides (the
q/pT one taken on 1/pT in GeV^-1, the unit CMS gives it). Each seed keeps its pixel's threshold at scale 1
(column ``threshold``), so that :func:`above` takes a stricter list from a looser one.

The seed's thresholds judge seeds as seeds (the seed-level figures). Seeds that go on to track building are taken
at :data:`TRACK_THRESHOLD_SCALE` (0.6) times them: the building's shared-hit resolution removes the duplicates
that looser thresholds add, and more true tracks get a seed (on 40 tuning events, seeds 500,000..,
`benchmarks/deepcore_tracks.py --tune-thresholds 40`: track efficiency 0.823 at the seed's thresholds, 0.846 at
0.8, 0.850 at 0.6 (1.5 times the seeds), 0.853 at 0.4 (1.8 times); fakes 0.021 -> 0.018).

Cleaning (:func:`clean_seeds`) works across windows: the seeds of all the directions (windows) of all the jets of
an event are pooled, in the global coordinates where they meet (the layer-2 point x, y, z and the direction eta,
phi), so that neighbouring windows that see the same track give seeds that coincide; of two seeds closer than
50 um on layer 2 (in r-phi and in z) and 0.002 in eta and phi, the less probable goes (greedy, most probable
first; a dropped seed drops no other). These are the seed's cuts and the default; they are arguments, because a
network's predictions from two windows only coincide to its resolution (``benchmarks/deepcore.py --tune``
measures how far apart duplicates of our model are).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .detector import PixelBarrel
from .windows import ANGLE_UNIT, HALF, POS_UNIT, PT_SCALE

__all__ = ["CLEAN_ANGLE", "CLEAN_XY", "SIGMA", "THRESHOLDS", "THRESHOLDS_LAYER2_MISSING", "TRACK_THRESHOLD_SCALE",
           "above", "check_scale", "clean_seeds", "extract_seeds"]

THRESHOLDS = (0.85, 0.75, 0.65)
THRESHOLDS_LAYER2_MISSING = (0.50, 0.40, 0.30)
TRACK_THRESHOLD_SCALE = 0.6
SIGMA = {"xy": 0.044, "z": 0.044, "eta": 0.002, "phi": 0.002, "inv_pt": 0.15}  # mm, mm, -, rad, 1/GeV
CLEAN_XY = 0.050
CLEAN_ANGLE = 0.002
SEED_COLUMNS = ("event", "jet", "sample", "slot", "prob", "threshold", "x", "y", "z", "phi", "eta", "inv_pt")


def extract_seeds(prob: np.ndarray, params: np.ndarray, meta: pd.DataFrame, det: PixelBarrel | None = None,
                  thresholds=THRESHOLDS, thresholds_missing=THRESHOLDS_LAYER2_MISSING,
                  scale: float = 1.0) -> pd.DataFrame:
    """Seeds from probabilities (n, 3, 30, 30) and parameters (n, 3, 5, 30, 30) of n windows (``meta`` rows),
    where the probability passes ``scale`` times the threshold."""
    check_scale(scale)
    det = det or PixelBarrel()
    missing = meta["layer2_missing"].to_numpy(bool)
    thr = np.where(missing[:, None], np.asarray(thresholds_missing)[None], np.asarray(thresholds)[None])
    ok = meta["ladder2"].to_numpy() >= 0
    s, k, a, b = np.nonzero((prob > scale * thr[:, :, None, None]) & ok[:, None, None, None])
    p = params[s, k, :, a, b].astype(np.float64)  # (m, 5)
    ladder = meta["ladder2"].to_numpy(np.int64)[s]
    iu = meta["iu2"].to_numpy(np.int64)[s] - HALF + a
    uc, vc = det.pixel_centre(iu, meta["iv2"].to_numpy(np.int64)[s] - HALF + b)
    x, y, z = det.to_global(1, ladder, uc + POS_UNIT * p[:, 0], vc + POS_UNIT * p[:, 1])
    phi = np.mod(meta["phi"].to_numpy()[s] + ANGLE_UNIT * p[:, 2] + np.pi, 2 * np.pi) - np.pi
    return pd.DataFrame({"event": meta["event"].to_numpy(np.int64)[s], "jet": meta["jet"].to_numpy(np.int64)[s],
                         "sample": s, "slot": k, "prob": prob[s, k, a, b], "threshold": thr[s, k],
                         "x": x, "y": y, "z": z, "phi": phi,
                         "eta": meta["eta"].to_numpy()[s] + ANGLE_UNIT * p[:, 3],
                         "inv_pt": np.clip(p[:, 4], 0, None) / PT_SCALE})


def check_scale(scale) -> None:
    """A threshold scale must be a positive number (one-line ValueError otherwise)."""
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.number) or not np.isfinite(scale) \
            or scale <= 0:
        raise ValueError(f"DeepCore seeds: the threshold scale must be a positive number, got {scale!r}")


def above(seeds: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    """The seeds whose probability passes ``scale`` times their pixel's threshold (column ``threshold``)."""
    check_scale(scale)
    return seeds[seeds["prob"].to_numpy() > scale * seeds["threshold"].to_numpy()].reset_index(drop=True)


def clean_seeds(seeds: pd.DataFrame, dxy: float = CLEAN_XY, dangle: float = CLEAN_ANGLE) -> pd.DataFrame:
    """Drop the less probable of every two seeds of an event closer than dxy [mm] (r-phi and z) and dangle (eta,
    phi), all windows and jets of the event together, in global coordinates (see the module docstring)."""
    for name, value in (("dxy", dxy), ("dangle", dangle)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value) \
                or value <= 0:
            raise ValueError(f"seed cleaning: {name} must be a positive number, got {value!r}")
    missing = [c for c in ("event", "prob", "x", "y", "z", "eta", "phi") if c not in seeds.columns]
    if missing:
        raise ValueError(f"seed cleaning: the seeds have no column {', '.join(missing)}")
    if len(seeds) < 2:
        return seeds.reset_index(drop=True)
    keep_all = []
    for _, group in seeds.groupby("event", sort=False):
        g = group.sort_values("prob", ascending=False, kind="stable")
        xy, z = g[["x", "y"]].to_numpy(np.float64), g["z"].to_numpy(np.float64)
        eta, phi = g["eta"].to_numpy(np.float64), g["phi"].to_numpy(np.float64)
        close = ((np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) < dxy)
                 & (np.abs(z[:, None] - z[None]) < dxy) & (np.abs(eta[:, None] - eta[None]) < dangle)
                 & (np.abs(np.mod(phi[:, None] - phi[None] + np.pi, 2 * np.pi) - np.pi) < dangle))
        keep = np.ones(len(g), bool)
        for i in np.flatnonzero(close.sum(1) > 1):  # only seeds with a close neighbour need the greedy pass
            if keep[i]:
                later = close[i].copy()
                later[: i + 1] = False
                keep[later] = False
        keep_all.append(g[keep])
    return pd.concat(keep_all).reset_index(drop=True)
