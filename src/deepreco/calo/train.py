"""Training: the clustering networks with the object-condensation loss, the DRN on cluster energies.

One event a step (Adam, a cosine learning-rate decay, gradient clipping); a fixed seed fixes the
initialisation and the order of events. Progress goes to a rich progress bar; ``checkpoint`` writes the model
file every ``checkpoint_every`` steps and at the end.

The clustering loss per event is L_V + L_beta (``condensation``) + ``w_energy`` x the xi-weighted Huber loss of
the energy correction + ``w_class`` x the hit-class cross-entropy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .condensation import condensation_loss, property_weights
from .features import hit_features, oc_targets
from .modelfile import save_model
from .showers import MIP


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0

    def mean(self, start: int, stop: int) -> float:
        return float(np.mean(self.losses[start:stop]))


def oc_loss(out: dict, tgt: dict, w_energy: float = 1.0, w_class: float = 0.5, q_min: float = 0.1,
            s_b: float = 1.0, normalisation: str = "paper") -> tuple[torch.Tensor, dict]:
    # The paper's 1/N normalisation: the package's per-object averages divide the repulsion by all other
    # hits of the event, so nearby showers' condensation points were not pushed apart (measured: merged).
    parts = condensation_loss(out["beta"], out["coords"], tgt["object_id"], q_min=q_min, s_b=s_b,
                              normalisation=normalisation)
    xi = property_weights(out["beta"], tgt["object_id"])
    energy = (xi * F.huber_loss(out["energy"], tgt["e_target"], reduction="none", delta=0.5)).sum() / (
        xi.sum() + 1e-6)
    cls = F.cross_entropy(out["logits"], tgt["hit_class"])
    parts = {**parts, "energy": energy, "class": cls}
    total = parts["attractive"] + parts["repulsive"] + parts["coward"] + parts["noise"] + w_energy * energy \
        + w_class * cls
    return total, {k: float(v.detach()) for k, v in parts.items()}


def _progress(progress: bool, description: str, total: int):
    if not progress:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn())
    bar.start()
    return bar, bar.add_task(description, total=total, loss=float("nan"))


def _fit(model: torch.nn.Module, step_loss: Callable[[], tuple[torch.Tensor, dict]], steps: int, lr: float,
         description: str, progress: bool, checkpoint: Path | None, checkpoint_every: int | None,
         extra: dict | None, max_seconds: float | None, log: Callable[[str], None] | None = None) -> TrainResult:
    """The loop every calorimeter network trains with: Adam, cosine learning rate, gradient clipping at 5,
    progress, periodic checkpoints, a wall-clock cap; ``step_loss`` draws a batch and returns its loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.05)
    result = TrainResult()
    bar = _progress(progress, description, steps)
    start = time.perf_counter()
    model.train()
    try:
        for step in range(steps):
            total, parts = step_loss()
            opt.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            result.losses.append(float(total.detach()))
            result.steps = step + 1
            if bar is not None:
                bar[0].update(bar[1], advance=1, loss=float(np.mean(result.losses[-20:])))
            if log is not None and (step + 1) % 100 == 0:
                log(f"step {step + 1}: loss {np.mean(result.losses[-100:]):.4f} "
                    + " ".join(f"{k} {v:.3f}" for k, v in parts.items()))
            if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
                save_model(model, checkpoint, {**(extra or {}), "steps": step + 1})
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
    finally:
        if bar is not None:
            bar[0].stop()
    model.eval()
    result.seconds = time.perf_counter() - start
    if checkpoint is not None:
        save_model(model, checkpoint, {**(extra or {}), "steps": result.steps, "train_seconds": result.seconds})
    return result


def train_clustering(model: torch.nn.Module, events: Sequence, steps: int = 500, lr: float = 2e-3, seed: int = 0,
                     progress: bool = False, checkpoint: Path | None = None, checkpoint_every: int = 200,
                     extra: dict | None = None, max_seconds: float | None = None,
                     log: Callable[[str], None] | None = None) -> TrainResult:
    """Fit a condensation network on ``events`` (CaloEvents with truth) for ``steps`` steps."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = [(hit_features(e.hits), oc_targets(e)) for e in events if len(e.hits) > 0]

    def step_loss():
        x, tgt = data[int(rng.integers(len(data)))]
        return oc_loss(model(x), tgt)

    return _fit(model, step_loss, steps, lr, f"training {model.kind}", progress, checkpoint, checkpoint_every,
                extra, max_seconds, log)


# ---- DRN ----------------------------------------------------------------------------------------------------

def cluster_samples(event, min_energy: float = 1.0) -> list[tuple[torch.Tensor, float, float]]:
    """(DRN inputs, summed energy, true energy) per truth cluster (the hits a particle dominates) of at least
    ``min_energy`` GeV: the DRN's training samples. Muons are left out: a calorimeter sees their MIP track,
    not their energy."""
    hits = event.hits
    cid = event.truth["particle_id"].to_numpy()
    showering = event.particles[event.particles["kind"] != MIP]
    e_true = pd.Series(showering["energy"].to_numpy(), index=showering["particle_id"].to_numpy())
    feats = hit_features(hits)
    e = hits["energy"].to_numpy()
    out = []
    for c in np.unique(cid[cid > 0]):
        sel = np.flatnonzero(cid == c)
        e_sum = float(e[sel].sum())
        if e_sum >= min_energy and c in e_true.index:
            out.append((drn_inputs(feats[sel], e[sel]), e_sum, float(e_true[c])))
    return out


def reco_cluster_samples(event, method, min_energy: float = 1.0) -> list[tuple[torch.Tensor, float, float]]:
    """(DRN inputs, summed energy, true energy) per cluster of ``method`` that found a showering particle: the
    DRN then learns the corrections that reconstructed clusters need (lost halo, a neighbour's hits)."""
    from .metrics import particle_table

    hit_table, clusters = method.reconstruct(event)
    p = particle_table(event, hit_table, clusters)
    p = p[p["found"] & (p["kind"] != MIP)]
    feats = hit_features(event.hits)
    e = event.hits["energy"].to_numpy()
    cid = hit_table["cluster_id"].to_numpy()
    out = []
    for c, e_true in zip(p["cluster_id"], p["energy"], strict=True):
        sel = np.flatnonzero(cid == c)
        if e[sel].sum() >= min_energy:
            out.append((drn_inputs(feats[sel], e[sel]), float(e[sel].sum()), float(e_true)))
    return out


def drn_inputs(features: torch.Tensor, energy: np.ndarray) -> torch.Tensor:
    """A cluster's hit features plus each hit's share of the cluster's energy; positions relative to the
    energy-weighted centre, so the network sees the shape, not where the cluster sits."""
    w = torch.as_tensor(energy / max(energy.sum(), 1e-9), dtype=torch.float32)
    f = features.clone()
    centre = (w[:, None] * f[:, :2]).sum(0)
    f[:, :2] = (f[:, :2] - centre) * 10  # 0.1 m -> 1
    return torch.cat([f, w[:, None] * 10], dim=1)


def batch_clusters(samples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.cat([s[0] for s in samples])
    batch = torch.repeat_interleave(torch.arange(len(samples)), torch.tensor([len(s[0]) for s in samples]))
    log_e = torch.tensor([np.log(max(s[1], 1e-3)) for s in samples], dtype=torch.float32)
    target = torch.tensor([np.log(s[2] / max(s[1], 1e-3)) for s in samples], dtype=torch.float32)
    return x, batch, log_e, target


def train_drn(model: torch.nn.Module, samples: list, steps: int = 300, batch_size: int = 16, lr: float = 2e-3,
              seed: int = 0, progress: bool = False, checkpoint: Path | None = None, extra: dict | None = None,
              max_seconds: float | None = None) -> TrainResult:
    """Fit the DRN to (cluster, true energy) samples; loss: Huber on log(E_true / E_sum)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    samples = [s for s in samples if np.isfinite(s[2]) and s[2] > 0]

    def step_loss():
        pick = rng.choice(len(samples), size=min(batch_size, len(samples)), replace=False)
        x, batch, log_e, target = batch_clusters([samples[i] for i in pick])
        return F.huber_loss(model(x, batch, log_e), target, delta=0.5), {}

    return _fit(model, step_loss, steps, lr, "training drn", progress, checkpoint, None, extra, max_seconds)


# ---- the shipped models -------------------------------------------------------------------------------------

TRAIN_SEED = 1000  # training events come from seeds (1000, i); evaluation uses other seeds
VALID_SEED = 2000
# validation events for the thresholds: on 20 the tuned (t_beta, t_d) moved from model to model with the noise
N_VALID = 100


def tune_condensation(model, events, t_betas=(0.1, 0.3, 0.5, 0.7), t_ds=(0.5, 0.8, 1.2, 1.6, 2.0, 2.5)) -> dict:
    """The (t_beta, t_d) with the best efficiency - (fake rate + energy resolution) / 2 on validation events."""
    from .evaluate import run_method
    from .methods import OCClustering

    best = None
    for tb in t_betas:
        for td in t_ds:
            s, _ = run_method(OCClustering(model, tb, td, model.kind), events)
            res = s["energy_resolution"] if np.isfinite(s["energy_resolution"]) else 1.0
            score = s["efficiency"] - 0.5 * s["fake_rate"] - 0.5 * res
            if best is None or score > best["score"]:
                best = {"t_beta": tb, "t_d": td, "score": score, "efficiency": s["efficiency"],
                        "fake_rate": s["fake_rate"], "energy_resolution": s["energy_resolution"]}
    return best


def train_models(out_dir: Path, models=("gravnet", "edgeconv", "drn"), n_events: int = 300, steps: dict | None = None,
                 seed: int = 0, progress: bool = True, log: Callable[[str], None] | None = print,
                 resume: bool = False, source: str = "gun", pileup: float = 0.0) -> dict:
    """Train the shipped models on gun events (2-6 particles of e, gamma, pi+-, mu, 5-100 GeV, spread 0.3; or
    as many Pythia 8 taus with ``source="tau"``, and Poisson(``pileup``) pile-up):
    writes calo_<name>.pt into ``out_dir`` and returns what was done (steps, seconds, losses, thresholds).
    ``resume`` goes on from the weights in ``out_dir`` (same events, a fresh learning-rate schedule); the
    report then counts all steps and seconds."""
    from .features import N_FEATURES
    from .modelfile import load_model
    from .models import DRN, EdgeConvOC, GravNetOC
    from .simulate import gun_events

    steps = {"gravnet": 5500, "edgeconv": 2000, "drn": 1200, **(steps or {})}
    t0 = time.perf_counter()
    events = list(gun_events(n_events, seed=TRAIN_SEED + seed, source=source, pileup=pileup))
    valid = list(gun_events(N_VALID, seed=VALID_SEED + seed, source=source, pileup=pileup))
    what = f"{n_events} {source} events" + (f" with pile-up mu = {pileup:g}" if pileup else "")
    report = {"events": n_events, "hits_per_event": float(np.mean([len(e.hits) for e in events])),
              "simulate_seconds": time.perf_counter() - t0, "torch_threads": torch.get_num_threads(), "models": {}}
    for name in models:
        path = Path(out_dir) / f"calo_{name}.pt"
        before = {"steps": 0, "train_seconds": 0.0}
        torch.manual_seed(seed)  # the initial weights too come from the seed
        if name in ("gravnet", "edgeconv"):
            model = (GravNetOC if name == "gravnet" else EdgeConvOC)(N_FEATURES)
            if resume and path.exists():
                model, before = load_model(path, kinds=(name,))
            info = {"trained_on": f"{what}, seeds ({TRAIN_SEED + seed}, i)"}
            res = train_clustering(model, events, steps=steps[name], seed=seed + before["steps"], progress=progress,
                                   checkpoint=path, extra=info, log=log)
            res.steps += before["steps"]
            res.seconds += before["train_seconds"]
            tuned = tune_condensation(model, valid)
            save_model(model, path, {**info, "steps": res.steps, "train_seconds": res.seconds,
                                     "t_beta": tuned["t_beta"], "t_d": tuned["t_d"]})
        else:
            from .methods import get_method

            model = DRN(N_FEATURES + 1)
            samples = [s for e in events for s in cluster_samples(e)]
            n_truth = len(samples)
            # and the clusters of the methods it will correct, where they found a showering particle
            sources = ["clue"] + [m for m in ("gravnet", "edgeconv") if (Path(out_dir) / f"calo_{m}.pt").exists()]
            for source in sources:
                method = get_method(source, out_dir)
                samples += [s for e in events for s in reco_cluster_samples(e, method)]
            res = train_drn(model, samples, steps=steps[name], seed=seed, progress=progress, checkpoint=path,
                            extra={"trained_on": f"{n_truth} truth clusters and {len(samples) - n_truth} clusters "
                                                 f"of {', '.join(sources)} on {what}"})
            tuned = {}
        n = len(res.losses)
        report["models"][name] = {"steps": res.steps, "seconds": res.seconds, "params": sum(
            p.numel() for p in model.parameters()), "loss_first_50": float(np.mean(res.losses[:50])),
            "loss_last_50": float(np.mean(res.losses[max(n - 50, 0):])), **tuned}
        if log is not None:
            log(f"{name}: {res.steps} steps in {res.seconds:.0f} s, loss {report['models'][name]['loss_first_50']:.3f}"
                f" -> {report['models'][name]['loss_last_50']:.3f} {tuned}")
    return report
