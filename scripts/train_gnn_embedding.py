"""Train the metric-learning hit embedding shipped with deepreco (src/deepreco/data/models/gnn_embedding.pt),
the second way of building the graph of the ``gnn`` pipeline (`deepreco.reconstruct.gnn.metric`).

Uses the GNN training events (scripts/train_gnn.py simulates them; this script does too when they are
missing): the first ``--events`` for training, the last ``--val`` to set the radius that keeps
``--efficiency`` of their true edges. Anyone can re-run it:

    python scripts/train_gnn_embedding.py          # see the README for the time it took

Its graph is measured beside the module map's by benchmarks/gnn_stages.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "deepreco" / "data" / "models" / "gnn_embedding.pt"
DATA_SEED = 20240008  # the GNN training events (scripts/train_gnn.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-events", type=int, default=64, help="events of the GNN training set")
    parser.add_argument("--events", type=int, default=12, help="training events (the first ones)")
    parser.add_argument("--val", type=int, default=4, help="validation events (the last ones)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60, help="steps per event and epoch")
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--efficiency", type=float, default=0.95, help="share of true edges the radius keeps")
    parser.add_argument("--k-max", type=int, default=32, help="most neighbours per hit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    import torch

    from deepreco.reconstruct.gnn.metric import train_embedding_model
    from deepreco.simulate.dataset import training_events

    torch.set_num_threads(args.threads)
    data = training_events("gnn", args.data_events, DATA_SEED)
    overrides = {"data": str(data), "events": args.events, "val": args.val, "epochs": args.epochs,
                 "steps_per_event": args.steps, "hidden": args.hidden, "dim": args.dim,
                 "efficiency": args.efficiency, "k_max": args.k_max, "seed": args.seed}
    info = train_embedding_model(args.out, overrides=overrides)
    info = {k: v for k, v in info.items() if k != "net"}
    if args.out.resolve() == DEFAULT_OUT.resolve():  # the shipped file is the model, not the checkpoints
        shutil.rmtree(info["checkpoints"], ignore_errors=True)
    print(json.dumps(info, indent=2, default=str))


if __name__ == "__main__":
    main()
