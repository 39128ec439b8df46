"""Train LSTMs of the shipped size for ensembles and for models per kind of track (issue 22): ``all_s<seed>.pt``
on every training window (one per ``--seeds``), with ``--kinds`` ``low.pt`` (windows whose first five hits'
circle has pT < ``--split`` GeV, `features.seed_pt`) and ``high.pt`` (the others), and with ``--inputs``
``xyz_s0.pt`` and ``cells_s0.pt`` (the input sets ``polar+xyz`` and ``polar+xyz+cells``, seed 0). Anyone can
re-run it:

    OMP_NUM_THREADS=1 nice -n 5 python scripts/train_lstm_members.py --out /tmp/lstm-members --kinds --inputs

Training events: those of ``scripts/train_lstm_variants.py`` (8 Pythia 8 ttbar + mu = 200 events and the real
development lists 1000, 1002, 1004-1009 simulated with seed 11; simulated once into ``--data``, reused). Settings:
the shipped ``data/configs/lstm.yaml`` with ``--epochs`` (40) and the seed; one thread. Each record (losses,
seconds) is in its model file and in ``<out>/members.json``. The model files (0.2 MB each) are not shipped:
``benchmarks/lstm_ensembles.py`` measures them against the shipped model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the model files")
    parser.add_argument("--data", type=Path, default=Path("/tmp/deepreco-lstm-variants-train"))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--kinds", action="store_true", help="also low.pt and high.pt")
    parser.add_argument("--split", type=float, default=0.5, help="the pT [GeV] between the two kinds")
    parser.add_argument("--inputs", action="store_true", help="also xyz_s0.pt and cells_s0.pt")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()

    import torch
    from train_lstm_variants import training_data

    from deepreco.reconstruct.lstm import train_lstm

    torch.set_num_threads(1)
    start = time.perf_counter()
    data = training_data(args.data, 8)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = args.out / "members.json"
    report = json.loads(summary.read_text()) if summary.exists() else {"members": {}}
    report.update({"data": str(data), "simulation_seconds": round(time.perf_counter() - start, 1), "threads": 1})
    jobs = [(f"all_s{seed}", seed, {}) for seed in args.seeds]
    if args.kinds:
        jobs += [("low", 0, {"pt_range": [0.0, args.split]}), ("high", 0, {"pt_range": [args.split, 1e4]})]
    if args.inputs:
        jobs += [("xyz_s0", 0, {"inputs": "polar+xyz"}), ("cells_s0", 0, {"inputs": "polar+xyz+cells"})]
    for name, seed, extra in jobs:
        out = args.out / f"{name}.pt"
        if out.exists() and name in report["members"]:
            continue  # done in an earlier run
        config = None
        if extra:
            config = args.out / f"{name}.yaml"
            config.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in extra.items()))
        print(f"{name}: seed {seed}, {args.epochs} epochs {extra or ''}", flush=True)
        rec = train_lstm(data, out, epochs=args.epochs, seed=seed, progress=False, config=config)
        report["members"][name] = {"seed": seed, **extra, "epochs": args.epochs,
                                   "n_train": rec["n_train"], "n_val": rec["n_val"],
                                   "seconds": round(rec["seconds"], 1), "best_epoch": rec["best_epoch"],
                                   "best_val_loss": rec["best_val_loss"]}
        print(json.dumps({name: report["members"][name]}), flush=True)
        tmp = summary.with_name(summary.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, summary)


if __name__ == "__main__":
    main()
