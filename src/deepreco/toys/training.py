"""One training loop and one inference loop for every per-pixel model.

The loss is the per-plane softmax cross-entropy (``losses.plane_cross_entropy``) over all planes, seed planes
included, as HEP.TrkX trained; Adam; a fixed seed fixes the weights' initialisation and the batch order.
Progress goes to a rich progress bar (off with ``progress=False``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .detector import ToyData
from .losses import plane_cross_entropy
from .models import PlaneModel

__all__ = ["TrainResult", "predict_scores", "train_model"]


@dataclass
class TrainResult:
    """What a training run gives back: the loss after each epoch, the first batch's loss, the time taken."""

    epoch_losses: list[float] = field(default_factory=list)
    first_loss: float = float("nan")
    seconds: float = 0.0
    steps: int = 0


def train_model(model: PlaneModel, data: ToyData | Callable[[int], ToyData], *, epochs: int = 5,
                batch_size: int = 128, lr: float = 1e-3, seed: int = 0, max_steps: int | None = None,
                max_seconds: float | None = None, progress: bool = True, description: str = "training") -> TrainResult:
    """Fit ``model`` to ``data`` (signal pixel per plane as the class); stops early at ``max_steps`` or
    ``max_seconds`` (checked after each step). Returns the losses and the wall time.

    ``data`` is either one set of events, seen ``epochs`` times, or a function of the epoch number that gives
    that epoch's events (fresh events each epoch: the networks learn a 1024-pixel plane far faster when they
    never see an event twice, and a seeded generator makes it the same stream for every model).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    epoch_data = data if callable(data) else (lambda _epoch: data)
    first = epoch_data(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
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
                loss = plane_cross_entropy(model(events[idx].float()), target[idx])
                opt.zero_grad()
                loss.backward()
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


@torch.no_grad()
def predict_scores(model: PlaneModel, events: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, L, P) of every pixel of every plane, in batches, with the model in eval mode."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(events))
    out = [torch.softmax(model(x[i:i + batch_size].float()), dim=-1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()
