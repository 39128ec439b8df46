"""Seed 004's pipeline as one method: DBSCAN seeds, LSTM extension, nearest-neighbour fitting per layer.

For every seed (a track's first five hits found by DBSCAN over a dense grid of arcs, `seeding.grid_seeds`; with
``seeding="dbscan"`` the first five hits of a cluster of the seed's few arcs) the LSTM predicts ten points, the
five seed hits and the next five, and the next five are fitted to real hits, the nearest of their layer ("y5' ~
y9'"): with ``fit="point"`` each predicted point on the layer nearest it, as the seed does; with ``fit="path"``
(the default) on each layer the path through the predictions crosses, which is robust to the predictions'
uncertainty along the track (see `assign`). The seed stops there; here the track's last five hits are fed
back for ``n_rounds`` rounds in all, so that tracks longer than ten hits are followed to the end. All seeds of
an event go through the model together, in batches. Tracks are then merged into one submission: a hit
claimed by several tracks goes to the one whose prediction came nearest to it (a seed keeps its own hits),
and tracks left with fewer than ``min_hits`` hits are dropped.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ...errors import EventError
from ...event import Event
from ...progress import stage
from ..base import Method, register
from ..dbscan import DBSCANTracks, _one_hit_per_module
from .assign import LayerIndex, layer_crossings, match, nearest_free, overlap_hits, query_layers, resolve
from .features import N_OUT, N_SEED, cartesian, model_inputs, seed_pt
from .seeding import cluster_seeds, fitted_seeds, grid_seeds, hypothesis_seeds, seed_quality, true_seeds


def cached_model(path=None):
    """The model of a file (None: the shipped one), loaded once per process."""
    from ...modelfile import cached  # torch is imported only when a model is needed
    from .model import load_model

    return cached(load_model, path)


def predict_next(net, norm, seed_xyz: np.ndarray, batch_size: int = 16384, cells: np.ndarray | None = None
                 ) -> np.ndarray:
    """(B, 5, 3) hits -> (B, 5, 3) predicted positions of the next five hits, in batches. ``cells``: the hits'
    (B, 5, 2) cluster directions, for a model whose inputs include them."""
    import torch

    out = np.zeros((len(seed_xyz), N_OUT - N_SEED, 3))
    with torch.no_grad():
        for i in range(0, len(seed_xyz), batch_size):
            part = None if cells is None else cells[i:i + batch_size]
            inputs, features, phi_ref = model_inputs(seed_xyz[i:i + batch_size], norm, part)
            pred = norm.decode(net(torch.from_numpy(inputs)).numpy(), features)
            out[i:i + batch_size] = cartesian(pred[:, N_SEED:], phi_ref)
    return out


def predict_mean(members, seed_xyz: np.ndarray, batch_size: int = 16384, cells: np.ndarray | None = None
                 ) -> np.ndarray:
    """`predict_next` of an ensemble, ``members`` a list of (net, normalisation): the mean of the members'
    predicted positions. Each member is trained on a squared error, so it predicts the conditional mean of the
    next hits; the mean of several such estimates keeps that target and averages their independent errors
    (mean squared error never above the members' average). A median would need three members to differ from it."""
    points = [predict_next(net, norm, seed_xyz, batch_size, cells) for net, norm in members]
    return points[0] if len(points) == 1 else np.mean(points, axis=0)


def learned_arcs() -> dict:
    """The shipped arc hypotheses (`DBSCANTracks` arguments ``curvatures``, ``z0_values``), learned from training
    events by ``scripts/learn_arcs.py``."""
    import json
    from importlib.resources import files

    arcs = json.loads(files("deepreco").joinpath("data/dbscan_arcs.json").read_text())
    return {"curvatures": tuple(arcs["curvatures"]), "z0_values": tuple(arcs["z0_values"])}


SEEDINGS = ("dbscan", "hypotheses", "grid", "ckf", "gnn", "truth")
# The shipped ensemble: the shipped model and three of its size trained on other events with seeds 0, 1, 2
# (``scripts/train_lstm_members.py``); with true seeds it scores 0.752 / 0.792 against the shipped model's
# 0.727 / 0.770 (tracking events / real lists 1001, 1003; ``benchmarks/lstm_ensembles.py``).
SHIPPED_ENSEMBLE = ("outward", "member1", "member2", "member3")


@register("lstm")
class LSTMTracks(Method):
    """DBSCAN seeding + LSTM track extension + k-nearest-neighbour hit fitting (seed 004).

    Parameters: ``model`` (a model file; None: the one shipped with deepreco), ``models`` (several model files,
    an ensemble: each track's next points are the mean of the models' predictions, see `predict_mean`; instead of
    ``model``), ``seeding`` (``grid``, the default: DBSCAN over a dense grid of arcs, every cluster's best five
    hits on a helix, the best fits first, a second pass and a forward pass (tracks on fewer than five pixel disks),
    each completed to its track's first five hits, `seeding.grid_seeds`, with ``grid`` its parameters: 82 % of the
    tracks seeded against 26-32 %, issue 22; ``dbscan``: the seeds
    of the final DBSCAN labelling of the ``arcs``;
    ``hypotheses``: of every one of the ``arcs``' clusters, duplicates merged, `seeding.hypothesis_seeds`;
    ``ckf``: the first five hits of each `ckf` track, `ckf_seeds`; ``gnn``: the first five hits of each track
    the graph network builds, `gnn_seeds`; ``truth``: the first five hits of each true particle, to judge
    extension alone), ``dbscan`` (parameters of the DBSCAN seeding), ``n_rounds`` (prediction rounds of five
    hits), ``max_distance`` [mm] (farthest a fitted hit may lie from the predicted path's crossing of its layer,
    in the layer's weighted distance), ``min_found`` (a round that fits fewer hits ends the track),
    ``min_hits`` (shortest track kept), ``batch_size`` (seeds per forward pass), ``fit`` (``path`` or
    ``point``, see above), ``hits_per_round`` (fitted hits kept per round: 5 as the seed, fewer to take only
    the nearest, most certain predictions before predicting again), ``along_weight`` (weight of the distance
    along the beam direction of a layer in the fit, see `assign.LayerIndex`), ``clean_seeds`` (outlier removal
    in each cluster before its first five hits are taken, see `seeding.remove_outliers`), ``max_first_radius``
    [mm] (DBSCAN seeds must start inside it, in the pixel layers), ``overlap_distance`` (how far, in the fit's
    distance, a second hit of a track on one layer may be, where modules overlap; 0: none is picked up),
    ``keep_clusters`` (a DBSCAN-seeded track also claims the rest of its cluster's hits, after its seed hits and
    before the LSTM's fitted hits; False: the seed's pipeline as it is, seed + fitted hits only),
    ``complete_inward`` (seed with the outermost five hits of each cluster, complete the track toward the beam
    line with a model trained inward, ``inward_model``, None: ``lstm_tracks_inward.pt`` beside the shipped
    model, which ``scripts/train_lstm.py --directions outward,inward`` makes; not shipped), ``arcs`` (the
    DBSCAN seeding's curvature and z0 hypotheses: ``scan``, `DBSCANTracks`'s even scan, the default;
    ``learned``, seed 004's arcs learned from training events and shipped, ``data/dbscan_arcs.json`` from
    ``scripts/learn_arcs.py``: better seeds on mu = 200 events, but its z0 values miss a vertex at z = 0 exactly,
    and a gun of muons from the origin loses most of them; ``dbscan`` overrides either), ``seed_fit`` (outlier
    removal by a helix fit: each cluster's earliest 5 of its first 7 hits that one helix from the beam line
    fits, see `seeding.fitted_seeds`; False: the first 5 as they are), ``ckf`` (parameters of `ckf` for
    ``seeding="ckf"``), ``gnn`` (parameters of `gnn` for ``seeding="gnn"``; by default its graph's own tracks,
    ``kalman`` and ``later_passes`` off), ``low_pt_model`` (a model file for curved tracks, trained with
    ``pt_range: [0, low_pt_below]``: the seed's "models per kind of track"; None: one model for all) and
    ``overlap_fit`` (how a track's second hit on a layer is chosen: ``layer``, the nearest in the layer's distance;
    ``direction``, the nearest the track's local direction, `assign.overlap_hits`: 0.744 / 0.786 against
    0.727 / 0.770 with true seeds on the tracking events / real lists 1001, 1003, `benchmarks/lstm_overlaps.py`;
    but with the DBSCAN seeding, whose tracks claim mixed clusters, 0.274 against 0.280 on the ten development
    lists: not the default), ``low_pt_below``
    [GeV] (each round, a track whose last five hits' circle through the origin has a lower pT,
    `features.seed_pt`, is predicted by ``low_pt_model``, the others by ``model``/``models``), ``ensemble`` (True:
    the shipped model and the three shipped members of equal quality, `SHIPPED_ENSEMBLE`, predict together, as
    ``models``, in-process only; None, the default: so when no ``model``, ``models``, ``server`` or
    ``low_pt_model`` is given, else one model. Seed 004's own "inference & ensembling" stage; +0.014 on the
    tracking events for about a second more an event (the extension 1.6 -> 2.8 s on a generated event, whose grid
    seeding takes 90 s); False: the shipped model alone), ``later_seeds`` (True: after the grid seeding,
    `ckf`'s displaced and outer passes on the hits the grid's clusters leave give more seeds, the first five hits
    of each of their tracks, the rest of the track their cluster, `add_later_seeds`; the grid's arcs start at the
    beam line and seed almost no particle made more than 10 mm from it, 0.136 of list 1001's score weight; past
    the seed: ``ckf``'s triplets seed what the seed's DBSCAN cannot).
    """

    trackml_modules = True
    # the parameters' ranges, checked when the method is made (`deepreco.registry.out_of_range`)
    ranges = {"n_rounds": ">= 1", "max_distance": "> 0", "min_found": ">= 1", "min_hits": ">= 1", "batch_size": ">= 1",
              "hits_per_round": ">= 1", "along_weight": ">= 0", "max_first_radius": "> 0", "overlap_distance": ">= 0",
              "low_pt_below": ">= 0"}

    def __init__(self, model=None, models=None, seeding: str = "grid", dbscan: dict | None = None, n_rounds: int = 3,
                 max_distance: float = 25.0, min_found: int = 2, min_hits: int = 5, batch_size: int = 16384,
                 fit: str = "path", hits_per_round: int = 5, along_weight: float = 0.5,
                 clean_seeds: bool = False, max_first_radius: float = 200.0, overlap_distance: float = 10.0,
                 complete_inward: bool = False, inward_model=None, keep_clusters: bool = True,
                 server: str | None = None, fallback: str | None = None, arcs: str = "scan",
                 seed_fit: bool = False, ckf: dict | None = None, gnn: dict | None = None, grid: dict | None = None,
                 low_pt_model=None, low_pt_below: float = 0.5, ensemble: bool | None = None,
                 overlap_fit: str = "layer", later_seeds: bool = False):
        from ...errors import DeepRecoError

        if ensemble is not None and not isinstance(ensemble, (bool, np.bool_)):
            raise DeepRecoError(f"lstm: parameter ensemble must be true or false, got {ensemble!r}")
        if ensemble and (model is not None or models is not None):
            raise DeepRecoError("lstm: ensemble=True uses the shipped models; give no model or models with it")
        if ensemble is None:
            ensemble = model is None and models is None and server is None and low_pt_model is None
        self.ensemble = bool(ensemble)
        self.model = model
        self.models = [str(m) for m in models] if models is not None else None
        self._paths = self.models  # the ensemble's model files (None: one model, ``model``)
        if ensemble:
            from .model import shipped_model_path

            self._paths = [str(shipped_model_path(member)) for member in SHIPPED_ENSEMBLE]
        self.seeding = seeding
        self.dbscan = dict(dbscan or {})
        self.ckf = dict(ckf or {})
        self.gnn = dict(gnn or {})
        self.grid = dict(grid or {})
        self.low_pt_model = None if low_pt_model is None else str(low_pt_model)
        self.low_pt_below = float(low_pt_below)
        self.n_rounds = n_rounds
        self.max_distance = max_distance
        self.min_found = min_found
        self.min_hits = min_hits
        self.batch_size = batch_size
        self.fit = fit
        self.hits_per_round = hits_per_round
        self.along_weight = along_weight
        self.clean_seeds = clean_seeds
        self.max_first_radius = max_first_radius
        self.overlap_distance = overlap_distance
        self.complete_inward = complete_inward
        self.inward_model = inward_model
        self.keep_clusters = keep_clusters
        self.server, self.fallback = server, fallback
        from ...export.client import connect

        if seeding not in SEEDINGS:
            raise DeepRecoError(f"unknown seeding {seeding!r}; expected one of {', '.join(SEEDINGS)}")
        import inspect

        known = set(inspect.signature(grid_seeds).parameters) - {"event"}
        if set(self.grid) - known:
            raise DeepRecoError(f"lstm: unknown grid parameter(s) {', '.join(sorted(set(self.grid) - known))}; "
                                f"expected some of {', '.join(sorted(known))}")
        if arcs not in ("learned", "scan"):
            raise DeepRecoError(f"unknown arcs {arcs!r}; expected learned or scan")
        self.arcs = arcs
        self.seed_fit = seed_fit
        if fit not in ("path", "point"):
            raise DeepRecoError(f"unknown fit {fit!r}; expected path or point")
        if overlap_fit not in ("layer", "direction"):
            raise DeepRecoError(f"unknown overlap_fit {overlap_fit!r}; expected layer or direction")
        self.overlap_fit = overlap_fit
        if self.models is not None and (model is not None or not self.models):
            raise DeepRecoError("lstm: give one model file (model) or a non-empty list of them (models), not both")
        if self._paths is not None and server is not None:
            raise DeepRecoError("lstm: an ensemble (models) runs in-process only; no served network")
        if self.low_pt_model is not None and server is not None:
            raise DeepRecoError("lstm: a low_pt_model runs in-process only; no served network")
        for path in [*(self._paths or [model]), *([self.low_pt_model] if self.low_pt_model else [])]:
            norm = cached_model(path)[1]  # a bad model file is reported now, not at the first event
            if server is not None and norm.inputs_set != "polar":
                raise DeepRecoError(f"lstm: the served network takes the seed's polar inputs; this model reads "
                                    f"{norm.inputs_set}: run it in-process")
        if complete_inward and server is not None:
            raise DeepRecoError("the inward lstm has no served network: complete_inward runs in-process only")
        if complete_inward:
            cached_model(self._inward_path())
        self._remote = connect(server, ("lstm",), fallback, what="lstm", model=model) or {}
        if seeding == "gnn":
            from .. import get_method

            self._gnn = get_method("gnn", **{"kalman": False, "later_passes": False, **self.gnn})  # bad ones: now
        self.later_seeds = bool(later_seeds)
        if self.later_seeds:
            if seeding != "grid":
                raise DeepRecoError(f"lstm: later_seeds adds to the grid seeding, not to seeding={seeding!r}")
            from .. import get_method

            self._ckf = get_method("ckf", **self.ckf)  # a bad parameter is reported now

    def seeds(self, event: Event) -> np.ndarray:
        """(S, 5) hit rows of the event's seeds."""
        if self.seeding == "truth":
            return true_seeds(event)
        if self.seeding == "ckf":
            return self.ckf_seeds(event)
        if self.seeding == "gnn":
            return self.gnn_seeds(event)
        if self.seeding == "grid":
            seeds, self._labels = grid_seeds(event, **{"max_first_radius": self.max_first_radius, **self.grid})
            if self.later_seeds:
                seeds, self._labels = self.add_later_seeds(event, seeds, self._labels)
            return seeds
        if self.seeding == "hypotheses":
            per_hypothesis = []
            DBSCANTracks(**self.dbscan_parameters()).cluster(event.hits, per_hypothesis)
            seeds, self._labels = hypothesis_seeds(event, per_hypothesis, max_first_radius=self.max_first_radius)
            return seeds
        labels = self.cluster_labels(event)
        self._labels = labels
        return self.seeds_of_clusters(event, labels)

    def ckf_seeds(self, event: Event) -> np.ndarray:
        """(S, 5) hit rows: the first five hits (outward, one per layer) of each track of `ckf` (its triplet
        seeds followed by its Kalman filter), with the method's ``ckf`` parameters; the rest of its tracks is
        not used: the LSTM extends the five hits."""
        from ..ckf import CKFTracks

        found = CKFTracks(**self.ckf).find(event)
        return cluster_seeds(event, found["track_of_hit"])

    def gnn_seeds(self, event: Event) -> np.ndarray:
        """(S, 5) hit rows: the first five hits (outward, one per layer) of each track of `gnn` (the module-map
        graph, the edge filter, the interaction network and the track building; by default without its Kalman
        filter and later passes, so that the seeds are the graph's own), with the method's ``gnn`` parameters;
        the LSTM extends the five hits, the rest of the graph's track is not used."""
        out = self._gnn.score_graph(event)
        return cluster_seeds(event, self._gnn.tracks(event, out["edges"], out["scores"], out["reserve"]))

    def add_later_seeds(self, event: Event, seeds: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``later_seeds``: `ckf`'s displaced and outer passes (`CKFTracks.extend`, the method's ``ckf``
        parameters) on the hits no grid seed's cluster holds; the first five hits (outward, one per layer) of each
        of their tracks become a seed when no grid seed holds one of them, and the track's hits its cluster (as a
        grid seed's cluster, claimed by ``keep_clusters``). Returns the seeds and labels with them added."""
        found = self._ckf.extend(event, labels)
        new = np.where((found >= 0) & (labels < 0), found, -1)
        more = cluster_seeds(event, new)
        taken = np.zeros(len(labels), bool)
        taken[seeds] = True
        more = more[~taken[more].any(axis=1)]
        rows = np.arange(len(seeds), len(seeds) + len(more))
        row_of = np.full(int(new.max(initial=-1)) + 1, -1, np.int64)
        row_of[new[more[:, 0]]] = rows
        labels = labels.copy()
        track_hits = np.flatnonzero(new >= 0)  # all free before: a track that gave no seed stays -1
        labels[track_hits] = row_of[new[track_hits]]
        labels[more] = rows[:, None]
        return np.concatenate([seeds, more]), labels

    def cluster_labels(self, event: Event) -> np.ndarray:
        """The DBSCAN seeding's cluster of each hit (-1: none), one hit per module and cluster."""
        finder = DBSCANTracks(**self.dbscan_parameters())
        return _one_hit_per_module(event.hits, finder.cluster(event.hits))

    def seeds_of_clusters(self, event: Event, labels: np.ndarray) -> np.ndarray:
        """(S, 5) hit rows: the seeds of clusters (`cluster_labels`), with ``seed_fit`` and ``clean_seeds``."""
        seeds = fitted_seeds(event, labels) if self.seed_fit else cluster_seeds(event, labels, clean=self.clean_seeds)
        # A track from the beam line starts in the pixel layers; clusters that start farther out are mostly
        # chance alignments of noise hits in the strips.
        first = event.hits[["x", "y"]].to_numpy(np.float64)[seeds[:, 0]]
        return seeds[np.hypot(first[:, 0], first[:, 1]) < self.max_first_radius]

    def follow(self, event: Event, seeds: np.ndarray, labels: np.ndarray | None = None) -> pd.DataFrame:
        """The tracks of given seeds ((S, 5) hit rows of ``event``): LSTM extension, fitting and assignment, the
        pipeline after its seeding. ``labels``: the clusters whose rest DBSCAN seeds claim (``keep_clusters``;
        None: those of the method's last seeding of this event)."""
        hit_ids = event.hits["hit_id"].to_numpy(np.int64)
        start = time.perf_counter()
        if labels is not None:
            self._labels = labels
        self._last = {"seeds": seeds, "seconds_seeding": 0.0, "seconds_extension": 0.0}
        if len(seeds) == 0:
            return pd.DataFrame({"hit_id": np.zeros(0, np.int64), "track_id": np.zeros(0, np.int64)})
        index = LayerIndex(event.hits, along_weight=self.along_weight)
        track, cost = self.extend(event, seeds, index)
        return self._assign(event, seeds, index, track, cost, False, hit_ids, start)

    def dbscan_parameters(self) -> dict:
        """The DBSCAN seeding's parameters: the learned arcs (``arcs="learned"``) under ``dbscan``."""
        if self.arcs == "scan":
            return dict(self.dbscan)
        return {**learned_arcs(), **self.dbscan}

    def _inward_path(self):
        from .model import shipped_model_path

        return self.inward_model if self.inward_model is not None else shipped_model_path("inward")

    def outer_seeds(self, event: Event) -> np.ndarray:
        """(S, 5) hit rows: the outermost five hits of each DBSCAN cluster, from the outside in."""
        finder = DBSCANTracks(**self.dbscan_parameters())
        labels = _one_hit_per_module(event.hits, finder.cluster(event.hits))
        return cluster_seeds(event, labels, clean=self.clean_seeds, outermost=True)

    def seed_quality(self, event: Event) -> dict:
        return seed_quality(event, self.seeds(event))

    def extend(self, event: Event, seeds: np.ndarray, index: LayerIndex | None = None, model=None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Follow each seed with ``model`` (None: the method's): (S, T) hit rows of each track (-1 padded)
        and the matching costs."""
        if model is None and self._paths is not None:
            members = [cached_model(path)[:2] for path in self._paths]
        else:
            members = [cached_model(self.model if model is None else model)[:2]]
        if model is None and "lstm" in self._remote:
            members = [(self._remote["lstm"], members[0][1])]
        low = [cached_model(self.low_pt_model)[:2]] if model is None and self.low_pt_model else None
        directions = None
        if any(norm.needs_cells for _, norm in [*members, *(low or [])]):
            from ..gnn.features import cluster_directions

            if event.cells is None or len(event.cells) == 0:
                raise EventError(f"{event.sources.get('hits', f'event {event.event_id}')}: this lstm model reads the "
                                 "hits' cluster directions; the event has no cells")
            directions = cluster_directions(event)
        index = index or LayerIndex(event.hits, along_weight=self.along_weight)
        n_new = N_OUT - N_SEED
        n = len(seeds)
        per_round = max(1, min(self.hits_per_round, n_new))
        width = N_SEED + per_round * self.n_rounds
        track = np.full((n, width), -1, np.int64)
        cost = np.full((n, width), np.inf)
        track[:, :N_SEED] = seeds
        cost[:, :N_SEED] = -1.0
        length = np.full(n, N_SEED)
        active = np.ones(n, bool)
        with stage("prediction", total=self.n_rounds) as advance:
            self._rounds(members, index, track, cost, length, active, advance, low, directions)
        return track, cost

    def _predict(self, members, low, last: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        """The next five points of each track from its (B, 5, 3) last hits (and their (B, 5, 2) cluster
        directions): ``members``' prediction, or ``low``'s for the tracks whose last hits' circle has a pT under
        ``low_pt_below``."""
        if low is None:
            return predict_mean(members, last, self.batch_size, cells)
        curved = seed_pt(last) < self.low_pt_below
        points = np.zeros((len(last), N_OUT - N_SEED, 3))
        for which, nets in ((~curved, members), (curved, low)):
            if which.any():
                points[which] = predict_mean(nets, last[which], self.batch_size,
                                             None if cells is None else cells[which])
        return points

    def _rounds(self, members, index, track, cost, length, active, advance, low=None, directions=None) -> None:
        """The rounds of `extend`: predict each active track's next hits, match them, grow ``track``/``cost``."""
        n_new = N_OUT - N_SEED
        per_round = max(1, min(self.hits_per_round, n_new))
        for k in range(self.n_rounds):
            if k:
                advance()
            idx = np.flatnonzero(active)
            if len(idx) == 0:
                break
            last_rows = track[idx[:, None], length[idx, None] - N_SEED + np.arange(N_SEED)]
            last = index.xyz[last_rows]
            points = self._predict(members, low, last, None if directions is None else directions[last_rows])
            if self.fit == "point":
                which = np.repeat(np.arange(len(idx)), n_new)
                hit, dist = match(index, points.reshape(-1, 3), track[idx[which]], self.max_distance)
            else:
                path = np.concatenate([last[:, -1:], points, 2.0 * points[:, -1:] - points[:, -2:-1]], axis=1)
                which, crossing, layer, _ = layer_crossings(index, path, index.layer[last_rows[:, -1]])
                rows, dist = query_layers(index, crossing, layer)
                hit, dist = nearest_free(rows, dist, track[idx[which]], self.max_distance)
            found = hit >= 0
            which, hit, dist = which[found], hit[found], dist[found]
            _, first = np.unique(which * len(index.xyz) + hit, return_index=True)  # a hit once per track
            first = np.sort(first)
            which, hit, dist = which[first], hit[first], dist[first]
            start = np.searchsorted(which, which)  # `which` is sorted: rank of each hit within its track
            rank = np.arange(len(which)) - start
            keep = rank < per_round
            which, hit, dist, rank = which[keep], hit[keep], dist[keep], rank[keep]
            position = length[idx[which]] + rank
            track[idx[which], position] = hit
            cost[idx[which], position] = dist
            n_found = np.bincount(which, minlength=len(idx))
            length[idx] += n_found
            active[idx] = n_found >= min(self.min_found, per_round)

    @property
    def last_run(self) -> dict:
        """Extras of the last event reconstructed: its ``seeds`` (S, 5) hit rows, ``seconds_seeding`` and
        ``seconds_extension`` (model, fit and merge)."""
        return dict(getattr(self, "_last", {}))

    def _reconstruct(self, event: Event) -> pd.DataFrame:
        hit_ids = event.hits["hit_id"].to_numpy(np.int64)
        start = time.perf_counter()
        inward = self.complete_inward and self.seeding == "dbscan"
        with stage("seeding"):
            seeds = self.outer_seeds(event) if inward else self.seeds(event)
        seeded = time.perf_counter()
        self._last = {"seeds": seeds, "seconds_seeding": seeded - start, "seconds_extension": 0.0}
        if len(seeds) == 0:
            return pd.DataFrame({"hit_id": np.zeros(0, np.int64), "track_id": np.zeros(0, np.int64)})
        index = LayerIndex(event.hits, along_weight=self.along_weight)
        if inward:
            # DBSCAN gets a track's outer hits right more often than its inner ones (the beam spot's length
            # smears z / s most at small s): seed with the outermost five, complete inward with the inward
            # model, extend outward from the same five.
            track_in, cost_in = self.extend(event, seeds, index, model=self._inward_path())
            track_out, cost_out = self.extend(event, seeds[:, ::-1], index)
            track = np.concatenate([track_in, track_out[:, N_SEED:]], axis=1)
            cost = np.concatenate([cost_in, cost_out[:, N_SEED:]], axis=1)
            inner = np.where(track_in >= 0, np.linalg.norm(index.xyz[np.maximum(track_in, 0)], axis=2), np.inf)
            innermost = track_in[np.arange(len(track_in)), np.argmin(inner, axis=1)]
            starts_inside = np.hypot(*index.xyz[innermost, :2].T) < self.max_first_radius
            track[~starts_inside] = -1
        else:
            track, cost = self.extend(event, seeds, index)
        with stage("assignment"):
            return self._assign(event, seeds, index, track, cost, inward, hit_ids, seeded)

    def _assign(self, event, seeds, index, track, cost, inward, hit_ids, seeded) -> pd.DataFrame:
        """Each hit to one of the tracks that claim it (the cheapest), the overlap hits, the short tracks dropped."""
        claim_track, claim_pos = np.nonzero(track >= 0)
        claim_hit = track[claim_track, claim_pos]
        claim_cost = cost[claim_track, claim_pos]
        if self.keep_clusters and self.seeding in ("dbscan", "hypotheses", "grid") and not inward:
            # the rest of each seed's DBSCAN cluster, claimed after the seed hits and before the LSTM's
            labels = self._labels
            seed_label = labels[seeds[:, 0]]
            order = np.argsort(seed_label)
            rows = np.flatnonzero(labels >= 0)
            pos = np.searchsorted(seed_label[order], labels[rows])
            pos = np.minimum(pos, len(order) - 1)
            hit_of_seed = seed_label[order][pos] == labels[rows]
            claim_track = np.concatenate([claim_track, order[pos[hit_of_seed]]])
            claim_hit = np.concatenate([claim_hit, rows[hit_of_seed]])
            claim_cost = np.concatenate([claim_cost, np.full(hit_of_seed.sum(), -0.5)])
        win = resolve(claim_track, claim_hit, claim_cost)
        claim_track, claim_hit = claim_track[win], claim_hit[win]
        if self.overlap_distance > 0:
            free = np.ones(len(hit_ids), bool)
            free[claim_hit] = False
            more_track, more_hit = overlap_hits(index, event.hits, claim_hit, claim_track, free,
                                                self.overlap_distance, self.overlap_fit)
            claim_track = np.concatenate([claim_track, more_track])
            claim_hit = np.concatenate([claim_hit, more_hit])
        size = np.bincount(claim_track, minlength=len(track))
        keep = size[claim_track] >= self.min_hits
        _, track_id = np.unique(claim_track[keep], return_inverse=True)
        self._last["seconds_extension"] = time.perf_counter() - seeded
        return pd.DataFrame({"hit_id": hit_ids[claim_hit[keep]], "track_id": track_id + 1})
