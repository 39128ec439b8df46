"""The whole chain on one event: a real particle list, the simulation, three track finders, scores, a display."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .display import save_display
from .io import example_event
from .metrics import evaluate
from .reconstruct import get_method
from .simulate import simulate_event


def run_demo(out, methods: tuple[str, ...] = ("ckf", "lstm", "gnn"), seed: int = 1,
             report: Callable[[str], None] = lambda _: None) -> dict:
    """Simulate the particles of real TrackML event 1001 (shipped), reconstruct, score, draw.

    Returns the per-method figures (``evaluate``'s keys plus ``seconds``) and the event summary; the display
    of the best-scoring method's tracks is written to ``out``.
    """
    real = example_event()
    report(f"simulating the {len(real.particles):,} particles of real TrackML event 1001 on the TrackML detector "
           "...")
    start = time.perf_counter()
    event = simulate_event(real.particles, seed=seed, event_id=1001)
    results: dict = {"event": event.summary(), "simulation_seconds": time.perf_counter() - start, "methods": {}}
    ev = results["event"]
    report(f"simulated event: {ev['n_hits']:,} hits, {ev['n_particles']:,} particles, noise fraction "
           f"{ev['noise_fraction']:.3f} ({results['simulation_seconds']:.1f} s)")
    tracks = {}
    for name in methods:
        report(f"reconstructing with {name} ...")
        start = time.perf_counter()
        tracks[name] = get_method(name).reconstruct(event)
        seconds = time.perf_counter() - start
        results["methods"][name] = {**evaluate(event.truth, event.particles, tracks[name]), "seconds": seconds}
    best = max(results["methods"], key=lambda m: results["methods"][m]["score"])
    r = results["methods"][best]
    title = (f"event 1001 (real TrackML particle list, simulated with seed {seed}): {best} tracks, TrackML score "
             f"{r['score']:.3f}, efficiency (pT > 1 GeV) {r['efficiency']:.3f}, fake rate {r['fake_rate']:.3f}")
    save_display(event, Path(out), tracks[best], title=title)
    results["display"] = {"path": str(out), "method": best}
    return results
