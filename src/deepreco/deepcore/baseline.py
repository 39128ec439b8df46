"""Classical jet-core seeding, as CMS seeded in jets before DeepCore: pairs of pixel clusters along the jet.

For each jet, the clusters of layers 1 and 2 within DeltaR < 0.1 (layer 2: 0.1 + 0.02, tracks bend) of the
jet axis, seen from the primary vertex, are paired, every layer-1 cluster with every layer-2 cluster. A pair is
a seed when it is compatible with the vertex and the tracking region:

- z: the straight line through the two clusters in (r, z) passes within ``z_tol`` (0.5 mm) of the vertex;
- pT: the circle through the vertex and the two clusters (in x, y) has pT = c B R >= ``pt_min`` (1 GeV).

Its parameters are read off that circle, at the layer-2 cluster: the position, the direction phi of the
tangent (the chord's direction turned by half the arc, kappa |c2 - c1| / 2), eta from the chord in (r, z), and
1/pT = |kappa| / (c B). No cluster is split: two tracks in one merged cluster give at best one seed, in between.

The variant ``split=True`` is the K-means splitting that came before DeepCore: a core cluster carrying more
charge than one track (k = round(Q / (1.25 Q_mpv cosh eta)) >= 2, Q_mpv = 21,700 e) is cut into k clusters by
a charge-weighted K-means on its pixels (each layer separately).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .detector import C_LIGHT, PixelBarrel
from .events import JetEvent
from .pixelsim import E_PER_UM

__all__ = ["jetcore_seeds", "split_clusters"]

CONE = 0.1
CONE_LAYER2_EXTRA = 0.02
Z_TOL = 0.5
PT_MIN = 1.0
MEAN_OVER_MPV = 1.25
MAX_SPLIT = 4
_KMEANS_ITER = 10


def _kmeans(points: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Charge-weighted K-means in (u, v): the k centres and their charges (deterministic start along the
    cluster's long axis, where merged tracks separate)."""
    axis = np.argmax(np.ptp(points, axis=0))
    order = np.argsort(points[:, axis], kind="stable")
    centres = points[order[np.linspace(0, len(points) - 1, k).round().astype(int)]].copy()
    for _ in range(_KMEANS_ITER):
        label = np.argmin(((points[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        w = np.bincount(label, weights=weights, minlength=k)
        for dim in range(2):
            num = np.bincount(label, weights=weights * points[:, dim], minlength=k)
            centres[:, dim] = np.where(w > 0, num / np.maximum(w, 1e-9), centres[:, dim])
    return centres, w


def split_clusters(det: PixelBarrel, event: JetEvent, rows: np.ndarray, vertex_eta: np.ndarray) -> pd.DataFrame:
    """The clusters ``rows`` of the event, the heavy ones replaced by their K-means pieces."""
    cl = event.clusters.iloc[rows]
    mpv = E_PER_UM * 1000 * det.thickness
    k = np.clip(np.rint(cl["charge"].to_numpy() / (MEAN_OVER_MPV * mpv * np.cosh(vertex_eta))), 1, MAX_SPLIT)
    k = np.where(cl["size"].to_numpy() >= 2, k, 1).astype(int)
    out = [cl[k == 1]]
    heavy = np.flatnonzero(k > 1)
    if len(heavy):
        px = event.pixels
        lab = px["cluster"].to_numpy()
        order = np.argsort(lab, kind="stable")
        bounds = np.searchsorted(lab[order], np.arange(len(event.clusters) + 1))
        u_all, v_all = det.pixel_centre(px["iu"].to_numpy(), px["iv"].to_numpy())
        q_all = px["charge"].to_numpy(np.float64)
        pieces = []
        for i in heavy:
            c = rows[i]
            sel = order[bounds[c]:bounds[c + 1]]
            centres, w = _kmeans(np.stack([u_all[sel], v_all[sel]], 1), q_all[sel], int(min(k[i], len(sel))))
            layer, ladder = int(cl["layer"].iat[i]), int(cl["ladder"].iat[i])
            u = centres[:, 0] - 0.5 * det.tan_lorentz * det.thickness
            x, y, z = det.to_global(layer, np.full(len(u), ladder), u, centres[:, 1])
            pieces.append(pd.DataFrame({"layer": layer, "ladder": ladder, "u": u, "v": centres[:, 1], "x": x,
                                        "y": y, "z": z, "charge": w}))
        out.append(pd.concat(pieces, ignore_index=True))
    return pd.concat(out, ignore_index=True)


def jetcore_seeds(event: JetEvent, det: PixelBarrel | None = None, split: bool = False, cone: float = CONE,
                  z_tol: float = Z_TOL, pt_min: float = PT_MIN) -> pd.DataFrame:
    """Seeds (event, jet, x, y, z at layer 2, phi, eta, inv_pt) from pairs of layer-1 / layer-2 clusters."""
    det = det or PixelBarrel()
    cl = event.clusters
    pv = event.vertex
    d = cl[["x", "y", "z"]].to_numpy() - pv
    eta = np.arcsinh(d[:, 2] / np.hypot(d[:, 0], d[:, 1]))
    phi = np.arctan2(d[:, 1], d[:, 0])
    layer = cl["layer"].to_numpy()
    kappa_max = C_LIGHT * det.field_t / pt_min
    out = []
    for j, jet in enumerate(event.jets.itertuples()):
        dr = np.hypot(eta - jet.eta, np.mod(phi - jet.phi + np.pi, 2 * np.pi) - np.pi)
        sets = []
        for lay, cone_l in ((0, cone), (1, cone + CONE_LAYER2_EXTRA)):
            rows = np.flatnonzero((layer == lay) & (dr < cone_l))
            sets.append(split_clusters(det, event, rows, eta[rows]) if split else cl.iloc[rows])
        c1, c2 = (s[["x", "y", "z"]].to_numpy() for s in sets)
        if len(c1) == 0 or len(c2) == 0:
            continue
        a = c1[:, None, :] - pv  # (n1, 1, 3) vertex -> layer 1
        b = c2[None, :, :] - pv  # (1, n2, 3) vertex -> layer 2
        chord = c2[None] - c1[:, None]
        la, lb, lc = np.hypot(a[..., 0], a[..., 1]), np.hypot(b[..., 0], b[..., 1]), np.hypot(chord[..., 0],
                                                                                                  chord[..., 1])
        kappa = 2 * (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]) / (la * lb * lc)  # signed, 1/mm
        r1, r2 = la, lb
        z0 = c1[:, None, 2] - (c2[None, :, 2] - c1[:, None, 2]) / (r2 - r1) * r1
        good = (np.abs(z0 - pv[2]) < z_tol) & (np.abs(kappa) <= kappa_max) & (r2 > r1)
        i1, i2 = np.nonzero(good)
        if len(i1) == 0:
            continue
        ch = chord[i1, i2]
        tphi = np.arctan2(ch[:, 1], ch[:, 0]) + 0.5 * kappa[i1, i2] * lc[i1, i2]
        out.append(pd.DataFrame({"event": event.event_id, "jet": j, "x": c2[i2, 0], "y": c2[i2, 1], "z": c2[i2, 2],
                                 "phi": np.mod(tphi + np.pi, 2 * np.pi) - np.pi,
                                 "eta": np.arcsinh(ch[:, 2] / lc[i1, i2]),
                                 "inv_pt": np.abs(kappa[i1, i2]) / (C_LIGHT * det.field_t)}))
    if not out:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ("event", "jet", "x", "y", "z", "phi", "eta",
                                                                 "inv_pt")})
    return pd.concat(out, ignore_index=True)
