"""Seed 004's "inference & ensembling" with members of equal quality, models per kind of track and other input
sets (issue 22): the `lstm` method fed true seeds (the first five hits of each particle with >= 10 hits) with the
shipped model, each member of ``scripts/train_lstm_members.py``, ensembles of them (`lstm.method.predict_mean`),
the low-pT model beside one for the others (``low_pt_model``), the models of other input sets (``xyz_s0``,
``cells_s0``); then the best ensemble against the shipped model with the seeds of `gnn` after its Kalman filter
(``seeding="gnn"``, ``gnn={"kalman": True}``).

    python benchmarks/lstm_ensembles.py --models /tmp/lstm-members   # the folder of train_lstm_members.py

Events: the first 3 of the tracking benchmark's (ttbar + mu = 200, seed 1000) and real lists 1001 and 1003
simulated with seed 1, as `benchmarks/lstm_seeds.py` makes them (that script simulates them when missing). One
thread. Output: ``benchmarks/results/lstm_ensembles.txt`` (TrackML score, efficiency, fake rate, seconds of the
extension an event, mean over each set's events).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def follow_scores(method, events, seeds) -> tuple[dict, float]:
    """``method.follow`` on each event with its seeds: the mean TrackML score, efficiency and fake rate, and the
    mean seconds an event."""
    import numpy as np

    from deepreco.metrics import evaluate

    scores, seconds = [], []
    for event, s in zip(events, seeds, strict=True):
        start = time.perf_counter()
        tracks = method.follow(event, s)
        seconds.append(time.perf_counter() - start)
        scores.append(evaluate(event.truth, event.particles, tracks))
    return {k: float(np.mean([r[k] for r in scores])) for k in ("score", "efficiency", "fake_rate")}, \
        float(np.mean(seconds))


def main() -> None:
    import torch
    from lstm_seeds import write_result

    from deepreco.io import Dataset, read_event
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm.model import shipped_model_path
    from deepreco.reconstruct.lstm.seeding import true_seeds

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="the folder of scripts/train_lstm_members.py")
    parser.add_argument("--data", default="/tmp/deepreco-bench/ttbar-mu200-seed1000-n3")
    parser.add_argument("--lists-data", default="/tmp/deepreco-bench/fit-reallists")
    args = parser.parse_args()

    sets = {"tracking (3)": [e for _, e in zip(range(3), Dataset(args.data), strict=False)],
            "real lists 1001, 1003": [read_event(next((Path(args.lists_data) / str(n)).glob("*-hits.parquet")))
                                      for n in (1001, 1003)]}
    m = {name: str(args.models / f"{name}.pt") for name in ("all_s0", "all_s1", "all_s2", "low", "high", "xyz_s0",
                                                             "cells_s0")}
    shipped = str(shipped_model_path())
    configs = {
        "shipped": {"ensemble": False},
        "all_s0": {"model": m["all_s0"]}, "all_s1": {"model": m["all_s1"]}, "all_s2": {"model": m["all_s2"]},
        "ensemble shipped + all_s0": {"models": [shipped, m["all_s0"]]},
        "ensemble all_s0 + all_s1": {"models": [m["all_s0"], m["all_s1"]]},
        "ensemble all_s0 + all_s1 + all_s2": {"models": [m["all_s0"], m["all_s1"], m["all_s2"]]},
        "ensemble shipped + all_s0 + all_s1": {"models": [shipped, m["all_s0"], m["all_s1"]]},
        "ensemble shipped + all_s0 + all_s1 + all_s2": {"models": [shipped, m["all_s0"], m["all_s1"], m["all_s2"]]},
        "all_s0, low below 0.5 GeV": {"model": m["all_s0"], "low_pt_model": m["low"]},
        "high, low below 0.5 GeV": {"model": m["high"], "low_pt_model": m["low"]},
        "shipped, low below 0.5 GeV": {"low_pt_model": m["low"]},
        "xyz_s0 (inputs polar+xyz)": {"model": m["xyz_s0"]},
        "cells_s0 (inputs polar+xyz+cells)": {"model": m["cells_s0"]},
    }
    best = "ensemble shipped + all_s0 + all_s1 + all_s2"
    lines = [f"tracking events: the first 3 of {args.data}; real lists 1001, 1003 simulated with seed 1 "
             f"({args.lists_data}); members: {args.models}; one thread",
             "set | seeds | models | TrackML score | efficiency | fake rate | s extension / event"]
    for set_name, events in sets.items():
        seeds = {"true seeds": [true_seeds(e) for e in events]}
        gnn = get_method("lstm", seeding="gnn", gnn={"kalman": True})
        seeds["gnn+kalman"] = [gnn.seeds(e) for e in events]
        runs = [("true seeds", c) for c in configs] + [("gnn+kalman", c) for c in ("shipped", best)]
        for kind, name in runs:
            mean, seconds = follow_scores(get_method("lstm", seeding="truth", **configs[name]), events, seeds[kind])
            lines.append(f"{set_name} | {kind} | {name} | {mean['score']:.4f} | {mean['efficiency']:.4f} | "
                         f"{mean['fake_rate']:.4f} | {seconds:.1f}")
            print(lines[-1], flush=True)
    write_result("lstm_ensembles.txt", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
