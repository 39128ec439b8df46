"""Material secondaries: what a hadron's nuclear interaction and a photon's conversion make.

Used by :func:`.fastsim.simulate_event` for particle lists without lineage (the generators'); a TrackML list
already holds its secondaries (:mod:`.lineage`). Both functions take the interacting particles' momenta at the
interaction point and return the products, vectorised over all interactions of a step.

**Nuclear interaction** (a parametrisation made for deepreco: its shape from general facts of hadron-nucleus
collisions, its four constants tuned by hand on the real TrackML lists of development events 1001 and 1003
against a generated ttbar event of mu = 200, for the interactions per primary and the charged secondaries
per interaction; ``benchmarks/simulate.py --generated`` compares them on events 1000-1009):

* nuclear interactions happen ``NUCLEAR_RATE`` times as often as the material's lambda_I gives in the
  silicon layers and ``PASSIVE_NUCLEAR_RATE`` times in the beryllium tubes (the real lists hold 0.15
  interaction vertices per primary, the simulation 0.09 without the factors; the two factors were chosen
  for the displaced share and the production-radius histogram of events 1000-1009: 2.2 and 1.0 give a
  two-sample Kolmogorov-Smirnov distance of 0.081, 1.9 and 1.3 0.115, 2.0 and 1.1 0.100), and their products start at
  the radius where the real lists' secondaries of a barrel layer start (``BARREL_MATERIAL_OFFSET_MM``);
* the hadron (energy E, mass m) meets one nucleon at rest (m_N): the pair has the invariant mass
  W = sqrt(m^2 + m_N^2 + 2 E m_N) and the hadron's momentum;
* that collision makes one nucleon (two when the hadron is a baryon) and n pions, n ~ Poisson(``PION_SCALE``
  K^0.75) with K = W - the nucleons' masses (the multiplicity rises slowly with the energy available: one
  pion on average at K = 2.6 GeV, a 10 GeV hadron; 3.2 at K = 12 GeV, 100 GeV), at least one pion for a
  meson, at most as many as K allows (none for a slow meson: it is absorbed); each nucleon is a proton or a
  neutron with probability 1/2 (silicon: Z/A = 1/2), each pion pi+, pi0 or pi- with probability 1/3 (the
  nucleus takes the charge that this does not conserve);
* their momenta in the pair's rest frame: isotropic directions with exponential magnitudes, shifted to add
  up to zero and scaled together so that the energies add up to W, then boosted along the hadron: energy and
  momentum of hadron + nucleon are conserved exactly by this part;
* the struck nucleus then emits ``FRAGMENT_MEAN`` min(1, T / 1 GeV) nucleons on average (T: the hadron's
  kinetic energy; Poisson), protons or neutrons with probability 1/2, isotropic, with kinetic energies
  exponential of mean ``FRAGMENT_T_GEV``: the slow protons of the intranuclear cascade and evaporation, whose
  momentum the recoiling nucleus balances. This is the spread within which the products' momentum equals the
  hadron's: their sum differs from it by the fragments' sum.

Known difference: the real lists' secondaries are softer and isotropic whatever their parent's momentum (median
p 0.28 GeV, direction uncorrelated with the parent's), as if made by a purely isotropic parametrisation;
here the pions of the collision follow the hadron, and the secondaries are harder (``benchmarks/simulate.py``).

**Photon conversion** (Bethe-Heitler): a photon converts in x/X0 of material with probability
1 - exp(-7/9 x/X0), to an e- of energy x E and an e+ of (1 - x) E, x drawn from the complete-screening
spectrum dsigma/dx ~ 1 - 4/3 x (1 - x) (PDG Review of Particle Physics, "Passage of particles through
matter", pair production), on m_e/E < x < 1 - m_e/E; both along the photon (their opening angle, of order
m_e/E, is below the detector's resolution).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BARREL_MATERIAL_OFFSET_MM", "CONVERSION_FACTOR", "FRAGMENT_MEAN", "FRAGMENT_T_GEV", "NUCLEAR_RATE",
           "PASSIVE_NUCLEAR_RATE", "PION_SCALE",
           "conversion_products", "nuclear_products"]

CONVERSION_FACTOR = 7.0 / 9.0  # pair-production probability per radiation length (high-energy limit)
PION_SCALE = 0.5  # mean pion number = PION_SCALE * K^0.75 (K in GeV)
FRAGMENT_MEAN = 1.0  # nuclear fragments per interaction of a hadron of 1 GeV kinetic energy or more
FRAGMENT_T_GEV = 0.05  # their mean kinetic energy
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

M_NUCLEON = 0.93891875  # (m_p + m_n) / 2
M_PROTON, M_NEUTRON = 0.93827208816, 0.93956542052
M_PION, M_PI0 = 0.13957039, 0.1349768
M_ELECTRON = 0.51099895e-3


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)


def _segment_sum(values: np.ndarray, segment: np.ndarray, n: int) -> np.ndarray:
    if values.ndim == 1:
        return np.bincount(segment, weights=values, minlength=n)
    return np.stack([np.bincount(segment, weights=values[:, j], minlength=n) for j in range(values.shape[1])], 1)


def _nucleons(rng, n):
    proton = rng.random(n) < 0.5
    return np.where(proton, 2212, 2112), proton.astype(np.int64), np.where(proton, M_PROTON, M_NEUTRON)


def nuclear_products(momentum, mass, pdg, rng: np.random.Generator):
    """Products of nuclear interactions of hadrons of ``momentum`` (n, 3) GeV, ``mass`` (n,) and ``pdg`` (n,).

    Returns ``(parent, momentum, pdg, charge, fragment)``: per product the row of its hadron, its momentum
    (m, 3) GeV, PDG id, charge, and whether it is a nuclear fragment (outside the exact balance).
    """
    p = np.asarray(momentum, dtype=np.float64).reshape(-1, 3)
    m = np.asarray(mass, dtype=np.float64)
    n = len(p)
    pmag = np.linalg.norm(p, axis=1)
    e = np.sqrt(pmag**2 + m**2)
    w = np.sqrt(m**2 + M_NUCLEON**2 + 2.0 * e * M_NUCLEON)
    baryon = np.abs(np.asarray(pdg, dtype=np.int64)) >= 1000
    n_nuc = np.where(baryon, 2, 1)
    # the nucleons take their mass out of W; the pions share the rest (K), as many as it allows
    k_avail = w - n_nuc * M_NEUTRON
    most = np.maximum(np.floor((k_avail - 1e-6) / M_PION), 0).astype(np.int64)
    n_pi = rng.poisson(PION_SCALE * np.maximum(k_avail, 0.0) ** 0.75)
    n_pi = np.clip(np.maximum(n_pi, np.where(baryon, 0, 1)), 0, most)
    size = n_nuc + n_pi
    row = np.repeat(np.arange(n), size)
    first = np.cumsum(size) - size
    rank = np.arange(row.size) - first[row]
    is_nuc = rank < n_nuc[row]
    nuc_pdg, nuc_q, nuc_m = _nucleons(rng, row.size)
    pion_q = rng.integers(-1, 2, row.size)
    pid = np.where(is_nuc, nuc_pdg, np.where(pion_q == 0, 111, 211 * pion_q))
    charge = np.where(is_nuc, nuc_q, pion_q)
    mp = np.where(is_nuc, nuc_m, np.where(pion_q == 0, M_PI0, M_PION))
    # rest frame of hadron + nucleon: balanced, then scaled to the energy W (bisection on the common scale)
    q = _isotropic(rng, row.size) * rng.exponential(1.0, row.size)[:, None]
    q -= (_segment_sum(q, row, n) / size[:, None])[row]
    qq = np.einsum("ij,ij->i", q, q)
    lo, hi = np.zeros(n), np.full(n, 1.0)
    w_eff = np.maximum(w, _segment_sum(mp, row, n) + 1e-9)  # masses of the rounding above never exceed W
    for _ in range(60):  # grow the bracket until it holds the root
        big = _segment_sum(np.sqrt(hi[row] ** 2 * qq + mp**2), row, n) < w_eff
        if not big.any():
            break
        hi = np.where(big, hi * 4.0, hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        over = _segment_sum(np.sqrt(mid[row] ** 2 * qq + mp**2), row, n) > w_eff
        hi, lo = np.where(over, mid, hi), np.where(over, lo, mid)
    q *= (0.5 * (lo + hi))[row, None]
    e_star = np.sqrt(np.einsum("ij,ij->i", q, q) + mp**2)
    # boost to the lab along the hadron: beta = p / (E + m_N)
    beta = p / (e + M_NUCLEON)[:, None]
    b = np.linalg.norm(beta, axis=1)
    gamma = 1.0 / np.sqrt(1.0 - b**2)
    bhat = beta / np.maximum(b, 1e-300)[:, None]
    along = np.einsum("ij,ij->i", bhat[row], q)
    p_hard = q + ((gamma[row] - 1.0) * along + gamma[row] * b[row] * e_star)[:, None] * bhat[row]
    # nuclear fragments
    kinetic = e - m
    n_frag = rng.poisson(FRAGMENT_MEAN * np.minimum(kinetic, 1.0))
    frow = np.repeat(np.arange(n), n_frag)
    f_pdg, f_q, f_m = _nucleons(rng, frow.size)
    t = rng.exponential(FRAGMENT_T_GEV, frow.size)
    p_frag = _isotropic(rng, frow.size) * np.sqrt(t**2 + 2.0 * t * f_m)[:, None]
    emitted = size[row] > 1  # a lone product is no collision: the nucleus absorbed the hadron
    row, p_hard, pid, charge = row[emitted], p_hard[emitted], pid[emitted], charge[emitted]
    parent = np.concatenate([row, frow])
    order = np.argsort(parent, kind="stable")
    out_p = np.concatenate([p_hard, p_frag])[order]
    out_pdg = np.concatenate([pid, f_pdg])[order]
    out_q = np.concatenate([charge, f_q])[order]
    fragment = np.concatenate([np.zeros(row.size, bool), np.ones(frow.size, bool)])[order]
    return parent[order], out_p, out_pdg.astype(np.int64), out_q.astype(np.int64), fragment


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
