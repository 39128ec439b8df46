"""Training and inference of every per-pixel model: the training on the one trainer (`deepreco.training.fit`),
one kind a model (``toy-lstm``, ``toy-bilstm``, ...; settings ``data/configs/toy-<model>.yaml``).

The loss is the per-plane softmax cross-entropy (``losses.plane_cross_entropy``) over the planes after the seed
planes. HEP.TrkX's loss also counted the seed planes, but there the answer is the plane's only hit, so those
terms teach a copy of the input that no accuracy measures (hit accuracy on a seed plane is 1 whatever the
scores) and took 3/10 of the gradient; leaving them out lifted the LSTM's pixel accuracy after 2 CPU-minutes
from 0.51 to 0.61 (on a shared machine: 1652 and 1979 steps; ``seed_planes_in_loss=True`` restores them).
Adam with a one-cycle learning rate (warm-up, cosine decay over the budget) and gradient clipping; a fixed seed
fixes the weights' initialisation and the batch order (the same permutations as the loop of its own these models
had before the trainer). The trainer gives the progress bar (off with ``progress=False``) and, with a model file
to write, checkpoints and resume.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepreco.errors import DeepRecoError

from .detector import ToyData, generate_3d
from .losses import plane_cross_entropy
from .models import MODELS, PlaneModel, build_model

__all__ = ["TrainResult", "bf16_is_fast", "load_model", "lr_factor", "plane_task", "predict_scores", "train_model"]


@dataclass
class TrainResult:
    """What a training run gives back: the loss after each epoch, the first batch's loss, the time taken."""

    epoch_losses: list[float] = field(default_factory=list)
    first_loss: float = float("nan")
    seconds: float = 0.0
    steps: int = 0


def lr_factor(progress: float, schedule: str = "onecycle", warmup: float = 0.05, final: float = 0.01) -> float:
    """The learning rate as a fraction of its peak at ``progress`` (0 .. 1) through the training budget.

    ``constant``: 1. ``onecycle``: a linear warm-up from ``final`` to 1 over the first ``warmup`` of the budget,
    then a half cosine down to ``final`` at the end of it.
    """
    if schedule == "constant":
        return 1.0
    if schedule != "onecycle":
        raise DeepRecoError(f"unknown learning-rate schedule {schedule!r}; expected onecycle or constant")
    p = min(max(progress, 0.0), 1.0)
    if p < warmup:
        return final + (1.0 - final) * p / warmup
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * (p - warmup) / max(1e-12, 1.0 - warmup)))


def replayed_order(n: int, seed: int) -> Callable[[int], np.ndarray]:
    """The order of an epoch's samples: the epoch-th permutation drawn one after the other from one generator
    seeded with ``seed`` (the toys' order since before the trainer), kept up so that the next epoch is one draw."""
    state: dict = {"epoch": -1, "rng": None, "order": None}

    def order(epoch: int) -> np.ndarray:
        if epoch < state["epoch"] or state["rng"] is None:
            state.update(epoch=-1, rng=np.random.default_rng(seed))
        while state["epoch"] < epoch:
            state["order"] = state["rng"].permutation(n)
            state["epoch"] += 1
        return state["order"]

    return order


def _model_name(model: PlaneModel) -> str:
    return next(name for name, cls in MODELS.items() if type(model) is cls)


def plane_task(name: str, settings: dict, model: PlaneModel | None = None,
               data: ToyData | Callable[[int], ToyData] | None = None):
    """The trainer's `Task` for the per-pixel model ``name``: by default built from ``settings`` (``size``,
    ``options``) after the trainer's seeding and trained on a fresh chunk of ``chunk_events`` 3D toy events each
    epoch (``generate_3d(chunk_events, seed=[seed, 1, epoch])``, the benchmark's stream); or ``model`` on
    ``data`` (one set of events, or a function of the epoch). The learning rate follows ``lr_factor`` along
    ``max_steps`` or ``max_seconds``, whichever runs out first."""
    from ..training import Task

    seed = int(settings["seed"])
    if data is None:
        chunk = int(settings["chunk_events"])
        data = lambda epoch: generate_3d(chunk, seed=[seed, 1, epoch])  # noqa: E731
    epoch_data = data if callable(data) else (lambda _epoch: data)
    first = epoch_data(0)
    cache = {"epoch": 0, "data": first, "tensors": None}
    if model is None:
        options = dict(settings.get("options") or {})
        model = build_model(name, first.n_layers, first.plane_shape, settings["size"], **options)
        build = {"model": name, "n_layers": first.n_layers, "plane_shape": list(first.plane_shape),
                 "size": settings["size"], "options": options}
    else:
        build = None
    n = first.n_events
    replay = replayed_order(n, seed)

    def order(epoch: int) -> np.ndarray:  # the trainer asks at the start of an epoch: that epoch's events then
        if cache["tensors"] is None or cache["epoch"] != epoch:
            chunk = first if epoch == 0 else epoch_data(epoch)
            if chunk.n_events != n:
                raise DeepRecoError(f"toy-{name}: every epoch needs {n} events, epoch {epoch} has {chunk.n_events}")
            cache.update(epoch=epoch, tensors=(torch.from_numpy(chunk.events), torch.from_numpy(chunk.signal_index())))
        return replay(epoch)

    def batch(split, idx):
        events, target = cache["tensors"]
        return events[idx], target[idx]

    planes = slice(None) if settings["seed_planes_in_loss"] else slice(first.n_seed, None)
    bf16, info = bool(settings["bf16"]), {"n_train": n, "n_parameters": model.n_params()}

    def loss(net, events, target):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(events.float())
        value = plane_cross_entropy(logits.float(), target, planes)
        info.setdefault("first_loss", float(value.detach()))  # the untrained model's loss on the first batch
        return value

    lr, max_steps = float(settings["learning_rate"]), int(settings.get("max_steps") or 0)
    max_seconds = float(settings.get("max_seconds") or 0)
    total = -(-n // int(settings["batch_size"])) * int(settings["epochs"] or 1)
    if max_steps:
        total = min(total, max_steps)

    def optimizer(net):
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        start = time.perf_counter()

        def factor(step: int) -> float:  # the share of the budget spent, by steps or by the clock
            done = step / max_steps if max_steps else 0.0
            if max_seconds:
                done = max(done, (time.perf_counter() - start) / max_seconds)
            elif not max_steps:
                done = step / max(1, total)
            return lr_factor(done, settings["schedule"], float(settings["warmup"]))

        return opt, {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor), "interval": "step"}

    def write(net, path, settings, record):
        save_model(net, path, build, settings, record)

    return Task(model, n, 0, batch, loss, optimizer, write, keep_best=False, info=info, order=order)


def _task_of(name: str) -> Callable:
    def task(settings: dict):
        return plane_task(name, settings)

    task.__doc__ = f"The `Task` of kind ``toy-{name}`` (see `plane_task`)."
    return task


lstm_task, deep_lstm_task, bilstm_task = _task_of("lstm"), _task_of("deep_lstm"), _task_of("bilstm")
next_layer_lstm_task, convnn_task = _task_of("next_layer_lstm"), _task_of("convnn")
conv_autoencoder_task = _task_of("conv_autoencoder")


def save_model(net: PlaneModel, path, build: dict | None, settings: dict, record: dict) -> Path:
    """Write a per-pixel model (kind ``toy-<model>``); ``build`` is what `build_model` made it from."""
    from ..modelfile import ModelFile, save

    if build is None:
        raise DeepRecoError("a toy model file needs the model made from its settings: give the model by name")
    return save(ModelFile(f"toy-{build['model']}", {"net": net.state_dict()}, build, settings=settings,
                          record=record), path)


def load_model(path) -> tuple[PlaneModel, dict]:
    """The per-pixel model in ``path`` (any ``toy-<model>`` kind) and its record."""
    from ..modelfile import load

    mf = load(path, tuple(f"toy-{name}" for name in MODELS))
    c = mf.config
    net = build_model(c["model"], int(c["n_layers"]), tuple(c["plane_shape"]), c["size"], **(c.get("options") or {}))
    return mf.load_into("net", net), mf.record


def train_model(model: PlaneModel | str, data: ToyData | Callable[[int], ToyData] | None = None, *, epochs: int = 5,
                batch_size: int = 128, lr: float = 1e-3, seed: int = 0, max_steps: int | None = None,
                max_seconds: float | None = None, progress: bool = True, schedule: str = "onecycle",
                warmup: float = 0.05, clip: float | None = 1.0, bf16: bool = False, seed_planes_in_loss: bool = False,
                out=None, size: str = "cpu", options: dict | None = None) -> TrainResult:
    """Fit ``model`` (a per-pixel model, or its name: then built with ``size`` and ``options`` after seeding) to
    ``data`` (signal pixel per plane as the class) on the one trainer; stops early at ``max_steps`` or
    ``max_seconds``. ``out``: write the model file there (``model`` given by name), with checkpoints beside it.

    ``data`` is either one set of events, seen ``epochs`` times, or a function of the epoch number that gives
    that epoch's events (fresh events each epoch: the networks learn a 1024-pixel plane far faster when they
    never see an event twice, and a seeded generator makes it the same stream for every model); None: the
    benchmark's stream of 3D toy events, 4,000 an epoch.

    ``schedule`` (``lr_factor``): ``onecycle`` warms up to ``lr`` and decays it along the budget, the budget
    being ``max_steps`` or ``max_seconds``, whichever runs out first (so a run cut short by the clock still ends
    its decay); ``constant`` keeps ``lr``. ``clip``: the largest gradient norm (None: no clipping). ``bf16``:
    forward pass under CPU bfloat16 autocast (the loss in float32); about twice as fast where the CPU has
    AMX/AVX-512 bf16 (``bf16_is_fast``), slower where it has not. ``seed_planes_in_loss``: count the seed planes
    in the loss too (HEP.TrkX's loss).
    """
    from ..training import fit, settings_for

    name = model if isinstance(model, str) else _model_name(model)
    overrides = {"epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "seed": seed,
                 "max_steps": max_steps, "max_seconds": max_seconds, "schedule": schedule, "warmup": warmup,
                 "clip_grad_norm": clip, "bf16": bf16, "seed_planes_in_loss": seed_planes_in_loss, "size": size,
                 "options": options}
    settings = settings_for(f"toy-{name}", overrides=overrides)
    settings["clip_grad_norm"] = clip  # None: no clipping (an override of None would keep the file's)
    for key in ("max_steps", "max_seconds"):
        settings[key] = overrides[key]
    if data is not None:
        settings["chunk_events"] = None  # the events are the caller's
    given = None if isinstance(model, str) else model
    record = fit(f"toy-{name}", settings, out, progress=progress,
                 make_task=lambda s: plane_task(name, s, given, data))
    return TrainResult(epoch_losses=record["train_loss"], first_loss=record.get("first_loss", float("nan")),
                       seconds=record["seconds"], steps=record["steps"])


def bf16_is_fast() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where autocast about halves a step."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe is not None and probe()) or (amx is not None and amx()))


@torch.no_grad()
def predict_scores(model: PlaneModel, events: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, L, P) of every pixel of every plane, in batches, with the model in eval mode."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(events))
    out = [torch.softmax(model(x[i:i + batch_size].float()), dim=-1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()
