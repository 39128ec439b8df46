"""A CMS Phase-1-like pixel barrel: four layers of flat ladders, and helix / straight-line crossings of them.

Geometry. Layer i has ``n_ladders[i]`` flat ladders whose normals point at phi_k = 2 pi k / N; ladder k lies at
the distance d_k = r_i -+ ``stagger`` from the beam (even ladders inside, odd ones outside, as the real ladders
alternate), so neighbouring ladders overlap a little in phi and the layer has no gap. Each ladder is 162 x 3584
pixels of 100 um (u, along r-phi) x 150 um (v, along z): 16.2 mm x 537.6 mm, |z| < 26.9 cm, 285 um of silicon.
The local frame of ladder k: u = (x - c) . e_u with e_u = (-sin phi_k, cos phi_k, 0), v = z, w = (x - c) . n
(depth) with n = (cos phi_k, sin phi_k, 0) and c = d_k n.

Helix. A particle of charge q and momentum p in B along z, with unit direction t and turning rate
omega = -q c B / p (rad per mm of path, c = 0.299792458e-3 GeV / (T mm)), is after a path s at

    x(s) = x0 + (tx sin(omega s) - ty (1 - cos(omega s))) / omega,
    y(s) = y0 + (ty sin(omega s) + tx (1 - cos(omega s))) / omega,      z(s) = z0 + tz s.

Crossing a ladder plane is n . x(s) = d, solved by Newton's method from the straight-line path, for every
(particle, candidate ladder) pair at once; the candidates are the ladder nearest in phi to where the helix meets
the layer's cylinder, and its two neighbours. Only outward crossings within half a turn are kept (loopers
coming back in are not followed), and neither material nor energy loss is simulated: at the TeV jet cores of
DeepCore the tracks that matter are far too stiff for either to move them by a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["C_LIGHT", "PixelBarrel", "helix_crossings", "line_crossings"]

C_LIGHT = 0.299792458e-3  # GeV / (T mm) per unit charge
_NEWTON_STEPS = 6


@dataclass(frozen=True)
class PixelBarrel:
    """The barrel pixel detector of CMS Phase-1, as far as seeding in jet cores needs it (lengths in mm)."""

    radii: tuple[float, ...] = (30.0, 68.0, 102.0, 160.0)
    n_ladders: tuple[int, ...] = (12, 28, 44, 64)
    stagger: float = 0.5
    pitch_u: float = 0.100
    pitch_v: float = 0.150
    n_u: int = 162
    n_v: int = 3584
    thickness: float = 0.285
    field_t: float = 3.8
    tan_lorentz: float = 0.4  # Lorentz angle of electrons in n+-in-n silicon at 3.8 T (about 22 degrees)
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_layers(self) -> int:
        return len(self.radii)

    @property
    def half_u(self) -> float:
        return 0.5 * self.n_u * self.pitch_u

    @property
    def half_v(self) -> float:
        return 0.5 * self.n_v * self.pitch_v

    def ladders(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(phi_k, d_k) of every ladder on a layer (0-based)."""
        key = ("ladders", layer)
        if key not in self._cache:
            n = self.n_ladders[layer]
            k = np.arange(n)
            phi = 2 * np.pi * k / n
            d = self.radii[layer] + np.where(k % 2 == 0, -self.stagger, self.stagger)
            self._cache[key] = (phi, d)
        return self._cache[key]

    def to_local(self, layer: int, ladder, x, y, z):
        """Global (x, y, z) to ladder-local (u, v, w) on one layer."""
        phi, d = self.ladders(layer)
        c, s = np.cos(phi[ladder]), np.sin(phi[ladder])
        return -s * x + c * y, np.asarray(z, dtype=np.float64), c * x + s * y - d[ladder]

    def to_global(self, layer: int, ladder, u, v, w=0.0):
        """Ladder-local (u, v, w) on one layer to global (x, y, z)."""
        phi, d = self.ladders(layer)
        c, s = np.cos(phi[ladder]), np.sin(phi[ladder])
        dw = d[ladder] + w
        return c * dw - s * u, s * dw + c * u, np.asarray(v, dtype=np.float64) + 0 * dw

    def pixel_index(self, u, v):
        """(iu, iv) of the pixel holding local (u, v); may be out of range."""
        return (np.floor((np.asarray(u) + self.half_u) / self.pitch_u).astype(np.int64),
                np.floor((np.asarray(v) + self.half_v) / self.pitch_v).astype(np.int64))

    def pixel_centre(self, iu, iv):
        """Local (u, v) of pixel centres."""
        return ((np.asarray(iu) + 0.5) * self.pitch_u - self.half_u,
                (np.asarray(iv) + 0.5) * self.pitch_v - self.half_v)

    def candidates(self, layer: int, phi: np.ndarray) -> np.ndarray:
        """(n, 3) ladder indices near each phi: the nearest ladder and its two neighbours."""
        n = self.n_ladders[layer]
        k0 = np.rint(np.mod(phi, 2 * np.pi) / (2 * np.pi / n)).astype(np.int64) % n
        return np.stack([k0, (k0 + 1) % n, (k0 - 1) % n], axis=1)


def _pick(valid: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per row, the column of the valid candidate with the lowest score (-1 when none is valid)."""
    score = np.where(valid, score, np.inf)
    best = np.argmin(score, axis=1)
    return np.where(np.isfinite(score[np.arange(len(score)), best]), best, -1)


def line_crossings(det: PixelBarrel, layer: int, origin: np.ndarray, direction: np.ndarray) -> pd.DataFrame:
    """Where straight lines from ``origin`` (3,) or (n, 3) along ``direction`` (n, 3) cross a layer.

    Returns (ladder, u, v, ok) per line; in ladder overlaps the ladder crossed nearer its centre in u is taken.
    Lines that miss every ladder (beyond |z| of the barrel) get ok = False and ladder -1.
    """
    direction = np.asarray(direction, dtype=np.float64).reshape(-1, 3)
    origin = np.broadcast_to(np.asarray(origin, dtype=np.float64), direction.shape)
    phis, ds = det.ladders(layer)
    cand = det.candidates(layer, np.arctan2(direction[:, 1], direction[:, 0]))
    c, s = np.cos(phis[cand]), np.sin(phis[cand])
    tn = c * direction[:, :1] + s * direction[:, 1:2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ds[cand] - (c * origin[:, :1] + s * origin[:, 1:2])) / tn
    p = origin[:, None, :] + t[..., None] * direction[:, None, :]
    u = -s * p[..., 0] + c * p[..., 1]
    v = p[..., 2]
    valid = (tn > 0) & (t > 0) & (np.abs(u) < det.half_u) & (np.abs(v) < det.half_v)
    best = _pick(valid, np.abs(u))
    rows = np.arange(len(direction))
    bb = np.maximum(best, 0)
    ok = best >= 0
    return pd.DataFrame({"ladder": np.where(ok, cand[rows, bb], -1), "u": u[rows, bb], "v": v[rows, bb], "ok": ok})


def cylinder_path(x0, t0, omega, r0, r, txy, steps=_NEWTON_STEPS):
    """Path length s at which helices from x0 (radius r0, transverse direction length txy) meet the cylinder of
    radius r: Newton on |xy(s)|^2 = r^2, started from the straight line's crossing."""
    b = (x0[:, 0] * t0[:, 0] + x0[:, 1] * t0[:, 1]) / txy
    s = (-b + np.sqrt(np.maximum(b * b - (r0 ** 2 - r * r), 0))) / txy
    for _ in range(steps):
        pos, tan = _helix(x0, t0, omega, s)
        g = pos[:, 0] ** 2 + pos[:, 1] ** 2 - r * r
        dg = 2 * (pos[:, 0] * tan[:, 0] + pos[:, 1] * tan[:, 1])
        s = s - g / np.where(np.abs(dg) > 1e-9, dg, 1e-9)
    return s


def _helix(x0, t0, omega, s):
    """Position and unit direction after path s (arrays broadcast together); omega -> 0 is the straight line."""
    ws = omega * s
    small = np.abs(ws) < 1e-9
    om = np.where(small, 1.0, omega)
    sin_t = np.where(small, s, np.sin(ws) / om)
    cos_t = np.where(small, 0.5 * omega * s * s, (1 - np.cos(ws)) / om)
    x = x0[..., 0] + t0[..., 0] * sin_t - t0[..., 1] * cos_t
    y = x0[..., 1] + t0[..., 1] * sin_t + t0[..., 0] * cos_t
    z = x0[..., 2] + t0[..., 2] * s
    cw, sw = np.cos(ws), np.sin(ws)
    tx = t0[..., 0] * cw - t0[..., 1] * sw
    ty = t0[..., 1] * cw + t0[..., 0] * sw
    return np.stack([x, y, z], -1), np.stack([tx, ty, np.broadcast_to(t0[..., 2], tx.shape)], -1)


def helix_crossings(det: PixelBarrel, particles: pd.DataFrame, pt_min: float = 0.1) -> pd.DataFrame:
    """Every outward crossing of a ladder by a charged particle, at the ladder's mid-plane (w = 0).

    Columns: row (index into ``particles``), particle_id, layer, ladder, u, v, x, y, z, du_dw, dv_dw (the local
    slopes, for the path through the silicon), phi (direction at the crossing), eta, pt, q.
    """
    q = particles["q"].to_numpy(np.float64)
    px, py, pz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    sel = np.flatnonzero((q != 0) & (pt > pt_min))
    p = np.sqrt(px[sel] ** 2 + py[sel] ** 2 + pz[sel] ** 2)
    x0 = particles[["vx", "vy", "vz"]].to_numpy(np.float64)[sel]
    t0 = np.stack([px[sel], py[sel], pz[sel]], 1) / p[:, None]
    omega = -q[sel] * C_LIGHT * det.field_t / p
    r0 = np.hypot(x0[:, 0], x0[:, 1])
    out = []
    for layer in range(det.n_layers):
        r = det.radii[layer]
        # where the helix meets the cylinder
        s = cylinder_path(x0, t0, omega, r0, r, np.hypot(t0[:, 0], t0[:, 1]))
        pos, _ = _helix(x0, t0, omega, s)
        reach = (r0 < r - 1.0) & (np.abs(np.hypot(pos[:, 0], pos[:, 1]) - r) < 1.0) & (s > 0)
        idx = np.flatnonzero(reach)
        phis, ds = det.ladders(layer)
        cand = det.candidates(layer, np.arctan2(pos[idx, 1], pos[idx, 0]))
        n_vec = np.stack([np.cos(phis[cand]), np.sin(phis[cand])], -1)  # (m, 3, 2)
        sc = np.repeat(s[idx, None], 3, axis=1)
        xa, ta, oa = x0[idx, None, :], t0[idx, None, :], omega[idx, None]
        for _ in range(_NEWTON_STEPS):
            pos, tan = _helix(xa, ta, oa, sc)
            f = (pos[..., :2] * n_vec).sum(-1) - ds[cand]
            df = (tan[..., :2] * n_vec).sum(-1)
            sc = sc - f / np.where(np.abs(df) > 1e-9, df, 1e-9)
        pos, tan = _helix(xa, ta, oa, sc)
        c, sn = n_vec[..., 0], n_vec[..., 1]
        u = -sn * pos[..., 0] + c * pos[..., 1]
        tn = c * tan[..., 0] + sn * tan[..., 1]
        tu = -sn * tan[..., 0] + c * tan[..., 1]
        f = (pos[..., :2] * n_vec).sum(-1) - ds[cand]
        valid = ((np.abs(f) < 1e-3) & (sc > 0) & (np.abs(oa * sc) < np.pi) & (tn > 0.05)
                 & (np.abs(u) < det.half_u) & (np.abs(pos[..., 2]) < det.half_v))
        m, j = np.nonzero(valid)  # a particle may cross two overlapping ladders: both are kept
        rows = sel[idx[m]]
        out.append(pd.DataFrame({
            "row": rows, "layer": layer, "ladder": cand[m, j], "u": u[m, j], "v": pos[m, j, 2],
            "x": pos[m, j, 0], "y": pos[m, j, 1], "z": pos[m, j, 2],
            "du_dw": tu[m, j] / tn[m, j], "dv_dw": tan[m, j, 2] / tn[m, j],
            "phi": np.arctan2(tan[m, j, 1], tan[m, j, 0]), "eta": np.arcsinh(pz[rows] / pt[rows]),
            "pt": pt[rows], "q": q[rows]}))
    table = pd.concat(out, ignore_index=True)
    table.insert(1, "particle_id", particles["particle_id"].to_numpy()[table["row"].to_numpy()])
    return table
