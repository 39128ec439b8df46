"""One training loop and one inference loop for every per-pixel model.

The loss is the per-plane softmax cross-entropy (``losses.plane_cross_entropy``) over the planes after the seed
planes. HEP.TrkX's loss also counted the seed planes, but there the answer is the plane's only hit, so those
terms teach a copy of the input that no accuracy measures (hit accuracy on a seed plane is 1 whatever the
scores) and took 3/10 of the gradient; leaving them out lifted the LSTM's pixel accuracy after 2 CPU-minutes
from 0.51 to 0.61 (on a shared machine: 1652 and 1979 steps; ``seed_planes_in_loss=True`` restores them).
Adam with a one-cycle learning rate (warm-up, cosine decay over the budget) and gradient clipping; a fixed seed
fixes the weights' initialisation and the batch order. Progress goes to a rich progress bar (off with
``progress=False``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from deepreco.errors import DeepRecoError

from .detector import ToyData
from .losses import plane_cross_entropy
from .models import PlaneModel

__all__ = ["TrainResult", "bf16_is_fast", "lr_factor", "predict_scores", "train_model"]


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


def train_model(model: PlaneModel, data: ToyData | Callable[[int], ToyData], *, epochs: int = 5,
                batch_size: int = 128, lr: float = 1e-3, seed: int = 0, max_steps: int | None = None,
                max_seconds: float | None = None, progress: bool = True, description: str = "training",
                schedule: str = "onecycle", warmup: float = 0.05, clip: float | None = 1.0,
                bf16: bool = False, seed_planes_in_loss: bool = False) -> TrainResult:
    """Fit ``model`` to ``data`` (signal pixel per plane as the class); stops early at ``max_steps`` or
    ``max_seconds`` (checked after each step). Returns the losses and the wall time.

    ``data`` is either one set of events, seen ``epochs`` times, or a function of the epoch number that gives
    that epoch's events (fresh events each epoch: the networks learn a 1024-pixel plane far faster when they
    never see an event twice, and a seeded generator makes it the same stream for every model).

    ``schedule`` (``lr_factor``): ``onecycle`` warms up to ``lr`` and decays it along the budget, the budget
    being ``max_steps`` or ``max_seconds``, whichever runs out first (so a run cut short by the clock still ends
    its decay); ``constant`` keeps ``lr``. ``clip``: the largest gradient norm (None: no clipping). ``bf16``:
    forward pass under CPU bfloat16 autocast (the loss in float32); about twice as fast where the CPU has
    AMX/AVX-512 bf16 (``bf16_is_fast``), slower where it has not. ``seed_planes_in_loss``: count the seed planes
    in the loss too (HEP.TrkX's loss).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    epoch_data = data if callable(data) else (lambda _epoch: data)
    first = epoch_data(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    planes = slice(None) if seed_planes_in_loss else slice(first.n_seed, None)
    n_batches = -(-first.n_events // batch_size)
    total = n_batches * epochs if max_steps is None else min(max_steps, n_batches * epochs)
    result = TrainResult()
    start = time.perf_counter()
    model.train()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
               TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task(description, total=total, loss=float("nan"))
        for epoch in range(epochs):
            chunk = first if epoch == 0 else epoch_data(epoch)
            events = torch.from_numpy(chunk.events)
            target = torch.from_numpy(chunk.signal_index())
            order = torch.from_numpy(rng.permutation(chunk.n_events))
            n_batches = -(-chunk.n_events // batch_size)
            losses = []
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]
                done = result.steps / max_steps if max_steps else 0.0
                if max_seconds:
                    done = max(done, (time.perf_counter() - start) / max_seconds)
                elif not max_steps:
                    done = result.steps / max(1, total)
                for group in opt.param_groups:
                    group["lr"] = lr * lr_factor(done, schedule, warmup)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logits = model(events[idx].float())
                loss = plane_cross_entropy(logits.float(), target[idx], planes)
                opt.zero_grad()
                loss.backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                losses.append(loss.item())
                if result.steps == 0:
                    result.first_loss = losses[0]
                result.steps += 1
                bar.update(task, advance=1, loss=losses[-1])
                out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
                if (max_steps is not None and result.steps >= max_steps) or out_of_time:
                    break
            result.epoch_losses.append(float(np.mean(losses)))
            if (max_steps is not None and result.steps >= max_steps) or out_of_time:
                break
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


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
