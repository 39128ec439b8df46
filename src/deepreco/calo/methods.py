"""Every clustering method behind one interface: ``reconstruct(event) -> (hit_table, clusters)``.

``hit_table``: hit_id, cluster_id (-1: in no cluster), hit_class (the method's class of the hit);
``clusters``: cluster_id, energy [GeV], kind (1 EM, 2 hadronic, 3 MIP), n_hits, x, y, z.
Methods by name: ``clue``, ``gravnet``, ``edgeconv``, and any of them + ``+drn`` for the DRN's energies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import DeepRecoError
from .clue import ClueClustering, finish, hit_classes
from .condensation import condense
from .features import hit_features
from .geometry import DEFAULT, Calorimeter
from .modelfile import SHIPPED, load_model
from .train import batch_clusters, drn_inputs


@dataclass
class OCClustering:
    """A trained condensation network and the condensation inference (t_beta, t_d)."""

    model: torch.nn.Module
    t_beta: float = 0.3
    t_d: float = 0.5
    name: str = "gravnet"
    geometry: Calorimeter = DEFAULT

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
        energy = e_sum * np.exp(out["energy"].numpy()[alphas])
        kind = logits[alphas][:, 1:].argmax(1) + 1
        ht, cl = finish(hits, labels, self.geometry, kind=dict(enumerate(kind)), energy=dict(enumerate(energy)))
        return _with_class(ht, cl, hit_class)


@dataclass
class ClueMethod:
    clue: ClueClustering = field(default_factory=ClueClustering)
    name: str = "clue"

    def reconstruct(self, event):
        ht, cl = self.clue.reconstruct(event)
        return _with_class(ht, cl, hit_classes(ht, cl))


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
        return ht, cl


def _with_class(ht: pd.DataFrame, cl: pd.DataFrame, hit_class: np.ndarray):
    return ht.assign(hit_class=np.asarray(hit_class, dtype=np.int64)), cl


def _model_path(name: str, models_dir: Path | None) -> Path:
    base = Path(models_dir) if models_dir is not None else SHIPPED
    return base / f"calo_{name}.pt"


def get_method(name: str, models_dir: Path | None = None, geometry: Calorimeter = DEFAULT):
    """A method by name: clue, gravnet, edgeconv, or one of them with +drn; networks come from
    ``models_dir`` (the shipped models by default) as calo_<name>.pt."""
    base_name, _, suffix = name.partition("+")
    if base_name == "clue":
        method = ClueMethod(ClueClustering(geometry=geometry))
    elif base_name in ("gravnet", "edgeconv"):
        model, extra = load_model(_model_path(base_name, models_dir), kinds=(base_name,))
        method = OCClustering(model, extra.get("t_beta", 0.3), extra.get("t_d", 0.5), base_name, geometry)
    else:
        raise DeepRecoError(f"unknown method {name!r}; expected clue, gravnet, edgeconv, optionally with +drn")
    if suffix:
        if suffix != "drn":
            raise DeepRecoError(f"unknown method {name!r}: only +drn may follow a clustering method")
        drn, _ = load_model(_model_path("drn", models_dir), kinds=("drn",))
        method = DRNCorrected(method, drn)
    return method
