"""How good fitted track parameters are: residuals and pulls against the truth, resolution against pT and eta.

A fitted track (a row of `deepreco.fit.fit_tracks`) is matched to the particle that holds more than half of
its hits. The particle's true parameters at the beam line follow its helix in the solenoid from its production
vertex to the point of closest approach to the z axis (d0, z0, phi there; theta and q/p do not change):

    R = pT / (0.000299792458 B |q|),   centre c = v_T + R (q py, -q px) / pT,   pca = c - R c / |c|

and, in ACTS's perigee convention, d0 = -pca_x sin(phi) + pca_y cos(phi). Pulls are (fit - true) / sigma for
each of d0, z0, phi, theta, q/p and for pT; a width near 1 says the fitted covariance is right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PARAMETERS = ("d0", "z0", "phi", "theta", "qop")
_C = 0.000299792458  # GeV / (T mm)


def true_perigee(particles: pd.DataFrame, field: float = 2.0) -> pd.DataFrame:
    """d0, z0, phi, theta, qop, pt, eta of each particle at its point of closest approach to the z axis."""
    vx, vy, vz, px, py, pz, q = (particles[c].to_numpy(np.float64) for c in ("vx", "vy", "vz", "px", "py", "pz", "q"))
    pt = np.hypot(px, py)
    qs = np.where(q == 0, 1.0, np.sign(q))
    radius = pt / (_C * field * np.maximum(np.abs(q), 1.0))
    cx, cy = vx + radius * qs * py / pt, vy - radius * qs * px / pt
    dc = np.hypot(cx, cy)
    ax, ay = cx - radius * cx / dc, cy - radius * cy / dc
    # the turn from the vertex to the pca about the centre, and the direction turned by as much
    alpha = np.arctan2((vx - cx) * (ay - cy) - (vy - cy) * (ax - cx), (vx - cx) * (ax - cx) + (vy - cy) * (ay - cy))
    phi = np.arctan2(py, px) + alpha
    phi = np.arctan2(np.sin(phi), np.cos(phi))
    path = -qs * alpha * radius  # transverse path length from the vertex to the pca
    p = np.sqrt(pt**2 + pz**2)
    theta = np.arctan2(pt, pz)
    return pd.DataFrame({"particle_id": particles["particle_id"].to_numpy(np.int64),
                         "d0": -ax * np.sin(phi) + ay * np.cos(phi), "z0": vz + pz / pt * path, "phi": phi,
                         "theta": theta, "qop": q / p, "pt": pt, "eta": -np.log(np.tan(theta / 2.0))})


def match_fits(fits: pd.DataFrame, tracks: pd.DataFrame, truth: pd.DataFrame, particles: pd.DataFrame,
               field: float = 2.0) -> pd.DataFrame:
    """The fitted tracks with their majority particle's true parameters (``true_*``) and the pulls (``pull_*``).

    Only fitted tracks whose majority particle holds more than half of their hits are kept.
    """
    pid = truth.set_index("hit_id")["particle_id"].reindex(tracks["hit_id"].to_numpy()).to_numpy()
    pairs = pd.DataFrame({"track_id": tracks["track_id"].to_numpy(), "particle_id": pid})
    counts = pairs.groupby(["track_id", "particle_id"]).size().rename("n").reset_index()
    counts = counts.sort_values(["track_id", "n"], ascending=[True, False]).drop_duplicates("track_id")
    size = pairs.groupby("track_id").size()
    majority = 2 * counts["n"].to_numpy() > size.reindex(counts["track_id"]).to_numpy()
    counts = counts[(counts["particle_id"] != 0) & majority]
    true = true_perigee(particles, field).add_prefix("true_").rename(columns={"true_particle_id": "particle_id"})
    out = fits[fits["fitted"].astype(bool)].merge(counts[["track_id", "particle_id"]], on="track_id")
    out = out.merge(true, on="particle_id")
    for name in PARAMETERS:
        diff = out[name].to_numpy(np.float64) - out[f"true_{name}"].to_numpy(np.float64)
        if name == "phi":
            diff = np.arctan2(np.sin(diff), np.cos(diff))
        out[f"res_{name}"] = diff
        out[f"pull_{name}"] = diff / np.sqrt(out[f"cov_{name}_{name}"].to_numpy(np.float64))
    out["res_pt"] = out["pt"] / out["true_pt"] - 1.0
    out["pull_pt"] = (out["pt"] - out["true_pt"]) / out["sigma_pt"]
    return out


def _width(x: np.ndarray) -> float:
    """A robust standard deviation: half the 16-84 % interval (a few broken fits do not dominate it)."""
    x = x[np.isfinite(x)]
    return float(0.5 * np.diff(np.percentile(x, [15.865, 84.135]))[0]) if len(x) else float("nan")


def fit_summary(fits: pd.DataFrame, matched: pd.DataFrame,
                pt_bins=(0.0, 0.5, 1.0, 2.0, 5.0, 100.0), eta_bins=(0.0, 1.0, 2.0, 3.0, 4.0)) -> dict:
    """Failed-fit fraction, pull widths and means, and resolutions (robust widths) against pT and |eta|."""
    out: dict = {"n_tracks": int(len(fits)), "failed_fraction": float(1.0 - fits["fitted"].astype(bool).mean())
                 if len(fits) else float("nan"), "n_matched": int(len(matched)),
                 "median_chi2_ndf": float(np.nanmedian(fits["chi2_ndf"])) if fits["fitted"].any() else float("nan")}
    for name in (*PARAMETERS, "pt"):
        pulls = matched[f"pull_{name}"].to_numpy(np.float64)
        out[f"pull_width_{name}"] = _width(pulls)
        out[f"pull_mean_{name}"] = float(np.nanmedian(pulls)) if len(pulls) else float("nan")
    resolution = []
    for var, bins in (("true_pt", pt_bins), ("true_eta", eta_bins)):
        x = matched[var].abs().to_numpy(np.float64)
        for lo, hi in zip(bins[:-1], bins[1:], strict=True):
            sel = (x >= lo) & (x < hi)
            row = {"variable": var[5:], "lo": lo, "hi": hi, "n": int(sel.sum())}
            for name in ("pt", "d0", "z0", "phi", "theta"):
                row[f"res_{name}"] = _width(matched[f"res_{name}"].to_numpy(np.float64)[sel])
            resolution.append(row)
    out["resolution"] = resolution
    return out
