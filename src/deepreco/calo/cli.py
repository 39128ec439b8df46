"""``deepreco calo``: evaluate the calorimeter clustering methods, train the networks (thin: parse, call, print)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from deepreco.console import Fallback, Server, Threads, command_group, console, err_console, fail, need, print_table
from deepreco.errors import DeepRecoError
from deepreco.registry import CALO, CALO_NETWORKS, CALO_SOURCES
from deepreco.threads import set_threads
from deepreco.validate import checkpoint_file, existing_folder, known, output_folder, pileup_range, settings_file

app = command_group("HGCAL-like calorimeter: CLUE against GravNet / DGCNN with object condensation, "
                    "DRN energies.")


@app.callback()
def _calo() -> None:
    """HGCAL-like calorimeter: CLUE against GravNet / DGCNN with object condensation, DRN energies."""



# Where the events come from, for evaluate and train alike.
Source = Annotated[str, typer.Option("--source", help="gun (2-6 of e, gamma, pi, mu), tau (2-6 taus decayed by "
                                                      "Pythia 8, hadronic decays) or mix (gun events, isolated "
                                                      "particles, close pairs)", callback=known(CALO_SOURCES))]
Pileup = Annotated[float, typer.Option("--pileup", help="mean number mu of Pythia 8 minimum-bias collisions "
                                                        "overlaid on each event", callback=pileup_range)]

Workers = Annotated[int, typer.Option("--workers", "-j", min=1, help="events in parallel: a local Dask cluster of "
                                                                     "this many processes (1: in this process)")]
Scheduler = Annotated[str | None, typer.Option("--scheduler", help="address of a running Dask scheduler "
                                                                   "(tcp://host:8786) to run the events on")]


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


@app.command()
def evaluate(
    events: Annotated[int, typer.Option("--events", min=1, help="how many gun events")] = 50,
    seed: Annotated[int, typer.Option("--seed", min=0, help="seed of the events")] = 0,
    methods: Annotated[str, typer.Option("--methods", help=f"comma-separated: {', '.join(CALO)}, each of them "
                                         "+drn, then +sc (superclusters), then +tK (only the hits within K "
                                         "sigma_t of the hard collision's time)",
                                         callback=known(CALO, plus=("drn", "sc", "tK")))] = ("clue,gravnet,edgeconv,"
                                                                                       "clue+drn,gravnet+drn"),
    models_dir: Annotated[Path | None, typer.Option("--models-dir", help="calo_<name>.pt files (default: shipped)",
                                                    callback=existing_folder)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object, one entry per method")] = False,
    plots: Annotated[Path | None, typer.Option("--plots", help="write the event display and resolution plot here",
                                               callback=output_folder)] = None,
    source: Source = "gun",
    pileup: Pileup = 0.0,
    workers: Workers = 1,
    scheduler: Scheduler = None,
    server: Server = None,
    fallback: Fallback = None,
    threads: Threads = None,
):
    """Every method on the same simulated events: efficiency, fake rate, energy response and resolution,
    hit-class accuracy, seconds and peak memory per event."""
    need(paths=[models_dir])  # before torch is imported
    from .evaluate import evaluate as run

    try:
        set_threads(threads)
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        result = run(events, seed, chosen, models_dir, source=source, pileup=pileup, workers=workers,
                     scheduler=scheduler, progress=not as_json, server=server, fallback=fallback,
                     log=None if as_json else (lambda s: err_console.print(s, highlight=False)))
        written = _plots(result, chosen, seed, models_dir, plots, source, pileup) if plots is not None else []
    except DeepRecoError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(result))
        return
    what = source + (f" + pile-up mu = {pileup:g}" if pileup else "")
    columns = {"method": "method", "eff": "efficiency", "fake": "fake rate", "resp": "energy response",
               "res": "energy resolution", "EM": "resolution of EM showers", "had": "resolution of hadronic showers",
               "class": "hit-class accuracy", "s/ev": "seconds per event", "MB": "peak memory, MB"}
    print_table(f"{result['events']} {what} events (seed {seed}), {result['hits_per_event']:.0f} hits an event",
                columns, [[name, _fmt(s["efficiency"]), _fmt(s["fake_rate"]), _fmt(s["energy_response"]),
                           _fmt(s["energy_resolution"]), _fmt(s["per_kind"]["em"]["energy_resolution"]),
                           _fmt(s["per_kind"]["had"]["energy_resolution"]), _fmt(s.get("hit_class_accuracy")),
                           _fmt(s["seconds_per_event"]), f"{s['peak_memory_mb']:.0f}"]
                          for name, s in result["methods"].items()])
    for path in written:
        console.print(f"wrote {path}", highlight=False)


def _plots(result, methods, seed, models_dir, out: Path, source: str, pileup: float) -> list[Path]:
    from . import plots
    from .methods import get_method
    from .simulate import gun_events

    out.mkdir(parents=True, exist_ok=True)
    what = f"{result['events']} {source} events" + (f" + pile-up mu = {pileup:g}" if pileup else "") + f" (seed {seed})"
    written = [plots.resolution_vs_energy(result, out / "calo_resolution_vs_energy.png", title=what)]
    event = next(iter(gun_events(1, seed=seed, source=source, pileup=pileup)))
    for name in methods:
        if "+" in name:
            continue
        hit_table, _ = get_method(name, models_dir).reconstruct(event)
        s = result["methods"][name]
        title = (f"{name} on event {event.event_id} (seed {seed})\nover the {result['events']} events: "
                 f"efficiency {_fmt(s['efficiency'])}, fake rate {_fmt(s['fake_rate'])}, "
                 f"resolution {_fmt(s['energy_resolution'])}")
        written.append(plots.event_display(event, hit_table, out / f"calo_event_{name}.png", title))
    return written


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="where calo_<name>.pt go", callback=output_folder)] \
    = Path("calo_models"),
    models: Annotated[str | None, typer.Option("--models", help=f"comma-separated: {', '.join(CALO_NETWORKS)} "
                                                                "(default: all four)",
                                               callback=known(CALO_NETWORKS))] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML settings of one network (keys of "
                                                                 "data/configs/calo-<name>.yaml)",
                                                    callback=settings_file)] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="go on from a checkpoint in "
                                                                 "calo_<name>.pt.checkpoints/",
                                                callback=checkpoint_file)] = None,
    events: Annotated[int | None, typer.Option("--events", min=1, help="training events (default 300)")] = None,
    val_events: Annotated[int | None, typer.Option("--val-events", min=1, help="validation events: the loss after "
                                                   "each epoch, the thresholds chosen (default 100)")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="steps for every model (default: each its "
                                                                     "own)")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="seed of the events and the training "
                                                                   "(default 0)")] = None,
    source: Annotated[str | None, typer.Option("--source", help="gun (default), tau or mix",
                                               callback=known(CALO_SOURCES))] = None,
    pileup: Annotated[float | None, typer.Option("--pileup", help="mean pile-up mu (default 0)",
                                                 callback=pileup_range)] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1, help="processes that simulate the "
                                                "training events (default 1; the same events on any number)")] = None,
    threads: Threads = None,
):
    """Train the networks on simulated gun (tau, mix) events on the one trainer: settings from YAML, progress,
    validation, checkpoints, --resume, a fixed seed."""
    need(files={"settings file": config, "checkpoint": resume})
    from .train import train_models

    try:
        set_threads(threads)
        chosen = tuple(m.strip() for m in models.split(",") if m.strip()) if models else None
        overrides = {"events": events, "val_events": val_events, "max_steps": steps, "seed": seed, "source": source,
                     "pileup": pileup, "workers": workers}
        report = train_models(out, chosen, config, overrides, resume=resume,
                              log=lambda s: err_console.print(s, highlight=False))
    except DeepRecoError as exc:
        fail(exc)
    console.print_json(json.dumps(report))
