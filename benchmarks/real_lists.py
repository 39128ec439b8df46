"""The events the benchmarks simulate from TrackML's real particle lists: one place that says where the lists
are, refuses the lists kept for final checks, and simulates a list once into a folder the benchmarks reuse.

    from real_lists import real_list_event
    hits = real_list_event(1001, Path("/tmp/deepreco-bench/fit"), seed=1)  # .../event000001001-hits.parquet

The development lists are 1000-1009 (``../shared/data/trackml/train``, its README); 1010-1020 are for final
checks only, and no benchmark reads them.
"""

from __future__ import annotations

from pathlib import Path

LISTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "trackml" / "train"
DEVELOPMENT = range(1000, 1010)


def check_development(numbers) -> None:
    """SystemExit unless every list number is a development list."""
    bad = [n for n in numbers if n not in DEVELOPMENT]
    if bad:
        raise SystemExit(f"list(s) {', '.join(map(str, bad))}: only the development lists 1000-1009")


def real_list_event(number: int, folder: Path, seed: int = 1, event_id: int | None = None) -> Path:
    """The hits file of list ``number`` simulated with ``seed`` into ``folder`` (simulated on the first call,
    read back after); the event id is ``event_id`` (the list's number by default)."""
    from deepreco.simulate.dataset import simulate_dataset

    check_development([number])
    folder = Path(folder)
    found = sorted(folder.glob("*-hits.parquet"))
    if not found:
        print(f"simulating the real particle list {number} (seed {seed}) into {folder} ...", flush=True)
        simulate_dataset("trackml", 1, folder, seed=seed, format="parquet",
                         first_event_id=number if event_id is None else event_id,
                         particles=str(LISTS / f"event{number:09d}-particles.csv.gz"))
        found = sorted(folder.glob("*-hits.parquet"))
    return found[0]


def real_list_folder(numbers, folder: Path, seed: int = 1) -> Path:
    """A folder holding lists ``numbers``, each simulated with ``seed`` as event id ``number`` (the same hits as
    `real_list_event` with that seed); lists already there are read back, not simulated again."""
    from deepreco.simulate.dataset import simulate_dataset

    check_development(numbers)
    folder = Path(folder)
    for number in numbers:
        if not (folder / f"event{number:09d}-hits.parquet").exists():
            print(f"simulating the real particle list {number} (seed {seed}) into {folder} ...", flush=True)
            simulate_dataset("trackml", 1, folder, seed=seed, format="parquet", first_event_id=number, resume=True,
                             particles=str(LISTS / f"event{number:09d}-particles.csv.gz"))
    return folder
