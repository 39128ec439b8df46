"""The ``gnn`` reconstruction method: module-map graph, edge filter, interaction network, track building."""

from __future__ import annotations

import functools
import time

import numpy as np
import pandas as pd

from ...errors import DeepRecoError, EventError
from ...event import Event
from ...progress import stage
from ...threads import ordered_map
from ..base import Method, get_method, register
from .build import build_tracks
from .features import N_EDGE, edge_features, node_features
from .module_map import hit_coordinates
from .truth import layer_key

RUNTIMES = (None, "onnxruntime", "torch")  # who runs the edge filter in-process (GNNTracks' runtime)
BRIDGE_FILTER = 0.01  # filter score over which an edge may join the pieces of a broken track (build.py, step 4)


def cached_model(path=None):
    """The `GNNModel` of a file (None: the shipped one), loaded once per process."""
    from ...modelfile import cached  # torch is imported only when a model is needed
    from .model import GNNModel

    return cached(GNNModel.load, path)


@functools.cache  # once per name and process: the method checks it when made, then uses it at every event
def _device(name: str | None):
    """The torch device of ``name`` (None: a GPU when torch sees one, else the CPU); one-line errors for a name
    torch does not know and for a device it cannot use here."""
    import torch

    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise DeepRecoError(f"gnn device {name!r}: not a torch device ({str(exc).splitlines()[0][:160]})") from None
    if device.type != "cpu":
        try:
            torch.zeros(1, device=device)
        except (RuntimeError, AssertionError) as exc:  # torch without that backend, or no such device here
            raise DeepRecoError(f"gnn device {name!r}: torch cannot use it here ({str(exc).splitlines()[0][:160]}); "
                                "device=None takes a GPU when torch sees one, else the CPU") from None
    return device


def _slices(blocks, chunk: int):
    """Consecutive ``chunk``-edge slices (the last one shorter) of the concatenation of (2, e) ``blocks``."""
    pending, n = [], 0
    for block in blocks:
        pending.append(block)
        n += block.shape[1]
        if n >= chunk:
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=1)
            cut = n - n % chunk
            for i in range(0, cut, chunk):
                yield joined[:, i:i + chunk]
            pending, n = [joined[:, cut:]], n - cut
    if n:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending, axis=1)


def filter_graph(model, x, coords, edges, threshold: float, chunk: int = 200_000,
                 device=None, remote=None, runtime: str | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Score ``edges`` with the model's filter in chunks; (kept edges, their filter scores, edges scored).
    ``edges`` is a (2, E) array or an iterable of (2, e) blocks (`ModuleMap.build_blocks`): the blocks are
    cut into the same chunks as their concatenation and scored as they come, so the whole graph is never held.
    With more than one torch thread the chunks are shared among that many threads (the edge features are NumPy,
    which releases the interpreter lock: about twice as fast on 2 cores); the result is the same. ``remote``:
    the served filter (`deepreco.export.client.RemoteNetwork`) scores the chunks instead of the model's.
    ``runtime``: who runs the filter on the CPU, ``onnxruntime`` (`runtime.filter_session`, one thread a chunk),
    ``torch``, or None: onnxruntime when it is installed, else torch."""
    import torch

    from .model import project
    from .runtime import filter_session, run_filter

    device = device or torch.device("cpu")
    net = model.filter.to(device)
    x_t = torch.from_numpy(x).to(device)
    with torch.no_grad():
        nodes = project(net.net, x_t, x_t) if remote is None else None
    session = None
    if remote is None and device.type == "cpu" and runtime != "torch":
        session = filter_session(net)
        if session is None and runtime == "onnxruntime":
            raise DeepRecoError("the gnn runtime onnxruntime needs onnxruntime and onnx: pip install "
                                "'deepreco[serve]'")
        if session is not None:
            nodes_np = tuple(np.ascontiguousarray(t.numpy()) for t in nodes)

    def one(part):
        if session is not None:
            logits = run_filter(session, nodes_np, edge_features(coords, x, part), part)
            s = torch.sigmoid(torch.from_numpy(logits)).numpy()
            keep = s > threshold
            return part[:, keep], s[keep], part.shape[1]
        with torch.no_grad():
            if remote is not None:
                s = torch.sigmoid(torch.from_numpy(remote.run(x, edge_features(coords, x, part), part)[0])).numpy()
            else:
                attr = torch.from_numpy(edge_features(coords, x, part)).to(device)
                s = torch.sigmoid(net(x_t, attr, torch.from_numpy(part).to(device), nodes)).cpu().numpy()
        keep = s > threshold
        return part[:, keep], s[keep], part.shape[1]

    streamed = not isinstance(edges, np.ndarray)  # the module map's blocks, made as they are filtered
    blocks = edges if streamed else [edges]
    kept, scores, n = [], [], 0
    with stage("graph + filter" if streamed else "filter") as advance:
        for k, s, size in ordered_map(one, _slices(blocks, chunk), max(1, torch.get_num_threads())):
            kept.append(k)
            scores.append(s)
            n += size
            advance()
    if not kept:
        return np.zeros((2, 0), np.int64), np.zeros(0, np.float32), 0
    return np.concatenate(kept, axis=1), np.concatenate(scores), n


def classify_edges(model, x, coords, edges: np.ndarray, device=None, chunk: int = 50_000,
                   remote=None, network_chunk: int = 4096, free_chunk: int = 16384) -> np.ndarray:
    """The interaction network's score of every edge of the (filtered) graph, its edge features made ``chunk``
    edges at a time and its edge networks run ``network_chunk`` edges at a time (bounded memory: the features
    of all edges at once took 300 bytes an edge; the same scores; a chunk's intermediates of 4096 x 32 floats
    stay in the core's cache: 4096 took 3.05 s of CPU on the 1.16 M edges of an event of list 1001 where
    50,000 took 3.8 s); ``remote``: the served network's scores instead. With more than one torch thread on the
    CPU: when no other process keeps a core busy (`deepreco.threads.busy_elsewhere`), torch's own threads on
    chunks of ``free_chunk`` edges (on list 1001's 1.16 M edges 2.2-2.5 s on two threads against 3.2-3.8 s on one,
    `benchmarks/gnn_profile.py`, part 3); otherwise the chunks shared among the threads, each operation on one
    thread (torch's threads would wait for the busy core at every step: 7.9 s there, the shared chunks 4.7-5.9 s).
    The shared chunks give one thread's scores bit for bit (each chunk's rows computed alone, the sums added in
    edge order); torch's own threads may round a few edges' scores otherwise in the last bits."""
    import torch

    from ...threads import busy_elsewhere

    device = device or torch.device("cpu")
    if edges.shape[1] == 0:
        return np.zeros(0, np.float32)
    attr = np.empty((edges.shape[1], N_EDGE), np.float32)
    for i in range(0, edges.shape[1], chunk):
        attr[i:i + chunk] = edge_features(coords, x, edges[:, i:i + chunk])
    if remote is not None:
        return torch.sigmoid(torch.from_numpy(remote.run(x, attr, edges)[0])).numpy()
    net = model.gnn.to(device)
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    free = threads > 1 and busy_elsewhere() == 0  # torch's own threads (see above); else the chunks shared
    shared = threads if threads > 1 and not free else 1
    if shared > 1:  # each op on one thread (see InteractionNetwork)
        torch.set_num_threads(1)
    try:
        with torch.no_grad():
            logits = net(torch.from_numpy(x).to(device), torch.from_numpy(attr).to(device),
                         torch.from_numpy(edges).to(device), chunk=free_chunk if free else network_chunk,
                         threads=shared)
    finally:
        if shared > 1:
            torch.set_num_threads(threads)
    return torch.sigmoid(logits).cpu().numpy()


class _timed:
    """An iterator that adds up the seconds spent waiting for its items (``seconds``)."""

    def __init__(self, items):
        self.items, self.seconds = iter(items), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        t = time.perf_counter()
        try:
            return next(self.items)
        finally:
            self.seconds += time.perf_counter() - t


@register("gnn")
class GNNTracks(Method):
    """Graph-network track finding (HEP.TrkX / Exa.TrkX style), see `deepreco.reconstruct.gnn`.

    Parameters: ``model`` (a model file from ``deepreco train gnn``; None: the one shipped with deepreco),
    ``filter_threshold`` and ``edge_threshold`` (None: the values stored with the model, chosen on validation
    events when it was trained), ``min_hits`` (shortest track kept), ``bridge_filter`` (module-map edges the
    filter scores above it, though under its threshold, may join the pieces of a broken track; None: no
    joining), ``chunk`` (edges per filter pass, bounds the memory), ``device`` (None: a GPU when torch sees
    one, else the CPU), ``server`` (the gRPC address of a server of the exported ``gnn-filter`` and
    ``gnn-network``, `deepreco.export.client`: the two networks run there, the module map and the track
    building here; it must serve the networks of ``model``), ``fallback`` (``local``: in-process when the
    server does not answer), ``runtime`` (who runs the edge filter in-process on the CPU: ``onnxruntime``,
    ``torch``, or None: onnxruntime when it is installed, else torch; `deepreco.reconstruct.gnn.runtime`),
    ``kalman`` (default True: the graph's tracks followed again by `ckf`'s Kalman filter from their three
    innermost hits, `CKFTracks.follow`: the pieces a particle was split into become one track, hits of other
    particles drop out; the tracks it does not make are kept as built, on the hits left free, when at least
    ``min_hits``; False: the graph's own tracks), ``later_passes`` (default True: `ckf`'s displaced and outer passes
    on the hits left free, before the graph's tracks take theirs back), ``ckf`` (parameters of the `CKFTracks` of
    both).

    On events simulated from the real lists 1001 and 1003 the graph's own tracks score 0.831 / 0.816, with the
    Kalman filter 0.881 / 0.872, with the later passes too 0.898 / 0.892 as session 18 set them, 0.902 / 0.897 before
    ``outer_soft_pt``, 0.906 / 0.900 with it, 0.913 / 0.908 with the pieces of a particle joined (`CKFTracks`
    ``join``, session 20; `benchmarks/gnn_kalman.py` for the ten development lists and generated events; the README's
    tracking tables for the time of each and the passes' last settings).
    """

    trackml_modules = True
    # the parameters' ranges, checked when the method is made (`deepreco.registry.out_of_range`)
    # (a threshold above 1 keeps no edge: a way to take the network's edges out, so it is in range)
    ranges = {"filter_threshold": ">= 0", "edge_threshold": ">= 0", "min_hits": ">= 1", "bridge_filter": ">= 0",
              "chunk": ">= 1"}

    def __init__(self, model=None, filter_threshold: float | None = None, edge_threshold: float | None = None,
                 min_hits: int = 3, bridge_filter: float | None = BRIDGE_FILTER, chunk: int = 200_000,
                 device: str | None = None, server: str | None = None, fallback: str | None = None,
                 runtime: str | None = None, kalman: bool = True, later_passes: bool = True,
                 ckf: dict | None = None):
        self.model = model
        self.kalman, self.later_passes = bool(kalman), bool(later_passes)
        self.ckf = dict(ckf or {})
        if self.kalman or self.later_passes:
            self._ckf = get_method("ckf", **self.ckf)  # a bad parameter is reported now, in one line
        self.filter_threshold = filter_threshold
        self.edge_threshold = edge_threshold
        self.min_hits = min_hits
        self.bridge_filter = bridge_filter
        self.chunk = chunk
        self.device = device
        self.server, self.fallback = server, fallback
        if runtime not in RUNTIMES:
            raise DeepRecoError(f"gnn runtime must be one of {', '.join(map(str, RUNTIMES))}, got {runtime!r}")
        self.runtime = runtime
        cached_model(model)  # a bad model file is reported now, not at the first event
        _device(device)  # and a device torch cannot use
        from ...export.client import connect  # the server is checked now too

        self._remote = connect(server, ("gnn-filter", "gnn-network"), fallback, what="gnn", model=model) or {}

    def score_graph(self, event: Event, keep_graph: bool = False) -> dict:
        """Every stage's output for one event: ``graph_edges`` (the size of the module-map graph), ``edges`` and
        ``filter_scores`` (after the filter), ``scores`` (the network's), ``reserve`` (the edges over
        ``bridge_filter``, None without it) and ``seconds_*`` per stage; with ``keep_graph`` also ``graph``, the
        module-map edges (otherwise they are filtered block by block as they are made and never held together:
        they grow with the square of the hits)."""
        if event.cells is None or len(event.cells) == 0:
            # the networks read the clusters' shapes; with zeros instead they lose most true edges
            raise EventError(f"{event.sources.get('hits', f'event {event.event_id}')}: the gnn method needs the "
                             "event's cells (it reads each hit's cluster shape); this event has none")
        import torch

        model = cached_model(self.model)
        device = _device(self.device)
        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        graph = None
        if keep_graph:
            with stage("graph"):
                graph = model.module_map.build(event, threads=threads)
        t1 = time.perf_counter()
        x = node_features(event)
        coords = hit_coordinates(event.hits[["x", "y", "z"]].to_numpy(np.float64))
        threshold = model.filter_threshold if self.filter_threshold is None else self.filter_threshold
        low = threshold if self.bridge_filter is None else min(threshold, self.bridge_filter)
        blocks = graph if keep_graph else _timed(model.module_map.build_blocks(event, threads=threads))
        edges, filter_scores, n_graph = filter_graph(model, x, coords, blocks, low, self.chunk, device,
                                                     self._remote.get("gnn-filter"), self.runtime)
        if not keep_graph:  # the time spent waiting for the module map's blocks is its share
            t1 += blocks.seconds
        reserve = None
        if self.bridge_filter is not None:  # the edges over bridge_filter (all of them when it set the cut)
            reserve = edges if low == self.bridge_filter else edges[:, filter_scores > self.bridge_filter]
        if low < threshold:
            keep = filter_scores > threshold
            edges, filter_scores = edges[:, keep], filter_scores[keep]
        t2 = time.perf_counter()
        with stage("network"):
            scores = classify_edges(model, x, coords, edges, device, remote=self._remote.get("gnn-network"))
        t3 = time.perf_counter()
        out = {"graph_edges": n_graph, "edges": edges, "filter_scores": filter_scores, "scores": scores,
               "reserve": reserve, "seconds_graph": t1 - t0, "seconds_filter": t2 - t1, "seconds_gnn": t3 - t2}
        if keep_graph:
            out["graph"] = graph
        return out

    @property
    def last_run(self) -> dict:
        """Sizes and seconds per stage of the last event reconstructed."""
        return dict(getattr(self, "_last", {}))

    def tracks(self, event: Event, edges: np.ndarray, scores: np.ndarray, reserve: np.ndarray | None) -> np.ndarray:
        """A track label per hit row (-1: none) from the network's ``scores`` of the filtered ``edges`` (and the
        ``reserve`` edges the bridging uses): the track building, then the Kalman filter (``kalman``) and the later
        passes (``later_passes``). The served ``gnn-tracks`` step is this too. Sets `last_run`'s seconds."""
        model = cached_model(self.model)
        t0 = time.perf_counter()
        threshold = model.edge_threshold if self.edge_threshold is None else self.edge_threshold
        with stage("building"):
            labels = build_tracks(event.n_hits, edges, scores, threshold, self.min_hits, layer=layer_key(event.hits),
                                  xyz=event.hits[["x", "y", "z"]].to_numpy(np.float64),
                                  reserve=reserve if self.bridge_filter is not None else None)
        t1 = t2 = time.perf_counter()
        if self.kalman:  # its stages: "kalman following" (and the later passes')
            labels = self._ckf.follow(event, labels, keep=self.min_hits, later=self.later_passes)
        elif self.later_passes:
            labels = self._ckf.extend(event, labels)
        if self.kalman or self.later_passes:
            t2 = time.perf_counter()
        self._last = {**getattr(self, "_last", {}), "seconds_build": t1 - t0, "seconds_kalman": t2 - t1}
        return labels

    def _reconstruct(self, event: Event) -> pd.DataFrame:
        out = self.score_graph(event)
        self._last = {"graph_edges": out["graph_edges"], "filtered_edges": out["edges"].shape[1],
                      **{k: v for k, v in out.items() if k.startswith("seconds")}}
        labels = self.tracks(event, out["edges"], out["scores"], out["reserve"])
        rows = np.flatnonzero(labels >= 0)
        return pd.DataFrame({"hit_id": event.hits["hit_id"].to_numpy(np.int64)[rows], "track_id": labels[rows]})
