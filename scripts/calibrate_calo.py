"""Learn the energy calibration of the calorimeter methods (`deepreco.calo.calibration`) and ship it.

    python scripts/calibrate_calo.py                      # every method, into src/deepreco/data/models/
    python scripts/calibrate_calo.py --methods clue --per 50 --out /tmp/models --models-dir /tmp/models

Writes calo_calibration.json beside the models (the entries of methods not named are kept) and a JSON report
(``--report``; by default benchmarks/results/calo_calibration.json for the shipped models' folder, else
calo_calibration_report.json in ``--out``, so that calibrating other models leaves the shipped report alone): the
curves and each method's median response per species on the calibration set before and after. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from deepreco.calo.calibration import calibrate
from deepreco.calo.evaluate import DEFAULT_METHODS
from deepreco.errors import DeepRecoError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "deepreco" / "data" / "models"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--per", type=int, default=120, help="isolated particles per species")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models-dir", type=Path, default=None, help="calo_<name>.pt (default: shipped)")
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--report", type=Path, default=None,
                        help="the JSON report (default: benchmarks/results/calo_calibration.json for the shipped "
                             "models' folder, else OUT/calo_calibration_report.json)")
    args = parser.parse_args(argv)
    if args.report is None:
        shipped = args.out.resolve() == SHIPPED.resolve()
        args.report = ROOT / "benchmarks" / "results" / "calo_calibration.json" if shipped else \
            args.out / "calo_calibration_report.json"
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        written = calibrate(args.methods.split(","), args.models_dir, args.out, args.per, args.seed,
                            log=lambda s: print(s, file=sys.stderr, flush=True))
    except DeepRecoError as exc:  # too few particles, an unknown method: one line (methods done before are kept)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"command": "python scripts/calibrate_calo.py " + " ".join(argv or sys.argv[1:]),
                                       "seconds": time.perf_counter() - t0, "methods": written}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
