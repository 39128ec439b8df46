"""Many simulated events: generate, simulate and write them, in parallel processes, reproducibly.

Event i of a run with seed S draws its random numbers from ``SeedSequence([S, i])`` alone, so an event does
not depend on the number of workers, on the order they finish in, or on the other events of the run: the
same seed gives byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from ..errors import DeepRecoError
from ..io import FORMATS, Dataset, parse_name, write_event


def event_seeds(seed: int, index: int) -> tuple[int, int]:
    """The (generator, simulation) seeds of event ``index`` of a run seeded with ``seed``."""
    gen, sim = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint32)
    return int(gen), int(sim)


def simulate_one(generator: str, index: int, seed: int, event_id: int, out: Path, format: str,
                 options: dict, noise_fraction: float | None = None) -> int:
    """Generate, simulate and write one event; returns its event id."""
    from ..generate import generate
    from .fastsim import simulate_event

    gen_seed, sim_seed = event_seeds(seed, index)
    particles = generate(generator, seed=gen_seed, **options)
    event = simulate_event(particles, seed=sim_seed, event_id=event_id, noise_fraction=noise_fraction)
    write_event(event, out, format=format)
    return event_id


def simulate_dataset(generator: str, n_events: int, out, seed: int = 0, format: str = "csv", workers: int = 1,
                     overwrite: bool = False, first_event_id: int = 0, noise_fraction: float | None = None,
                     progress: Callable[[int], None] | None = None, **options) -> list[int]:
    """Simulate ``n_events`` events from ``generator`` (a name of `deepreco.generate.GENERATORS`) into ``out``.

    ``options`` go to the generator (``pileup``, ``particles``, ``n``, ``pdg``, ...); ``noise_fraction`` to the
    simulation (None: the noise rates of real TrackML events; a number: that share of all hits is noise).
    A folder that already holds events is refused unless ``overwrite``, which first removes the TrackML event
    files there. Each event is written complete or not at all. ``progress`` is called with each finished
    event id. Returns the event ids written, in order.
    """
    from ..generate import generate

    if format not in FORMATS:
        raise DeepRecoError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if n_events < 0 or workers < 1:
        raise DeepRecoError(f"need events >= 0 and workers >= 1, got {n_events} and {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DeepRecoError(f"{out}: exists and is not a folder")
    if out.is_dir() and len(Dataset(out)):
        if not overwrite:
            raise DeepRecoError(f"{out}: already holds {len(Dataset(out))} event(s); "
                                "use --overwrite to replace them")
        for path in out.iterdir():
            if path.is_file() and parse_name(path.name) is not None:
                path.unlink()
    # Check the generator and its options once, here, rather than in every worker.
    if n_events:
        generate(generator, seed=event_seeds(seed, 0)[0], **options)
    out.mkdir(parents=True, exist_ok=True)
    ids = [first_event_id + i for i in range(n_events)]
    jobs = [(generator, i, seed, ids[i], out, format, options, noise_fraction) for i in range(n_events)]
    if workers == 1:
        for job in jobs:
            done = simulate_one(*job)
            if progress:
                progress(done)
        return ids
    with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1, max(n_events, 1))) as pool:
        futures = [pool.submit(simulate_one, *job) for job in jobs]
        for future in as_completed(futures):
            done = future.result()
            if progress:
                progress(done)
    return ids


def training_events(name: str, n_events: int, seed: int, data=None, workers: int = 2, pileup: float = 200) -> Path:
    """The folder of ``n_events`` Pythia 8 ttbar + Poisson(``pileup``) events simulated with ``seed``, made
    once and reused: ``data``, or ``<tmp>/deepreco-<name>-train-<seed>-<n_events>``. The training scripts
    share it, so each set is simulated once."""
    import tempfile

    out = Path(data) if data is not None else Path(tempfile.gettempdir()) / f"deepreco-{name}-train-{seed}-{n_events}"
    if not (out.is_dir() and len(Dataset(out)) == n_events):
        simulate_dataset("ttbar", n_events, out, seed=seed, format="parquet", workers=workers, overwrite=True,
                         pileup=pileup)
    return out
