"""``simulate_event``: a particle table in, a TrackML event (hits, cells, truth, particles) out."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..detector import Detector
from ..errors import EventError
from ..event import Event
from ..generate.table import check_particles
from .digitize import digitize
from .lineage import end_points, has_lineage, made_by_material
from .noise import NOISE_PER_VOLUME, noise_hits
from .propagate import layer_at, propagate

__all__ = ["MIN_INCIDENCE_COS", "PION_MASS", "check_particles", "default_detector", "simulate_event"]
PION_MASS = 0.13957039
_MASSES = {11: 0.51099895e-3, 13: 0.1056583755, 211: PION_MASS, 321: 0.493677, 2212: 0.93827208816,
           3112: 1.197449, 3222: 1.18937, 3312: 1.32171, 3334: 1.67245, 411: 1.86966, 431: 1.96835}
_NOT_HADRONIC = (11, 13)  # no nuclear interactions for electrons and muons
#: A crossing at grazing incidence (direction less than 5.7 degrees from the sensor's plane) leaves no hit. The
#: real events show the cut on the innermost pixel barrel (r = 32 mm, modules to |z| = 490 mm): event 1001 has
#: 257 hits at |z| = 280-320 mm and 54 at 320-360 mm (|cot theta| = 10 at 320 mm), 30 to 40 per 40 mm further
#: out (noise level); without the cut the simulation gave 280 and 252 there, with it 251 and 50. Elsewhere the
#: cut hardly acts (90 % of the crossings it removes are on that layer).
MIN_INCIDENCE_COS = 0.1


@lru_cache(maxsize=1)
def default_detector() -> Detector:
    """The TrackML detector shipped with deepreco, read once per process."""
    return Detector.load()


def _masses(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mass (GeV) and 'interacts hadronically' per particle from the PDG id; pions where it is unknown."""
    n = len(table)
    if "particle_type" not in table.columns:
        return np.full(n, PION_MASS), np.ones(n, bool)
    pdg = np.abs(table["particle_type"].to_numpy(np.int64))
    keys = np.array(sorted(_MASSES))
    pos = np.clip(np.searchsorted(keys, pdg), 0, keys.size - 1)
    known = keys[pos] == pdg
    mass = np.where(known, np.array([_MASSES[k] for k in keys])[pos], PION_MASS)
    return mass, ~np.isin(pdg, _NOT_HADRONIC)


def simulate_event(particles: pd.DataFrame, detector: Detector | None = None, seed: int = 0,
                   field_tesla: float = 2.0, hit_efficiency: float = 0.99, noise_fraction: float | None = None,
                   event_id: int | None = None, material: bool = True, interaction_scale: float = 1.0,
                   secondary_interaction_scale: float = 0.0) -> Event:
    """Simulate one event: propagate, digitise, add noise, and return the TrackML tables.

    ``particles``: TrackML columns (particle_id, vx, vy, vz [mm], px, py, pz [GeV], q; optional nhits, which
    is overwritten, and particle_type, the PDG id). ``noise_fraction=None`` adds noise at the rates of the
    real TrackML events (about 17,600 hits an event, Poisson); a number in [0, 1) instead scales the noise
    so that it makes that fraction of all hits. ``material=False`` gives ideal helices (no scattering,
    energy loss or interactions); ``interaction_scale`` multiplies the nuclear interaction probability of
    lists without lineage (a TrackML list, whose ids record its particles' descendants, already holds the
    outcome of its interactions: no random ones are drawn for it, see :mod:`.lineage`), except, for studies,
    for its material secondaries at ``secondary_interaction_scale`` times the nuclear interaction probability
    (0 by default). The same ``seed`` and input give identical tables.

    >>> import pandas as pd
    >>> muon = pd.DataFrame({"particle_id": [1], "vx": [0.0], "vy": [0.0], "vz": [0.0], "px": [2.0],
    ...                      "py": [0.0], "pz": [0.5], "q": [-1], "particle_type": [13]})
    >>> event = simulate_event(muon, seed=1, noise_fraction=0.0)
    >>> int(event.particles["nhits"].iloc[0]) >= 10
    True
    """
    table = check_particles(particles)
    if not 0.0 <= float(hit_efficiency) <= 1.0:
        raise EventError(f"hit_efficiency must be in [0, 1], got {hit_efficiency}")
    if noise_fraction is not None and not 0.0 <= float(noise_fraction) < 1.0:
        raise EventError(f"noise_fraction must be in [0, 1), got {noise_fraction}")
    for name, value in (("interaction_scale", interaction_scale),
                        ("secondary_interaction_scale", secondary_interaction_scale)):
        if not (np.isfinite(value) and value >= 0):
            raise EventError(f"{name} must be a number >= 0, got {value}")
    if not np.isfinite(field_tesla):
        raise EventError(f"field_tesla must be a number, got {field_tesla}")
    det = default_detector() if detector is None else detector
    rng_prop, rng_eff, rng_noise = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))

    vertex = table[["vx", "vy", "vz"]].to_numpy(np.float64)
    momentum = table[["px", "py", "pz"]].to_numpy(np.float64)
    mass, hadronic = _masses(table)
    pid = table["particle_id"].to_numpy(np.int64)
    ends = end_points(pid, vertex)
    secondary = made_by_material(pid)
    scale = interaction_scale
    if has_lineage(pid):
        # the list already holds the outcome of every nuclear interaction (a particle ends where its listed
        # daughters start): drawing more at random would count them twice
        hadronic = hadronic & secondary
        scale = secondary_interaction_scale
    cross = propagate(vertex, momentum, table["q"].to_numpy(np.float64), mass, det, rng_prop,
                      field_tesla=field_tesla, material=material, hadronic=hadronic,
                      interaction_scale=scale, end_point=ends)
    seen = (rng_eff.random(len(cross)) < hit_efficiency) & (cross.cosine >= MIN_INCIDENCE_COS)
    seen &= _first_pass(cross.particle, cross.layer, cross.step)
    # a secondary of a material interaction starts its flight from the layer whose material made it
    made_in = np.full(len(table), -1, np.int64)
    made_in[secondary] = layer_at(det, vertex[secondary])
    seen &= cross.layer != made_in[cross.particle]
    particle, module = cross.particle[seen], cross.module[seen]
    true_pos, true_mom = cross.position[seen], cross.momentum[seen]
    direction = true_mom / np.linalg.norm(true_mom, axis=1, keepdims=True)
    hit_xyz, cells = digitize(det, module, true_pos, direction)
    n_sig = particle.size

    if noise_fraction is None:
        scale = 1.0
    else:
        total_rate = sum(NOISE_PER_VOLUME.values())
        scale = float(noise_fraction) / (1.0 - float(noise_fraction)) * n_sig / total_rate
    n_mod, n_local, n_ch0, n_ch1 = noise_hits(det, rng_noise, scale)
    noise_xyz = det.to_global(n_local, n_mod)
    n_noise = n_mod.size

    # hits ordered by module (as the real files are), signal in the order made, then noise
    all_mod = np.concatenate([module, n_mod])
    order = np.lexsort((np.arange(all_mod.size), all_mod))
    hit_id = np.empty(all_mod.size, np.int64)
    hit_id[order] = np.arange(1, all_mod.size + 1)
    xyz = np.concatenate([hit_xyz, noise_xyz])[order]
    ids = det.ids[all_mod[order]]
    hits = pd.DataFrame({"hit_id": np.arange(1, all_mod.size + 1), "x": xyz[:, 0], "y": xyz[:, 1],
                         "z": xyz[:, 2], "volume_id": ids[:, 0], "layer_id": ids[:, 1], "module_id": ids[:, 2]})

    t_pos = np.concatenate([true_pos, noise_xyz])[order]
    t_mom = np.concatenate([true_mom, np.zeros((n_noise, 3))])[order]
    t_pid = np.concatenate([pid[particle], np.zeros(n_noise, np.int64)])[order]
    truth = pd.DataFrame({"hit_id": hits["hit_id"].to_numpy(), "particle_id": t_pid,
                          "tx": t_pos[:, 0], "ty": t_pos[:, 1], "tz": t_pos[:, 2],
                          "tpx": t_mom[:, 0], "tpy": t_mom[:, 1], "tpz": t_mom[:, 2]})

    noise_value = det.thickness[n_mod]  # a normal crossing's path in silicon
    cell_hit = np.concatenate([hit_id[cells["crossing"]], hit_id[n_sig + np.arange(n_noise)]])
    cell_tab = pd.DataFrame({"hit_id": cell_hit, "ch0": np.concatenate([cells["ch0"], n_ch0]),
                             "ch1": np.concatenate([cells["ch1"], n_ch1]),
                             "value": np.concatenate([cells["value"], noise_value])})
    cell_tab = cell_tab.sort_values(["hit_id", "ch0", "ch1"], kind="stable", ignore_index=True)

    out_particles = table.copy()
    out_particles["nhits"] = np.bincount(particle, minlength=len(table)).astype(np.int32)
    truth = _with_weights(truth, out_particles)
    return Event(hits=hits, particles=out_particles, truth=truth, cells=cell_tab, event_id=event_id)


def _first_pass(particle, layer, step) -> np.ndarray:
    """True for the crossings of each particle's first pass through each layer (a layer crossed again later,
    by a looper or by a secondary made moving inward on its way back out, leaves no further hit)."""
    if particle.size == 0:
        return np.ones(0, bool)
    key = particle.astype(np.int64) * (int(layer.max()) + 1) + layer
    order = np.lexsort((step, key))
    k = key[order]
    start = np.r_[True, k[1:] != k[:-1]]
    first = np.empty_like(step)
    first[order] = step[order][start][np.cumsum(start) - 1]
    return step == first


def _with_weights(truth: pd.DataFrame, particles: pd.DataFrame) -> pd.DataFrame:
    try:
        from ..metrics import add_weights
    except ImportError:  # the metrics package is optional here: no weight column then
        return truth
    return add_weights(truth, particles)
