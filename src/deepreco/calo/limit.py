"""The resolution limit: what a perfect clustering would give, to judge every method against.

A perfect clustering gives each particle exactly its own share of every hit, so its energy is the particle's
``deposited`` energy (sum over hits of hit energy x the particle's fraction: the sampling, leakage, threshold
and noise of the calorimeter, none of the clustering). Calibrated by the median response of its kind and
energy, its resolution is

    sigma / E = (half the 16-84 % width of deposited / E_true) / median(deposited / E_true),

the same robust width as ``metrics.robust_resolution`` (the calibration divides out). Fitted against the true
energy with the usual calorimeter form, the three terms added in quadrature,

    sigma / E = sqrt(a^2 / E + b^2 + c^2 / E^2)     (E in GeV; a stochastic, b constant, c noise),

with each point weighted by its statistical error, sigma / sqrt(2 n) for a width from n particles.

Judged at the level of the gun's particles (`primaries`): an electron's bremsstrahlung photons from the
tracker, and a muon's radiated photons inside the calorimeter, count with the particle that was shot. Muons
are listed (their deposit, about 2 GeV, does not follow their energy) but not fitted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DeepRecoError
from .event import CaloEvent
from .guns import fixed
from .metrics import robust_resolution
from .simulate import simulate

SPECIES_NAMES = {22: "photon", 11: "electron", 211: "pion", 13: "muon"}
ENERGIES = (2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)


def root_of(particles: pd.DataFrame) -> pd.Series:
    """For each particle_id, the particle it descends from through ``parent_id`` (itself when a primary)."""
    parent = dict(zip(particles["particle_id"].tolist(), particles["parent_id"].tolist(), strict=True))
    root = {}
    for pid in parent:
        r, seen = pid, set()
        while parent.get(r, 0) > 0 and parent[r] in parent and r not in seen:
            seen.add(r)
            r = parent[r]
        root[pid] = r
    return pd.Series(root, dtype=np.int64)


def primaries(event: CaloEvent) -> CaloEvent:
    """The event with its truth at the level of the primary particles: every secondary's share of the hits,
    energy and deposit added to the particle it descends from (the same hits)."""
    p = event.particles
    if p is None or event.fractions is None:
        raise DeepRecoError(f"event {event.event_id} has no truth")
    if not (p["parent_id"] > 0).any():
        return event
    root = root_of(p)
    f = event.fractions.assign(particle_id=root.reindex(event.fractions["particle_id"]).fillna(
        event.fractions["particle_id"]).to_numpy(np.int64))
    f = f.groupby(["hit_id", "particle_id"], as_index=False)[["fraction", "energy"]].sum()
    f = f.sort_values(["hit_id", "fraction"], ascending=[True, False]).reset_index(drop=True)
    main = f.drop_duplicates("hit_id").set_index("hit_id")
    truth = event.truth.copy()
    has = truth["hit_id"].isin(main.index).to_numpy()
    truth.loc[has, "particle_id"] = main["particle_id"].reindex(truth.loc[has, "hit_id"]).to_numpy()
    truth.loc[has, "fraction"] = main["fraction"].reindex(truth.loc[has, "hit_id"]).to_numpy()
    p = p.assign(root=root.reindex(p["particle_id"]).to_numpy())
    sums = p.groupby("root")[["energy", "deposited"]].sum()
    top = p[p["particle_id"] == p["root"]].set_index("particle_id")
    # a muon's photons were radiated inside the calorimeter, out of the energy it already holds; an electron's
    # left it in the tracker, so its energy at the face lacks theirs
    energy = np.where(top["pdg"].abs() == 13, top["energy"], sums["energy"].reindex(top.index))
    top = top.assign(energy=energy,
                     deposited=sums["deposited"].reindex(top.index).to_numpy(),
                     n_hits=f.groupby("particle_id").size().reindex(top.index).fillna(0).to_numpy(np.int64))
    particles = top.drop(columns="root").reset_index()[list(event.particles.columns)]
    return CaloEvent(hits=event.hits, truth=truth, fractions=f, particles=particles, event_id=event.event_id)


def isolated_events(species: Sequence[int] = tuple(SPECIES_NAMES), energies: Sequence[float] = ENERGIES,
                    n_per: int = 50, seed: int = 0, eta: tuple[float, float] = (1.7, 2.8)) -> list[CaloEvent]:
    """``n_per`` events of one particle each for every (species, energy), at primary level (`primaries`):
    direction flat in ``eta`` and phi, event (species, energy, i) from the seed (seed, pdg, energy in MeV, i).
    The shot particle (particle_id 1, column ``gun`` True) has its energy as shot; a particle it made that
    reached the face without it (rare) stays a particle of its own."""
    events = []
    for pdg in species:
        for energy in energies:
            for i in range(n_per):
                rng = np.random.default_rng([seed, int(pdg), int(round(energy * 1000)), i])
                events.append(one_particle(pdg, energy, rng, eta, event_id=len(events)))
    return events


def one_particle(pdg: int, energy: float, rng, eta: tuple[float, float] = (1.7, 2.8), event_id: int = 0
                 ) -> CaloEvent:
    """One event of one particle of ``pdg`` (its sign at random, but for photons) and ``energy`` GeV, direction
    flat in ``eta`` and phi, all drawn from ``rng``; truth at primary level, the shot particle marked ``gun``."""
    table = fixed([int(pdg) * (1 if rng.uniform() < 0.5 or pdg == 22 else -1)], [float(energy)],
                  [rng.uniform(*eta)], [rng.uniform(-np.pi, np.pi)])
    event = primaries(simulate(table, seed=rng))
    gun = event.particles["particle_id"].to_numpy() == 1
    event.particles = event.particles.assign(gun=gun, energy=np.where(gun, float(energy), event.particles["energy"]))
    event.event_id = event_id
    return event


def species_name(pdg) -> np.ndarray:
    return np.array([SPECIES_NAMES.get(abs(int(p)), str(int(p))) for p in np.asarray(pdg)], dtype=object)


def perfect_particles(events: Sequence[CaloEvent]) -> pd.DataFrame:
    """The shot particle of every event (`isolated_events`) with its perfect-clustering energy (``deposited``)
    and its raw response deposited / energy."""
    rows = [e.particles.assign(event_id=e.event_id) for e in events]
    p = pd.concat(rows, ignore_index=True)
    p = p[p["gun"]] if "gun" in p else p
    return p.assign(species=species_name(p["pdg"]), response=p["deposited"] / p["energy"])


def limit_table(particles: pd.DataFrame, min_hits: int = 1) -> pd.DataFrame:
    """Per species and true energy: n, the scale (median deposited / E, the calibration a perfect clustering
    needs) and the calibrated resolution. ``particles``: `perfect_particles` (energies as shot)."""
    rows = []
    p = particles[particles["n_hits"] >= min_hits]
    for (species, energy), g in p.groupby(["species", "energy"]):
        scale, res = robust_resolution(g["response"].to_numpy())
        rows.append({"species": species, "energy": float(energy), "n": len(g), "scale": scale, "resolution": res})
    return pd.DataFrame(rows)


def resolution_model(energy, a, b, c=0.0):
    """sigma / E = sqrt(a^2 / E + b^2 + c^2 / E^2), E in GeV."""
    energy = np.asarray(energy, dtype=np.float64)
    return np.sqrt(a ** 2 / energy + b ** 2 + c ** 2 / energy ** 2)


def fit_resolution(energy, resolution, n, noise_term: bool = True) -> dict:
    """Least-squares fit of `resolution_model` (a, b, c >= 0; c fixed to 0 unless ``noise_term``) to points of
    ``resolution`` at ``energy`` from ``n`` particles each (error resolution / sqrt(2 n)); chi2 / ndf too."""
    from scipy.optimize import least_squares

    e, r, n = (np.asarray(v, dtype=np.float64) for v in (energy, resolution, n))
    ok = np.isfinite(r) & (n > 1) & (r > 0)
    e, r, n = e[ok], r[ok], n[ok]
    k = 3 if noise_term else 2
    if len(e) < k:
        raise DeepRecoError(f"fit_resolution: {len(e)} usable point(s) for {k} parameters")
    err = r / np.sqrt(2 * n)

    def resid(theta):
        return (resolution_model(e, *theta) - r) / err

    start = [0.2, 0.01, 0.1][:k]
    fit = least_squares(resid, start, bounds=(0, np.inf))
    a, b, c = (*fit.x, 0.0)[:3]
    ndf = max(len(e) - k, 1)
    return {"a": float(a), "b": float(b), "c": float(c), "chi2_ndf": float(2 * fit.cost / ndf), "points": len(e)}


def fits(table: pd.DataFrame, species: Sequence[str] = ("photon", "electron", "pion")) -> pd.DataFrame:
    """`fit_resolution` of `limit_table` for each showering species."""
    rows = []
    for s in species:
        g = table[table["species"] == s]
        if len(g):
            rows.append({"species": s, **fit_resolution(g["energy"], g["resolution"], g["n"])})
    return pd.DataFrame(rows)


def limit_at(table: pd.DataFrame, species: str, energy: float) -> float:
    """The limit's resolution of one species at one of the table's energies (NaN when absent)."""
    g = table[(table["species"] == species) & np.isclose(table["energy"], energy)]
    return float(g["resolution"].iloc[0]) if len(g) else float("nan")
