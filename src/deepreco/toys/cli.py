"""``deepreco toys``: the HEP.TrkX toy benchmark from the command line (thin: parse, call, print)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from deepreco.console import Threads, command_group, console, err_console, fail
from deepreco.errors import DeepRecoError
from deepreco.registry import TOY_MODELS
from deepreco.threads import set_threads
from deepreco.validate import known, output_folder

app = command_group("HEP.TrkX's toy detectors: train the per-pixel models and baselines, compare them.")


@app.callback()
def _toys() -> None:
    """HEP.TrkX's toy detectors: train the per-pixel models and baselines, compare them."""


@app.command()
def benchmark(
    quick: Annotated[bool, typer.Option("--quick", help="the small run (under 10 minutes on 2 CPU cores)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the table")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="also write toys-<run>.txt/.json/.png here",
                                             callback=output_folder)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="seed of the events and of the training")] = 0,
    models: Annotated[str | None, typer.Option("--models", help=f"comma-separated subset of {', '.join(TOY_MODELS)}",
                                               callback=known(TOY_MODELS))] = None,
    threads: Threads = None,
):
    """Train every toy model on the same seeded 3D toy events; accuracies, sizes, times, vs background tracks."""
    from .benchmark import format_report, public_result, run_benchmark, write_outputs

    try:
        chosen = tuple(m.strip() for m in models.split(",") if m.strip()) if models else None
        result = run_benchmark(quick=quick, seed=seed, models=chosen, progress=not as_json,
                               threads=set_threads(threads),
                               log=None if as_json else (lambda line: err_console.print(line, highlight=False)))
        written = write_outputs(result, out) if out is not None else []
    except DeepRecoError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(public_result(result)))
        return
    console.print(format_report(result), highlight=False, soft_wrap=True)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
