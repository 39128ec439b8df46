"""Training the calorimeter networks on the one trainer (`deepreco.training.fit`): GravNet and EdgeConv
(DGCNN) with the object-condensation loss (kinds ``calo-gravnet``, ``calo-edgeconv``), the DRN on cluster
energies (``calo-drn``). Settings: ``data/configs/calo-<name>.yaml``.

Training events come from seeds (1000 + seed, i), validation events from (2000 + seed, i). A clustering network
takes ``batch_size`` events a step (1 by default: one event a step, as before), the events of an epoch in an
order drawn from (seed, epoch); Adam with a cosine learning rate down to 5 % over the run's steps, gradients
clipped at norm 5; the validation loss after each epoch; the model file gets the last weights. After the
training, a step of its own: the condensation thresholds (t_beta, t_d) are chosen on the validation events
(unless the settings give them) and written into the model file's config.

The clustering loss per event is L_V + L_beta (``condensation``) + ``w_energy`` x the xi-weighted Huber loss of
the energy correction + ``w_class`` x the hit-class cross-entropy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import DeepRecoError
from ..registry import CALO_NETWORKS
from .condensation import condensation_loss, property_weights
from .features import N_FEATURES, hit_features, oc_targets
from .modelfile import save_model
from .showers import MIP

NAMES = tuple(CALO_NETWORKS)  # gravnet, edgeconv, drn: listed in deepreco.registry


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


# ---- the trainer's tasks -------------------------------------------------------------------------------------

TRAIN_SEED = 1000  # training events come from seeds (1000, i); evaluation uses other seeds
VALID_SEED = 2000
# validation events for the thresholds: on 20 the tuned (t_beta, t_d) moved from model to model with the noise
N_VALID = 100


def tune_condensation(model, events, t_betas=(0.1, 0.3, 0.5, 0.7), t_ds=(0.5, 0.8, 1.2, 1.6, 2.0, 2.5),
                      time_window: float | None = None) -> dict:
    """The (t_beta, t_d) with the best efficiency - (fake rate + energy resolution) / 2 on validation events
    (with ``time_window`` K: the network run on the hits within K sigma_t of the hard collision's time).
    Events with pile-up are judged on their hard particles (`pileup.hard_figures`: efficiency for those above
    10 GeV, fakes as a share of the clusters above 10 GeV): over all particles, the many soft pile-up ones make
    every efficiency near 0 and the choice blind (it once chose t_beta = 0.7, where a network trained under
    pile-up finds almost nothing)."""
    from .evaluate import run_method
    from .guns import PILEUP_ID_OFFSET
    from .methods import OCClustering
    from .pileup import judge_hard
    from .timing import InTime

    piled = any(len(e.particles) and e.particles["particle_id"].max() >= PILEUP_ID_OFFSET for e in events)
    best = None
    for tb in t_betas:
        for td in t_ds:
            method = OCClustering(model, tb, td, model.kind)
            if time_window:
                method = InTime(method, time_window)
            if piled:
                h = judge_hard(method, events)
                s = {"efficiency": h["efficiency"] if np.isfinite(h["efficiency"]) else 0.0,
                     "fake_rate": h["fake_share"] if np.isfinite(h["fake_share"]) else 0.0,
                     "energy_resolution": h["resolution"]}
            else:
                s, _ = run_method(method, events)
            res = s["energy_resolution"] if np.isfinite(s["energy_resolution"]) else 1.0
            score = s["efficiency"] - 0.5 * s["fake_rate"] - 0.5 * res
            if best is None or score > best["score"]:
                best = {"t_beta": tb, "t_d": td, "score": score, "efficiency": s["efficiency"],
                        "fake_rate": s["fake_rate"], "energy_resolution": s["energy_resolution"],
                        **({"judged_on": "hard particles"} if piled else {})}
    return best


def pileup_of(settings: dict, index: int, split: str) -> float:
    """Event ``index``'s pile-up mu: the setting ``pileup`` itself, or drawn flat in ``[low, high]`` from (seed,
    split, index) alone when it is a pair."""
    pileup = settings["pileup"]
    if isinstance(pileup, (int, float)):
        return float(pileup)
    low, high = (float(v) for v in pileup)
    u = np.random.default_rng([int(settings["seed"]), 0 if split == "train" else 1, index, 7]).random()
    return low + (high - low) * u


def check_pileup(pileup) -> None:
    """A number >= 0 or a pair [low, high] of them; DeepRecoError otherwise."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v)) and v >= 0

    pair = isinstance(pileup, (list, tuple)) and len(pileup) == 2 and all(number(v) for v in pileup) \
        and pileup[0] <= pileup[1]
    if not (number(pileup) or pair):
        raise DeepRecoError(f"pileup must be a number >= 0 or a pair [low, high] of them, got {pileup!r}")


def _training_event(settings: dict, split: str, first: int, index: int):
    """Event ``index`` of a split: simulated from (first + seed, index), then cut to ``crop`` (`pileup.crop`)."""
    from .pileup import crop
    from .simulate import gun_event

    event = gun_event(index, seed=first + int(settings["seed"]), source=settings["source"],
                      pileup=pileup_of(settings, index, split))
    return crop(event, float(settings["crop"])) if settings.get("crop") else event


def simulated_events(settings: dict, split: str) -> list:
    """The training (``split="train"``) or validation events of ``settings``, simulated on ``workers`` local
    processes (the same events on any number)."""
    from functools import partial

    from ..distributed import run_events

    check_pileup(settings["pileup"])
    if settings.get("crop") is not None and not float(settings["crop"]) > 0:
        raise DeepRecoError(f"crop must be a radius > 0 in (eta, phi), or null; got {settings['crop']!r}")
    first, n = (TRAIN_SEED, settings["events"]) if split == "train" else (VALID_SEED, settings["val_events"])
    blocks = more_events(settings)  # checked before the first event is simulated
    workers = int(settings.get("workers") or 1)
    events = run_events(partial(_training_event, settings, split, first), list(range(int(n))), workers=workers,
                        progress=True, label=f"{split} events")
    if split == "train":
        for k, block in enumerate(blocks):
            events += run_events(partial(_training_event, block, split, first), list(range(block["events"])),
                                 workers=workers, progress=True, label=f"more events ({k + 1} of {len(blocks)})")
    return events


MORE_SEED = 77  # block k of more_events: event i from seed (1000 + seed + 77 + k, i), its mu drawn from seed + 77 + k


def more_events(settings: dict) -> list[dict]:
    """The settings of each block of ``more_events`` (training events added after the ``events``: a list of
    ``{events: N, pileup: mu or [low, high]}``, the same source and crop), its own seed in each; DeepRecoError
    for a malformed list."""
    blocks = settings.get("more_events") or []
    if not isinstance(blocks, (list, tuple)):
        raise DeepRecoError(f"more_events must be a list of {{events: N, pileup: mu}}, got {blocks!r}")
    out = []
    for k, block in enumerate(blocks):
        if not isinstance(block, dict) or set(block) != {"events", "pileup"}:
            raise DeepRecoError(f"more_events[{k}] must be {{events: N, pileup: mu or [low, high]}}, got {block!r}")
        n = block["events"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DeepRecoError(f"more_events[{k}]: events must be a whole number >= 1, got {n!r}")
        check_pileup(block["pileup"])
        out.append({**settings, "events": n, "pileup": block["pileup"], "seed": int(settings["seed"]) + MORE_SEED + k})
    return out


def _what(settings: dict) -> str:
    pileup = settings["pileup"]
    text = f"{settings['events']} {settings['source']} events"
    if isinstance(pileup, (list, tuple)):
        text += f" with pile-up mu flat in [{pileup[0]:g}, {pileup[1]:g}]"
    elif float(pileup):
        text += f" with pile-up mu = {float(pileup):g}"
    for block in more_events(settings):
        pileup = block["pileup"]
        mu = f"mu flat in [{pileup[0]:g}, {pileup[1]:g}]" if isinstance(pileup, (list, tuple)) else f"mu = {pileup:g}"
        text += f", {block['events']} more at {mu} (seeds ({TRAIN_SEED + block['seed']}, i))"
    return text + (f", cut to DeltaR < {settings['crop']:g} of the hard particles" if settings.get("crop") else "")


def _optimizer(settings: dict, n_train: int):
    """Adam and a cosine learning rate over the run's steps (``max_steps``, or the epochs' batches)."""
    lr, batch_size = float(settings["learning_rate"]), int(settings["batch_size"])
    total = int(settings.get("max_steps") or 0) or -(-n_train // batch_size) * int(settings["epochs"])

    def optimizer(net):
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1), eta_min=lr * 0.05)
        return opt, {"scheduler": sched, "interval": "step"}

    return optimizer


def _event_tensors(event) -> tuple[torch.Tensor, ...]:
    tgt = oc_targets(event)
    return hit_features(event.hits), tgt["object_id"], tgt["e_target"], tgt["hit_class"]


def _event_batch(items: list):
    def batch(idx):
        picked = [items[int(i)] for i in idx]
        return (torch.cat([p[0] for p in picked]), torch.tensor([len(p[0]) for p in picked]),
                *(torch.cat([p[k] for p in picked]) for k in (1, 2, 3)))

    return batch


def _clustering_loss(net, x, sizes, object_id, e_target, hit_class) -> torch.Tensor:
    """The mean over the batch's events of each event's condensation loss (an event is one graph)."""
    total, start = 0.0, 0
    for n in sizes.tolist():
        part = slice(start, start + n)
        total = total + oc_loss(net(x[part]), {"object_id": object_id[part], "e_target": e_target[part],
                                                "hit_class": hit_class[part]})[0]
        start += n
    return total / len(sizes)


def clustering_task(name: str, settings: dict, events: list | None = None, val_events: list | None = None):
    """The trainer's `Task` for the clustering network ``name`` (gravnet, edgeconv) on ``events`` and
    ``val_events`` (CaloEvents with truth; by default simulated from the settings). Its ``write`` chooses the
    thresholds on the validation events and writes them with the network."""
    from ..training import Task
    from .models import MODELS

    info = {} if events is not None else {"trained_on": f"{_what(settings)}, seeds "
                                                        f"({TRAIN_SEED + int(settings['seed'])}, i)"}
    events = simulated_events(settings, "train") if events is None else events
    val_events = simulated_events(settings, "val") if val_events is None else val_events
    window = settings.get("time_window")
    if window is not None:  # trained on the hits in the time window (the thresholds chosen on whole events, run so)
        from .timing import check_window, cut, in_time

        window = check_window(window)
        events = [cut(e, in_time(e.hits, window)) for e in events]
    train = [_event_tensors(e) for e in events if len(e.hits)]
    val = [_event_tensors(cut(e, in_time(e.hits, window)) if window else e) for e in val_events if len(e.hits)]
    if not train:
        raise DeepRecoError(f"calo-{name}: no training event has hits")
    given = settings.get("t_beta") is not None and settings.get("t_d") is not None
    if not given and not val:
        raise DeepRecoError(f"calo-{name}: the thresholds t_beta, t_d are tuned on validation events: give "
                            "val_events >= 1, or t_beta and t_d")
    net = MODELS[name](N_FEATURES, **(settings.get("network") or {}))
    if settings.get("init"):
        net = _initial(name, settings["init"], net)
        info["init"] = str(settings["init"])
    batches = {"train": _event_batch(train), "val": _event_batch(val)}

    def write(net, path, settings, record):
        if given:
            chosen = {"t_beta": float(settings["t_beta"]), "t_d": float(settings["t_d"])}
        else:  # after the training, its own step: the thresholds that cluster the validation events best
            tuned = tune_condensation(net, val_events, time_window=window)
            chosen = {"t_beta": tuned["t_beta"], "t_d": tuned["t_d"], "tuning": tuned}
        save_model(net, path, {**record, **chosen}, settings)

    return Task(net, len(train), len(val), lambda split, idx: batches[split](idx), _clustering_loss,
                _optimizer(settings, len(train)), write, keep_best=False,
                info={**info, "n_train": len(train), "n_val": len(val),
                      "n_parameters": sum(p.numel() for p in net.parameters()),
                      "hits_per_event": float(np.mean([len(t[0]) for t in train]))})


def _initial(name: str, init, net):
    """The network whose weights start a training: the model file ``init`` (``shipped``: the shipped
    calo_<name>.pt), which must be a ``name`` network of the settings' shape."""
    from ..modelfile import SHIPPED
    from .modelfile import load_model

    path = SHIPPED / f"calo_{name}.pt" if init == "shipped" else Path(init)
    if not path.exists():
        raise DeepRecoError(f"init: no model file {path}")
    model, _ = load_model(path, (name,))
    if model.config != net.config:
        raise DeepRecoError(f"init: {path} holds a {name} network of other settings ({model.config}) than the "
                            f"training's ({net.config})")
    return model.train()  # loaded for inference, in eval mode


def gravnet_task(settings: dict):
    return clustering_task("gravnet", settings)


def edgeconv_task(settings: dict):
    return clustering_task("edgeconv", settings)


def garnet_task(settings: dict):
    return clustering_task("garnet", settings)


def _drn_loss(net, x, batch, log_e, target) -> torch.Tensor:
    return F.huber_loss(net(x, batch, log_e), target, delta=0.5)


def isolated_samples(n_per_species: int, seed: int = 0) -> list:
    """The truth clusters of ``n_per_species`` isolated photons, electrons and charged pions, 1.5-250 GeV flat in
    log E (`calibration.calibration_events`, seeds (4000 + seed, pdg, i): not the calibration's own)."""
    from .calibration import calibration_events

    return [s for e in calibration_events(n_per_species, seed=1000 + seed) for s in cluster_samples(e)]


def drn_samples(settings: dict, events: list) -> tuple[list, list[str]]:
    """The DRN's samples of ``events``: the truth clusters, those of ``isolated`` isolated particles of each
    species (`isolated_samples`: an energy range wider than the gun's, EM and hadronic alike), and the clusters
    of each of ``cluster_sources`` that found a showering particle (so that the DRN learns the corrections
    reconstructed clusters need); a network whose calo_<name>.pt is not in ``models_dir`` (null: the shipped
    models) is left out. Returns the samples and the sources used."""
    from ..modelfile import SHIPPED
    from .methods import get_method

    samples = [s for e in events for s in cluster_samples(e)]
    used = []
    if int(settings.get("isolated") or 0) > 0:
        samples += isolated_samples(int(settings["isolated"]), int(settings["seed"]))
    models_dir = Path(settings["models_dir"]) if settings.get("models_dir") else None
    for source in settings.get("cluster_sources") or ():
        if source != "clue" and not (Path(models_dir or SHIPPED) / f"calo_{source}.pt").exists():
            continue
        method = get_method(source, models_dir)
        samples += [s for e in events for s in reco_cluster_samples(e, method)]
        used.append(source)
    return samples, used


def drn_task(settings: dict, samples: list | None = None, val_samples: list | None = None):
    """The trainer's `Task` for the DRN: (cluster, true energy) samples (by default those of the simulated
    events, `drn_samples`), ``batch_size`` clusters a step; loss: Huber on log(E_true / E_sum). The validation
    loss is on the truth clusters of the validation events."""
    from ..training import Task
    from .models import DRN

    info = {}
    if samples is None:
        samples, used = drn_samples(settings, simulated_events(settings, "train"))
        info["trained_on"] = f"truth clusters and clusters of {', '.join(used) or 'no method'} on {_what(settings)}" \
            + (f", and {settings['isolated']} isolated particles per species" if settings.get("isolated") else "")
    if val_samples is None:
        val_samples = [s for e in simulated_events(settings, "val") for s in cluster_samples(e)]
    samples = [s for s in samples if np.isfinite(s[2]) and s[2] > 0]
    val_samples = [s for s in val_samples if np.isfinite(s[2]) and s[2] > 0]
    if not samples:
        raise DeepRecoError("calo-drn: no cluster to train on")
    net = DRN(N_FEATURES + 1, **(settings.get("network") or {}))
    sets = {"train": samples, "val": val_samples}

    def write(net, path, settings, record):
        save_model(net, path, record, settings)

    return Task(net, len(samples), len(val_samples),
                lambda split, idx: batch_clusters([sets[split][int(i)] for i in idx]), _drn_loss,
                _optimizer(settings, len(samples)), write, keep_best=False,
                info={**info, "n_train": len(samples), "n_val": len(val_samples),
                      "n_parameters": sum(p.numel() for p in net.parameters())})


def train_models(out_dir, models: tuple[str, ...] | None = None, config=None, overrides: dict | None = None,
                 resume=None, progress: bool = True, log=None) -> dict:
    """Train the networks ``models`` (default: gravnet, edgeconv, garnet, drn, in that order: the DRN learns from the
    clusters of the networks just written) on the one trainer, each to ``out_dir/calo_<name>.pt``.

    Each one's settings: the shipped ``data/configs/calo-<name>.yaml``, then the YAML file ``config`` (only with
    one model), then ``overrides`` (those not None). ``resume`` (a checkpoint in ``calo_<name>.pt.checkpoints/``)
    goes on with that run's settings and trains only its network. The DRN's ``models_dir`` defaults to
    ``out_dir``. Returns ``{"models": {name: record}}``, each record with the thresholds chosen after training.
    """
    from ..modelfile import load
    from ..training import fit, read_checkpoint, settings_for

    chosen = tuple(models) if models else None
    if resume is not None:
        kind = read_checkpoint(resume)["deepreco"]["kind"]
        name = kind.removeprefix("calo-")
        if not kind.startswith("calo-") or name not in NAMES:
            raise DeepRecoError(f"{resume}: a checkpoint of a {kind!r} training, not of a calorimeter network")
        if chosen not in (None, (name,)):
            raise DeepRecoError(f"{resume} goes on training {name}; --models names {', '.join(chosen)}")
        chosen = (name,)
    chosen = chosen or NAMES
    unknown = [m for m in chosen if m not in NAMES]
    if unknown:
        raise DeepRecoError(f"unknown calorimeter network {unknown[0]!r}; expected {', '.join(NAMES)}")
    twice = sorted({m for m in chosen if chosen.count(m) > 1})
    if twice:  # it would be trained twice into the same file
        raise DeepRecoError(f"--models names {', '.join(twice)} more than once")
    if config is not None and len(chosen) > 1:
        raise DeepRecoError("--config holds the settings of one network: name it with --models")
    report = {"models": {}}
    for name in chosen:
        kind, out = f"calo-{name}", Path(out_dir) / f"calo_{name}.pt"
        base = read_checkpoint(resume, kind)["deepreco"]["settings"] if resume is not None else None
        settings = settings_for(kind, config, overrides, base=base)
        if name == "drn" and not settings.get("models_dir"):
            settings["models_dir"] = str(out_dir)
        record = fit(kind, settings, out, resume=resume, progress=progress)
        mf = load(out, kind)
        summary = {k: mf.record.get(k) for k in ("steps", "seconds", "n_train", "n_val", "n_parameters", "t_beta",
                                                  "t_d", "trained_on") if k in mf.record}
        summary.update({"train_loss": record["train_loss"], "val_loss": record["val_loss"], "out": str(out),
                        "checkpoints": record["checkpoints"]})
        report["models"][name] = summary
        if log is not None:
            log(f"{name}: {record['steps']} steps in {record['seconds']:.0f} s, loss {record['train_loss'][0]:.3f} -> "
                f"{record['train_loss'][-1]:.3f}" + (f", t_beta {mf.record['t_beta']}, t_d {mf.record['t_d']}"
                                                    if "t_beta" in mf.record else "") + f"; wrote {out}")
    return report
