"""Training the graph pipeline on simulated events (``deepreco train gnn``), stage by stage.

1. The module map is learnt from the training events' true graphs.
2. Every event's module-map graph is built and labelled (an edge is true when the true graph has it). The
   edge filter trains on all true edges and a ``negative_fraction`` sample of the others (re-weighted so that
   the loss is the full graph's); its threshold is set on the validation events to keep ``filter_efficiency``
   of the graph's true edges.
3. The interaction network trains on the filtered graphs, one azimuthal sector (by the inner hit's phi, with
   about ``step_edges`` edges) per step, with binary cross-entropy weighted by the share of true edges; after each epoch
   the validation graphs are scored whole and a checkpoint is written; the best epoch's weights are kept.
4. The track-building threshold is the one with the best mean TrackML score on the validation events.

Returns (and stores in the model's ``info``) every stage's figures: graph efficiency and size, filter
efficiency and size, edge efficiency and purity, the validation score, and the seconds of each stage.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...errors import DeepRecoError
from ...modelfile import atomic_save
from .build import build_tracks
from .features import edge_features, node_features
from .method import BRIDGE_FILTER
from .model import EdgeFilter, GNNModel, InteractionNetwork, n_parameters
from .module_map import ModuleMap, hit_coordinates
from .truth import layer_key, true_edges

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97)


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


def _bce(logits, y, pos_weight, weight=None):
    return torch.nn.functional.binary_cross_entropy_with_logits(
        logits, y, weight=weight, pos_weight=torch.tensor(pos_weight, dtype=logits.dtype))


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    bar.start()
    return bar


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


def _train_filter(train_g, val_g, hidden, epochs, negative_fraction, efficiency, learning_rate, rng, task, advance):
    """The edge filter trained on the labelled module-map graphs ``train_g`` (every true edge and a
    ``negative_fraction`` sample of the others, re-weighted), and the threshold that keeps ``efficiency`` of
    the true edges of ``val_g``."""
    samples = []
    for g in train_g:
        pick = g["y"] | (rng.random(len(g["y"])) < negative_fraction)
        edges = g["edges"][:, pick]
        samples.append((g, edges, g["y"][pick]))
    n_pos = sum(int(s[2].sum()) for s in samples)
    n_neg = sum(int((~s[2]).sum()) for s in samples) / negative_fraction
    filt = EdgeFilter(hidden)
    opt = torch.optim.Adam(filt.parameters(), lr=learning_rate)
    batches = []
    for g, edges, y in samples:
        for i in range(0, edges.shape[1], 32768):
            batches.append((g, edges[:, i:i + 32768], y[i:i + 32768]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=learning_rate, total_steps=epochs * len(batches))
    t = task("filter", epochs)
    for _ in range(epochs):
        filt.train()
        total = 0.0
        for b in rng.permutation(len(batches)):
            g, edges, y = batches[b]
            yt = torch.from_numpy(y.astype(np.float32))
            weight = torch.where(yt > 0, 1.0, 1.0 / negative_fraction)
            logits = filt(torch.from_numpy(g["x"]), torch.from_numpy(edge_features(g["coords"], g["x"], edges)),
                          torch.from_numpy(edges.astype(np.int64)))
            loss = _bce(logits, yt, n_neg / max(n_pos, 1), weight) * negative_fraction
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        advance(t, f"loss {total / len(batches):.4f}")
    filt.eval()
    val_scores = np.concatenate([_edge_scores(filt, g, g["edges"])[g["y"]] for g in val_g])
    filter_threshold = float(np.quantile(val_scores, 1.0 - efficiency)) if len(val_scores) else 0.5
    return filt, filter_threshold


def train_gnn(data_dir, out_path, n_val: int = 4, max_events: int | None = None, seed: int = 0,
              filter_epochs: int = 4, gnn_epochs: int = 8, hidden: int = 32, n_iterations: int = 6,
              filter_hidden: int = 32, negative_fraction: float = 0.05, filter_efficiency: float = 0.99,
              step_edges: int = 60_000, learning_rate: float = 2e-3, network_events: int = 24,
              init_gnn=None, gnn_learning_rate: float | None = None, resume=None, progress: bool = True) -> dict:
    """Train the module map, the filter and the interaction network on the events of ``data_dir`` (with truth);
    write the model to ``out_path`` (a checkpoint beside it, ``<out>.ckpt``, after each network epoch).
    The last ``n_val`` events are held out for validation; the module map learns from all the others, the
    networks from the last ``network_events`` of them (each graph is kept in memory, ~100 MB). ``init_gnn``
    (a gnn model file) starts the interaction network from that model's weights instead of random ones (same
    ``hidden`` and ``n_iterations``), trained at ``gnn_learning_rate`` (default ``learning_rate``). ``resume``
    (a gnn model file) continues that model: its module map, filter and filter threshold are kept as they are
    (stages 1 and 2 are skipped, the graphs are built with them) and its network trains further (its own
    ``hidden`` and ``n_iterations``; the filter arguments are unused). The same
    seed, data and thread count give the same model."""
    from ...io import Dataset

    if n_val < 1 or filter_epochs < 1 or gnn_epochs < 1 or step_edges < 1:
        raise DeepRecoError("need n_val, filter_epochs, gnn_epochs and step_edges >= 1")
    start = time.perf_counter()
    out_path = Path(out_path)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dataset = Dataset(data_dir, parts=("hits", "cells", "particles", "truth"))
    names = dataset.names[:max_events] if max_events else dataset.names
    if len(names) < n_val + 1:
        raise DeepRecoError(f"{data_dir}: holds {len(names)} events; training needs at least {n_val + 1} "
                            f"({n_val} held out for validation)")
    train_names, val_names = names[:-n_val], names[-n_val:]
    bar = _progress(progress)
    figures: dict = {"n_map_events": len(train_names), "n_network_events": min(network_events, len(train_names)),
                     "n_val_events": len(val_names)}

    def task(description, total):
        return bar.add_task(description, total=total, status="") if bar else None

    def advance(t, status=""):
        if bar:
            bar.update(t, advance=1, status=status)
            if status:  # a line per epoch stays on the screen (and in a log)
                bar.console.print(f"{bar.tasks[t].description} {bar.tasks[t].completed:.0f}: {status}")

    if resume is not None and init_gnn is not None:
        raise DeepRecoError("give either resume (the whole model) or init_gnn (its network only), not both")
    previous = GNNModel.load(resume) if resume is not None else None
    try:
        # 1. module map
        if previous is None:
            t = task("module map", len(train_names))
            module_map = ModuleMap.fit((dataset.read(n) for n in train_names), progress=lambda _: advance(t))
        else:
            module_map = previous.module_map
            figures["resumed_from"] = str(resume)
        figures["module_pairs"] = len(module_map.pairs)
        figures["seconds_module_map"] = time.perf_counter() - start

        # 2. graphs and the filter
        net_names = train_names[-network_events:] + val_names
        t = task("graphs", len(net_names))
        graphs = []
        for name in net_names:
            graphs.append(_labelled_graph(module_map, dataset.read(name)))
            advance(t)
        train_g, val_g = graphs[:-n_val], graphs[-n_val:]
        figures["graph_efficiency"] = float(np.mean([g["y"].sum() / max(g["n_true"], 1) for g in val_g]))
        figures["graph_edges"] = float(np.mean([g["edges"].shape[1] for g in val_g]))
        if previous is None:
            filt, filter_threshold = _train_filter(train_g, val_g, filter_hidden, filter_epochs, negative_fraction,
                                                   filter_efficiency, learning_rate, rng, task, advance)
        else:
            filt, filter_threshold = previous.filter, previous.filter_threshold
        figures["filter_threshold"] = filter_threshold
        figures["seconds_filter_training"] = time.perf_counter() - start - figures["seconds_module_map"]

        # 3. the interaction network on the filtered graphs
        filtered = []
        for i, g in enumerate(graphs):
            filter_scores = _edge_scores(filt, g, g["edges"])
            keep = filter_scores > filter_threshold
            filtered.append({**g, "edges": g["edges"][:, keep], "y": g["y"][keep]})
            if i >= len(graphs) - n_val:  # the validation events' tracks are built to choose the edge threshold
                filtered[-1]["reserve"] = g["edges"][:, filter_scores > BRIDGE_FILTER].astype(np.int64)
            del g["edges"]
        train_f, val_f = filtered[:-n_val], filtered[-n_val:]
        figures["filter_efficiency"] = float(np.mean([g["y"].sum() / max(g["n_true"], 1) for g in val_f]))
        figures["filter_edges"] = float(np.mean([g["edges"].shape[1] for g in val_f]))
        figures["filter_purity"] = float(np.mean([g["y"].mean() if len(g["y"]) else 0.0 for g in val_f]))
        if bar:
            bar.console.print(f"graph: efficiency {figures['graph_efficiency']:.4f}, {figures['graph_edges']:,.0f} "
                              f"edges; after the filter: {figures['filter_efficiency']:.4f}, "
                              f"{figures['filter_edges']:,.0f} edges, purity {figures['filter_purity']:.4f}")
        pos_weight = float(sum((~g["y"]).sum() for g in train_f) / max(sum(g["y"].sum() for g in train_f), 1))
        gnn = InteractionNetwork(hidden, n_iterations)
        if previous is not None:
            gnn = previous.gnn
            gnn.train()
        elif init_gnn is not None:
            start_from = GNNModel.load(init_gnn).gnn
            if start_from.hparams != gnn.hparams:
                raise DeepRecoError(f"{init_gnn}: its network has {start_from.hparams}, not {gnn.hparams}")
            gnn.load_state_dict(start_from.state_dict())
            figures["init_gnn"] = str(init_gnn)
        gnn_lr = learning_rate if gnn_learning_rate is None else gnn_learning_rate
        opt = torch.optim.Adam(gnn.parameters(), lr=gnn_lr)
        # each step is one azimuthal sector of one event, with about step_edges edges (small steps keep the
        # tensors under the allocator's mmap threshold, which makes them much faster on CPU)
        sectors = [max(1, int(np.ceil(g["edges"].shape[1] / step_edges))) for g in train_f]
        steps = [(i, s) for i in range(len(train_f)) for s in range(sectors[i])]
        n_steps = gnn_epochs * len(steps)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=gnn_lr, total_steps=n_steps)
        ckpt = out_path.with_name(out_path.name + ".ckpt")
        best = (np.inf, 0, None)
        history = {"train_loss": [], "val_loss": [], "val_efficiency": [], "val_purity": []}
        t = task("interaction network", gnn_epochs)
        for epoch in range(gnn_epochs):
            gnn.train()
            total = 0.0
            for k in rng.permutation(len(steps)):
                g = train_f[steps[k][0]]
                phi = g["coords"][g["edges"][0], 4]
                n_sec = sectors[steps[k][0]]
                sector = ((phi + np.pi) / (2 * np.pi) * n_sec).astype(np.int64) % n_sec
                sel = sector == steps[k][1]
                edges, y = g["edges"][:, sel], g["y"][sel]
                nodes, local = np.unique(edges, return_inverse=True)
                local = local.reshape(2, -1)
                attr = edge_features(g["coords"], g["x"], edges)
                logits = gnn(torch.from_numpy(g["x"][nodes]), torch.from_numpy(attr), torch.from_numpy(local))
                loss = _bce(logits, torch.from_numpy(y.astype(np.float32)), pos_weight)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(gnn.parameters(), 1.0)
                opt.step()
                sched.step()
                total += float(loss.detach())
            gnn.eval()
            val_loss, tp, fp, fn = 0.0, 0, 0, 0
            for g in val_f:
                s = _edge_scores(gnn, g, g["edges"])
                val_loss += float(_bce(torch.logit(torch.from_numpy(s).clamp(1e-6, 1 - 1e-6)),
                                       torch.from_numpy(g["y"].astype(np.float32)), pos_weight))
                tp += int((s > 0.5)[g["y"]].sum())
                fp += int((s > 0.5)[~g["y"]].sum())
                fn += int((s <= 0.5)[g["y"]].sum())
            val_loss /= len(val_f)
            history["train_loss"].append(total / len(steps))
            history["val_loss"].append(val_loss)
            history["val_efficiency"].append(tp / max(tp + fn, 1))
            history["val_purity"].append(tp / max(tp + fp, 1))
            if val_loss < best[0]:
                best = (val_loss, epoch + 1, {k: v.detach().clone() for k, v in gnn.state_dict().items()})
            atomic_save({"gnn": gnn.state_dict(), "filter": filt.state_dict(), "optimizer": opt.state_dict(),
                               "epoch": epoch + 1, "history": history}, ckpt)
            advance(t, f"loss {history['train_loss'][-1]:.4f}  val {val_loss:.4f}  "
                       f"eff {history['val_efficiency'][-1]:.3f}  pur {history['val_purity'][-1]:.3f}")
        gnn.load_state_dict(best[2])
        gnn.eval()
        figures.update(history)
        figures["best_epoch"] = best[1]
        figures["edge_efficiency"] = history["val_efficiency"][best[1] - 1]
        figures["edge_purity"] = history["val_purity"][best[1] - 1]

        # 4. the track-building threshold
        val_scores = [_edge_scores(gnn, g, g["edges"]) for g in val_f]
        score_by_threshold = threshold_scan([g["event"] for g in val_f], [g["edges"] for g in val_f], val_scores,
                                            [g["reserve"] for g in val_f])
        edge_threshold = max(score_by_threshold, key=score_by_threshold.get)
        figures["val_score_by_threshold"] = score_by_threshold
        figures["edge_threshold"] = edge_threshold
        figures["val_score"] = score_by_threshold[edge_threshold]
    finally:
        if bar is not None:
            bar.stop()
    figures["seconds"] = time.perf_counter() - start
    figures.update(n_parameters_filter=n_parameters(filt), n_parameters_gnn=n_parameters(gnn), seed=seed,
                   data=str(data_dir), machine=f"{platform.machine()} {platform.system()}",
                   threads=torch.get_num_threads())
    model = GNNModel(module_map, filt, gnn, filter_threshold, edge_threshold, figures)
    model.save(out_path)
    return {**figures, "out": str(out_path), "checkpoint": str(ckpt)}
