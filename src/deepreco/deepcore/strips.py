"""A CMS Phase-1-like strip barrel outside DeepCore's pixel barrel: the TIB and TOB layers as cylinders, and their hits.

Geometry and sensors (facts, with their source: the CMS Collaboration, "The CMS experiment at the CERN LHC",
JINST 3 (2008) S08004, section 3.3, and the CMS tracker TDR, CERN/LHCC 98-006):

- TIB, the inner barrel: 4 layers at r = 255, 339, 418.5, 498 mm, |z| < 700 mm, 320 um thick sensors, strip
  pitch 80 um (layers 1-2) and 120 um (layers 3-4), sensors about 119 mm long in z;
- TOB, the outer barrel: 6 layers at r = 608, 692, 780, 868, 965, 1080 mm, |z| < 1180 mm, 500 um thick sensors,
  pitch 183 um (layers 1-4) and 122 um (layers 5-6), two sensors of about 94 mm chained into 188 mm long strips;
- stereo: layers 1-2 of TIB and of TOB carry a second module back to back at 100 mrad, which gives z (the paper's
  single-point resolution: 230 um in z in TIB, 530 um in TOB);
- strip hit efficiency above 99 % (CMS strip tracker performance, e.g. JINST 9 (2014) P10009): 0.99 here.

Material, per normal crossing of a layer (modules, cooling, support): 3 % X0 for a TIB layer and 2.5 % for a TOB
layer. These are a rounding, not a measured fact: chosen so that the strip barrel holds about 0.27 X0 of the
0.4 X0 the 2008 paper gives for the whole tracker at eta = 0.

Simplifications (said, not hidden): the layers are cylinders (no modules, no gaps, no overlaps in phi); a hit is
its strip's centre (one-strip clusters, binary resolution pitch / sqrt(12)); particles in one strip (and in one
stereo strip, or on one mono sensor) make one hit, the first one's (``n_particles`` says how many), but particles
in neighbouring strips make two (no wider clusters, no shifted centroids); a stereo layer's two sensors sit on
one cylinder and its matched hit pairs the particle's own two strips (no ghost pairs); mono layers measure z
only as the centre of the sensor the hit is on (its length / sqrt(12)). Multiple scattering (Highland, a
Gaussian kick of the direction) is applied at each strip layer a particle crosses; the pixel barrel has no
material here, as in `detector` (its pixels are simulated without any);
no energy loss. Particles are followed outward only, within half a turn, from their production vertex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DeepRecoError
from ..generate.table import as_rng
from ..reconstruct.ckf.seeding import highland
from .detector import C_LIGHT, _helix, cylinder_path

__all__ = ["StripBarrel", "strip_hits"]

_NEWTON_STEPS = 8


@dataclass(frozen=True)
class StripBarrel:
    """TIB + TOB barrel layers (lengths in mm; see the module docstring for the sources)."""

    radii: tuple[float, ...] = (255.0, 339.0, 418.5, 498.0, 608.0, 692.0, 780.0, 868.0, 965.0, 1080.0)
    half_z: tuple[float, ...] = (700.0,) * 4 + (1180.0,) * 6
    pitch: tuple[float, ...] = (0.080, 0.080, 0.120, 0.120, 0.183, 0.183, 0.183, 0.183, 0.122, 0.122)
    strip_length: tuple[float, ...] = (119.0,) * 4 + (188.0,) * 6
    stereo: tuple[bool, ...] = (True, True, False, False, True, True, False, False, False, False)
    thickness: tuple[float, ...] = (0.320,) * 4 + (0.500,) * 6
    x0: tuple[float, ...] = (0.03,) * 4 + (0.025,) * 6
    stereo_angle: float = 0.100
    efficiency: float = 0.99
    field_t: float = 3.8

    @property
    def n_layers(self) -> int:
        return len(self.radii)


def _check(particles: pd.DataFrame) -> None:
    missing = [c for c in ("particle_id", "q", "px", "py", "pz", "vx", "vy", "vz") if c not in particles.columns]
    if missing:
        raise DeepRecoError(f"strip hits: the particles have no column {', '.join(missing)}")


def strip_hits(particles: pd.DataFrame, seed, det: StripBarrel | None = None, pt_min: float = 0.1) -> pd.DataFrame:
    """The strip hits of charged particles with pT > ``pt_min`` [GeV]; ``seed``: an int or a numpy Generator (the
    same seed gives the same hits).

    Columns: particle_id, layer (0-9: TIB 1-4, TOB 1-6), stereo, x, y, z (true crossing), phi, zm (measured: the
    strip's azimuth; z from the stereo pair, else the sensor's centre), var_phi, var_z, cov_phi_z, n_particles
    (particles in the strip: one hit, the first one's particle_id), and hit (the row number). All particles step
    through the layers together, one layer at a time.
    """
    _check(particles)
    det = det or StripBarrel()
    rng = as_rng(seed)
    q = particles["q"].to_numpy(np.float64)
    mom = particles[["px", "py", "pz"]].to_numpy(np.float64)
    pt = np.hypot(mom[:, 0], mom[:, 1])
    if not (np.isfinite(mom).all() and np.isfinite(particles[["vx", "vy", "vz"]].to_numpy(np.float64)).all()):
        raise DeepRecoError("strip hits: the particles' momenta and vertices must be finite")
    sel = np.flatnonzero((q != 0) & (pt > pt_min))
    p = np.linalg.norm(mom[sel], axis=1)
    pos = particles[["vx", "vy", "vz"]].to_numpy(np.float64)[sel]
    tan = mom[sel] / p[:, None]
    omega = -q[sel] * C_LIGHT * det.field_t / p
    turned = np.zeros(len(sel))  # the angle turned so far: half a turn at most
    alive = np.ones(len(sel), bool)
    out = []
    for layer, r in enumerate(det.radii):
        r0 = np.hypot(pos[:, 0], pos[:, 1])
        txy = np.maximum(np.hypot(tan[:, 0], tan[:, 1]), 1e-12)
        s = cylinder_path(pos, tan, omega, r0, r, txy, steps=_NEWTON_STEPS)
        x, t = _helix(pos, tan, omega, s)
        hit = (alive & (r0 < r) & (s > 0) & (np.abs(np.hypot(x[:, 0], x[:, 1]) - r) < 1e-3)
               & (turned + np.abs(omega * s) < np.pi) & (np.abs(x[:, 2]) < det.half_z[layer]))
        # a particle that misses this layer (beyond its z, or curling) is not followed further
        alive &= hit | (r0 >= r)
        idx = np.flatnonzero(hit)
        turned[idx] += np.abs(omega[idx] * s[idx])
        pos[idx], tan[idx] = x[idx], t[idx]
        # scattering in the layer: two independent kicks of the direction, perpendicular to it
        phi_hat = np.stack([-x[idx, 1], x[idx, 0], np.zeros(len(idx))], 1) / r
        cos_inc = np.abs((tan[idx] * np.stack([x[idx, 0], x[idx, 1], np.zeros(len(idx))], 1)).sum(1)) / r
        theta0 = highland(p[idx], det.x0[layer] / np.maximum(cos_inc, 0.05))
        e1 = np.cross(tan[idx], phi_hat)
        e1 /= np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-12)
        e2 = np.cross(tan[idx], e1)
        kick = rng.normal(size=(len(idx), 2)) * theta0[:, None]
        new = tan[idx] + kick[:, :1] * e1 + kick[:, 1:] * e2
        tan[idx] = new / np.linalg.norm(new, axis=1, keepdims=True)
        # measurement: the strip holding the crossing (arc u = r phi), and for a stereo layer the tilted strip
        found = idx[rng.random(len(idx)) < det.efficiency]
        xf = x[found]
        phi = np.arctan2(xf[:, 1], xf[:, 0])
        pitch, length = det.pitch[layer], det.strip_length[layer]
        u1 = (np.floor(r * phi / pitch) + 0.5) * pitch
        var_u = pitch ** 2 / 12
        if det.stereo[layer]:
            ca, sa = np.cos(det.stereo_angle), np.sin(det.stereo_angle)
            u2 = (np.floor((r * phi * ca + xf[:, 2] * sa) / pitch) + 0.5) * pitch
            zm = (u2 - u1 * ca) / sa
            var_z = np.full(len(found), var_u * (1 + ca * ca) / sa ** 2)
            cov = np.full(len(found), -var_u * ca / (sa * r))
        else:
            zm = (np.floor((xf[:, 2] + det.half_z[layer]) / length) + 0.5) * length - det.half_z[layer]
            var_z = np.full(len(found), length ** 2 / 12)
            cov = np.zeros(len(found))
        frame = pd.DataFrame({
            "particle_id": particles["particle_id"].to_numpy()[sel[found]], "layer": layer,
            "stereo": det.stereo[layer], "x": xf[:, 0], "y": xf[:, 1], "z": xf[:, 2], "phi": u1 / r, "zm": zm,
            "var_phi": var_u / r ** 2, "var_z": var_z, "cov_phi_z": cov})
        # particles in one strip (and one stereo strip, or one sensor) make one hit: the first particle's
        frame["n_particles"] = frame.groupby(["phi", "zm"])["layer"].transform("size")
        out.append(frame[~frame.duplicated(["phi", "zm"])])
    table = pd.concat(out, ignore_index=True)
    table["phi"] = np.mod(table["phi"] + np.pi, 2 * np.pi) - np.pi
    table.insert(0, "hit", np.arange(len(table)))
    return table
