"""Training the track-extending LSTM on the true tracks of simulated events (``deepreco train lstm``)."""

from __future__ import annotations

import numpy as np
import torch

from ...errors import DeepRecoError
from .features import INPUT_SETS, N_SEED, Normaliser, seed_pt, training_windows, window_features
from .model import build_model, save_model


def collect_windows(data_dir, max_events: int | None = None, max_windows: int = 4,
                    inward: bool = False, pt_range=None, cells: bool = False):
    """(N, 10, 3) training windows from the events of ``data_dir`` (which need truth) and the track of each
    (a number unique over the events). ``pt_range`` (low, high) [GeV]: only the windows whose first five hits'
    circle (`features.seed_pt`, what the method routes a seed by) has a pT in [low, high). With ``cells`` also
    the (N, 10, 2) cluster directions of the windows' hits (`gnn.features.cluster_directions`)."""
    from ...io import Dataset
    from ..gnn.features import cluster_directions

    dataset = Dataset(data_dir, parts=("hits", "particles", "truth", *(("cells",) if cells else ())))
    if len(dataset) == 0:
        raise DeepRecoError(f"{data_dir}: holds no events to train on")
    windows, tracks, directions, offset = [], [], [], 0
    for i, name in enumerate(dataset.names):
        if max_events is not None and i >= max_events:
            break
        event = dataset.read(name)
        w, track, rows = training_windows(event, max_windows=max_windows, inward=inward, rows=True)
        if pt_range is not None:
            pt = seed_pt(w[:, :N_SEED])
            keep = (pt >= pt_range[0]) & (pt < pt_range[1])
            w, track, rows = w[keep], track[keep], rows[keep]
        if cells:
            if event.cells is None or len(event.cells) == 0:
                raise DeepRecoError(f"{data_dir}: event {name} has no cells; the inputs ask for cluster directions")
            directions.append(cluster_directions(event)[rows])
        windows.append(w)
        tracks.append(track + offset)
        offset += int(track.max()) + 1 if len(track) else 0
    windows = np.concatenate(windows)
    if len(windows) == 0:
        raise DeepRecoError(f"{data_dir}: no true track with 10 or more hits to train on"
                            + (f" with a seed pT in [{pt_range[0]}, {pt_range[1]}) GeV" if pt_range else ""))
    if cells:
        return windows, np.concatenate(tracks), np.concatenate(directions)
    return windows, np.concatenate(tracks)


def _loss(net, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.mean((net(inputs) - targets) ** 2)


def task(settings: dict):
    """The trainer's `Task` for the LSTM: windows of the true tracks of ``settings["data"]``, a share of the
    tracks (chosen with the seed) held out whole for validation, so that no validation window shares hits with a
    training window; features normalised on the training windows."""
    from ...training import Task, tensor_batches

    if not settings.get("data"):
        raise DeepRecoError("lstm: no training data; give --data DIR or data: in the settings file")
    if settings["direction"] not in ("outward", "inward"):
        raise DeepRecoError(f"direction must be outward or inward, got {settings['direction']!r}")
    val_fraction = float(settings["val_fraction"])
    if not 0.0 < val_fraction < 1.0:
        raise DeepRecoError(f"need 0 < val_fraction < 1, got {val_fraction}")
    pt_range = settings.get("pt_range")
    if pt_range is not None:
        try:
            pt_range = (float(pt_range[0]), float(pt_range[1]))
            if len(settings["pt_range"]) != 2 or not 0.0 <= pt_range[0] < pt_range[1]:
                raise ValueError
        except (TypeError, ValueError, IndexError, KeyError):
            raise DeepRecoError(f"pt_range must be [low, high] in GeV with 0 <= low < high, got "
                                f"{settings['pt_range']!r}") from None
    inputs_set = settings.get("inputs") or "polar"
    if inputs_set not in INPUT_SETS:
        raise DeepRecoError(f"inputs must be one of {', '.join(INPUT_SETS)}, got {inputs_set!r}")
    rng = np.random.default_rng(int(settings["seed"]))
    found = collect_windows(settings["data"], max_events=settings["max_events"],
                            max_windows=int(settings["max_windows"]), inward=settings["direction"] == "inward",
                            pt_range=pt_range, cells="cells" in inputs_set)
    windows, track = found[:2]
    cells = found[2] if len(found) == 3 else None
    features = window_features(windows)
    n_tracks = int(track.max()) + 1
    val_tracks = rng.random(n_tracks) < val_fraction
    if n_tracks > 1 and (val_tracks.all() or not val_tracks.any()):
        val_tracks[:] = False
        val_tracks[rng.permutation(n_tracks)[: max(1, int(round(val_fraction * n_tracks)))]] = True
    is_val = val_tracks[track]
    norm = Normaliser.fit(features[~is_val], None if cells is None else cells[~is_val], inputs_set)
    targets = torch.from_numpy(norm.targets(features))
    inputs = torch.from_numpy(norm.inputs(features, cells))  # the seed's "X5 ~ X9 zeroed out"
    net = build_model(settings["model"], tuple(settings["hidden"]) if settings["hidden"] else None,
                      INPUT_SETS[inputs_set])
    epochs = int(settings["epochs"])

    def optimizer(net):
        opt = torch.optim.Adam(net.parameters(), lr=float(settings["learning_rate"]))
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)

    def write(net, path, settings, record):
        save_model(net, norm, path, record, settings)

    batch = tensor_batches((inputs[~is_val], targets[~is_val]), (inputs[is_val], targets[is_val]))
    n_train, n_val = int((~is_val).sum()), int(is_val.sum())
    return Task(net, n_train, n_val, batch, _loss, optimizer, write,
                info={"n_train": n_train, "n_val": n_val, "n_parameters": sum(p.numel() for p in net.parameters()),
                      "data": str(settings["data"])})


def train_lstm(data_dir=None, out_path=None, epochs: int | None = None, seed: int | None = None,
               model: str | None = None, hidden: tuple[int, ...] | None = None, batch_size: int | None = None,
               val_fraction: float | None = None, learning_rate: float | None = None, max_events: int | None = None,
               max_windows: int | None = None, progress: bool = True, checkpoint: bool = True,
               direction: str | None = None, config=None, resume=None) -> dict:
    """Train an LSTM that outputs a track's 5 seed hits and next 5 hits from the seed hits; write it to ``out_path``.

    Samples are windows of 10 consecutive hits of the true tracks with >= 10 hits in the events of ``data_dir``
    (the first window of each track and up to ``max_windows - 1`` shifted outward); a ``val_fraction`` of the
    tracks (chosen with ``seed``) is held out for the validation loss. The settings are the shipped
    ``data/configs/lstm.yaml``, then the YAML file ``config``, then the arguments that are not None; with
    ``resume`` (a checkpoint) the run's own settings, then the arguments. It runs on the one trainer
    (`deepreco.training.fit`): checkpoints each epoch into ``<out>.checkpoints/``, the weights of the epoch with
    the lowest validation loss to ``out_path``, one process or many under ``torchrun``. The same seed, data and
    thread count give the same model. ``direction="inward"`` trains on windows that run from the outside in: a
    model that completes a track toward the beam line.

    Returns the record: ``train_loss`` and ``val_loss`` per epoch, ``best_epoch``, ``best_val_loss``,
    ``n_train``, ``n_val``, ``n_parameters``, ``seconds``, ``out``, ``checkpoints``.
    """
    from ...training import fit, read_checkpoint, settings_for

    if out_path is None:
        raise DeepRecoError("lstm: no model file to write; give --out FILE")
    base = read_checkpoint(resume, "lstm")["deepreco"]["settings"] if resume is not None else None
    overrides = {"data": str(data_dir) if data_dir is not None else None, "epochs": epochs, "seed": seed,
                 "model": model, "hidden": list(hidden) if hidden else None, "batch_size": batch_size,
                 "val_fraction": val_fraction, "learning_rate": learning_rate, "max_events": max_events,
                 "max_windows": max_windows, "direction": direction}
    settings = settings_for("lstm", config, overrides, base=base)
    return fit("lstm", settings, out_path, resume=resume, progress=progress, checkpoints=checkpoint)
