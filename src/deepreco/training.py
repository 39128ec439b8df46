"""One trainer for every learned model: PyTorch Lightning (as the field's Exa.TrkX / acorn pipeline uses), with the
settings of a training in a YAML file and the result in deepreco's one model-file format.

A kind of model (``lstm``, ...) supplies a `Task`: tensors to train and validate on, the network, its loss and
optimiser, and how to write the model file. The trainer does the rest the same way for every kind:

* settings: the shipped defaults ``data/configs/<kind>.yaml``, then a user's YAML file, then command-line
  overrides; unknown keys are refused. The settings go into the model file, so the file says how to remake it.
* data parallelism: the samples of an epoch are drawn in a seeded order and cut into *global* batches of
  ``batch_size``; with W processes each takes a W-th of every global batch and its loss is weighted by its share,
  so that DDP's gradient average is the gradient of the global batch's mean loss. One process and W processes
  therefore take the same steps (up to float rounding). Launch with ``torchrun --nproc-per-node W``: gloo on CPUs,
  nccl on GPUs.
* a progress bar, validation after every epoch, a checkpoint every ``checkpoint_every_epochs`` epochs
  (``<out>.checkpoints/epoch003.ckpt`` and ``last.ckpt``, written atomically), and if asked every
  ``checkpoint_every_steps`` steps (``step000200.ckpt``); `fit` with ``resume`` goes on from any of them, in the
  middle of an epoch too, and ends with the same weights as an uninterrupted run (the batch order depends on
  (seed, epoch) alone, and the checkpoint holds optimiser, schedule, the curve so far and the partial epoch).
* the model file: the weights of the epoch with the lowest validation loss (or the last epoch), the settings and
  the record (losses per epoch, seconds, threads, processes, commit).
* deterministic kernels (``torch.use_deterministic_algorithms``) while training: on CPU with two or more threads
  the backward of an indexing ``x[idx]`` otherwise adds with atomics in any order (the calorimeter networks'
  neighbour gathers: weights differed from run to run), so the same seed, data and thread count give the same
  weights.

>>> from deepreco.training import settings_for
>>> settings = settings_for("lstm", overrides={"epochs": 2, "model": "bilstm"})   # defaults, then overrides
>>> settings["epochs"], settings["model"], settings["batch_size"]
(2, 'bilstm', 256)
>>> settings_for("lstm", overrides={"epoch": 2})            # doctest: +ELLIPSIS
Traceback (most recent call last):
deepreco.errors.DeepRecoError: options: unknown lstm setting epoch (known: ...
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DeepRecoError, FormatError, MissingFileError
from .modelfile import atomic_save

CONFIGS = Path(__file__).resolve().parent / "data" / "configs"
# what makes each kind's `Task`: a module's ``task(settings) -> Task``, or ``"module:function"``
TASKS = {"lstm": "deepreco.reconstruct.lstm.train", "deepcore": "deepreco.deepcore.train",
         "calo-gravnet": "deepreco.calo.train:gravnet_task", "calo-edgeconv": "deepreco.calo.train:edgeconv_task",
         "calo-garnet": "deepreco.calo.train:garnet_task",
         "calo-drn": "deepreco.calo.train:drn_task",
         **{f"toy-{name}": f"deepreco.toys.training:{name}_task" for name in
            ("lstm", "deep_lstm", "bilstm", "next_layer_lstm", "convnn", "conv_autoencoder")},
         "toy-track-params": "deepreco.toys.track_params:task",
         "gnn": "deepreco.reconstruct.gnn.train", "embedding": "deepreco.reconstruct.gnn.metric"}


@dataclass
class Task:
    """What one kind of model gives the trainer.

    ``batch(split, idx)`` returns the tensors of the samples ``idx`` (numbers in ``range(n_train)`` or
    ``range(n_val)``) of ``split`` ("train" or "val"); ``loss(net, *tensors)`` is their mean loss;
    ``optimizer(net)`` returns an optimiser and a scheduler (None, one stepped each epoch, or Lightning's dict
    ``{"scheduler": ..., "interval": "step"}``); ``write(net, path, settings, record)`` writes the model file;
    ``order(epoch)`` (optional) is the order of the training samples in an epoch (default: a permutation seeded
    with (seed, epoch)).
    """

    net: torch.nn.Module
    n_train: int
    n_val: int
    batch: Callable
    loss: Callable
    optimizer: Callable
    write: Callable
    keep_best: bool = True  # the model file gets the weights of the epoch with the lowest validation loss
    info: dict = field(default_factory=dict)  # facts of the data for the record (n_train, ...)
    order: Callable | None = None
    callbacks: tuple = ()  # Lightning callbacks of the kind's own (the toys' phases and time budget)


def task_factory(kind: str) -> Callable[[dict], Task]:
    """The function that makes the `Task` of ``kind`` (see `TASKS`)."""
    module, _, name = TASKS[kind].partition(":")
    return getattr(importlib.import_module(module), name or "task")


def tensor_batches(train: tuple[torch.Tensor, ...], val: tuple[torch.Tensor, ...]) -> Callable:
    """``Task.batch`` for data held as tensors with the samples along their first axis."""
    return lambda split, idx: tuple(t[idx] for t in (train if split == "train" else val))


# ---- settings ---------------------------------------------------------------------------------------------------
def default_config(kind: str) -> Path:
    return CONFIGS / f"{kind}.yaml"


def read_yaml(path) -> dict:
    """A YAML mapping from ``path``; one-line errors for a missing file, bad YAML or a file that is no mapping."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such settings file")
    try:
        value = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise FormatError(f"{path}: not valid YAML{where}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a YAML text file (binary content)") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormatError(f"{path}: settings must be a mapping of names to values, not a {type(value).__name__}")
    return value


def settings_for(kind: str, config=None, overrides: dict | None = None, base: dict | None = None) -> dict:
    """The settings of a training of ``kind``: the shipped defaults (or ``base``, a resumed run's settings),
    updated with the file ``config`` and with the ``overrides`` that are not None. Unknown keys are an error."""
    if kind not in TASKS:
        raise DeepRecoError(f"unknown model kind {kind!r}; the trainer knows {', '.join(TASKS)}")
    settings = dict(base) if base is not None else read_yaml(default_config(kind))
    known = set(read_yaml(default_config(kind)))
    for source, values in ((config, read_yaml(config) if config is not None else {}),
                           ("options", {k: v for k, v in (overrides or {}).items() if v is not None})):
        unknown = sorted(set(values) - known)
        if unknown:
            raise DeepRecoError(f"{source}: unknown {kind} setting {', '.join(unknown)} (known: "
                                f"{', '.join(sorted(known))})")
        settings.update(values)
    return settings


# ---- processes --------------------------------------------------------------------------------------------------
def world() -> tuple[int, int, int]:
    """(rank, world size, processes on this node), from torchrun's environment (0, 1, 1 without it)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", 1))))


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


class GlobalBatches:
    """Batches of sample numbers for one process: the epoch's order (``order(epoch)``, or all samples in turn)
    cut into global batches of ``batch_size``, each split in ``world`` near-equal parts; this ``rank``'s part,
    with its global batch's size. For training, a global batch with fewer samples than processes (the last, at
    most) is left out. ``skip()``: the number of batches to leave out at the start (those a run resumed from a
    checkpoint in the middle of an epoch has taken already)."""

    def __init__(self, n: int, batch_size: int, rank: int, world: int, epoch: Callable[[], int],
                 order: Callable[[int], np.ndarray] | None = None, skip: Callable[[], int] | None = None):
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.epoch, self.order, self.skip = epoch, order, skip

    def _global(self):
        order = self.order(self.epoch()) if self.order is not None else np.arange(self.n)
        for i in range(0, len(order), self.batch_size):
            chunk = order[i:i + self.batch_size]
            if self.order is not None and len(chunk) < self.world:
                continue
            yield chunk

    def __iter__(self):
        skip = self.skip() if self.skip is not None else 0  # batches a resumed run already took in this epoch
        for k, chunk in enumerate(self._global()):
            part = np.array_split(chunk, self.world)[self.rank]
            if k < skip:
                continue
            if len(part):
                yield [(int(i), len(chunk)) for i in part]

    def __len__(self) -> int:
        return sum(1 for chunk in self._global() if len(np.array_split(chunk, self.world)[self.rank]))


def seeded_order(n: int, seed: int) -> Callable[[int], np.ndarray]:
    """The default order of an epoch's samples: a permutation drawn from (seed, epoch) alone."""
    return lambda epoch: np.random.default_rng([seed, epoch]).permutation(n)


def _collate(items):
    return torch.tensor([i for i, _ in items]), items[0][1]


class _Rows(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, item):
        return item


def _lightning():
    try:
        import lightning.pytorch as pl
    except ImportError:
        raise DeepRecoError("training needs PyTorch Lightning: pip install 'lightning>=2.4'") from None
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # no banners about GPUs and tips
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")
    warnings.filterwarnings("ignore", message=r".*The dirpath has changed from.*")
    warnings.filterwarnings("ignore", message=r".*but have no `val_dataloader`.*")
    warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint need to be provided.*")
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
    return pl


def _module_class(pl):
    class Module(pl.LightningModule):
        """The task's network with the trainer's steps, the loss weighting of the data parallelism and the curve."""

        def __init__(self, kind: str, task: Task, settings: dict):
            super().__init__()
            self.kind, self.task, self.settings = kind, task, settings
            self.net = task.net
            self.history: dict[str, list] = {"train_loss": [], "val_loss": []}
            self.best: tuple[float, int, dict | None] = (float("inf"), 0, None)
            self.seconds_before = 0.0
            self._sums = torch.zeros(4, dtype=torch.float64)  # train loss x n, n, val loss x n, n
            self._skip = 0

        def _rows(self, split, idx):
            return [t.to(self.device) for t in self.task.batch(split, idx.numpy())]

        def training_step(self, batch, batch_idx):
            idx, n_global = batch
            loss = self.task.loss(self.net, *self._rows("train", idx))
            self._sums[0] += float(loss.detach()) * len(idx)
            self._sums[1] += len(idx)
            # DDP averages gradients over the processes: weighted so, the average is the global batch's gradient
            return loss * (len(idx) * self.trainer.world_size / n_global)

        def validation_step(self, batch, batch_idx):
            idx, _ = batch
            loss = self.task.loss(self.net, *self._rows("val", idx))
            self._sums[2] += float(loss) * len(idx)
            self._sums[3] += len(idx)

        def on_train_epoch_end(self):
            # after this epoch's validation and before its checkpoint (Lightning saves after the module's hook)
            sums = self.trainer.strategy.reduce(self._sums.clone().to(self.device), reduce_op="sum").cpu()
            self._sums.zero_()
            train = float(sums[0] / max(sums[1], 1))
            val = float(sums[2] / sums[3]) if sums[3] > 0 else None
            self.history["train_loss"].append(train)
            self.history["val_loss"].append(val)
            # without validation data the training loss ranks the epochs; an epoch cut short by max_steps has no
            # validation and counts only when nothing else does
            score = train if self.task.n_val == 0 else val
            if self.best[2] is None or not self.task.keep_best or (score is not None and score < self.best[0]):
                state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
                self.best = (float("inf") if score is None else score, self.current_epoch + 1, state)
            shown = {"train_loss": train} if val is None else {"train_loss": train, "val_loss": val}
            self.log_dict(shown, prog_bar=True, rank_zero_only=True)

        def configure_optimizers(self):
            opt, sched = self.task.optimizer(self.net)
            if sched is None:
                return opt
            if not isinstance(sched, dict):
                sched = {"scheduler": sched, "interval": "epoch"}
            return {"optimizer": opt, "lr_scheduler": sched}

        def on_save_checkpoint(self, checkpoint):
            # every process saves (rank 0 writes): the partial epoch's loss sums of all of them
            sums = self.trainer.strategy.reduce(self._sums.clone().to(self.device), reduce_op="sum").cpu()
            checkpoint["deepreco"] = {"kind": self.kind, "settings": self.settings, "history": self.history,
                                      "best": list(self.best), "seconds": self.seconds_before + self._elapsed(),
                                      "sums": sums}

        def on_load_checkpoint(self, checkpoint):
            state = checkpoint["deepreco"]
            self.history = {k: list(v) for k, v in state["history"].items()}
            self.best = tuple(state["best"])
            self.seconds_before = float(state["seconds"])
            progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
            if not progress["is_last_batch"]:  # saved in the middle of an epoch: go on from its next batch
                self._skip = int(progress["current"]["processed"])  # saved before "completed" counts the batch
                if self.trainer.global_rank == 0:
                    self._sums = state["sums"].clone().to(torch.float64)

        def take_skip(self) -> int:
            skip, self._skip = self._skip, 0
            return skip

        def _elapsed(self) -> float:
            return time.perf_counter() - self.started

    return Module


def _MaxSteps(pl, max_steps: int):
    class MaxSteps(pl.Callback):
        """Stop after ``max_steps`` optimiser steps, at that batch's end."""

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step >= max_steps:
                trainer.should_stop = True

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step >= max_steps:  # resumed from a checkpoint of the last step
                return -1

    return MaxSteps()


def _checkpoint_io(pl):
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Checkpoints written whole or not at all, read with ``weights_only`` (no code runs from a file)."""

        def save_checkpoint(self, checkpoint, path, storage_options=None):
            atomic_save(checkpoint, path)

        def load_checkpoint(self, path, map_location=None, weights_only=None):
            return read_checkpoint(path)

    return AtomicCheckpointIO()


def read_checkpoint(path, kind: str | None = None) -> dict:
    """A checkpoint of the trainer; one-line errors for a missing or broken file, or one of another kind."""
    from .modelfile import read_torch

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such checkpoint")
    blob = read_torch(path)
    if not isinstance(blob, dict) or "deepreco" not in blob or "state_dict" not in blob:
        raise FormatError(f"{path}: not a deepreco training checkpoint")
    if kind is not None and blob["deepreco"].get("kind") != kind:
        raise FormatError(f"{path}: a checkpoint of a {blob['deepreco'].get('kind')!r} training, expected {kind!r}")
    return blob


# ---- the trainer ------------------------------------------------------------------------------------------------
def _latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint to resume a stopped run from: last.ckpt, or, when the stop fell between a checkpoint and
    its copy as last.ckpt, the newest one."""
    if (folder / "last.ckpt").is_file():
        return folder / "last.ckpt"
    found = sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime_ns) if folder.is_dir() else []
    return found[-1] if found else None


def fit(kind: str, settings: dict, out=None, resume=None, progress: bool = True, checkpoints: bool = True,
        callbacks=(), make_task: Callable[[dict], Task] | None = None) -> dict:
    """Train a model of ``kind`` with ``settings`` (see `settings_for`) and write it to ``out``.

    Parameters
    ----------
    kind : a key of `TASKS`; its module's ``task(settings)`` makes the `Task` (or ``make_task(settings)``), after
        seeding, so that the initial weights come from the seed.
    settings : ``epochs`` (None: as many as ``max_steps`` takes), ``batch_size`` (the global batch), ``seed``,
        optional ``max_steps``, ``max_seconds`` (a wall-clock budget), ``clip_grad_norm``,
        ``checkpoint_every_epochs``, ``accelerator`` ("cpu" keeps a GPU idle), and the kind's.
    out : the model file to write (None: none; the trained network is in the result's ``net``).
    resume : a checkpoint of an earlier run of the same settings (``<out>.checkpoints/*.ckpt``) to go on from.
    checkpoints : write a checkpoint every ``checkpoint_every_epochs`` epochs into ``<out>.checkpoints/``.
    callbacks : further Lightning callbacks (tests use one to stop a run).

    Returns
    -------
    The record written to the model file: ``train_loss`` and ``val_loss`` per epoch, ``best_epoch``,
    ``best_val_loss``, ``seconds``, ``threads``, ``processes``, ... plus ``out``, ``checkpoints``, ``rank``
    (only rank 0 writes the model file) and ``net``.
    """
    pl = _lightning()
    if resume is not None:
        done = read_checkpoint(resume, kind).get("epoch", 0)  # a wrong or broken file: reported before any work
        if settings.get("epochs") is not None and int(settings["epochs"]) <= int(done):
            raise DeepRecoError(f"{resume}: the checkpoint is in epoch {int(done) + 1}, past the {settings['epochs']} "
                                f"asked for; ask for at least {int(done) + 1} epochs (--epochs) to go on")
    checkpoints = checkpoints and out is not None
    rank, size, local = world()
    max_steps = int(settings.get("max_steps") or -1)
    epochs = -1 if settings["epochs"] is None and max_steps > 0 else int(settings["epochs"] or 0)
    if (epochs < 1 and epochs != -1) or int(settings["batch_size"]) < size:
        raise DeepRecoError(f"need epochs >= 1 (or max_steps) and batch_size >= the number of processes ({size}), "
                            f"got {settings['epochs']} and {settings['batch_size']}")
    seed = int(settings.get("seed", 0))
    pl.seed_everything(seed, verbose=False)
    task = (make_task or task_factory(kind))(settings)
    if task.n_train < size or 0 < task.n_val < size:  # every process needs a batch of each
        raise DeepRecoError(f"{kind}: {task.n_train} training and {task.n_val} validation samples for {size} "
                            "processes")
    if epochs == -1:  # as many epochs as max_steps takes
        per_epoch = len(GlobalBatches(task.n_train, int(settings["batch_size"]), rank, size, lambda: 0,
                                      lambda _epoch: np.arange(task.n_train)))
        epochs = -(-max_steps // max(per_epoch, 1))
    module = _module_class(pl)(kind, task, settings)
    module.started = time.perf_counter()

    def loader(split, n, order):
        sampler = GlobalBatches(n, int(settings["batch_size"]), rank, size, lambda: module.current_epoch, order,
                                module.take_skip if split == "train" else None)
        return torch.utils.data.DataLoader(_Rows(n), batch_sampler=sampler, collate_fn=_collate)

    ckpt_dir = Path(out).with_name(Path(out).name + ".checkpoints") if out is not None else None
    cbs = [*callbacks, *task.callbacks]
    if max_steps > 0:
        # not Lightning's max_steps: with it Lightning counts a run resumed from an epoch's end checkpoint as
        # restarting that epoch, which it then ends again with no batch (measured: an extra epoch in the curve)
        cbs.append(_MaxSteps(pl, max_steps))
    if checkpoints:
        from lightning.pytorch.callbacks import ModelCheckpoint

        every_steps = settings.get("checkpoint_every_steps")
        if every_steps:
            class StepCheckpoint(ModelCheckpoint):
                """No step checkpoint on an epoch's last batch: the epoch's checkpoint follows, and Lightning
                resumes from one saved there without the epoch's end (measured: its losses left out)."""

                def on_train_batch_end(self, trainer, *args, **kwargs):
                    if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
                        super().on_train_batch_end(trainer, *args, **kwargs)

            cbs.append(StepCheckpoint(dirpath=ckpt_dir, filename="step{step:06d}", auto_insert_metric_name=False,
                                       save_top_k=-1, save_last=True, every_n_train_steps=int(every_steps),
                                       enable_version_counter=False))
        cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch:03d}", auto_insert_metric_name=False,
                                   save_top_k=-1, save_last=True, save_on_train_epoch_end=True,
                                   every_n_epochs=int(settings.get("checkpoint_every_epochs") or 1),
                                   enable_version_counter=False))
    from .console import err_console

    progress = progress and rank == 0 and err_console.is_terminal  # a bar in a log file is only noise
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        cbs.append(RichProgressBar(leave=True, console_kwargs={"stderr": True}))  # stdout for results
    gpu = torch.cuda.is_available() and settings.get("accelerator", "auto") != "cpu"
    if size > 1:
        from lightning.pytorch.strategies import DDPStrategy

        strategy: Any = DDPStrategy(process_group_backend="nccl" if gpu else "gloo")
    else:
        strategy = "auto"
    trainer = pl.Trainer(accelerator="gpu" if gpu else "cpu", devices=local, num_nodes=size // local,
                         strategy=strategy, max_epochs=epochs,
                         max_time={"seconds": float(settings["max_seconds"])} if settings.get("max_seconds") else None,
                         logger=False, callbacks=cbs, enable_checkpointing=checkpoints,
                         enable_progress_bar=progress, enable_model_summary=False,
                         num_sanity_val_steps=0, use_distributed_sampler=False,
                         gradient_clip_val=settings.get("clip_grad_norm"), plugins=[_checkpoint_io(pl)],
                         default_root_dir=ckpt_dir)
    val = loader("val", task.n_val, None) if task.n_val else None
    # deterministic kernels: on CPU with 2 or more threads the backward of an indexing (x[idx]: the
    # calorimeter networks' neighbour gathers) adds with atomics in any order, and two runs' weights differed
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what cuBLAS needs for it on a GPU
    torch.use_deterministic_algorithms(True, warn_only=True)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, loader("train", task.n_train, task.order or seeded_order(task.n_train, seed)), val,
                    ckpt_path=resume)
    except SystemExit:  # Lightning answers Ctrl-C with a graceful stop and sys.exit(1): say so in one line
        if not trainer.interrupted:
            raise
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)  # Lightning ignores every Ctrl-C after the first
    if trainer.interrupted:
        latest = _latest_checkpoint(ckpt_dir) if checkpoints and ckpt_dir is not None else None
        raise DeepRecoError("training stopped" + (f"; resume with --resume {latest}" if latest is not None else
                                                  "; no checkpoint was written yet" if checkpoints else ""))
    best_loss, best_epoch, best_state = module.best
    net = task.net.cpu()
    net.load_state_dict(best_state)
    net.eval()
    record = {**module.history, "best_epoch": best_epoch, "best_val_loss": best_loss, **task.info,
              "steps": int(trainer.global_step), "seconds": module.seconds_before + module._elapsed(),
              "threads": torch.get_num_threads(), "processes": size, "commit": _commit(), "torch": torch.__version__,
              "lightning": pl.__version__, "resumed_from": str(resume) if resume is not None else None}
    if rank == 0 and out is not None:
        task.write(net, out, settings, record)
    return {**record, "out": None if out is None else str(out), "checkpoints": str(ckpt_dir) if checkpoints else None,
            "rank": rank, "net": net}
