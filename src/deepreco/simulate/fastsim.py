"""``simulate_event``: a particle table in, a TrackML event (hits, cells, truth, particles) out."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..detector import Detector
from ..errors import EventError
from ..event import Event
from ..generate.table import check_particles
from . import secondaries as secondaries_module
from .digitize import digitize
from .lineage import end_points, has_lineage, made_by_material
from .noise import NOISE_PER_VOLUME, noise_hits
from .propagate import MIN_NEUTRAL_PT_GEV, Crossings, layer_at, propagate
from .secondaries import conversion_products, nuclear_products

__all__ = ["MAX_GENERATIONS", "MIN_INCIDENCE_COS", "PION_MASS", "check_particles", "default_detector",
           "simulate_event"]
PION_MASS = 0.13957039
_MASSES = {11: 0.51099895e-3, 13: 0.1056583755, 211: PION_MASS, 321: 0.493677, 2212: 0.93827208816,
           3112: 1.197449, 3222: 1.18937, 3312: 1.32171, 3334: 1.67245, 411: 1.86966, 431: 1.96835,
           22: 0.0, 111: 0.1349768, 130: 0.497611, 310: 0.497611, 2112: 0.93956542052, 3122: 1.115683,
           3322: 1.31486}
_NOT_HADRONIC = (11, 13, 22)  # no nuclear interactions for electrons, muons and photons
#: Generations of material secondaries followed (a secondary's secondary is generation 2); the real lists
#: hold a few of generation 3 and 4 (0.7 % of their secondaries in events 1001 and 1003).
MAX_GENERATIONS = 4
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
                   secondary_interaction_scale: float = 0.0, secondaries: bool = False,
                   neutral_secondaries: bool = False) -> Event:
    """Simulate one event: propagate, digitise, add noise, and return the TrackML tables.

    ``particles``: TrackML columns (particle_id, vx, vy, vz [mm], px, py, pz [GeV], q; optional nhits, which
    is overwritten, and particle_type, the PDG id). ``noise_fraction=None`` adds noise at the rates of the
    real TrackML events (about 17,600 hits an event, Poisson); a number in [0, 1) instead scales the noise
    so that it makes that fraction of all hits. ``material=False`` gives ideal helices (no scattering,
    energy loss or interactions); ``interaction_scale`` multiplies the nuclear interaction probability of
    lists without lineage (a TrackML list, whose ids record its particles' descendants, already holds the
    outcome of its interactions: no random ones are drawn for it, see :mod:`.lineage`), except, for studies,
    for its material secondaries at ``secondary_interaction_scale`` times the nuclear interaction probability
    (0 by default). ``secondaries=True`` makes, for lists without lineage, the products of those nuclear
    interactions (:mod:`.secondaries`), follows them like any particle (up to ``MAX_GENERATIONS``), and adds
    the charged ones of pT >= 0.1 GeV to the particle table (as in the TrackML lists), with a ``parent_id``
    column (0 for the input's particles) and the columns of the input copied from their first ancestor.
    ``neutral_secondaries=True`` (with ``secondaries``) also follows the neutral particles for their
    interactions: photon conversions to e+ e- and neutral hadrons' nuclear interactions. The TrackML lists
    hold neither: every secondary vertex of events 1001, 1003 and 1005 has a listed (charged) parent, and none
    of their 577 two-prong vertices of zero charge is a collinear pair (``benchmarks/simulate.py``). The same
    ``seed`` and input give identical tables.

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
    # a fourth stream for the secondaries' products: the first three (and so events without secondaries) are
    # those of the three-stream code before them
    rng_prop, rng_eff, rng_noise, rng_sec = (np.random.default_rng(s)
                                             for s in np.random.SeedSequence(seed).spawn(4))

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
    made_in = np.full(len(table), -1, np.int64)
    if secondaries and material and not has_lineage(pid):
        pdg = table["particle_type"].to_numpy(np.int64) if "particle_type" in table.columns else np.zeros(len(pid))
        cross, table, made_in = _cascade(table, pdg, mass, hadronic, det, rng_prop, rng_sec, field_tesla, scale,
                                         neutral_secondaries)
        pid = table["particle_id"].to_numpy(np.int64)
    else:
        cross = propagate(vertex, momentum, table["q"].to_numpy(np.float64), mass, det, rng_prop,
                          field_tesla=field_tesla, material=material, hadronic=hadronic,
                          interaction_scale=scale, end_point=ends)
        if secondaries:
            table = table.assign(parent_id=_parents(table))
    seen = (rng_eff.random(len(cross)) < hit_efficiency) & (cross.cosine >= MIN_INCIDENCE_COS)
    seen &= _first_pass(cross.particle, cross.layer, cross.step)
    # a secondary of a material interaction starts its flight from the layer whose material made it
    listed = np.flatnonzero(secondary)
    made_in[listed] = layer_at(det, vertex[listed])
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


def _cascade(table, pdg, mass, hadronic, det, rng_prop, rng_sec, field_tesla, scale, neutral):
    """Propagate the particles, then the products of their interactions, generation after generation.

    Returns the crossings of all of them (particle indices into the returned table), the table with the
    charged products of pT >= 0.1 GeV appended (``parent_id``; the other columns of the input copied from the
    first ancestor), and per row the layer whose material made the particle (-1: none or a passive tube).
    """
    pid = table["particle_id"].to_numpy(np.int64)
    n0 = len(table)
    v = table[["vx", "vy", "vz"]].to_numpy(np.float64)
    p = table[["px", "py", "pz"]].to_numpy(np.float64)
    q = table["q"].to_numpy(np.float64)
    kind = np.asarray(pdg, np.int64)
    had = np.asarray(hadronic, bool)
    root = np.arange(n0)  # row of each particle's first ancestor
    parent = np.full(n0, -1)
    made = np.full(n0, -1, np.int64)
    batches, crossings = [], []
    offset, m = 0, np.asarray(mass, np.float64)
    shift = np.zeros(len(det.layers) + 1)  # by layer row; the last entry for -1, the passive tubes
    for (volume, layer), mm in secondaries_module.BARREL_MATERIAL_OFFSET_MM.items():
        shift[:-1][(det.layers["volume_id"] == volume).to_numpy() & (det.layers["layer_id"] == layer).to_numpy()] = mm
    for generation in range(MAX_GENERATIONS + 1):
        cross = propagate(v, p, q, m, det, rng_prop, field_tesla=field_tesla, hadronic=had,
                          interaction_scale=scale * secondaries_module.NUCLEAR_RATE,
                          passive_scale=scale * secondaries_module.PASSIVE_NUCLEAR_RATE,
                          photon=neutral & (np.abs(kind) == 22), neutral=neutral, record=True)
        crossings.append(cross)
        batches.append((offset, v, p, q, kind, root, parent, made))
        it = cross.interactions
        if generation == MAX_GENERATIONS or it.particle.size == 0:
            break
        conv = it.conversion
        nuc_rows, conv_rows = np.flatnonzero(~conv), np.flatnonzero(conv)
        src_n, mom_n, pdg_n, q_n = nuclear_products(it.momentum[nuc_rows], rng_sec)
        src_c, mom_c, pdg_c, q_c = conversion_products(it.momentum[conv_rows], rng_sec)
        src = np.concatenate([nuc_rows[src_n], conv_rows[src_c]])
        mom = np.concatenate([mom_n, mom_c])
        new_kind, new_q = np.concatenate([pdg_n, pdg_c]), np.concatenate([q_n, q_c])
        keep = (new_q != 0) & (np.hypot(mom[:, 0], mom[:, 1]) >= MIN_NEUTRAL_PT_GEV)
        src, mom, new_kind, new_q = src[keep], mom[keep], new_kind[keep], new_q[keep]
        if src.size == 0:
            break
        mother = it.particle[src]
        root, parent, made = root[mother], offset + mother, it.layer[src]
        offset += len(v)
        v = it.position[src].copy()
        r = np.maximum(np.hypot(v[:, 0], v[:, 1]), 1e-9)
        v[:, :2] *= ((r + shift[it.layer[src]]) / r)[:, None]
        p, q, kind = mom, new_q.astype(np.float64), new_kind
        m, had = _masses(pd.DataFrame({"particle_type": kind}))
    # one table and one set of crossings, in the order of the batches
    all_cross = Crossings(*(np.concatenate([getattr(c, f) + (o if f == "particle" else 0)
                                            for c, (o, *_) in zip(crossings, batches, strict=True)])
                            for f in ("particle", "module", "position", "momentum", "step", "cosine", "layer")))
    if len(batches) == 1:
        return all_cross, table.assign(parent_id=_parents(table)), np.full(n0, -1, np.int64)
    sv, sp, sq, sk, sroot, spar, smade = (np.concatenate([b[i] for b in batches[1:]]) for i in range(1, 8))
    if int(pid.max()) >= 1 << 61:
        raise EventError(f"particle_id up to {int(pid.max())}: too large to number the secondaries above it")
    first_id = ((int(pid.max()) >> 32) + 1) << 32  # above every id of the input (collision << 32 | index)
    all_pid = np.concatenate([pid, first_id + 1 + np.arange(sv.shape[0])])
    extra = table.iloc[sroot].reset_index(drop=True)
    extra["particle_id"] = all_pid[n0:]
    extra[["vx", "vy", "vz"]] = sv
    extra[["px", "py", "pz"]] = sp
    extra["q"] = sq
    extra["nhits"] = 0
    if "particle_type" in extra.columns:
        extra["particle_type"] = sk
    out = pd.concat([table.assign(parent_id=_parents(table)), extra.assign(parent_id=all_pid[spar])],
                    ignore_index=True)
    out = out.astype({c: table[c].dtype for c in table.columns})
    return all_cross, out, np.concatenate([np.full(n0, -1, np.int64), smade])


def _parents(table: pd.DataFrame) -> np.ndarray:
    """The input's own ``parent_id`` column (a list simulated before with secondaries), else zeros."""
    if "parent_id" in table.columns:
        return table["parent_id"].to_numpy(np.int64)
    return np.zeros(len(table), np.int64)


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
