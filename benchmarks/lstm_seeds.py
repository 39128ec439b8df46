"""Seed 004's pipeline taken apart: its two seeding figures and the `lstm` score, with the analytic and the learned
arcs, on the tracking benchmark's events and on events simulated from real TrackML particle lists.

    python benchmarks/lstm_seeds.py [--data DIR] [--events 3] [--lists 1001 1003] [--truth]
    python benchmarks/lstm_seeds.py --truth-only   # the LSTM fed true seeds, both fits: lstm_seeds_truth.txt
    python benchmarks/lstm_seeds.py --seedings     # the seedings of the lstm method: lstm_seeds_seedings.txt
    python benchmarks/lstm_seeds.py --grid         # DBSCAN over a dense grid of arcs: lstm_seeds_grid.txt

Events: the first ``--events`` of those `benchmarks/tracking.py` simulated (ttbar + mu = 200, seed 1000), and
one event simulated (seed 1) from each real development list given (1000-1009 only; 1010-1020 are kept for
final validation), as `benchmarks/fit.py` makes them. The figures (defined in `seeding.seed_quality`): a track
is a particle with at least 10 hits; a seed (the first 5 hits outward of a DBSCAN cluster that starts inside
r = 200 mm) is perfect when its 5 hits all come from one particle; "first 5" when they are exactly that
particle's first five; a track is seeded when some perfect seed is its. Seed 004 reports 85.8 % perfect and
69 % of tracks seeded (within a minute an event; its count is over x, y, z > 0, ours over the whole detector).
"scan": the even curvature scan (11 values from pT = 0.5 GeV, z0 = -60, 0, 60 mm); "learned": the arcs of
``data/dbscan_arcs.json`` (11 curvature and 9 z0 quantiles of the true tracks of 4 training events,
`scripts/learn_arcs.py`). "seed fit": no, each cluster's first 5 hits; yes, outlier removal by a helix fit
(`seeding.fitted_seeds`). Each event is clustered once per arcs, both seedings take their seeds from those
clusters, and each set of seeds is followed by the shipped LSTM (`LSTMTracks.follow`); ``--truth`` adds the
LSTM fed true seeds. One thread; the times are wall clock on a machine shared with other
jobs. Output: ``benchmarks/results/lstm_seeds.txt``.

``--seedings`` (issue 22): with the learned arcs, each event clustered once (keeping every hypothesis's
labels), the seedings of the method side by side, each followed by the shipped LSTM: ``dbscan`` (the final
labelling's clusters with the seed fit, as above: the before), ``hypotheses`` (every hypothesis's clusters,
`seeding.hypothesis_seeds`; its "s seeds" is the seeding from the clusters, its clustering the same), ``ckf``
(the first five hits of each ckf track; "s clustering" is then ckf's whole run), ``gnn`` (the first five hits
of each track the graph network builds, its own tracks) and ``gnn+kalman`` (of gnn's tracks after its Kalman
filter, without its later passes); for both "s clustering" is gnn's run. The truth row as above.

``--grid`` (issue 22): the seeding ``grid`` (`seeding.grid_seeds` with its defaults: DBSCAN over 41 curvatures
times z0 every 5 mm over the luminous region, every cluster's best five hits on a helix, the best fits first, a
second pass, a forward pass, each seed then completed to its track's first five hits, `seeding.complete_seeds`),
followed by the method's default, the shipped ensemble of four (``grid``), by the shipped model alone
(``ensemble=False``, the default until session 32), and, followed by the ensemble: the seeds without each seed's
cluster claimed (``keep_clusters=False``), the seeds not completed (session 31's before) and the seeds without the
forward pass (``forward=False``, session 32's before; its own seeding, its seconds in the same column); "s
clustering" is the seeding without its completion on one thread, "s seeds" the completion. Then the whole
seeding's time on the first event of each set on 1 thread, 2 threads, and 2 threads with the other core kept busy
(`hog.busy_core`).
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
LISTS = Path("/work/shared/data/trackml/train")


def _row(per_event) -> str:
    """One table row from each event's (seed figures, scores, (s clustering, s seeds, s extension))."""
    import numpy as np

    quality = [q for q, _, _ in per_event]
    n_seeds, tracks = sum(q["n_seeds"] for q in quality), sum(q["tracks"] for q in quality)
    perfect = sum(q["perfect"] * q["n_seeds"] for q in quality if q["n_seeds"]) / max(n_seeds, 1)
    first = sum(q["perfect_first"] * q["n_seeds"] for q in quality if q["n_seeds"]) / max(n_seeds, 1)
    seeded = sum(q["seeded"] * q["tracks"] for q in quality) / max(tracks, 1)
    score = np.mean([r["score"] for _, r, _ in per_event])
    efficiency = np.mean([r["efficiency"] for _, r, _ in per_event])
    fakes = np.mean([r["fake_rate"] for _, r, _ in per_event])
    t = np.mean([s for _, _, s in per_event], axis=0)
    return (f"{n_seeds} | {perfect:.3f} | {first:.3f} | {tracks} | {seeded:.3f} | {score:.4f} | {efficiency:.4f} | "
            f"{fakes:.4f} | {t[0]:.1f} | {t[1]:.2f} | {t[2]:.1f}")


def _seedings(events) -> dict:
    """Each seeding's per-event (seed figures, scores, seconds) on ``events`` (see ``--seedings``)."""
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.dbscan import DBSCANTracks, _one_hit_per_module
    from deepreco.reconstruct.lstm import seed_quality
    from deepreco.reconstruct.lstm.seeding import hypothesis_seeds

    rows = {"dbscan": [], "hypotheses": [], "ckf": [], "gnn": [], "gnn+kalman": []}
    params = {"gnn": {"seeding": "gnn"}, "gnn+kalman": {"seeding": "gnn", "gnn": {"kalman": True}}}
    for event in events:
        base = get_method("lstm", arcs="learned", seed_fit=True)
        start = time.perf_counter()
        per_hypothesis = []
        labels = _one_hit_per_module(event.hits, DBSCANTracks(**base.dbscan_parameters()).cluster(
            event.hits, per_hypothesis))
        clustered = time.perf_counter() - start
        for name in rows:
            method = get_method("lstm", arcs="learned", seed_fit=True, ensemble=False,
                                **params.get(name, {"seeding": name}))
            start = time.perf_counter()
            if name == "dbscan":
                seeds, own = method.seeds_of_clusters(event, labels), labels
            elif name == "hypotheses":
                seeds, own = hypothesis_seeds(event, per_hypothesis)
            else:
                seeds, own = method.seeds(event), None
            seeded = time.perf_counter()
            tracks = method.follow(event, seeds, own)
            seconds = (clustered, seeded - start) if name in ("dbscan", "hypotheses") else (seeded - start, 0.0)
            rows[name].append((seed_quality(event, seeds), evaluate(event.truth, event.particles, tracks),
                               (*seconds, time.perf_counter() - seeded)))
    return rows


def _grid(events) -> tuple[dict, list]:
    """The grid seeding's per-event (seed figures, scores, seconds) in four variants, and its time on 1 / 2 / 2
    threads with the other core busy on the first event (see ``--grid``)."""
    import numpy as np
    from hog import busy_core

    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm import seed_quality
    from deepreco.reconstruct.lstm.seeding import complete_seeds, grid_seeds

    rows = {"grid": [], "grid, shipped model alone": [], "grid, seed hits only": [], "grid, not completed": [],
            "grid, no forward pass": []}
    for event in events:
        start = time.perf_counter()
        raw, raw_labels = grid_seeds(event, threads=1, complete=False)
        clustered = time.perf_counter()
        seeds = complete_seeds(event, raw)  # as grid_seeds does with complete=True
        labels = raw_labels.copy()
        labels[seeds] = np.arange(len(seeds))[:, None]
        seconds = (clustered - start, time.perf_counter() - clustered)
        start = time.perf_counter()
        backward = grid_seeds(event, threads=1, forward=False)
        seconds_backward = (time.perf_counter() - start, 0.0)
        for name, given, params in (("grid", (seeds, labels), {}),
                                    ("grid, shipped model alone", (seeds, labels), {"ensemble": False}),
                                    ("grid, seed hits only", (seeds, labels), {"keep_clusters": False}),
                                    ("grid, not completed", (raw, raw_labels), {}),
                                    ("grid, no forward pass", backward, {})):
            start = time.perf_counter()
            tracks = get_method("lstm", seeding="grid", **params).follow(event, *given)
            rows[name].append((seed_quality(event, given[0]), evaluate(event.truth, event.particles, tracks),
                               (*(seconds_backward if name == "grid, no forward pass" else seconds),
                                time.perf_counter() - start)))
    times = []
    for threads, busy in ((1, False), (2, False), (2, True)):
        hog = busy_core() if busy else None
        try:
            start = time.perf_counter()
            grid_seeds(events[0], threads=threads)
            times.append(time.perf_counter() - start)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    return rows, times


def main() -> None:
    import torch

    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm import seed_quality, true_seeds

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", action="store_true", help="also the LSTM fed true seeds")
    parser.add_argument("--seedings", action="store_true",
                        help="the dbscan, hypotheses, ckf and gnn seedings; written to lstm_seeds_seedings.txt")
    parser.add_argument("--grid", action="store_true", help="the grid seeding; written to lstm_seeds_grid.txt")
    parser.add_argument("--truth-only", action="store_true",
                        help="only the LSTM fed true seeds, with both fits; written to lstm_seeds_truth.txt")
    args = parse_event_arguments(parser, events=3)
    sets = event_sets(args.data, args.events, args.lists, args.lists_data)
    lines = [f"tracking events: the first {args.events} of {args.data}; real lists: {args.lists} "
             f"(simulated, seed 1, in {args.lists_data})",
             "seed 004: 85.8 % of seeds perfect, 69 % of tracks seeded, 60 s an event for its seeding", "",
             f"set | arcs | {'seeding' if args.seedings or args.grid else 'seed fit'} | seeds | perfect | first 5 | "
             "tracks (>= 10 hits) | seeded | lstm score | "
             "efficiency | fakes | s clustering / event | s seeds / event | s extension / event"]
    for set_name, events in sets.items():
        if args.seedings:
            lines += [f"{set_name} | learned | {name} | " + _row(rows) for name, rows in _seedings(events).items()]
            print("\n".join(lines[-3:]), flush=True)
        if args.grid:
            rows, times = _grid(events)
            lines += [f"{set_name} | grid | {name} | " + _row(per_event) for name, per_event in rows.items()]
            lines.append(f"{set_name}, the grid seeding of its first event: " + " / ".join(
                f"{t:.1f}" for t in times) + " s on 1 thread / 2 threads / 2 threads with the other core busy")
            print("\n".join(lines[-3:]), flush=True)
        for arcs in () if args.truth_only or args.seedings or args.grid else ("scan", "learned"):
            rows = {False: [], True: []}
            for event in events:
                start = time.perf_counter()
                labels = get_method("lstm", arcs=arcs).cluster_labels(event)  # one clustering, both seedings
                clustered = time.perf_counter() - start
                for fit in (False, True):
                    method = get_method("lstm", arcs=arcs, seed_fit=fit, ensemble=False)
                    start = time.perf_counter()
                    seeds = method.seeds_of_clusters(event, labels)
                    seeded = time.perf_counter()
                    tracks = method.follow(event, seeds, labels)
                    rows[fit].append((seed_quality(event, seeds), evaluate(event.truth, event.particles, tracks),
                                      (clustered, seeded - start, time.perf_counter() - seeded)))
            for fit, per_event in rows.items():
                lines.append(f"{set_name} | {arcs} | {'yes' if fit else 'no'} | " + _row(per_event))
                print(lines[-1], flush=True)
        fits = {"path": "true seeds"}
        if args.truth_only:
            fits["point"] = "true seeds, nearest hit to each predicted point (the seed's fit)"
        for fit, label in fits.items() if args.truth or args.truth_only or args.seedings and not args.grid else ():
            method = get_method("lstm", seeding="truth", fit=fit, ensemble=False)
            per_event = []
            for event in events:
                seeds = true_seeds(event)
                start = time.perf_counter()
                tracks = method.follow(event, seeds)
                per_event.append((seed_quality(event, seeds), evaluate(event.truth, event.particles, tracks),
                                  (0.0, 0.0, time.perf_counter() - start)))
            lines.append(f"{set_name} | {label} | - | " + _row(per_event))
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    name = "lstm_seeds_truth.txt" if args.truth_only else "lstm_seeds_seedings.txt" if args.seedings else \
        "lstm_seeds_grid.txt" if args.grid else "lstm_seeds.txt"
    write_result(name, text)
    print(text)


def parse_event_arguments(parser: argparse.ArgumentParser, events: int) -> argparse.Namespace:
    """``parser`` with the events' options added (``--data``, ``--events`` defaulting to ``events``, ``--lists``,
    ``--lists-data``), parsed; lists outside the development ones 1000-1009 are a usage error."""
    parser.add_argument("--data", default="/tmp/deepreco-bench/ttbar-mu200-seed1000-n3")
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--lists", type=int, nargs="*", default=[1001, 1003])
    parser.add_argument("--lists-data", default="/tmp/deepreco-bench/fit-reallists")
    args = parser.parse_args()
    if any(not 1000 <= n <= 1009 for n in args.lists):
        parser.error("--lists: development lists 1000 to 1009 only")
    return args


def event_sets(data: str, n_events: int, lists: list[int], lists_data: str) -> dict[str, list]:
    """The first ``n_events`` of the generated events in ``data`` and the development ``lists`` simulated with
    seed 1 in ``lists_data`` (made there when absent): {set name: events}."""
    from deepreco.io import Dataset, read_event
    from deepreco.simulate.dataset import simulate_dataset

    sets = {"tracking events": [e for _, e in zip(range(n_events), Dataset(data), strict=False)]}
    for number in lists:
        out = Path(lists_data) / str(number)
        if not any(out.glob("*-hits.parquet")):
            simulate_dataset("trackml", 1, out, seed=1, format="parquet", first_event_id=number,
                             particles=str(LISTS / f"event00000{number}-particles.csv.gz"))
    if lists:
        sets["real lists " + ", ".join(map(str, lists))] = [
            read_event(next((Path(lists_data) / str(n)).glob("*-hits.parquet"))) for n in lists]
    return sets


def write_result(name: str, text: str) -> None:
    """``text`` as benchmarks/results/``name``, whole or not at all."""
    out = Path(__file__).resolve().parent / "results" / name
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
