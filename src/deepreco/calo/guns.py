"""Calorimeter particle guns: n particles of e, gamma, pi, mu, flat in energy, aimed into the endcap.

The particles of one event share a random axis in 1.6 < |eta| < 2.9 and spread around it by up to ``spread``
in (eta, phi), so that their showers overlap as much as one asks. ``pair`` puts two particles a set
distance apart at the calorimeter face, for efficiency against shower separation.
The table is the generators' particle table (``deepreco.generate``) so any of them can feed the simulation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from deepreco.generate.gun import pdg_charge
from deepreco.generate.table import as_rng, particle_table

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
    eta0, phi0 = rng.uniform(*eta), rng.uniform(-np.pi, np.pi)
    r = spread * np.sqrt(rng.uniform(0, 1, int(n)))
    a = rng.uniform(0, 2 * np.pi, int(n))
    etas = np.clip(eta0 + r * np.cos(a), 1.55, 2.95)
    return _table(pdg, e, etas, phi0 + r * np.sin(a), np.ones(int(n)), rng)


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
