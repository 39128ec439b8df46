"""A time window around the hard collision: hits too early or too late for it left out before clustering.

Pile-up collisions are spread in time (180 ps here, `guns.PILEUP_TIME_SPREAD_NS`, as at the HL-LHC) and the hard
collision is at t0 (0 in these events; at the HL-LHC the vertex's time is measured by the timing layer). A hit's
time, less its flight time from the origin, is then t0 within the hit's own time resolution for the hard collision's
showers, and spread by 180 ps for pile-up. The resolution is the digitisation's (`truth.digitise`):
sigma_t = sqrt((1 ns / (S/N))^2 + (20 ps)^2), S/N the hit's energy over the layer's noise width (known from the
detector, no truth). `in_time` keeps the hits within ``k`` sigma_t of t0; a 20-MIP hit has sigma_t = 22 ps, so a
3-sigma window drops the pile-up hits of the collisions more than 66 ps from t0, about 70 % of them, while a
hit of 1 MIP (150 ps) is kept unless it is far out. The slow component of hadronic showers (`showers`, late by
nanoseconds) is dropped with it.

`InTime` runs any method on the hits the window keeps and gives the whole event's hit table back (the others in
no cluster); a method's name with ``+tK`` last gives it (``get_method("clue+t3")``, ``deepreco calo evaluate
--methods clue+t3,garnet+t3``).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from ..errors import DeepRecoError, EventError
from .geometry import C_MM_PER_NS, DEFAULT, Calorimeter

CONSTANT_TERM_NS = 0.02  # the constant term of the hits' time resolution


_SUFFIX = re.compile(r"^(?P<base>.+)\+t(?P<k>[0-9]+(\.[0-9]+)?)$")


def split_window(name: str) -> tuple[str, float | None]:
    """(the method's name, K) of a name ending in ``+tK``; (name, None) for others; K = 0 is an error."""
    m = _SUFFIX.match(name)
    if m is None:
        return name, None
    return m["base"], check_window(float(m["k"]))


def check_window(k) -> float:
    """``k`` as a float > 0; DeepRecoError otherwise."""
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not np.isfinite(k) or k <= 0:
        raise DeepRecoError(f"time window must be a number of sigma_t above 0, got {k!r}")
    return float(k)


def resolution(energy: np.ndarray, layer: np.ndarray, geometry: Calorimeter = DEFAULT) -> np.ndarray:
    """The time resolution [ns] of hits of ``energy`` [GeV] on ``layer``: sqrt((1 ns / (S/N))^2 + (20 ps)^2), S/N the
    energy over the layer's noise width; the digitisation smears the hits' times by it (`truth.digitise`)."""
    s_over_n = np.asarray(energy, np.float64) / (geometry.noise_mips * geometry["mip"][layer])
    return np.sqrt((1.0 / np.maximum(s_over_n, 1e-6)) ** 2 + CONSTANT_TERM_NS ** 2)


def sigma_t(hits: pd.DataFrame, geometry: Calorimeter = DEFAULT) -> np.ndarray:
    """Each hit's time resolution [ns] from its energy and its layer's noise width (`resolution`)."""
    layer = hits["layer"].to_numpy(np.int64)
    if len(layer) and (layer.min() < 0 or layer.max() >= len(geometry["mip"])):
        raise EventError(f"time window: hits need layers in 0..{len(geometry['mip']) - 1} (their noise width "
                         f"gives their time resolution), got {int(layer.min())}..{int(layer.max())}")
    return resolution(hits["energy"].to_numpy(np.float64), layer, geometry)


def in_time(hits: pd.DataFrame, k: float, t0: float = 0.0, geometry: Calorimeter = DEFAULT,
            t0_sigma: float = 0.0) -> np.ndarray:
    """Bool per hit: its time less its flight time from the origin within ``k`` sigma of ``t0`` [ns], sigma being
    sigma_t and ``t0_sigma`` (the error of a measured t0, ns) in quadrature."""
    k = check_window(k)
    if len(hits) and not hits["time"].to_numpy().any():
        raise EventError("time window: the hits carry no time (all 0); a method with +tK needs the hits' times")
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    flight = np.sqrt(x * x + y * y + z * z) / C_MM_PER_NS
    sigma = np.hypot(sigma_t(hits, geometry), t0_sigma)
    return np.abs(hits["time"].to_numpy(np.float64) - flight - t0) <= k * sigma


def cut(event, keep: np.ndarray):
    """The event with only the hits ``keep`` (and their truth and fractions); particles as they were."""
    hits = event.hits[keep].reset_index(drop=True)
    ids = hits["hit_id"]
    changes = {"hits": hits}
    for name in ("truth", "fractions"):
        table = getattr(event, name, None)
        if table is not None:
            changes[name] = table[table["hit_id"].isin(ids)].reset_index(drop=True)
    return dataclasses.replace(event, **changes)


@dataclasses.dataclass
class InTime:
    """``base`` run on the hits within ``k`` sigma of ``t0`` (`in_time`, ``t0_sigma`` the error of t0 when it is
    a measured vertex time); the others in no cluster."""

    base: object
    k: float = 3.0
    t0: float = 0.0
    t0_sigma: float = 0.0
    name: str = ""

    def __post_init__(self):
        self.k = check_window(self.k)
        self.name = self.name or f"{self.base.name}+t{self.k:g}"
        self.geometry = getattr(self.base, "geometry", DEFAULT)

    def reconstruct(self, event):
        keep = in_time(event.hits, self.k, self.t0, self.geometry, self.t0_sigma)
        ht, clusters = self.base.reconstruct(cut(event, keep))
        full = ht.set_index("hit_id").reindex(event.hits["hit_id"].to_numpy())  # the hits left out: NaN
        full = full.fillna({"cluster_id": -1}).fillna(0)  # in no cluster; hit_class 0 (noise)
        full = full.astype({c: ht[c].dtype for c in full.columns}).reset_index()
        return full, clusters


__all__ = ["InTime", "check_window", "cut", "in_time", "resolution", "sigma_t", "split_window"]
