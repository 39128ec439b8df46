"""Seed 004's pipeline taken apart: its two seeding figures and the `lstm` score, with the analytic and the learned
arcs, on the tracking benchmark's events and on events simulated from real TrackML particle lists.

    python benchmarks/lstm_seeds.py [--data DIR] [--events 3] [--lists 1001 1003] [--truth]

Events: the first ``--events`` of those `benchmarks/tracking.py` simulated (ttbar + mu = 200, seed 1000), and
one event simulated (seed 1) from each real development list given (1000-1009 only; 1010-1020 are kept for
final validation), as `benchmarks/fit.py` makes them. The figures (defined in `seeding.seed_quality`): a track
is a particle with at least 10 hits; a seed (the first 5 hits outward of a DBSCAN cluster that starts inside
r = 200 mm) is perfect when its 5 hits all come from one particle; "first 5" when they are exactly that
particle's first five; a track is seeded when some perfect seed is its. Seed 004 reports 85.8 % perfect and
69 % of tracks seeded (within a minute an event; its count is over x, y, z > 0, ours over the whole detector).
"scan": the even curvature scan (11 values from pT = 0.5 GeV, z0 = -60, 0, 60 mm); "learned": the arcs of
``data/dbscan_arcs.json`` (11 curvature and 3 z0 quantiles of the true tracks of 4 training events,
`scripts/learn_arcs.py`). Each configuration reconstructs each event once with `lstm` (the seeding's figures
are those of the seeds it used); ``--truth`` adds the LSTM fed true seeds. One thread; the times are wall
clock on a machine shared with other jobs. Output: ``benchmarks/results/lstm_seeds.txt``.
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
LISTS = Path("/work/shared/data/trackml/train")


def main() -> None:
    import numpy as np
    import torch

    from deepreco.io import Dataset, read_event
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm import seed_quality
    from deepreco.simulate.dataset import simulate_dataset

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/deepreco-bench/ttbar-mu200-seed1000-n3")
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--lists", type=int, nargs="*", default=[1001, 1003])
    parser.add_argument("--lists-data", default="/tmp/deepreco-bench/fit-reallists")
    parser.add_argument("--truth", action="store_true", help="also the LSTM fed true seeds")
    args = parser.parse_args()
    if any(not 1000 <= n <= 1009 for n in args.lists):
        parser.error("--lists: development lists 1000 to 1009 only")

    sets = {"tracking events": [e for _, e in zip(range(args.events), Dataset(args.data), strict=False)]}
    for number in args.lists:
        out = Path(args.lists_data) / str(number)
        if not any(out.glob("*-hits.parquet")):
            simulate_dataset("trackml", 1, out, seed=1, format="parquet", first_event_id=number,
                             particles=str(LISTS / f"event00000{number}-particles.csv.gz"))
    if args.lists:
        sets["real lists " + ", ".join(map(str, args.lists))] = [
            read_event(next((Path(args.lists_data) / str(n)).glob("*-hits.parquet"))) for n in args.lists]
    configs = {"scan": {"arcs": "scan"}, "learned": {"arcs": "learned"}}
    if args.truth:
        configs["true seeds"] = {"seeding": "truth"}

    lines = [f"tracking events: the first {args.events} of {args.data}; real lists: {args.lists} "
             f"(simulated, seed 1, in {args.lists_data})",
             "seed 004: 85.8 % of seeds perfect, 69 % of tracks seeded, 60 s an event for its seeding", "",
             "set | seeding | seeds | perfect | first 5 | tracks (>= 10 hits) | seeded | lstm score | efficiency "
             "| fakes | s seeding / event | s total / event"]
    for set_name, events in sets.items():
        for name, params in configs.items():
            method = get_method("lstm", **params)
            q, r, times = [], [], []
            for event in events:
                tracks = method.reconstruct(event)
                run = method.last_run
                q.append(seed_quality(event, run["seeds"]))
                r.append(evaluate(event.truth, event.particles, tracks))
                times.append((run["seconds_seeding"], run["seconds_seeding"] + run["seconds_extension"]))
            n_seeds = sum(x["n_seeds"] for x in q)
            perfect = sum(x["perfect"] * x["n_seeds"] for x in q) / n_seeds
            first = sum(x["perfect_first"] * x["n_seeds"] for x in q) / n_seeds
            tracks = sum(x["tracks"] for x in q)
            seeded = sum(x["seeded"] * x["tracks"] for x in q) / tracks
            t = np.mean(times, axis=0)
            lines.append(f"{set_name} | {name} | {n_seeds} | {perfect:.3f} | {first:.3f} | {tracks} | {seeded:.3f} | "
                         f"{np.mean([x['score'] for x in r]):.4f} | {np.mean([x['efficiency'] for x in r]):.4f} | "
                         f"{np.mean([x['fake_rate'] for x in r]):.4f} | {t[0]:.1f} | {t[1]:.1f}")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    out = Path(__file__).resolve().parent / "results" / "lstm_seeds.txt"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(text)


if __name__ == "__main__":
    main()
