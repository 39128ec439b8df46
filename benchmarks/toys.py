"""HEP.TrkX toy benchmark (seed 001): every per-pixel model and baseline on the same seeded 3D toy events.

    python benchmarks/toys.py --quick            # under 10 minutes on 2 CPU cores
    python benchmarks/toys.py --quick --json
    python benchmarks/toys.py                    # the longer run
    python benchmarks/toys.py --models lstm,convnn,kalman --minutes-per-model 9   # a chosen subset, 9 minutes each
    python benchmarks/toys.py --models bilstm --minutes-per-model 45 --name long-45min-bilstm
    python benchmarks/toys.py --models kalman --minutes-per-model 1 --track-minutes 15 --name long-track-15min

The same library function as ``deepreco toys benchmark``; writes ``benchmarks/results/toys-<run>.txt``,
``.json``, ``.png`` (accuracy against background tracks), ``-event.png`` and ``-tracks.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from deepreco.toys.benchmark import FULL, QUICK, format_report, public_result, run_benchmark, write_outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small run (under 10 minutes on 2 CPU cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="where to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--models", help="comma-separated subset of the models and baselines")
    parser.add_argument("--minutes-per-model", type=float,
                        help="the full run's data, each network trained for this many minutes (the clock is the "
                             "budget: no step cap; written as toys-long-*)")
    parser.add_argument("--track-minutes", type=float,
                        help="train the Conv+LSTM track-parameter model this many minutes on the full run's 50,000 "
                             "events (default: 30 s on 10,000 in --minutes-per-model runs)")
    parser.add_argument("--name", help="the run's name in the output files (default: quick, full or long-<M>min)")
    args = parser.parse_args(argv)
    config = None
    if args.minutes_per_model is not None:
        cap = 60.0 * args.minutes_per_model
        config = dataclasses.replace(FULL, name=f"long-{args.minutes_per_model:g}min", steps={"default": 10**9},
                                     max_seconds={"default": cap}, n_test=1000, n_per_count=200,
                                     track_events=10000, track_epochs=8, track_max_seconds=30.0)
    if args.track_minutes is not None:
        config = dataclasses.replace(config or (QUICK if args.quick else FULL), track_events=FULL.track_events,
                                     track_epochs=FULL.track_epochs, track_max_seconds=60.0 * args.track_minutes)
    if args.name:
        config = dataclasses.replace(config or (QUICK if args.quick else FULL), name=args.name)
    models = tuple(m for m in args.models.split(",") if m) if args.models else None
    result = run_benchmark(quick=args.quick, seed=args.seed, config=config, models=models,
                           progress=not args.json, threads=args.threads,
                           log=None if args.json else (lambda line: print(line, file=sys.stderr, flush=True)))
    written = write_outputs(result, args.out)
    if args.json:
        print(json.dumps(public_result(result)))
    else:
        print(format_report(result))
        for path in written:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
