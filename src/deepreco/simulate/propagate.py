"""Helix propagation of charged particles through the layers and modules of a TrackML detector.

A particle of momentum p and charge q in a uniform field B along z moves on a helix. With the unit direction
t = (tx, ty, tz) and the signed turning rate w = -q c B / p (rad per mm of path, c = 0.299792458e-3 GeV/(T mm)),
after a path length s

    x(s) = x0 + (tx sin(ws) - ty (1 - cos(ws))) / w,   y(s) = y0 + (ty sin(ws) + tx (1 - cos(ws))) / w,
    z(s) = z0 + tz s,

so the transverse radius of curvature is R = pT / (c B |q|) (R[mm] = 1000 pT[GeV] / (0.3 B[T] |q|)) and a
positive particle turns clockwise seen from +z. All active particles step together, from one *surface* to
the next: the barrel layers as cylinders at their mean radius, the endcap layers as planes at their mean z
(each with the extent of its modules), and the passive beryllium tubes. At each layer crossing the layer's
modules near the crossing point (a KD-tree of their centres) are candidates; the helix is intersected with
each candidate's exact plane (Newton's method from the layer crossing) and kept where the intersection lies on
the sensor. Neighbouring modules overlap, so a particle may leave two (rarely more) hits on one layer, as in
the real data. Then the material of the crossing deflects the particle (Highland) and slows it (Bethe).

Stopping rule: a particle is followed until it leaves the tracker (no further surface ahead), reaches its end point
(the vertex of its daughters, :mod:`.lineage`), interacts (:mod:`.material`), or reaches the point of its helix
farthest from the beam line (and at most half a turn, pi, in the transverse plane since its production): a looper
from the beam line stops at its largest radius, half a turn out. The real TrackML events show this: particles of pT
0.15 to 0.3 GeV, which would cross the pixel layers again and again on their way back in, carry as many hits as the
layers they cross going out (at most 19 hits per particle in events 1001 to 1009). For a secondary made off the
beam line the farthest point is nearer than half a turn when it starts outwards (stopping there rather than at half
a turn: 0.753 -> 0.758 of the particles of event 1001 within one hit of their real ``nhits``, 0.747 -> 0.752 in
event 1003). A particle is followed while its transverse momentum is at least ``MIN_PT_GEV`` (0.15 GeV), at
production and after each layer's energy loss and scattering: in the real events central primaries made with pT <
0.15 GeV have no hits, and those made just above it end early (primaries of |eta| < 1 and pT 0.150-0.155 GeV carry
2.9 hits on average in events 1001, 1003, 1005, 1009, of 0.155-0.160 GeV 5.5, above 0.16 GeV 8.2 to 8.5; with this
rule the simulation gives 3.3, 6.3, 8.0 to 8.3, without it 7.4, 8.0, 8.1 to 8.3; ``benchmarks/simulate.py`` prints
the first two events' figures). A particle made inside a sensor (the secondaries of the TrackML lists start on the
material surfaces, many in a module) leaves no hit on that sensor: its parent's crossing made that hit. In event
1001, 237 secondaries had such a hit at their own production vertex before this rule.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..detector import BARREL_VOLUMES, Detector
from .material import BERYLLIUM, LAYER_SLAB_MM, PASSIVE_CYLINDERS, SILICON, bethe_loss, highland
from .secondaries import CONVERSION_FACTOR

__all__ = ["C_LIGHT", "MAX_TURN", "MIN_NEUTRAL_PT_GEV", "MIN_PT_GEV", "Crossings", "Interactions", "helix_step",
           "layer_at", "propagate"]

C_LIGHT = 0.299792458e-3  # GeV / (T mm) per unit charge
MAX_TURN = np.pi  # transverse turning (rad) after which a particle is no longer followed
MIN_PT_GEV = 0.15  # particles are followed while their pT is at least this (real TrackML events)
#: Neutral particles (followed only for their interactions: photon conversions, nuclear interactions) are
#: followed while their pT is at least this: the secondaries of the TrackML lists have pT >= 0.1 GeV, and
#: a softer photon or neutral hadron makes almost none that hard.
MIN_NEUTRAL_PT_GEV = 0.1
_EPS_S = 1e-4  # mm: a surface closer than this along the path is the one the particle sits on
_MIN_COS = 0.05  # incidence cosines are floored here (path length through a slab at most 20 thicknesses)
_MARGIN = 10.0  # mm added to a layer's extent when accepting a crossing of its nominal surface
_MAX_STEPS = 400
_BIRTH_MM = 1.0  # a crossing this close to the production vertex is of the sensor the particle was made in


@dataclass
class _Surfaces:
    """Every surface as arrays: cylinders (barrel layers and passive tubes) and disks (endcap layers)."""

    cyl_r: np.ndarray
    cyl_lo: np.ndarray
    cyl_hi: np.ndarray
    disk_z: np.ndarray
    disk_lo: np.ndarray
    disk_hi: np.ndarray
    # per surface, cylinders first then disks
    slab_mm: np.ndarray
    passive: np.ndarray
    layer: np.ndarray  # index into ``trees`` (-1 for passive surfaces)
    trees: list  # per layer: (cKDTree of module centres, module rows, search radius)
    phi_window: np.ndarray  # per module: largest |phi(centre) - phi(crossing)| that can give a hit (rad)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _module_outline(det: Detector) -> np.ndarray:
    """Global points (N, 8, 3) on each module's outline: its four corners and the middles of its edges."""
    minhu, maxhu, hv = det.half_widths.T
    u = np.stack([-minhu, minhu, maxhu, -maxhu, np.zeros_like(hv), np.zeros_like(hv),
                  0.5 * (minhu + maxhu), -0.5 * (minhu + maxhu)], axis=1)
    v = np.stack([-hv, -hv, hv, hv, -hv, hv, np.zeros_like(hv), np.zeros_like(hv)], axis=1)
    local = np.stack([u, v, np.zeros_like(u)], axis=-1)
    return np.einsum("nij,nkj->nki", det.rotations, local) + det.centres[:, None, :]


def surfaces(det: Detector) -> _Surfaces:
    """The surfaces of ``det`` (computed once per detector object and cached)."""
    cached = _CACHE.get(det)
    if cached is not None:
        return cached
    outline = _module_outline(det)
    r_out = np.hypot(outline[..., 0], outline[..., 1])
    z_out = outline[..., 2]
    half_diag = np.sqrt(det.half_widths[:, :2].max(axis=1) ** 2 + det.half_widths[:, 2] ** 2)
    lay = det.layers
    cyl, disk = [], []
    trees = []
    for row in lay.itertuples(index=False):
        rows = np.flatnonzero((det.ids[:, 0] == row.volume_id) & (det.ids[:, 1] == row.layer_id))
        # the plane of a module can be a few mm off the layer's nominal surface, and a steep track moves
        # sideways over that distance: 30 mm covers the strip barrels' 3 mm stagger at |cot theta| = 10
        radius = float(half_diag[rows].max()) + 30.0
        trees.append((cKDTree(det.centres[rows]), rows, radius))
        slab = LAYER_SLAB_MM.get(int(row.volume_id), 1.5)
        entry = (len(trees) - 1, slab)
        if row.volume_id in BARREL_VOLUMES:
            cyl.append((row.r_mean, z_out[rows].min(), z_out[rows].max(), *entry))
        else:
            disk.append((row.z_mean, r_out[rows].min(), r_out[rows].max(), *entry))
    for r, half_length, thickness in PASSIVE_CYLINDERS:
        cyl.append((r, -half_length, half_length, -1, thickness))
    cyl_a = np.array(cyl, dtype=np.float64).reshape(-1, 5)
    disk_a = np.array(disk, dtype=np.float64).reshape(-1, 5)
    both = np.concatenate([cyl_a, disk_a])
    out = _Surfaces(
        cyl_r=cyl_a[:, 0], cyl_lo=cyl_a[:, 1] - _MARGIN, cyl_hi=cyl_a[:, 2] + _MARGIN,
        disk_z=disk_a[:, 0], disk_lo=disk_a[:, 1] - _MARGIN, disk_hi=disk_a[:, 2] + _MARGIN,
        slab_mm=both[:, 4], passive=both[:, 3] < 0, layer=both[:, 3].astype(np.int64), trees=trees,
        phi_window=_phi_windows(det),
    )
    _CACHE[det] = out
    return out


def _phi_windows(det: Detector) -> np.ndarray:
    """Per module, how far in phi from a crossing its centre may lie for the crossing to make a hit on it.

    A ring of n modules on a disk (one layer, one centre radius) is searched as n bins in phi: the module whose
    centre is nearest the crossing in phi and its two neighbours, i.e. centres within 1.5 x 2 pi / n. Near the
    inner edge of the pixel disks (r = 30 to 34 mm) a ring of 40 modules of 16.8 mm covers each point three to
    four times, and the real events show the limit: without it the simulation gave the primaries of |eta| 3.5
    to 4 and pT > 0.5 GeV (they cross the disks there) 0.48 hits more than their real ``nhits`` and 0.877 of them
    within one hit (seed-to-seed 0.97); with it +0.29 and 0.920 (events 1001, 1003, 1005, 1009). Elsewhere
    (barrel layers, outer pixel rings, strip disks) a module never reaches that far, and nothing changes.
    """
    window = np.full(len(det.ids), np.pi)
    endcap = ~np.isin(det.ids[:, 0], list(BARREL_VOLUMES))
    ring = pd.DataFrame({"volume": det.ids[:, 0], "layer": det.ids[:, 1],
                         "r": np.round(np.hypot(det.centres[:, 0], det.centres[:, 1]))})
    n = ring.groupby(["volume", "layer", "r"])["r"].transform("size").to_numpy()
    window[endcap] = 1.5 * 2.0 * np.pi / n[endcap]
    return window


def _sin_over(w, s):
    """sin(w s) / w and (1 - cos(w s)) / w, exact as w -> 0."""
    a = w * s
    sin_w = s * np.sinc(a / np.pi)
    half = np.sinc(a / (2.0 * np.pi))
    one_minus_cos_w = 0.5 * w * s * s * half * half
    return sin_w, one_minus_cos_w


def helix_step(x, t, w, s):
    """Position and unit direction after path ``s`` (mm) on the helix of (x, t, w); arrays broadcast."""
    sw, cw = _sin_over(w, s)
    tx, ty, tz = t[..., 0], t[..., 1], t[..., 2]
    pos = np.stack([x[..., 0] + tx * sw - ty * cw, x[..., 1] + ty * sw + tx * cw, x[..., 2] + tz * s], axis=-1)
    c, sn = np.cos(w * s), np.sin(w * s)
    direction = np.stack([tx * c - ty * sn, ty * c + tx * sn, tz * np.ones_like(c)], axis=-1)
    return pos, direction


def _cylinder_paths(x, t, w, radius):
    """Path lengths (m, k, 2) to the two intersections of each helix with cylinders of ``radius`` (k,).

    NaN where there is none. Circles of radius above 1e7 mm are treated as straight lines (sagitta below
    0.02 mm over the tracker), which also covers w = 0.
    """
    tx, ty = t[:, 0:1], t[:, 1:2]
    st = np.hypot(tx, ty)
    x0, y0 = x[:, 0:1], x[:, 1:2]
    R = radius[None, :]
    w_ = w[:, None]
    absw = np.abs(w_)
    straight = (absw * 1e7 <= st) | (st < 1e-12)
    wsafe = np.where(straight, 1.0, w_)
    # circle: centre C, radius rho, intersection with |x| = R
    cx, cy = x0 - ty / wsafe, y0 + tx / wsafe
    rho = st / np.abs(wsafe)
    d = np.hypot(cx, cy)
    dsafe = np.maximum(d, 1e-12)
    a = (R**2 - rho**2 + d**2) / (2.0 * dsafe)
    h2 = R**2 - a**2
    h = np.sqrt(np.maximum(h2, 0.0))
    ex, ey = cx / dsafe, cy / dsafe
    r0x, r0y = x0 - cx, y0 - cy
    paths = []
    for sign in (1.0, -1.0):
        px, py = a * ex - sign * h * ey, a * ey + sign * h * ex
        rvx, rvy = px - cx, py - cy
        delta = np.arctan2(r0x * rvy - r0y * rvx, r0x * rvx + r0y * rvy)
        phi = np.mod(np.sign(wsafe) * delta, 2.0 * np.pi)
        s = phi / np.abs(wsafe)
        paths.append(np.where(h2 >= 0, s, np.nan))
    circle = np.stack(paths, axis=-1)
    # straight line: st^2 s^2 + 2 (x0 . t) s + |x0|^2 - R^2 = 0
    qa = np.maximum(st**2, 1e-300)
    qb = x0 * tx + y0 * ty
    qc = x0**2 + y0**2 - R**2
    disc = qb**2 - qa * qc
    sq = np.sqrt(np.maximum(disc, 0.0))
    line = np.stack([(-qb - sq) / qa, (-qb + sq) / qa], axis=-1)
    line = np.where((disc >= 0)[..., None] & (st >= 1e-12)[..., None], line, np.nan)
    return np.where(straight[..., None], line, circle)


def _path_to_point(x, t, w, point):
    """Path length along each helix from x to where it passes ``point`` (by the transverse turning angle).

    The point need not lie on the helix exactly (the particle scatters on its way): the angle is measured
    around the circle's centre, and for near-straight tracks the path is the projection on the direction.
    """
    tx, ty = t[:, 0], t[:, 1]
    st = np.hypot(tx, ty)
    straight = (np.abs(w) * 1e7 <= st) | (st < 1e-6)
    wsafe = np.where(straight, 1.0, w)
    cx, cy = x[:, 0] - ty / wsafe, x[:, 1] + tx / wsafe
    r0x, r0y = x[:, 0] - cx, x[:, 1] - cy
    rvx, rvy = point[:, 0] - cx, point[:, 1] - cy
    delta = np.arctan2(r0x * rvy - r0y * rvx, r0x * rvx + r0y * rvy)
    phi = np.mod(np.sign(wsafe) * delta, 2.0 * np.pi)
    circle = phi / np.abs(wsafe)
    line = np.einsum("ij,ij->i", point - x, t)
    return np.maximum(np.where(straight, line, circle), 0.0)


def layer_at(detector: Detector, points, tolerance: float = 7.0) -> np.ndarray:
    """Row in ``detector.layers`` of the layer whose material holds each point (n, 3) mm; -1 for none.

    A point is in a layer's material when it lies within ``tolerance`` of the layer's surface (a barrel
    layer's mean radius, a disk's mean z) and inside the layer's extent. The secondaries of the TrackML lists
    start on such surfaces: a few mm outside the pixel barrel layers (r = 35.5, 75, 118.8, 174.7 mm), 5 mm inside
    the strip barrel layers (255.4, 355.1, 494.9, 654.7 mm), at the disks' mean z, or in a module itself.
    """
    surf = surfaces(detector)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    r, z = np.hypot(pts[:, 0], pts[:, 1]), pts[:, 2]
    n_cyl = surf.cyl_r.size
    active = ~surf.passive
    on_cyl = (np.abs(r[:, None] - surf.cyl_r[None, :]) < tolerance) & (z[:, None] >= surf.cyl_lo) \
        & (z[:, None] <= surf.cyl_hi) & active[None, :n_cyl]
    on_disk = (np.abs(z[:, None] - surf.disk_z[None, :]) < tolerance) & (r[:, None] >= surf.disk_lo) \
        & (r[:, None] <= surf.disk_hi) & active[None, n_cyl:]
    on = np.concatenate([on_cyl, on_disk], axis=1)
    return np.where(on.any(axis=1), surf.layer[np.argmax(on, axis=1)], -1)


def _path_to_farthest(x, t, w):
    """Path length along each helix to its point farthest from the beam line (inf for straight tracks).

    The circle's farthest point from the z axis lies on the line from the axis through the circle's centre,
    at the centre's distance plus the radius; for a particle made on the beam line it is half a turn away.
    """
    st = np.hypot(t[:, 0], t[:, 1])
    curved = (np.abs(w) * 1e7 > st) & (st >= 1e-6)
    ws = np.where(curved, w, 1.0)
    cx, cy = x[:, 0] - t[:, 1] / ws, x[:, 1] + t[:, 0] / ws
    d = np.maximum(np.hypot(cx, cy), 1e-12)
    rho = st / np.abs(ws)
    far = np.stack([cx * (1.0 + rho / d), cy * (1.0 + rho / d), x[:, 2]], axis=1)
    return np.where(curved, _path_to_point(x, t, ws, far), np.inf)


@dataclass
class Crossings:
    """What propagation found: one row per module crossing (a hit before efficiency and digitisation).

    ``particle`` indexes the input arrays; ``module`` is the detector row; ``position`` the crossing of the
    module's mid-plane (mm), ``momentum`` the momentum there (GeV, before the layer's material acts);
    ``step`` the layer-crossing number of the particle (0, 1, ...), ordering its hits in time; ``cosine``
    the cosine of the angle between the direction and the module's normal (1 at normal incidence); ``layer``
    the module's row in ``detector.layers``.
    """

    particle: np.ndarray
    module: np.ndarray
    position: np.ndarray
    momentum: np.ndarray
    step: np.ndarray
    cosine: np.ndarray
    layer: np.ndarray

    interactions: Interactions | None = None

    def __len__(self) -> int:
        return len(self.particle)


@dataclass
class Interactions:
    """Where particles ended by an interaction with the material (only when ``propagate`` is asked to record
    them): ``particle`` indexes the input arrays, ``position`` (mm) and ``momentum`` (GeV, after the
    material's energy loss and scattering) at the crossing of the surface whose material did it, ``layer``
    its row in ``detector.layers`` (-1 for a passive tube), ``conversion`` True for a photon's conversion,
    False for a hadron's nuclear interaction."""

    particle: np.ndarray
    position: np.ndarray
    momentum: np.ndarray
    layer: np.ndarray
    conversion: np.ndarray


def _module_hits(det, surf, layer, x, t, w):
    """Intersections of helices (x, t, w), all at a crossing of layer ``layer``, with that layer's modules."""
    tree, rows, radius = surf.trees[layer]
    k = min(16, tree.n)
    dist, nn = tree.query(x, k=k, distance_upper_bound=radius)
    dist, nn = dist.reshape(len(x), k), nn.reshape(len(x), k)
    if k < tree.n and np.isfinite(dist[:, -1]).any():  # rare: more candidates than k, ask for all of them
        more = np.flatnonzero(np.isfinite(dist[:, -1]))
        dist2, nn2 = tree.query(x[more], k=min(64, tree.n), distance_upper_bound=radius)
        ci, cj = np.nonzero(np.isfinite(dist2))
        extra = (more[ci], rows[nn2[ci, cj]])
        dist[more] = np.inf
    else:
        extra = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    ci, cj = np.nonzero(np.isfinite(dist))
    cand = np.concatenate([ci, extra[0]])
    mods = np.concatenate([rows[nn[ci, cj]], extra[1]])
    order = np.lexsort((mods, cand))
    cand, mods = cand[order], mods[order]
    normal = det.rotations[mods, :, 2]
    centre = det.centres[mods]
    x0, t0, w0 = x[cand], t[cand], w[cand]
    denom = np.einsum("ij,ij->i", normal, t0)
    ok = np.abs(denom) > 1e-6
    s = np.where(ok, -np.einsum("ij,ij->i", normal, x0 - centre) / np.where(ok, denom, 1.0), 0.0)
    for _ in range(4):
        pos, direc = helix_step(x0, t0, w0, s)
        f = np.einsum("ij,ij->i", normal, pos - centre)
        fp = np.einsum("ij,ij->i", normal, direc)
        good = np.abs(fp) > 1e-6
        s = s - np.where(good, f / np.where(good, fp, 1.0), 0.0)
    pos, direc = helix_step(x0, t0, w0, s)
    f = np.einsum("ij,ij->i", normal, pos - centre)
    ok &= (np.abs(f) < 1e-5) & (np.abs(s) < 300.0)
    # A module plane can also be met far from the layer crossing, on the helix's backward extension through the
    # far side of a small layer (phi + pi on the innermost barrel). Real neighbours of the crossing (overlaps,
    # staggered modules) lie within a few mm of it across the beam; keep those only.
    ok &= np.hypot(pos[:, 0] - x0[:, 0], pos[:, 1] - x0[:, 1]) < 0.5 * np.hypot(x0[:, 0], x0[:, 1])
    local = np.einsum("nji,nj->ni", det.rotations[mods], pos - centre)
    ok &= det.inside(local, mods)
    narrow = np.flatnonzero(surf.phi_window[mods] < np.pi)  # disk rings only; elsewhere every module may be hit
    m, p = mods[narrow], x0[narrow]
    dphi = np.arctan2(det.centres[m, 1], det.centres[m, 0]) - np.arctan2(p[:, 1], p[:, 0])
    ok[narrow] &= np.abs(np.angle(np.exp(1j * dphi))) <= surf.phi_window[m]
    cosine = np.abs(np.einsum("ij,ij->i", normal, direc))
    return cand[ok], mods[ok], pos[ok], direc[ok], cosine[ok]


def propagate(vertex, momentum, charge, mass, detector: Detector, rng: np.random.Generator,
              field_tesla: float = 2.0, material: bool = True, max_turn: float = MAX_TURN,
              hadronic=None, interaction_scale: float = 1.0, end_point=None, photon=None,
              neutral: bool = False, record: bool = False, passive_scale: float | None = None) -> Crossings:
    """Step every particle (arrays of length n) through ``detector``; returns all module crossings.

    ``vertex`` (n, 3) mm, ``momentum`` (n, 3) GeV, ``charge`` (n,) in units of e, ``mass`` (n,) GeV. Charged
    particles below ``MIN_PT_GEV`` are not propagated, nor neutral ones unless ``neutral``: then those of pT
    >= ``MIN_NEUTRAL_PT_GEV`` go straight through the material (no hits, no scattering or ionisation loss)
    until they interact. ``record``: the returned crossings carry the ``Interactions`` (their products are
    left to the caller). ``passive_scale`` replaces ``interaction_scale`` in the passive beryllium tubes.
    ``photon`` (n,) bool marks photons, which convert
    (probability 1 - exp(-7/9 x/X0)) instead of interacting with nuclei. ``material=False`` switches off
    scattering, energy loss and interactions (ideal helices, used by the tests). Random numbers are drawn in a
    fixed order, so the same generator state gives the same crossings; without neutral particles and photons
    the same as without those options.
    """
    surf = surfaces(detector)
    vertex = np.asarray(vertex, dtype=np.float64).reshape(-1, 3)
    momentum = np.asarray(momentum, dtype=np.float64).reshape(-1, 3)
    charge = np.asarray(charge, dtype=np.float64)
    mass = np.asarray(mass, dtype=np.float64)
    p_all = np.linalg.norm(momentum, axis=1)
    pt_all = np.hypot(momentum[:, 0], momentum[:, 1])
    live = (charge != 0) & (pt_all >= MIN_PT_GEV) & (p_all > 0)
    if neutral:
        live |= (charge == 0) & (pt_all >= MIN_NEUTRAL_PT_GEV) & (p_all > 0)
    idx = np.flatnonzero(live)
    X = vertex[idx].copy()
    T = momentum[idx] / p_all[idx, None]
    P = p_all[idx].copy()
    Q = charge[idx]
    M = mass[idx]
    H = np.ones(idx.size, bool) if hadronic is None else np.asarray(hadronic, bool)[idx]
    G = np.zeros(idx.size, bool) if photon is None else np.asarray(photon, bool)[idx]
    H &= ~G
    interactions = material and (interaction_scale > 0 or bool(G.any()))
    ended: list[tuple] = []
    travelled = np.zeros(idx.size)
    limit = np.full(idx.size, np.inf)
    w0 = -Q * C_LIGHT * field_tesla / P
    if end_point is not None:
        end = np.asarray(end_point, dtype=np.float64).reshape(-1, 3)[idx]
        has = np.isfinite(end).all(axis=1)
        limit[has] = _path_to_point(X[has], T[has], w0[has], end[has])
    limit = np.minimum(limit, _path_to_farthest(X, T, w0))
    turned = np.zeros(idx.size)
    step = np.zeros(idx.size, np.int64)
    n_cyl = surf.cyl_r.size
    out: list[tuple] = []
    for _ in range(_MAX_STEPS):
        if idx.size == 0:
            break
        w = -Q * C_LIGHT * field_tesla / P
        absw = np.abs(w)
        with np.errstate(divide="ignore"):
            remaining = np.where(absw > 0, (max_turn - turned) / np.where(absw > 0, absw, 1.0), np.inf)
        remaining = np.minimum(remaining, limit - travelled)
        # cylinders
        sc = _cylinder_paths(X, T, w, surf.cyl_r)
        zc = X[:, 2, None, None] + T[:, 2, None, None] * sc
        okc = (sc > _EPS_S) & (sc <= remaining[:, None, None]) & (zc >= surf.cyl_lo[None, :, None]) \
            & (zc <= surf.cyl_hi[None, :, None])
        sc = np.where(okc, sc, np.inf).min(axis=2)
        # disks
        tz = T[:, 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = (surf.disk_z[None, :] - X[:, 2:3]) / tz
        sd = np.where(np.isfinite(sd) & (sd > _EPS_S) & (sd <= remaining[:, None]), sd, np.inf)
        cand = np.isfinite(sd)
        if cand.any():
            ri, ci = np.nonzero(cand)
            pos_d, _ = helix_step(X[ri], T[ri], w[ri], sd[ri, ci])
            rd = np.hypot(pos_d[:, 0], pos_d[:, 1])
            bad = (rd < surf.disk_lo[ci]) | (rd > surf.disk_hi[ci])
            sd[ri[bad], ci[bad]] = np.inf
        s_all = np.concatenate([sc, sd], axis=1)
        nxt = np.argmin(s_all, axis=1)
        s_next = s_all[np.arange(idx.size), nxt]
        keep = np.isfinite(s_next)
        state = (idx, X, T, P, Q, M, H, G, turned, step, w, travelled, limit)
        idx, X, T, P, Q, M, H, G, turned, step, w, travelled, limit = (a[keep] for a in state)
        nxt, s_next = nxt[keep], s_next[keep]
        if idx.size == 0:
            break
        X, T = helix_step(X, T, w, s_next)
        turned = turned + np.abs(w) * s_next
        travelled = travelled + s_next
        # incidence on the nominal surface, for the layer slab
        is_cyl = nxt < n_cyl
        rxy = np.maximum(np.hypot(X[:, 0], X[:, 1]), 1e-9)
        cos_cyl = np.abs(T[:, 0] * X[:, 0] + T[:, 1] * X[:, 1]) / rxy
        cos_surf = np.maximum(np.where(is_cyl, cos_cyl, np.abs(T[:, 2])), _MIN_COS)
        layer = surf.layer[nxt]
        x_over_x0 = np.where(surf.passive[nxt], surf.slab_mm[nxt] / BERYLLIUM.x0_mm,
                             surf.slab_mm[nxt] / SILICON.x0_mm) / cos_surf
        si_path = np.where(surf.passive[nxt], 0.0, surf.slab_mm[nxt] / cos_surf)
        be_path = np.where(surf.passive[nxt], surf.slab_mm[nxt] / cos_surf, 0.0)
        # modules of the layers crossed
        module_path = np.zeros(idx.size)
        for lay in np.unique(layer[layer >= 0]):
            sel = np.flatnonzero((layer == lay) & (Q != 0))  # a neutral particle leaves no hit
            c, mods, pos, direc, cosine = _module_hits(detector, surf, int(lay), X[sel], T[sel], w[sel])
            owner = sel[c]
            out.append((idx[owner], mods, pos, direc * P[owner, None], step[owner], cosine,
                        np.full(owner.size, lay)))
            module_path += np.bincount(owner, weights=detector.thickness[mods] / np.maximum(cosine, _MIN_COS),
                                       minlength=idx.size)
        step = step + 1
        if material:
            x_over_x0 = x_over_x0 + module_path / SILICON.x0_mm
            si_path = si_path + module_path
            E = np.sqrt(P**2 + M**2)
            beta = P / E
            theta0 = highland(P, beta, Q, x_over_x0)
            a1, a2 = rng.standard_normal((2, idx.size)) * theta0
            ref = np.where(np.abs(T[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
            e1 = np.cross(T, ref)
            e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
            e2 = np.cross(T, e1)
            T = T + a1[:, None] * e1 + a2[:, None] * e2
            T /= np.linalg.norm(T, axis=1, keepdims=True)
            loss = bethe_loss(P, M, Q, si_path, SILICON) + bethe_loss(P, M, Q, be_path, BERYLLIUM)
            E_new = E - loss
            alive = E_new > M + 1e-3  # stopped particles (kinetic energy below 1 MeV) are dropped
            P = np.sqrt(np.maximum(E_new**2 - M**2, 0.0))
            if interactions:
                be_scale = interaction_scale if passive_scale is None else passive_scale
                lam = interaction_scale * si_path / SILICON.lambda_mm + be_scale * be_path / BERYLLIUM.lambda_mm
                chance = np.where(G, -np.expm1(-CONVERSION_FACTOR * x_over_x0), np.where(H, -np.expm1(-lam), 0.0))
                hit = alive & (rng.random(idx.size) < chance)
                if record and hit.any():
                    ended.append((idx[hit], X[hit], P[hit, None] * T[hit], layer[hit], G[hit]))
                alive &= ~hit
            # softened (energy loss) or turned (scattering)
            alive &= P * np.hypot(T[:, 0], T[:, 1]) >= np.where(Q != 0, MIN_PT_GEV, MIN_NEUTRAL_PT_GEV)
            idx, X, T, P, Q, M, H, G, turned, step, travelled, limit = (
                a[alive] for a in (idx, X, T, P, Q, M, H, G, turned, step, travelled, limit))
    if out:
        parts = [np.concatenate(col) for col in zip(*out, strict=True)]
        # a particle made inside a sensor (by an interaction of its parent there) leaves no hit on that sensor:
        # the parent's crossing made it
        born = np.linalg.norm(parts[2] - vertex[parts[0]], axis=1) < _BIRTH_MM
        parts = [a[~born] for a in parts]
    else:
        parts = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3)),
                 np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)]
    if not record:
        return Crossings(*parts)
    cols = [np.concatenate(c) for c in zip(*ended, strict=True)] if ended else [
        np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0, bool)]
    return Crossings(*parts, interactions=Interactions(*cols))
