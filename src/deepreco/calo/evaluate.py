"""Every method on the same simulated events: the metrics of ``metrics``, seconds and peak memory per event,
resolution against energy, efficiency against the distance between two showers, time against hit count.

Evaluation events are gun events from seeds (seed, i) with the training's defaults (2-6 particles of e, gamma,
pi+-, mu, 5-100 GeV, spread 0.3), or as many taus decayed by Pythia 8 (``source="tau"``), with Poisson(mu)
Pythia 8 pile-up on top when ``pileup`` = mu > 0 (its particles count as particles too); the shipped models were
trained on seeds (1000, i) and tuned on (2000, i), so the default seed 0 gives events they have not seen.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..progress import stage
from . import metrics
from .methods import get_method
from .models.knn import HAVE_NUMBA
from .simulate import pileup_event, simulate

DEFAULT_METHODS = ("clue", "gravnet", "edgeconv", "clue+drn", "gravnet+drn")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return 0


class PeakMemory:
    """The peak resident memory above the start, sampled every 2 ms in a thread (numpy and torch release the
    GIL in their heavy calls, so the sampler sees their buffers)."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def megabytes(self) -> float:
        return (self.peak - self.base) / 2 ** 20


_WARM: set[str] = set()


def warm_up(method) -> None:
    """Run ``method`` once on a small event, so that timings leave out what happens once a process: loading
    (or at the very first run compiling, then caching on disk) the numba kernels, about a second."""
    if method.name in _WARM:
        return
    from .guns import fixed

    method.reconstruct(simulate(fixed([22, 211], [20.0, 30.0], [2.0, 2.1], [0.3, 0.4]), seed=0))
    _WARM.add(method.name)


def run_on_event(method, event) -> dict:
    """One method on one event: its counts, particles table, wall and CPU seconds, peak MB."""
    with PeakMemory() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        hit_table, clusters = method.reconstruct(event)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"counts": metrics.event_counts(event, hit_table, clusters, hit_table["hit_class"].to_numpy()),
            "particles": metrics.particle_table(event, hit_table, clusters).assign(event_id=event.event_id),
            "seconds": seconds, "cpu": cpu, "peak_mb": mem.megabytes}


def summarise_runs(runs: Sequence[dict]) -> tuple[dict, pd.DataFrame]:
    """The metrics of one method over its per-event runs (`run_on_event`), in event order."""
    parts = [r["particles"] for r in runs]
    particles = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out = metrics.summarise([r["counts"] for r in runs], particles)
    seconds, cpu, peaks = ([r[k] for r in runs] for k in ("seconds", "cpu", "peak_mb"))
    out["seconds_per_event"] = float(np.mean(seconds)) if seconds else float("nan")
    # CPU seconds of this process: on a shared machine, closer to what the wall time would be on an idle one
    out["cpu_seconds_per_event"] = float(np.mean(cpu)) if cpu else float("nan")
    out["peak_memory_mb"] = float(np.max(peaks)) if peaks else float("nan")
    out["resolution_vs_energy"] = metrics.resolution_vs_energy(particles).to_dict("records") if len(particles) else []
    return out, particles


def run_method(method, events: Sequence) -> dict:
    """One method over events: summed counts, the particles table, seconds and peak MB per event (after a
    warm-up run, see ``warm_up``)."""
    warm_up(method)
    return summarise_runs([run_on_event(method, event) for event in events])


def _method(name: str, models_dir, server=None, fallback=None):
    """A method by name, built (its networks loaded, or its server checked) once per process."""
    from ..distributed import per_process

    return per_process(f"calo:{name}:{models_dir}:{server}:{fallback}",
                       lambda: get_method(name, models_dir, server=server, fallback=fallback))


def _evaluate_event(methods, models_dir, seed, source, pileup, item, server=None, fallback=None) -> dict:
    """Every method on one event (``item``: its index, or the event itself)."""
    from .simulate import gun_event

    if isinstance(item, int):
        with stage("simulating"):
            event = gun_event(item, seed=seed, source=source, pileup=pileup)
    else:
        event = item
    runs = {}
    for name in methods:
        method = _method(name, models_dir, server, fallback)
        with stage(name):
            warm_up(method)
            runs[name] = run_on_event(method, event)
    return {"n_hits": len(event.hits), "runs": runs}


def evaluate(n_events: int = 50, seed: int = 0, methods: Sequence[str] = DEFAULT_METHODS, models_dir=None,
             events: Sequence | None = None, log: Callable[[str], None] | None = None, source: str = "gun",
             pileup: float = 0.0, workers: int = 1, scheduler: str | None = None, progress: bool = False,
             server: str | None = None, fallback: str | None = None) -> dict:
    """{method: metrics} on the same events (``n_events`` events of ``source`` with Poisson(``pileup``) pile-up
    from ``seed``, event i from (seed, i) alone, unless ``events``), event by event on ``workers`` local
    processes or the Dask cluster at ``scheduler`` (`deepreco.distributed`); the figures are the same every
    way but the times. ``server``: the networks run on that server (`deepreco.export.client`), ``fallback``
    ``local``: in-process when it does not answer."""
    from functools import partial

    from ..distributed import EventRunner

    methods = list(methods)
    if models_dir is not None:
        models_dir = Path(models_dir).resolve()
    for name in methods:  # a bad name or model file, a server down: one error here, before any event
        _method(name, models_dir, server, fallback)
    items = list(events) if events is not None else list(range(n_events))
    task = partial(_evaluate_event, methods, models_dir, seed, source, pileup, server=server, fallback=fallback)
    with EventRunner(workers, scheduler, progress) as runner:
        per_event = runner.run(task, items, label="events")
    result = {"events": len(items), "seed": seed, "source": source, "pileup": pileup,
              "hits_per_event": float(np.mean([e["n_hits"] for e in per_event])) if per_event else 0.0,
              "methods": {}}
    tables = {}
    for name in methods:
        summary, tables[name] = summarise_runs([e["runs"][name] for e in per_event])
        result["methods"][name] = summary
        if log is not None:
            log(f"{name}: efficiency {summary['efficiency']:.3f}, fake rate {summary['fake_rate']:.3f}, "
                f"resolution {summary['energy_resolution']:.3f}, {summary['seconds_per_event']:.3f} s/event")
    _common_resolution(result, tables)
    return result


def _common_resolution(result: dict, tables: dict) -> None:
    """Resolution of each method over the showering particles that every method found: the methods find
    different particles (the harder, overlapping ones only some), so their own resolutions compare unlike
    samples."""
    keys = None
    for p in tables.values():
        if len(p) == 0:
            return
        found = p[p["found"] & (p["kind"] != 3)]
        k = set(zip(found["event_id"], found["particle_id"], strict=True))
        keys = k if keys is None else keys & k
    result["common_particles"] = len(keys or ())
    for name, p in tables.items():
        sel = p[[(e, i) in keys for e, i in zip(p["event_id"], p["particle_id"], strict=True)]]
        per = {}
        for kind, label in ((1, "em"), (2, "had")):
            per[label] = metrics.robust_resolution(sel.loc[sel["kind"] == kind, "response"].to_numpy())[1]
        result["methods"][name]["common"] = {"energy_response": metrics.robust_resolution(sel["response"])[0],
                                             "energy_resolution": metrics.robust_resolution(sel["response"])[1],
                                             "em_resolution": per["em"], "had_resolution": per["had"]}


def efficiency_vs_distance(methods: Sequence[str], distances=(10, 20, 30, 50, 80, 120), n_per: int = 20,
                           seed: int = 0, species=(22, 22), energy=(20.0, 20.0), models_dir=None) -> pd.DataFrame:
    """Efficiency of each method for two showers ``distance`` mm apart at the face (``n_per`` events each)."""
    from .guns import pair

    rows = []
    for d in distances:
        events = []
        for i in range(n_per):
            rng = np.random.default_rng([seed, int(d), i])
            event = simulate(pair(d, species=species, energy=energy, seed=rng), seed=rng, tracker_x0=0.0)
            event.event_id = i
            events.append(event)
        for name in methods:
            summary, _ = run_method(get_method(name, models_dir), events)
            rows.append({"method": name, "distance_mm": d, "efficiency": summary["efficiency"],
                         "fake_rate": summary["fake_rate"]})
    return pd.DataFrame(rows)


# a method skipped above so many hits: DGCNN's kNN in 64 dimensions is quadratic without numba's tree (minutes
# an event beyond this)
MAX_HITS: dict[str, int] = {} if HAVE_NUMBA else {"edgeconv": 40_000}


def timing_vs_hits(methods: Sequence[str], n_particles=(20, 100, 300, 600), seed: int = 0, models_dir=None,
                   log: Callable[[str], None] | None = None, max_hits: dict | None = None) -> pd.DataFrame:
    """Seconds per event of each method against the number of hits (pile-up-like events of many soft
    particles over the whole endcap); a method is skipped on events above its ``max_hits``."""
    limits = {**MAX_HITS, **(max_hits or {})}
    rows = []
    for n in n_particles:
        event = pileup_event(int(n), seed=np.random.default_rng([seed, int(n)]))
        for name in methods:
            if len(event.hits) > limits.get(name, np.inf):
                continue
            method = get_method(name, models_dir)
            warm_up(method)
            with PeakMemory() as mem:
                t0, c0 = time.perf_counter(), time.process_time()
                method.reconstruct(event)
                dt, dc = time.perf_counter() - t0, time.process_time() - c0
            rows.append({"method": name, "particles": int(n), "hits": len(event.hits), "seconds": dt,
                         "cpu_seconds": dc, "peak_memory_mb": mem.megabytes})
            if log is not None:
                log(f"{name}: {len(event.hits)} hits in {dt:.2f} s")
    return pd.DataFrame(rows)
