"""Calorimeter particle sources: guns of e, gamma, pi, mu, hadronic tau decays, Pythia 8 pile-up.

The particles of one event share a random axis in 1.6 < |eta| < 2.9 and spread around it by up to ``spread``
in (eta, phi), so that their showers overlap as much as one asks. ``pair`` puts two particles a set
distance apart at the calorimeter face, for efficiency against shower separation. ``taus`` aims taus the same
way and lets Pythia 8 decay them; ``with_pileup`` adds the particles of Poisson(mu) minimum-bias collisions.
The table is the generators' particle table (``deepreco.generate``) so any of them can feed the simulation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from deepreco.generate.gun import pdg_charge
from deepreco.generate.table import TRACKER_R_MM, GeneratorError, as_rng, particle_table

from ..errors import EventError
from .geometry import DEFAULT, Calorimeter

SPECIES = {"e": 11, "gamma": 22, "pi": 211, "mu": 13}
DEFAULT_MIX = (11, 22, 211, -211, 13)


def _pdgs(species) -> np.ndarray:
    items = [species] if isinstance(species, (str, int, np.integer)) else list(species)
    out = []
    for s in items:
        if isinstance(s, str):
            if s not in SPECIES:
                raise EventError(f"unknown species {s!r}; expected one of {', '.join(SPECIES)} or a PDG id")
            out.append(SPECIES[s])
        else:
            out.append(int(s))
    if not out:
        raise EventError("gun: no species given")
    return np.asarray(out, dtype=np.int64)


def _directions(n: int, eta: tuple[float, float], spread: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """eta, phi of ``n`` particles within ``spread`` of one axis drawn flat in ``eta`` (+z endcap) and phi."""
    lo, hi = eta
    if not DEFAULT.eta_min <= lo <= hi <= DEFAULT.eta_max:
        raise EventError(f"eta range {lo:g} to {hi:g} is outside the endcap: need "
                         f"{DEFAULT.eta_min:g} <= eta_min <= eta_max <= {DEFAULT.eta_max:g}")
    if spread < 0:
        raise EventError(f"spread must be >= 0, got {spread:g}")
    eta0, phi0 = rng.uniform(lo, hi), rng.uniform(-np.pi, np.pi)
    r = spread * np.sqrt(rng.uniform(0, 1, n))
    a = rng.uniform(0, 2 * np.pi, n)
    return np.clip(eta0 + r * np.cos(a), 1.55, 2.95), phi0 + r * np.sin(a)


def _table(pdg, energy, eta, phi, side, seed_rng) -> pd.DataFrame:
    q = pdg_charge(pdg)
    mass = np.where(np.abs(pdg) == 211, 0.13957, np.where(np.abs(pdg) == 13, 0.10566,
                                                           np.where(np.abs(pdg) == 11, 0.000511, 0.0)))
    p = np.sqrt(np.maximum(energy ** 2 - mass ** 2, 0.0))
    theta = 2 * np.arctan(np.exp(-eta))
    mom = np.stack([p * np.sin(theta) * np.cos(phi), p * np.sin(theta) * np.sin(phi),
                    side * p * np.cos(theta)], axis=1)
    n = len(pdg)
    return particle_table(np.arange(1, n + 1), np.zeros((n, 3)), mom, q, pdg)


def gun(n: int = 3, species: str | int | Sequence = DEFAULT_MIX, energy: tuple[float, float] = (5.0, 100.0),
        spread: float = 0.3, eta: tuple[float, float] = (1.7, 2.8), seed=None) -> pd.DataFrame:
    """``n`` particles, species drawn uniformly from ``species``, energy flat in ``energy`` GeV, within
    ``spread`` in (eta, phi) of one axis drawn flat in ``eta`` (+z endcap) and phi.

    >>> table = gun(4, species="pi", energy=(10, 10), seed=1)
    >>> len(table), bool((table.particle_type.abs() == 211).all())
    (4, True)
    """
    if n < 0 or int(n) != n:
        raise EventError(f"gun: the number of particles must be a whole number >= 0, got {n}")
    rng = as_rng(seed)
    pdgs = _pdgs(species)
    lo, hi = energy
    if not (0 < lo <= hi):
        raise EventError(f"gun: need 0 < emin <= emax, got {energy}")
    pdg = rng.choice(pdgs, size=int(n))
    e = rng.uniform(lo, hi, int(n))
    etas, phis = _directions(int(n), eta, spread, rng)
    return _table(pdg, e, etas, phis, np.ones(int(n)), rng)


def pair(distance_mm: float, species=(22, 22), energy: tuple[float, float] = (20.0, 20.0), eta: float = 2.2,
         geometry: Calorimeter = DEFAULT, seed=None) -> pd.DataFrame:
    """Two particles whose straight lines from the origin are ``distance_mm`` apart at the calorimeter face.

    Neutral species (the default photons) hit the face exactly there; charged ones bend on the way.
    """
    rng = as_rng(seed)
    pdg = _pdgs(species)[:2]
    if len(pdg) == 1:
        pdg = np.repeat(pdg, 2)
    e = rng.uniform(*energy, 2)
    phi0 = rng.uniform(-np.pi, np.pi)
    r0 = geometry.z_front * np.tan(2 * np.arctan(np.exp(-eta)))
    # Split the distance along a random direction in the face plane.
    a = rng.uniform(0, 2 * np.pi)
    centre = np.array([r0 * np.cos(phi0), r0 * np.sin(phi0)])
    offset = 0.5 * distance_mm * np.array([np.cos(a), np.sin(a)])
    pts = np.stack([centre + offset, centre - offset])
    rho = np.hypot(pts[:, 0], pts[:, 1])
    etas = -np.log(np.tan(np.arctan2(rho, geometry.z_front) / 2))
    return _table(pdg, e, etas, np.arctan2(pts[:, 1], pts[:, 0]), np.ones(2), rng)


def fixed(pdg: Sequence[int], energy: Sequence[float], eta: Sequence[float], phi: Sequence[float]) -> pd.DataFrame:
    """Particles exactly as given (one per entry), from the origin into the +z endcap.

    >>> fixed([22, 211], [20, 30], [2.0, 2.1], [0.1, 0.2]).particle_type.tolist()
    [22, 211]
    """
    pdg = np.asarray(pdg, dtype=np.int64)
    return _table(pdg, np.asarray(energy, float), np.asarray(eta, float), np.asarray(phi, float),
                  np.ones(len(pdg)), None)


TAU_MASS = 1.77686  # GeV (PDG 2024)
# Pythia as a decayer: no collisions, only the hadron level (decays) of the particles put in its record.
# Everything with c*tau0 < 1 m decays (deepreco.generate.pythia's common settings), but only inside the volume
# in front of the calorimeter: a K0S that gets past the face reaches it whole.
_DECAYER = ("ProcessLevel:all = off", "ParticleDecays:limitCylinder = on",
            f"ParticleDecays:xyMax = {TRACKER_R_MM:g}", f"ParticleDecays:zMax = {DEFAULT.z_front:g}")
_TAU_ID_BITS = 16  # particle_id = tau number << 16 | line in that tau's Pythia record
_TRIES = 100


def taus(n: int = 1, energy: tuple[float, float] = (5.0, 100.0), spread: float = 0.3,
         eta: tuple[float, float] = (1.7, 2.8), hadronic: bool = True, seed=None) -> pd.DataFrame:
    """``n`` taus (tau- or tau+ at random), energy flat in ``energy`` GeV, aimed as ``gun`` aims its particles,
    each decayed by Pythia 8 on its own: the table holds the final-state products of every decay.

    The tau flies its sampled decay length (c*tau0 = 87 um, times its boost) from the origin; its products
    start there. ``hadronic`` redraws a decay until the tau's own daughters hold no electron or muon (the
    leptonic decays are 35 %). Neutrinos stay in the table, so that the products add up to the tau (the
    simulation ignores them). particle_id = k << 16 | line of tau k's Pythia record (k = 0, 1, ...).

    >>> table = taus(2, energy=(50, 50), seed=1)
    >>> sorted(set((table["particle_id"] // 2 ** 16).tolist())), int(table["particle_type"].abs().isin([11, 13]).sum())
    ([0, 1], 0)
    """
    from deepreco.generate.pythia import final_state, pythia_instance, pythia_seeds

    if n < 0 or int(n) != n:
        raise EventError(f"taus: the number of taus must be a whole number >= 0, got {n}")
    n = int(n)
    lo, hi = energy
    if not TAU_MASS < lo <= hi:
        raise EventError(f"taus: need {TAU_MASS} (the tau mass) < emin <= emax, got {energy}")
    rng = as_rng(seed)
    e = rng.uniform(lo, hi, n)
    sign = rng.choice([1, -1], size=n)
    etas, phis = _directions(n, eta, spread, rng)
    p = np.sqrt(e ** 2 - TAU_MASS ** 2)
    theta = 2 * np.arctan(np.exp(-etas))
    mom = np.stack([p * np.sin(theta) * np.cos(phis), p * np.sin(theta) * np.sin(phis), p * np.cos(theta)], 1)
    pythia = pythia_instance(_DECAYER)
    products = []
    for k in range(n):
        for _ in range(_TRIES):
            pythia.rndm.init(int(pythia_seeds(rng, 1)[0]))
            record = pythia.event
            record.reset()
            record.append(15 * int(sign[k]), 91, 0, 0, *mom[k], e[k], TAU_MASS)
            record[1].tau(record[1].tau0() * pythia.rndm.exp())
            if not pythia.next():
                raise GeneratorError(f"Pythia failed to decay a tau of {e[k]:.4g} GeV")
            daughters = {abs(record[i].id()) for i in record[1].daughterList()}
            if not (hadronic and daughters & {11, 13}):
                break
        else:
            raise GeneratorError(f"taus: no hadronic decay in {_TRIES} tries")
        rec = final_state(record)
        rec[:, 0] += k << _TAU_ID_BITS
        products.append(rec)
    rec = np.concatenate(products) if products else np.zeros((0, 9))
    return particle_table(rec[:, 0].astype(np.int64), rec[:, 6:9], rec[:, 3:6], np.rint(rec[:, 2]), rec[:, 1])


PILEUP_ID_OFFSET = 1 << 32  # pile-up collision c (1, 2, ...) has ids c << 32 | line, as in deepreco.generate
# rms of the collision times in an HL-LHC bunch crossing (the luminous region's time spread, about 180 ps: CMS
# MIP timing detector TDR, CERN-LHCC-2019-003); the hard interaction is at t = 0
PILEUP_TIME_SPREAD_NS = 0.18


def with_pileup(particles: pd.DataFrame, mu: float, seed=None) -> pd.DataFrame:
    """``particles`` (ids below 2^32) and the final-state particles of Poisson(``mu``) inelastic minimum-bias
    collisions at 14 TeV from Pythia 8 (``deepreco.generate.pythia.pileup_event``: vertices spread over the
    luminous region, neutrinos dropped); those that reach an endcap make showers. Each collision happens at a
    time drawn from N(0, ``PILEUP_TIME_SPREAD_NS``), the column ``vt`` [ns] (0 for ``particles``), which the
    simulation adds to the hits' times. ``mu`` = 0 adds nothing."""
    if not (np.isfinite(mu) and mu >= 0):
        raise EventError(f"pile-up mu must be a finite number >= 0, got {mu}")
    if mu == 0:
        return particles
    if len(particles) and particles["particle_id"].max() >= PILEUP_ID_OFFSET:
        raise EventError(f"pile-up: the event's particle ids must be below 2^32, got {particles['particle_id'].max()}")
    from deepreco.generate.pythia import pileup_event

    rng = as_rng(seed)
    pileup = pileup_event(None, mu, seed=rng)
    pileup["particle_id"] += PILEUP_ID_OFFSET
    collision = pileup["particle_id"].to_numpy() >> 32
    times = rng.normal(0.0, PILEUP_TIME_SPREAD_NS, int(collision.max()) + 1 if len(collision) else 0)
    pileup["vt"] = times[collision] if len(collision) else np.zeros(0)
    if "vt" not in particles:
        particles = particles.assign(vt=0.0)
    return pd.concat([particles, pileup], ignore_index=True)
