"""Track finding by DBSCAN on unrolled helices: the seeding stage of seed 004 (Finnie & Finnie, TrackML 2018).

A particle from the beam line moves on a circle through the origin in the transverse plane. With the signed
curvature parameter k = q / (2 R) (R the radius, R[mm] = 1000 pT[GeV] / (0.3 B[T])), a hit at radius r seen
at azimuth phi lies on the track whose initial azimuth and slope are

    phi0 = phi + arcsin(k r),        s = arcsin(k r) / k  (the transverse arc length),     dz/ds = z / s.

For the right k, every hit of the track maps to one point (cos phi0, sin phi0, z / s): the hits of a track
cluster. DBSCAN finds the clusters for each k of a scan; each hit keeps the cluster of the hypothesis where
its cluster is largest (a longer track explains more hits), and clusters are cleaned of hits that break
the one-hit-per-module rule, keeping the hit nearest the cluster's centre ("outlier removal").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..event import Event
from .base import Method, register


def unrolled_coordinates(x, y, z, k: float, z_scale: float = 0.5, z0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(phi0, z_scale * (z - z0) / s) for curvature hypothesis k [1/mm]: the points DBSCAN clusters are
    (cos phi0, sin phi0, that)."""
    r = np.hypot(x, y)
    bend = np.arcsin(np.clip(k * r, -1.0, 1.0))
    s = bend / k if k != 0 else r
    return np.arctan2(y, x) + bend, z_scale * (z - z0) / np.maximum(s, 1e-9)


def unrolled_features(x, y, z, k: float, z_scale: float = 0.5, z0: float = 0.0) -> np.ndarray:
    """(cos phi0, sin phi0, z_scale * (z - z0) / s) for curvature hypothesis k [1/mm]."""
    phi0, w = unrolled_coordinates(x, y, z, k, z_scale, z0)
    return np.column_stack([np.cos(phi0), np.sin(phi0), w])


def cylinder_dbscan(phi0: np.ndarray, w: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN's labels (-1: noise) of the points (cos phi0, sin phi0, w): compiled on a grid of cells
    (`dbscan_fast`, about 15 times faster on a mu = 200 event) when numba is installed, else scikit-learn's
    DBSCAN; the same labels either way."""
    from .dbscan_fast import HAVE_NUMBA

    phi0, w = np.ascontiguousarray(phi0, np.float64), np.ascontiguousarray(w, np.float64)
    if HAVE_NUMBA:
        from .dbscan_fast import dbscan_cylinder

        return dbscan_cylinder(phi0, w, float(eps), int(min_samples))
    from sklearn.cluster import DBSCAN

    return DBSCAN(eps=eps, min_samples=min_samples).fit_predict(np.column_stack([np.cos(phi0), np.sin(phi0), w]))


@register("dbscan")
class DBSCANTracks(Method):
    """DBSCAN on unrolled helices, scanned over curvature.

    Parameters: ``pt_min`` [GeV] sets the largest curvature scanned, ``n_hypotheses`` the number of curvature
    values (both charges), ``eps`` and ``min_samples`` are DBSCAN's, ``z_scale`` weighs dz/ds against the
    azimuth, ``max_size`` caps the clusters that can win a hit (no true track has more hits), ``field``
    is the solenoid field [T], ``z0_values`` [mm] the origins along the beam scanned with each curvature (the
    beam spot is long: sigma_z is about 55 mm at the LHC, so z / s from z = 0 smears the tracks of displaced
    vertices, worst for inner hits). ``curvatures`` [1/mm], when given, replaces the even scan of
    ``pt_min`` / ``n_hypotheses`` by these values: the arcs learned from training events (`learn_arcs`).
    """

    trackml_modules = True
    # the parameters' ranges, checked when the method is made (`deepreco.registry.out_of_range`)
    ranges = {"pt_min": "> 0", "n_hypotheses": ">= 1", "eps": "> 0", "min_samples": ">= 1", "z_scale": "> 0",
              "max_size": ">= 1", "field": "> 0", "min_hits": ">= 1"}

    def __init__(self, pt_min: float = 0.5, n_hypotheses: int = 11, eps: float = 0.008, min_samples: int = 3,
                 z_scale: float = 0.2, max_size: int = 20, field: float = 2.0, min_hits: int = 3,
                 z0_values: tuple[float, ...] = (-60.0, 0.0, 60.0), curvatures: tuple[float, ...] | None = None):
        self.pt_min = pt_min
        self.n_hypotheses = n_hypotheses
        self.eps = eps
        self.min_samples = min_samples
        self.z_scale = z_scale
        self.max_size = max_size
        self.field = field
        self.min_hits = min_hits
        self.z0_values = tuple(float(v) for v in z0_values)
        self.curvatures = None if curvatures is None else tuple(float(v) for v in curvatures)

    def curvature_values(self) -> np.ndarray:
        """The curvature hypotheses [1/mm]: ``curvatures`` when given, else the even scan."""
        if self.curvatures is not None:
            return np.asarray(self.curvatures, np.float64)
        k_max = 0.3 * self.field / (2.0 * 1000.0 * self.pt_min)  # 1 / (2 R) at pt_min, in 1/mm
        return np.linspace(-k_max, k_max, self.n_hypotheses)

    def hypotheses(self, hits: pd.DataFrame):
        """DBSCAN's labels (one per hit, -1: noise) for each (curvature, z0) hypothesis in turn (a generator)."""
        x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
        for k, z0 in ((k, z0) for k in self.curvature_values() for z0 in self.z0_values):
            yield cylinder_dbscan(*unrolled_coordinates(x, y, z, k, self.z_scale, z0), self.eps, self.min_samples)

    def cluster(self, hits: pd.DataFrame, per_hypothesis: list | None = None) -> np.ndarray:
        """A cluster label per hit (-1: in no cluster), from the scan over curvature. ``per_hypothesis``, a
        list, receives each hypothesis's own labels (`hypotheses`), for seeds from all of them."""
        n = len(hits)
        best_size = np.zeros(n, np.int64)
        best_label = np.full(n, -1, np.int64)
        offset = 0
        for labels in self.hypotheses(hits):
            if per_hypothesis is not None:
                per_hypothesis.append(labels)
            clustered = labels >= 0
            sizes = np.bincount(labels[clustered], minlength=1)
            size = np.where(clustered, sizes[np.maximum(labels, 0)], 0)
            better = clustered & (size > best_size) & (size <= self.max_size)
            best_size[better] = size[better]
            best_label[better] = labels[better] + offset
            offset += len(sizes)
        return best_label

    def _reconstruct(self, event: Event) -> pd.DataFrame:
        hits = event.hits
        labels = self.cluster(hits)
        labels = _one_hit_per_module(hits, labels)
        keep = labels >= 0
        counts = np.bincount(labels[keep]) if keep.any() else np.zeros(0, np.int64)
        keep &= counts[np.maximum(labels, 0)] >= self.min_hits if keep.any() else keep
        _, track_id = np.unique(labels[keep], return_inverse=True)
        return pd.DataFrame({"hit_id": hits["hit_id"].to_numpy()[keep], "track_id": track_id + 1})


def _one_hit_per_module(hits: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """Drop from each cluster all but one hit per module: the one nearest the cluster's mean azimuth."""
    return one_hit_per_module(np.asarray(labels), np.arctan2(hits["y"].to_numpy(np.float64), hits["x"].to_numpy(
        np.float64)), module_ids(hits))


def module_ids(hits: pd.DataFrame) -> np.ndarray:
    """One int64 per hit naming its module (volume, layer, module)."""
    return (hits["volume_id"].to_numpy(np.int64) << 40) | (hits["layer_id"].to_numpy(np.int64) << 20) \
        | hits["module_id"].to_numpy(np.int64)


def one_hit_per_module(labels: np.ndarray, phi: np.ndarray, module: np.ndarray) -> np.ndarray:
    """`_one_hit_per_module` on arrays: of each cluster's hits on one module (``module`` ids), the one whose
    azimuth ``phi`` is nearest the cluster's mean azimuth keeps its label (the first of equals); the others get -1."""
    labels = labels.copy()
    idx = np.flatnonzero(labels >= 0)
    if len(idx) == 0:
        return labels
    phi = phi[idx]
    lab = labels[idx]
    c = np.bincount(lab, np.cos(phi))
    s = np.bincount(lab, np.sin(phi))
    centre = np.arctan2(s, c)[lab]
    distance = np.abs(np.angle(np.exp(1j * (phi - centre))))
    module = module[idx]
    order = np.lexsort((distance, module, lab))
    first = np.ones(len(order), bool)
    first[1:] = (lab[order][1:] != lab[order][:-1]) | (module[order][1:] != module[order][:-1])
    labels[idx[order[~first]]] = -1
    return labels


def track_arcs(event: Event, min_hits: int = 10) -> pd.DataFrame:
    """The arc of each true particle with at least ``min_hits`` hits, fitted to its hits: ``curvature`` k [1/mm]
    (a circle through the origin, x^2 + y^2 = 2 a x + 2 b y by least squares, k = +-1 / (2 R) with the sign
    that makes phi0 of `unrolled_features` most constant over the hits), ``z0`` [mm] and ``dz_ds`` (a straight
    line z = z0 + dz_ds s in the transverse arc length s). Needs the event's truth."""
    from ..errors import DeepRecoError

    if event.truth is None:
        raise DeepRecoError("learning arcs needs the events' truth")
    pid = event.truth.set_index("hit_id")["particle_id"].reindex(event.hits["hit_id"]).to_numpy(np.int64)
    rows = np.flatnonzero(pid != 0)
    particle, lab, count = np.unique(pid[rows], return_inverse=True, return_counts=True)
    rows = rows[count[lab] >= min_hits]
    particle, lab = np.unique(pid[rows], return_inverse=True)
    x, y, z = (event.hits[c].to_numpy(np.float64)[rows] for c in ("x", "y", "z"))
    r2 = x * x + y * y
    sxx, sxy, syy, sxr, syr = (np.bincount(lab, v) for v in (x * x, x * y, y * y, x * r2, y * r2))
    det = sxx * syy - sxy * sxy
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    radius = np.maximum(0.5 * np.hypot(sxr * syy - syr * sxy, syr * sxx - sxr * sxy) / np.abs(det), 1e-3)
    r, phi = np.sqrt(r2), np.arctan2(y, x)
    spread = []
    for sign in (1.0, -1.0):
        phi0 = phi + np.arcsin(np.clip(sign / (2.0 * radius[lab]) * r, -1.0, 1.0))
        spread.append(np.bincount(lab) - np.hypot(np.bincount(lab, np.cos(phi0)), np.bincount(lab, np.sin(phi0))))
    k = np.where(spread[0] <= spread[1], 1.0, -1.0) / (2.0 * radius)
    s = np.arcsin(np.clip(k[lab] * r, -1.0, 1.0)) / k[lab]
    n, ss, sz, sss, ssz = (np.bincount(lab, v) for v in (np.ones_like(s), s, z, s * s, s * z))
    den = n * sss - ss * ss
    slope = (n * ssz - ss * sz) / np.where(np.abs(den) < 1e-9, 1e-9, den)
    return pd.DataFrame({"particle_id": particle, "curvature": k, "z0": (sz - slope * ss) / n, "dz_ds": slope})


def learn_arcs(events, n_curvatures: int = 11, n_z0: int = 9, min_hits: int = 10, max_z0: float = 300.0,
               pt_min: float | None = 0.5, field: float = 2.0) -> dict:
    """Arc hypotheses for `DBSCANTracks` learned from training events (seed 004's "generate possible arcs
    using train data"): the true tracks' curvatures and origins along the beam are fitted (`track_arcs`), and
    the hypotheses are their quantiles, (i + 0.5) / n for i < n, so that they lie densest where the tracks are.
    Tracks with |z0| > ``max_z0`` (secondaries) are left out, and with ``pt_min`` [GeV] those more curved than
    a track of that pT in ``field`` [T], as in the even scan of `DBSCANTracks` (without it the many soft
    tracks' quantiles leave one hypothesis near k = 0 for all tracks above 1 GeV). Returns
    ``{"curvatures": [...], "z0_values": [...], "n_tracks": N}``, the keyword arguments of `DBSCANTracks`
    (plus the count)."""
    arcs = pd.concat([track_arcs(event, min_hits) for event in events], ignore_index=True)
    keep = np.abs(arcs["z0"]) < max_z0
    if pt_min is not None:
        keep &= np.abs(arcs["curvature"]) <= 0.3 * field / (2.0 * 1000.0 * pt_min)
    arcs = arcs[keep]
    if len(arcs) == 0:
        from ..errors import DeepRecoError

        raise DeepRecoError(f"no true track with at least {min_hits} hits to learn arcs from")
    q = lambda n: (np.arange(n) + 0.5) / n  # noqa: E731
    return {"curvatures": [float(v) for v in np.quantile(arcs["curvature"], q(n_curvatures))],
            "z0_values": [round(float(v), 2) for v in np.quantile(arcs["z0"], q(n_z0))], "n_tracks": len(arcs)}
