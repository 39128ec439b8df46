"""Train the LSTM model shipped with deepreco (src/deepreco/data/models/lstm_tracks.pt, which extends tracks
outward; ``--directions outward,inward`` also trains lstm_tracks_inward.pt, which completes DBSCAN seeds toward
the beam line and is not shipped).

Simulates its own training events (Pythia 8 ttbar + mu = 200 pile-up on the TrackML detector, fixed seeds,
distinct from any evaluation set's), then trains. Anyone can re-run it:

    python scripts/train_lstm.py                      # see the README for the time it took
    python scripts/train_lstm.py --events 2 --epochs 2 --out /tmp/quick.pt   # a quick check

The training time and the machine are stored in the model file (``info``) and printed.
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
DEFAULT_OUT = ROOT / "src" / "deepreco" / "data" / "models" / "lstm_tracks.pt"
DATA_SEED = 20240004  # training events; evaluation sets use other seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=24, help="simulated ttbar mu=200 training events")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights, shuffling, split)")
    parser.add_argument("--model", default="lstm", help="lstm, bilstm or a preset of the seed's sizes")
    parser.add_argument("--hidden", default="", help="hidden sizes, e.g. 64,64 (default: the model's)")
    parser.add_argument("--data", type=Path, default=None, help="folder for the training events (kept; reused)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the outward model; the inward one goes "
                        "beside it, named <stem>_inward<suffix>")
    parser.add_argument("--directions", default="outward", help="which models to train: outward, inward or both "
                        "(outward,inward); the inward one is optional (LSTMTracks(complete_inward=True))")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    args = parser.parse_args()

    import torch

    from deepreco.reconstruct.lstm import train_lstm
    from deepreco.simulate.dataset import training_events

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = training_events("lstm", args.events, DATA_SEED, args.data, args.workers)
    simulated = time.perf_counter() - start
    hidden = tuple(int(h) for h in args.hidden.split(",")) if args.hidden else None
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    report = {"simulation_seconds": round(simulated, 1), "machine": machine, "threads": args.threads,
              "events": args.events, "epochs": args.epochs}
    for direction in args.directions.split(","):
        out = args.out if direction == "outward" else args.out.with_name(f"{args.out.stem}_inward{args.out.suffix}")
        figures = train_lstm(data, out, epochs=args.epochs, seed=args.seed, model=args.model, hidden=hidden,
                             direction=direction)
        shutil.rmtree(figures["checkpoints"], ignore_errors=True)  # the shipped file is the model, not the checkpoints
        report[direction] = {"training_seconds": round(figures["seconds"], 1), "best_epoch": figures["best_epoch"],
                             "best_val_loss": round(figures["best_val_loss"], 5), "n_train": figures["n_train"],
                             "n_val": figures["n_val"], "n_parameters": figures["n_parameters"],
                             "size_kb": round(out.stat().st_size / 1024, 1), "out": str(out)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
