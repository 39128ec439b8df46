"""``deepreco deepcore``: train DeepCore and compare its seeds with the classical jet-core seeding (thin)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from deepreco.console import Fallback, Server, Threads, command_group, console, fail, need
from deepreco.errors import DeepRecoError
from deepreco.threads import set_threads
from deepreco.validate import (
    checkpoint_file,
    finite,
    model_file,
    output_file,
    output_folder,
    pileup_range,
    settings_file,
)

app = command_group("DeepCore (CMS): CNN track seeding in the cores of TeV jets, against jet-core pairs.")


@app.callback()
def _deepcore() -> None:
    """DeepCore (CMS): CNN track seeding in the cores of TeV jets, against jet-core pairs."""



@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="model file to write", callback=output_file)] = Path("deepcore.pt"),
    config: Annotated[Path | None, typer.Option("--config", help="YAML settings (defaults: "
                                                "data/configs/deepcore.yaml); the options below override it",
                                                callback=settings_file)] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="go on from this checkpoint of a run",
                                                callback=checkpoint_file)] = None,
    events: Annotated[int | None, typer.Option("--events", min=1, help="Pythia dijet events to simulate [200]")] = None,
    val_events: Annotated[int | None, typer.Option("--val-events", min=0, help="validation events [20]")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="[1]")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="first event seed [1000000]")] = None,
    work: Annotated[Path | None, typer.Option("--work", help="folder of the shards (reused) [build/deepcore]",
                                              callback=output_folder)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="[32]")] = None,
    lr_scale: Annotated[float | None, typer.Option("--lr-scale", help="multiplies the stepped learning rate",
                                                   callback=finite(0, low_open=True))] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="stop after this many batches")] = None,
    new_loss_from: Annotated[float | None, typer.Option("--new-loss-from", help="the seed's new loss (BCE with "
                                                        "weight 0 outside the NCP) from this fraction of the run on "
                                                        "(the seed: 0.7764, epoch 191 of 246)",
                                                        callback=finite(0, 1))] = None,
    merged_only: Annotated[bool | None, typer.Option("--merged-only/--all-clusters", help="windows on merged "
                                                     "clusters only (charge > 1.5 one-track charges) [all]")] = None,
    jet_axis: Annotated[bool | None, typer.Option("--jet-axis/--no-jet-axis", help="the jet axis as one more "
                                                  "window direction per jet [no]")] = None,
    threads: Threads = None,
):
    """Simulate events, write their windows as shards, train the CNN on them (the one trainer: checkpoints in
    <out>.checkpoints/, data-parallel under torchrun), write the model."""
    need(files={"settings file": config, "checkpoint": resume})
    from .train import train_model

    overrides = {"events": events, "val_events": val_events, "epochs": epochs, "first_seed": seed,
                 "work": None if work is None else str(work), "batch_size": batch_size, "lr_scale": lr_scale,
                 "max_steps": max_steps, "new_loss_from": new_loss_from, "merged_only": merged_only,
                 "jet_axis": jet_axis}
    try:
        set_threads(threads)
        r = train_model(out, config, overrides, resume=resume)
    except DeepRecoError as exc:
        fail(exc)
    if r["rank"] == 0:
        val = r["val_loss"][-1]
        console.print(f"trained on {r['samples']} windows, {r['steps']} steps, {r['seconds']:.0f} s, "
                      f"{r['processes']} process(es); loss {r['train_loss'][0]:.4f} -> {r['train_loss'][-1]:.4f}"
                      + (f", validation {val:.4f}" if val is not None else ""), highlight=False)
        console.print(f"wrote {out}", highlight=False)


def _rate(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


@app.command()
def evaluate(
    events: Annotated[int, typer.Option("--events", min=1, help="dijet events to score on")] = 10,
    seed: Annotated[int, typer.Option("--seed", min=0, help="first event seed")] = 0,
    model: Annotated[Path | None, typer.Option("--model", help="model file (default: the shipped one)",
                                               callback=model_file)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    plots: Annotated[Path | None, typer.Option("--plots", help="write the plots in this folder",
                                               callback=output_folder)] = None,
    pileup: Annotated[float, typer.Option("--pileup", help="mean number of pile-up collisions",
                                          callback=pileup_range)] = 0.0,
    clean_xy: Annotated[float | None, typer.Option("--clean-xy", help="seed cleaning: distance on layer 2 [mm] "
                                                   "(r-phi and z) under which two seeds are one; default the "
                                                   "seed's 0.050", callback=finite(0))] = None,
    clean_angle: Annotated[float | None, typer.Option("--clean-angle", help="seed cleaning: difference in eta "
                                                      "and in phi under which two seeds are one; default the "
                                                      "seed's 0.002", callback=finite(0))] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1,
                                         help="events in parallel: a local Dask cluster of this many processes (1: "
                                              "in this process)")] = 1,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="address of a running Dask scheduler "
                                                                      "(tcp://host:8786) to run the events on")] = None,
    server: Server = None,
    fallback: Fallback = None,
    threads: Threads = None,
    tracks: Annotated[bool, typer.Option("--tracks", help="also build tracks from each method's seeds through the "
                                         "strips and score them (track efficiency, fake and duplicate rates, "
                                         "seconds of the whole iteration)")] = False,
):
    """DeepCore and the jet-core baseline on the same events: efficiency, fake and duplicate rates, time."""
    need(files={"model file": model})  # before torch is imported
    from .evaluate import HEADER, format_row
    from .evaluate import evaluate as run_evaluation

    try:
        set_threads(threads)
        cuts = {k: v for k, v in (("clean_xy", clean_xy), ("clean_angle", clean_angle)) if v is not None}
        result = run_evaluation(events, seed, model, keep=plots is not None, pileup=pileup, workers=workers,
                                scheduler=scheduler, progress=not as_json, server=server, fallback=fallback,
                                tracks=tracks, **cuts)
    except (DeepRecoError, ValueError) as exc:
        fail(exc)
    records = result.pop("records", None)
    if plots is not None and records is not None:
        from .plots import plot_efficiency, plot_eta

        plots.mkdir(parents=True, exist_ok=True)
        what = f"{events} dijet events (seeds {seed}-{seed + events - 1})" + (f", pile-up {pileup:g}" if pileup else "")
        eff = "; ".join(f"{name} efficiency {_rate(result[name]['efficiency'])}, fake rate "
                        f"{_rate(result[name]['fake_rate'])}" for name in ("deepcore", "baseline"))
        written = [plot_efficiency(records["tracks"], plots / "deepcore_efficiency.png", title=f"{what}\n{eff}"),
                   plot_eta(records["seeds"]["deepcore"], records["tracks"], plots / "deepcore_eta.png",
                            title=f"DeepCore seeds on {what}")]
    else:
        written = []
    if as_json:
        print(json.dumps(result))
        return
    console.print(f"{result['events']} events, {result['jets']} jets, {result['tracks']} simulated tracks "
                  f"(pT > 1 GeV, DeltaR < 0.1)", highlight=False)
    console.print(HEADER, highlight=False)
    for name in ("deepcore", "baseline", "baseline_kmeans"):
        console.print(format_row(name, result[name]), highlight=False)
    if tracks:
        from .evaluate import TRACK_HEADER, format_track_row

        console.print(f"tracks: {result['track_level']['sim_tracks']} simulated (pT > 0.9 GeV, DeltaR < 0.1); "
                      "seconds per event", highlight=False)
        console.print(TRACK_HEADER, highlight=False)
        for name in ("deepcore", "baseline", "baseline_kmeans"):
            console.print(format_track_row(name, result[name]), highlight=False)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
