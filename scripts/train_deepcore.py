"""Re-run the training of the shipped DeepCore model: simulate the events (fixed seeds), write shards, train.

    python scripts/train_deepcore.py    # the shipped model: 2,400 events, 39,623 windows, 2 epochs; about
                                        # 2.5 + 26 minutes on one thread of a shared 2-core Xeon
    python scripts/train_deepcore.py --events 200 --epochs 1 --out /tmp/deepcore.pt   # a quick look

The seed's recipe (its stepped learning rate at lr-scale 1, the new loss from epoch 191 of 246, windows on
merged clusters and on the jet axis):

    nice -n 5 python scripts/train_deepcore.py --recipe --events 8000 --lr-scale 5 --out build/deepcore-recipe.pt
    nice -n 5 python scripts/train_deepcore.py --recipe ... --resume build/deepcore-recipe.pt.checkpoints/last.ckpt

Events are Pythia dijets with pT-hat 1.8 to 2.4 TeV, seeds 1,000,000 onwards (the evaluation uses small seeds,
so the two never share an event). Shards are kept in --work and reused when the script runs again.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from deepreco.deepcore.train import NEW_LOSS_FROM, train_model

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "deepreco" / "data" / "models" / "deepcore.pt"
FIRST_SEED = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    # x5: the slides' schedule (2e-4 ... 1e-7) is for 246 epochs of 200k-22M windows; a 2-epoch CPU run starts at 1e-3
    parser.add_argument("--lr-scale", type=float, default=5.0, help="multiplies every step of the LR schedule")
    parser.add_argument("--recipe", action="store_true", help="the seed's recipe: the new loss from epoch 191 of "
                        "246, windows on merged clusters only and on the jet axis")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many batches (the schedule "
                        "and the new loss then fit into them)")
    parser.add_argument("--checkpoint-every-steps", type=int, default=None)
    parser.add_argument("--resume", type=Path, default=None, help="go on from this checkpoint")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("build/deepcore/shards"))
    parser.add_argument("--out", type=Path, default=SHIPPED)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    recipe = {"new_loss_from": NEW_LOSS_FROM, "merged_only": True, "jet_axis": True} if args.recipe else {}
    r = train_model(args.out, resume=args.resume,
                    overrides={"events": args.events, "first_seed": FIRST_SEED, "val_events": 0,
                               "events_per_shard": 20, "work": str(args.work), "epochs": args.epochs,
                               "batch_size": args.batch_size, "lr_scale": args.lr_scale,
                               "checkpoint_every_steps": args.checkpoint_every_steps, "max_steps": args.max_steps,
                               **recipe})
    shutil.rmtree(r["checkpoints"], ignore_errors=True)  # the shipped file is the model, not the checkpoints
    print(json.dumps({k: r[k] for k in ("samples", "steps", "train_loss", "seconds", "threads", "processes")}))
    print(f"wrote {args.out}")

if __name__ == "__main__":
    main()
