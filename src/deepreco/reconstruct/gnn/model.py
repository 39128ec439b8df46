"""The networks of the graph pipeline, in plain PyTorch (scatter sums with ``index_add_``).

* `EdgeFilter`: an MLP on (node a, node b, edge) features that scores every edge of the module-map graph, so
  that the graph network sees a graph of a size it can afford (the filter stage of the Exa.TrkX pipeline).
* `InteractionNetwork`: node and edge encoders, ``n_iterations`` rounds of message passing (the edge network
  reads both end nodes and the edge; the node network reads the node and the sums of its incoming and
  outgoing edges; both residual, with weights shared across rounds), then an edge classifier. It outputs one
  logit per edge.

A model file (`GNNModel.save`, kind ``gnn``) holds the module map, both networks and the two thresholds, so that the
``gnn`` method needs nothing else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ...errors import FormatError
from ...modelfile import ModelFile, load, save, shipped
from ...threads import ordered_map
from .features import N_EDGE, N_NODE
from .module_map import ModuleMap


def mlp(n_in: int, hidden: int, n_out: int, n_layers: int = 2, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden)]
        if norm:
            layers += [nn.LayerNorm(hidden)]
        layers += [nn.ReLU()]
        width = hidden
    layers += [nn.Linear(width, n_out)]
    return nn.Sequential(*layers)


def project(net: nn.Sequential, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The products of ``net``'s first layer with the node parts ``a`` (inner end) and ``b`` (outer end) of its
    input ``cat([a[src], b[dst], e])``: taken once per node, then gathered per edge by `edge_mlp`."""
    w_a, w_b, _ = net[0].weight.split([a.shape[1], b.shape[1], net[0].in_features - a.shape[1] - b.shape[1]], 1)
    return a @ w_a.T, b @ w_b.T


def edge_mlp(net: nn.Sequential, nodes: tuple[torch.Tensor, torch.Tensor], e: torch.Tensor, src: torch.Tensor,
             dst: torch.Tensor) -> torch.Tensor:
    """``net(cat([a[src], b[dst], e]))`` with ``nodes = project(net, a, b)``, without the (E, width)
    concatenation: the same result up to float rounding, with a third of the first layer's work on a graph of
    ~10 edges a node."""
    first = net[0]
    w_e = first.weight[:, first.in_features - e.shape[1]:]
    if torch.is_grad_enabled():
        return net[1:](nodes[0][src] + nodes[1][dst] + torch.addmm(first.bias, e, w_e.T))
    # inference: the same operations in the same order, written into one buffer (the gathers by index_select,
    # the ReLUs in place): a quarter faster on a chunk of a few thousand edges, the same numbers
    h = nodes[0].index_select(0, src).add_(nodes[1].index_select(0, dst)).add_(torch.addmm(first.bias, e, w_e.T))
    for layer in net[1:]:
        h = h.relu_() if isinstance(layer, nn.ReLU) else layer(h)
    return h


class EdgeFilter(nn.Module):
    def __init__(self, hidden: int = 32, n_layers: int = 2):
        super().__init__()
        self.hparams = {"hidden": hidden, "n_layers": n_layers}
        self.net = mlp(2 * N_NODE + N_EDGE, hidden, 1, n_layers, norm=False)

    def forward(self, x: torch.Tensor, edge_attr: torch.Tensor, edges: torch.Tensor,
                nodes: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """One logit per edge; ``nodes`` (`project` of ``x``) may be given when the edges come in chunks."""
        nodes = project(self.net, x, x) if nodes is None else nodes
        return edge_mlp(self.net, nodes, edge_attr, edges[0], edges[1]).squeeze(1)


class InteractionNetwork(nn.Module):
    def __init__(self, hidden: int = 32, n_iterations: int = 6):
        super().__init__()
        self.hparams = {"hidden": hidden, "n_iterations": n_iterations}
        self.node_encoder = mlp(N_NODE, hidden, hidden)
        self.edge_encoder = mlp(2 * N_NODE + N_EDGE, hidden, hidden)
        self.edge_network = mlp(3 * hidden, hidden, hidden)
        self.node_network = mlp(3 * hidden, hidden, hidden)
        self.classifier = mlp(3 * hidden, hidden, 1)
        self.n_iterations = n_iterations

    def forward(self, x: torch.Tensor, edge_attr: torch.Tensor, edges: torch.Tensor,
                chunk: int | None = None, threads: int = 1) -> torch.Tensor:
        """One logit per edge. With ``chunk`` (inference only) the edge networks run ``chunk`` edges at a time:
        the same result, in memory that grows with the number of edges by 32 floats each, not by hundreds;
        ``threads`` threads share the chunks (the caller sets torch's own threads to 1: no thread waits on a
        parallel step whose other half waits for a core), and the sums over each node's edges are added in the
        edges' order, as on one thread."""
        if chunk is not None and not torch.is_grad_enabled():
            return self._forward_chunked(x, edge_attr, edges, chunk, threads)
        src, dst = edges
        h = self.node_encoder(x)
        e = edge_mlp(self.edge_encoder, project(self.edge_encoder, x, x), edge_attr, src, dst)
        for _ in range(self.n_iterations):
            e = e + edge_mlp(self.edge_network, project(self.edge_network, h, h), e, src, dst)
            incoming = torch.zeros_like(h).index_add_(0, dst, e)
            outgoing = torch.zeros_like(h).index_add_(0, src, e)
            h = h + self.node_network(torch.cat([h, incoming, outgoing], dim=1))
        return edge_mlp(self.classifier, project(self.classifier, h, h), e, src, dst).squeeze(1)

    def _forward_chunked(self, x, edge_attr, edges, chunk: int, threads: int = 1) -> torch.Tensor:
        src, dst = edges
        parts = [(slice(i, i + chunk), src[i:i + chunk], dst[i:i + chunk]) for i in range(0, len(src), chunk)]

        def each(net, nodes, inputs):
            """``edge_mlp`` of every chunk, in order; a chunk's result is only read, never written, by others."""
            def one(p):
                with torch.no_grad():  # torch's grad mode is the thread's own: the pool's threads start with it on
                    return edge_mlp(net, nodes, inputs[p[0]], p[1], p[2])

            return ordered_map(one, parts, threads)

        h = self.node_encoder(x)
        e = torch.empty((len(src), self.hparams["hidden"]), dtype=x.dtype, device=x.device)
        for (c, _, _), out in zip(parts, each(self.edge_encoder, project(self.edge_encoder, x, x), edge_attr),
                                  strict=True):
            e[c] = out
        for _ in range(self.n_iterations):
            incoming = torch.zeros_like(h)
            outgoing = torch.zeros_like(h)
            for (c, s, d), update in zip(parts, each(self.edge_network, project(self.edge_network, h, h), e),
                                         strict=True):
                e[c] += update
                incoming.index_add_(0, d, e[c])
                outgoing.index_add_(0, s, e[c])
            h = h + self.node_network(torch.cat([h, incoming, outgoing], dim=1))
        out = torch.empty(len(src), dtype=x.dtype, device=x.device)
        for (c, _, _), logits in zip(parts, each(self.classifier, project(self.classifier, h, h), e), strict=True):
            out[c] = logits.squeeze(1)
        return out


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- the model file ---------------------------------------------------------------------------------------------
KIND = "gnn"


def shipped_model_path() -> Path:
    return shipped("gnn_tracks")


def _map_bytes(module_map: ModuleMap) -> torch.Tensor:
    buffer = io.BytesIO()
    module_map.write(buffer)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


@dataclass
class GNNModel:
    """Everything the ``gnn`` method needs: the module map, the filter, the graph network and the thresholds."""

    module_map: ModuleMap
    filter: EdgeFilter
    gnn: InteractionNetwork
    filter_threshold: float = 0.05
    edge_threshold: float = 0.5
    info: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def save(self, path) -> Path:
        """Write the model file (kind ``gnn``; the module map as a compressed .npz in ``tensors``) atomically."""
        config = {"filter": self.filter.hparams, "gnn": self.gnn.hparams,
                  "filter_threshold": float(self.filter_threshold), "edge_threshold": float(self.edge_threshold)}
        return save(ModelFile(KIND, {"filter": self.filter.state_dict(), "gnn": self.gnn.state_dict()}, config,
                              settings=self.settings, record=self.info,
                              tensors={"module_map": _map_bytes(self.module_map)}), path)

    @classmethod
    def load(cls, path=None) -> GNNModel:
        """The model of a file (None: the one shipped with deepreco); one-line errors for missing, unreadable
        or foreign files."""
        mf = load(shipped_model_path() if path is None else path, KIND)
        try:
            filt = EdgeFilter(**mf.config["filter"])
            gnn = InteractionNetwork(**mf.config["gnn"])
            module_map = ModuleMap.read(io.BytesIO(mf.tensors["module_map"].numpy().tobytes()), str(mf.path))
            thresholds = float(mf.config["filter_threshold"]), float(mf.config["edge_threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{mf.path}: gnn model file is incomplete ({type(exc).__name__} {exc})") from None
        return cls(module_map, mf.load_into("filter", filt), mf.load_into("gnn", gnn), *thresholds,
                   dict(mf.record), dict(mf.settings))
