"""Material secondaries: what a hadron's nuclear interaction and a photon's conversion make.

Used by :func:`.fastsim.simulate_event` for particle lists without lineage (the generators'); a TrackML list
already holds its secondaries (:mod:`.lineage`). Both functions take the interacting particles' momenta at the
interaction point and return the products, vectorised over all interactions of a step.

**Nuclear interaction** (a parametrisation made for deepreco, its shape and constants read off the real TrackML
lists of development events 1000-1009, whose secondaries come from the ACTS Fatras simulation of the time;
``benchmarks/simulate.py --generated`` compares generated events with those lists). The real lists' charged
secondaries (25,780 of pT >= 0.1 GeV in the ten events) are soft and isotropic in the lab whatever their parent:
median p 0.27 GeV for parents of 0-0.5 GeV and of 20 GeV and more alike, 1.9 listed an interaction for any
parent momentum, their directions nearly uncorrelated with the parent's, 94 % of them below a sharp edge at
p = 0.5 GeV. So here:

* nuclear interactions happen ``NUCLEAR_RATE`` times as often as the material's lambda_I gives in the
  silicon layers and ``PASSIVE_NUCLEAR_RATE`` times in the beryllium tubes (the real lists hold 0.15
  interaction vertices per primary, the simulation 0.09 without the factors; the two factors were chosen
  for the displaced share and the production-radius histogram of events 1000-1009: 2.2 and 1.0 give a
  two-sample Kolmogorov-Smirnov distance of 0.081, 1.9 and 1.3 0.115, 2.0 and 1.1 0.100), and their products start at
  the radius where the real lists' secondaries of a barrel layer start (``BARREL_MATERIAL_OFFSET_MM``);
* an interaction makes 1 + Binomial(``MULTIPLICITY_TRIALS``, ``MULTIPLICITY_P``) charged hadrons (the
  neutral ones would never be followed: only charged products are); each is positive with probability
  ``POSITIVE_SHARE`` (the real lists: 0.73, independently within an interaction), a positive one a proton with
  probability ``PROTON_SHARE_OF_POSITIVE`` (0: see there), the rest pi+ and pi-;
* each product's direction is isotropic in the lab; its momentum is drawn, with probability 1 - ``TAIL_SHARE``,
  from p exp(-p / ``CORE_P_SCALE_GEV``) below ``CORE_P_MAX_GEV`` (the real lists' edge), otherwise from the tail
  1 / p^2 between ``CORE_P_MAX_GEV`` and the parent's momentum (a parent below the edge has no tail);
* the products do not conserve the parent's momentum or energy, like the real lists' (their summed momentum is a
  median 5 % of a parent's above 5 GeV, and a parent of 0.3 GeV makes as many and as fast products as one of
  30 GeV): the nucleus takes the balance. What holds instead: the products' momenta are independent of the
  parent's, except that none exceeds it when the parent's is above the edge (tested).

**Photon conversion** (Bethe-Heitler): a photon converts in x/X0 of material with probability
1 - exp(-7/9 x/X0), to an e- of energy x E and an e+ of (1 - x) E, x drawn from the complete-screening
spectrum dsigma/dx ~ 1 - 4/3 x (1 - x) (PDG Review of Particle Physics, "Passage of particles through
matter", pair production), on m_e/E < x < 1 - m_e/E; both along the photon (their opening angle, of order
m_e/E, is below the detector's resolution).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BARREL_MATERIAL_OFFSET_MM", "CONVERSION_FACTOR", "CORE_P_MAX_GEV", "CORE_P_SCALE_GEV", "MULTIPLICITY_P",
           "MULTIPLICITY_TRIALS", "NUCLEAR_RATE", "PASSIVE_NUCLEAR_RATE", "POSITIVE_SHARE", "PROTON_SHARE_OF_POSITIVE",
           "TAIL_SHARE", "conversion_products", "nuclear_products"]

CONVERSION_FACTOR = 7.0 / 9.0  # pair-production probability per radiation length (high-energy limit)
#: Charged products of a nuclear interaction: 1 + Binomial(MULTIPLICITY_TRIALS, MULTIPLICITY_P)
MULTIPLICITY_TRIALS = 5
MULTIPLICITY_P = 0.28
POSITIVE_SHARE = 0.73
#: None: the real lists' positive secondaries leave hits like their negative ones at every momentum (a share
#: 0.41 / 0.40 of those of 0.1-0.2 GeV, 0.75 / 0.75 of 0.2-0.3 GeV), where protons of that momentum would stop
#: within a few layers (0.18 against 0.27 for pions of 0.1-0.2 GeV simulated); so all are pions here
PROTON_SHARE_OF_POSITIVE = 0.0
#: The products' momentum: p exp(-p / CORE_P_SCALE_GEV) below CORE_P_MAX_GEV, a 1 / p^2 tail for TAIL_SHARE
CORE_P_SCALE_GEV = 0.14
CORE_P_MAX_GEV = 0.5
TAIL_SHARE = 0.05
#: Nuclear interactions happen this many times as often as the material's lambda_I gives when their products
#: are made (the material is modelled for scattering; the nuclear length is that of protons): in the silicon
#: layers, and in the beryllium tubes
NUCLEAR_RATE = 2.2
PASSIVE_NUCLEAR_RATE = 1.0
#: Radius (mm) at which the products of an interaction in a barrel layer start, from the layer's mean radius:
#: where the real lists' secondaries start (median over events 1000-1009: the material of the ACTS layers sits
#: there, a few mm outside the pixel layers' modules, about 5 mm inside the strip layers')
BARREL_MATERIAL_OFFSET_MM = {(8, 2): 3.5, (8, 4): 0.9, (8, 6): 1.1, (8, 8): 0.5, (13, 2): -4.7, (13, 4): -5.0,
                             (13, 6): -4.3, (13, 8): -5.4, (17, 2): -3.6, (17, 4): -3.6}

M_ELECTRON = 0.51099895e-3


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)


def _core_momentum(rng: np.random.Generator, n: int) -> np.ndarray:
    """n draws of p exp(-p / CORE_P_SCALE_GEV) (a Gamma of shape 2) below CORE_P_MAX_GEV, by rejection."""
    out = rng.gamma(2.0, CORE_P_SCALE_GEV, n)
    over = np.flatnonzero(out >= CORE_P_MAX_GEV)
    while over.size:  # 85 % of the draws are kept: a few rounds
        out[over] = rng.gamma(2.0, CORE_P_SCALE_GEV, over.size)
        over = over[out[over] >= CORE_P_MAX_GEV]
    return out


def nuclear_products(momentum, rng: np.random.Generator):
    """Charged products of nuclear interactions of hadrons of ``momentum`` (n, 3) GeV.

    Returns ``(parent, momentum, pdg, charge)``: per product the row of its hadron (ascending), its momentum
    (m, 3) GeV, PDG id (2212, 211 or -211) and charge.
    """
    p = np.asarray(momentum, dtype=np.float64).reshape(-1, 3)
    n = len(p)
    pmag = np.linalg.norm(p, axis=1)
    size = 1 + rng.binomial(MULTIPLICITY_TRIALS, MULTIPLICITY_P, n)
    row = np.repeat(np.arange(n), size)
    m = row.size
    positive = rng.random(m) < POSITIVE_SHARE
    proton = positive & (rng.random(m) < PROTON_SHARE_OF_POSITIVE)
    pdg = np.where(proton, 2212, np.where(positive, 211, -211)).astype(np.int64)
    charge = np.where(positive, 1, -1).astype(np.int64)
    magnitude = _core_momentum(rng, m)
    top = pmag[row]
    tail = (rng.random(m) < TAIL_SHARE) & (top > CORE_P_MAX_GEV)
    u = rng.random(m)[tail]
    # inverse of the 1 / p^2 distribution's cumulative on [CORE_P_MAX_GEV, top]
    magnitude[tail] = 1.0 / (1.0 / CORE_P_MAX_GEV - u * (1.0 / CORE_P_MAX_GEV - 1.0 / top[tail]))
    return row, _isotropic(rng, m) * magnitude[:, None], pdg, charge


def conversion_products(momentum, rng: np.random.Generator):
    """e- e+ pairs of photons of ``momentum`` (n, 3) GeV: ``(parent, momentum, pdg, charge)``, 2 n rows (the
    e- of each photon, then its e+)."""
    p = np.asarray(momentum, dtype=np.float64).reshape(-1, 3)
    n = len(p)
    e = np.linalg.norm(p, axis=1)
    lo = np.minimum(M_ELECTRON / np.maximum(e, 1e-300), 0.5)
    x = np.empty(n)
    todo = np.arange(n)
    while todo.size:  # rejection sampling from 1 - 4/3 x (1 - x), whose maximum on [0, 1] is 1
        u = lo[todo] + (1.0 - 2.0 * lo[todo]) * rng.random(todo.size)
        ok = rng.random(todo.size) < 1.0 - 4.0 / 3.0 * u * (1.0 - u)
        x[todo[ok]] = u[ok]
        todo = todo[~ok]
    energy = np.stack([x * e, (1.0 - x) * e], axis=1)
    pm = np.sqrt(np.maximum(energy**2 - M_ELECTRON**2, 0.0))
    direction = p / np.maximum(e, 1e-300)[:, None]
    out_p = (pm[:, :, None] * direction[:, None, :]).reshape(-1, 3)
    parent = np.repeat(np.arange(n), 2)
    pdg = np.tile(np.array([11, -11]), n)
    charge = np.tile(np.array([-1, 1]), n)
    return parent, out_p, pdg, charge
