"""Every clustering method behind one interface: ``reconstruct(event) -> (hit_table, clusters)``.

``hit_table``: hit_id, cluster_id (-1: in no cluster), hit_class (the method's class of the hit);
``clusters``: cluster_id, energy [GeV], kind (1 EM, 2 hadronic, 3 MIP), n_hits, x, y, z.
Methods by name (the registry `CALO_METHODS`): ``clue``, ``gravnet``, ``edgeconv``, ``garnet``; `get_method` also
takes any of them + ``+drn`` for the DRN's energies.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import DeepRecoError
from ..registry import CALO
from .calibration import apply, read, shape_class
from .clue import MIP, ClueClustering, finish, hit_classes, link_hadronic, mip_pass
from .condensation import condense
from .features import hit_features
from .geometry import DEFAULT, Calorimeter
from .modelfile import SHIPPED, load_model
from .train import batch_clusters, drn_inputs

CALO_METHODS = CALO  # the names are listed in deepreco.registry
# GravNet and GarNet trained on hadronic taus under pile-up (mu 0-200) with their calibration curves (issue 23;
# `benchmarks/calo_pileup_train.py`): ``get_method("garnet", models_dir=PILEUP_MODELS)``; clue's curve there is the
# shipped one
PILEUP_MODELS = SHIPPED / "pileup"
MIP_HITS_PER_LAYER = 1.5
MIP_LAYER_FRACTION = 0.7


@dataclass
class OCClustering:
    """A trained condensation network and the condensation inference (t_beta, t_d)."""

    model: torch.nn.Module
    t_beta: float = 0.3
    t_d: float = 0.5
    name: str = "gravnet"
    geometry: Calorimeter = DEFAULT
    link_mm: float = 150.0  # `clue.link_hadronic` after the condensation (0: not)
    link_min_fraction: float = 0.0  # its ``min_fraction``
    link_late_layer: int = 0  # its ``late_layer``
    mip_layers: int = 10  # CLUE's MIP pass after it, on the hits left free (`_mip_pass`; 0: not)
    energy_head: bool = False  # True: a cluster's energy is its hits' sum times the network's correction

    @torch.no_grad()
    def reconstruct(self, event) -> tuple[pd.DataFrame, pd.DataFrame]:
        hits = event.hits
        if len(hits) == 0:
            return _with_class(*finish(hits, np.zeros(0, np.int64), self.geometry), np.zeros(0, np.int64))
        out = self.model(hit_features(hits, self.geometry))
        beta, coords = out["beta"].numpy(), out["coords"].numpy()
        labels, alphas = condense(beta, coords, self.t_beta, self.t_d)
        logits = out["logits"].numpy()
        hit_class = logits.argmax(1)
        e = hits["energy"].to_numpy()
        e_sum = np.bincount(labels[labels >= 0], weights=e[labels >= 0], minlength=len(alphas))
        energy = e_sum * np.exp(out["energy"].numpy()[alphas]) if self.energy_head else e_sum
        kind = logits[alphas][:, 1:].argmax(1) + 1
        if self.link_mm > 0 and len(alphas) > 1:
            # a hadron's pieces, as CLUE links them; a piece brings its own corrected energy
            linked = labels.copy()
            link_hadronic(hits, linked, self.geometry, self.link_mm, min_fraction=self.link_min_fraction,
                          late_layer=self.link_late_layer)
            into = np.arange(len(alphas))
            into[labels[labels >= 0]] = linked[labels >= 0]
            energy = np.bincount(into, weights=energy, minlength=len(alphas))
            labels = linked
        if self.mip_layers > 0:
            labels, kind, energy = self._mip_pass(hits, labels, kind, energy)
        ht, cl = finish(hits, labels, self.geometry, kind=dict(enumerate(kind)), energy=dict(enumerate(energy)))
        return _with_class(ht, _calibrate(self, hits, ht, cl), hit_class)


    def _mip_pass(self, hits, labels, kind, energy):
        """CLUE's MIP pass (`clue.mip_pass`) on the hits the network left in no cluster: a network gathers a few
        GeV muon's hits only in part (under half the muon's deposit in one cluster), and the chain of the rest is
        the track. A network leaves more of a shower's
        halo and of a hadron's scattered pieces free than CLUE does, and chains of those were fakes on gun
        events (a trial of the plain pass), so a chain stays only when it looks like a track: at
        most ``MIP_HITS_PER_LAYER`` hits per layer, and hits on at least ``MIP_LAYER_FRACTION`` of the layers
        from its first to its last, counting with it the network's MIP clusters (its own class) whose hits lie
        along the chain's straight line (median distance under 30 mm; they hold the rest of the muon and join
        the chain), and without the chain's hits 30 mm or more off that line. A chain's energy is the sum of its
        hits, its class MIP."""
        n = len(kind)
        trial = labels.copy()
        new = mip_pass(hits, trial, self.geometry, self.mip_layers, base=n, max_hits_per_layer=MIP_HITS_PER_LAYER)
        if len(new) == 0:
            return labels, kind, energy
        layer = hits["layer"].to_numpy(np.int64)
        x, y, z = (hits[c].to_numpy() for c in ("x", "y", "z"))
        e = hits["energy"].to_numpy()
        chain_hits = _members(trial, new)
        mips = np.asarray([m for m in np.unique(labels[labels >= 0]) if kind[m] == MIP], np.int64)
        mip_hits = _members(labels, mips)
        mip_at = np.array([[x[h].mean(), y[h].mean(), z[h].mean()] for h in mip_hits]).reshape(-1, 3)
        free_mip = np.ones(len(mips), bool)
        kept_energy, out = [], labels.copy()
        for own in chain_hits:
            # the chain's straight line x(z), y(z), refitted without its hits 30 mm off (a chain picks up noise
            # hits far from the track); a partner's hits must lie along it (same endcap)
            idx = own
            for _ in range(2):
                with warnings.catch_warnings():  # hits of one or two layers: the least-squares line is still the
                    warnings.simplefilter("ignore", np.exceptions.RankWarning)  # one to judge them by (not printed)
                    fit = np.polyfit(z[idx], np.column_stack([x[idx], y[idx]]), 1)
                d = _off_line(fit, x[own], y[own], z[own])
                if (d < 30.0).sum() < 3:
                    break
                idx = own[d < 30.0]
            near = np.flatnonzero(free_mip & (np.sign(mip_at[:, 2]) == np.sign(z[own[0]]))
                                  & (_off_line(fit, *mip_at.T) < 150.0))
            partners = [k for k in near if np.median(_off_line(fit, x[mip_hits[k]], y[mip_hits[k]],
                                                               z[mip_hits[k]])) < 30.0]
            taken = np.concatenate([own, *(mip_hits[k] for k in partners)])
            lays = np.unique(layer[np.concatenate([idx, *(mip_hits[k] for k in partners)])])  # stray hits left out
            span = lays[-1] - lays[0] + 1
            if len(lays) < MIP_LAYER_FRACTION * span or len(taken) > MIP_HITS_PER_LAYER * len(lays):
                continue
            out[taken] = n + len(kept_energy)
            kept_energy.append(e[taken].sum())
            free_mip[partners] = False
        if not kept_energy:
            return labels, kind, energy
        return (out, np.concatenate([kind, np.full(len(kept_energy), MIP)]),
                np.concatenate([energy, np.asarray(kept_energy)]))


def _off_line(fit: np.ndarray, x, y, z) -> np.ndarray:
    """Distance in x, y [mm] from the straight line x(z), y(z) of ``fit`` (np.polyfit's (2, 2) coefficients)."""
    return np.hypot(x - np.polyval(fit[:, 0], z), y - np.polyval(fit[:, 1], z))


def _members(labels: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
    """The hit indices of each label in ``ids`` (one sort, not one mask per label)."""
    order = np.argsort(labels, kind="stable")
    lo = np.searchsorted(labels[order], ids, "left")
    hi = np.searchsorted(labels[order], ids, "right")
    return [order[a:b] for a, b in zip(lo, hi, strict=True)]


@CALO_METHODS.register("clue")
@dataclass
class ClueMethod(ClueClustering):
    """CLUE, with each hit's class (EM, hadronic, MIP) from its cluster."""

    def reconstruct(self, event):
        ht, cl = super().reconstruct(event)
        return _with_class(ht, _calibrate(self, event.hits, ht, cl), hit_classes(ht, cl))


class _Network(OCClustering):
    """A shipped (or given) condensation network of one kind, by name. ``server``: the gRPC address of a server
    of the exported ``calo-<kind>`` (`deepreco.export.client`): the network runs there, the condensation here;
    it must serve the network of ``model`` (whose file still gives t_beta and t_d). ``fallback``: ``local``
    runs it in-process when the server does not answer."""

    kind = ""

    def __init__(self, model: str | Path | None = None, t_beta: float | None = None, t_d: float | None = None,
                 geometry: Calorimeter = DEFAULT, server: str | None = None, fallback: str | None = None):
        from ..export.client import connect

        self.server, self.fallback = server, fallback
        net, extra = load_model(Path(model) if model is not None else SHIPPED / f"calo_{self.kind}.pt",
                                kinds=(self.kind,))
        remote = connect(server, (f"calo-{self.kind}",), fallback, what=self.kind, model=model)
        super().__init__(remote[f"calo-{self.kind}"] if remote else net,
                         extra.get("t_beta", 0.3) if t_beta is None else float(t_beta),
                         extra.get("t_d", 0.5) if t_d is None else float(t_d), self.kind, geometry)


@CALO_METHODS.register("gravnet")
class GravNetClustering(_Network):
    """GravNet + object condensation (`.models.gravnet`)."""

    kind = "gravnet"


@CALO_METHODS.register("edgeconv")
class EdgeConvClustering(_Network):
    """DGCNN (EdgeConv) + object condensation (`.models.edgeconv`)."""

    kind = "edgeconv"


@CALO_METHODS.register("garnet")
class GarNetClustering(_Network):
    """GarNet + object condensation (`.models.garnet`): GravNet's sibling without a neighbour search."""

    kind = "garnet"


@dataclass
class DRNCorrected:
    """Another method's clusters with energies from the DRN."""

    base: object
    drn: torch.nn.Module
    name: str = ""
    min_energy: float = 0.5

    def __post_init__(self):
        self.name = self.name or f"{self.base.name}+drn"

    @torch.no_grad()
    def reconstruct(self, event):
        ht, cl = self.base.reconstruct(event)
        if len(cl) == 0:
            return ht, cl
        hits = event.hits
        feats = hit_features(hits)
        e = hits["energy"].to_numpy()
        cid = ht["cluster_id"].to_numpy()
        order = np.argsort(cid, kind="stable")
        bounds = np.searchsorted(cid[order], cl["cluster_id"].to_numpy(), side="left"), \
            np.searchsorted(cid[order], cl["cluster_id"].to_numpy(), side="right")
        samples, rows = [], []
        for r, (a, b) in enumerate(zip(*bounds, strict=True)):
            sel = order[a:b]
            e_sum = float(e[sel].sum())
            if e_sum >= self.min_energy and len(sel) >= 2:
                samples.append((drn_inputs(feats[sel], e[sel]), e_sum, 1.0))
                rows.append(r)
        if samples:
            x, batch, log_e, _ = batch_clusters(samples)
            corr = self.drn(x, batch, log_e).numpy()
            energy = cl["energy"].to_numpy().copy()
            energy[rows] = np.array([s[1] for s in samples]) * np.exp(corr)
            cl = cl.assign(energy=energy)
        return ht, _calibrate(self, hits, ht, cl)


def _calibrate(method, hits: pd.DataFrame, hit_table: pd.DataFrame, clusters: pd.DataFrame) -> pd.DataFrame:
    """The clusters with their energies through the method's ``calibration`` curves, when `get_method` gave it
    some (`deepreco.calo.calibration`)."""
    curves = getattr(method, "calibration", None)
    if not curves or len(clusters) == 0:
        return clusters
    # get_method gives curves only in the default geometry, the one they were learned in
    return clusters.assign(energy=apply(curves, clusters["energy"].to_numpy(), shape_class(hits, hit_table, clusters)))


def _with_class(ht: pd.DataFrame, cl: pd.DataFrame, hit_class: np.ndarray):
    return ht.assign(hit_class=np.asarray(hit_class, dtype=np.int64)), cl


def get_method(name: str, models_dir: Path | None = None, geometry: Calorimeter = DEFAULT,
               server: str | None = None, fallback: str | None = None, calibrated: bool = True):
    """A method by name: a registered one (clue, gravnet, edgeconv), optionally followed by ``+drn``, then by
    ``+sc`` (its clusters made into superclusters, `deepreco.calo.supercluster`); networks
    come from ``models_dir`` (the shipped models by default) as calo_<name>.pt; with ``server`` they run on
    that server (`deepreco.export.client`; ``fallback="local"``: in-process when it does not answer). Its
    energies are calibrated (`deepreco.calo.calibration`) when the calo_calibration.json of that folder has the
    name's curve, unless ``calibrated`` is False or the geometry is not the default (the one it was learned in).
    A last ``+tK`` (``clue+t3``, ``garnet+drn+t3``): all of it run on the hits within K sigma_t of the hard
    collision's time (`deepreco.calo.timing`), calibrated by the curve learned for that name when the folder has one
    (``scripts/calibrate_calo.py --methods garnet+t3``), by NAME's otherwise."""
    from ..export.client import connect
    from .timing import InTime, split_window

    base, window = split_window(name)
    if window is not None:  # NAME's calibration curve, or the one learned for NAME+tK when the folder has it
        method = get_method(base, models_dir, geometry, server, fallback, calibrated)
        own = read(Path(models_dir or SHIPPED)).get(name) if calibrated and geometry == DEFAULT else None
        if own is not None:
            method.calibration = own
        return InTime(method, window)

    if name.endswith("+sc"):  # superclusters of the method's (calibrated) clusters
        from .supercluster import Superclustered

        return Superclustered(get_method(name[:-3], models_dir, geometry, server, fallback, calibrated))
    base_name, plus, suffix = name.partition("+")
    if plus and suffix != "drn":
        raise DeepRecoError(f"unknown calorimeter method {name!r}: only +drn, then +sc, may follow a clustering "
                            "method")
    params = {"geometry": geometry}
    if models_dir is not None and "model" in CALO_METHODS.parameters(base_name):
        params["model"] = Path(models_dir) / f"calo_{base_name}.pt"
    if "server" in CALO_METHODS.parameters(base_name):  # a method with networks
        params.update(server=server, fallback=fallback)
    method = CALO_METHODS.get(base_name, **params)
    if suffix:
        drn, _ = load_model(Path(models_dir or SHIPPED) / "calo_drn.pt", kinds=("drn",))
        remote = connect(server, ("calo-drn",), fallback, what="drn",
                         model=Path(models_dir or SHIPPED) / "calo_drn.pt")
        method = DRNCorrected(method, remote["calo-drn"] if remote else drn)
    if calibrated and geometry == DEFAULT:
        method.calibration = read(Path(models_dir or SHIPPED)).get(name)
    return method
