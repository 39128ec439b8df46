"""The calorimeter simulation: a particle table in, a CaloEvent with truth out.

    particles (guns, or Pythia 8 through deepreco.generate) -> to the face (propagate)
      -> showers (EM, hadronic, MIP; muon radiation) -> cells, noise, threshold, time, truth (truth.digitise)

>>> from deepreco.calo.simulate import simulate_gun
>>> event = simulate_gun(n=2, species="gamma", energy=(20, 20), seed=1)
>>> bool(len(event.hits) > 0 and event.truth.particle_id.isin(event.particles.particle_id.tolist() + [0]).all())
True
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from deepreco.generate.table import as_rng

from .event import CaloEvent
from .geometry import DEFAULT, Calorimeter
from .guns import gun
from .propagate import to_face
from .showers import EM, Axis, ShowerConfig, Spots, em_shower, hadron_shower, muon
from .truth import digitise, kind_of


def simulate(particles: pd.DataFrame, seed=None, geometry: Calorimeter = DEFAULT, config: ShowerConfig | None = None,
             brem_threshold: float = 1.0, tracker_x0: float = 0.6, noise: bool = True, event_id: int = 0
             ) -> CaloEvent:
    """Simulate one event's particles (the generators' table: particle_id, vertex, momentum, q,
    particle_type) in ``geometry``; the same seed gives the same event."""
    rng = as_rng(seed)
    cfg = config or ShowerConfig()
    objects = to_face(particles, geometry, rng, tracker_x0=tracker_x0)
    parts: list[dict] = []
    extra = []  # photons radiated by muons inside the calorimeter
    next_obj = int(max(objects["obj"].max(), particles["particle_id"].max() if len(particles) else 0) + 1) \
        if len(objects) else 1
    for row in objects.itertuples(index=False):
        axis = Axis(np.array([row.x, row.y, row.z]), np.array([row.dx, row.dy, row.dz]), row.t0)
        kind = kind_of(np.array([row.pdg]))[0]
        if kind == EM:
            parts.append(em_shower(row.energy, axis, 0.0, row.obj, geometry, cfg, rng))
        elif abs(row.pdg) == 13:
            mu_parts, photons = muon(row.energy, axis, row.obj, geometry, cfg, rng)
            parts += mu_parts
            for e_gamma, layer in photons:
                start = geometry["depth_x0"][layer] - geometry["x0"][layer]
                parts.append(em_shower(e_gamma, axis, start, next_obj, geometry, cfg, rng))
                extra.append((next_obj, row.obj, 22, 0, e_gamma, row.x, row.y, row.z, row.dx, row.dy, row.dz,
                              row.t0))
                next_obj += 1
        else:
            parts += hadron_shower(row.energy, axis, row.obj, geometry, cfg, rng)
    if extra:
        objects = pd.concat([objects, pd.DataFrame(extra, columns=objects.columns)], ignore_index=True)
    sides = (1, -1) if (objects["z"] < 0).any() else (1,)
    return digitise(Spots.concat(parts), objects, geometry, rng, brem_threshold=brem_threshold,
                    event_id=event_id, noise=noise, sides=sides)


def simulate_gun(n: int = 3, species=None, energy=(5.0, 100.0), spread: float = 0.3, seed=None,
                 geometry: Calorimeter = DEFAULT, **options) -> CaloEvent:
    """A gun event (``guns.gun``) simulated; ``options`` go to ``simulate``."""
    rng = as_rng(seed)
    kwargs = {} if species is None else {"species": species}
    table = gun(n, energy=energy, spread=spread, seed=rng, **kwargs)
    return simulate(table, seed=rng, geometry=geometry, **options)


def gun_events(n_events: int, seed: int = 0, n_particles: tuple[int, int] = (2, 6), **options) -> Iterator[CaloEvent]:
    """``n_events`` gun events, event i from seed (seed, i), with 2..6 particles each by default."""
    for i in range(n_events):
        rng = np.random.default_rng([seed, i])
        n = int(rng.integers(n_particles[0], n_particles[1] + 1))
        event = simulate_gun(n=n, seed=rng, **options)
        event.event_id = i
        yield event


def pileup_event(n_particles: int, seed=None, energy=(1.0, 20.0), geometry: Calorimeter = DEFAULT,
                 **options) -> CaloEvent:
    """Many soft particles spread over the whole endcap, like pile-up: for timing against hit count."""
    rng = as_rng(seed)
    table = gun(n_particles, species=(22, 211, -211, 22, 11), energy=energy, spread=3.0, eta=(2.2, 2.2), seed=rng)
    return simulate(table, seed=rng, geometry=geometry, **options)
