"""Re-train the shipped calorimeter models (GravNet, DGCNN/EdgeConv, DRN) on simulated gun events.

    python scripts/train_calo.py                       # all three into src/deepreco/data/models/
    python scripts/train_calo.py --models gravnet --steps gravnet=3000 --out /tmp/models

The same library function as ``deepreco calo train``; writes calo_<name>.pt and a JSON report
(benchmarks/results/calo_training.json by default). Each network's condensation thresholds (t_beta, t_d) are
tuned on 100 validation events after training and stored in its file.

The shipped models were made with these defaults, one model a run (the same as all three in one run: each
model's weights and event order come from the seed alone), one torch thread on the 2-core machine shared
with other jobs:

    python scripts/train_calo.py --models gravnet --report benchmarks/results/calo_training_gravnet.json
    python scripts/train_calo.py --models edgeconv --report benchmarks/results/calo_training_edgeconv.json
    python scripts/train_calo.py --models drn --report benchmarks/results/calo_training_drn.json

(5,500, 2,000 and 1,200 steps on 300 gun events; the DRN last: it learns from the clusters of the networks in
--out as well as from truth clusters).
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
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--steps", action="append", default=[], help="name=steps, e.g. gravnet=2000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="go on from the models already in --out")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {k: int(v) for k, v in (s.split("=") for s in args.steps)}
    t0 = time.perf_counter()
    report = train_models(args.out, models=tuple(args.models.split(",")), n_events=args.events, steps=steps,
                          seed=args.seed, progress=sys.stderr.isatty(), resume=args.resume)
    report["total_seconds"] = time.perf_counter() - t0
    report["machine"] = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), " \
                        f"torch {torch.__version__}"
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
