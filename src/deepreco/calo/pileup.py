"""Hadronic taus under pile-up (issue 23, item 4): the events, the figures for the hard particles, time against mu.

**Events** (`tau_event`): 2 to 4 taus of 10 to 100 GeV (flat), each in the +z or the -z endcap at random (the taus
of one endcap within 0.5 in (eta, phi) of one axis drawn in 1.7 < |eta| < 2.8), hadronic decays by Pythia 8
(`guns.taus`), plus Poisson(mu) minimum-bias collisions (`guns.with_pileup`: vertices spread by 55 mm in z and
each collision's time by ``guns.PILEUP_TIME_SPREAD_NS``, both endcaps).

**Hard particles**: the particles of the tau decays (particle_id below 2^32, the pile-up's are above) and what
the simulation makes of them before the calorimeter (tracker brems: their parent is a tau product), with a true
energy at the face of at least ``HARD_MIN_ENERGY`` (10 GeV) and at least ``metrics.MIN_HITS`` hits. A hard particle
is **found** by a cluster as in `metrics`: the energy they share is more than half the particle's deposited
energy and more than half the cluster's (so a cluster swollen by pile-up to more than twice the particle's share
does not find it). **Fakes**: clusters of at least ``FAKE_MIN_ENERGY`` (10 GeV) reconstructed that found no
particle at all, hard or pile-up (merged pile-up debris, pieces of a split shower); counted per event, beside the
clusters of that energy that found a pile-up particle (real, but not the hard interaction's). **Resolution**: half
the 16-84 % width over the median of E_cluster / E_true of the found hard showering particles (`metrics`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from deepreco.generate.table import as_rng

from . import metrics
from .guns import PILEUP_ID_OFFSET, taus, with_pileup

MUS = (0, 50, 140, 200)
HARD_MIN_ENERGY = 10.0  # GeV
FAKE_MIN_ENERGY = 10.0  # GeV
TAU_ENERGY = (10.0, 100.0)
N_TAUS = (2, 4)
SPREAD = 0.5
_TAU_ID_STEP = 1 << 16  # guns.taus numbers tau k's products k << 16 | line


def tau_table(n: int, energy: tuple[float, float] = TAU_ENERGY, seed=None) -> pd.DataFrame:
    """``n`` hadronic taus decayed by Pythia 8, each in the +z or the -z endcap at random (`guns.taus` per side,
    the -z side mirrored in z; particle ids stay below 2^32 and distinct)."""
    rng = as_rng(seed)
    n_minus = int(rng.binomial(n, 0.5))
    plus = taus(n - n_minus, energy=energy, spread=SPREAD, seed=rng)
    minus = taus(n_minus, energy=energy, spread=SPREAD, seed=rng)
    minus = minus.assign(pz=-minus["pz"], vz=-minus["vz"],
                         particle_id=minus["particle_id"] + (n - n_minus) * _TAU_ID_STEP)
    return pd.concat([plus, minus], ignore_index=True)


def tau_event(index: int, seed: int = 0, mu: float = 0.0, n_taus: tuple[int, int] = N_TAUS,
              energy: tuple[float, float] = TAU_ENERGY):
    """Event ``index`` of the tau + pile-up sample: from (seed, index) alone; its taus are the same at every mu
    (the pile-up has its own stream), so the figures against mu compare the same hard particles."""
    from .simulate import simulate

    rng = np.random.default_rng([seed, index])
    table = tau_table(int(rng.integers(n_taus[0], n_taus[1] + 1)), energy=energy, seed=rng)
    pileup_rng = np.random.default_rng(rng.integers(2 ** 63))
    sim_rng = np.random.default_rng(rng.integers(2 ** 63))
    if mu > 0:
        table = with_pileup(table, mu, seed=pileup_rng)
    event = simulate(table, seed=sim_rng)
    event.event_id = index
    return event


def is_hard(particles: pd.DataFrame) -> np.ndarray:
    """True for a particle of the hard interaction: its id, or its parent's (a brem), below 2^32."""
    pid = particles["particle_id"].to_numpy(np.int64)
    parent = particles["parent_id"].to_numpy(np.int64)
    return np.where(parent > 0, parent < PILEUP_ID_OFFSET, pid < PILEUP_ID_OFFSET)


def crop(event, radius: float):
    """The event cut to the hits within ``radius`` in (eta, phi) of a hard particle (`is_hard`), seen from the
    origin: a training sample of the pile-up around the hard interaction at a fraction of the event's hits (the
    networks look at neighbourhoods, so the rest of the endcaps teaches them little per second of training). A
    particle cut by the edge keeps the part inside: its true energy scaled by the share of its deposit inside
    (the energy head's target stays right) and its deposit that part. An event without a hard particle in it
    comes back with no hits."""
    from .event import CaloEvent

    if not radius > 0:
        raise ValueError(f"crop radius must be > 0, got {radius}")
    hits, particles = event.hits, event.particles
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    eta, phi = np.arcsinh(z / np.maximum(np.hypot(x, y), 1e-9)), np.arctan2(y, x)
    hard = particles[is_hard(particles)]
    keep = np.zeros(len(hits), bool)
    for h_eta, h_phi in zip(hard["eta"].to_numpy(), hard["phi"].to_numpy(), strict=True):
        dphi = np.angle(np.exp(1j * (phi - h_phi)))
        keep |= (eta - h_eta) ** 2 + dphi ** 2 < radius ** 2
    ids = hits["hit_id"].to_numpy()[keep]
    fractions = event.fractions[event.fractions["hit_id"].isin(ids)]
    inside = fractions.groupby("particle_id")["energy"].sum()
    whole = event.fractions.groupby("particle_id")["energy"].sum()
    share = (inside / whole).reindex(particles["particle_id"]).fillna(0.0).to_numpy()
    particles = particles.assign(energy=particles["energy"].to_numpy() * share,
                                 deposited=particles["deposited"].to_numpy() * share)[share > 0]
    return CaloEvent(hits=hits[keep].reset_index(drop=True),
                     truth=event.truth[event.truth["hit_id"].isin(ids)].reset_index(drop=True),
                     fractions=fractions.reset_index(drop=True), particles=particles.reset_index(drop=True),
                     event_id=event.event_id)


def hard_figures(event, hit_table: pd.DataFrame, clusters: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """One method's result on one event: counts (hard particles, found, big clusters, fakes, pile-up
    clusters) and the hard particles' table (found, response; `metrics.particle_table`)."""
    p = metrics.particle_table(event, hit_table, clusters, min_energy=HARD_MIN_ENERGY)
    p = p[is_hard(p)]
    m = metrics.match(event, hit_table, clusters)
    found = m[m["found"]]
    hard_ids = set(event.particles.loc[is_hard(event.particles), "particle_id"].tolist())
    by_hard = set(found.loc[found["particle_id"].isin(hard_ids), "cluster_id"].tolist())
    by_any = set(found["cluster_id"].tolist())
    big = clusters.loc[clusters["energy"] >= FAKE_MIN_ENERGY, "cluster_id"]
    counts = {"hard": len(p), "found": int(p["found"].sum()), "big_clusters": int(len(big)),
              "fakes": int((~big.isin(by_any)).sum()),
              "pileup_clusters": int((big.isin(by_any) & ~big.isin(by_hard)).sum())}
    return counts, p


def summarise(counts: Sequence[dict], particles: pd.DataFrame) -> dict:
    """Efficiency, fakes and pile-up clusters per event, response and resolution over events."""
    n = len(counts)
    tot = {k: sum(c[k] for c in counts) for k in ("hard", "found", "big_clusters", "fakes", "pileup_clusters")}
    showering = particles[particles["found"] & (particles["kind"] != 3)] if len(particles) else particles
    response, resolution = metrics.robust_resolution(showering["response"].to_numpy()) if len(particles) else (
        float("nan"), float("nan"))
    per_kind = {}
    for kind, label in ((1, "em"), (2, "had")):
        sel = showering[showering["kind"] == kind] if len(particles) else showering
        per_kind[label] = metrics.robust_resolution(sel["response"].to_numpy())[1] if len(sel) else float("nan")
    return {"events": n, "hard_particles": tot["hard"], "found": tot["found"],
            "efficiency": tot["found"] / tot["hard"] if tot["hard"] else float("nan"),
            "fakes_per_event": tot["fakes"] / n if n else float("nan"),
            "pileup_clusters_per_event": tot["pileup_clusters"] / n if n else float("nan"),
            "response": response, "resolution": resolution,
            "em_resolution": per_kind["em"], "had_resolution": per_kind["had"]}


def judge_hard(method, events) -> dict:
    """``method`` over ``events``: `summarise`'s figures of their hard particles and ``fake_share``, the fakes'
    share of the clusters above ``FAKE_MIN_ENERGY`` (nan when there are none), as the threshold choice judges."""
    runs = [hard_figures(e, *method.reconstruct(e)) for e in events]
    out = summarise([c for c, _ in runs], pd.concat([t for _, t in runs], ignore_index=True))
    big = sum(c["big_clusters"] for c, _ in runs)
    return {**out, "fake_share": sum(c["fakes"] for c, _ in runs) / big if big else float("nan")}


class _Replay:
    """Gives back a result already computed, so that ``X+drn`` corrects X's clusters of this event instead of
    clustering again (its time is X's plus the DRN's)."""

    name = "replay"

    def __init__(self):
        self.result = None

    def reconstruct(self, event):
        return self.result


def _timed(method, event) -> tuple[tuple, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = method.reconstruct(event)
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_methods(methods: Sequence[str], event, models_dir=None) -> dict[str, dict]:
    """Every method on one event: {name: {counts, particles, seconds, cpu_seconds}}; ``X+drn`` reuses X's
    clusters when X runs too (its seconds are then X's plus the DRN's)."""
    from .evaluate import warm_up
    from .methods import _calibrate

    results, raw = {}, {}
    for name in sorted(methods, key=lambda s: "+" in s):  # the bases first
        base = name.partition("+")[0]
        method = _cached_method(name, models_dir)
        warm_up(method)
        seconds = cpu = 0.0
        if name == base + "+drn" and base in raw:
            replay = _Replay()
            replay.result, seconds, cpu = raw[base]
            method = _with_base(method, replay)
            out, dt, dc = _timed(method, event)
        else:  # X+drn corrects X's clusters before X's calibration, as it does when run alone
            (ht, uncalibrated), dt, dc = _timed(_Uncalibrated(method), event)
            raw[name] = ((ht, uncalibrated), dt, dc)
            t0, c0 = time.perf_counter(), time.process_time()
            out = (ht, _calibrate(method, event.hits, ht, uncalibrated))
            dt, dc = dt + time.perf_counter() - t0, dc + time.process_time() - c0
        counts, particles = hard_figures(event, *out)
        results[name] = {"counts": counts, "particles": particles.assign(event_id=event.event_id),
                         "seconds": dt + seconds, "cpu_seconds": dc + cpu}
    return {name: results[name] for name in methods}


_METHODS: dict = {}


def _cached_method(name: str, models_dir):
    from .methods import get_method

    key = (name, str(models_dir))
    if key not in _METHODS:
        _METHODS[key] = get_method(name, models_dir)
    return _METHODS[key]


def _with_base(method, base):
    from dataclasses import replace

    new = replace(method, base=base, name=method.name)
    new.calibration = getattr(method, "calibration", None)  # set by get_method, not a field: replace drops it
    return new


class _Uncalibrated:
    """A method run with its calibration off (its ``calibration`` put back after)."""

    def __init__(self, method):
        self.method = method
        self.name = method.name

    def reconstruct(self, event):
        curves = getattr(self.method, "calibration", None)
        self.method.calibration = None
        try:
            return self.method.reconstruct(event)
        finally:
            self.method.calibration = curves


def cached_tau_event(index: int, seed: int, mu: float, cache=None):
    """`tau_event`, kept in (and read back from) the folder ``cache`` when one is given: a mu = 200 event takes
    half a minute to simulate, and several runs of the benchmark (other model folders) judge the same events."""
    if cache is None:
        return tau_event(index, seed=seed, mu=mu)
    import pickle
    from pathlib import Path

    path = Path(cache) / f"tau_seed{seed}_mu{mu:g}_{index}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    event = tau_event(index, seed=seed, mu=mu)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")  # two runs may simulate the same event
    part.write_bytes(pickle.dumps(event))
    part.replace(path)
    return event


def evaluate(methods: Sequence[str], mus: Sequence[float] = MUS, n_events: int = 10, seed: int = 0,
             models_dir=None, events_at: dict | None = None, log: Callable[[str], None] | None = None,
             max_mu: dict | None = None, cache=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary: one row per mu and method, per_event: one row per event, mu and method with its hits and
    seconds) on ``n_events`` tau events at each mu (``events_at``: {mu: events} to run fewer at some mu);
    ``max_mu``: {method: the highest mu it runs at} for a method too slow beyond (its rows left out); ``cache``: a
    folder that keeps the events (`cached_tau_event`)."""
    rows, per_event = [], []
    for mu in mus:
        n = (events_at or {}).get(mu, n_events)
        run = [m for m in methods if mu <= (max_mu or {}).get(m.partition("+")[0], np.inf)]
        counts: dict[str, list] = {m: [] for m in run}
        tables: dict[str, list] = {m: [] for m in run}
        hits = []
        for i in range(n):
            event = cached_tau_event(i, seed, mu, cache)
            hits.append(len(event.hits))
            for name, r in run_methods(run, event, models_dir).items():
                counts[name].append(r["counts"])
                tables[name].append(r["particles"])
                per_event.append({"mu": mu, "event": i, "hits": len(event.hits), "method": name,
                                  "seconds": r["seconds"], "cpu_seconds": r["cpu_seconds"], **r["counts"]})
            if log is not None:
                log(f"mu {mu:g} event {i}: {len(event.hits)} hits, "
                    + ", ".join(f"{e['method']} {e['seconds']:.2f} s" for e in per_event[-len(run):]))
        pe = pd.DataFrame(per_event)
        for name in run:
            s = summarise(counts[name], pd.concat(tables[name], ignore_index=True) if n else pd.DataFrame())
            sel = pe[(pe["mu"] == mu) & (pe["method"] == name)]
            rows.append({"mu": mu, "method": name, "hits_per_event": float(np.mean(hits)) if hits else float("nan"),
                         **s, "seconds_per_event": float(sel["seconds"].mean()),
                         "cpu_seconds_per_event": float(sel["cpu_seconds"].mean())})
    return pd.DataFrame(rows), pd.DataFrame(per_event)


def time_against_pileup(methods: Sequence[str], events: dict, models_dir=None, repeat: int = 1) -> pd.DataFrame:
    """Seconds per event of each method against mu on this process's threads (set them before): ``events``
    {mu: tau event} (`tau_event`), each run ``repeat`` times after a warm-up; a row per (mu, method, run)."""
    rows = []
    for mu, event in events.items():
        for run in range(repeat):
            for name, r in run_methods(methods, event, models_dir).items():
                rows.append({"mu": mu, "event": event.event_id, "run": run, "hits": len(event.hits),
                             "method": name, "seconds": r["seconds"], "cpu_seconds": r["cpu_seconds"]})
    return pd.DataFrame(rows)
