"""Many simulated events: generate, simulate and write them, on Dask workers or in one process, reproducibly.

Event i of a run with seed S draws its random numbers from ``SeedSequence([S, i])`` alone, so an event does
not depend on the number of workers, on the order they finish in, or on the other events of the run: the
same seed gives byte-identical files.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..errors import DeepRecoError
from ..io import FORMATS, Dataset, parse_name, write_event
from ..paths import made_folder


def event_seeds(seed: int, index: int) -> tuple[int, int]:
    """The (generator, simulation) seeds of event ``index`` of a run seeded with ``seed``."""
    gen, sim = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint32)
    return int(gen), int(sim)


def simulate_one(generator: str, index: int, seed: int, event_id: int, out: Path, format: str,
                 options: dict, noise_fraction: float | None = None, secondaries: bool = False) -> int:
    """Generate, simulate and write one event; returns its event id."""
    from ..generate import generate
    from .fastsim import simulate_event

    gen_seed, sim_seed = event_seeds(seed, index)
    particles = generate(generator, seed=gen_seed, **options)
    event = simulate_event(particles, seed=sim_seed, event_id=event_id, noise_fraction=noise_fraction,
                           secondaries=secondaries)
    write_event(event, out, format=format)
    return event_id


def simulate_dataset(generator: str, n_events: int, out, seed: int = 0, format: str = "csv", workers: int = 1,
                     scheduler: str | None = None, overwrite: bool = False, resume: bool = False,
                     first_event_id: int = 0, noise_fraction: float | None = None, progress: bool = False,
                     secondaries: bool = False, **options) -> list[int]:
    """Simulate ``n_events`` events from ``generator`` (a name of `deepreco.generate.GENERATORS`) into ``out``.

    ``options`` go to the generator (``pileup``, ``particles``, ``n``, ``pdg``, ...); ``noise_fraction`` to the
    simulation (None: the noise rates of real TrackML events; a number: that share of all hits is noise), and
    ``secondaries`` (the products of nuclear interactions, for generated lists: `simulate_event`).
    Events run on ``workers`` local processes or on the Dask cluster at ``scheduler`` (`deepreco.distributed`).
    A folder that already holds events is refused unless ``overwrite``, which first removes the TrackML event
    files there, or ``resume``, which simulates only the events of the run whose hits file is not there yet.
    Each event is written complete or not at all. ``progress``: a bar and a summary on stderr. Returns the
    event ids of the run, in order.
    """
    from ..distributed import EventRunner, EventsFailed, check_workers
    from ..generate import generate
    from ..io import remove_temporaries

    if format not in FORMATS:
        raise DeepRecoError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if n_events < 0:
        raise DeepRecoError(f"need events >= 0, got {n_events}")
    check_workers(workers, scheduler)
    if overwrite and resume:
        raise DeepRecoError("--overwrite and --resume: choose one")
    out = Path(out).resolve()  # workers elsewhere may have another working directory
    if out.exists() and not out.is_dir():
        raise DeepRecoError(f"{out}: exists and is not a folder")
    ids = [first_event_id + i for i in range(n_events)]
    todo = list(range(n_events))
    if out.is_dir() and len(Dataset(out)):
        if resume:
            done = {name: i for i, name in enumerate(Dataset(out).names)}
            todo = [i for i in todo if f"event{ids[i]:09d}" not in done]
        elif not overwrite:
            raise DeepRecoError(f"{out}: already holds {len(Dataset(out))} event(s); "
                                "use --overwrite to replace them or --resume to add the missing ones")
        else:
            for path in out.iterdir():
                if path.is_file() and parse_name(path.name) is not None:
                    path.unlink()
    # Check the generator and its options once, here, rather than in every worker.
    if todo:
        generate(generator, seed=event_seeds(seed, todo[0])[0], **options)
    task = partial(_simulate_index, generator, seed, first_event_id, out, format, options, noise_fraction,
                   secondaries)
    try:
        with made_folder(out), EventRunner(workers, scheduler, progress) as runner:  # stopped before an event
            remove_temporaries(out)                                                  # is written: no folder left
            try:
                runner.run(task, todo, label="events", name=lambda i: f"event {first_event_id + i}")
            except EventsFailed as failed:
                raise failed.then(f"; the other {len(todo) - len(failed.failures)} are written, and --resume "
                                  "simulates only the missing ones") from None
    except KeyboardInterrupt as stop:  # what the command's one line says
        names = set(Dataset(out).names) if out.is_dir() else set()
        done = sum(f"event{ids[i]:09d}" in names for i in todo)
        stop.add_note(f"{done} of the {len(todo)} events are written" +
                      (", and --resume simulates only the missing ones" if done else ""))
        raise
    return ids


def _simulate_index(generator, seed, first_event_id, out, format, options, noise_fraction, secondaries,
                    index) -> int:
    return simulate_one(generator, index, seed, first_event_id + index, out, format, options, noise_fraction,
                        secondaries)


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
