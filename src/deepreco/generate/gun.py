"""Particle guns: n particles of given species, flat in pT, eta and phi, from a (smeared) vertex.

Charges come from the PDG id through the Scikit-HEP ``particle`` package when it is installed, otherwise
from a small table of the species a tracker sees (e, mu, tau, pi, K, p, gamma, n, K0, Lambda, Sigma, Xi,
Omega and their antiparticles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .table import GeneratorError, as_rng, particle_table

if TYPE_CHECKING:
    import pandas as pd

# Charge of the particle (positive PDG id); the antiparticle has the opposite one.
_CHARGES = {
    11: -1, 13: -1, 15: -1, 211: 1, 321: 1, 2212: 1, 3222: 1, 3112: -1, 3312: -1, 3334: -1,
    22: 0, 111: 0, 130: 0, 310: 0, 311: 0, 2112: 0, 3122: 0, 3212: 0, 3322: 0,
}


def pdg_charge(pdg) -> np.ndarray:
    """The electric charge (in units of e, int32) of each PDG id; GeneratorError for an unknown one."""
    ids = np.atleast_1d(np.asarray(pdg, dtype=np.int64))
    out = np.empty(len(ids), dtype=np.int32)
    for u in np.unique(ids):
        out[ids == u] = _charge_of(int(u))
    return out


def _charge_of(pdg: int) -> int:
    try:
        from particle import Particle
        from particle.particle import ParticleNotFound
    except ImportError:
        if abs(pdg) not in _CHARGES:
            raise GeneratorError(f"unknown PDG id {pdg} (known without the 'particle' package: "
                                 f"{', '.join(map(str, sorted(_CHARGES)))} and their antiparticles)") from None
        return int(np.sign(pdg)) * _CHARGES[abs(pdg)]
    try:
        charge = Particle.from_pdgid(pdg).charge
    except (ParticleNotFound, ValueError, RuntimeError):
        raise GeneratorError(f"unknown PDG id {pdg}") from None
    if charge is None or charge != round(charge):
        raise GeneratorError(f"PDG id {pdg} has no integer charge ({charge})")
    return int(round(charge))


def _range(value, name: str) -> tuple[float, float]:
    """(min, max) from a pair, or a fixed value from a number."""
    lo, hi = (value, value) if np.isscalar(value) else tuple(value)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise GeneratorError(f"gun: {name} range must be finite with min <= max, got {value}")
    return float(lo), float(hi)


def particle_gun(n: int = 10, pdg: int | Sequence[int] = 13, pt: float | tuple[float, float] = (1.0, 10.0),
                 eta: float | tuple[float, float] = (-2.5, 2.5),
                 phi: float | tuple[float, float] = (-np.pi, np.pi),
                 vertex_sigma: tuple[float, float] = (0.0, 0.0), seed=None) -> pd.DataFrame:
    """``n`` particles, each of a species drawn uniformly from ``pdg``, flat in pT [GeV], eta and phi.

    Each particle has its own vertex drawn from a Gaussian of widths ``vertex_sigma`` = (sigma_xy, sigma_z) mm
    (the origin by default). A range given as one number is that fixed value. particle_id runs 1..n.

    >>> gun = particle_gun(100, pdg=[13, -13], pt=(1, 100), seed=1)
    >>> len(gun), sorted(set(gun["q"]))
    (100, [-1, 1])
    """
    if n < 0 or int(n) != n:
        raise GeneratorError(f"gun: the number of particles must be a whole number >= 0, got {n}")
    n = int(n)
    species = np.atleast_1d(np.asarray(pdg, dtype=np.int64))
    if species.size == 0:
        raise GeneratorError("gun: no species given")
    charges = pdg_charge(species)
    if np.any(np.abs(charges) > 1):
        bad = species[np.abs(charges) > 1][0]
        raise GeneratorError(f"gun: PDG id {bad} has charge {charges[species == bad][0]}; a track needs |q| <= 1")
    (pt_lo, pt_hi), (eta_lo, eta_hi), (phi_lo, phi_hi) = _range(pt, "pt"), _range(eta, "eta"), _range(phi, "phi")
    if pt_lo <= 0:
        raise GeneratorError(f"gun: pt must be > 0 GeV, got {pt}")
    sxy, sz = vertex_sigma
    if sxy < 0 or sz < 0:
        raise GeneratorError(f"gun: vertex sigmas must be >= 0, got {vertex_sigma}")

    rng = as_rng(seed)
    # The draws come in a fixed order, so one seed always gives the same particles.
    which = rng.integers(0, species.size, size=n)
    pts = rng.uniform(pt_lo, pt_hi, size=n)
    etas = rng.uniform(eta_lo, eta_hi, size=n)
    phis = rng.uniform(phi_lo, phi_hi, size=n)
    vertex = rng.normal(0.0, 1.0, size=(n, 3)) * np.array([sxy, sxy, sz])
    momentum = np.column_stack([pts * np.cos(phis), pts * np.sin(phis), pts * np.sinh(etas)])
    return particle_table(particle_id=np.arange(1, n + 1), vertex=vertex, momentum=momentum,
                          q=charges[which], particle_type=species[which])
