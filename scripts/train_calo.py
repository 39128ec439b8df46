"""Re-train the shipped calorimeter models (GravNet, DGCNN/EdgeConv, DRN) on simulated gun events.

    python scripts/train_calo.py                       # all three into src/deepreco/data/models/
    python scripts/train_calo.py --models gravnet --steps gravnet=3000 --out /tmp/models

The same library function as ``deepreco calo train`` (the one trainer: settings data/configs/calo-<name>.yaml,
checkpoints in calo_<name>.pt.checkpoints/); writes calo_<name>.pt and a JSON report
(benchmarks/results/calo_training.json by default). Each network's condensation thresholds (t_beta, t_d) are
chosen on the validation events after training and stored in its file.

The shipped models were made before the one trainer, by this script's earlier loop (one event drawn at random a
step, with replacement), with these commands, one model a run, one torch thread on the 2-core machine shared
with other jobs (they are kept as they were; a retraining on the trainer gives other weights):

    python scripts/train_calo.py --models gravnet --report benchmarks/results/calo_training_gravnet.json
    python scripts/train_calo.py --models edgeconv --report benchmarks/results/calo_training_edgeconv.json
    python scripts/train_calo.py --models drn --report benchmarks/results/calo_training_drn.json

(5,500, 2,000 and 1,200 steps on 300 gun events; the DRN last: it learns from the clusters of the networks in
--out as well as from truth clusters). The shipped DGCNN was replaced in session 21 by one trained on the one
trainer on the mix source (gun events, isolated particles, close pairs; the README's "Networks trained on a mix of
events"), record in benchmarks/results/calo_training_edgeconv.json:

    deepreco calo train --models edgeconv --source mix --events 600 --steps 3000 --threads 1 --out DIR
    python scripts/calibrate_calo.py --methods edgeconv --per 60      # its calibration curve
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from deepreco.calo.train import train_models

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "deepreco" / "data" / "models")
    parser.add_argument("--report", type=Path, default=ROOT / "benchmarks" / "results" / "calo_training.json")
    parser.add_argument("--models", default="gravnet,edgeconv,drn")
    parser.add_argument("--config", type=Path, help="YAML settings of one network")
    parser.add_argument("--events", type=int)
    parser.add_argument("--steps", type=int, help="steps of every network (default: each its own)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--resume", type=Path, help="a checkpoint to go on from (calo_<name>.pt.checkpoints/...)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    report = train_models(args.out, models=None if args.resume else tuple(args.models.split(",")), config=args.config,
                         overrides={"events": args.events, "max_steps": args.steps, "seed": args.seed},
                         resume=args.resume, progress=sys.stderr.isatty())
    report["total_seconds"] = time.perf_counter() - t0
    report["machine"] = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), " \
                        f"torch {torch.__version__}"
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
