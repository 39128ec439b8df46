"""Learn the DBSCAN seeding's arc hypotheses from training events (seed 004's "generate possible arcs using
train data") and write them where the ``lstm`` method reads them, ``src/deepreco/data/dbscan_arcs.json``.

    python scripts/learn_arcs.py [--events 4] [--curvatures 11] [--z0 9] [--data DIR] [--out FILE]

The training events are the first ``--events`` of the graph network's training set (Pythia 8 ttbar + mu = 200
on the TrackML detector, seed 20240008, simulated once and shared with scripts/train_gnn.py); no benchmark
uses that seed. Each true track with at least 10 hits is fitted (curvature, z0), and the hypotheses are the
quantiles of the fitted values (`deepreco.reconstruct.dbscan.learn_arcs`).
"""

import argparse
import json
import os
from pathlib import Path

DATA_SEED = 20240008  # scripts/train_gnn.py's training events
N_SIMULATED = 11


def main() -> None:
    from deepreco.io import Dataset
    from deepreco.reconstruct.dbscan import learn_arcs
    from deepreco.simulate.dataset import training_events

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4)
    parser.add_argument("--curvatures", type=int, default=11)
    parser.add_argument("--z0", type=int, default=9)
    parser.add_argument("--data", default=None, help="folder of training events (default: simulated once)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "src/deepreco/data/dbscan_arcs.json")
    args = parser.parse_args()
    data = Dataset(args.data or training_events("gnn", N_SIMULATED, DATA_SEED))
    events = [event for _, event in zip(range(args.events), data, strict=False)]
    arcs = learn_arcs(events, args.curvatures, args.z0)
    arcs["source"] = (f"scripts/learn_arcs.py --events {args.events} --curvatures {args.curvatures} --z0 {args.z0}: "
                      f"{len(events)} ttbar + mu = 200 training events, seed {DATA_SEED}")
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(arcs, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps(arcs))


if __name__ == "__main__":
    main()
