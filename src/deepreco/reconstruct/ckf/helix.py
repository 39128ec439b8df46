"""Helix propagation between the detector's surfaces: cylinders r = R (barrels) and planes z = Z (disks).

A track state lives on a surface and has five parameters

    barrel (cylinder r = R):  (phi, z, psi, t, k)        endcap (plane z = Z):  (phi, r, psi, t, k)

with phi the azimuth of the point, psi the azimuth of the direction, t = cot(theta) = pz / pT and k = q / pT
[1/GeV]. The first two are what a hit measures, so the measurement matrix is H = [1 0 0 0 0; 0 1 0 0 0] on
every surface. In the solenoid field B along +z the transverse direction turns at the rate

    dpsi/ds = h = -0.3 B k / 1000   [1/mm]     (s the transverse arc length, B in T; q > 0 turns clockwise)

and the helix from a point p0 = (x0, y0, z0) with direction u = (cos psi0, sin psi0), n = (-sin psi0, cos psi0) is

    p(s) = p0 + u sin(h s) / h + n (1 - cos(h s)) / h,     z(s) = z0 + t s,     psi(s) = psi0 + h s,

written with sinc so that it stays exact for h -> 0 (straight tracks). The crossing with a plane is
s = (Z - z0) / t; with a cylinder it is the root of |p(s)|^2 = R^2, found by Newton's method from the
straight-line crossing. The Jacobian of the transport is taken by finite differences of the same function,
vectorised over all candidates, so the barrel <-> disk changes of parameters need no special cases.
"""

from __future__ import annotations

import numpy as np

#: 0.3 B / 1000 for B = 1 T: curvature [1/mm] per (q / pT [1/GeV]) and tesla.
CURVATURE_PER_TESLA = 0.3e-3

_FD_STEPS = np.array([1e-7, 1e-5, 1e-7, 1e-7, 1e-7])


def wrap(angle):
    """Angle folded into [-pi, pi)."""
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def to_global(state: np.ndarray, barrel: np.ndarray, position: np.ndarray):
    """Global x, y, z of states on their surfaces (barrel: cylinder r = position, else plane z = position)."""
    phi, w = state[:, 0], state[:, 1]
    r = np.where(barrel, position, w)
    z = np.where(barrel, w, position)
    return r * np.cos(phi), r * np.sin(phi), z


def _arcs(h, s):
    """sin(h s) / h and (1 - cos(h s)) / h, exact at h = 0 (a series where h s is small)."""
    hs = h * s
    small = np.abs(hs) < 1e-3
    safe_h = np.where(small, 1.0, h)
    hs2 = hs * hs
    sa = np.where(small, s * (1.0 - hs2 / 6.0), np.sin(hs) / safe_h)
    ca = np.where(small, 0.5 * hs * s * (1.0 - hs2 / 12.0), (1.0 - np.cos(hs)) / safe_h)
    return sa, ca


def path_to_cylinder(x, y, psi, h, radius, iterations: int = 6):
    """Signed transverse path s to the crossing of the helix with r = radius, and whether it was found.

    Newton on f(s) = |p(s)|^2 - R^2 = 2 a S + 2 b C + S^2 + C^2 - (R^2 - r0^2), with S, C the arcs of `_arcs`,
    a = p0.u and b = p0.n, from the straight-line crossing in the direction of flight.
    """
    cos, sin = np.cos(psi), np.sin(psi)
    a = x * cos + y * sin
    b = -x * sin + y * cos
    d = radius * radius - (x * x + y * y)
    disc = a * a + d
    s = -a + np.sqrt(np.maximum(disc, 0.0))
    for _ in range(iterations):
        sa, ca = _arcs(h, s)
        hs = h * s
        f = 2.0 * a * sa + 2.0 * b * ca + sa * sa + ca * ca - d
        fp = 2.0 * (a + sa) * np.cos(hs) + 2.0 * (b + ca) * np.sin(hs)
        fp = np.where(np.abs(fp) < 1e-9, 1e-9, fp)
        s = s - f / fp
    sa, ca = _arcs(h, s)
    f = 2.0 * a * sa + 2.0 * b * ca + sa * sa + ca * ca - d
    ok = np.isfinite(s) & (np.abs(f) < 1e-6 * np.maximum(radius, 1.0)) & (np.abs(h * s) < 0.5 * np.pi)
    return s, ok


def propagate(state, barrel, position, to_barrel, to_position, field: float = 2.0):
    """States transported along their helices to the target surfaces; (new states, ok, path length s).

    ``ok`` is False where the helix does not reach the target (a looper short of the cylinder, a track
    parallel to the plane). Paths may be negative (a hit a little behind the current surface).
    """
    x, y, z = to_global(state, barrel, position)
    psi, t, k = state[:, 2], state[:, 3], state[:, 4]
    h = -CURVATURE_PER_TESLA * field * k
    s_cyl, ok_cyl = path_to_cylinder(x, y, psi, h, np.where(to_barrel, to_position, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        s_pl = (to_position - z) / t
    ok_pl = np.isfinite(s_pl) & (np.abs(h * s_pl) < 0.5 * np.pi)
    s = np.where(to_barrel, s_cyl, np.where(ok_pl, s_pl, 0.0))
    ok = np.where(to_barrel, ok_cyl, ok_pl)
    s = np.where(ok, s, 0.0)
    sa, ca = _arcs(h, s)
    cos, sin = np.cos(psi), np.sin(psi)
    xn = x + cos * sa - sin * ca
    yn = y + sin * sa + cos * ca
    zn = z + t * s
    out = np.empty_like(state)
    out[:, 0] = np.arctan2(yn, xn)
    out[:, 1] = np.where(to_barrel, zn, np.hypot(xn, yn))
    out[:, 2] = wrap(psi + h * s)
    out[:, 3] = t
    out[:, 4] = k
    return out, ok, s


def transport(state, cov, barrel, position, to_barrel, to_position, field: float = 2.0):
    """`propagate` with the covariance: C' = J C J^T, J by forward differences of `propagate`.

    Returns (states, covariances, ok, s).
    """
    n = len(state)
    shifted = np.repeat(state[None], 6, axis=0)
    for i in range(5):
        shifted[i + 1, :, i] += _FD_STEPS[i]

    def tile(a):
        return np.tile(np.broadcast_to(a, (n,)), 6)

    out, ok, s = propagate(shifted.reshape(6 * n, 5), tile(barrel), tile(position), tile(to_barrel),
                           tile(to_position), field)
    out = out.reshape(6, n, 5)
    diff = out[1:] - out[0][None]
    diff[:, :, 0] = wrap(diff[:, :, 0])
    diff[:, :, 2] = wrap(diff[:, :, 2])
    jac = np.transpose(diff / _FD_STEPS[:, None, None], (1, 2, 0))  # (n, 5 out, 5 in)
    new_cov = jac @ cov @ np.transpose(jac, (0, 2, 1))
    ok = ok.reshape(6, n).all(axis=0)
    return out[0], 0.5 * (new_cov + np.transpose(new_cov, (0, 2, 1))), ok, s[:n]
