"""Hit features and training windows for the track-extending LSTM of seed 004.

The seed feeds its LSTM the polar coordinates (phi, r, z, z/r) of a track's hits, ordered from the beam line
outward. Here phi is taken relative to the first hit of the window, so that the model sees every track as if
it started at phi = 0 (the detector is symmetric in phi; a fixed origin would make the model learn the same
curve 2 pi / dphi times over); predictions are turned back by adding that phi. Each feature is then
standardised with the mean and standard deviation of the training windows, stored with the model.
"""

from __future__ import annotations

import numpy as np

N_SEED = 5  # hits the model is given
N_OUT = 10  # hits it outputs: the seed hits again and the next five
N_FEATURES = 4  # phi (relative), r, z, z / r
N_INPUTS = 2 * N_FEATURES  # the features and their differences to the last seed hit
# Input sets (the seed's room for improvement: "all three Cartesian coordinates and the cells' direction as
# inputs"): ``polar`` as the seed; ``+xyz`` adds x, y, z in the frame turned by the first hit's azimuth and their
# differences to the last seed hit; ``+cells`` adds the cluster shape's direction of each hit, (c_z, c_phi) of
# `gnn.features.cluster_directions`.
INPUT_SETS = {"polar": N_INPUTS, "polar+xyz": N_INPUTS + 6, "polar+xyz+cells": N_INPUTS + 8}


def wrap(angle: np.ndarray) -> np.ndarray:
    """Angles into [-pi, pi)."""
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def outward_order(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The distance from the origin: sorting a track's hits by it orders them from the beam line outward."""
    return np.sqrt(x * x + y * y + z * z)


def polar(xyz: np.ndarray, phi_ref: np.ndarray) -> np.ndarray:
    """(B, T, 3) cartesian points -> (B, T, 4) features (phi - phi_ref, r, z, z / r); ``phi_ref`` is (B,)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    r = np.hypot(x, y)
    phi = wrap(np.arctan2(y, x) - np.asarray(phi_ref)[:, None])
    return np.stack([phi, r, z, z / np.maximum(r, 1.0)], axis=-1)


def cartesian(features: np.ndarray, phi_ref: np.ndarray) -> np.ndarray:
    """(B, T, 4) unnormalised features -> (B, T, 3) cartesian points; r and z are taken as predicted."""
    phi = features[..., 0] + phi_ref[:, None]
    r = np.maximum(features[..., 1], 0.0)
    return np.stack([r * np.cos(phi), r * np.sin(phi), features[..., 2]], axis=-1)


class Normaliser:
    """Standardises the model's inputs and outputs, per feature: (f - mean) / std.

    Inputs are, per seed hit, the four features and their differences to the last seed hit (8 numbers: the
    absolute values tell the model where the detector's layers are, the differences carry the track's local
    direction at full precision), and with the input sets beyond ``polar`` (`INPUT_SETS`) the turned x, y, z and
    their differences, and the cluster directions; outputs are the differences of each of the 10 hits to the last
    seed hit, so that the regression's scale is that of a few layers, not of the whole detector.
    """

    def __init__(self, in_mean, in_std, out_mean, out_std, inputs: str = "polar"):
        from ...errors import FormatError

        if inputs not in INPUT_SETS:
            raise FormatError(f"unknown lstm inputs {inputs!r}; expected one of {', '.join(INPUT_SETS)}")
        self.inputs_set = inputs
        self.in_mean = np.asarray(in_mean, np.float64).reshape(INPUT_SETS[inputs])
        self.in_std = np.maximum(np.asarray(in_std, np.float64).reshape(INPUT_SETS[inputs]), 1e-9)
        self.out_mean = np.asarray(out_mean, np.float64).reshape(N_FEATURES)
        self.out_std = np.maximum(np.asarray(out_std, np.float64).reshape(N_FEATURES), 1e-9)

    @property
    def needs_cells(self) -> bool:
        return "cells" in self.inputs_set

    @classmethod
    def fit(cls, windows: np.ndarray, cells: np.ndarray | None = None, inputs: str = "polar") -> Normaliser:
        """From (N, 10, 4) training windows of features (`window_features`) and, for the ``+cells`` input sets,
        the (N, 10, 2) cluster directions of their hits."""
        raw_in, raw_out = _raw(windows, cells, inputs)
        flat_in, flat_out = raw_in[:, :N_SEED].reshape(-1, raw_in.shape[-1]), raw_out.reshape(-1, N_FEATURES)
        return cls(flat_in.mean(0), flat_in.std(0), flat_out.mean(0), flat_out.std(0), inputs)

    def inputs(self, features: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        """(B, >=5, 4) features (first five: the seed) -> (B, 10, n) normalised inputs, steps 5..9 zeroed."""
        raw_in, _ = _raw(features, cells, self.inputs_set)
        out = np.zeros((len(features), N_OUT, raw_in.shape[-1]), np.float32)
        out[:, :N_SEED] = (raw_in[:, :N_SEED] - self.in_mean) / self.in_std
        return out

    def targets(self, features: np.ndarray) -> np.ndarray:
        """(B, 10, 4) features -> (B, 10, 4) normalised targets."""
        _, raw_out = _raw(features)
        return ((raw_out - self.out_mean) / self.out_std).astype(np.float32)

    def decode(self, outputs: np.ndarray, features: np.ndarray) -> np.ndarray:
        """(B, 10, 4) model outputs -> (B, 10, 4) features, given the (B, >=5, 4) seed features."""
        return outputs.astype(np.float64) * self.out_std + self.out_mean + features[:, N_SEED - 1:N_SEED]

    def to_dict(self) -> dict:
        out: dict = {k: [float(v) for v in getattr(self, k)] for k in ("in_mean", "in_std", "out_mean", "out_std")}
        if self.inputs_set != "polar":  # files of the seed's inputs stay as they were
            out["inputs"] = self.inputs_set
        return out


def _raw(features: np.ndarray, cells: np.ndarray | None = None, inputs: str = "polar"
         ) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised (inputs (B, T, n), outputs (B, T, 4)): features and their differences to hit 4, then the
    input set's extras (see `INPUT_SETS`)."""
    delta = features - features[:, N_SEED - 1:N_SEED]
    parts = [features, delta]
    if "xyz" in inputs:
        phi, r = features[..., 0], features[..., 1]
        turned = np.stack([r * np.cos(phi), r * np.sin(phi), features[..., 2]], axis=-1)
        parts += [turned, turned - turned[:, N_SEED - 1:N_SEED]]
    if "cells" in inputs:
        if cells is None:
            from ...errors import DeepRecoError

            raise DeepRecoError("this lstm model reads the hits' cluster directions: the event needs its cells")
        parts.append(cells[:, :features.shape[1]])
    return np.concatenate(parts, axis=-1), delta


def model_inputs(seed_xyz: np.ndarray, norm: Normaliser, cells: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, 5, 3) seed hits (and their (B, 5, 2) cluster directions, for the ``+cells`` input sets) -> the
    (B, 10, n) normalised model input (hits 5..9 zeroed, as the seed does), the seed features and the reference
    azimuth of each seed (its first hit's)."""
    phi_ref = np.arctan2(seed_xyz[:, 0, 1], seed_xyz[:, 0, 0])
    features = polar(seed_xyz, phi_ref)
    return norm.inputs(features, cells), features, phi_ref


def true_tracks(event, min_hits: int = N_OUT, one_per_layer: bool = True,
                inward: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hits of each true particle with at least ``min_hits`` hits, ordered outward.

    With ``one_per_layer`` a hit on the same layer as the hit before it (overlapping modules) is left out: the
    next hit is then on the next layer, which the model can learn, rather than either 2 mm or 10 cm away.
    ``inward`` orders them the other way, from the outside in (for a model that extends tracks inward).
    Returns (hit row indices sorted by particle then outward, start offset of each particle, hit count of each
    particle); noise is left out.
    """
    hits, truth = event.hits, event.truth
    pid = truth.set_index("hit_id")["particle_id"].reindex(hits["hit_id"]).to_numpy(np.int64)
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    rows = np.flatnonzero(pid != 0)
    distance = outward_order(x[rows], y[rows], z[rows])
    order = rows[np.lexsort((-distance if inward else distance, pid[rows]))]
    if one_per_layer and len(order):
        layer = hits["volume_id"].to_numpy(np.int64)[order] * 1000 + hits["layer_id"].to_numpy(np.int64)[order]
        again = np.zeros(len(order), bool)
        again[1:] = (layer[1:] == layer[:-1]) & (pid[order][1:] == pid[order][:-1])
        order = order[~again]
    _, start, count = np.unique(pid[order], return_index=True, return_counts=True)
    keep = count >= min_hits
    return order, start[keep], count[keep]


def training_windows(event, max_windows: int = 4, inward: bool = False, rows: bool = False):
    """(N, 10, 3) windows of 10 consecutive hits (outward) of the true tracks with >= 10 hits.

    Each track gives its first window (hits 0..9, the one the seed trains on) and up to ``max_windows - 1``
    further ones shifted outward by one hit each, so that the model can also extend a track from its last
    five hits. ``inward``: the windows run from the outside in. Also returns the track (0, 1, ... in this
    event) of each window, and with ``rows`` the (N, 10) hit rows of the windows.
    """
    order, start, count = true_tracks(event, N_OUT, inward=inward)
    if len(start) == 0:
        empty = (np.zeros((0, N_OUT, 3)), np.zeros(0, np.int64))
        return (*empty, np.zeros((0, N_OUT), np.int64)) if rows else empty
    xyz = event.hits[["x", "y", "z"]].to_numpy(np.float64)
    n_shift = np.minimum(count - N_OUT + 1, max_windows)
    first = np.repeat(start, n_shift) + (np.arange(n_shift.sum()) - np.repeat(np.cumsum(n_shift) - n_shift, n_shift))
    index = order[first[:, None] + np.arange(N_OUT)]
    out = xyz[index], np.repeat(np.arange(len(start)), n_shift)
    return (*out, index) if rows else out


def seed_pt(points: np.ndarray, field: float = 2.0) -> np.ndarray:
    """(B, n, 3) hits -> (B,) the transverse momentum [GeV] of the circle through the origin that fits their x, y
    best (least squares, x^2 + y^2 = 2 a x + 2 b y, R = hypot(a, b)), in a solenoid of ``field`` [T]:
    pT = 0.3 B R / 1000 with R in mm. What a seed's five hits say of how curved its track is."""
    ab = origin_circle(points)
    return 0.3 * field * np.hypot(ab[..., 0], ab[..., 1]) / 1000.0


def origin_circle(points: np.ndarray) -> np.ndarray:
    """(..., n, 3) points -> (..., 2): the centre (a, b) of the circle through the origin that fits their x, y best,
    x^2 + y^2 = 2 a x + 2 b y by least squares."""
    x, y = points[..., 0], points[..., 1]
    a_ = np.stack([2.0 * x, 2.0 * y], axis=-1)
    normal = np.einsum("...ni,...nj->...ij", a_, a_) + 1e-9 * np.eye(2)
    return np.linalg.solve(normal, np.einsum("...ni,...n->...i", a_, x * x + y * y)[..., None])[..., 0]


def window_features(windows: np.ndarray) -> np.ndarray:
    """(N, 10, 3) cartesian windows -> (N, 10, 4) features relative to each window's first hit."""
    phi_ref = np.arctan2(windows[:, 0, 1], windows[:, 0, 0])
    return polar(windows, phi_ref)
