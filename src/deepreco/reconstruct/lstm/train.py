"""Training the track-extending LSTM on the true tracks of simulated events (``deepreco train lstm``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ...errors import DeepRecoError
from ...modelfile import atomic_save, save
from .features import Normaliser, training_windows, window_features
from .model import build_model, model_file


def collect_windows(data_dir, max_events: int | None = None, max_windows: int = 4,
                    inward: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(N, 10, 3) training windows from the events of ``data_dir`` (which need truth) and the track of each
    (a number unique over the events)."""
    from ...io import Dataset

    dataset = Dataset(data_dir, parts=("hits", "particles", "truth"))
    if len(dataset) == 0:
        raise DeepRecoError(f"{data_dir}: holds no events to train on")
    windows, tracks, offset = [], [], 0
    for i, name in enumerate(dataset.names):
        if max_events is not None and i >= max_events:
            break
        w, track = training_windows(dataset.read(name), max_windows=max_windows, inward=inward)
        windows.append(w)
        tracks.append(track + offset)
        offset += int(track.max()) + 1 if len(track) else 0
    windows = np.concatenate(windows)
    if len(windows) == 0:
        raise DeepRecoError(f"{data_dir}: no true track with 10 or more hits to train on")
    return windows, np.concatenate(tracks)


def _loss(net, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.mean((net(inputs) - targets) ** 2)


def train_lstm(data_dir, out_path, epochs: int = 10, seed: int = 0, model: str = "lstm",
               hidden: tuple[int, ...] | None = None, batch_size: int = 256, val_fraction: float = 0.1,
               learning_rate: float = 2e-3, max_events: int | None = None, max_windows: int = 4,
               progress: bool = True, checkpoint: bool = True, direction: str = "outward") -> dict:
    """Train an LSTM that outputs a track's 5 seed hits and next 5 hits from the seed hits; write it to ``out_path``.

    Samples are windows of 10 consecutive hits of the true tracks with >= 10 hits in the events of ``data_dir``
    (the first window of each track and up to ``max_windows - 1`` shifted outward); a ``val_fraction`` of the
    tracks (chosen with ``seed``) is held out for the validation loss, printed each epoch. After each epoch a
    checkpoint (model, optimiser, epoch) is written atomically beside ``out_path`` (``<out>.ckpt``); at the end
    the weights of the epoch with the lowest validation loss go to ``out_path``. The same seed, data and
    thread count give the same model. ``direction="inward"`` trains on windows that run from the outside in:
    a model that completes a track toward the beam line.

    Returns the figures: ``train_loss`` and ``val_loss`` per epoch, ``best_epoch``, ``best_val_loss``,
    ``n_train``, ``n_val``, ``n_parameters``, ``seconds``, ``out``.
    """
    if epochs < 1 or batch_size < 1 or not 0.0 <= val_fraction < 1.0:
        raise DeepRecoError(f"need epochs >= 1, batch_size >= 1 and 0 <= val_fraction < 1, got {epochs}, "
                            f"{batch_size}, {val_fraction}")
    if direction not in ("outward", "inward"):
        raise DeepRecoError(f"direction must be outward or inward, got {direction!r}")
    start = time.perf_counter()
    out_path = Path(out_path)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    windows, track = collect_windows(data_dir, max_events=max_events, max_windows=max_windows,
                                     inward=direction == "inward")
    features = window_features(windows)
    # Hold out whole tracks, so that no validation window shares hits with a training window.
    n_tracks = int(track.max()) + 1
    val_tracks = rng.random(n_tracks) < val_fraction
    if val_fraction > 0 and n_tracks > 1 and (val_tracks.all() or not val_tracks.any()):
        val_tracks[:] = False
        val_tracks[rng.permutation(n_tracks)[: max(1, int(round(val_fraction * n_tracks)))]] = True
    is_val = val_tracks[track]
    norm = Normaliser.fit(features[~is_val])
    targets = torch.from_numpy(norm.targets(features))
    inputs = torch.from_numpy(norm.inputs(features))  # the seed's "X5 ~ X9 zeroed out"
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)

    net = build_model(model, hidden)
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    n_params = sum(p.numel() for p in net.parameters())
    info = {"model": model, "hidden": list(net.hidden), "direction": direction, "epochs": epochs, "seed": seed,
            "data": str(data_dir), "n_train": len(train_idx), "n_val": len(val_idx)}
    history = {"train_loss": [], "val_loss": []}
    best = (np.inf, 0, None)
    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[status]}"), TimeElapsedColumn())
        task = bar.add_task(f"train {model}", total=epochs, status="")
        bar.start()
    ckpt_path = out_path.with_name(out_path.name + ".ckpt")
    try:
        for epoch in range(epochs):
            net.train()
            perm = train_idx[rng.permutation(len(train_idx))]
            total = 0.0
            for i in range(0, len(perm), batch_size):
                b = torch.from_numpy(perm[i:i + batch_size])
                loss = _loss(net, inputs[b], targets[b])
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                total += float(loss.detach()) * len(b)
            sched.step()
            history["train_loss"].append(total / max(len(perm), 1))
            net.eval()
            with torch.no_grad():
                if len(val_idx):
                    vals = [float(_loss(net, inputs[torch.from_numpy(val_idx[i:i + 8192])],
                                        targets[torch.from_numpy(val_idx[i:i + 8192])])) * len(val_idx[i:i + 8192])
                            for i in range(0, len(val_idx), 8192)]
                    val = sum(vals) / len(val_idx)
                else:
                    val = history["train_loss"][-1]
            history["val_loss"].append(val)
            if val < best[0]:
                best = (val, epoch + 1, {k: v.detach().clone() for k, v in net.state_dict().items()})
            if checkpoint:
                atomic_save({**model_file(net, norm, {**info, "epoch": epoch + 1}).payload(),
                             "optimizer": opt.state_dict(), "history": history}, ckpt_path)
            status = f"train {history['train_loss'][-1]:.4f}  val {val:.4f}"
            if bar is not None:
                bar.update(task, advance=1, status=status)
    finally:
        if bar is not None:
            bar.stop()
    net.load_state_dict(best[2])
    seconds = time.perf_counter() - start
    info.update(best_epoch=best[1], best_val_loss=best[0], seconds=seconds, train_loss=history["train_loss"],
                val_loss=history["val_loss"], threads=torch.get_num_threads())
    save(model_file(net, norm, info), out_path)
    return {**history, "best_epoch": best[1], "best_val_loss": best[0], "n_train": len(train_idx),
            "n_val": len(val_idx), "n_parameters": n_params, "seconds": seconds, "out": str(out_path),
            "checkpoint": str(ckpt_path) if checkpoint else None}
