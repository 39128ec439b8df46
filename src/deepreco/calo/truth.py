"""Truth and digitisation: spots become cells with noise, a threshold, a time, and per-particle fractions.

The truth definition follows the seed's backup slides ("boundary crossing"): the particle of a hit is the
object that crossed into the calorimeter. A bremsstrahlung photon that crosses on its own with more than
``brem_threshold`` GeV is its own particle (parent_id = its electron or muon); a softer one is folded into its
parent: an electron's true energy (at the face) then includes it, a muon's (which radiated it inside the
calorimeter, out of its own energy) does not.

Each cell sums its spots per particle and per class; the electronics add Gaussian noise of ``noise_mips`` x
the layer's MIP energy; cells above ``threshold_mips`` x MIP are hits. Empty cells fire with the Gaussian
tail probability above the threshold (noise hits, particle 0, class noise). A hit's time is the
energy-weighted time of its spots smeared by sigma_t = sqrt((1 ns / (S/N))^2 + (20 ps)^2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .event import CaloEvent
from .geometry import C_MM_PER_NS, Calorimeter
from .showers import EM, HAD, MIP, NOISE, Spots
from .timing import resolution

KIND_OF_PDG = {11: EM, 22: EM, 13: MIP}


def kind_of(pdg: np.ndarray) -> np.ndarray:
    a = np.abs(np.asarray(pdg))
    return np.where((a == 11) | (a == 22), EM, np.where(a == 13, MIP, HAD))


def resolve_parents(objects: pd.DataFrame, brem_threshold: float) -> np.ndarray:
    """For each object, the particle it counts as: itself, or (a soft secondary) its parent."""
    obj = objects["obj"].to_numpy()
    parent = objects["parent"].to_numpy()
    energy = objects["energy"].to_numpy()
    present = set(obj.tolist())
    owner = obj.copy()
    soft = (parent > 0) & (energy < brem_threshold) & np.isin(parent, list(present))
    owner[soft] = parent[soft]
    # a parent may itself be folded in (a brem of a brem): follow the chain
    lookup = dict(zip(obj.tolist(), owner.tolist(), strict=True))
    for _ in range(4):
        owner = np.array([lookup.get(o, o) for o in owner], dtype=np.int64)
    return owner


def _noise_cells(geo: Calorimeter, rng, sides=(1, -1)) -> pd.DataFrame:
    """Cells that fire on noise alone: per layer Binomial(n_cells, P(noise > threshold)), uniform in the
    annulus, with energies from the Gaussian tail above the threshold."""
    p_tail = stats.norm.sf(geo.threshold_mips / geo.noise_mips)
    n_cells = geo.n_cells()
    out = []
    for side in sides:
        n = rng.binomial(n_cells, p_tail)
        layer = np.repeat(np.arange(geo.n_layers), n)
        r = np.sqrt(rng.uniform(geo["r_min"][layer] ** 2, geo["r_max"][layer] ** 2))
        phi = rng.uniform(-np.pi, np.pi, len(layer))
        ix, iy = geo.cell_index(layer, r * np.cos(phi), r * np.sin(phi))
        # inverse survival function of the tail: values above the threshold, in units of sigma
        z = stats.norm.isf(rng.uniform(0, 1, len(layer)) * p_tail)
        out.append(pd.DataFrame({"cell": geo.cell_id(np.full(len(layer), side), layer, ix, iy),
                                 "energy": z * geo.noise_mips * geo["mip"][layer]}))
    return pd.concat(out, ignore_index=True).drop_duplicates("cell")


def digitise(spots: Spots, objects: pd.DataFrame, geo: Calorimeter, rng, brem_threshold: float = 1.0,
             event_id: int = 0, noise: bool = True, sides=(1,)) -> CaloEvent:
    """Hits, truth, fractions and particles from the spots of the objects of one event."""
    owner_of = dict(zip(objects["obj"].tolist(), resolve_parents(objects, brem_threshold).tolist(), strict=True))
    obj = spots["obj"].astype(np.int64)
    particle = np.array([owner_of.get(o, o) for o in np.unique(obj)], dtype=np.int64)[
        np.searchsorted(np.unique(obj), obj)] if len(obj) else obj
    layer = spots["layer"].astype(np.int64)
    inside = geo.inside(layer, spots["x"], spots["y"]) if len(layer) else np.zeros(0, bool)
    ix, iy = geo.cell_index(layer, spots["x"], spots["y"])
    cell = geo.cell_id(spots["side"], layer, ix, iy)
    sp = pd.DataFrame({"cell": cell, "particle": particle, "cls": spots["cls"].astype(np.int64),
                       "energy": spots["energy"], "et": spots["energy"] * spots["time"]})[inside]
    per_particle = sp.groupby(["cell", "particle"], sort=False)["energy"].sum().reset_index()
    per_class = sp.groupby(["cell", "cls"], sort=False)["energy"].sum().reset_index()
    cells = sp.groupby("cell", sort=True).agg(signal=("energy", "sum"), et=("et", "sum")).reset_index()
    cells["t_true"] = cells["et"] / np.maximum(cells["signal"], 1e-12)
    # dominant class of each cell
    per_class = per_class.sort_values(["cell", "energy"], ascending=[True, False]).drop_duplicates("cell")
    cells = cells.merge(per_class[["cell", "cls"]], on="cell", how="left")
    _, lay = geo.decode(cells["cell"].to_numpy())[:2]
    sigma = geo.noise_mips * geo["mip"][lay]
    cells["energy"] = cells["signal"] + (rng.normal(0, 1, len(cells)) * sigma if noise else 0.0)
    if noise:
        extra = _noise_cells(geo, rng, sides)
        extra = extra[~extra["cell"].isin(cells["cell"])]
        extra = extra.assign(signal=0.0, et=0.0, t_true=np.nan, cls=NOISE)
        cells = pd.concat([cells, extra[cells.columns]], ignore_index=True)
    x, y, z, lay = geo.cell_centre(cells["cell"].to_numpy())
    keep = cells["energy"].to_numpy() >= geo.threshold_mips * geo["mip"][lay]
    cells = cells[keep].reset_index(drop=True)
    x, y, z, lay = x[keep], y[keep], z[keep], lay[keep]
    n = len(cells)
    hit_id = np.arange(1, n + 1)
    # time: flight time for noise, energy-weighted spot time otherwise, smeared with the S/N
    t_true = cells["t_true"].to_numpy()
    flight = np.sqrt(x ** 2 + y ** 2 + z ** 2) / C_MM_PER_NS
    t_true = np.where(np.isfinite(t_true), t_true, flight + rng.uniform(-5, 5, n))
    sigma_t = resolution(cells["energy"].to_numpy(), lay, geo)  # the time window reads the same (`timing`)
    hits = pd.DataFrame({"hit_id": hit_id, "x": x, "y": y, "z": z, "layer": lay,
                         "energy": cells["energy"].to_numpy(), "time": t_true + rng.normal(0, 1, n) * sigma_t})
    cell_to_hit = pd.Series(hit_id, index=cells["cell"].to_numpy())
    frac = per_particle[per_particle["cell"].isin(cell_to_hit.index)].copy()
    frac["hit_id"] = cell_to_hit.loc[frac["cell"].to_numpy()].to_numpy()
    signal = cells.set_index("cell")["signal"]
    frac["fraction"] = frac["energy"].to_numpy() / signal.loc[frac["cell"].to_numpy()].to_numpy()
    frac = frac.rename(columns={"particle": "particle_id"})[["hit_id", "particle_id", "fraction", "energy"]]
    frac = frac.sort_values(["hit_id", "fraction"], ascending=[True, False]).reset_index(drop=True)
    main = frac.drop_duplicates("hit_id").set_index("hit_id")
    truth = pd.DataFrame({"hit_id": hit_id})
    truth["particle_id"] = main["particle_id"].reindex(hit_id).fillna(0).astype(np.int64).to_numpy()
    truth["fraction"] = main["fraction"].reindex(hit_id).fillna(1.0).to_numpy()
    truth["hit_class"] = cells["cls"].fillna(NOISE).astype(np.int64).to_numpy()
    particles = _particles(objects, owner_of, frac, hits)
    return CaloEvent(hits=hits, truth=truth, fractions=frac, particles=particles, event_id=event_id)


def _particles(objects: pd.DataFrame, owner_of: dict, frac: pd.DataFrame, hits: pd.DataFrame) -> pd.DataFrame:
    obj = objects.assign(owner=objects["obj"].map(owner_of))
    own = obj[obj["obj"] == obj["owner"]].set_index("obj")
    # an electron's folded brems left it in the tracker, so its energy at the face lacks theirs: add them; a
    # muon's photons were radiated inside the calorimeter, out of the energy it already holds: do not
    muon_owned = np.abs(own["pdg"].reindex(obj["owner"]).to_numpy()) == 13
    energy = obj[(obj["obj"] == obj["owner"]) | ~muon_owned].groupby("owner")["energy"].sum()
    e_hit = hits.set_index("hit_id")["energy"]
    deposited = (frac["fraction"] * e_hit.loc[frac["hit_id"].to_numpy()].to_numpy()).groupby(
        frac["particle_id"].to_numpy()).sum()
    n_hits = frac.groupby("particle_id").size()
    rho = np.hypot(own["x"], own["y"])
    out = pd.DataFrame({
        "particle_id": own.index.to_numpy(np.int64), "parent_id": own["parent"].to_numpy(np.int64),
        "pdg": own["pdg"].to_numpy(np.int64), "kind": kind_of(own["pdg"].to_numpy()),
        "energy": energy.loc[own.index].to_numpy(), "x": own["x"].to_numpy(), "y": own["y"].to_numpy(),
        "z": own["z"].to_numpy(), "eta": np.sign(own["z"]) * -np.log(np.tan(np.arctan2(rho, np.abs(own["z"])) / 2)),
        "phi": np.arctan2(own["y"], own["x"]).to_numpy(),
        "deposited": deposited.reindex(own.index).fillna(0.0).to_numpy(),
        "n_hits": n_hits.reindex(own.index).fillna(0).astype(np.int64).to_numpy(),
    })
    return out.reset_index(drop=True)


__all__ = ["EM", "HAD", "MIP", "NOISE", "digitise", "kind_of", "resolve_parents"]
