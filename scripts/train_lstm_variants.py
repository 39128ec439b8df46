"""Train seed 004's four LSTM variants (the presets ``bilstm-seed``, ``lstm-2048``, ``lstm-1024``,
``lstm-256-512-1024``) on one set of training events, each with its own share of the events, so that the four fit
in under half an hour of one CPU core. Anyone can re-run it:

    OMP_NUM_THREADS=1 nice -n 5 python scripts/train_lstm_variants.py --out /tmp/lstm-variants   # 27 min

Training events, simulated once into ``--data`` (one folder, interleaved so that any first N mix both kinds):
Pythia 8 ttbar + mu = 200 (seeds ``20240004 + k``, apart from the benchmarks' 1000) and the real TrackML development
particle lists 1000, 1002, 1004-1009 simulated with seed 11 (1001 and 1003 are left out: the benchmarks test on
them; 1010-1020 are never read). All tracks with >= 10 hits over the whole detector (no x, y, z > 0 cut: the
features are taken relative to each track's first azimuth, so every octant teaches the same thing).

Each variant trains ``--epochs`` epochs on the first N events of the folder (N: ``EVENTS`` of the variant times
``--scale``, chosen from each preset's measured speed on one thread so that each takes about 5 minutes), with
the shipped settings (``data/configs/lstm.yaml``) otherwise. Checkpoints are kept in
``<out>/<variant>.pt.checkpoints`` (``--resume`` goes on from them); the record of each run (losses, seconds,
threads) is in its model file and in ``<out>/variants.json``. The model files (up to 67 MB) are not committed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
LISTS = ROOT.parent / "shared" / "data" / "trackml" / "train"  # beside the checkout, as benchmarks/real_lists.py
TRAIN_LISTS = (1000, 1002, 1004, 1005, 1006, 1007, 1008, 1009)  # development lists, not the benchmarks' 1001, 1003
DATA_SEED = 20240004
LIST_SEED = 11
# events per variant: one epoch (about 5,500 windows an event) in about 5 minutes at the preset's speed on one thread
EVENTS = {"bilstm-seed": 6, "lstm-1024": 5, "lstm-256-512-1024": 3, "lstm-2048": 2}


def training_data(folder: Path, n_ttbar: int, lists=TRAIN_LISTS) -> Path:
    """ttbar event k as id 2k, list i as id 2i + 1, in one folder; simulated once (resumed if cut short)."""
    from deepreco.simulate.dataset import simulate_dataset

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(max(n_ttbar, len(lists))):
        if k < n_ttbar:
            simulate_dataset("ttbar", 1, folder, seed=DATA_SEED + k, format="parquet", resume=True,
                             first_event_id=2 * k, pileup=200)
        if k < len(lists):
            simulate_dataset("trackml", 1, folder, seed=LIST_SEED, format="parquet", resume=True,
                             first_event_id=2 * k + 1, particles=str(LISTS / f"event{lists[k]:09d}-particles.csv.gz"))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the model files")
    parser.add_argument("--data", type=Path, default=Path("/tmp/deepreco-lstm-variants-train"))
    parser.add_argument("--ttbar", type=int, default=8, help="ttbar mu = 200 training events")
    parser.add_argument("--variants", default=",".join(EVENTS))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply each variant's events (at least 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="go on from each variant's last checkpoint")
    args = parser.parse_args()

    import torch

    from deepreco.reconstruct.lstm import train_lstm

    torch.set_num_threads(1)
    start = time.perf_counter()
    data = training_data(args.data, args.ttbar)
    report = {"data": str(data), "simulation_seconds": round(time.perf_counter() - start, 1), "threads": 1,
              "ttbar_events": args.ttbar, "lists": list(TRAIN_LISTS), "list_seed": LIST_SEED, "variants": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    summary = args.out / "variants.json"
    if summary.exists():
        report["variants"] = json.loads(summary.read_text()).get("variants", {})
    for variant in args.variants.split(","):
        out = args.out / f"{variant}.pt"
        if out.exists() and variant in report["variants"]:
            continue  # done in an earlier run
        last = out.with_name(out.name + ".checkpoints") / "last.ckpt"
        n_events = max(1, round(EVENTS[variant] * args.scale))
        print(f"{variant}: {n_events} events, {args.epochs} epoch(s)", flush=True)
        rec = train_lstm(data, out, epochs=args.epochs, seed=args.seed, model=variant, max_events=n_events,
                         progress=False, resume=last if args.resume and last.exists() else None)
        report["variants"][variant] = {"events": n_events, "epochs": args.epochs, "n_train": rec["n_train"],
                                       "n_val": rec["n_val"], "n_parameters": rec["n_parameters"],
                                       "seconds": round(rec["seconds"], 1), "train_loss": rec["train_loss"],
                                       "val_loss": rec["val_loss"], "best_val_loss": rec["best_val_loss"]}
        print(json.dumps({variant: report["variants"][variant]}), flush=True)
        tmp = summary.with_name(summary.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, summary)


if __name__ == "__main__":
    main()
