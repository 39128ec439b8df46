"""How `lstm` picks a track's second hit on a layer where modules overlap (``overlap_fit``): ``layer`` (the
nearest free hit in the layer's distance, the default) against ``direction`` (the free hit nearest the track's
local direction, `lstm.assign.overlap_hits`), with the shipped model and the shipped ensemble (``ensemble=True``),
fed true seeds and the seeds of `gnn` after its Kalman filter.

    python benchmarks/lstm_overlaps.py

Events: the first 3 of the tracking benchmark's (ttbar + mu = 200, seed 1000) and real lists 1001 and 1003
simulated with seed 1, as `benchmarks/lstm_seeds.py` makes them (run it first when they are missing). One thread.
Output: ``benchmarks/results/lstm_overlaps.txt`` (TrackML score, efficiency, fake rate, mean over each set).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import torch
    from lstm_ensembles import follow_scores
    from lstm_seeds import write_result

    from deepreco.io import Dataset, read_event
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm.seeding import true_seeds

    torch.set_num_threads(1)
    data, lists = "/tmp/deepreco-bench/ttbar-mu200-seed1000-n3", Path("/tmp/deepreco-bench/fit-reallists")
    sets = {"tracking (3)": [e for _, e in zip(range(3), Dataset(data), strict=False)],
            "real lists 1001, 1003": [read_event(next((lists / str(n)).glob("*-hits.parquet"))) for n in (1001, 1003)]}
    lines = [f"tracking events: the first 3 of {data}; real lists 1001, 1003 simulated with seed 1 ({lists}); one "
             "thread", "set | seeds | models | overlap_fit | TrackML score | efficiency | fake rate"]
    for set_name, events in sets.items():
        gnn = get_method("lstm", seeding="gnn", gnn={"kalman": True})
        seeds = {"true seeds": [true_seeds(e) for e in events], "gnn+kalman": [gnn.seeds(e) for e in events]}
        for kind in seeds:
            for models, params in (("shipped", {"ensemble": False}), ("ensemble", {"ensemble": True})):
                for overlap in ("layer", "direction"):
                    method = get_method("lstm", seeding="truth", overlap_fit=overlap, **params)
                    mean, _ = follow_scores(method, events, seeds[kind])
                    lines.append(f"{set_name} | {kind} | {models} | {overlap} | {mean['score']:.4f} | "
                                 f"{mean['efficiency']:.4f} | {mean['fake_rate']:.4f}")
                    print(lines[-1], flush=True)
    write_result("lstm_overlaps.txt", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
