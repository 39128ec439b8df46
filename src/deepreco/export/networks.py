"""What is exported, by name: each network's graph (a module with plain tensor inputs and outputs), its input
and output names, dtypes and dimensions, the inputs it is checked on, and how their rows may be permuted.

Most networks are exported as they are. The calorimeter networks search neighbours mid-network with numba or
SciPy, which a trace would freeze; their graphs here are the same layers with the neighbours from
`knn.graph_knn` (torch operations kept in the graph), and they are checked against the in-process networks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DeepRecoError
from ..registry import NETWORKS
from . import loaders
from .knn import chunked_rows, graph_knn


@dataclass(frozen=True)
class Tensor:
    """An input or output: name, dtype (numpy name) and dims (an int, or a name for a dynamic size)."""

    name: str
    dtype: str
    dims: tuple


@dataclass(frozen=True)
class Network:
    name: str
    what: str
    load: Callable  # path -> (graph module to export, reference callable of the in-process network)
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    example: Callable  # (size, rng) -> tuple of input tensors
    sizes: tuple[int, ...]  # the sizes it is checked on (the first also traces the export)
    permute: Callable  # (inputs, rng) -> (permuted inputs, function mapping reference outputs to permuted ones)
    atol: float = 1e-4
    rtol: float = 1e-4
    outlier_share: float = 0.0  # share of rows (hits) allowed beyond the tolerance (near-tie neighbours)
    batched: bool = False  # every input and output has the batch as its first dim (Triton's max_batch_size)
    note: str = ""


# ---- graph modules ----------------------------------------------------------------------------------------------
class Outputs(nn.Module):
    """A network whose forward returns a tuple or a dict, as a tuple of tensors in the order of ``keys``."""

    def __init__(self, net: nn.Module, keys: tuple[str, ...] | None = None):
        super().__init__()
        self.net = net
        self.keys = keys

    def forward(self, *inputs):
        out = self.net(*inputs)
        if self.keys is not None:
            return tuple(out[k] for k in self.keys)
        return tuple(out) if isinstance(out, tuple | list) else (out,)


OC_KEYS = ("beta", "coords", "energy", "logits")


class GravNetGraph(nn.Module):
    """`calo.models.gravnet.GravNetOC` with the neighbours searched in the graph (its torch message code)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        m = self.model
        outs, h = [x], x
        for dense, conv, norm in zip(m.dense, m.convs, m.norms, strict=True):
            h = dense(h)
            s, f = conv.lin_s(h), conv.lin_f(h)
            idx = graph_knn(s, conv.k)
            d2 = (s[idx] - s[:, None, :]).pow(2).sum(-1)
            msg = torch.exp(-10.0 * d2)[..., None] * f[idx]
            agg = torch.cat([msg.mean(1), msg.max(1).values], dim=1)
            h = norm(conv.lin_x(h) + conv.lin_agg(agg))
            outs.append(h)
        out = m.heads(torch.cat(outs, dim=1), x)
        return tuple(out[k] for k in OC_KEYS)


class EdgeConvGraph(nn.Module):
    """`calo.models.edgeconv.EdgeConvOC` with the neighbours searched in the graph and the edge MLP a chunk of
    hits at a time."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        m = self.model
        h = m.inp(x)
        outs = [x, h]
        for i, conv in enumerate(m.convs):
            idx = graph_knn(x[:, m.space_cols] if i == 0 else h, conv.k)
            lin1 = conv.mlp[0]
            d = h.shape[1]
            w_a, w_b = lin1.weight[:, :d], lin1.weight[:, d:]
            own = F.linear(h, w_a - w_b, lin1.bias)
            other = F.linear(h, w_b)
            h = chunked_rows(lambda o, j, other=other, mlp=conv.mlp: mlp[3](mlp[2](mlp[1](o[:, None, :] + other[j])))
                             .amax(dim=1), own, idx)
            outs.append(h)
        out = m.heads(torch.cat(outs, dim=1), x)
        return tuple(out[k] for k in OC_KEYS)


class DRNGraph(nn.Module):
    """`calo.models.drn.DRN` at fixed size: a merged pair's second point is left out of later searches and
    pools (``valid``) instead of being removed, so no shape depends on the data."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, batch: torch.Tensor, log_energy: torch.Tensor):
        m = self.model
        n = x.shape[0]
        index = torch.arange(n, device=x.device)
        valid = torch.ones(n, dtype=torch.bool, device=x.device)
        h = m.inp(x)
        for conv in m.convs:
            idx = graph_knn(h, conv.k, group=batch, valid=valid)
            xi = h[:, None, :].expand(-1, idx.shape[1], -1)
            h = h + conv.mlp(torch.cat([xi, h[idx] - xi], dim=-1)).sum(dim=1) / conv.k
            nn1 = graph_knn(h, 2, group=batch, valid=valid)[:, 1]
            mutual = (nn1[nn1] == index) & valid
            rep = torch.where(mutual, torch.minimum(index, nn1), index)
            pooled = torch.full_like(h, float("-inf")).scatter_reduce(
                0, rep[:, None].expand_as(h), h, reduce="amax", include_self=True)
            valid = valid & (rep == index)
            h = torch.where(valid[:, None], pooled, 0.0)
        g = torch.full((log_energy.shape[0], h.shape[1]), float("-inf"), dtype=h.dtype, device=h.device)
        g = g.scatter_reduce(0, batch[:, None].expand_as(h), torch.where(valid[:, None], h, float("-inf")),
                             reduce="amax", include_self=True)
        return (m.out(torch.cat([g, log_energy[:, None]], dim=1)).squeeze(-1),)


# ---- inputs and permutations ------------------------------------------------------------------------------------
def _f32(rng, *shape) -> torch.Tensor:
    return torch.from_numpy(rng.normal(size=shape).astype(np.float32))


def _rows(inputs, rng):
    """Permute the first dim of every input; outputs follow row for row."""
    p = torch.from_numpy(rng.permutation(inputs[0].shape[0]))
    return tuple(t[p] for t in inputs), lambda outs: tuple(o[p] for o in outs)


def _graph_example(size, rng, n_node=8, n_edge=9):
    n, e = size, 4 * size
    # edges with repeated end points (what index_add_ must sum correctly)
    edges = torch.from_numpy(rng.integers(0, n, size=(2, e)))
    return _f32(rng, n, n_node), _f32(rng, e, n_edge), edges


def _graph_permute(inputs, rng):
    """Renumber the nodes and reorder the edges; outputs are per edge."""
    x, attr, edges = inputs
    p = torch.from_numpy(rng.permutation(x.shape[0]))
    inv = torch.empty_like(p)
    inv[p] = torch.arange(len(p))
    q = torch.from_numpy(rng.permutation(attr.shape[0]))
    return (x[p], attr[q], inv[edges][:, q]), lambda outs: tuple(o[q] for o in outs)


def _drn_example(size, rng):
    counts = np.concatenate([[1, 2, 3], rng.integers(4, 40, size=max(size // 20, 1))])
    batch = torch.repeat_interleave(torch.arange(len(counts)), torch.from_numpy(counts))
    return _f32(rng, len(batch), 10), batch, _f32(rng, len(counts))


def _drn_permute(inputs, rng):
    x, batch, log_e = inputs
    p = torch.from_numpy(rng.permutation(x.shape[0]))
    return (x[p], batch[p], log_e), lambda outs: outs


def _plain(load):
    """A network exported as it is: the graph is the network, which is also the reference."""
    def both(path):
        net = load(path)
        graph = Outputs(net)
        return graph, graph
    return both


def _gnn(which):
    def both(path):
        filt, network = loaders.load_gnn(path)
        graph = Outputs(filt if which == "filter" else network)
        return graph, graph
    return both


def _calo(kind, graph_cls, keys):
    def both(path):
        model = loaders.load_calo(kind, path)
        reference = Outputs(model, keys)
        return graph_cls(model), reference
    return both


def _toy(name):
    return _plain(lambda path: loaders.load_toy(name, path))


GRAPH_IN = (Tensor("x", "float32", ("hits", 8)), Tensor("edge_attr", "float32", ("edges", 9)),
            Tensor("edges", "int64", (2, "edges")))
OC_OUT = (Tensor("beta", "float32", ("hits",)), Tensor("coords", "float32", ("hits", 3)),
          Tensor("energy", "float32", ("hits",)), Tensor("logits", "float32", ("hits", 4)))
CALO_NOTE = "neighbours searched in the graph (chunked exact kNN), checked against the in-process network"


def _add(net: Network) -> None:
    NETWORKS.add(net.name, net)  # a name listed in deepreco.registry


_add(Network("lstm", "seed 004 track-extending LSTM (normalised features in and out)", _plain(loaders.load_lstm),
             (Tensor("x", "float32", ("seeds", 10, 8)),), (Tensor("y", "float32", ("seeds", 10, 4)),),
             lambda s, rng: (_f32(rng, s, 10, 8),), (1, 7, 300), _rows, batched=True))
_add(Network("deepcore", "DeepCore CNN: 4 x 30 x 30 pixel windows + jet (eta, pT)", _plain(loaders.load_deepcore),
             (Tensor("maps", "float32", ("windows", 4, 30, 30)), Tensor("jet", "float32", ("windows", 2))),
             (Tensor("logits", "float32", ("windows", 3, 30, 30)),
              Tensor("params", "float32", ("windows", 3, 5, 30, 30))),
             lambda s, rng: (torch.from_numpy(rng.exponential(0.05, (s, 4, 30, 30)).astype(np.float32)),
                             _f32(rng, s, 2)), (1, 3, 16), _rows, batched=True))
_add(Network("gnn-filter", "gnn edge filter: one logit per module-map edge", _gnn("filter"), GRAPH_IN,
             (Tensor("logits", "float32", ("edges",)),), _graph_example, (5, 200, 3000), _graph_permute))
_add(Network("gnn-network", "gnn interaction network: one logit per filtered edge", _gnn("network"), GRAPH_IN,
             (Tensor("logits", "float32", ("edges",)),), _graph_example, (5, 200, 3000), _graph_permute,
             atol=5e-4))
_add(Network("gnn-embedding", "gnn metric-learning hit embedding", _plain(loaders.load_embedding),
             (Tensor("x", "float32", ("hits", 8)),), (Tensor("embedding", "float32", ("hits", 8)),),
             lambda s, rng: (_f32(rng, s, 8),), (1, 50, 3000), _rows))
_add(Network("calo-gravnet", "GravNet + object-condensation heads", _calo("gravnet", GravNetGraph, OC_KEYS),
             (Tensor("x", "float32", ("hits", 9)),), OC_OUT, lambda s, rng: (_f32(rng, s, 9),), (3, 40, 1500),
             _rows, atol=2e-4, rtol=2e-4, outlier_share=0.01, note=CALO_NOTE))
_add(Network("calo-edgeconv", "DGCNN (EdgeConv) + object-condensation heads",
             _calo("edgeconv", EdgeConvGraph, OC_KEYS), (Tensor("x", "float32", ("hits", 9)),), OC_OUT,
             lambda s, rng: (_f32(rng, s, 9),), (3, 40, 1500), _rows, atol=2e-4, rtol=2e-4, outlier_share=0.01,
             note=CALO_NOTE))
_add(Network("calo-garnet", "GarNet + object-condensation heads (no neighbour search: the network as it is)",
             _calo("garnet", lambda model: Outputs(model, OC_KEYS), OC_KEYS), (Tensor("x", "float32", ("hits", 9)),),
             OC_OUT, lambda s, rng: (_f32(rng, s, 9),), (3, 40, 1500), _rows, atol=2e-4, rtol=2e-4))
_add(Network("calo-drn", "Dynamic Reduction Network: log(E_true / E_sum) per cluster",
             _calo("drn", DRNGraph, None),
             (Tensor("x", "float32", ("hits", 10)), Tensor("batch", "int64", ("hits",)),
              Tensor("log_energy", "float32", ("clusters",))),
             (Tensor("log_ratio", "float32", ("clusters",)),), _drn_example, (3, 100, 1500), _drn_permute,
             atol=2e-4, rtol=2e-4, outlier_share=0.01, note=CALO_NOTE))
for _name in ("lstm", "deep_lstm", "bilstm", "next_layer_lstm", "convnn", "conv_autoencoder"):
    _add(Network(f"toy-{_name}", f"HEP.TrkX toy {_name} (initial weights: the toys write no model file)",
                 _toy(_name), (Tensor("events", "float32", ("batch", 10, 32, 32)),),
                 (Tensor("logits", "float32", ("batch", 10, 1024)),),
                 lambda s, rng: (torch.from_numpy((rng.random((s, 10, 32, 32)) < 0.02).astype(np.float32)),),
                 (1, 3, 17), _rows, batched=True, note="untrained: the toy models have no model file"))


def get_network(name: str) -> Network:
    if name not in NETWORKS:
        raise DeepRecoError(f"unknown network {name!r}; expected all or one of {', '.join(NETWORKS)}")
    return NETWORKS[name]
