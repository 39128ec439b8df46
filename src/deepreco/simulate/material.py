"""Material of the TrackML detector and the two effects it has on a charged particle.

The TrackML detector is the ACTS "generic detector" (acts-framework ``GenericDetector/BuildGenericDetector``),
whose material is silicon modules plus one homogeneous slab per layer standing for supports, cooling and
cables, and two beryllium tubes:

=========================  =================================  ====================================
part                       slab (mm)                          per normal crossing
=========================  =================================  ====================================
pixel layers (7, 8, 9)     0.15 module + 1.5 Si layer          1.72 % X0
short strips, barrel (13)  0.25 module + 2.0 Si layer          2.35 % X0
short strips, disks (12,14) 0.25 module + 2.5 Si layer         2.87 % X0
long strips, barrel (17)   0.35 module + 2.5 Si layer          2.98 % X0
long strips, disks (16,18) 0.35 module + 3.5 Si layer          4.02 % X0
beam pipe (r = 19 mm)      0.8 Be                              0.23 % X0
pixel support tube (200)   1.8 Be                              0.51 % X0
=========================  =================================  ====================================

(Si: X0 = 95.7 mm as ACTS has it; Be: X0 = 352.8 mm.) The layer slab is crossed whether or not a module is,
the module only where the particle passes through it, so a particle crossing two overlapping modules sees the
silicon twice. Bare silicon alone (0.16 % X0 per pixel module) would be an order of magnitude too little.
The hit counts that the real-data comparison checks hardly depend on this material (they are set by the
geometry, the stopping rule and the noise); the numbers above are taken from the detector description rather
than fitted to those counts.

Effects, applied at each layer crossing with the total path in material x (slabs and modules, along the
direction of flight):

* multiple scattering: Gaussian deflection in two orthogonal planes with the Highland width
  theta0 = 13.6 MeV / (beta c p) |q| sqrt(x/X0) (1 + 0.038 ln(x q^2 / (X0 beta^2)));
* nuclear interactions: a hadron ends with probability 1 - exp(-x/lambda_I) (lambda_I = 465.2 mm in Si,
  407 mm in Be); its products, if any, are particles of their own. Only for particle lists without lineage
  (the generators'): a TrackML list already holds the outcome of its interactions (a particle ends where
  its listed daughters start, :mod:`.lineage`), so none is drawn there. Drawing them anyway counted them
  twice: per particle, the share of simulated ``nhits`` within one of the real ones fell from 0.738 to
  0.708 in event 1001 (the simulated particles' hits in total: +5.8 % against +0.6 % of the real ``nhits``,
  the real lists' interactions without any listed product above their pT cut of 0.1 GeV being unknown);
* mean ionisation loss: the Bethe formula without density effect, dE/dx = K rho Z/A q^2 / beta^2
  (ln(2 m_e c^2 beta^2 gamma^2 T_max / I^2) / 2 - beta^2), which gives 0.39 MeV/mm in silicon at minimum
  ionisation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BERYLLIUM", "LAYER_SLAB_MM", "PASSIVE_CYLINDERS", "SILICON", "Material", "bethe_loss", "highland"]


class Material:
    """A homogeneous material: radiation and nuclear interaction lengths (mm), rho Z/A (mol/cm^3), and mean
    excitation energy (GeV)."""

    def __init__(self, name: str, x0_mm: float, lambda_mm: float, rho_z_over_a: float, excitation_gev: float):
        self.name = name
        self.x0_mm = x0_mm
        self.lambda_mm = lambda_mm
        self.rho_z_over_a = rho_z_over_a
        self.excitation_gev = excitation_gev

    def __repr__(self) -> str:
        return f"Material({self.name}, X0={self.x0_mm} mm)"


SILICON = Material("silicon", 95.7, 465.2, 2.329 * 14.0 / 28.0855, 173e-9)
BERYLLIUM = Material("beryllium", 352.8, 407.0, 1.848 * 4.0 / 9.012, 63.7e-9)

#: Thickness (mm of silicon) of the layer slab of each volume: supports and services (see the module doc).
LAYER_SLAB_MM = {7: 1.5, 8: 1.5, 9: 1.5, 12: 2.5, 13: 2.0, 14: 2.5, 16: 3.5, 17: 2.5, 18: 3.5}

#: Passive beryllium cylinders: (radius mm, half-length mm, thickness mm).
PASSIVE_CYLINDERS = ((19.0, 3000.0, 0.8), (200.0, 2800.0, 1.8))

_ME = 0.51099895e-3  # electron mass, GeV
_K = 0.307075e-3 / 10.0  # Bethe K = 0.307075 MeV cm^2/mol, in GeV, with 1/10 for dE/dx per mm instead of per cm


def highland(p, beta, q, x_over_x0) -> np.ndarray:
    """Highland width (rad) of the projected scattering angle after x/X0 radiation lengths."""
    xx = np.maximum(np.asarray(x_over_x0, dtype=np.float64), 1e-12)
    q2 = np.asarray(q, dtype=np.float64) ** 2
    log = np.log(np.maximum(xx * q2 / beta**2, 1e-300))  # a neutral particle (q = 0) is not deflected
    return 0.0136 / (beta * p) * np.sqrt(q2 * xx) * np.maximum(1.0 + 0.038 * log, 0.0)


def bethe_loss(p, mass, q, path_mm, material: Material) -> np.ndarray:
    """Mean ionisation energy loss (GeV) over ``path_mm`` of ``material`` (Bethe, no density effect)."""
    p = np.asarray(p, dtype=np.float64)
    mass = np.asarray(mass, dtype=np.float64)
    e = np.sqrt(p**2 + mass**2)
    beta2 = np.clip((p / e) ** 2, 1e-12, 1.0)
    bg2 = (p / np.maximum(mass, 1e-9)) ** 2
    gamma = e / np.maximum(mass, 1e-9)
    ratio = _ME / np.maximum(mass, 1e-9)
    tmax = 2.0 * _ME * bg2 / (1.0 + 2.0 * gamma * ratio + ratio**2)
    arg = 2.0 * _ME * bg2 * tmax / material.excitation_gev**2
    bracket = np.maximum(0.5 * np.log(np.maximum(arg, 1.0)) - beta2, 0.0)
    dedx = _K * material.rho_z_over_a * np.asarray(q, dtype=np.float64) ** 2 / beta2 * bracket
    return dedx * np.asarray(path_mm, dtype=np.float64)
