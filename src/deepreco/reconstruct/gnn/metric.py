"""Graph construction by metric learning: an MLP embeds each hit so that consecutive hits of a track lie close,
then every hit is joined to its neighbours within a radius in the embedding.

The embedding network reads the node features (`features.node_features`, with phi as cos and sin) and writes
``dim`` numbers. It trains on azimuthal wedges of the training events (``wedge`` rad wide, a few thousand hits),
on pairs made of the true edges in the wedge and of each hit's ``k`` nearest neighbours in the current
embedding (the hard negatives), with the hinge loss

    L = y d^2 + (1 - y) max(0, margin - d)^2,

d the Euclidean distance in the embedding, y = 1 for a true edge. At inference, a k-d tree (SciPy) gives each
hit's neighbours within ``radius`` (at most ``k_max``); a pair becomes an edge from the hit nearer the origin
to the farther one when the two hits lie on different layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn

from ...errors import DeepRecoError
from ...modelfile import ModelFile, load, save
from .features import N_NODE, node_features
from .model import mlp
from .truth import layer_key, true_edges


class Embedding(nn.Module):
    def __init__(self, hidden: int = 64, dim: int = 8, n_layers: int = 3):
        super().__init__()
        self.hparams = {"hidden": hidden, "dim": dim, "n_layers": n_layers}
        self.net = mlp(N_NODE + 1, hidden, dim, n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = x[:, 1] * np.pi
        inputs = torch.cat([x[:, :1], torch.cos(phi)[:, None], torch.sin(phi)[:, None], x[:, 2:]], dim=1)
        return self.net(inputs)


def embed(net: Embedding, x: np.ndarray, batch: int = 200_000) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])


def radius_graph(event, net: Embedding, radius: float, k_max: int = 32) -> np.ndarray:
    """(2, E) hit rows (inner, outer) of the event's graph in the embedding of ``net``."""
    x = node_features(event)
    if len(x) < 2:
        return np.zeros((2, 0), np.int64)
    emb = embed(net, x)
    dist, nbr = cKDTree(emb).query(emb, k=min(k_max + 1, len(x)), distance_upper_bound=radius)
    src = np.repeat(np.arange(len(x)), nbr.shape[1])
    dst = nbr.ravel()
    ok = (dst < len(x)) & (dst != src)
    src, dst = src[ok], dst[ok]
    xyz = event.hits[["x", "y", "z"]].to_numpy(np.float64)
    far = np.linalg.norm(xyz, axis=1)
    inner = np.where(far[src] <= far[dst], src, dst)
    outer = np.where(far[src] <= far[dst], dst, src)
    layer = layer_key(event.hits)
    ok = layer[inner] != layer[outer]
    key = np.unique(inner[ok] * len(x) + outer[ok])
    return np.stack([key // len(x), key % len(x)])


def _wedge(x: np.ndarray, edges: np.ndarray, phi: np.ndarray, centre: float, width: float) -> tuple:
    """The hits within ``width / 2`` of ``centre`` in phi and the true edges between them (in their rows)."""
    rows = np.flatnonzero(np.abs((phi - centre + np.pi) % (2 * np.pi) - np.pi) < width / 2)
    local = np.full(len(x), -1)
    local[rows] = np.arange(len(rows))
    both = (local[edges[0]] >= 0) & (local[edges[1]] >= 0)
    return x[rows], local[edges[:, both]]


def _hinge_loss(net: Embedding, x, pos, rows, k: int, margin: float) -> torch.Tensor:
    """The mean over the wedges of the batch (rows ``rows[i]:rows[i + 1]`` of ``x``; true edges ``pos`` in those
    rows, with ``pos[2]`` the wedge) of each wedge's loss on its true edges and its hits' ``k`` nearest neighbours."""
    total = net(x[:0]).sum()  # zero, with a gradient: a wedge of fewer than two hits adds nothing
    for w in range(len(rows) - 1):
        lo, hi = int(rows[w]), int(rows[w + 1])
        n = hi - lo
        if n < 2:
            continue
        # each wedge embedded alone: the same numbers in any batch, so the neighbours picked from them (a choice
        # a rounding difference could flip) are the same with one process or several
        e = net(x[lo:hi])
        own = pos[:2, pos[2] == w] - lo
        with torch.no_grad():
            d = torch.cdist(e, e)
            d.fill_diagonal_(float("inf"))
            nn_idx = torch.topk(d, min(k, n - 1), largest=False).indices
        a = torch.cat([own[0], torch.arange(n, device=x.device).repeat_interleave(nn_idx.shape[1])])
        b = torch.cat([own[1], nn_idx.reshape(-1)])
        true_keys = torch.cat([own[0] * n + own[1], own[1] * n + own[0]])
        y = torch.isin(a * n + b, true_keys).to(e.dtype)
        dist = torch.linalg.norm(e[a] - e[b] + 1e-9, dim=1)
        loss_pos = (y * dist ** 2).sum() / y.sum().clamp(min=1)
        loss_neg = ((1 - y) * torch.relu(margin - dist) ** 2).sum() / (1 - y).sum().clamp(min=1)
        total = total + loss_pos + loss_neg
    return total / (len(rows) - 1)


def make_task(settings: dict, train_events: list, val_events: list):
    """The trainer's `Task` of the embedding: its samples are azimuthal wedges (``wedge`` rad wide) of the events,
    ``steps_per_event`` an event and epoch, each centred on one of the event's hits drawn from (seed, epoch,
    sample), so an epoch's wedges are new and a run's are the same every time; the validation wedges are drawn
    once. The model file gets the radius that keeps ``efficiency`` of the validation events' true edges."""
    from ...training import Task

    if not train_events:
        raise DeepRecoError("metric learning needs at least one training event")
    seed, per_event = int(settings["seed"]), int(settings["steps_per_event"])
    width, k, margin = float(settings["wedge"]), int(settings["k"]), float(settings["margin"])

    def events(evs):
        return [(node_features(ev), true_edges(ev), np.arctan2(ev.hits["y"].to_numpy(), ev.hits["x"].to_numpy()))
                for ev in evs]

    data = {"train": events(train_events), "val": events(val_events)}
    n = {split: per_event * len(data[split]) for split in data}

    def batch(split, idx):
        pieces = []
        for sample in idx:  # a training sample's number holds its epoch: epoch * n_train + k
            x, edges, phi = data[split][int(sample) % n[split] // per_event]
            rng = np.random.default_rng([seed, split == "val", int(sample)])
            pieces.append(_wedge(x, edges, phi, phi[rng.integers(len(phi))] if len(phi) else 0.0, width))
        rows = np.cumsum([0] + [len(p[0]) for p in pieces])
        pos = np.concatenate([np.vstack([p[1] + r, np.full(p[1].shape[1], w)])
                              for w, (p, r) in enumerate(zip(pieces, rows, strict=False))], axis=1)
        return (torch.from_numpy(np.concatenate([p[0] for p in pieces])), torch.from_numpy(pos.astype(np.int64)),
                torch.from_numpy(rows.astype(np.int64)))

    def loss(net, x, pos, rows):
        return _hinge_loss(net, x, pos, rows, k, margin)

    def optimizer(net):
        return torch.optim.Adam(net.parameters(), lr=float(settings["learning_rate"])), None

    def write(net, path, settings, record):
        radius = choose_radius(net, val_events, float(settings["efficiency"]))
        first = val_events[0]
        graph, truth = radius_graph(first, net, radius, int(settings["k_max"])), true_edges(first)
        m = first.n_hits
        share = float(np.isin(truth[0] * m + truth[1], graph[0] * m + graph[1]).mean()) if truth.shape[1] else 0.0
        save_embedding(net, path, {**record, "radius": radius, "k_max": int(settings["k_max"]),
                                   "efficiency_target": float(settings["efficiency"]), "val_edges": int(graph.shape[1]),
                                   "val_efficiency": share}, settings)

    return Task(Embedding(int(settings["hidden"]), int(settings["dim"])), n["train"], n["val"], batch, loss,
                optimizer, write, keep_best=bool(val_events),
                info={"events": len(train_events), "val_events": len(val_events),
                      "data": str(settings.get("data"))},
                order=lambda epoch: epoch * n["train"] + np.random.default_rng([seed, epoch]).permutation(n["train"]))


def task(settings: dict):
    """The `Task` of an ``embedding`` training: the first ``events`` events of ``settings["data"]`` train, the last
    ``val`` validate."""
    from ...io import Dataset

    if not settings.get("data"):
        raise DeepRecoError("embedding: no training data; give --data DIR or data: in the settings file")
    n_train, n_val = int(settings["events"]), int(settings["val"])
    if n_train < 1 or n_val < 1 or int(settings["epochs"]) < 1 or int(settings["steps_per_event"]) < 1:
        raise DeepRecoError("embedding: need events, val, epochs and steps_per_event >= 1")
    dataset = Dataset(settings["data"], parts=("hits", "cells", "particles", "truth"))
    if len(dataset.names) < n_train + n_val:
        raise DeepRecoError(f"{settings['data']}: holds {len(dataset.names)} events; {n_train} training and {n_val} "
                            "validation events were asked for")
    return make_task(settings, [dataset.read(name) for name in dataset.names[:n_train]],
                     [dataset.read(name) for name in dataset.names[-n_val:]])


def train_embedding_model(out, config=None, overrides: dict | None = None, resume=None,
                          progress: bool = True) -> dict:
    """Train an embedding on the one trainer (`deepreco.training.fit`) and write it to ``out`` with the radius
    that keeps ``efficiency`` of the validation events' true edges: the settings are the shipped
    ``data/configs/embedding.yaml``, then the YAML file ``config``, then ``overrides`` (those not None); with
    ``resume`` (a checkpoint in ``<out>.checkpoints/``) that run's settings, then ``overrides``. Checkpoints each
    epoch; the weights of the epoch with the lowest validation loss. Returns the model's record."""
    from ...modelfile import load as load_file
    from ...training import fit, read_checkpoint, settings_for

    base = read_checkpoint(resume, "embedding")["deepreco"]["settings"] if resume is not None else None
    settings = settings_for("embedding", config, overrides, base=base)
    r = fit("embedding", settings, out, resume=resume, progress=progress)
    if r["rank"] == 0:
        r.update(load_file(out, "embedding").record)
    return r


def train_embedding(events, hidden: int = 64, dim: int = 8, epochs: int = 4, steps_per_event: int = 40,
                    wedge: float = 0.1, k: int = 16, margin: float = 1.0, learning_rate: float = 2e-3,
                    seed: int = 0) -> tuple[Embedding, dict]:
    """Train an `Embedding` on events with truth (a list of `Event`) with the one trainer, without validation,
    model file or checkpoints; returns it (the last epoch's) and its record (``train_loss`` per epoch, ...)."""
    from ...training import fit, settings_for

    settings = settings_for("embedding", overrides={
        "hidden": hidden, "dim": dim, "epochs": epochs, "steps_per_event": steps_per_event, "wedge": wedge, "k": k,
        "margin": margin, "learning_rate": learning_rate, "seed": seed})
    r = fit("embedding", settings, None, progress=False, make_task=lambda s: make_task(s, list(events), []))
    return r.pop("net"), r


def save_embedding(net: Embedding, path, info: dict | None = None, settings: dict | None = None) -> Path:
    """Write the network (kind ``embedding``) atomically; ``info`` (with ``radius`` and ``k_max``) is its record."""
    info = dict(info or {})
    config = {"hparams": net.hparams, "radius": info.get("radius"), "k_max": info.get("k_max")}
    return save(ModelFile("embedding", {"net": net.state_dict()}, config, settings=dict(settings or {}),
                          record=info), path)


def choose_radius(net: Embedding, events, efficiency: float = 0.98) -> float:
    """The radius that keeps ``efficiency`` of the true edges of ``events`` (their embedded lengths' quantile)."""
    lengths = []
    for event in events:
        emb = embed(net, node_features(event))
        edges = true_edges(event)
        lengths.append(np.linalg.norm(emb[edges[0]] - emb[edges[1]], axis=1))
    lengths = np.concatenate(lengths)
    if len(lengths) == 0:
        raise DeepRecoError("no true edges to choose the radius on")
    return float(np.quantile(lengths, efficiency))


def load_embedding(path) -> tuple[Embedding, dict]:
    """(embedding network, info with ``radius`` and ``k_max``) from a file of `save_embedding`."""
    from ...errors import FormatError

    mf = load(path, "embedding")
    try:
        net = Embedding(**mf.config["hparams"])
    except (KeyError, TypeError) as exc:
        raise FormatError(f"{mf.path}: embedding model file is incomplete ({type(exc).__name__} {exc})") from None
    info = {**mf.record, **{k: mf.config[k] for k in ("radius", "k_max") if mf.config.get(k) is not None}}
    return mf.load_into("net", net), info
