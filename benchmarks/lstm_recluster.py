"""Seed 004's DBSCAN seeding iterated: cluster, seed (`seeding.hypothesis_seeds`), take the seeded clusters' hits
away, cluster the hits left again (the same arcs, then a larger eps), and count what each round adds.

    python benchmarks/lstm_recluster.py [--list 1001] [--eps 0.008 0.008 0.012 0.016]

One event simulated (seed 1) from a real development list (1000-1009), as `benchmarks/lstm_seeds.py` makes it; the
learned arcs; round i clusters with ``--eps[i]``. Figures as `seeding.seed_quality` defines them, over the seeds of
all rounds so far. One thread. Output: ``benchmarks/results/lstm_recluster.txt``.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
LISTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "trackml" / "train"


def main() -> None:
    import numpy as np
    from lstm_seeds import write_result

    from deepreco.io import read_event
    from deepreco.reconstruct.dbscan import DBSCANTracks
    from deepreco.reconstruct.lstm.method import learned_arcs
    from deepreco.reconstruct.lstm.seeding import hypothesis_seeds, seed_quality
    from deepreco.simulate.dataset import simulate_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=int, default=1001)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.008, 0.008, 0.012, 0.016])
    parser.add_argument("--lists-data", default="/tmp/deepreco-bench/fit-reallists")
    args = parser.parse_args()
    if not 1000 <= args.list <= 1009:
        parser.error("--list: development lists 1000 to 1009 only")
    folder = Path(args.lists_data) / str(args.list)
    if not any(folder.glob("*-hits.parquet")):
        simulate_dataset("trackml", 1, folder, seed=1, format="parquet", first_event_id=args.list,
                         particles=str(LISTS / f"event00000{args.list}-particles.csv.gz"))
    event = read_event(next(folder.glob("*-hits.parquet")))
    free = np.ones(event.n_hits, bool)
    kept = []
    lines = [f"list {args.list} simulated with seed 1 ({event.n_hits} hits), learned arcs, one thread",
             "round | eps | hits clustered | new seeds | new perfect | all seeds | all perfect | tracks seeded | s"]
    for i, eps in enumerate(args.eps):
        start = time.perf_counter()
        per_hypothesis = []
        DBSCANTracks(**{**learned_arcs(), "eps": eps}).cluster(event.hits[free], per_hypothesis)
        full = []
        for labels in per_hypothesis:
            whole = np.full(event.n_hits, -1, np.int64)
            whole[free] = labels
            full.append(whole)
        seeds, labels = hypothesis_seeds(event, full)
        seconds = time.perf_counter() - start
        kept.append(seeds)
        new, every = seed_quality(event, seeds), seed_quality(event, np.concatenate(kept))
        lines.append(f"{i} | {eps} | {int(free.sum())} | {len(seeds)} | {new['perfect']:.3f} | {every['n_seeds']} | "
                     f"{every['perfect']:.3f} | {every['seeded']:.3f} of {every['tracks']} | {seconds:.1f}")
        print(lines[-1], flush=True)
        free &= labels < 0
    write_result("lstm_recluster.txt", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
