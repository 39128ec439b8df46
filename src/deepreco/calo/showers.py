"""Parametrised showers: each object entering the calorimeter becomes energy spots on the sensor planes.

Electromagnetic (Grindhammer & Peters, hep-ex/0001020): the energy deposited between depths t and t + dt
(in X0) follows a gamma distribution

    dE/dt = E * (beta t)^(alpha - 1) beta exp(-beta t) / Gamma(alpha),   T = (alpha - 1) / beta,

with ln T = ln(ln y - 0.858), alpha = 0.21 + (0.492 + 2.38 / Z) ln y, y = E / E_c, and correlated Gaussian
fluctuations of ln T and ln alpha from shower to shower. Radially, per unit area around the axis,

    f(r) = p R_C^2 / (pi (r^2 + R_C^2)^2) + (1 - p) R_T^2 / (pi (r^2 + R_T^2)^2),

a core and a tail whose radii (in Moliere radii) and core weight p depend on tau = t / T and ln E.

Hadronic: an interaction point drawn from exp(-lambda); a MIP track before it; after it an electromagnetic
fraction f_em (mean 1 - (E / 1 GeV)^(k - 1), k = 0.82, Beta-distributed) shared among pi0 sub-showers with
displaced axes, and a hadronic remainder seen with h/e = 0.6 in clumps whose depth follows a gamma
distribution in lambda, with a wide core + tail radial profile and a delayed-time component.
Muons: a MIP in every layer (Moyal-distributed, per layer's MIP energy over the path's cosine) and rare
radiative losses that start photon showers inside the calorimeter.

Sampling fluctuations: a layer's energy is cut into a Poisson number of spots with exponentially distributed
energies of mean eps; the compound Poisson variance E * 2 eps gives a stochastic term a = sqrt(2 eps)
(``a_em`` = 0.22, ``a_had`` = 0.5 by default) that the test checks against the integrated energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .geometry import C_MM_PER_NS, Calorimeter

# hit classes, as in the seed: noise, electromagnetic, hadronic, MIP
NOISE, EM, HAD, MIP = 0, 1, 2, 3
CLASS_NAMES = ("noise", "em", "had", "mip")


@dataclass(frozen=True)
class ShowerConfig:
    a_em: float = 0.22           # EM stochastic term [sqrt(GeV)]
    a_had: float = 0.5           # sampling part of the hadronic stochastic term
    critical_gev: float = 0.008  # E_c of the CE-E absorber
    z_eff: float = 74.0          # effective Z of the CE-E absorber
    h_over_e: float = 0.6        # non-compensation
    em_fraction_k: float = 0.82  # Groom's exponent for the mean EM fraction
    had_core_mm: float = 25.0
    had_tail_mm: float = 110.0
    had_core_weight: float = 0.6
    delayed_fraction: float = 0.1  # of hadronic spots, late by exp(5 ns) (slow neutrons)
    mu_rad_per_gev: float = 0.003  # mean radiative losses of a muon per GeV of its energy


class Spots(dict):
    """Columns x, y, z, layer, side, energy, time, obj, cls of energy spots on the sensor planes."""

    COLUMNS = ("x", "y", "z", "layer", "side", "energy", "time", "obj", "cls")

    @classmethod
    def concat(cls, parts: list[dict]) -> Spots:
        out = cls()
        for c in cls.COLUMNS:
            out[c] = np.concatenate([p[c] for p in parts]) if parts else np.zeros(0)
        return out


@dataclass
class Axis:
    """A straight line through the calorimeter: the face point (z = side * z_front), a unit direction and
    the time at the face (ns)."""

    point: np.ndarray
    direction: np.ndarray
    t0: float

    def at_layers(self, geo: Calorimeter, layers: np.ndarray) -> np.ndarray:
        side = np.sign(self.point[2])
        dz = side * geo["z"][layers] - self.point[2]
        return self.point[None, :] + self.direction[None, :] * (dz / self.direction[2])[:, None]

    def basis(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.direction
        helper = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u = np.cross(d, helper)
        u /= np.linalg.norm(u)
        return u, np.cross(d, u)

    def tilted(self, rng, offset_mm: float, angle: float) -> Axis:
        """A sub-shower axis: the face point moved sideways, the direction tilted."""
        u, v = self.basis()
        du, dv = rng.normal(0, offset_mm, 2)
        tu, tv = rng.normal(0, angle, 2)
        d = self.direction + tu * u + tv * v
        d /= np.linalg.norm(d)
        p = self.point + du * u + dv * v
        p = p - d * ((p[2] - self.point[2]) / d[2])  # back onto the face plane
        return Axis(p, d, self.t0)


def _spots_on_axis(axis: Axis, geo: Calorimeter, layer: np.ndarray, r: np.ndarray, rng, energy: np.ndarray,
                   obj: int, cls: int, delay: np.ndarray | None = None) -> dict:
    """Spots at radius r (random azimuth) around the axis on each spot's layer plane."""
    centre = axis.at_layers(geo, layer)
    u, v = axis.basis()
    phi = rng.uniform(0, 2 * np.pi, len(r))
    off = r[:, None] * (np.cos(phi)[:, None] * u[None, :] + np.sin(phi)[:, None] * v[None, :])
    # Project the transverse offset along the axis back onto the sensor plane.
    pos = centre + off - axis.direction[None, :] * (off[:, 2] / axis.direction[2])[:, None]
    path = (pos[:, 2] - axis.point[2]) / axis.direction[2]
    time = axis.t0 + path / C_MM_PER_NS + (0.0 if delay is None else delay)
    n = len(r)
    return {"x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2], "layer": layer, "side": np.full(n, np.sign(axis.point[2])),
            "energy": energy, "time": time, "obj": np.full(n, obj, dtype=np.int64), "cls": np.full(n, cls)}


def _gamma_layers(energy: float, alpha: float, beta: float, start: float, depth: np.ndarray, eps: float, rng
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Layer and energy of each spot of a gamma-profile deposit of ``energy`` starting at depth ``start``.

    The sensor of layer l samples the absorber between depth[l-1] and depth[l]; what lies past the last layer
    leaks out. Spots: Poisson(E_l / eps) per layer, each with an exponential energy of mean eps.
    """
    edges = np.concatenate([[0.0], depth]) - start
    cdf = stats.gamma.cdf(np.clip(edges, 0, None), a=alpha, scale=1.0 / beta)
    frac = np.diff(cdf)
    n = rng.poisson(energy * frac / eps)
    layer = np.repeat(np.arange(len(depth)), n)
    return layer, rng.exponential(eps, n.sum())


def _core_tail(rng, n, r_core, r_tail, p_core):
    """Radii from the core + tail profile: each part r = R sqrt(u / (1 - u)), cut at about 7 R."""
    u = rng.uniform(0, 0.98, n)
    radius = np.where(rng.uniform(0, 1, n) < p_core, r_core, r_tail)
    return radius * np.sqrt(u / (1 - u))


def em_shower(energy: float, axis: Axis, start_x0: float, obj: int, geo: Calorimeter, cfg: ShowerConfig, rng,
              cls: int = EM) -> dict:
    """An electromagnetic shower of ``energy`` GeV starting at depth ``start_x0`` along ``axis``."""
    lny = max(np.log(max(energy, 1e-3) / cfg.critical_gev), 2.5)
    mean = np.array([np.log(max(lny - 0.858, 0.5)), np.log(0.21 + (0.492 + 2.38 / cfg.z_eff) * lny)])
    s_t, s_a = 1 / (-1.4 + 1.26 * lny), 1 / (-0.58 + 0.86 * lny)
    rho = 0.705 - 0.023 * lny
    cov = np.array([[s_t ** 2, rho * s_t * s_a], [rho * s_t * s_a, s_a ** 2]])
    ln_t, ln_a = rng.multivariate_normal(mean, cov)
    T, alpha = np.exp(ln_t), max(np.exp(ln_a), 1.05)
    beta = (alpha - 1) / T
    eps = cfg.a_em ** 2 / 2
    layer, e = _gamma_layers(energy, alpha, beta, start_x0, geo["depth_x0"], eps, rng)
    # Radial profile at the depth of each spot's layer (Grindhammer's homogeneous parametrisation).
    t_mid = geo["depth_x0"][layer] - 0.5 * geo["x0"][layer] - start_x0
    tau = np.clip(t_mid / T, 0, 4)
    lnE, Z = np.log(energy), cfg.z_eff
    r_c = 0.0251 + 0.00319 * lnE + (0.1162 - 0.000381 * Z) * tau
    r_t = (0.659 - 0.00309 * Z) * (np.exp(-2.59 * (tau - 0.645)) + np.exp((0.3585 + 0.0421 * lnE) * (tau - 0.645)))
    p1, p2, p3 = 2.632 - 0.00094 * Z, 0.401 + 0.00187 * Z, 1.313 - 0.0686 * lnE
    p = np.clip(p1 * np.exp((p2 - tau) / p3 - np.exp((p2 - tau) / p3)), 0, 1)
    r = _core_tail(rng, len(layer), r_c, r_t, p) * geo.moliere_mm
    return _spots_on_axis(axis, geo, layer, r, rng, e, obj, cls)


def mip_track(axis: Axis, layers: np.ndarray, obj: int, geo: Calorimeter, rng) -> dict:
    """One Moyal-distributed MIP deposit per layer crossed, scaled by the path length through it."""
    cos = abs(axis.direction[2])
    e = geo["mip"][layers] / cos * stats.moyal.rvs(loc=1.0, scale=0.1, size=len(layers), random_state=rng)
    return _spots_on_axis(axis, geo, layers, np.zeros(len(layers)), rng, np.maximum(e, 0), obj, MIP)


def _x0_at_lambda(geo: Calorimeter, lam: float) -> float:
    return float(np.interp(lam, np.concatenate([[0.0], geo["depth_lam"]]), np.concatenate([[0.0], geo["depth_x0"]])))


def hadron_shower(energy: float, axis: Axis, obj: int, geo: Calorimeter, cfg: ShowerConfig, rng) -> list[dict]:
    """A charged or neutral hadron: MIP track to the interaction point, then the EM and hadronic parts."""
    lam_int = rng.exponential(1.0)
    crossed = np.flatnonzero(geo["depth_lam"] < lam_int)
    parts = [mip_track(axis, crossed, obj, geo, rng)] if len(crossed) else []
    if lam_int >= geo["depth_lam"][-1]:
        return parts  # punched through
    mean_fem = 1 - max(energy, 1.0) ** (cfg.em_fraction_k - 1)
    conc = 8.0
    f_em = rng.beta(mean_fem * conc + 0.1, (1 - mean_fem) * conc + 0.1)
    # pi0 sub-showers, each a photon shower converting after the interaction point
    n_pi0 = 1 + rng.poisson(np.log1p(energy / 5))
    shares = rng.dirichlet(np.ones(n_pi0)) * f_em * energy
    x0_int = _x0_at_lambda(geo, lam_int)
    for e_sub in shares:
        if e_sub < 0.05:
            continue
        sub = axis.tilted(rng, 12.0, 0.03)
        parts.append(em_shower(e_sub, sub, x0_int + rng.exponential(9 / 7), obj, geo, cfg, rng, cls=HAD))
    # the hadronic remainder in clumps
    e_vis = (1 - f_em) * energy * cfg.h_over_e * max(rng.normal(1.0, 0.1), 0.2)
    n_clumps = 1 + rng.poisson(0.5 * np.log1p(energy / 5))
    eps = cfg.a_had ** 2 / 2
    for e_clump in rng.dirichlet(np.full(n_clumps, 2.0)) * e_vis:
        alpha = (1.3 + 0.25 * np.log(max(energy, 1.0))) * rng.lognormal(0, 0.15)
        layer, e = _gamma_layers(e_clump, alpha, 1.0, lam_int + rng.exponential(0.2), geo["depth_lam"], eps, rng)
        sub = axis.tilted(rng, 20.0, 0.05)
        r = _core_tail(rng, len(layer), cfg.had_core_mm, cfg.had_tail_mm, cfg.had_core_weight)
        delay = np.where(rng.uniform(0, 1, len(layer)) < cfg.delayed_fraction, rng.exponential(5.0, len(layer)), 0.0)
        parts.append(_spots_on_axis(sub, geo, layer, r, rng, e, obj, HAD, delay))
    return parts


def muon(energy: float, axis: Axis, obj: int, geo: Calorimeter, cfg: ShowerConfig, rng
         ) -> tuple[list[dict], list[tuple[float, int]]]:
    """A muon's MIP track through every layer, and its radiative losses as (photon energy, layer) pairs
    for the caller to shower (they may become their own particles, see ``truth``)."""
    layers = np.arange(geo.n_layers)
    parts = [mip_track(axis, layers, obj, geo, rng)]
    n_rad = rng.poisson(cfg.mu_rad_per_gev * energy)
    y = np.exp(rng.uniform(np.log(0.02), np.log(0.5), n_rad))
    where = rng.integers(0, geo.n_layers, n_rad)
    return parts, [(float(energy * f), int(layer)) for f, layer in zip(y, where, strict=True)]
