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
straight-line crossing. The Jacobian of the transport (`transport_jacobian`) is analytic: the end point's
change with the state, with the path to the target moved so that the point stays on it (one formula for the
barrel <-> disk changes of parameters too); for the short steps from a layer's mean surface to each hit's own
surface, `short_step_cov` writes it to first order.
"""

from __future__ import annotations

import numpy as np

from . import fast

#: c B / 1000 for B = 1 T: curvature [1/mm] per (q / pT [1/GeV]) and tesla (c = 0.299792458, as the simulation
#: has it: with 0.3 the fitted pT came out 0.07 % high).
CURVATURE_PER_TESLA = 0.299792458e-3

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
    a = p0.u and b = p0.n, from the straight-line crossing in the direction of flight; only the crossings not yet
    converged are iterated.
    """
    shape = np.broadcast(x, y, psi, h, radius).shape
    x, y, psi, h, radius = (np.broadcast_to(np.asarray(v, np.float64), shape).reshape(-1)
                             for v in (x, y, psi, h, radius))
    if fast.HAVE_NUMBA:  # the same iterations compiled, one helix at a time
        s, ok = fast.path_to_cylinder(x, y, psi, h, radius, iterations)
        return s.reshape(shape), ok.reshape(shape)
    cos, sin = np.cos(psi), np.sin(psi)
    a = x * cos + y * sin
    b = -x * sin + y * cos
    d = radius * radius - (x * x + y * y)
    disc = a * a + d
    s = -a + np.sqrt(np.maximum(disc, 0.0))
    todo = np.arange(s.size)
    for _ in range(iterations):
        st, ht, at, bt = s[todo], h[todo], a[todo], b[todo]
        sa, ca = _arcs(ht, st)
        hs = ht * st
        f = 2.0 * at * sa + 2.0 * bt * ca + sa * sa + ca * ca - d[todo]
        fp = 2.0 * (at + sa) * np.cos(hs) + 2.0 * (bt + ca) * np.sin(hs)
        fp = np.where(np.abs(fp) < 1e-9, 1e-9, fp)
        step = f / fp
        s[todo] = st - step
        todo = todo[~(np.abs(step) < 1e-9)]
        if len(todo) == 0:
            break
    sa, ca = _arcs(h, s)
    f = 2.0 * a * sa + 2.0 * b * ca + sa * sa + ca * ca - d
    ok = np.isfinite(s) & (np.abs(f) < 1e-6 * np.maximum(radius, 1.0)) & (np.abs(h * s) < 0.5 * np.pi)
    return s.reshape(shape), ok.reshape(shape)


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


def transport_jacobian(state, barrel, position, to_barrel, ok, s, field: float = 2.0):
    """The Jacobian d(new state) / d(state) of `propagate` (``ok``, ``s`` its results), (n, 5 out, 5 in).

    Analytic: with the point p0 = (x, y, z), the direction psi and h (which the state gives) moved by a change of
    the state, the crossing's path s moves so that the end point stays on the target (a cylinder: |p(s)| = R, so
    ds = -p.dp / p.u with u = dp/ds the end direction; a plane: ds = -(dz + s dt) / t), and the new state is read
    off the moved end point. Where the propagation failed (``ok`` False, s = 0) the path does not move.
    """
    phi, w, psi, t, k = (state[:, i] for i in range(5))
    n = len(state)
    barrel = np.broadcast_to(barrel, (n,))
    to_barrel = np.broadcast_to(to_barrel, (n,))
    r = np.where(barrel, position, w)
    cphi, sphi = np.cos(phi), np.sin(phi)
    x, y = r * cphi, r * sphi
    dh_dk = -CURVATURE_PER_TESLA * field
    h = dh_dk * k
    hs = h * s
    c_hs, s_hs = np.cos(hs), np.sin(hs)
    sa, ca = _arcs(h, s)
    small = np.abs(hs) < 1e-3
    safe_h = np.where(small, 1.0, h)
    hs2 = hs * hs
    dsa_dh = np.where(small, -h * s ** 3 / 3.0 * (1.0 - hs2 / 10.0), (s * c_hs - sa) / safe_h)
    dca_dh = np.where(small, 0.5 * s * s * (1.0 - hs2 / 4.0), (s * s_hs - ca) / safe_h)
    cpsi, spsi = np.cos(psi), np.sin(psi)
    xn = x + cpsi * sa - spsi * ca
    yn = y + spsi * sa + cpsi * ca
    ux, uy = cpsi * c_hs - spsi * s_hs, spsi * c_hs + cpsi * s_hs  # d(xn, yn) / ds
    xh, yh = cpsi * dsa_dh - spsi * dca_dh, spsi * dsa_dh + cpsi * dca_dh  # d(xn, yn) / dh
    rn2 = xn * xn + yn * yn
    along = xn * ux + yn * uy
    along = np.where(np.abs(along) < 1e-9, 1e-9, along)
    zero, one = np.zeros(n), np.ones(n)
    # d(x, y, z, psi, t, h) / d(state), one column per parameter
    dx = np.stack([-y, np.where(barrel, 0.0, cphi), zero, zero, zero], 1)
    dy = np.stack([x, np.where(barrel, 0.0, sphi), zero, zero, zero], 1)
    dz = np.stack([zero, np.where(barrel, 1.0, 0.0), zero, zero, zero], 1)
    dpsi = np.stack([zero, zero, one, zero, zero], 1)
    dt = np.stack([zero, zero, zero, one, zero], 1)
    dh = np.stack([zero, zero, zero, zero, np.full(n, dh_dk)], 1)
    dxn = dx - (yn - y)[:, None] * dpsi + xh[:, None] * dh
    dyn = dy + (xn - x)[:, None] * dpsi + yh[:, None] * dh
    with np.errstate(divide="ignore", invalid="ignore"):
        ds = np.where(to_barrel[:, None], -(xn[:, None] * dxn + yn[:, None] * dyn) / along[:, None],
                      -(dz + s[:, None] * dt) / t[:, None])
    ds = np.where(ok[:, None], ds, 0.0)
    dxn = dxn + ux[:, None] * ds
    dyn = dyn + uy[:, None] * ds
    jac = np.empty((n, 5, 5))
    jac[:, 0] = (xn[:, None] * dyn - yn[:, None] * dxn) / rn2[:, None]
    jac[:, 1] = np.where(to_barrel[:, None], dz + s[:, None] * dt + t[:, None] * ds,
                         (xn[:, None] * dxn + yn[:, None] * dyn) / np.sqrt(rn2)[:, None])
    jac[:, 2] = dpsi + s[:, None] * dh + h[:, None] * ds
    jac[:, 3] = dt
    jac[:, 4] = np.stack([zero, zero, zero, zero, one], 1)
    return jac


def transport(state, cov, barrel, position, to_barrel, to_position, field: float = 2.0):
    """`propagate` with the covariance: C' = J C J^T, J of `transport_jacobian`.

    Returns (states, covariances, ok, s).
    """
    n = len(state)
    if fast.HAVE_NUMBA:  # the same arithmetic compiled, one state at a time

        def flat(a, dtype):
            return np.ascontiguousarray(np.broadcast_to(a, (n,)), dtype)

        return fast.transport(np.ascontiguousarray(state, np.float64), np.ascontiguousarray(cov, np.float64),
                              flat(barrel, np.bool_), flat(position, np.float64), flat(to_barrel, np.bool_),
                              flat(to_position, np.float64), CURVATURE_PER_TESLA * field)
    out, ok, s = propagate(state, barrel, position, to_barrel, to_position, field)
    jac = transport_jacobian(state, barrel, position, to_barrel, ok, s, field)
    new_cov = jac @ cov @ np.transpose(jac, (0, 2, 1))
    return out, 0.5 * (new_cov + np.transpose(new_cov, (0, 2, 1))), ok, s


def short_step_cov(state, cov, barrel, position, s, field: float = 2.0):
    """Covariances carried over a short step (a few mm: to a hit's own surface near the current one), C' = J C J^T
    with J to first order in the path: the straight step of transverse length s (as `propagate` returns it)
    whose length itself depends on phi, psi (to a cylinder) or t (to a plane), and the curvature's bend h s^2 / 2.
    Both surfaces are of one kind (``barrel``).
    """
    phi, w, psi, t = state[:, 0], state[:, 1], state[:, 2], state[:, 3]
    r = np.maximum(np.where(barrel, position, w), 1.0)
    c, sn = np.cos(psi - phi), np.sin(psi - phi)
    c = np.where(np.abs(c) < 0.1, np.copysign(0.1, c), c)
    dh = -CURVATURE_PER_TESLA * field  # dh / dk
    h = dh * state[:, 4]
    n = len(state)
    jac = np.zeros((n, 5, 5))
    jac[:, np.arange(5), np.arange(5)] = 1.0
    jac[:, 0, 4] = dh * s * s / (2.0 * r)
    jac[:, 2, 4] = dh * s
    with np.errstate(divide="ignore", invalid="ignore"):
        ds_dt = np.where(np.abs(t) > 1e-6, -s / t, 0.0)
    # on a cylinder: s = dR / cos(psi - phi), so ds/dpsi = -ds/dphi = s tan(psi - phi)
    # on a plane: s = dz / t, so ds/dt = -s / t
    dphi_dpsi = np.where(barrel, s / (r * c), s * c / r)
    jac[:, 0, 2] = dphi_dpsi
    jac[:, 0, 0] = 1.0 - dphi_dpsi
    jac[:, 0, 3] = np.where(barrel, 0.0, ds_dt * sn / r)
    tan = sn / c
    jac[:, 1, 0] = np.where(barrel, -t * s * tan, s * sn)
    jac[:, 1, 2] = np.where(barrel, t * s * tan, -s * sn)
    jac[:, 1, 3] = np.where(barrel, s, ds_dt * c)
    jac[:, 2, 3] = np.where(barrel, 0.0, h * ds_dt)
    new_cov = jac @ cov @ np.transpose(jac, (0, 2, 1))
    return 0.5 * (new_cov + np.transpose(new_cov, (0, 2, 1)))
