"""The calorimeter simulation: a particle table in, a CaloEvent with truth out.

    particles (guns, Pythia 8 tau decays and pile-up, or any deepreco.generate table) -> to the face (propagate)
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

from ..errors import EventError
from ..registry import CALO_SOURCES
from .event import CaloEvent
from .geometry import DEFAULT, Calorimeter
from .guns import DEFAULT_MIX, gun, pair, taus, with_pileup
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


SOURCES = tuple(CALO_SOURCES)  # gun, tau, mix: listed in deepreco.registry


def simulate_gun(n: int = 3, species=None, energy=(5.0, 100.0), spread: float = 0.3, seed=None,
                 geometry: Calorimeter = DEFAULT, source: str = "gun", pileup: float = 0.0, eta=(1.7, 2.8),
                 hadronic: bool = True, **options) -> CaloEvent:
    """A gun event simulated: ``n`` particles of ``species`` (``guns.gun``) for ``source`` "gun", ``n`` taus
    decayed by Pythia 8 (``guns.taus``, hadronic decays only when ``hadronic``) for "tau", for "mix" a gun
    event, an isolated particle or a close pair (`MIX`, `_mix_table`) with its truth at the level of the shot
    particles (`limit.primaries`: an electron's tracker bremsstrahlung counts with it, as the isolated-particle
    benchmark counts it); plus the minimum-bias collisions of Poisson(``pileup``) pile-up
    (``guns.with_pileup``). ``options`` go to ``simulate``."""
    if source not in SOURCES:
        raise EventError(f"unknown particle source {source!r}; expected one of {', '.join(SOURCES)}")
    rng = as_rng(seed)
    if source == "tau":
        if species is not None:
            raise EventError("species is for the gun source; the tau source makes taus")
        table = taus(n, energy=energy, spread=spread, eta=eta, hadronic=hadronic, seed=rng)
    elif source == "mix":
        if species is not None:
            raise EventError("species is for the gun source; the mix source draws its own")
        table = _mix_table(n, energy, spread, eta, geometry, rng)
    else:
        kwargs = {} if species is None else {"species": species}
        table = gun(n, energy=energy, spread=spread, eta=eta, seed=rng, **kwargs)
    if pileup != 0:
        # pile-up from its own stream, so that the signal particles are the same with or without it
        table = with_pileup(table, pileup, seed=np.random.default_rng(rng.integers(2 ** 63)))
    event = simulate(table, seed=rng, geometry=geometry, **options)
    if source == "mix":
        from .limit import primaries  # limit imports this module

        event = primaries(event)
    return event


MIX = (0.4, 0.3, 0.3)  # the mix source's shares: a gun event, one isolated particle, a close pair
MIX_ISOLATED_ENERGY = (2.0, 200.0)  # GeV, flat in log E: the isolated-particle benchmark's range
MIX_PAIR_MM = (20.0, 150.0)  # distance of a pair at the face, flat


def _mix_table(n: int, energy, spread: float, eta, geometry: Calorimeter, rng) -> pd.DataFrame:
    """The particles of a ``mix`` event: with the shares of `MIX`, ``n`` gun particles as the gun source makes
    them; one particle of e, gamma, pi+-, mu with 2-200 GeV flat in log E (the isolated benchmark's kinds and
    range); or two particles 20-150 mm apart at the face (two photons, a photon and a charged pion, or two of the
    gun's kinds), each with ``energy`` flat."""
    kind = rng.choice(3, p=MIX)
    if kind == 0:
        return gun(n, energy=energy, spread=spread, eta=eta, seed=rng)
    if kind == 1:
        log_e = rng.uniform(*np.log(MIX_ISOLATED_ENERGY))
        return gun(1, species=int(rng.choice(DEFAULT_MIX)), energy=(np.exp(log_e),) * 2, spread=0.0, eta=eta,
                   seed=rng)
    pairs = ((22, 22), (22, 211), tuple(rng.choice(DEFAULT_MIX, 2)))
    species = pairs[int(rng.integers(len(pairs)))]
    return pair(rng.uniform(*MIX_PAIR_MM), species=species, energy=energy, eta=rng.uniform(*eta), geometry=geometry,
                seed=rng)


def gun_events(n_events: int, seed: int = 0, n_particles: tuple[int, int] = (2, 6), **options) -> Iterator[CaloEvent]:
    """``n_events`` gun events, event i from seed (seed, i), with 2..6 particles (or taus) each by default;
    ``options`` go to ``simulate_gun`` (``source``, ``pileup``, ...)."""
    for i in range(n_events):
        yield gun_event(i, seed, n_particles, **options)


def gun_event(index: int, seed: int = 0, n_particles: tuple[int, int] = (2, 6), **options) -> CaloEvent:
    """Event ``index`` of `gun_events`: it depends on (seed, index) alone, so a worker can make it alone."""
    rng = np.random.default_rng([seed, index])
    n = int(rng.integers(n_particles[0], n_particles[1] + 1))
    event = simulate_gun(n=n, seed=rng, **options)
    event.event_id = index
    return event


def pileup_event(n_particles: int, seed=None, energy=(1.0, 20.0), geometry: Calorimeter = DEFAULT,
                 **options) -> CaloEvent:
    """Many soft particles spread over the whole endcap, like pile-up: for timing against hit count (Pythia 8
    pile-up is ``simulate_gun(..., pileup=mu)``)."""
    rng = as_rng(seed)
    table = gun(n_particles, species=(22, 211, -211, 22, 11), energy=energy, spread=3.0, eta=(2.2, 2.2), seed=rng)
    return simulate(table, seed=rng, geometry=geometry, **options)
