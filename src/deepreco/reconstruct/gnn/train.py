"""Training the graph pipeline on simulated events (``deepreco train gnn``), stage by stage, on the one trainer
(`deepreco.training.fit`).

1. Preparation (built from the data, not trained): the module map from the training events' true graphs, then
   the module-map graph of every network and validation event, labelled (an edge is true when the true graph
   has it).
2. The edge filter (trainer kind ``gnn-filter``): its samples are chunks of ``filter_chunk`` edges of the
   training graphs' true edges and a ``negative_fraction`` sample of the others (re-weighted so that the loss is
   the full graph's); its threshold is set on the validation graphs to keep ``filter_efficiency`` of their true
   edges.
3. The interaction network (trainer kind ``gnn``): its samples are azimuthal sectors (by the inner hit's phi,
   about ``step_edges`` edges each) of the filtered training graphs, with binary cross-entropy weighted by the
   share of true edges; each epoch it is validated on the whole filtered validation graphs; the weights of the
   best epoch are kept.
4. The track-building threshold: the one with the best mean TrackML score on the validation events.

The network of each stage is held together with what came before it (`Stages`: the module map as a buffer, the
filter and its threshold), so that any checkpoint of a run, ``<out>.checkpoints/filter.checkpoints/*.ckpt``
(filter) or ``<out>.checkpoints/*.ckpt`` (network), is enough, with the data, to resume it. Under ``torchrun``
every process prepares the same graphs and takes its share of each global batch of chunks or sectors.

The model file keeps the settings and, in its record, every stage's figures: graph efficiency and size, filter
efficiency, size and purity, the losses per epoch, edge efficiency and purity, the validation score.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...errors import DeepRecoError, FormatError
from .build import build_tracks
from .features import edge_features, node_features
from .method import BRIDGE_FILTER
from .model import EdgeFilter, GNNModel, InteractionNetwork, _map_bytes, n_parameters
from .module_map import ModuleMap, hit_coordinates
from .truth import layer_key, true_edges

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97)
STAGES = ("gnn-filter", "gnn")  # the trainer kinds of the two trained stages (their checkpoints say which)


def threshold_scan(events, graphs, scores, reserves=None, thresholds=THRESHOLDS) -> dict[float, float]:
    """Mean TrackML score of the tracks built at each edge threshold, over events with truth, their graphs,
    the network's edge scores and (optional) the edges that may join broken tracks."""
    from ...metrics import evaluate

    reserves = [None] * len(events) if reserves is None else reserves
    out = {}
    for threshold in thresholds:
        values = []
        for ev, edges, s, reserve in zip(events, graphs, scores, reserves, strict=True):
            labels = build_tracks(ev.n_hits, edges, s, threshold, layer=layer_key(ev.hits),
                                  xyz=ev.hits[["x", "y", "z"]].to_numpy(np.float64), reserve=reserve)
            rows = np.flatnonzero(labels >= 0)
            sub = pd.DataFrame({"hit_id": ev.hits["hit_id"].to_numpy()[rows], "track_id": labels[rows]})
            values.append(evaluate(ev.truth, ev.particles, sub)["score"])
        out[float(threshold)] = float(np.mean(values))
    return out


def tune_edge_threshold(model_path, data_dir, events: int = 2) -> dict:
    """Choose the edge threshold of a trained model again, on the last ``events`` events of ``data_dir``
    (its validation events when that is its training folder), and store it in the model file."""
    from ...io import Dataset
    from .method import GNNTracks
    from .model import GNNModel

    dataset = Dataset(data_dir, parts=("hits", "cells", "particles", "truth"))
    method = GNNTracks(model=model_path)
    evs = [dataset.read(name) for name in dataset.names[-events:]]
    outs = [method.score_graph(ev) for ev in evs]
    scan = threshold_scan(evs, [o["edges"] for o in outs], [o["scores"] for o in outs],
                          [o["reserve"] for o in outs])
    best = max(scan, key=scan.get)
    model = GNNModel.load(model_path)
    model.edge_threshold = best
    model.info.update(val_score_by_threshold=scan, edge_threshold=best, val_score=scan[best])
    model.save(model_path)
    return {"val_score_by_threshold": scan, "edge_threshold": best, "val_score": scan[best]}


def _labelled_graph(module_map: ModuleMap, event) -> dict:
    graph = module_map.build(event)
    truth = true_edges(event)
    n = event.n_hits
    y = np.isin(graph[0] * n + graph[1], truth[0] * n + truth[1])
    graph = graph.astype(np.int32)  # half the memory: the graphs of a few dozen events are kept
    coords = hit_coordinates(event.hits[["x", "y", "z"]].to_numpy(np.float64))
    return {"edges": graph, "y": y, "x": node_features(event), "coords": coords, "n_true": truth.shape[1],
            "event": event}


def _edge_scores(net, g, edges, chunk: int = 200_000) -> np.ndarray:
    """Scores of ``edges`` by ``net``: the filter in chunks (it reads each edge alone), the interaction network
    on the whole graph."""
    edges = edges.astype(np.int64)
    if not isinstance(net, EdgeFilter):
        chunk = max(edges.shape[1], 1)
    out = []
    with torch.no_grad():
        for i in range(0, edges.shape[1], chunk):
            part = edges[:, i:i + chunk]
            attr = torch.from_numpy(edge_features(g["coords"], g["x"], part))
            if isinstance(net, EdgeFilter):
                logits = net(torch.from_numpy(g["x"]), attr, torch.from_numpy(part))
            else:
                logits = net(torch.from_numpy(g["x"]), attr, torch.from_numpy(part), chunk=50_000)
            out.append(torch.sigmoid(logits).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


class Stages(nn.Module):
    """The pipeline as the trainer's network: the module map (its .npz bytes, a buffer), the edge filter and its
    threshold, and in the network stage the interaction network (and the filter's losses, for the record). A
    checkpoint of it is a whole pipeline so far."""

    def __init__(self, map_bytes: torch.Tensor, filt: EdgeFilter, gnn: InteractionNetwork | None = None,
                 filter_threshold: float = 0.0, filter_loss: list[float] = ()):
        super().__init__()
        self.register_buffer("module_map", map_bytes)
        self.register_buffer("filter_threshold", torch.tensor(float(filter_threshold), dtype=torch.float64))
        self.register_buffer("filter_train_loss", torch.tensor(list(filter_loss), dtype=torch.float64))
        self.filter = filt
        self.gnn = gnn


# ---- settings ---------------------------------------------------------------------------------------------------
def _run_settings(settings: dict) -> dict:
    """The settings of a run (the keys of data/configs/gnn.yaml) from a stage's (which add the trainer's keys)."""
    from ...training import default_config, read_yaml

    known = read_yaml(default_config("gnn"))
    return {k: v for k, v in settings.items() if k in known}


def stage_settings(settings: dict, stage: str) -> dict:
    """The trainer's settings of one stage (``filter`` or ``gnn``): its epochs, batch and gradient clipping."""
    return {**settings, "epochs": settings[f"{stage}_epochs"], "batch_size": settings[f"{stage}_batch_size"],
            "clip_grad_norm": settings["gnn_clip_grad_norm"] if stage == "gnn" else None}


def _check(settings: dict) -> None:
    if not settings.get("data"):
        raise DeepRecoError("gnn: no training data; give --data DIR or data: in the settings file")
    for key in ("val", "network_events", "filter_epochs", "gnn_epochs", "step_edges", "filter_chunk",
                "filter_batch_size", "gnn_batch_size"):
        if int(settings[key]) < 1:
            raise DeepRecoError(f"gnn: need {key} >= 1, got {settings[key]}")
    if not 0.0 < float(settings["negative_fraction"]) <= 1.0 or not 0.0 < float(settings["filter_efficiency"]) <= 1.0:
        raise DeepRecoError("gnn: need 0 < negative_fraction <= 1 and 0 < filter_efficiency <= 1")
    if settings["start_from"] and settings["init_gnn"]:
        raise DeepRecoError("give either start_from (the whole model) or init_gnn (its network only), not both")
    if settings["start_from"] and settings["map_from"]:
        raise DeepRecoError("give either start_from (its module map kept) or map_from (a map extended), not both")


def _global_steps(n: int, batch_size: int) -> int:
    """Steps an epoch of ``n`` samples takes (`deepreco.training.GlobalBatches`: a last global batch with fewer
    samples than processes is left out)."""
    from ...training import world

    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= world()[1] else 0)


# ---- 1. preparation ---------------------------------------------------------------------------------------------
def prepare(settings: dict, map_bytes: torch.Tensor | None = None, log=None, progress: bool = False) -> dict:
    """The module map (``map_bytes``, a model's to start from, or built from the training events) and the
    labelled graphs of the network and validation events, with the figures of the graphs; ``progress``: a bar
    over the events of each on stderr (a terminal)."""
    from contextlib import nullcontext

    from ...console import progress_bar
    from ...io import Dataset

    def bar(label, total):
        return progress_bar(label, total) if progress else nullcontext()

    log = log or (lambda text: None)
    start = time.perf_counter()
    dataset = Dataset(settings["data"], parts=("hits", "cells", "particles", "truth"))
    names = dataset.names[:settings["max_events"]] if settings["max_events"] else dataset.names
    n_val = int(settings["val"])
    if len(names) < n_val + 1:
        raise DeepRecoError(f"{settings['data']}: holds {len(names)} events; training needs at least {n_val + 1} "
                            f"({n_val} held out for validation)")
    train_names, val_names = names[:-n_val], names[-n_val:]
    figures: dict = {"n_map_events": len(train_names), "n_val_events": len(val_names),
                     "n_network_events": min(int(settings["network_events"]), len(train_names))}
    if settings["start_from"]:
        figures["start_from"] = str(settings["start_from"])
        if map_bytes is None:
            map_bytes = _map_bytes(GNNModel.load(settings["start_from"]).module_map)
    if map_bytes is None:
        log(f"module map: learning it from {len(train_names)} events")
        with bar("module map", len(train_names)) as advance:
            module_map = ModuleMap.fit((dataset.read(n) for n in train_names),
                                       progress=(lambda n: advance()) if advance else None)
        if settings["map_from"]:  # what the new events need, added to what another model's map connects
            module_map = module_map.union(GNNModel.load(settings["map_from"]).module_map)
            figures["map_from"] = str(settings["map_from"])
        map_bytes = _map_bytes(module_map)
    else:
        import io

        module_map = ModuleMap.read(io.BytesIO(map_bytes.numpy().tobytes()), "the module map of the checkpoint")
    figures["module_pairs"] = len(module_map.pairs)
    figures["seconds_module_map"] = time.perf_counter() - start
    net_names = train_names[-int(settings["network_events"]):] + val_names
    log(f"graphs: building those of {len(net_names)} events")
    with bar("graphs", len(net_names)) as advance:
        graphs = []
        for name in net_names:
            graphs.append(_labelled_graph(module_map, dataset.read(name)))
            if advance:
                advance()
    train_g, val_g = graphs[:-n_val], graphs[-n_val:]
    figures["graph_efficiency"] = float(np.mean([g["y"].sum() / max(g["n_true"], 1) for g in val_g]))
    figures["graph_edges"] = float(np.mean([g["edges"].shape[1] for g in val_g]))
    figures["seconds_graphs"] = time.perf_counter() - start - figures["seconds_module_map"]
    log(f"graph: efficiency {figures['graph_efficiency']:.4f}, {figures['graph_edges']:,.0f} edges an event")
    return {"map": module_map, "map_bytes": map_bytes, "train": train_g, "val": val_g, "figures": figures}


def _piece(g: dict, edges: np.ndarray, y: np.ndarray) -> tuple:
    """(node features of the hits ``edges`` touch, edge features, edges in those rows, labels)."""
    nodes, local = np.unique(edges, return_inverse=True)
    return g["x"][nodes], edge_features(g["coords"], g["x"], edges), local.reshape(2, -1), y


def _pack(pieces: list[tuple]) -> tuple[torch.Tensor, ...]:
    """Pieces of graphs as one graph: (x, edge features, edges, labels, the piece of each edge)."""
    offsets = np.cumsum([0] + [len(p[0]) for p in pieces])
    return (torch.from_numpy(np.concatenate([p[0] for p in pieces])),
            torch.from_numpy(np.concatenate([p[1] for p in pieces])),
            torch.from_numpy(np.concatenate([p[2] + o for p, o in zip(pieces, offsets, strict=False)], axis=1)
                             .astype(np.int64)),
            torch.from_numpy(np.concatenate([p[3] for p in pieces]).astype(np.float32)),
            torch.from_numpy(np.concatenate([np.full(len(p[3]), k) for k, p in enumerate(pieces)]).astype(np.int64)))


def _mean_of_pieces(values: torch.Tensor, piece: torch.Tensor) -> torch.Tensor:
    """The mean over the pieces of each piece's mean: the loss of a batch is the mean of its samples' losses, as
    the trainer's data parallelism needs."""
    n = int(piece.max()) + 1 if len(piece) else 1
    sums = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, piece, values)
    counts = torch.bincount(piece, minlength=n).clamp(min=1).to(values.dtype)
    return (sums / counts).mean()


# ---- 2. the edge filter -----------------------------------------------------------------------------------------
def filter_task(settings: dict, prep: dict):
    """The trainer's `Task` of the edge filter on the prepared training graphs."""
    from ...training import Task

    rng = np.random.default_rng(int(settings["seed"]))
    fraction, chunk = float(settings["negative_fraction"]), int(settings["filter_chunk"])
    samples = []  # (graph, edges, labels) of each chunk
    for g in prep["train"]:
        pick = g["y"] | (rng.random(len(g["y"])) < fraction)
        edges, y = g["edges"][:, pick], g["y"][pick]
        samples += [(g, edges[:, i:i + chunk], y[i:i + chunk]) for i in range(0, edges.shape[1], chunk)]
    if not samples:
        raise DeepRecoError("gnn: the training graphs have no edges to train the filter on")
    n_pos = sum(int(s[2].sum()) for s in samples)
    n_neg = sum(int((~s[2]).sum()) for s in samples) / fraction
    pos_weight = n_neg / max(n_pos, 1)
    net = Stages(prep["map_bytes"], EdgeFilter(int(settings["filter_hidden"])))
    lr, total = float(settings["filter_learning_rate"]), \
        int(settings["epochs"]) * _global_steps(len(samples), int(settings["batch_size"]))

    def batch(split, idx):
        return _pack([_piece(*samples[i]) for i in idx])

    def loss(net, x, attr, edges, y, piece):
        weight = torch.where(y > 0, 1.0, 1.0 / fraction)
        values = nn.functional.binary_cross_entropy_with_logits(
            net.filter(x, attr, edges), y, weight=weight, pos_weight=torch.tensor(pos_weight, dtype=x.dtype),
            reduction="none") * fraction
        return _mean_of_pieces(values, piece)

    def optimizer(net):
        opt = torch.optim.Adam(net.filter.parameters(), lr=lr)
        return opt, {"scheduler": torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total),
                     "interval": "step"}

    def write(net, path, settings, record):
        pass  # the filter goes on to the network stage in this process; its checkpoints are the files it leaves

    return Task(net, len(samples), 0, batch, loss, optimizer, write, keep_best=False,
                info={"filter_samples": len(samples)})


def filter_threshold(filt: EdgeFilter, val_graphs: list[dict], efficiency: float) -> float:
    """The filter score that keeps ``efficiency`` of the true edges of the validation graphs."""
    scores = np.concatenate([_edge_scores(filt, g, g["edges"])[g["y"]] for g in val_graphs])
    return float(np.quantile(scores, 1.0 - efficiency)) if len(scores) else 0.5


def filter_graphs(prep: dict, filt: EdgeFilter, threshold: float) -> dict:
    """The graphs with the edges the filter keeps (the validation ones with the reserve edges that may join broken
    tracks); the module-map graphs are let go. Adds the filter's figures."""
    figures = prep["figures"]
    for split in ("train", "val"):
        kept = []
        for g in prep[split]:
            scores = _edge_scores(filt, g, g["edges"])
            keep = scores > threshold
            kept.append({**g, "edges": g["edges"][:, keep], "y": g["y"][keep]})
            if split == "val":  # the validation events' tracks are built to choose the edge threshold
                kept[-1]["reserve"] = g["edges"][:, scores > BRIDGE_FILTER].astype(np.int64)
        prep[split] = kept
    val_f = prep["val"]
    figures["filter_threshold"] = float(threshold)
    figures["filter_efficiency"] = float(np.mean([g["y"].sum() / max(g["n_true"], 1) for g in val_f]))
    figures["filter_edges"] = float(np.mean([g["edges"].shape[1] for g in val_f]))
    figures["filter_purity"] = float(np.mean([g["y"].mean() if len(g["y"]) else 0.0 for g in val_f]))
    return prep


# ---- 3. the interaction network ---------------------------------------------------------------------------------
def _gnn_start(settings: dict) -> InteractionNetwork:
    """The interaction network to train: new, or a model's to go on from (``start_from``) or start from
    (``init_gnn``, same size)."""
    if settings["start_from"]:
        return GNNModel.load(settings["start_from"]).gnn.train()
    gnn = InteractionNetwork(int(settings["hidden"]), int(settings["iterations"]))
    if settings["init_gnn"]:
        start_from = GNNModel.load(settings["init_gnn"]).gnn
        if start_from.hparams != gnn.hparams:
            raise DeepRecoError(f"{settings['init_gnn']}: its network has {start_from.hparams}, not {gnn.hparams}")
        gnn.load_state_dict(start_from.state_dict())
    return gnn


def network_task(settings: dict, prep: dict, filt: EdgeFilter, threshold: float, figures: dict | None = None):
    """The trainer's `Task` of the interaction network on the filtered graphs of ``prep``; its ``write`` chooses
    the edge threshold and writes the whole model (its figures also into ``figures``)."""
    from ...training import Task

    figures = prep["figures"] if figures is None else figures
    train_f, val_f = prep["train"], prep["val"]
    step_edges = int(settings["step_edges"])
    samples = []  # (graph, sector): about step_edges edges of one event, by the inner hit's phi
    for i, g in enumerate(train_f):
        n_sec = max(1, int(np.ceil(g["edges"].shape[1] / step_edges)))
        phi = g["coords"][g["edges"][0], 4]
        g["sector"] = (((phi + np.pi) / (2 * np.pi) * n_sec).astype(np.int64) % n_sec).astype(np.int32)
        samples += [(i, s) for s in np.unique(g["sector"])]
    if not samples:
        raise DeepRecoError("gnn: no edge of the training graphs passes the filter")
    pos_weight = float(sum((~g["y"]).sum() for g in train_f) / max(sum(g["y"].sum() for g in train_f), 1))
    for p in filt.parameters():
        p.requires_grad_(False)
    # the filter is frozen by its gradients, not its mode (it has no dropout or batch statistics)
    net = Stages(prep["map_bytes"], filt.train(), _gnn_start(settings), threshold,
                 figures.get("filter_train_loss", ()))
    lr = float(settings["learning_rate"])
    total = int(settings["epochs"]) * _global_steps(len(samples), int(settings["batch_size"]))

    def batch(split, idx):
        if split == "val":
            return _pack([_piece(val_f[i], val_f[i]["edges"], val_f[i]["y"]) for i in idx])
        pieces = []
        for i in idx:
            g, s = train_f[samples[i][0]], samples[i][1]
            sel = g["sector"] == s
            pieces.append(_piece(g, g["edges"][:, sel], g["y"][sel]))
        return _pack(pieces)

    def loss(net, x, attr, edges, y, piece):
        logits = net.gnn(x, attr, edges, chunk=50_000)  # in chunks where no gradient is taken (validation)
        values = nn.functional.binary_cross_entropy_with_logits(
            logits, y, pos_weight=torch.tensor(pos_weight, dtype=x.dtype), reduction="none")
        return _mean_of_pieces(values, piece)

    def optimizer(net):
        opt = torch.optim.Adam(net.gnn.parameters(), lr=lr)
        return opt, {"scheduler": torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total),
                     "interval": "step"}

    def write(net, path, settings, record):
        gnn = net.gnn.eval()
        scores = [_edge_scores(gnn, g, g["edges"]) for g in val_f]
        tp = sum(int((s > 0.5)[g["y"]].sum()) for s, g in zip(scores, val_f, strict=True))
        fp = sum(int((s > 0.5)[~g["y"]].sum()) for s, g in zip(scores, val_f, strict=True))
        fn = sum(int((s <= 0.5)[g["y"]].sum()) for s, g in zip(scores, val_f, strict=True))
        scan = threshold_scan([g["event"] for g in val_f], [g["edges"] for g in val_f], scores,
                              [g["reserve"] for g in val_f])
        edge_threshold = max(scan, key=scan.get)
        figures.update(edge_efficiency=tp / max(tp + fn, 1), edge_purity=tp / max(tp + fp, 1),
                       val_score_by_threshold=scan, edge_threshold=edge_threshold, val_score=scan[edge_threshold],
                       n_parameters_filter=n_parameters(net.filter), n_parameters_gnn=n_parameters(gnn),
                       machine=f"{platform.machine()} {platform.system()}")
        model = GNNModel(prep["map"], net.filter, gnn, float(net.filter_threshold), edge_threshold,
                         {**figures, **record}, _run_settings(settings))
        model.save(path)

    return Task(net, len(samples), len(val_f), batch, loss, optimizer, write,
                info={"samples": len(samples), "pos_weight": pos_weight, "data": str(settings["data"])})


def task(settings: dict):
    """The `Task` of a ``gnn`` training without files (``fit("gnn", stage_settings(settings, "gnn"))``): the
    preparation and the filter (trained, without checkpoints) done here."""
    _check(settings)
    prep = prepare(settings)
    filt, threshold = _filter_stage(settings, prep, None, None, progress=False)
    return network_task(settings, filter_graphs(prep, filt, threshold), filt, threshold)


def _filter_stage(settings, prep, out, resume, progress=True, callbacks=()):
    from ...training import fit

    if settings["start_from"]:
        model = GNNModel.load(settings["start_from"])
        return model.filter, model.filter_threshold
    r = fit("gnn-filter", stage_settings(settings, "filter"), out, resume=resume, progress=progress,
            callbacks=callbacks, make_task=lambda s: filter_task(s, prep))
    prep["figures"].update(filter_train_loss=r["train_loss"], filter_steps=r["steps"],
                           seconds_filter_training=r["seconds"])
    filt = r["net"].filter.eval()
    return filt, filter_threshold(filt, prep["val"], float(settings["filter_efficiency"]))


# ---- the whole training -----------------------------------------------------------------------------------------
def train_gnn(out, config=None, overrides: dict | None = None, resume=None, progress: bool = True, log=None,
              callbacks=()) -> dict:
    """Train the graph pipeline on the events of ``settings["data"]`` (with truth) and write the model to ``out``.

    The settings are the shipped ``data/configs/gnn.yaml``, then the YAML file ``config``, then ``overrides``
    (those not None); with ``resume`` (a checkpoint of either trained stage, in ``<out>.checkpoints/``) that run's
    settings, then ``overrides``, and the run goes on from there: the module map (and in the network stage the
    filter and its threshold) come from the checkpoint, the graphs are built again from the data. The last
    ``val`` events are held out for validation; the module map learns from all the others, the networks from the
    last ``network_events`` of them (each graph is kept in memory, ~100 MB a ttbar event). ``start_from`` (a gnn
    model file) keeps that model's map, filter and threshold and trains its network further; ``init_gnn`` starts
    the network from a model's weights. ``log(text)`` gets a line per preparation step. The same seed, data,
    settings and thread count give the same model.

    Returns the record of the model file (every stage's figures, the losses per epoch) with ``out`` and
    ``checkpoints``; ``rank`` is 0 in the process that wrote the file.
    """
    from ...training import fit, read_checkpoint, settings_for

    stage, state, base = None, None, None
    if resume is not None:
        blob = read_checkpoint(resume)
        stage = blob["deepreco"].get("kind")
        if stage not in STAGES:
            raise FormatError(f"{resume}: a checkpoint of a {stage!r} training, expected a 'gnn' one")
        base, state = _run_settings(blob["deepreco"]["settings"]), blob["state_dict"]
    settings = settings_for("gnn", config, overrides, base=base)
    _check(settings)
    start = time.perf_counter()
    out = Path(out)
    work = out.with_name(out.name + ".checkpoints")
    prep = prepare(settings, state["net.module_map"] if state is not None else None, log, progress)
    if stage == "gnn":  # the filter and its threshold are in the checkpoint
        filt = GNNModel.load(settings["start_from"]).filter if settings["start_from"] else \
            EdgeFilter(int(settings["filter_hidden"]))  # (the size of a model's filter may be another)
        filt.load_state_dict({k[len("net.filter."):]: v for k, v in state.items() if k.startswith("net.filter.")})
        threshold = float(state["net.filter_threshold"])
        if len(state["net.filter_train_loss"]):
            prep["figures"]["filter_train_loss"] = state["net.filter_train_loss"].tolist()
    else:
        filt, threshold = _filter_stage(settings, prep, work / "filter", resume if stage == "gnn-filter" else None,
                                        progress, callbacks)
    filter_graphs(prep, filt.eval(), threshold)
    f = prep["figures"]
    (log or (lambda text: None))(f"after the filter: efficiency {f['filter_efficiency']:.4f}, "
                                 f"{f['filter_edges']:,.0f} edges, purity {f['filter_purity']:.4f}")
    r = fit("gnn", stage_settings(settings, "gnn"), out, resume=resume if stage == "gnn" else None,
            progress=progress, callbacks=callbacks, make_task=lambda s: network_task(s, prep, filt, threshold))
    return {**f, **r, "seconds_total": time.perf_counter() - start}


