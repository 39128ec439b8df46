"""Reconstruct a set of events with one method and score it: the numbers methods are compared by.

Both functions run event by event on `deepreco.distributed` (a plain loop, a local Dask cluster or a running
one); an event's figures and submission depend on the event alone, so they are the same whichever runs them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import DeepRecoError
from ..event import Event
from ..progress import stage
from .base import Method, get_method


def _items(events, n_events: int | None) -> list:
    """What a worker needs to read each event: a one-event `Dataset` (small, read where it runs) for a
    dataset, else the events themselves."""
    from ..io import Dataset

    if isinstance(events, Dataset):
        names = events.names[:n_events] if n_events is not None else events.names
        return [events.subset([name]) for name in names]
    items = []
    for i, event in enumerate(events):
        if n_events is not None and i >= n_events:
            break
        items.append(event)
    return items


def _event(item) -> Event:
    if isinstance(item, Event):
        return item
    with stage("reading"):
        return item.read(item.names[0])


def _event_id(item) -> int:
    return int((item.event_id if isinstance(item, Event) else item.event_ids[0]) or 0)


def _event_name(item) -> str:
    return f"event {_event_id(item)}"


def _method(method: str | Method, params: dict) -> Method:
    """The method, built once per process (a model is loaded once per worker)."""
    from ..distributed import per_process

    if not isinstance(method, str):
        return method
    key = f"method:{method}:{sorted(params.items())!r}"
    model = params.get("model")
    if model is not None and Path(model).is_file():  # a model file written again since is read again
        stat = Path(model).stat()
        key += f"@{stat.st_mtime_ns}:{stat.st_size}"
    return per_process(key, lambda: get_method(method, **params))


def _params(method: str | Method, params: dict | None) -> dict:
    """``params`` checked against ``method`` (a bad name or parameter: one error now, not one per event)."""
    params = dict(params or {})
    if isinstance(method, str):
        get_method(method, **params)
    elif params:
        raise DeepRecoError(f"parameters {', '.join(sorted(params))} are for a method given by name; "
                            f"{method.name} is made already")
    return params


def _fit_rows(event: Event, tracks, fitter: str) -> dict:
    """The Kalman fit of an event's tracks: the columns `fit_summary` pools over events, as plain lists."""
    from ..fit import fit_tracks
    from ..metrics.fit import match_fits

    fits = fit_tracks(event, tracks, fitter=fitter)
    matched = match_fits(fits, tracks, event.truth, event.particles)
    keep = [c for c in matched.columns if c.startswith(("pull_", "res_", "true_"))]
    return {"fits": fits[["fitted", "chi2_ndf"]].to_dict("list"), "matched": matched[keep].to_dict("list")}


def _evaluate_one(method, params: dict, pt_min: float, item, fit: bool = False, fitter: str | None = None) -> dict:
    from ..metrics import evaluate

    event = _event(item)
    if event.truth is None or event.particles is None:
        name = event.sources.get("hits", f"event {event.event_id}")
        raise DeepRecoError(f"{name}: has no truth and particles, so it cannot be scored")
    algo = _method(method, params)
    start, cpu_start = time.perf_counter(), time.process_time()
    tracks = algo.reconstruct(event)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    with stage("scoring"):
        result = evaluate(event.truth, event.particles, tracks, pt_min=pt_min)
    pids = event.truth["particle_id"].to_numpy()
    _, counts = np.unique(pids[pids != 0], return_counts=True)
    row = {"event_id": event.event_id, "seconds": seconds, "cpu_seconds": cpu_seconds, "n_hits": event.n_hits,
           "n_reconstructable": int((counts >= 4).sum()), **result}
    if fit:
        row["fit"] = _fit_rows(event, tracks, fitter)
    return row


def evaluate_method(events: Iterable[Event], method: str | Method, n_events: int | None = None,
                    pt_min: float = 1.0, progress: bool = False, workers: int = 1, scheduler: str | None = None,
                    runner=None, fit: bool = False, fitter: str | None = None, params: dict | None = None) -> dict:
    """Reconstruct and score up to ``n_events`` events; pooled figures over them.

    ``params``: the method's parameters, as `get_method(method, **params)` takes them (``{"pt_min": 0.3}`` is
    `ckf`'s seeding threshold there; ``pt_min`` here is the efficiency's, below).

    ``events``: a `Dataset` (each worker reads its own events) or any iterable of events. They run on ``workers``
    local processes or on the Dask cluster at ``scheduler``, or on an open `deepreco.distributed.EventRunner`
    (``runner``; to run several methods on one cluster); the figures are the same every way. Returns ``score`` (mean
    of the per-event TrackML scores, as the challenge averaged them), ``efficiency`` and ``efficiency_perfect``
    (pooled over the selected particles of all events), ``fake_rate`` and ``duplicate_rate`` (pooled over all
    tracks), ``seconds_per_event`` (reconstruction only, wall clock), ``cpu_seconds_per_event`` (the same, CPU time
    of the process, all its threads: on a loaded machine it says what the wall clock cannot), ``n_events``,
    ``n_tracks``, ``n_particles``, and ``events``, the per-event figures (with ``n_reconstructable``, the particles
    with at least 4 hits). ``fit``: the tracks are also fitted with a Kalman filter (``fitter``: ``"acts"``, the
    ``acts`` extra, or ``"deepreco"``; None: ACTS's when installed) and ``fit`` holds
    `deepreco.metrics.fit.fit_summary` pooled over the events (failed-fit fraction, pull widths, resolutions against
    pT and |eta|).
    """
    from ..distributed import EventRunner

    params = _params(method, params)
    name = method if isinstance(method, str) else method.name
    items = _items(events, n_events)
    if not items:
        raise DeepRecoError("no events to evaluate")
    if fit:
        from ..fit import check_fitter

        fitter = check_fitter(fitter)  # a missing extra or a bad name: one error here, not one per event
    task = partial(_evaluate_one, method, params, pt_min, fit=fit, fitter=fitter)
    if runner is not None:
        rows = runner.run(task, items, label=name, name=_event_name)
    else:
        with EventRunner(workers, scheduler, progress) as own:
            rows = own.run(task, items, label=name, name=_event_name)
    n_tracks = np.array([r["n_tracks"] for r in rows], float)
    n_particles = np.array([r["n_particles"] for r in rows], float)

    def pooled(key, weights):
        values = np.array([r[key] for r in rows], float)
        return float((values * weights).sum() / weights.sum()) if weights.sum() else 0.0

    fitted = {}
    if fit:
        import pandas as pd

        from ..metrics.fit import fit_summary

        fits = pd.concat([pd.DataFrame(r["fit"]["fits"]) for r in rows], ignore_index=True)
        matched = pd.concat([pd.DataFrame(r["fit"]["matched"]) for r in rows], ignore_index=True)
        for r in rows:
            del r["fit"]
        fitted = {"fit": fit_summary(fits, matched)}
    return {
        "method": name,
        "score": float(np.mean([r["score"] for r in rows])),
        "efficiency": pooled("efficiency", n_particles),
        "efficiency_perfect": pooled("efficiency_perfect", n_particles),
        "fake_rate": pooled("fake_rate", n_tracks),
        "duplicate_rate": pooled("duplicate_rate", n_tracks),
        "seconds_per_event": float(np.mean([r["seconds"] for r in rows])),
        "cpu_seconds_per_event": float(np.mean([r["cpu_seconds"] for r in rows])),
        "n_events": len(rows),
        "n_tracks": int(n_tracks.sum()),
        "n_particles": int(n_particles.sum()),
        "events": rows,
        **fitted,
    }


def _submission(out: Path, event_id) -> Path:
    """Where `reconstruct_dataset` writes an event's submission (and looks for it to skip or refuse)."""
    return out / f"event{int(event_id or 0):09d}-submission.csv"


def _reconstruct_one(method, params: dict, out: Path, item) -> str:
    from ..io import write_submission

    event = _event(item)
    tracks = _method(method, params).reconstruct(event)
    path = _submission(out, event.event_id)
    with stage("writing"):
        write_submission(tracks, path, event_id=event.event_id)
    return str(path)


def reconstruct_dataset(events, method: str | Method, out, n_events: int | None = None, resume: bool = False,
                        workers: int = 1, scheduler: str | None = None, progress: bool = False,
                        params: dict | None = None, overwrite: bool = False) -> list[Path]:
    """Reconstruct up to ``n_events`` events (a `Dataset` or an iterable of events) and write each one's TrackML
    submission (event_id, hit_id, track_id) as ``out/event<id>-submission.csv``, atomically; with ``resume``,
    only the events whose submission is not there yet. A submission already there of an event to reconstruct is
    refused (before any event is read), unless ``overwrite`` (replace it) or ``resume``. Runs as
    `evaluate_method` does. Returns the paths written. ``params``: the method's parameters, as for
    `evaluate_method`."""
    from ..distributed import EventRunner, EventsFailed
    from ..io import remove_temporaries
    from ..paths import made_folder

    if overwrite and resume:
        raise DeepRecoError("--overwrite and --resume: choose one")
    params = _params(method, params)
    name = method if isinstance(method, str) else method.name
    out = Path(out).resolve()
    items = _items(events, n_events)
    _check_distinct_ids(items)
    written = [_submission(out, _event_id(it)).is_file() for it in items]
    there = [it for it, w in zip(items, written, strict=True) if w]
    if resume:
        items = [it for it, w in zip(items, written, strict=True) if not w]
    elif there and not overwrite:
        raise DeepRecoError(f"{out}: already holds the submission of {len(there)} of these {len(items)} event(s) "
                            f"({_submission(out, _event_id(there[0])).name}); use --overwrite to replace them or "
                            "--resume to reconstruct only the missing ones")
    try:
        with made_folder(out), EventRunner(workers, scheduler, progress) as runner:  # a run that wrote nothing
            remove_temporaries(out)                                                  # leaves no folder
            try:
                return [Path(p) for p in runner.run(partial(_reconstruct_one, method, params, out), items,
                                                    label=name, name=_event_name)]
            except EventsFailed as failed:
                raise failed.then(f"; the other {len(items) - len(failed.failures)} submissions are written, "
                                  "and --resume reconstructs only the missing ones") from None
    except KeyboardInterrupt as stop:  # what the command's one line says
        done = sum(_submission(out, _event_id(it)).is_file() for it in items)
        stop.add_note(f"{done} of the {len(items)} submissions are written" +
                      (", and --resume reconstructs only the missing ones" if done else ""))
        raise


def _check_distinct_ids(items) -> None:
    """Two events of one id would write one submission file (the second over the first): refuse them."""
    from collections import Counter

    twice = [(i, n) for i, n in Counter(_event_id(it) for it in items).items() if n > 1]
    if twice:
        (first, n), more = twice[0], len(twice) - 1
        raise DeepRecoError(f"event id {first} appears {n} times in the input"
                            + (f" (and {more} other id(s) more than once)" if more else "")
                            + f"; their submissions would overwrite each other as event{first:09d}-submission.csv")
