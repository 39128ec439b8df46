"""Does `ckf`'s later passes (displaced pixel triplets, strip-barrel triplets) find what `gnn` misses?

    python benchmarks/gnn_later_passes.py [--lists 1001] [--release 4 5 6 7 8]

On events simulated from real development lists (seed 1, `real_lists`), `gnn` runs, then `CKFTracks.extend`
runs the later passes on the hits gnn left free; then again after releasing the hits of gnn's tracks shorter
than each ``--release`` size. One thread; CPU seconds of the passes. Results: ``results/gnn_later_passes.txt``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001])
    parser.add_argument("--release", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    args = parser.parse_args()
    import numpy as np
    import pandas as pd
    import torch
    from real_lists import real_list_folder

    from deepreco.io import read_event
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method

    torch.set_num_threads(1)
    folder = real_list_folder(args.lists, Path("/tmp/deepreco-bench/lists-seed1-" + "_".join(map(str, args.lists))))
    gnn, ckf = get_method("gnn"), get_method("ckf")
    lines = ["events simulated from real lists (seed 1), one thread; score = TrackML score", ""]
    for number in args.lists:
        event = read_event(folder / f"event{number:09d}-hits.parquet")
        hit_id = event.hits["hit_id"].to_numpy()

        def score(labels, event=event, hit_id=hit_id):
            keep = labels >= 0
            tracks = pd.DataFrame({"hit_id": hit_id[keep], "track_id": labels[keep]})
            return evaluate(event.truth, event.particles, tracks)["score"]

        found = gnn.reconstruct(event)
        base = np.full(event.n_hits, -1, np.int64)
        base[pd.Index(hit_id).get_indexer(found["hit_id"])] = found["track_id"].to_numpy()
        sizes = np.bincount(base[base >= 0])
        lines.append(f"list {number}: gnn {score(base):.4f}, {(base >= 0).mean():.3f} of the hits in its "
                     f"{(sizes > 0).sum()} tracks")
        for n in [0, *args.release]:
            labels = base.copy()
            labels[(labels >= 0) & (sizes < n)[np.maximum(labels, 0)]] = -1
            before = score(labels)
            start = time.process_time()
            extended = ckf.extend(event, labels)
            cpu = time.process_time() - start
            added = len(np.unique(extended[extended >= 0])) - len(np.unique(labels[labels >= 0]))
            what = "gnn's tracks as they are" if n == 0 else f"gnn's tracks of < {n} hits released"
            lines.append(f"  {what}: {before:.4f}, with the later passes {score(extended):.4f} "
                         f"({added} tracks added, {cpu:.1f} CPU s)")
            print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gnn_later_passes.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
