"""From the vertex to the calorimeter face: helices in a uniform 3.8 T field, bremsstrahlung in the tracker.

A charged particle of transverse momentum pT turns with radius R = pT / (0.3 B) (m, GeV, T); along the
transverse path s its azimuth is phi(s) = phi0 - q s / R, so

    x(s) = x0 + (sin(phi0 + k s) - sin phi0) / k,   y(s) = y0 - (cos(phi0 + k s) - cos phi0) / k,   k = -q / R.

Electrons radiate in the tracker material (``tracker_x0`` radiation lengths): the fraction of energy they
keep follows Bethe-Heitler, -ln(z) ~ Gamma(t / ln 2); the radiated energy leaves as one to a few photons at
random points along the path, each flying straight on along the electron's direction there. Those photons
are objects of their own here; ``truth`` decides whether each counts as a particle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .geometry import C_MM_PER_NS, Calorimeter

OBJECT_COLUMNS = ("obj", "parent", "pdg", "q", "energy", "x", "y", "z", "dx", "dy", "dz", "t0")


def _helix_to_z(pos, mom, q, z_target, b_tesla):
    """Position and unit direction where the helix from ``pos`` with momentum ``mom`` crosses z_target, and
    the path length (mm). Straight for neutrals."""
    px, py, pz = mom
    pt = np.hypot(px, py)
    phi0 = np.arctan2(py, px)
    s = (z_target - pos[2]) * pt / pz  # transverse path
    if q == 0 or pt < 1e-9:
        k = 0.0
    else:
        k = -q * 0.299792458e-3 * b_tesla / pt  # 1/mm
    if abs(k * s) < 1e-9:
        x, y, phi = pos[0] + s * np.cos(phi0), pos[1] + s * np.sin(phi0), phi0
    else:
        phi = phi0 + k * s
        x = pos[0] + (np.sin(phi) - np.sin(phi0)) / k
        y = pos[1] - (np.cos(phi) - np.cos(phi0)) / k
    p = np.sqrt(pt ** 2 + pz ** 2)
    direction = np.array([pt * np.cos(phi), pt * np.sin(phi), pz]) / p
    path = abs(s) * p / max(pt, 1e-12) if pt > 1e-9 else abs(z_target - pos[2])
    return np.array([x, y, z_target]), direction, path


def to_face(particles: pd.DataFrame, geo: Calorimeter, rng, b_tesla: float = 3.8, tracker_x0: float = 0.6,
            e_min: float = 0.2) -> pd.DataFrame:
    """One row per object reaching a calorimeter face inside the acceptance (columns OBJECT_COLUMNS).

    Particles with energy below ``e_min`` GeV, neutrinos, and those that miss the face annulus are dropped.
    ``obj`` numbers the objects; a primary keeps its particle_id in ``obj`` and has ``parent`` 0;
    a bremsstrahlung photon gets a new number above every particle_id and its electron's as ``parent``.
    """
    rows = []
    pid = particles["particle_id"].to_numpy(np.int64)
    mom = particles[["px", "py", "pz"]].to_numpy(np.float64)
    vtx = particles[["vx", "vy", "vz"]].to_numpy(np.float64)
    q = particles["q"].to_numpy()
    pdg = particles["particle_type"].to_numpy() if "particle_type" in particles else np.zeros(len(pid), int)
    energy = np.linalg.norm(mom, axis=1)
    # a production time [ns] (pile-up collisions spread in time, `guns.with_pileup`); 0 when absent; a particle of
    # the hard collision (at the origin, t = 0) made away from it, a decay's product (a tau's, mm to cm away), is
    # made when its parent, at about the speed of light, got there (before: at t = 0, so its hits came up to
    # 100 ps earlier than light from the origin could). Pile-up collisions' vertices are not kept: their
    # particles start at their collision's time.
    t_vtx = particles["vt"].to_numpy(np.float64) if "vt" in particles else np.zeros(len(pid))
    hard = pid < (1 << 32)  # guns.PILEUP_ID_OFFSET
    t_vtx = t_vtx + np.where(hard, np.linalg.norm(vtx, axis=1) / C_MM_PER_NS, 0.0)
    next_obj = int(pid.max()) + 1 if len(pid) else 1
    r_lo = geo["r_min"][0] * 0.9
    r_hi = geo["r_max"][0] * 1.02
    for i in range(len(pid)):
        if energy[i] < e_min or abs(pdg[i]) in (12, 14, 16) or mom[i, 2] == 0:
            continue
        side = np.sign(mom[i, 2])
        z_face = side * geo.z_front
        if abs(vtx[i, 2]) >= geo.z_front:
            continue
        pieces = []  # (obj, parent, pdg, q, energy, pos, dir, t0)
        # an electron made within the last tenth before the face (a late decay's) radiates no more there
        if abs(pdg[i]) == 11 and tracker_x0 > 0 and abs(vtx[i, 2]) < 0.9 * geo.z_front:
            keep = np.exp(-rng.gamma(tracker_x0 / np.log(2)))
            n_gamma = 1 + rng.poisson(1.0)
            z_emit = np.sort(rng.uniform(vtx[i, 2], 0.9 * z_face, n_gamma)) if side > 0 else \
                np.sort(rng.uniform(0.9 * z_face, vtx[i, 2], n_gamma))[::-1]
            shares = rng.dirichlet(np.ones(n_gamma)) * (1 - keep)
            pos, p_vec, path = vtx[i].copy(), mom[i].copy(), 0.0
            e_now = energy[i]
            for z_e, share in zip(z_emit, shares, strict=True):
                pos_e, dir_e, dl = _helix_to_z(pos, p_vec, q[i], z_e, b_tesla)
                k_gamma = share * energy[i]
                path += dl
                g_pos, g_dir, g_dl = _helix_to_z(pos_e, dir_e * k_gamma, 0, z_face, b_tesla)
                pieces.append((next_obj, pid[i], 22, 0, k_gamma, g_pos, g_dir, (path + g_dl) / C_MM_PER_NS))
                next_obj += 1
                e_now -= k_gamma
                pos, p_vec = pos_e, dir_e * e_now
            f_pos, f_dir, dl = _helix_to_z(pos, p_vec, q[i], z_face, b_tesla)
            pieces.insert(0, (pid[i], 0, pdg[i], q[i], e_now, f_pos, f_dir, (path + dl) / C_MM_PER_NS))
        else:
            f_pos, f_dir, dl = _helix_to_z(vtx[i], mom[i], q[i], z_face, b_tesla)
            pieces.append((pid[i], 0, pdg[i], q[i], energy[i], f_pos, f_dir, dl / C_MM_PER_NS))
        for obj, parent, code, charge, e, pos, d, t0 in pieces:
            r = np.hypot(pos[0], pos[1])
            if not (r_lo <= r <= r_hi) or d[2] * side <= 0:
                continue
            rows.append((obj, parent, code, charge, e, *pos, *d, t0 + t_vtx[i]))
    out = pd.DataFrame(rows, columns=list(OBJECT_COLUMNS))
    return out.astype({"obj": np.int64, "parent": np.int64, "pdg": np.int64, "q": np.int64})
