"""Simulated against real: hit counts per volume and layer, hits per particle, the noise fraction.

The real TrackML events hold hits and the particles' ``nhits`` but no truth, so the comparison is of counts:
the simulation of an event's own particle list against that event's hits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..event import Event
from .lineage import made_by_material

__all__ = ["VOLUMES", "comparison_table", "hits_per_layer", "nhits_by_class", "plot_hits_per_layer", "summary_numbers"]

VOLUMES = (7, 8, 9, 12, 13, 14, 16, 17, 18)


def summary_numbers(real_hits: pd.DataFrame, real_particles: pd.DataFrame, sim: Event) -> dict:
    """The four checks as plain numbers: totals, noise fractions, share of particles within one hit."""
    real_nhits = real_particles["nhits"].to_numpy(np.int64)
    sim_nhits = _sim_nhits(sim, real_particles["particle_id"].to_numpy())
    n_sim = len(sim.hits)
    sim_noise = float((sim.truth["particle_id"].to_numpy() == 0).sum()) / n_sim if n_sim else 0.0
    return {
        "real_hits": len(real_hits), "sim_hits": n_sim,
        "real_noise_fraction": 1.0 - real_nhits.sum() / len(real_hits),
        "sim_noise_fraction": sim_noise,
        "within_one_hit": float(np.mean(np.abs(sim_nhits - real_nhits) <= 1)),
        "exact_nhits": float(np.mean(sim_nhits == real_nhits)),
        "real_particle_hits": int(real_nhits.sum()), "sim_particle_hits": int(sim_nhits.sum()),
    }


def _sim_nhits(sim: Event, particle_id: np.ndarray) -> np.ndarray:
    return (sim.particles.set_index("particle_id")["nhits"].reindex(particle_id, fill_value=0)
            .to_numpy(np.int64))


def nhits_by_class(real_particles: pd.DataFrame, sim: Event, other: Event,
                   pt_edges=(0.0, 0.15, 0.2, 0.3, 0.5, 1.0, np.inf)) -> pd.DataFrame:
    """Where the simulated ``nhits`` differ from the real ones, by kind of particle and pT (GeV).

    Kinds: ``primary`` (made within 1 mm of the beam line), ``decay`` (made farther out by the generator:
    decays in flight) and ``material`` (secondaries of interactions with the detector, generation > 0 of a
    TrackML list). Per row: the particles, the share within one hit of the real ``nhits`` (``within``), the
    same share between ``sim`` and ``other`` (a simulation of the same list with another seed: ``seeds``, the
    most any simulation with its own random numbers can expect), and the mean of simulated minus real.
    """
    pid = real_particles["particle_id"].to_numpy(np.int64)
    real = real_particles["nhits"].to_numpy(np.int64)
    a, b = _sim_nhits(sim, pid), _sim_nhits(other, pid)
    pt = np.hypot(real_particles["px"].to_numpy(), real_particles["py"].to_numpy())
    r0 = np.hypot(real_particles["vx"].to_numpy(), real_particles["vy"].to_numpy())
    kind = np.where(made_by_material(pid), "material", np.where(r0 > 1.0, "decay", "primary"))
    frame = pd.DataFrame({"kind": kind, "pT": pd.cut(pt, list(pt_edges), right=False),
                          "within": np.abs(a - real) <= 1, "seeds": np.abs(a - b) <= 1, "difference": a - real})
    table = frame.groupby(["kind", "pT"], observed=True).agg(
        particles=("within", "size"), within=("within", "mean"), seeds=("seeds", "mean"),
        mean_difference=("difference", "mean"))
    return table.reset_index()


def comparison_table(real_hits: pd.DataFrame, real_particles: pd.DataFrame, sim: Event) -> pd.DataFrame:
    """One row per check: ``quantity, real, simulated, difference, limit, passed``.

    Rows: total hits (relative difference, limit 10 %), hits of each volume (15 %), the share of particles
    whose simulated ``nhits`` is within one of the real one (at least 80 %), and the noise fraction (within
    3 points).
    """
    s = summary_numbers(real_hits, real_particles, sim)
    rows = []
    rel = s["sim_hits"] / s["real_hits"] - 1.0
    rows.append(("total hits", s["real_hits"], s["sim_hits"], rel, 0.10, abs(rel) <= 0.10))
    real_v = real_hits["volume_id"].value_counts()
    sim_v = sim.hits["volume_id"].value_counts()
    for v in VOLUMES:
        r, m = int(real_v.get(v, 0)), int(sim_v.get(v, 0))
        rel = m / r - 1.0 if r else np.inf
        rows.append((f"hits in volume {v}", r, m, rel, 0.15, abs(rel) <= 0.15))
    w1 = s["within_one_hit"]
    rows.append(("particles with |nhits_sim - nhits_real| <= 1", np.nan, w1, w1 - 0.80, 0.80, w1 >= 0.80))
    dn = s["sim_noise_fraction"] - s["real_noise_fraction"]
    rows.append(("noise fraction", s["real_noise_fraction"], s["sim_noise_fraction"], dn, 0.03, abs(dn) <= 0.03))
    return pd.DataFrame(rows, columns=["quantity", "real", "simulated", "difference", "limit", "passed"])


def hits_per_layer(hits: pd.DataFrame) -> pd.Series:
    """Hit counts indexed by (volume_id, layer_id)."""
    return hits.groupby(["volume_id", "layer_id"]).size()


def plot_hits_per_layer(real_hits: pd.DataFrame, sim: Event, path, title: str | None = None) -> Path:
    """Bar chart of hits per layer, real against simulated (noise shaded), saved as ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = hits_per_layer(real_hits)
    simulated = hits_per_layer(sim.hits)
    noise_hits = sim.hits[sim.truth["particle_id"].to_numpy() == 0]
    noise = hits_per_layer(noise_hits)
    index = real.index.union(simulated.index)
    real, simulated, noise = (x.reindex(index, fill_value=0) for x in (real, simulated, noise))
    x = np.arange(len(index))
    fig, ax = plt.subplots(figsize=(14, 4.5))
    ax.bar(x - 0.2, real.to_numpy(), 0.4, label="real", color="0.35")
    ax.bar(x + 0.2, simulated.to_numpy(), 0.4, label="simulated", color="tab:blue")
    ax.bar(x + 0.2, noise.to_numpy(), 0.4, label="simulated noise", color="tab:orange")
    ax.set_xticks(x, [f"{v}:{layer}" for v, layer in index], rotation=90, fontsize=7)
    ax.set_xlabel("volume:layer")
    ax.set_ylabel("hits")
    ax.set_title(title or "hits per layer")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
