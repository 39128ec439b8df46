"""Training DeepCore: make the shards, stream them, Adam with the stepped learning rate; save and load models.

The seed's training recipe (seed 000, "details of the training"), each part a setting:

- the learning rate steps down as on the slides, 2e-4 (epochs 0-11) -> 1e-4 (11-40) -> 7e-5 (40-200) -> 1e-6
  (200-239) -> 1e-7 (239-246); :data:`LR_STEPS` keeps those epochs as fractions of the run, so a short run goes
  through the same steps at the same fractions (``lr_scale`` multiplies them all);
- ``new_loss_from``: from this fraction of the run on (the seed: epoch 191 of 246, :data:`NEW_LOSS_FROM`) the
  "new loss", the BCE with weight 0 outside the TCP and NCP pixels (:func:`.loss.deepcore_loss`);
- ``merged_only`` and ``jet_axis``: the windows of merged clusters only, and the jet axis as one more direction
  (:func:`.windows.directions`). The shards of each choice go to their own subfolder of ``work``, and the model
  file records the choice in its settings (a file without it was trained on every cluster, no axis).

The model file is deepreco's one format (`deepreco.modelfile`, kind ``deepcore``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import DeepRecoError
from ..modelfile import ModelFile, load, save
from .events import make_event
from .loss import deepcore_loss
from .model import DeepCoreNet
from .windows import _position, build_windows, concat, dense_targets, read_shard, write_shard

__all__ = ["KIND", "LR_STEPS", "NEW_LOSS_FROM", "ShardSamples", "learning_rate", "load_model", "make_shards",
           "save_model", "train", "train_model", "window_options"]

KIND = "deepcore"
LR_STEPS = ((0 / 246, 2e-4), (11 / 246, 1e-4), (40 / 246, 7e-5), (200 / 246, 1e-6), (239 / 246, 1e-7))
NEW_LOSS_FROM = 191 / 246


def learning_rate(progress: float, steps=LR_STEPS, scale: float = 1.0) -> float:
    """The stepped learning rate at a fraction ``progress`` in [0, 1) of the run."""
    lr = steps[0][1]
    for start, value in steps:
        if progress >= start:
            lr = value
    return lr * scale


def window_options(settings: dict) -> dict:
    """The window choices of a training's (or a model file's) settings: ``merged_only``, ``jet_axis`` (False
    where absent: the files and runs from before they existed)."""
    return {k: bool(settings.get(k) or False) for k in ("merged_only", "jet_axis")}


def make_shards(out_dir: Path, seeds: list[int], events_per_shard: int = 25, log: Callable | None = None,
                windows: dict | None = None, **event_options) -> list[Path]:
    """Simulate events with these seeds and write their windows (``windows``: the options of
    :func:`.windows.build_windows`), ``events_per_shard`` events a shard."""
    from ..console import counted

    out_dir = Path(out_dir)
    paths = []
    for lo in range(0, len(seeds), events_per_shard):
        chunk = seeds[lo:lo + events_per_shard]
        path = out_dir / f"shard-{chunk[0]:06d}-{chunk[-1]:06d}.npz"
        if not path.exists():
            label = f"events of {path.name}"
            made = concat([build_windows(make_event(s, **event_options), **(windows or {}))
                           for s in counted(chunk, label)])
            write_shard(path, made)
            if log:
                log(f"wrote {path.name}: {len(made.inputs)} windows from {len(chunk)} events")
        paths.append(path)
    return paths


class ShardSamples:
    """The windows of shards by number (over all shards in turn), read a shard at a time: at most two shards in
    memory, and an epoch's order that goes shard by shard (`order`) reads each once."""

    def __init__(self, paths: list[Path]):
        self.paths = [Path(p) for p in paths]
        self.starts = np.concatenate([[0], np.cumsum([_count([p]) for p in self.paths])]).astype(np.int64)
        self._cache: dict[int, tuple] = {}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def order(self, seed: int, epoch: int) -> np.ndarray:
        """The shards in a random order, the windows of each in a random order, drawn from (seed, epoch)."""
        rng = np.random.default_rng((seed, epoch))
        return np.concatenate([self.starts[i] + rng.permutation(self.starts[i + 1] - self.starts[i])
                               for i in rng.permutation(len(self.paths))])

    def _shard(self, i: int):
        if i not in self._cache:
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            w = read_shard(self.paths[i])
            rows_of = np.argsort(w.t_index[:, 0], kind="stable")
            bounds = np.searchsorted(w.t_index[rows_of, 0], np.arange(len(w.inputs) + 1))
            self._cache[i] = (w, rows_of, bounds)
        return self._cache[i]

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, ...]:
        """(inputs (B, 4, 30, 30), jet (B, 2), flags, kinds (B, 3, 30, 30), params (B, 3, 5, 30, 30)) of the
        windows ``idx``, grouped by shard."""
        idx = np.asarray(idx)
        shard = np.searchsorted(self.starts, idx, side="right") - 1
        parts = []
        for i in dict.fromkeys(shard.tolist()):
            w, rows_of, bounds = self._shard(i)
            pick = idx[shard == i] - self.starts[i]
            rows = np.concatenate([rows_of[bounds[s]:bounds[s + 1]] for s in pick])
            index = w.t_index[rows].copy()
            index[:, 0] = _position(pick, index[:, 0])
            flags, kinds, params = dense_targets(len(pick), index, w.t_kind[rows], w.t_params[rows])
            parts.append((w.inputs[pick], w.jet[pick], flags, kinds, params))
        return tuple(torch.from_numpy(np.concatenate(p)) for p in zip(*parts, strict=True))


def make_task(settings: dict, shards: list[Path], val_shards: list[Path], model: DeepCoreNet | None = None):
    """The trainer's `Task` for DeepCore on these shards; the learning rate of step k is
    ``learning_rate(k / total_steps, scale=lr_scale)``, and from step ``new_loss_from x total_steps`` on the loss
    is the new loss."""
    from ..training import Task

    train_set = ShardSamples(shards)
    val_set = ShardSamples(val_shards) if val_shards else None
    if len(train_set) == 0:
        raise DeepRecoError("DeepCore: the training events hold no windows")
    batch_size, scale = int(settings["batch_size"]), float(settings["lr_scale"])
    total = int(settings.get("max_steps") or -(-len(train_set) // batch_size) * int(settings["epochs"]))
    new_from = settings.get("new_loss_from")
    if new_from is not None and not 0 <= float(new_from) <= 1:
        raise DeepRecoError(f"new_loss_from is a fraction of the run in [0, 1], got {new_from!r}")
    net = model or DeepCoreNet()
    state: dict = {}

    def optimizer(net):
        opt = torch.optim.Adam(net.parameters(), lr=1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: learning_rate(step / total, scale=scale))
        state["scheduler"] = sched  # its step count (restored on --resume) tells the loss its phase
        return opt, {"scheduler": sched, "interval": "step"}

    def loss(net, maps, jet, flags, kinds, params):
        step = state["scheduler"].last_epoch if "scheduler" in state else 0
        new = new_from is not None and step >= float(new_from) * total
        logits, pred = net(maps, jet)
        return deepcore_loss(logits, pred, flags, kinds, params, other_weight=0.0 if new else None)[0]

    def write(net, path, settings, record):
        save_model(net, path, record, settings)

    def batch(split, idx):
        return (train_set if split == "train" else val_set).batch(idx)

    return Task(net, len(train_set), len(val_set) if val_set else 0, batch, loss, optimizer, write, keep_best=False,
                info={"samples": len(train_set), "val_samples": len(val_set) if val_set else 0},
                order=lambda epoch: train_set.order(int(settings["seed"]), epoch))


def task(settings: dict):
    """The `Task` of a ``deepcore`` training: its shards made (or found) in ``settings["work"]``."""
    first, n, n_val = int(settings["first_seed"]), int(settings["events"]), int(settings["val_events"])
    if n < 1 or n_val < 0:
        raise DeepRecoError(f"need events >= 1 and val_events >= 0, got {n} and {n_val}")
    per_shard, options = int(settings["events_per_shard"]), window_options(settings)
    work = Path(settings["work"]) / "-".join(["windows"] + [k.replace("_", "-") for k, v in options.items() if v])
    if not any(options.values()):
        work = Path(settings["work"])  # every cluster, no axis: the folder of the shards made before the options
    shards = make_shards(work, list(range(first, first + n)), events_per_shard=per_shard, windows=options)
    val = make_shards(work / "val", list(range(first + n, first + n + n_val)), events_per_shard=per_shard,
                      windows=options)
    return make_task(settings, shards, val)


def train_model(out, config=None, overrides: dict | None = None, resume=None, progress: bool = True) -> dict:
    """Train DeepCore on the one trainer (`deepreco.training.fit`) and write the model to ``out``: the settings
    are the shipped ``data/configs/deepcore.yaml``, then the YAML file ``config``, then ``overrides`` (those not
    None); with ``resume`` (a checkpoint) that run's settings, then ``overrides``. Returns the record."""
    from ..training import fit, read_checkpoint, settings_for

    base = read_checkpoint(resume, KIND)["deepreco"]["settings"] if resume is not None else None
    settings = settings_for(KIND, config, overrides, base=base)
    return fit(KIND, settings, out, resume=resume, progress=progress)


def train(shards: list[Path], epochs: int = 4, batch_size: int = 32, seed: int = 0, lr_scale: float = 1.0,
          model: DeepCoreNet | None = None, max_steps: int | None = None,
          new_loss_from: float | None = None) -> tuple[DeepCoreNet, dict]:
    """Train on these shards with the one trainer, without validation, model file or checkpoints; returns the
    model and a history (``loss`` per epoch, ``samples``, ``steps``, ``seconds``)."""
    from ..training import fit, settings_for

    settings = settings_for(KIND, overrides={"epochs": epochs, "batch_size": batch_size, "seed": seed,
                                             "lr_scale": lr_scale, "max_steps": max_steps, "val_events": 0,
                                             "new_loss_from": new_loss_from})
    r = fit(KIND, settings, None, progress=False, make_task=lambda s: make_task(s, shards, [], model))
    history = {"loss": r["train_loss"], "samples": r["samples"], "epochs": epochs, "batch_size": batch_size,
               "steps": r["steps"], "seconds": r["seconds"]}
    return r["net"], history


def _count(shards: list[Path]) -> int:
    total = 0
    for p in shards:
        with np.load(p) as z:
            total += len(z["jet"])
    return total


def save_model(model: DeepCoreNet, path: Path, info: dict | None = None, settings: dict | None = None) -> Path:
    """Write the model (kind ``deepcore``; ``info`` is its training record) to ``path``, complete or absent."""
    return save(ModelFile(KIND, {"net": model.state_dict()}, {}, settings=dict(settings or {}),
                          record=dict(info or {})), path)


def load_model(path: Path) -> tuple[DeepCoreNet, dict]:
    """The model in ``path`` and what made it (its training settings, then its record: ``events``,
    ``first_seed``, ``epochs``, ``samples``, ``seconds``, ...); one-line errors for a missing, corrupt or foreign
    file. The net's ``windows`` are the window options it was trained on (:func:`window_options`), those the
    seeding should build."""
    mf = load(path, KIND)
    net = mf.load_into("net", DeepCoreNet())
    net.windows = window_options(mf.settings)
    return net, {**mf.settings, **mf.record}
