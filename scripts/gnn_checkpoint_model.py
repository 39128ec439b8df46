"""A gnn model file from a checkpoint of a `deepreco train gnn` run's network stage, without building the
training graphs again: the weights of the best epoch so far (lowest validation loss), the module map, filter and
filter threshold the checkpoint holds; then the edge threshold chosen on the last ``--val`` events of the run's
data (its validation events), as the run itself would at its end. For a run that must stop before its last
epoch (a time budget); `deepreco train gnn --resume` finishes one that may go on.

    python scripts/gnn_checkpoint_model.py RUN.pt.checkpoints/last.ckpt --out MODEL.pt [--val 2]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--val", type=int, default=None, help="validation events (default: the run's)")
    args = parser.parse_args()

    from deepreco.reconstruct.gnn.model import EdgeFilter, GNNModel, InteractionNetwork
    from deepreco.reconstruct.gnn.module_map import ModuleMap
    from deepreco.reconstruct.gnn.train import _run_settings, tune_edge_threshold
    from deepreco.training import read_checkpoint

    blob = read_checkpoint(args.checkpoint, "gnn")
    meta = blob["deepreco"]
    settings = _run_settings(meta["settings"])
    best_loss, best_epoch, state = meta["best"]
    start = GNNModel.load(settings["start_from"]) if settings["start_from"] else None
    filt = start.filter if start else EdgeFilter(int(settings["filter_hidden"]))
    gnn = start.gnn if start else InteractionNetwork(int(settings["hidden"]), int(settings["iterations"]))
    # the best epoch's state is the pipeline's own (`Stages`: keys without the trainer's "net." prefix)
    filt.load_state_dict({k[len("filter."):]: v for k, v in state.items() if k.startswith("filter.")})
    gnn.load_state_dict({k[len("gnn."):]: v for k, v in state.items() if k.startswith("gnn.")})
    module_map = ModuleMap.read(io.BytesIO(state["module_map"].numpy().tobytes()), str(args.checkpoint))
    info = {"checkpoint": str(args.checkpoint), "best_epoch": int(best_epoch), "best_val_loss": float(best_loss),
            **{k: list(v) for k, v in meta["history"].items()}, "seconds": float(meta["seconds"])}
    model = GNNModel(module_map, filt.eval(), gnn.eval(), float(state["filter_threshold"]), 0.5, info, settings)
    model.save(args.out)
    tuned = tune_edge_threshold(args.out, settings["data"], events=int(args.val or settings["val"]))
    print(f"wrote {args.out}: epoch {best_epoch} of {len(meta['history']['val_loss'])} (validation loss "
          f"{best_loss:.4f}), edge threshold {tuned['edge_threshold']}, validation score {tuned['val_score']:.4f}")


if __name__ == "__main__":
    main()
