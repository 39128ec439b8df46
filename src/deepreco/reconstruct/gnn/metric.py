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

import os
import platform
import time
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


def train_embedding(events, hidden: int = 64, dim: int = 8, epochs: int = 4, steps_per_event: int = 40,
                    wedge: float = 0.1, k: int = 16, margin: float = 1.0, learning_rate: float = 2e-3,
                    seed: int = 0, on_epoch=None) -> tuple[Embedding, dict]:
    """Train an `Embedding` on events with truth (a list of `Event`); returns it and its loss history.
    ``on_epoch(net, mean_loss)`` is called after each epoch (the network in eval mode)."""
    if not events:
        raise DeepRecoError("metric learning needs at least one training event")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = []
    for event in events:
        x = node_features(event)
        data.append((x, true_edges(event), np.arctan2(event.hits["y"].to_numpy(), event.hits["x"].to_numpy())))
    net = Embedding(hidden, dim)
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    history = []
    start = time.perf_counter()
    for _ in range(epochs):
        total = 0.0
        for step in range(steps_per_event * len(data)):
            x, edges, phi = data[rng.integers(len(data))]
            centre = rng.uniform(-np.pi, np.pi)
            inside = np.abs((phi - centre + np.pi) % (2 * np.pi) - np.pi) < wedge / 2
            rows = np.flatnonzero(inside)
            if len(rows) < 2:
                continue
            local = np.full(len(x), -1)
            local[rows] = np.arange(len(rows))
            both = (local[edges[0]] >= 0) & (local[edges[1]] >= 0)
            pos = local[edges[:, both]]
            emb = net(torch.from_numpy(x[rows]))
            with torch.no_grad():
                d = torch.cdist(emb, emb)
                d.fill_diagonal_(float("inf"))
                nn_idx = torch.topk(d, min(k, len(rows) - 1), largest=False).indices.numpy()
            a = np.concatenate([pos[0], np.repeat(np.arange(len(rows)), nn_idx.shape[1])])
            b = np.concatenate([pos[1], nn_idx.ravel()])
            n = len(rows)
            true_keys = np.concatenate([pos[0] * n + pos[1], pos[1] * n + pos[0]])
            y = torch.from_numpy(np.isin(a * n + b, true_keys).astype(np.float32))
            dist = torch.linalg.norm(emb[a] - emb[b] + 1e-9, dim=1)
            loss_pos = (y * dist ** 2).sum() / y.sum().clamp(min=1)
            loss_neg = ((1 - y) * torch.relu(margin - dist) ** 2).sum() / (1 - y).sum().clamp(min=1)
            loss = loss_pos + loss_neg
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            del step
        history.append(total / (steps_per_event * len(data)))
        if on_epoch is not None:
            net.eval()
            on_epoch(net, history[-1])
            net.train()
    net.eval()
    return net, {"train_loss": history, "seconds": time.perf_counter() - start}


def train_embedding_model(data_dir, out_path, n_train: int = 12, n_val: int = 4, epochs: int = 10,
                          steps_per_event: int = 60, hidden: int = 96, dim: int = 8, efficiency: float = 0.95,
                          k_max: int = 32, seed: int = 0, progress: bool = True) -> dict:
    """Train an embedding on the first ``n_train`` events of ``data_dir`` (with truth) and write it to
    ``out_path`` with the radius that keeps ``efficiency`` of the true edges of the last ``n_val`` events.
    After each epoch: the validation figures (that radius, the edges an event and the share of true edges of
    the radius graph of the first validation event) and a checkpoint ``<out>.ckpt``. Returns the model's info."""
    from ...io import Dataset
    from .train import _progress

    if n_train < 1 or n_val < 1 or epochs < 1:
        raise DeepRecoError("need n_train, n_val and epochs >= 1")
    dataset = Dataset(data_dir, parts=("hits", "cells", "particles", "truth"))
    if len(dataset.names) < n_train + n_val:
        raise DeepRecoError(f"{data_dir}: holds {len(dataset.names)} events; {n_train} training and {n_val} "
                            "validation events were asked for")
    start = time.perf_counter()
    train = [dataset.read(name) for name in dataset.names[:n_train]]
    val = [dataset.read(name) for name in dataset.names[-n_val:]]
    out_path = Path(out_path)
    ckpt = out_path.with_name(out_path.name + ".ckpt")
    info = {"events": n_train, "val_events": n_val, "epochs": epochs, "seed": seed, "efficiency_target": efficiency,
            "k_max": k_max, "val_radius": [], "val_edges": [], "val_efficiency": []}
    bar = _progress(progress)
    task = bar.add_task("metric learning", total=epochs, status="") if bar else None

    def validate(net, loss):
        radius = choose_radius(net, val, efficiency)
        graph, truth = radius_graph(val[0], net, radius, k_max), true_edges(val[0])
        n = val[0].n_hits
        share = float(np.isin(truth[0] * n + truth[1], graph[0] * n + graph[1]).mean()) if truth.shape[1] else 0.0
        info["val_radius"].append(radius)
        info["val_edges"].append(int(graph.shape[1]))
        info["val_efficiency"].append(share)
        save_embedding(net, ckpt, {**info, "radius": radius})
        if bar:
            status = f"loss {loss:.4f}  radius {radius:.3f}  edges {graph.shape[1]:,}  efficiency {share:.3f}"
            bar.update(task, advance=1, status=status)
            bar.console.print(f"metric learning {bar.tasks[task].completed:.0f}: {status}")

    try:
        net, history = train_embedding(train, hidden=hidden, dim=dim, epochs=epochs, steps_per_event=steps_per_event,
                                       seed=seed, on_epoch=validate)
    finally:
        if bar:
            bar.stop()
    info.update(train_loss=history["train_loss"], radius=info["val_radius"][-1],
                seconds=time.perf_counter() - start, threads=torch.get_num_threads(),
                machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
                        f"torch {torch.__version__}")
    save_embedding(net, out_path, info)
    return info


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
