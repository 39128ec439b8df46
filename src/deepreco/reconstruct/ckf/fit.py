"""deepreco's own track fit: the ckf's Kalman filter run over the given hits of each track, without ACTS.

A Kalman filter rather than a global helix chi2 fit: with multiple scattering at every layer a global fit needs a
kink angle per layer or a full covariance of the scattering between hits; the filter takes the scattering as
process noise, layer by layer, and the ckf already has it (`helix.transport`, `kalman.update`), so the fit has the
track finding's propagation and measurement model, with the simulation's material (below) rather than the ckf's
rounded per-layer fractions.

For all tracks at once (vectorised over tracks, one step per hit), each track's hits ordered by their distance
from the origin (a track from the beam line moves away from it; the simulation follows a particle at most half a
turn):

1. start: the helix through the first, middle and last hit (`seeding.fit_seeds`), at the first hit with a loose
   covariance;
2. forward filter, first hit to last: only to carry a good state to the last hit;
3. backward filter, last hit to first, starting from the forward state with its covariance times 100 (so the
   forward pass's information weighs 1 %); its chi2 is the track's. Going inward the material of each layer is
   crossed before its hits (the simulation scatters and slows a particle after a layer's hits): its scattering
   enters as process noise on the direction and the mean ionisation loss is given back to the momentum;
4. to the beam line: the state at the first hit carried through the material inside it (beam pipe, layers
   crossed without a hit) to the point of closest approach to the z axis, and expressed there in ACTS's perigee
   parameters (d0, z0, phi, theta, q/p) with the covariance turned by the Jacobian (finite differences).

Material (`deepreco.simulate.material`, as the simulation has it): at each layer the layer's silicon slab plus one
module per hit the track has on the layer; at each layer the track crosses without a hit, and at the beam pipe
and the pixel support tube, the slab or tube alone; all over the path through them (the thickness divided by the
cosine of the incidence angle). Scattering: the Highland width for a pion of the track's momentum; energy loss:
Bethe's mean for a pion. Measurements: the ckf's (`geometry.prepare_hits`), (phi, z) on a barrel and (phi, r) on
a disk with the pitch / sqrt(12) errors, so ndf = 2 n - 5 for the n hits the backward pass took (a hit the helix
does not reach is passed over).

Outliers: a hit whose predicted chi2 (its residual against the prediction's covariance plus its own, 2 dof) is
above ``outlier_chi2`` (25: a probability of 4e-6 for a hit the model describes) is dropped, the state carried on
without it and the hit not counted in ndf: in the forward pass, and a hit dropped there is not offered to the
backward pass, which drops its own likewise. Either pass judges hits only once its state has taken three (before,
the forward state is the three-hit seed's and the backward one mostly the forward pass's: a cut there dropped the
good hits of some truth tracks, or all the hits after a wrong one). A track's wrong hit (a pattern recognition's)
otherwise pulls its helix off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...event import Event
from ...fit import empty_table, fill_table, track_members
from ...simulate.material import BERYLLIUM, LAYER_SLAB_MM, PASSIVE_CYLINDERS, SILICON, bethe_loss
from .geometry import Hits, Layers, detector, layers, prepare_hits
from .helix import CURVATURE_PER_TESLA, _arcs, to_global, transport, wrap
from .kalman import update
from .seeding import fit_seeds, highland

PION_MASS = 0.13957  # GeV: the mass hypothesis of the material effects
_INFLATE = 100.0  # the forward covariance times this starts the backward pass
_FD = np.array([1e-7, 1e-5, 1e-7, 1e-7, 1e-7])  # finite-difference steps of (phi, w, psi, t, k) for the perigee
# a hit whose predicted chi2 (2 dof) is above this is an outlier: P(chi2 > 25) = exp(-12.5) = 4e-6 for a hit
# the model describes, so a right hit is almost never dropped, and a wrong one 5 sigma off is
OUTLIER_CHI2 = 25.0
# either pass judges hits once its state has taken this many: before, it is the seed's or the forward pass's
_SETTLED = 3


class _Material:
    """Every material surface as arrays: the 48 layers then the two passive tubes (barrel, position, extent,
    silicon and beryllium thickness per normal crossing [mm], the layer number or -1)."""

    def __init__(self, lay: Layers):
        det = detector()
        n = len(lay)
        module_t = np.zeros(n)
        for L in range(n):  # the mean module thickness of each layer
            rows = (det.ids[:, 0] == lay.volume[L]) & (det.ids[:, 1] == lay.layer[L])
            module_t[L] = det.thickness[rows].mean()
        self.module_t = module_t
        tubes = np.array(PASSIVE_CYLINDERS, np.float64).reshape(-1, 3)
        self.barrel = np.concatenate([lay.barrel, np.ones(len(tubes), bool)])
        self.position = np.concatenate([lay.position, tubes[:, 0]])
        self.lo = np.concatenate([lay.lo, -tubes[:, 1]])
        self.hi = np.concatenate([lay.hi, tubes[:, 1]])
        self.si = np.concatenate([[LAYER_SLAB_MM.get(int(v), 1.5) for v in lay.volume], np.zeros(len(tubes))])
        self.be = np.concatenate([np.zeros(n), tubes[:, 2]])
        self.layer = np.concatenate([np.arange(n), np.full(len(tubes), -1)])


_MATERIAL: _Material | None = None


def _material() -> _Material:
    global _MATERIAL
    if _MATERIAL is None:
        _MATERIAL = _Material(layers())
    return _MATERIAL


def add_material(state, cov, barrel, si_mm, be_mm, inward: bool, mass: float = PION_MASS):
    """Scattering (process noise on psi and t) and mean energy loss in ``si_mm`` of silicon and ``be_mm`` of
    beryllium (thicknesses per normal crossing of a surface of kind ``barrel``), in place. ``inward``: the state
    moves against the direction of flight, so the loss is given back."""
    phi, psi, t, k = state[:, 0], state[:, 2], state[:, 3], state[:, 4]
    sin_theta = 1.0 / np.sqrt(1.0 + t * t)
    cos_inc = np.maximum(np.where(barrel, sin_theta * np.abs(np.cos(psi - phi)), np.abs(t) * sin_theta), 0.05)
    si, be = si_mm / cos_inc, be_mm / cos_inc
    pt = 1.0 / np.maximum(np.abs(k), 1e-3)
    p = pt / sin_theta
    theta0 = highland(p, si / SILICON.x0_mm + be / BERYLLIUM.x0_mm, mass)
    one_t2 = 1.0 + t * t
    cov[:, 2, 2] += theta0**2 * one_t2
    cov[:, 3, 3] += theta0**2 * one_t2**2
    loss = bethe_loss(p, mass, 1.0, si, SILICON) + bethe_loss(p, mass, 1.0, be, BERYLLIUM)
    energy = np.sqrt(p * p + mass * mass) + np.where(inward, loss, -loss)
    p_new = np.sqrt(np.maximum(energy**2 - mass**2, 1e-6))
    ratio = p / p_new  # k = q / pT scales as 1 / p at fixed direction
    state[:, 4] = k * ratio
    cov[:, 4, :] *= ratio[:, None]
    cov[:, :, 4] *= ratio[:, None]


def _crossings(mat: _Material, r_from, z_from, r_to, z_to, skip_a, skip_b):
    """Where a step from (r_from, z_from) to (r_to, z_to) crosses a material surface other than the layers
    ``skip_a``, ``skip_b``: the fraction of the step at each (n, n_surfaces), inf where it does not cross."""
    with np.errstate(divide="ignore", invalid="ignore"):
        f_cyl = (mat.position[None, :] - r_from[:, None]) / (r_to - r_from)[:, None]
        f_disk = (mat.position[None, :] - z_from[:, None]) / (z_to - z_from)[:, None]
        f = np.where(mat.barrel[None, :], f_cyl, f_disk)
        # the other coordinate at the crossing, linear along the step, within the surface's extent
        other = np.where(mat.barrel[None, :], z_from[:, None] + f * (z_to - z_from)[:, None],
                         r_from[:, None] + f * (r_to - r_from)[:, None])
    ok = np.isfinite(f) & (f > 1e-9) & (f < 1 - 1e-9) & (other >= mat.lo[None, :]) & (other <= mat.hi[None, :])
    ok &= (mat.layer[None, :] != skip_a[:, None]) & (mat.layer[None, :] != skip_b[:, None])
    return np.where(ok, f, np.inf)


def _through(mat: _Material, state, cov, barrel, pos, frac, inward: bool, field: float):
    """Carry the states through the surfaces of ``frac`` (`_crossings`) in step order, adding their material;
    a surface the helix does not reach is passed over. Returns the new (state, cov, barrel, pos)."""
    frac = frac.copy()
    while True:
        nxt = np.argmin(frac, axis=1)
        rows = np.flatnonzero(np.isfinite(frac[np.arange(len(frac)), nxt]))
        if len(rows) == 0:
            return state, cov, barrel, pos
        s = nxt[rows]
        frac[rows, s] = np.inf
        st, cv, ok, _ = transport(state[rows], cov[rows], barrel[rows], pos[rows], mat.barrel[s], mat.position[s],
                                  field)
        ok &= np.isfinite(st).all(axis=1) & np.isfinite(cv).all(axis=(1, 2))
        rows, s, st, cv = rows[ok], s[ok], st[ok], cv[ok]
        add_material(st, cv, mat.barrel[s], mat.si[s], mat.be[s], inward)
        state, cov, barrel, pos = state.copy(), cov.copy(), barrel.copy(), pos.copy()
        state[rows], cov[rows], barrel[rows], pos[rows] = st, cv, mat.barrel[s], mat.position[s]


def perigee(state, barrel, pos, field: float = 2.0) -> np.ndarray:
    """ACTS's perigee parameters (d0, z0, phi, theta, q/p) of the helix at its closest approach to the z axis."""
    x, y, z = to_global(state, barrel, pos)
    psi, t, k = state[:, 2], state[:, 3], state[:, 4]
    h = -CURVATURE_PER_TESLA * field * k
    cos, sin = np.cos(psi), np.sin(psi)
    # the circle's centre c = p + n / h; the closest point to the axis lies on the line from c to the origin
    straight = np.abs(h) < 1e-9
    safe_h = np.where(straight, 1.0, h)
    cx, cy = x - sin / safe_h, y + cos / safe_h
    # (p - c) = (sin, -cos) / h turns at the rate h with the path; pca - c points along -c for either sign of h
    ax, ay = sin / safe_h, -cos / safe_h
    bx, by = -cx, -cy
    alpha = np.arctan2(ax * by - ay * bx, ax * bx + ay * by)
    s = np.where(straight, -(x * cos + y * sin), alpha / safe_h)
    sa, ca = _arcs(h, s)
    xp, yp = x + cos * sa - sin * ca, y + sin * sa + cos * ca
    phi = wrap(psi + h * s)
    theta = np.arctan2(1.0, t)
    return np.column_stack([-xp * np.sin(phi) + yp * np.cos(phi), z + t * s, phi, theta, k * np.sin(theta)])


def perigee_cov(state, cov, barrel, pos, field: float = 2.0):
    """`perigee` with its covariance, the Jacobian by forward differences: (params (n, 5), cov (n, 5, 5))."""
    n = len(state)
    shifted = np.repeat(state[None], 6, axis=0)
    for i in range(5):
        shifted[i + 1, :, i] += _FD[i]
    out = perigee(shifted.reshape(6 * n, 5), np.tile(barrel, 6), np.tile(pos, 6), field).reshape(6, n, 5)
    diff = out[1:] - out[0][None]
    diff[:, :, 2] = wrap(diff[:, :, 2])
    jac = np.transpose(diff / _FD[:, None, None], (1, 2, 0))
    new = jac @ cov @ np.transpose(jac, (0, 2, 1))
    return out[0], 0.5 * (new + np.transpose(new, (0, 2, 1)))


def _ordered(hits: Hits, members: np.ndarray, starts: np.ndarray, to_fit: np.ndarray):
    """The usable hit rows of each track to fit, ordered by distance from the origin: (n, max_hits) padded -1."""
    counts = starts[to_fit + 1] - starts[to_fit]
    owner = np.repeat(np.arange(len(to_fit)), counts)
    rows = np.concatenate([members[starts[t]:starts[t + 1]] for t in to_fit]) if len(to_fit) else np.zeros(0, int)
    good = hits.layer[rows] >= 0
    owner, rows = owner[good], rows[good]
    dist = np.hypot(hits.r[rows], hits.z[rows])
    order = np.lexsort((dist, owner))
    owner, rows = owner[order], rows[order]
    n = np.bincount(owner, minlength=len(to_fit))
    first = np.concatenate([[0], np.cumsum(n)])
    grid = np.full((len(to_fit), max(int(n.max(initial=0)), 1)), -1, np.int64)
    grid[owner, np.arange(len(rows)) - first[owner]] = rows
    return grid, n


def fit_tracks(event: Event, tracks: pd.DataFrame, min_hits: int = 3, field: float = 2.0,
               outlier_chi2: float = OUTLIER_CHI2) -> pd.DataFrame:
    """Fit every track of ``tracks`` (hit_id, track_id) on ``event`` with deepreco's Kalman filter.

    Tracks with fewer than ``min_hits`` hits on known modules, or on fewer than three layers, are not fitted
    (their row says ``fitted`` False), nor are those whose filter breaks down (the helix misses a hit's surface,
    a non-finite state). Hits above ``outlier_chi2`` are dropped (module docstring). Returns one row per track id,
    `deepreco.fit.COLUMNS`, sorted by track_id.
    """
    hits = prepare_hits(event.hits)
    lay = layers()
    mat = _material()
    track_ids, n_hits, starts, members = track_members(event, tracks, hits.hit_id)
    table = empty_table(track_ids, n_hits)
    to_fit = np.flatnonzero(n_hits >= min_hits)
    grid, n = _ordered(hits, members, starts, to_fit)
    # at least three layers: a helix needs three points
    layer_of = np.where(grid >= 0, hits.layer[np.maximum(grid, 0)], -1)
    srt = np.sort(layer_of, axis=1)
    n_layers = ((srt[:, 1:] != srt[:, :-1]) & (srt[:, 1:] >= 0)).sum(axis=1) + (srt[:, 0] >= 0)
    keep = (n >= min_hits) & (n_layers >= 3)
    to_fit, grid, n, layer_of = to_fit[keep], grid[keep], n[keep], layer_of[keep]
    if len(to_fit) == 0:
        return fill_table(table, np.zeros(0, np.int64), np.zeros((0, 5)), np.zeros((0, 5, 5)), [], [], [])
    m = len(to_fit)
    rows = np.arange(m)
    # hits of the track on each of its layers: the modules crossed there
    per_layer = np.zeros((m, len(lay)), np.int64)
    np.add.at(per_layer, (np.repeat(rows, grid.shape[1]), layer_of.reshape(-1)), (layer_of >= 0).reshape(-1))

    first, last = grid[:, 0], grid[rows, n - 1]
    seeds = fit_seeds(hits, np.column_stack([first, grid[rows, n // 2], last]), np.zeros(m), field)
    psi = np.where(np.isfinite(seeds["psi"]), seeds["psi"], np.arctan2(hits.y[last] - hits.y[first],
                                                                       hits.x[last] - hits.x[first]))
    qpt = np.clip(np.nan_to_num(seeds["qpt"]), -20.0, 20.0)
    state = np.column_stack([hits.meas[first], psi, np.nan_to_num(seeds["cot"]), qpt])
    cov = np.zeros((m, 5, 5))
    cov[:, :2, :2] = hits.var[first]
    cov[:, 2, 2], cov[:, 3, 3] = 0.1**2, 0.1**2 * (1.0 + state[:, 3] ** 2) ** 2
    cov[:, 4, 4] = (0.5 * np.abs(qpt) + 0.2) ** 2
    barrel, pos = lay.barrel[hits.layer[first]], hits.surface[first].copy()
    last = first.copy()  # the hit each track's state was last updated with

    def step(sel, to, inward, cut):
        """Carry tracks ``sel`` from their last hit to the hit rows ``to`` (material between) and update with it.

        A hit the helix does not reach, whose update breaks the state, or whose chi2 is above ``cut`` (an outlier), is
        passed over: the state stays where it was (a wrong hit of a track, or a step the transport cannot make).
        Returns (updated, chi2, outlier) per track of ``sel``.
        """
        frm = last[sel]
        st, cv, br, ps = state[sel], cov[sel], barrel[sel], pos[sel]
        lf, lt = hits.layer[frm], hits.layer[to]
        # forward: the material of the layer just left; inward: the layer about to be entered (after its hits)
        new_layer = lf != lt
        if not inward and new_layer.any():
            w = np.flatnonzero(new_layer)
            sw, cw = st[w], cv[w]
            add_material(sw, cw, lay.barrel[lf[w]],
                         mat.si[lf[w]] + per_layer[sel[w], lf[w]] * mat.module_t[lf[w]], 0.0, False)
            st[w], cv[w] = sw, cw
        frac = _crossings(mat, hits.r[frm], hits.z[frm], hits.r[to], hits.z[to], lf, lt)
        st, cv, br, ps = _through(mat, st, cv, br, ps, frac, inward, field)
        st, cv, ok, _ = transport(st, cv, br, ps, lay.barrel[lt], hits.surface[to], field)
        if inward and new_layer.any():
            w = np.flatnonzero(new_layer)
            sw, cw = st[w], cv[w]
            add_material(sw, cw, lay.barrel[lt[w]],
                         mat.si[lt[w]] + per_layer[sel[w], lt[w]] * mat.module_t[lt[w]], 0.0, True)
            st[w], cv[w] = sw, cw
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            st, cv, c2 = update(st, cv, hits.meas[to], hits.var[to])
        ok &= np.isfinite(st).all(axis=1) & np.isfinite(cv).all(axis=(1, 2)) & np.isfinite(c2)
        outlier = ok & (c2 > cut)
        ok &= ~outlier
        good = sel[ok]
        state[good], cov[good], barrel[good], pos[good] = st[ok], cv[ok], lay.barrel[lt[ok]], hits.surface[to[ok]]
        last[good] = to[ok]
        return ok, np.where(ok, c2, 0.0), outlier

    # forward, first hit to last: a good state at the last hit
    end = np.zeros(m, np.int64)  # the position in ``grid`` of the last hit taken
    taken = np.ones(m, np.int64)
    dropped = np.zeros(grid.shape, bool)  # the forward pass's outliers, not offered to the backward pass
    for j in range(1, grid.shape[1]):
        sel = np.flatnonzero(n > j)
        if len(sel):
            cut = np.where(taken[sel] >= _SETTLED, outlier_chi2, np.inf)
            ok, _, out = step(sel, grid[sel, j], False, cut)
            end[sel[ok]] = j
            taken[sel] += ok
            dropped[sel[out], j] = True
    # backward, from there to the first hit, from the forward state with a loose covariance
    cov *= _INFLATE
    chi2 = np.zeros(m)
    used = np.ones(m, np.int64)
    for j in range(1, grid.shape[1]):
        sel = np.flatnonzero(end >= j)
        sel = sel[~dropped[sel, end[sel] - j]]
        if len(sel):
            cut = np.where(used[sel] >= _SETTLED, outlier_chi2, np.inf)
            ok, c2, _ = step(sel, grid[sel, end[sel] - j], True, cut)
            chi2[sel] += c2
            used[sel] += ok
    alive = used >= 3
    # to the beam line: the material inside the first hit (beam pipe, layers crossed without a hit)
    sel = np.flatnonzero(alive)
    f = grid[sel, 0]
    z_axis = hits.z[f] - state[sel, 3] * hits.r[f]
    frac = _crossings(mat, hits.r[f], hits.z[f], np.zeros(len(sel)), z_axis, hits.layer[f], hits.layer[f])
    st, cv, br, ps = _through(mat, state[sel], cov[sel], barrel[sel], pos[sel], frac, True, field)
    params, pcov = perigee_cov(st, cv, br, ps, field)
    ok = np.isfinite(params).all(axis=1) & np.isfinite(pcov).all(axis=(1, 2)) & (params[:, 4] != 0)
    # a filter that broke down leaves a covariance that is no covariance
    ok[ok] = (np.linalg.eigvalsh(pcov[ok]) > 0).all(axis=1)
    sel, params, pcov = sel[ok], params[ok], pcov[ok]
    return fill_table(table, to_fit[sel], params, pcov, chi2[sel], 2 * used[sel] - 5, used[sel])
