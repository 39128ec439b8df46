"""Training DeepCore: make the shards, stream them, Adam with the stepped learning rate; save and load models.

The learning rate steps down as on the slides (2e-4 -> 1e-4 -> 7e-5 -> 1e-6 -> 1e-7 at epochs 11, 40, 200,
239 of 246); :data:`LR_STEPS` keeps those epochs as fractions of the run, so a short run goes through the same
steps. The model file is deepreco's one format (`deepreco.modelfile`, kind ``deepcore``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..modelfile import ModelFile, load, save
from .events import make_event
from .loss import deepcore_loss
from .model import DeepCoreNet
from .windows import ShardStream, build_windows, concat, write_shard

__all__ = ["KIND", "LR_STEPS", "learning_rate", "load_model", "make_shards", "save_model", "train"]

KIND = "deepcore"
LR_STEPS = ((0 / 246, 2e-4), (11 / 246, 1e-4), (40 / 246, 7e-5), (200 / 246, 1e-6), (239 / 246, 1e-7))


def learning_rate(progress: float, steps=LR_STEPS, scale: float = 1.0) -> float:
    """The stepped learning rate at a fraction ``progress`` in [0, 1) of the run."""
    lr = steps[0][1]
    for start, value in steps:
        if progress >= start:
            lr = value
    return lr * scale


def make_shards(out_dir: Path, seeds: list[int], events_per_shard: int = 25, log: Callable | None = None,
                **event_options) -> list[Path]:
    """Simulate events with these seeds and write their windows, ``events_per_shard`` events a shard."""
    out_dir = Path(out_dir)
    paths = []
    for lo in range(0, len(seeds), events_per_shard):
        chunk = seeds[lo:lo + events_per_shard]
        path = out_dir / f"shard-{chunk[0]:06d}-{chunk[-1]:06d}.npz"
        if not path.exists():
            windows = concat([build_windows(make_event(s, **event_options)) for s in chunk])
            write_shard(path, windows)
            if log:
                log(f"wrote {path.name}: {len(windows.inputs)} windows from {len(chunk)} events")
        paths.append(path)
    return paths


def train(shards: list[Path], epochs: int = 4, batch_size: int = 32, seed: int = 0, lr_scale: float = 1.0,
          model: DeepCoreNet | None = None, max_steps: int | None = None,
          log: Callable | None = None) -> tuple[DeepCoreNet, dict]:
    """Train on streamed shards; returns the model and a history (loss per epoch, seconds, samples)."""
    torch.manual_seed(seed)
    model = model or DeepCoreNet()
    stream = ShardStream(shards, batch_size=batch_size, seed=seed)
    n_samples = _count(shards)
    steps_per_epoch = max(1, -(-n_samples // batch_size))
    total = steps_per_epoch * epochs if max_steps is None else max_steps
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate(0.0, scale=lr_scale))
    history = {"loss": [], "bce": [], "mse": [], "step_loss": [], "samples": n_samples, "epochs": epochs,
               "batch_size": batch_size}
    t0, step = time.perf_counter(), 0
    model.train()
    for epoch in range(epochs):
        sums = np.zeros(3)
        batches = 0
        for maps, jet, flags, kinds, params in stream:
            if step >= total:
                break
            for group in opt.param_groups:
                group["lr"] = learning_rate(step / total, scale=lr_scale)
            logits, pred = model(maps, jet)
            loss, bce, mse = deepcore_loss(logits, pred, flags, kinds, params)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sums += [loss.item(), bce.item(), mse.item()]
            history["step_loss"].append(loss.item())
            batches += 1
            step += 1
        if batches:
            for k, v in zip(("loss", "bce", "mse"), sums / batches, strict=True):
                history[k].append(float(v))
            if log:
                log(f"epoch {epoch + 1}/{epochs}: loss {sums[0] / batches:.4f} (BCE {sums[1] / batches:.4f}, "
                    f"MSE {sums[2] / batches:.4f}), {time.perf_counter() - t0:.0f} s")
    history["seconds"] = time.perf_counter() - t0
    history["steps"] = step
    model.eval()
    return model, history


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
    """The model in ``path`` and its training record; one-line errors for a missing, corrupt or foreign file."""
    mf = load(path, KIND)
    return mf.load_into("net", DeepCoreNet()), dict(mf.record)
