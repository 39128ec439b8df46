"""Isolated particles judged against the limit, and where the gun benchmark's particles are lost.

`judge`: every method on `limit.isolated_events` (one particle an event, truth at the level of the shot
particle): per species its efficiency above ``min_energy`` (the shot particle found by the rule of
``metrics.match``: a cluster holds more than half of its deposit and it more than half of the cluster), the
median response of the found ones, and per energy the resolution beside the limit's: by default the perfect
clustering of the same events (`limit.perfect_particles`), so that the ratio does not carry the sample's own
fluctuation twice (with 60 particles a point the limit of other events was up to 20 % off).

`losses`: on any events (the gun benchmark's), each particle's kind, whether it is a secondary (a
bremsstrahlung photon of the tracker, a muon's radiated photon) and the distance at the face to the nearest
other particle with at least ``comparable`` of its energy, with found or not, for the breakdown.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .evaluate import run_method
from .limit import limit_at, limit_table, perfect_particles, species_name
from .methods import get_method
from .metrics import particle_table, robust_resolution


def judge(methods: Sequence[str], events: Sequence, limit: pd.DataFrame | None = None, models_dir=None,
          min_energy: float = 5.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, per energy): summary per method and species: particles above ``min_energy``, efficiency,
    median response; per energy: n found, response, resolution, the limit's (``limit``, a `limit.limit_table`;
    by default that of ``events`` themselves) and their ratio."""
    if limit is None:
        limit = limit_table(perfect_particles(events))
    summary, per_energy = [], []
    for name in methods:
        _, p = run_method(get_method(name, models_dir), events)
        p = p[p["gun"]].assign(species=lambda d: species_name(d["pdg"]))
        for species, g in p.groupby("species"):
            above = g[g["energy"] >= min_energy]
            found = above[above["found"]]
            summary.append({"method": name, "species": species, "particles": len(above),
                            "efficiency": float(above["found"].mean()) if len(above) else float("nan"),
                            "response": robust_resolution(found["response"].to_numpy())[0]})
            for energy, e in g.groupby("energy"):
                f = e[e["found"]]
                med, res = robust_resolution(f["response"].to_numpy())
                lim = limit_at(limit, species, energy)
                per_energy.append({"method": name, "species": species, "energy": float(energy), "found": len(f),
                                   "efficiency": float(e["found"].mean()), "response": med, "resolution": res,
                                   "limit": lim, "ratio": res / lim if lim > 0 else float("nan")})
    return pd.DataFrame(summary), pd.DataFrame(per_energy)


def losses(methods: Sequence[str], events: Sequence, models_dir=None, comparable: float = 0.3) -> pd.DataFrame:
    """One row per (method, event, reconstructable particle): kind, secondary, dmin (mm), found."""
    rows = []
    for name in methods:
        method = get_method(name, models_dir)
        for event in events:
            ht, cl = method.reconstruct(event)
            p = particle_table(event, ht, cl)
            allp = event.particles
            xy, e_all, ids = allp[["x", "y"]].to_numpy(), allp["energy"].to_numpy(), allp["particle_id"].to_numpy()
            for r in p.itertuples():
                other = (ids != r.particle_id) & (e_all >= comparable * r.energy)
                d = np.hypot(xy[other, 0] - r.x, xy[other, 1] - r.y)
                rows.append({"method": name, "event_id": event.event_id, "particle_id": r.particle_id,
                             "kind": int(r.kind), "secondary": bool(r.parent_id > 0), "energy": r.energy,
                             "dmin": float(d.min()) if len(d) else np.inf, "found": bool(r.found)})
    return pd.DataFrame(rows)


def breakdown(table: pd.DataFrame, near_mm: float = 100.0) -> pd.DataFrame:
    """Per method: efficiency as measured, and the particles and efficiency of each group in turn (muons,
    secondaries, showering primaries with a comparable particle within ``near_mm``, the rest)."""
    rows = []
    for name, g in table.groupby("method", sort=False):
        mu = g["kind"] == 3
        sec = ~mu & g["secondary"]
        near = ~mu & ~sec & (g["dmin"] < near_mm)
        alone = ~mu & ~sec & ~near
        row = {"method": name, "all": len(g), "efficiency": g["found"].mean()}
        for label, sel in (("muons", mu), ("secondaries", sec), ("near", near), ("alone", alone)):
            row[f"{label} n"] = int(sel.sum())
            row[f"{label} eff"] = float(g.loc[sel, "found"].mean()) if sel.any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
