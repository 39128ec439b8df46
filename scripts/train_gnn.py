"""Train the graph-network track finder shipped with deepreco (src/deepreco/data/models/gnn_tracks.pt).

Simulates its own training events (Pythia 8 ttbar + mu = 200 pile-up on the TrackML detector, fixed seed,
distinct from any evaluation set's), then builds the module map and trains the edge filter and the interaction
network on the one trainer (`deepreco.reconstruct.gnn.train_gnn`; checkpoints in <out>.checkpoints/, removed at
the end when the shipped model is written). Anyone can re-run it:

    python scripts/train_gnn.py                    # a model from scratch; see the README for the time it took
    # the shipped model was made by the loops before the one trainer (same stages, not the same steps), in five
    # runs: the network of a first model (git commit e19daca) trained on further events, then continued
    # (--start-from, called --resume then):
    git show e19daca:src/deepreco/data/models/gnn_tracks.pt > /tmp/first.pt
    python scripts/train_gnn.py --network-events 12 --filter-epochs 20 --gnn-epochs 4 --gnn-lr 1e-3 \
        --init /tmp/first.pt --out /tmp/second.pt
    python scripts/train_gnn.py --network-events 24 --gnn-epochs 10 --gnn-lr 1e-3 --threads 1 --workers 1 \
        --start-from /tmp/second.pt --out /tmp/third.pt  # (the model of git commit 680e6cd) -> b71abcb's
    python scripts/train_gnn.py --network-events 24 --gnn-epochs 10 --gnn-lr 3e-4 --threads 1 --workers 1 \
        --start-from /tmp/third.pt --out /tmp/fourth.pt  # (threshold chosen again: the model of git commit b077439)
    python scripts/train_gnn.py --network-events 24 --gnn-epochs 12 --gnn-lr 2e-4 --seed 2 --threads 1 \
        --workers 1 --start-from /tmp/fourth.pt      # -> the shipped model, then its edge threshold chosen again:
    python -c "from deepreco.reconstruct.gnn.train import tune_edge_threshold as t; \
        t('src/deepreco/data/models/gnn_tracks.pt', '<the training events folder>', events=2)"
    python scripts/train_gnn.py --events 6 --network-events 2 --val 1 --filter-epochs 1 --gnn-epochs 1 \
        --out /tmp/quick.pt                        # a quick check

The figures of every stage, the time and the machine go into the model file (``info``), are printed, and are
written to benchmarks/results/train_gnn.json when the shipped model is trained.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "deepreco" / "data" / "models" / "gnn_tracks.pt"
DATA_SEED = 20240008  # training events; evaluation sets use other seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=64, help="simulated ttbar mu=200 events (map + networks)")
    parser.add_argument("--network-events", type=int, default=10, help="training events for the networks")
    parser.add_argument("--val", type=int, default=2, help="validation events (the last ones)")
    parser.add_argument("--filter-epochs", type=int, default=4)
    parser.add_argument("--filter-efficiency", type=float, default=0.985, help="share of true edges the filter keeps")
    parser.add_argument("--gnn-epochs", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--init", type=Path, default=None,
                        help="start the interaction network from this gnn model file's weights")
    parser.add_argument("--start-from", type=Path, default=None,
                        help="continue this gnn model: its module map and filter kept, its network trained further")
    parser.add_argument("--resume", type=Path, default=None, help="go on from this checkpoint of a killed run")
    parser.add_argument("--gnn-lr", type=float, default=None, help="peak learning rate of the network (2e-3)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights, sampling, order)")
    parser.add_argument("--data", type=Path, default=None, help="folder for the training events (kept; reused)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads")
    args = parser.parse_args()

    import torch

    from deepreco.reconstruct.gnn import train_gnn
    from deepreco.simulate.dataset import training_events

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = training_events("gnn", args.events, DATA_SEED, args.data, args.workers)
    simulated = time.perf_counter() - start
    overrides = {"data": str(data), "val": args.val, "seed": args.seed, "filter_epochs": args.filter_epochs,
                 "gnn_epochs": args.gnn_epochs, "hidden": args.hidden, "iterations": args.iterations,
                 "network_events": args.network_events, "filter_efficiency": args.filter_efficiency,
                 "init_gnn": str(args.init) if args.init else None, "learning_rate": args.gnn_lr,
                 "start_from": str(args.start_from) if args.start_from else None}
    figures = train_gnn(args.out, overrides=overrides, resume=args.resume, log=print)
    figures = {k: v for k, v in figures.items() if k != "net"}
    if args.out.resolve() == DEFAULT_OUT.resolve():  # the shipped file is the model, not the checkpoints
        shutil.rmtree(figures["checkpoints"], ignore_errors=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    report = {"simulation_seconds": round(simulated, 1), "machine": machine, "threads": args.threads,
              "size_kb": round(args.out.stat().st_size / 1024, 1), **figures}
    text = json.dumps(report, indent=2, default=float)
    if args.out.resolve() == DEFAULT_OUT.resolve():
        (ROOT / "benchmarks" / "results" / "train_gnn.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
