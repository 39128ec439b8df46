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

import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn

from ...errors import DeepRecoError
from ..modelfile import atomic_save, read_payload
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
                    seed: int = 0) -> tuple[Embedding, dict]:
    """Train an `Embedding` on events with truth (a list of `Event`); returns it and its loss history."""
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
    net.eval()
    return net, {"train_loss": history, "seconds": time.perf_counter() - start}


def save_embedding(net: Embedding, path, info: dict | None = None) -> Path:
    return atomic_save({"kind": "deepreco.gnn-embedding", "hparams": net.hparams, "state_dict": net.state_dict(),
                        "info": dict(info or {})}, path)


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

    path = Path(path)
    payload = read_payload(path, "embedding model")
    try:
        if payload.get("kind") != "deepreco.gnn-embedding":
            raise ValueError(f"holds {payload.get('kind')!r}, not a deepreco.gnn-embedding")
        net = Embedding(**payload["hparams"])
        net.load_state_dict(payload["state_dict"])
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: not a deepreco embedding model ({first[:120]})") from None
    net.eval()
    return net, dict(payload.get("info", {}))
