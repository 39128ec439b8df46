"""The condensation thresholds of the networks trained under pile-up, chosen again on more validation events.

The training (`benchmarks/calo_pileup_train.py`) chooses (t_beta, t_d) on its 16 validation events by their hard
particles (`deepreco.calo.train.tune_condensation`: efficiency - (fake share + resolution) / 2); with ~85 hard
particles the validation efficiency moves by 0.1 between neighbouring thresholds. This script simulates ``--more``
further validation events of the same settings (validation events 16, 17, ...: the same seeds the training's
command would use with more ``val_events``), kept in ``EVENTS_DIR/val_more.pkl``, and applies the same criterion to
all of them. It reports; the model files are left as they are.

    python benchmarks/calo_pileup_thresholds.py --events-dir DIR --models-dir DIR --more 64 --workers 2
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from functools import partial
from pathlib import Path

CONFIGS = Path(__file__).parent / "configs"


def more_events(events_dir: Path, n_first: int, more: int, workers: int) -> list:
    from deepreco.calo.train import VALID_SEED, _training_event
    from deepreco.distributed import run_events
    from deepreco.training import settings_for

    path = events_dir / "val_more.pkl"
    if path.exists():
        events = pickle.loads(path.read_bytes())
        if len(events) == more:
            return events
    settings = settings_for("calo-garnet", CONFIGS / "calo-garnet-pileup.yaml")
    events = run_events(partial(_training_event, settings, "val", VALID_SEED), list(range(n_first, n_first + more)),
                        workers=workers, progress=True, label="more validation events")
    partial_path = path.with_suffix(".part")
    partial_path.write_bytes(pickle.dumps(events))
    partial_path.replace(path)
    return events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events-dir", type=Path, required=True, help="the training's folder, with events.pkl")
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("--models", default="gravnet,garnet")
    ap.add_argument("--more", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import torch

    from deepreco.calo.modelfile import load_model
    from deepreco.calo.train import tune_condensation

    torch.set_num_threads(1)
    val = pickle.loads((args.events_dir / "events.pkl").read_bytes())["val"]
    events = val + more_events(args.events_dir, len(val), args.more, args.workers)
    report = {}
    for name in args.models.split(","):
        path = args.models_dir / f"calo_{name}.pt"
        model, record = load_model(path, (name,))
        t0 = time.perf_counter()
        best = tune_condensation(model, events)
        report[name] = {"before": {k: record.get(k) for k in ("t_beta", "t_d")}, "now": best,
                        "events": len(events), "seconds": time.perf_counter() - t0}
        print(f"{name}: on {len(events)} validation events t_beta {best['t_beta']}, t_d {best['t_d']} (efficiency "
              f"{best['efficiency']:.3f}, fake share {best['fake_rate']:.3f}, resolution "
              f"{best['energy_resolution']:.3f}); on {len(val)}: t_beta {record.get('t_beta')}, "
              f"t_d {record.get('t_d')}", flush=True)
    print(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
