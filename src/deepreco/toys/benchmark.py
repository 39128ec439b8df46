"""The toy benchmark: every model and baseline on the same 3D toy events, next to HEP.TrkX's figures.

``run_benchmark`` trains each per-pixel network on one seeded stream of 3D toy events (10 planes of 32 x 32,
Poisson(3) background tracks, noise 0.01, 3 seed planes), runs the Hough and Kalman baselines, and measures on
one held-out test set: pixel accuracy, hit accuracy (both as ``accuracy`` defines them), parameter count,
training time, inference time per event; then the same accuracies on test sets with a fixed number of
background tracks (0, 1, 2, ...); then it trains and checks the end-to-end Conv + LSTM track-parameter model.
Everything is trained and timed in the run: no figure is carried over from elsewhere, except HEP.TrkX's own,
printed for comparison.

The training budget is a number of steps per model (reproducible with the seed), with a wall-clock cap per
model as a guard on a loaded machine; the result records the steps each model really took.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepreco.errors import DeepRecoError
from deepreco.registry import TOY_MODELS

from .accuracy import hit_accuracy, pixel_accuracy
from .baselines import hough_scores, kalman_scores
from .detector import ToyData, generate_3d, generate_track_images
from .models import MODELS, build_model
from .models.conv_lstm_params import ConvLSTMTrackParams
from .track_params import evaluate_track_params, predict_track_params, train_track_params
from .training import bf16_is_fast, predict_scores, train_model

__all__ = ["FULL", "HEPTRKX", "QUICK", "BenchmarkConfig", "format_report", "public_result", "run_benchmark",
           "write_outputs"]

# HEP.TrkX, CTD 2017 (the seed), 3D toy: (pixel accuracy, hit accuracy)
HEPTRKX = {"bilstm": (0.906, 0.938), "lstm": (0.830, 0.925), "conv_autoencoder": (0.678, 0.969)}

BASELINES = {"hough": hough_scores, "kalman": kalman_scores}
for _name, _func in BASELINES.items():
    TOY_MODELS.add(_name, _func)  # a name listed in deepreco.registry


@dataclass
class BenchmarkConfig:
    """The sizes of a benchmark run. ``batch_size``, ``steps``, ``max_seconds`` and ``lr`` are per network
    (``default`` for the rest; ``batch_size`` may be one number for all). The training recipe of every network:
    ``schedule`` (``onecycle``: warm-up, then cosine decay over the step or time budget, whichever ends first),
    ``lr`` its peak, gradients clipped to norm ``clip``, forward pass in bfloat16 autocast when ``bf16``."""

    name: str
    chunk_events: int  # training events generated per epoch (a fresh chunk each epoch)
    batch_size: int | dict
    steps: dict
    max_seconds: dict
    lr: dict
    n_test: int
    background_counts: tuple[int, ...]
    n_per_count: int
    track_events: int
    track_epochs: int
    track_max_seconds: float
    model_size: str = "cpu"
    schedule: str = "onecycle"
    clip: float | None = 1.0
    bf16: bool = field(default_factory=bf16_is_fast)
    models: tuple[str, ...] = field(default_factory=lambda: (*MODELS, *BASELINES))

    def get(self, table: str, model: str):
        values = getattr(self, table)
        return values.get(model, values["default"]) if isinstance(values, dict) else values


# the recipe (bf16, one-cycle, clipping, no seed planes in the loss) and these learning rates and batch sizes come
# from 2-minute runs on the 2-core machine: the LSTMs learn most at batch 128 and a peak of 1e-2 (3e-3: 0.39,
# 3e-2: 0.30 pixel accuracy, against 0.51), the convolutions at batch 32 and 3e-3
QUICK = BenchmarkConfig(
    name="quick", chunk_events=4000, batch_size={"default": 128, "convnn": 32, "conv_autoencoder": 32},
    steps={"default": 1500, "convnn": 700, "conv_autoencoder": 1500},
    max_seconds={"default": 45.0, "bilstm": 55.0, "convnn": 100.0, "conv_autoencoder": 50.0},
    lr={"default": 1e-2, "convnn": 3e-3, "conv_autoencoder": 3e-3},
    n_test=1000, background_counts=(0, 1, 2, 3, 4, 6, 8, 10), n_per_count=200,
    track_events=10000, track_epochs=8, track_max_seconds=30.0)

FULL = BenchmarkConfig(
    name="full", chunk_events=10000, batch_size={"default": 128, "convnn": 32, "conv_autoencoder": 32},
    steps={"default": 20000, "convnn": 8000, "conv_autoencoder": 12000},
    max_seconds={"default": 900.0, "convnn": 1200.0, "conv_autoencoder": 900.0},
    lr={"default": 1e-2, "convnn": 3e-3, "conv_autoencoder": 3e-3},
    n_test=10000, background_counts=(0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15), n_per_count=1000,
    track_events=50000, track_epochs=30, track_max_seconds=900.0)


def _per_event_ms(fn, n_events: int) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, 1e3 * (time.perf_counter() - start) / n_events


def _accuracies(scores: np.ndarray, data: ToyData) -> dict:
    return {"pixel_accuracy": pixel_accuracy(scores, data.signal, data.n_seed),
            "hit_accuracy": hit_accuracy(scores, data.signal, data.events),
            "hit_accuracy_after_seed": hit_accuracy(scores, data.signal, data.events, data.n_seed)}


def run_benchmark(quick: bool = True, seed: int = 0, config: BenchmarkConfig | None = None,
                  models: tuple[str, ...] | None = None, progress: bool = True, log=None, threads: int = 1) -> dict:
    """Train and measure every toy model and baseline; returns the results as a JSON-ready dict.

    ``log`` (a callable taking one line) hears about each stage as it ends. ``threads``: torch CPU threads for
    the run (restored after). One is the default: on a 2-core machine shared with other jobs, two OpenMP
    threads spin against each other and ran these small models 3 to 5 times slower than one did.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        return _run(quick, seed, config, models, progress, log)
    finally:
        torch.set_num_threads(previous)


def _run(quick: bool, seed: int, config: BenchmarkConfig | None, models: tuple[str, ...] | None, progress: bool,
         log) -> dict:
    cfg = config or (QUICK if quick else FULL)
    names = tuple(models or cfg.models)
    unknown = [m for m in names if m not in MODELS and m not in BASELINES]
    if unknown:
        raise DeepRecoError(f"unknown toy model {unknown[0]!r}; expected {', '.join([*MODELS, *BASELINES])}")
    say = log or (lambda _line: None)
    start = time.perf_counter()
    # other jobs on a shared machine slow every timing here: the 1-minute load average says how busy it was
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    def stream(epoch: int) -> ToyData:
        return generate_3d(cfg.chunk_events, seed=[seed, 1, epoch])

    test = generate_3d(cfg.n_test, seed=[seed, 2])
    sweep = {k: generate_3d(cfg.n_per_count, n_background=k, seed=[seed, 3, k]) for k in cfg.background_counts}
    results: dict = {}
    vs_background: dict = {}
    example_scores: dict = {}
    for name in [*[m for m in names if m in MODELS], *[b for b in names if b in BASELINES]]:
        if name in MODELS:
            torch.manual_seed(seed)
            model = build_model(name, test.n_layers, test.plane_shape, cfg.model_size)
            steps, batch = cfg.get("steps", name), cfg.get("batch_size", name)
            epochs = -(-steps * batch // cfg.chunk_events)
            # on the one trainer (kind toy-<name>), no model file: the benchmark measures and forgets
            fit = train_model(model, stream, epochs=epochs, batch_size=batch, lr=cfg.get("lr", name),
                              seed=seed, max_steps=steps, max_seconds=cfg.get("max_seconds", name),
                              progress=progress, schedule=cfg.schedule, clip=cfg.clip, bf16=cfg.bf16)
            scores, ms = _per_event_ms(lambda m=model: predict_scores(m, test.events), test.n_events)

            def score_fn(events, m=model):
                return predict_scores(m, events)

            row = {"kind": "network", "params": model.n_params(), "train_seconds": fit.seconds,
                   "train_steps": fit.steps, "train_events": fit.steps * batch, "batch_size": batch,
                   "first_loss": fit.first_loss, "final_loss": fit.epoch_losses[-1]}
        else:
            base = BASELINES[name]
            scores, ms = _per_event_ms(lambda b=base: b(test.events, test.n_seed), test.n_events)

            def score_fn(events, b=base):
                return b(events, test.n_seed)

            row = {"kind": "baseline", "params": 0, "train_seconds": 0.0, "train_steps": 0, "train_events": 0}
        row.update(_accuracies(scores, test))
        row["inference_ms_per_event"] = ms
        results[name] = row
        example_scores[name] = scores[:1]
        curve = {"n_background": list(cfg.background_counts), "pixel_accuracy": [], "hit_accuracy": []}
        for data in sweep.values():
            acc = _accuracies(score_fn(data.events), data)
            curve["pixel_accuracy"].append(acc["pixel_accuracy"])
            curve["hit_accuracy"].append(acc["hit_accuracy"])
        vs_background[name] = curve
        say(f"{name}: pixel {row['pixel_accuracy']:.3f}  hit {row['hit_accuracy']:.3f}  "
            f"({row['train_seconds']:.0f} s training, {ms:.3f} ms/event)")

    track = _run_track_params(cfg, seed, progress)
    say(f"track parameters: pull widths {track['report']['pull_width'][0]:.2f} (slope), "
        f"{track['report']['pull_width'][1]:.2f} (intercept)")
    return {
        "benchmark": f"toys-{cfg.name}", "seed": seed, "config": asdict(cfg),
        "machine": {"torch_threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "cpus": os.cpu_count(), "load_average_at_start": load_at_start},
        "test_events": cfg.n_test, "models": results, "vs_background": vs_background,
        "reference_heptrkx": {k: {"pixel_accuracy": v[0], "hit_accuracy": v[1]} for k, v in HEPTRKX.items()},
        "track_params": track, "total_seconds": time.perf_counter() - start,
        "_example": {"event": test.subset(slice(0, 1)), "scores": example_scores},
    }


def _run_track_params(cfg: BenchmarkConfig, seed: int, progress: bool) -> dict:
    torch.manual_seed(seed)
    train = generate_track_images(cfg.track_events, seed=[seed, 4])
    test = generate_track_images(max(1000, cfg.track_events // 10), seed=[seed, 5])
    model = ConvLSTMTrackParams(**ConvLSTMTrackParams.CPU if cfg.model_size == "cpu" else ConvLSTMTrackParams.SEED)
    history = train_track_params(model, train, epochs=cfg.track_epochs, mse_epochs=max(1, cfg.track_epochs // 3),
                                 seed=seed, max_seconds=cfg.track_max_seconds, progress=progress)
    report = evaluate_track_params(model, test)
    params, cov = predict_track_params(model, test.images[:6])
    return {"params": model.n_params(), "train_seconds": history["seconds"], "train_steps": history["steps"],
            "loss_history": {"mse": history["mse"], "nll": history["nll"]}, "report": report.as_dict(),
            "_example": {"images": test.images[:6], "truth": test.params[:6], "n_tracks": test.n_tracks[:6],
                         "params": params, "cov": cov}}


def public_result(result: dict) -> dict:
    """The result without the arrays kept for the pictures."""
    out = {k: v for k, v in result.items() if not k.startswith("_")}
    out["track_params"] = {k: v for k, v in result["track_params"].items() if not k.startswith("_")}
    return out


def format_report(result: dict) -> str:
    """The plain-text report: one row a method, HEP.TrkX's figures beside, then the multiplicity curves."""
    load = result["machine"]["load_average_at_start"]
    load = "unknown" if load is None else f"{load:.1f}"
    lines = [f"deepreco {result['benchmark']} (seed {result['seed']}, {result['test_events']} test events of the "
             f"3D toy: 10 planes x 32 x 32, Poisson(3) background tracks, noise 0.01, 3 seed planes)",
             f"torch {result['machine']['torch']}, {result['machine']['torch_threads']} thread(s) on "
             f"{result['machine']['cpus']} CPUs, load average {load} at start (other jobs included); "
             f"total {result['total_seconds']:.0f} s", ""]
    head = (f"{'model':<18}{'pixel acc':>10}{'hit acc':>9}{'hit acc>seed':>13}{'params':>11}{'train s':>9}"
            f"{'steps':>7}{'ms/event':>10}   HEP.TrkX pixel / hit")
    lines += [head, "-" * len(head)]
    for name, row in result["models"].items():
        ref = result["reference_heptrkx"].get(name)
        ref_text = f"{ref['pixel_accuracy']:.3f} / {ref['hit_accuracy']:.3f}" if ref else "-"
        lines.append(f"{name:<18}{row['pixel_accuracy']:>10.3f}{row['hit_accuracy']:>9.3f}"
                     f"{row['hit_accuracy_after_seed']:>13.3f}{row['params']:>11,}{row['train_seconds']:>9.1f}"
                     f"{row['train_steps']:>7}{row['inference_ms_per_event']:>10.3f}   {ref_text}")
    lines += ["", "pixel acc: the top-scored pixel of a plane after the seed planes is the signal's; hit acc: the "
              "top-scored hit of a plane is the signal's, all planes (HEP.TrkX's definition); hit acc>seed: the "
              "same, planes after the seed only.", ""]
    counts = next(iter(result["vs_background"].values()))["n_background"]
    lines.append("pixel accuracy / hit accuracy against the number of background tracks")
    lines.append(f"{'model':<18}" + "".join(f"{k:>12}" for k in counts))
    for name, curve in result["vs_background"].items():
        cells = "".join(f"{p:>6.3f}/{h:.3f}"[-12:].rjust(12)
                        for p, h in zip(curve["pixel_accuracy"], curve["hit_accuracy"], strict=True))
        lines.append(f"{name:<18}{cells}")
    tp = result["track_params"]
    rep = tp["report"]
    lines += ["", f"end-to-end Conv+LSTM track parameters (2D toy 32 x 32, Poisson(3) tracks, at most 6): "
              f"{tp['params']:,} parameters, {tp['train_seconds']:.0f} s training",
              f"  residual RMS slope {rep['rms'][0]:.4f}, intercept {rep['rms'][1]:.4f} (units of the plane width); "
              f"mean squared error {rep['mse']:.4f}; mean -2 log L {rep['nll']:.2f}",
              f"  pulls: slope mean {rep['pull_mean'][0]:+.2f} width {rep['pull_width'][0]:.2f}; intercept mean "
              f"{rep['pull_mean'][1]:+.2f} width {rep['pull_width'][1]:.2f}; mean chi2 {rep['chi2_mean']:.2f} "
              f"(calibrated: widths 1, chi2 2); {rep['n_tracks']} tracks"]
    return "\n".join(lines)


def write_outputs(result: dict, out: Path) -> list[Path]:
    """Write ``toys-<name>.txt``, ``.json``, ``.png`` (accuracy vs background), ``-event.png`` and
    ``-tracks.png`` into ``out``; returns the paths. Each file is written under a temporary name and renamed."""
    from .plots import plot_accuracy_vs_background, plot_event_predictions, plot_track_params

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / result["benchmark"]
    paths = []

    def atomic_text(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        paths.append(path)

    atomic_text(stem.with_suffix(".txt"), format_report(result) + "\n")
    atomic_text(stem.with_suffix(".json"), json.dumps(public_result(result), indent=1) + "\n")
    for path, draw in ((stem.with_suffix(".png"), lambda p: plot_accuracy_vs_background(result["vs_background"], p)),
                       (stem.with_name(stem.name + "-event.png"),
                        lambda p: plot_event_predictions(result["_example"]["event"], result["_example"]["scores"], p)),
                       (stem.with_name(stem.name + "-tracks.png"),
                        lambda p: plot_track_params(**result["track_params"]["_example"], path=p))):
        tmp = path.with_name(path.stem + ".tmp.png")
        draw(tmp)
        tmp.replace(path)
        paths.append(path)
    return paths
