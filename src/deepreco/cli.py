"""The `deepreco` command line: each command parses, calls one library function, prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from .console import Fallback, Server, Settings, Threads, command_group, console, err_console, fail, need, print_table
from .errors import DeepRecoError, UsageError
from .registry import GENERATORS, LSTM_MODELS, NETWORKS, PYTHON_MODELS, TRACKING
from .validate import (
    checkpoint_file,
    existing_file,
    finite,
    known,
    model_file,
    model_files,
    model_parameters,
    model_repository,
    one_of,
    output_file,
    output_folder,
    output_image,
    pileup_range,
    settings_file,
)

app = command_group("Machine-learning reconstruction of particle tracks and calorimeter showers.")

WORKERS_HELP = "events in parallel: a local Dask cluster of this many processes (1: in this process)"
PT_HELP = "efficiency for particles above this pT [GeV]"
SCHEDULER_HELP = "address of a running Dask scheduler (tcp://host:8786) to run the events on"
FITTER_HELP = "the Kalman fitter: acts (the acts extra) or deepreco (its own); default acts when installed"


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"deepreco {__version__}")
        raise typer.Exit()


@app.callback()
def _every_command(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                                help="print the version (from the git tag) and exit")) -> None:
    """Machine-learning reconstruction of particle tracks and calorimeter showers."""
    from .signals import install

    install()  # Ctrl-C and SIGTERM end any command within 2 s (deepreco.signals)


def _print_titled(title: str, table: Table) -> None:
    """A table under its title on a line of its own: a long path is never broken to fit the table's width."""
    console.print(title, soft_wrap=True, highlight=False)
    console.print(table)


def _summary_table(summary: dict) -> Table:
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    labels = {
        "n_hits": "hits", "n_particles": "particles", "n_particles_with_hits": "particles with hits",
        "n_particles_pt_gt_1": "particles with hits, pT > 1 GeV", "particle_hits": "hits claimed by particles",
        "noise_fraction": "noise fraction", "noise_fraction_estimate": "noise fraction (1 - claimed/hits)",
    }
    table.add_row("parts", ", ".join(summary["parts"]))
    for key, label in labels.items():
        if key in summary:
            value = summary[key]
            table.add_row(label, f"{value:.3f}" if isinstance(value, float) else f"{value:,}")
    for vol, n in summary["hits_per_volume"].items():
        table.add_row(f"hits in volume {vol}", f"{n:,}")
    return table


@app.command()
def info(path: Path = typer.Argument(..., help="an event (any of its files or its prefix), a folder or a zip"),
         as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """What is in an event or a dataset: hits, particles, noise fraction, hits per volume."""
    need(events=[path])  # before pandas is imported: a mistyped path is an error at once
    from rich.progress import track

    from .io import Dataset, open_path

    try:
        opened = open_path(path)
        if isinstance(opened, Dataset):
            summaries = [e.summary() for e in track(opened, total=len(opened), description="reading",
                                                     console=err_console, disable=as_json)]
        else:
            summaries = [opened.summary()]
    except DeepRecoError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(summaries[0] if len(summaries) == 1 else summaries))
        return
    if len(summaries) > 1:
        table = Table()
        for col in ("event", "hits", "particles", "noise fraction"):
            table.add_column(col, justify="right")
        for s in summaries:
            noise = s.get("noise_fraction", s.get("noise_fraction_estimate"))
            table.add_row(str(s["event_id"]), f"{s['n_hits']:,}", f"{s.get('n_particles', 0):,}",
                          "" if noise is None else f"{noise:.3f}")
        _print_titled(f"{path}: {len(summaries)} events", table)
    else:
        _print_titled(f"{path}: event {summaries[0]['event_id']}", _summary_table(summaries[0]))


@app.command()
def methods(as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Every method by name, for each family (tracking, calo, seeding), with its parameters and defaults."""
    import inspect

    from .registry import families

    registries = families()
    found = {family: {name: {k: (None if v is inspect.Parameter.empty else v)
                             for k, v in registry.parameters(name).items()} for name in registry}
             for family, registry in sorted(registries.items())}
    if as_json:
        print(json.dumps(found, default=repr))
        return
    table = Table(title="methods by name", title_justify="left")
    for col in ("family", "name", "parameters (defaults; ranges)"):
        table.add_column(col)
    for family, named in found.items():
        for name, params in named.items():
            ranges = getattr(registries[family][name], "ranges", {})  # checked when the method is made
            shown = ", ".join((f"{k}={v!r}" if not hasattr(v, "__dict__") else k)
                              + (f" ({ranges[k]})" if k in ranges else "") for k, v in params.items())
            table.add_row(family, name, shown)
    console.print(table)


@app.command()
def score(event: Path = typer.Argument(..., help="the event with its truth and particles"),
          submission: Path = typer.Argument(..., help="TrackML submission CSV: hit_id,track_id"),
          pt_min: float = typer.Option(1.0, help=PT_HELP, callback=finite(0)),
          plot: Path = typer.Option(None, "--plot", help="also write efficiency vs pT and eta to this PNG",
                                    callback=output_image),
          as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """TrackML score, tracking efficiency, fake and duplicate rates of a submission."""
    need(events=[event], files={"file": submission})
    from .io import read_event, read_submission
    from .metrics import check_submission, evaluate, plot_efficiencies

    try:
        ev = read_event(event)
        if ev.truth is None or ev.particles is None:
            raise DeepRecoError(f"{event}: has no truth and particles files, so it cannot be scored")
        tracks = read_submission(submission, event_id=ev.event_id)
        check_submission(tracks, ev.hits["hit_id"].to_numpy(), source=str(submission))
        result = evaluate(ev.truth, ev.particles, tracks, pt_min=pt_min)
        if plot is not None:
            plot_efficiencies(ev.truth, ev.particles, tracks, plot,
                              title=f"{submission.name} on event {ev.event_id}: TrackML score {result['score']:.3f}")
    except DeepRecoError as exc:
        fail(exc)
    result = {k: (float(v) if isinstance(v, float) else v) for k, v in result.items()}
    if as_json:
        print(json.dumps(result))
        return
    table = Table(show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    _print_titled(f"{submission} on event {ev.event_id}", table)


@app.command()
def display(event: Path = typer.Argument(..., help="the event to draw"),
            tracks: Path = typer.Option(None, "--tracks", help="colour hits by the tracks of this submission"),
            colour_by: str = typer.Option("auto", help="auto, track, particle or volume",
                                          callback=one_of("auto", "track", "particle", "volume")),
            out: Path = typer.Option(..., "--out", help="image to write (.png, .pdf, .svg)", callback=output_image)):
    """An event display: x-y and r-z views, hits coloured by particle or by track."""
    need(events=[event], files={"file": tracks})
    from .display import save_display, tracks_title
    from .io import read_event, read_submission
    from .metrics import check_submission

    try:
        ev = read_event(event)
        sub = None
        if tracks is not None:
            sub = read_submission(tracks, event_id=ev.event_id)
            check_submission(sub, ev.hits["hit_id"].to_numpy(), source=str(tracks))
        save_display(ev, out, sub, colour_by, title=None if sub is None else tracks_title(ev, sub, tracks.name))
    except DeepRecoError as exc:
        fail(exc)
    except ValueError as exc:  # an unknown --colour-by, a format matplotlib does not write
        fail(exc)
    console.print(f"wrote {out}")


def _events(path: Path):
    """The events at ``path``, lazily: one event, or every event of a folder or zip."""
    from .io import Dataset, open_path

    opened = open_path(path)
    return (opened, len(opened)) if isinstance(opened, Dataset) else ([opened], 1)


@app.command("reconstruct")
def reconstruct_cmd(
        inputs: Path = typer.Argument(..., help="an event, or a folder or zip of events"),
        method: str = typer.Option(..., "--method", "-m", help=f"reconstruction method: {', '.join(TRACKING)}",
                                   callback=known(TRACKING)),
        out: Path = typer.Option(..., "--out", help="folder for the submissions, one CSV an event",
                                 callback=output_folder),
        model: list[Path] = typer.Option(None, "--model", help="model file for a learned method (default: shipped; "
                                         "lstm: repeat for an ensemble)", callback=model_files),
        events: int = typer.Option(None, "--events", "-n", min=1, help="at most this many events"),
        workers: int = typer.Option(1, "--workers", "-j", min=1, help=WORKERS_HELP),
        scheduler: str = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
        resume: bool = typer.Option(False, "--resume", help="skip the events whose submission is already in --out"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace the submissions already in --out"),
        settings: Settings = None, server: Server = None, fallback: Fallback = None, threads: Threads = None):
    """Reconstruct events and write TrackML submissions (event_id, hit_id, track_id) as
    OUT/event<id>-submission.csv (a submission already there is refused, unless --overwrite or --resume)."""
    need(events=[inputs])
    from .reconstruct import METHODS, reconstruct_dataset
    from .registry import method_settings
    from .threads import set_threads

    try:
        set_threads(threads)
        params = method_settings(METHODS, [method], settings)[method]
        if params:
            METHODS.check_params(method, params)  # a bad setting is said before the events are read
        evs, _ = _events(inputs)
        params.update(model_parameters(model))
        if server is not None or fallback is not None:  # a method without networks refuses them
            params.update(server=server, fallback=fallback)
        written = reconstruct_dataset(evs, method, out, n_events=events, resume=resume, workers=workers,
                                      scheduler=scheduler, progress=True, params=params, overwrite=overwrite)
    except DeepRecoError as exc:
        fail(exc)
    console.print(f"wrote {len(written)} submission(s) to {out}")


@app.command("fit")
def fit_cmd(event: Path = typer.Argument(..., help="the event (with truth and particles for the metrics)"),
            tracks: Path = typer.Option(None, "--tracks", help="a submission (hit_id, track_id) to fit"),
            method: str = typer.Option(None, "--method", "-m", callback=known(TRACKING),
                                       help=f"or: find the tracks with this method ({', '.join(TRACKING)})"),
            out: Path = typer.Option(None, "--out", help="the table to write (default: beside the tracks)",
                                     callback=output_file),
            as_json: bool = typer.Option(False, "--json", help="print the metrics as one JSON object"),
            fitter: str = typer.Option(None, "--fitter", help=FITTER_HELP),
            threads: Threads = None):
    """Fit every track with a Kalman filter: pT, charge, d0, z0, phi, eta, covariance, chi2/ndf per track."""
    need(events=[event], files={"file": tracks})
    from .fit import fit_event
    from .threads import set_threads

    try:
        set_threads(threads)
        result = fit_event(event, submission=tracks, method=method, out=out, fitter=fitter)
    except DeepRecoError as exc:
        fail(exc)
    summary = result["summary"]
    if as_json:
        print(json.dumps({"path": str(result["path"]), **(summary or {})}))
        return
    fits = result["fits"]
    console.print(f"fitted {int(fits['fitted'].sum())} of {len(fits)} tracks ({result['fitter']} fitter); "
                  f"wrote {result['path']}")
    if summary and fits["fitted"].any():
        console.print(f"median chi2/ndf {summary['median_chi2_ndf']:.2f}; pull widths " + ", ".join(
            f"{k} {summary[f'pull_width_{k}']:.2f}" for k in ("d0", "z0", "phi", "theta", "qop", "pt")))


@app.command("evaluate")
def evaluate_cmd(
        inputs: Path = typer.Argument(..., help="an event, or a folder or zip of events, with truth"),
        methods: list[str] = typer.Option(..., "--method", "-m", callback=known(TRACKING),
                                          help=f"method ({', '.join(TRACKING)}); repeat to compare"),
        events: int = typer.Option(None, "--events", "-n", min=1, help="at most this many events"),
        model: list[Path] = typer.Option(None, "--model", help="model file for the learned method(s) (default: "
                                         "shipped; lstm: repeat for an ensemble)", callback=model_files),
        pt_min: float = typer.Option(1.0, help=PT_HELP, callback=finite(0)),
        workers: int = typer.Option(1, "--workers", "-j", min=1, help=WORKERS_HELP),
        scheduler: str = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object, keyed by method"),
        fit: bool = typer.Option(False, "--fit", help="also fit the tracks (Kalman filter): pulls, failed fits"),
        fitter: str = typer.Option(None, "--fitter", help=FITTER_HELP),
        settings: Settings = None, server: Server = None, fallback: Fallback = None, threads: Threads = None):
    """Reconstruct and score a dataset: TrackML score, efficiency, fake and duplicate rates, time per event."""
    need(events=[inputs])
    from .distributed import EventRunner
    from .reconstruct import METHODS, evaluate_method
    from .registry import method_settings
    from .threads import set_threads

    results = {}
    try:
        if fitter is not None and not fit:  # it would do nothing, a wrong name unnoticed
            raise DeepRecoError("--fitter chooses the fitter of --fit: give --fit too")
        set_threads(threads)
        chosen = method_settings(METHODS, methods, settings)  # each method the settings it takes
        for name in methods:
            if chosen[name]:
                METHODS.check_params(name, chosen[name])  # a bad setting is said before the events are read
        evs, _ = _events(inputs)
        params = model_parameters(model)
        with EventRunner(workers, scheduler, progress=not as_json) as runner:
            for name in methods:
                # the methods with networks run them on the server; the others (ckf, dbscan, truth) here
                served = {"server": server, "fallback": fallback} if "server" in METHODS.parameters(name) else {}
                results[name] = evaluate_method(evs, name, n_events=events, pt_min=pt_min, runner=runner, fit=fit,
                                                fitter=fitter, params={**params, **served, **chosen[name]})
    except DeepRecoError as exc:
        fail(exc)
    if as_json:
        print(json.dumps({k: {key: v for key, v in r.items() if key != "events"} for k, r in results.items()}))
        return
    columns = {"method": "method", "score": "TrackML score", "eff": f"efficiency, particles over {pt_min:g} GeV",
               "perfect": "efficiency counting only tracks of exactly the particle's hits", "fake": "fake rate",
               "dup": "duplicate rate", "s/event": "seconds per event (reconstruction)"}
    keys = ("score", "efficiency", "efficiency_perfect", "fake_rate", "duplicate_rate", "seconds_per_event")
    print_table(f"{inputs}: {next(iter(results.values()))['n_events']} event(s)", columns,
                [[name, *[f"{r[k]:.4f}" if k != "seconds_per_event" else f"{r[k]:.2f}" for k in keys]]
                 for name, r in results.items()])
    for name, r in results.items():
        if "fit" in r:
            f = r["fit"]
            console.print(f"{name} fit: {f['failed_fraction']:.3f} failed, median chi2/ndf {f['median_chi2_ndf']:.2f}, "
                          "pull widths " + ", ".join(f"{k} {f[f'pull_width_{k}']:.2f}"
                                                     for k in ("d0", "z0", "phi", "theta", "qop", "pt")))


def _option_value(text: str):
    """'20' -> 20, '0.5' -> 0.5, '1,10' -> (1, 10), anything else stays text (a generator option)."""
    from .registry import setting_value

    return setting_value(text, booleans=False)


@app.command()
def simulate(
        generator: str = typer.Option(..., "--generator", "-g", help=", ".join(GENERATORS), callback=known(GENERATORS)),
        events: int = typer.Option(1, "--events", "-n", min=1, help="how many events"),
        seed: int = typer.Option(0, "--seed", min=0, help="the same seed gives byte-identical files"),
        out: Path = typer.Option(..., "--out", help="folder to write the events to", callback=output_folder),
        particles: Path = typer.Option(None, "--particles", help="TrackML particles file (generator trackml)",
                                       callback=existing_file),
        pileup: float = typer.Option(None, "--pileup", help="mean number of pile-up collisions (ttbar, dijet)",
                                     callback=pileup_range),
        noise: float = typer.Option(None, "--noise", help="share of noise hits (default: real TrackML rates)",
                                    callback=finite(0, 1, high_open=True)),
        fmt: str = typer.Option("csv", "--format", help="csv, csv.gz or parquet",
                                callback=one_of("csv", "csv.gz", "parquet")),
        workers: int = typer.Option(1, "--workers", "-j", min=1, help=WORKERS_HELP),
        scheduler: str = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
        first_event_id: int = typer.Option(0, "--first-event-id", min=0, help="event id of the first event"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace the events already in --out"),
        resume: bool = typer.Option(False, "--resume", help="simulate only the events of the run not yet in --out"),
        settings: list[str] = typer.Option([], "--set", help="generator option KEY=VALUE, e.g. n=20, pt=1,10"),
        secondaries: bool = typer.Option(False, "--secondaries",
                                         help="nuclear interactions make secondaries (generated events)"),
        threads: Threads = None):
    """Generate events and simulate them on the TrackML detector; TrackML files out."""
    need(files={"file": particles})
    options = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            fail(UsageError(f"--set {item}: expected KEY=VALUE"))
        options[key.strip()] = _option_value(value.strip())
    if particles is not None:
        options["particles"] = str(particles.resolve())
    if pileup is not None:
        options["pileup"] = pileup
    from .generate import check_options

    try:
        check_options(generator, options)  # before pandas, Pythia and the simulation are imported
    except DeepRecoError as exc:
        fail(exc)
    from .simulate.dataset import simulate_dataset
    from .threads import set_threads

    try:
        set_threads(threads)
        ids = simulate_dataset(generator, events, out, seed=seed, format=fmt, workers=workers, scheduler=scheduler,
                               overwrite=overwrite, resume=resume, first_event_id=first_event_id,
                               noise_fraction=noise, progress=True, secondaries=secondaries, **options)
    except DeepRecoError as exc:
        fail(exc)
    console.print(f"wrote {len(ids)} event(s) to {out}")


@app.command()
def demo(out: Path = typer.Option(Path("deepreco-demo.png"), "--out", help="where to write the event display",
                                  callback=output_image),
         seed: int = typer.Option(1, min=0, help="simulation seed"),
         as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
         threads: Threads = None):
    """The whole chain on one event: simulate real TrackML event 1001's particles, find the tracks with the
    classical ckf, seed 004's lstm and the graph network gnn, score them, draw the tracks."""
    from .demo import run_demo
    from .threads import set_threads

    try:
        set_threads(threads)
    except DeepRecoError as exc:
        fail(exc)
    result = run_demo(out, seed=seed, report=(lambda text: None) if as_json else
                      lambda text: err_console.print(f"[dim]{text}[/]"))
    if as_json:
        print(json.dumps(result, default=str))
        return
    columns = {"method": "method", "score": "TrackML score", "eff": "efficiency, particles over 1 GeV",
               "fake": "fake rate", "dup": "duplicate rate", "seconds": "seconds to reconstruct"}
    print_table("track finding on it", columns,
                [[name, f"{r['score']:.3f}", f"{r['efficiency']:.3f}", f"{r['fake_rate']:.3f}",
                  f"{r['duplicate_rate']:.3f}", f"{r['seconds']:.1f}"] for name, r in result["methods"].items()])
    console.print(f"wrote the event display of the {result['display']['method']} tracks to {out}")


def _export_name(name: str) -> str:
    """The name checked before torch is imported: a network, a Python-backend model or all."""
    if name != "all" and name not in PYTHON_MODELS:
        NETWORKS.check(name)
    return name


@app.command("export")
def export_cmd(
        name: str = typer.Argument(..., help=f"a network ({', '.join(NETWORKS)}), with --triton a Python-backend "
                                             f"model ({', '.join(PYTHON_MODELS)}), or all", callback=_export_name),
        out: Path = typer.Option(None, "--out", help="new folder for NAME.onnx and export.json",
                                 callback=output_folder),
        triton: Path = typer.Option(None, "--triton", help="new Triton model repository (NAME/config.pbtxt, "
                                                           "NAME/1/model.onnx)", callback=output_folder),
        model: Path = typer.Option(None, "--model", help="the model file to export (default: the shipped one)",
                                   callback=model_file),
        knn: str = typer.Option("auto", "--knn", help="--triton: the calorimeter networks' neighbour search, "
                                                      "graph (in the ONNX graph, n^2: for a GPU), tree (Python "
                                                      "backend, the in-process tree: for a CPU) or auto (graph "
                                                      "where torch sees a CUDA GPU, else tree)")):
    """Export networks to ONNX (--out) or as a Triton model repository (--triton), each checked by onnxruntime
    against PyTorch on several sizes and permuted rows."""
    if (out is None) == (triton is None):  # before torch is imported
        fail(UsageError("give one of --out DIR (ONNX files) or --triton REPO (a Triton model repository)"))
    from .export import export_networks, write_repository

    def done(entry):
        if entry.get("backend") == "python":
            console.print(f"{entry['name']}: {entry['file']}, Python backend" +
                          (f" calling {', '.join(entry['networks'])}" if entry["networks"] else ""), soft_wrap=True)
            return
        worst = max(c["max_abs_error"] for c in entry["checks"])
        ties = max(c["rows_beyond_tolerance"] for c in entry["checks"])
        console.print(f"{entry['name']}: {entry['file']}, {len(entry['checks'])} checks, largest difference "
                      f"{worst:.2g}" + (f" ({ties} rows beyond the tolerance: near-tie neighbours)" if ties else ""),
                      soft_wrap=True)

    try:
        if out is not None:
            if knn == "tree":
                raise UsageError(f"--knn {knn} is for --triton (a Python-backend model has no ONNX file)")
            export_networks(name, out, model, on_done=done)
        else:
            write_repository(name, triton, model, on_done=done, knn=knn)
    except DeepRecoError as exc:
        fail(exc)
    console.print(f"wrote {out or triton}")


@app.command("serve")
def serve_cmd(repo: Path = typer.Argument(..., help="a model repository written by deepreco export --triton",
                                          callback=model_repository),
              port: int = typer.Option(8000, "--port", min=1, max=65534,
                                       help="HTTP port; gRPC listens on the next one"),
              host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every one)"),
              threads: int = typer.Option(1, "--threads", min=1, help="onnxruntime threads a model")):
    """Serve a model repository over the KServe v2 inference protocol (HTTP and gRPC) until interrupted."""
    from .export.serve import serve

    def ready(names, settings):
        console.print(f"serving {', '.join(names)} on http://{settings.host}:{settings.http_port} "
                      f"(gRPC {settings.host}:{settings.grpc_port})", soft_wrap=True)

    try:
        serve(repo, port=port, host=host, threads=threads, on_ready=ready)
    except DeepRecoError as exc:
        fail(exc)


train_app = command_group("Train a model on a folder of simulated events.")


def _need_data(kind: str, data, config, resume) -> None:
    """No --data, no settings file and no checkpoint: the defaults name no data, so say it before the imports (the
    library says the same when a settings file names none)."""
    if data is None and config is None and resume is None:
        fail(DeepRecoError(f"{kind}: no training data; give --data DIR or data: in the settings file"))


@train_app.command("lstm")
def train_lstm_cmd(
        data: Path = typer.Option(None, "--data", help="folder (or zip) of simulated events with truth"),
        out: Path = typer.Option(..., "--out", help="model file to write", callback=output_file),
        config: Path = typer.Option(None, "--config", help="YAML settings (defaults: data/configs/lstm.yaml); "
                                                           "the options below override it", callback=settings_file),
        resume: Path = typer.Option(None, "--resume", help="go on from this checkpoint of a run (its settings)",
                                    callback=checkpoint_file),
        model: str = typer.Option(None, help=", ".join(LSTM_MODELS), callback=known(LSTM_MODELS)),
        epochs: int = typer.Option(None, min=1, help="passes over the training tracks [10]"),
        seed: int = typer.Option(None, min=0, help="the same seed gives the same training [0]"),
        batch_size: int = typer.Option(None, min=1, help="windows per step, over all processes [256]"),
        val_fraction: float = typer.Option(None, help="share of the tracks kept for validation [0.1]",
                                           callback=finite(0, 1, high_open=True)),
        threads: Threads = None):
    """Train seed 004's LSTM, which predicts a track's next 5 hits from its first 5; checkpoints each epoch
    (<out>.checkpoints/); data-parallel under torchrun."""
    need(paths=[data], files={"settings file": config, "checkpoint": resume})
    _need_data("lstm", data, config, resume)
    from .reconstruct.lstm import train_lstm
    from .threads import set_threads

    try:
        set_threads(threads)
        result = train_lstm(data, out, epochs=epochs, seed=seed, model=model, batch_size=batch_size,
                            val_fraction=val_fraction, progress=True, config=config, resume=resume)
    except DeepRecoError as exc:
        fail(exc)
    if result["rank"] == 0:
        console.print(f"wrote {result['out']}: best validation loss {result['best_val_loss']:.5f} at epoch "
                      f"{result['best_epoch']}, {result['n_parameters']:,} parameters, {result['seconds']:.0f} s, "
                      f"{result['processes']} process(es); checkpoints in {result['checkpoints']}")


@train_app.command("gnn")
def train_gnn_cmd(
        data: Path = typer.Option(None, "--data", help="folder (or zip) of simulated events with truth"),
        out: Path = typer.Option(..., "--out", help="model file to write", callback=output_file),
        config: Path = typer.Option(None, "--config", help="YAML settings (defaults: data/configs/gnn.yaml); "
                                                           "the options below override it", callback=settings_file),
        resume: Path = typer.Option(None, "--resume", help="go on from this checkpoint of a run (its settings), "
                                                           "filter or network stage", callback=checkpoint_file),
        start_from: Path = typer.Option(None, "--start-from", help="a gnn model: keep its module map and filter, "
                                                                   "train its network further", callback=model_file),
        val: int = typer.Option(None, min=1, help="events held out for validation, the last ones [4]"),
        network_events: int = typer.Option(None, min=1,
                                           help="training events for the networks (the map uses all) [24]"),
        filter_epochs: int = typer.Option(None, min=1, help="passes of the edge filter [3]"),
        gnn_epochs: int = typer.Option(None, min=1, help="passes of the interaction network [5]"),
        hidden: int = typer.Option(None, min=1, help="width of the interaction network [32]"),
        iterations: int = typer.Option(None, min=1, help="message-passing rounds [6]"),
        seed: int = typer.Option(None, min=0, help="the same seed gives the same training [0]"),
        threads: Threads = None):
    """Train the graph pipeline: module map (built), edge filter and interaction network (on the one trainer,
    checkpoints each epoch in <out>.checkpoints/), edge threshold; data-parallel under torchrun."""
    need(paths=[data], files={"settings file": config, "checkpoint": resume, "model file": start_from})
    _need_data("gnn", data, config, resume)
    from .reconstruct.gnn import train_gnn
    from .threads import set_threads

    overrides = {"data": str(data) if data is not None else None, "val": val, "network_events": network_events,
                 "filter_epochs": filter_epochs, "gnn_epochs": gnn_epochs, "hidden": hidden, "iterations": iterations,
                 "seed": seed, "start_from": str(start_from) if start_from is not None else None}
    try:
        set_threads(threads)
        r = train_gnn(out, config, overrides, resume=resume, progress=True,
                      log=lambda text: err_console.print(f"[dim]{text}[/]"))
    except DeepRecoError as exc:
        fail(exc)
    if r["rank"] == 0:
        console.print(f"wrote {r['out']}: graph efficiency {r['graph_efficiency']:.3f} ({r['graph_edges']:,.0f} "
                      f"edges), after the filter {r['filter_efficiency']:.3f} ({r['filter_edges']:,.0f}), edge "
                      f"efficiency {r['edge_efficiency']:.3f} purity {r['edge_purity']:.3f}, validation TrackML "
                      f"score {r['val_score']:.3f}, {r['seconds_total']:.0f} s; checkpoints in {r['checkpoints']}")


@train_app.command("embedding")
def train_embedding_cmd(
        data: Path = typer.Option(None, "--data", help="folder (or zip) of simulated events with truth"),
        out: Path = typer.Option(..., "--out", help="model file to write", callback=output_file),
        config: Path = typer.Option(None, "--config", help="YAML settings (defaults: data/configs/embedding.yaml); "
                                                           "the options below override it", callback=settings_file),
        resume: Path = typer.Option(None, "--resume", help="go on from this checkpoint of a run (its settings)",
                                    callback=checkpoint_file),
        events: int = typer.Option(None, min=1, help="training events, the first ones [12]"),
        val: int = typer.Option(None, min=1, help="validation events, the last ones: they set the radius [4]"),
        epochs: int = typer.Option(None, min=1, help="passes over the training events [10]"),
        steps: int = typer.Option(None, min=1, help="wedges per event and epoch [60]"),
        hidden: int = typer.Option(None, min=1, help="width of the embedding network [96]"),
        dim: int = typer.Option(None, min=1, help="dimensions of the embedding [8]"),
        efficiency: float = typer.Option(None, help="share of the true edges the radius keeps [0.95]",
                                         callback=finite(0, 1, low_open=True)),
        k_max: int = typer.Option(None, min=1, help="most neighbours per hit [32]"),
        seed: int = typer.Option(None, min=0, help="the same seed gives the same training [0]"),
        threads: Threads = None):
    """Train the metric-learning hit embedding (the gnn pipeline's second graph construction) on the one trainer;
    checkpoints each epoch (<out>.checkpoints/); data-parallel under torchrun."""
    need(paths=[data], files={"settings file": config, "checkpoint": resume})
    _need_data("embedding", data, config, resume)
    from .reconstruct.gnn.metric import train_embedding_model
    from .threads import set_threads

    overrides = {"data": str(data) if data is not None else None, "events": events, "val": val, "epochs": epochs,
                 "steps_per_event": steps, "hidden": hidden, "dim": dim, "efficiency": efficiency, "k_max": k_max,
                 "seed": seed}
    try:
        set_threads(threads)
        r = train_embedding_model(out, config, overrides, resume=resume)
    except DeepRecoError as exc:
        fail(exc)
    if r["rank"] == 0:
        console.print(f"wrote {out}: radius {r['radius']:.4f} keeps {r['efficiency_target']:.0%} of the validation "
                      f"true edges; first validation event: {r['val_edges']:,} edges, {r['val_efficiency']:.3f} of "
                      f"its true edges; best validation loss {r['best_val_loss']:.4f} at epoch {r['best_epoch']}, "
                      f"{r['seconds']:.0f} s; checkpoints in {r['checkpoints']}")


def _add_subcommands() -> None:
    """The sub-applications of the systems that have their own commands (imported lazily inside)."""
    from .calo.cli import app as calo_app
    from .deepcore.cli import app as deepcore_app
    from .toys.cli import app as toys_app

    app.add_typer(deepcore_app, name="deepcore", help="DeepCore: CNN track seeding in the cores of high-pT jets")
    app.add_typer(toys_app, name="toys", help="HEP.TrkX toy detectors: the model zoo and its baselines")
    app.add_typer(calo_app, name="calo", help="HGCAL-like calorimeter: CLUE, GravNet, DGCNN, DRN")
    app.add_typer(train_app, name="train")



_add_subcommands()


def main() -> None:  # pragma: no cover - entry point for `python -m deepreco`
    sys.exit(app())
