"""Reconstruct a set of events with one method and score it: the numbers methods are compared by."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from ..errors import DeepRecoError
from ..event import Event
from .base import Method, get_method


def evaluate_method(events: Iterable[Event], method: str | Method, n_events: int | None = None,
                    pt_min: float = 1.0, progress: bool = False, **params) -> dict:
    """Reconstruct and score up to ``n_events`` events; pooled figures over them.

    Returns ``score`` (mean of the per-event TrackML scores, as the challenge averaged them), ``efficiency``
    and ``efficiency_perfect`` (pooled over the selected particles of all events), ``fake_rate`` and
    ``duplicate_rate`` (pooled over all tracks), ``seconds_per_event`` (reconstruction only, wall clock),
    ``n_events``, ``n_tracks``, ``n_particles``, and ``events``, the per-event figures (with
    ``n_reconstructable``, the particles with at least 4 hits).
    """
    from ..metrics import evaluate

    if isinstance(method, str):
        method = get_method(method, **params)
    rows = []
    iterator = iter(events)
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task(f"{method.name}", total=n_events)
        bar.start()
    try:
        for i, event in enumerate(iterator):
            if n_events is not None and i >= n_events:
                break
            if event.truth is None or event.particles is None:
                name = event.sources.get("hits", f"event {event.event_id}")
                raise DeepRecoError(f"{name}: has no truth and particles, so it cannot be scored")
            start = time.perf_counter()
            tracks = method.reconstruct(event)
            seconds = time.perf_counter() - start
            result = evaluate(event.truth, event.particles, tracks, pt_min=pt_min)
            pids = event.truth["particle_id"].to_numpy()
            _, counts = np.unique(pids[pids != 0], return_counts=True)
            rows.append({"event_id": event.event_id, "seconds": seconds, "n_hits": event.n_hits,
                         "n_reconstructable": int((counts >= 4).sum()), **result})
            if progress:
                bar.advance(task)
    finally:
        if progress:
            bar.stop()
    if not rows:
        raise DeepRecoError("no events to evaluate")
    n_tracks = np.array([r["n_tracks"] for r in rows], float)
    n_particles = np.array([r["n_particles"] for r in rows], float)

    def pooled(key, weights):
        values = np.array([r[key] for r in rows], float)
        return float((values * weights).sum() / weights.sum()) if weights.sum() else 0.0

    return {
        "method": method.name,
        "score": float(np.mean([r["score"] for r in rows])),
        "efficiency": pooled("efficiency", n_particles),
        "efficiency_perfect": pooled("efficiency_perfect", n_particles),
        "fake_rate": pooled("fake_rate", n_tracks),
        "duplicate_rate": pooled("duplicate_rate", n_tracks),
        "seconds_per_event": float(np.mean([r["seconds"] for r in rows])),
        "n_events": len(rows),
        "n_tracks": int(n_tracks.sum()),
        "n_particles": int(n_particles.sum()),
        "events": rows,
    }
