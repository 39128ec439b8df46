"""Superclusters: an electron's clusters and those of its bremsstrahlung photons joined, as e/gamma
reconstruction does without the track (CMS's "mustache" superclustering has the same idea).

Why. An electron radiates in the tracker (`propagate`); each photon flies on straight from where it was made,
while the electron, softer after radiating, bends on in the 3.8 T field. At the face the photons lie along the
electron's arc, up to hundreds of mm away (`benchmarks/calo_electrons.py`: the lost 5-20 GeV electrons' photons
carried 0.41-0.87 of the energy and landed 57-490 mm from it). No clustering joins those, so a clustering finds
such an electron in none of its clusters; a supercluster holds them.

The window follows from the helix. Over the longitudinal distance z to the face a charged particle turns by
Psi = 0.3 B z / p_z (rad; T, m, GeV), and its impact's azimuth, seen from the beam line, is half that from its
start; a photon made on the way lands between the start's azimuth and the electron's impact. So a photon of
an electron whose own cluster has energy E lies within |Delta phi| <= Psi / 2 = 0.15 B z / (E |tanh eta|) of
it. In eta, the photons keep the electron's direction while the electron's impact, having curled, lies at
larger |eta| (by about Psi^2 / 24): a band |Delta eta| <= ``eta_base`` + ``eta_curve`` Delta phi^2.

The rule (`superclusters`): largest first, a seed cluster (at least ``seed_energy`` GeV and ``seed_em`` of its
energy in CE-E; a muon's track, by its shape, is never a seed nor taken) takes every smaller cluster of the same
endcap that is electromagnetic (at least ``member_em`` in CE-E), untaken, and within the window of the seed's
energy times ``phi_scale``. The supercluster's energy is the sum of its members' (the method's calibrated energies), its
position their energy-weighted centre, its class the seed's. Two photons close together make one
supercluster: superclusters are the level of electrons and photons as objects, not a better clustering (the
close-pair scan and the gun table judge clusters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DeepRecoError
from .clue import MIP, shape_kind
from .geometry import DEFAULT, Calorimeter

B_TESLA = 3.8  # the field of `propagate.to_face`


@dataclass(frozen=True)
class Window:
    """The superclustering's settings (see the module docstring)."""

    seed_energy: float = 1.0
    seed_em: float = 0.5
    member_em: float = 0.9
    phi_scale: float = 1.0
    phi_min: float = 0.02
    eta_base: float = 0.05
    eta_curve: float = 0.6
    b_tesla: float = B_TESLA

    def check(self) -> None:
        for name, value in self.__dict__.items():
            if not (isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
                    and value >= 0):
                raise DeepRecoError(f"supercluster window: {name} must be a number >= 0, got {value!r}")

    def half_phi(self, energy: np.ndarray, eta: np.ndarray, z_face_mm: float) -> np.ndarray:
        """The largest |Delta phi| of a photon from an electron of cluster ``energy`` (GeV) at ``eta``."""
        pz = np.maximum(np.asarray(energy, np.float64) * np.abs(np.tanh(eta)), 1e-3)
        return self.phi_min + self.phi_scale * 0.15 * self.b_tesla * (z_face_mm / 1000.0) / pz


def cluster_table(hits: pd.DataFrame, hit_table: pd.DataFrame, clusters: pd.DataFrame,
                  geometry: Calorimeter = DEFAULT) -> pd.DataFrame:
    """Per cluster (in ``clusters``' order): energy (the method's), kind, eta and phi of its centre, its share of
    raw energy in CE-E, its endcap's side (+1, -1) and ``track``: a muon's track by its shape (`clue.shape_kind`;
    not the method's class, which a network gives some pieces of an electron's shower)."""
    cid = hit_table["cluster_id"].to_numpy()
    ok = cid >= 0
    layer = hits["layer"].to_numpy(np.int64)[ok]
    e = hits["energy"].to_numpy()[ok]
    sums = pd.DataFrame({"c": cid[ok], "e": e, "em": e * geometry["is_em"][layer],
                         "side": e * np.sign(hits["z"].to_numpy()[ok])}).groupby("c").sum()
    ids = clusters["cluster_id"].to_numpy()
    x, y, z = (clusters[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    return pd.DataFrame({"cluster_id": ids, "energy": clusters["energy"].to_numpy(np.float64),
                         "kind": clusters["kind"].to_numpy(np.int64),
                         "eta": np.arcsinh(z / np.maximum(np.hypot(x, y), 1e-9)), "phi": np.arctan2(y, x),
                         "em": (sums["em"] / sums["e"]).reindex(ids).fillna(0.0).to_numpy(),
                         "side": np.sign(sums["side"]).reindex(ids).fillna(0.0).to_numpy(),
                         "track": (shape_kind(hits, cid, geometry).reindex(ids) == MIP).to_numpy()})


def assign(table: pd.DataFrame, window: Window = Window(), z_face_mm: float = DEFAULT.z_front) -> np.ndarray:
    """For each row of `cluster_table`, the row of the supercluster's seed it joins (itself for a seed or a
    cluster left alone)."""
    window.check()
    n = len(table)
    into = np.arange(n)
    if n < 2:
        return into
    energy, eta, phi = (table[c].to_numpy() for c in ("energy", "eta", "phi"))
    em, side = table["em"].to_numpy(), table["side"].to_numpy()
    taken = table["track"].to_numpy(bool).copy()
    member = (em >= window.member_em) & ~taken
    half_phi = window.half_phi(energy, eta, z_face_mm)
    for i in np.argsort(-energy, kind="stable"):
        if taken[i] or energy[i] < window.seed_energy or em[i] < window.seed_em:
            continue
        taken[i] = True
        dphi = np.abs((phi - phi[i] + np.pi) % (2 * np.pi) - np.pi)
        near = (member & ~taken & (side == side[i]) & (energy <= energy[i]) & (dphi <= half_phi[i])
                & (np.abs(eta - eta[i]) <= window.eta_base + window.eta_curve * dphi ** 2))
        into[near] = i
        taken[near] = True
    return into


def superclusters(hits: pd.DataFrame, hit_table: pd.DataFrame, clusters: pd.DataFrame,
                  geometry: Calorimeter = DEFAULT, window: Window = Window()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A method's output (hit table, cluster table) made into superclusters: the same two tables, each hit's
    ``cluster_id`` its supercluster's (the seed's id), the cluster table one row per supercluster (energy the
    sum of its members', position their energy-weighted centre, the seed's kind) with ``n_clusters``."""
    if len(clusters) == 0:
        return hit_table, clusters.assign(n_clusters=np.zeros(0, np.int64))
    table = cluster_table(hits, hit_table, clusters, geometry)
    into = assign(table, window, geometry.z_front)
    ids = table["cluster_id"].to_numpy()
    new_id = pd.Series(ids[into], index=ids)
    cid = hit_table["cluster_id"].to_numpy()
    out_ids = cid.copy()
    ok = cid >= 0
    out_ids[ok] = new_id.reindex(cid[ok]).fillna(-1).to_numpy(np.int64)
    e = clusters["energy"].to_numpy(np.float64)
    g = pd.DataFrame({"sc": ids[into], "e": e, "ex": e * clusters["x"].to_numpy(), "ey": e * clusters["y"].to_numpy(),
                      "ez": e * clusters["z"].to_numpy(), "n_hits": clusters["n_hits"].to_numpy(),
                      "n": 1}).groupby("sc", sort=False).sum()
    seed_rows = pd.Series(np.arange(len(ids)), index=ids).loc[g.index].to_numpy()
    weight = np.where(g["e"].to_numpy() > 0, g["e"].to_numpy(), 1.0)
    out = pd.DataFrame({"cluster_id": g.index.to_numpy(np.int64), "energy": g["e"].to_numpy(),
                        "kind": clusters["kind"].to_numpy(np.int64)[seed_rows],
                        "n_hits": g["n_hits"].to_numpy(np.int64),
                        "x": g["ex"].to_numpy() / weight, "y": g["ey"].to_numpy() / weight,
                        "z": g["ez"].to_numpy() / weight, "n_clusters": g["n"].to_numpy(np.int64)})
    return hit_table.assign(cluster_id=out_ids), out.sort_values("cluster_id", kind="stable").reset_index(drop=True)


@dataclass
class Superclustered:
    """Another method's clusters made into superclusters (`superclusters`); ``get_method("NAME+sc")``."""

    base: object
    window: Window = Window()
    name: str = ""

    def __post_init__(self):
        self.window.check()
        self.name = self.name or f"{self.base.name}+sc"
        self.geometry = getattr(self.base, "geometry", DEFAULT)

    def reconstruct(self, event):
        ht, cl = self.base.reconstruct(event)
        return superclusters(event.hits, ht, cl, self.geometry, self.window)


__all__ = ["Superclustered", "Window", "assign", "cluster_table", "superclusters"]
