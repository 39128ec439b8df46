"""What every command prints with: the consoles, and the one-line error that ends a command."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from .errors import DeepRecoError, UsageError
from .registry import FALLBACKS
from .validate import known

console = Console()
err_console = Console(stderr=True)


def _debug() -> bool:
    """DEEPRECO_DEBUG=1: show the traceback behind an error too."""
    return os.environ.get("DEEPRECO_DEBUG", "") not in ("", "0")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def say_error(message: str, details: list[str] | None = None) -> None:
    """``error: <message>`` on one line of stderr; then ``details``, a line each (the failed events of a run)."""
    from rich.markup import escape

    # escaped: a message may hold brackets that are not markup ("pip install 'deepreco[train]'", "[1, 2]")
    err_console.print(f"[bold red]error:[/] {escape(_one_line(message))}", highlight=False, soft_wrap=True)
    for line in details or ():
        err_console.print(escape(line), highlight=False, soft_wrap=True)


def _say(exc: BaseException) -> None:
    """A run of many events that failed in some (`deepreco.distributed.EventsFailed`) names each on its own
    line under the error; any other error is one line."""
    header, details = getattr(exc, "header", None), getattr(exc, "details", None)
    if isinstance(header, str) and isinstance(details, list):
        say_error(header, details)
    else:
        say_error(str(exc))


def fail(exc: Exception) -> NoReturn:
    """Print ``error: <message>`` on one line of stderr and exit: status 2 for a usage error, 1 for the rest,
    128 + the signal's number for an error met while Ctrl-C or SIGTERM stops the command."""
    if _debug():
        import traceback

        traceback.print_exception(exc)
    _say(exc)
    raise typer.Exit(_stop_status() or (2 if isinstance(exc, UsageError) else 1)) from None


def _stop_status() -> int:
    """128 + the number of the signal that is stopping this command (130 for Ctrl-C, 143 for SIGTERM); 0 if none
    is."""
    from .signals import interrupted

    signum = interrupted()
    return 128 + signum if signum else 0


def _stopped(exc: BaseException) -> int:
    """Say in one line that the command was stopped, with what the code on the way out noted about what is kept
    (``exc.add_note``: "the submissions written are kept; --resume ..."); the exit status."""
    import signal

    status = _stop_status() or 128 + signal.SIGINT
    notes = "; ".join(getattr(exc, "__notes__", ()))
    say_error(f"stopped by {signal.Signals(status - 128).name}" + (f"; {notes}" if notes else ""))
    return status


_BOUNDS = {"greater_than_equal": ("ge", ">="), "greater_than": ("gt", ">"), "less_than_equal": ("le", "<="),
           "less_than": ("lt", "<")}


def _say_range(exc: Exception) -> None:
    """An integer option's ``min=`` / ``max=`` is checked by typer through pydantic ("Input should be greater than
    or equal to 1"): say it as `deepreco.validate.finite` does for the other numbers ("0 is not in the range
    x >= 1"), in place."""
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors) or not hasattr(exc, "message"):
        return
    items = errors()
    if not items or any(e.get("type") not in _BOUNDS for e in items):
        return
    bounds = [f"x {_BOUNDS[e['type']][1]} {e['ctx'][_BOUNDS[e['type']][0]]}" for e in items]
    exc.message = f"{items[0]['input']} is not in the range {' and '.join(bounds)}"


class OneLineErrors(TyperGroup):
    """The top command group: whatever stops a command is one line ``error: ...`` on stderr, never a traceback
    (DEEPRECO_DEBUG=1 shows it): exit status 2 for a usage error (an unknown option, a value out of range, an
    output path that cannot be written), 1 for bad data and anything else, 128 + the signal for a command stopped
    by Ctrl-C or SIGTERM (`deepreco.signals`), which ends once unwound (`_exit_now`)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (deepreco.signals): one line, 128 + the signal
            if _debug():
                raise
            raise typer.Exit(_stopped(exc)) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = self._main(args, prog_name, complete_var, **extra)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if _stop_status():
            _exit_now(code)
        sys.exit(code)

    def _main(self, args, prog_name, complete_var, **extra) -> int:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # Click's usage errors (typer's copy of Click)
            _say_range(exc)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None and getattr(exc, "exit_code", 1) == 2 \
                else ""
            if exc.format_message().strip():  # empty: no arguments at all, and the help is already shown
                say_error(exc.format_message() + hint)
            sys.exit(getattr(exc, "exit_code", 1))
        except typer.Abort:
            say_error("aborted")
            sys.exit(1)
        except DeepRecoError as exc:  # raised while the options were checked, before the command ran
            if _debug():
                raise
            _say(exc)
            sys.exit(2 if isinstance(exc, UsageError) else 1)
        except Exception as exc:
            if _debug():
                raise
            if _stop_status():  # raised on the way out of a stopped command: the stop is the news
                sys.exit(_stopped(exc))
            if isinstance(exc, OSError) and exc.strerror:
                where = f"{exc.filename}: " if exc.filename else ""
                say_error(f"{where}{exc.strerror}")
            else:
                say_error(f"internal error, {type(exc).__name__}: {exc} (DEEPRECO_DEBUG=1 shows where)")
            sys.exit(1)
        # Click in standalone mode exits 0 whatever a command returns; an Exit (ours or --help's) gives its code
        return code if isinstance(code, int) and not isinstance(code, bool) else 0


def _exit_now(status: int) -> NoReturn:
    """End a stopped command with ``status`` now that it has unwound: the exit handlers run (Python's ``atexit``),
    the interpreter's own teardown does not (after torch's exporter it takes 1.5 s, and `deepreco.signals`
    promises an end within 2 s of the signal)."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def need(events=(), paths=(), files: dict | None = None) -> None:
    """Fail in one line, before anything heavy is imported, when an input is not there: ``events`` (an event, a
    prefix, a folder or zip of events), ``paths`` (files or folders), ``files`` by what each is (``{"model
    file": path, "checkpoint": path}``); None is skipped (an option not given). See `deepreco.paths`."""
    from .paths import check_event, check_exists, check_file

    try:
        for path in events:
            check_event(path)
        for path in paths:
            check_exists(path)
        for what, path in (files or {}).items():
            check_file(path, what)
    except DeepRecoError as exc:
        fail(exc)


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[], None] | None]:
    """A bar on stderr over ``total`` items (events, most often), and under it the stage of the item in hand with
    its own count and clock (the stages the library marks, `deepreco.progress`): a minute-long event moves too.

    Yields ``advance()``, to call as each item ends; None, and nothing drawn, when stderr is not a terminal (a
    bar in a log file is only noise)."""
    if not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    from .progress import listen

    class Count(ProgressColumn):
        def render(self, task):
            shown = "" if task.total is None else f"{task.completed:.0f}/{task.total:.0f}"
            return Text(shown, style="progress.download")

    class Remaining(TimeRemainingColumn):
        def render(self, task):  # a stage of unknown size has no end to foresee
            return Text("") if task.total is None else super().render(task)

    bar = Progress(TextColumn("{task.description}"), BarColumn(), Count(), TimeElapsedColumn(), Remaining(),
                   console=err_console, transient=True)
    items = bar.add_task(label, total=total)
    current = [bar.add_task("", total=None, visible=False)]

    def on_stage(name: str, size: int | None):
        bar.remove_task(current[0])  # a new row: its own count (or none) and its clock from 0
        task = current[0] = bar.add_task(f"  {name}", total=size)
        return lambda n=1: bar.advance(task, n)

    def advance() -> None:
        bar.advance(items)
        bar.update(current[0], visible=False)

    with bar, listen(on_stage):
        yield advance


def print_table(title: str, columns: dict[str, str], rows: list[list[str]]) -> None:
    """Figures that fit 80 columns: ``title`` on a line of its own (a long path is never broken), a table of
    ``rows`` under short column names, and under it a legend of the names: ``columns`` maps each short name to
    what it means (the first column, the row's name, is left-justified; a name that says it all maps to itself
    and stays out of the legend). The figures are those of the command's ``--json``."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True, style="bold" if i == 0 else None)
    for row in rows:
        table.add_row(*row)
    console.print(title, soft_wrap=True, highlight=False)
    console.print(table)
    lines: list[str] = []
    for entry in (f"{short}: {meaning}" for short, meaning in columns.items() if meaning != short):
        if lines and len(lines[-1]) + len(entry) + 2 <= console.width:
            lines[-1] += f"; {entry}"  # an entry is never broken over two lines
        else:
            lines.append(entry)
    for line in lines:
        console.print(line, style="dim", highlight=False)


def counted(items, label: str, total: int | None = None) -> Iterator:
    """``items`` one by one under a `progress_bar` (on a terminal, and in the first process of a torchrun only):
    for the long loops of a training's preparation (simulating its events)."""
    import os

    items = list(items) if total is None else items
    total = len(items) if total is None else total
    if os.environ.get("RANK", "0") != "0":
        yield from items
        return
    with progress_bar(label, total) as advance:
        for item in items:
            yield item
            if advance is not None:
                advance()


def command_group(help: str) -> typer.Typer:
    """A Typer application for a group of commands, set up as every deepreco command is."""
    return typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=help,
                       cls=OneLineErrors)


# the options of every command whose learned methods may run their networks on a server (deepreco.export.client)
Server = Annotated[str | None, typer.Option("--server", help="gRPC address HOST:PORT of a deepreco serve (or Triton) "
                                                             "server: the networks run there, the rest here")]
Fallback = Annotated[str | None, typer.Option("--fallback", help="local: run the networks in-process when the "
                                                                 "server does not answer (said on stderr)",
                                              callback=known(FALLBACKS))]
# method parameters on the command line (reconstruct, evaluate): `deepreco.registry.method_settings`
Settings = Annotated[list[str] | None, typer.Option(
    "--set", help="method parameter KEY=VALUE, e.g. kalman=false (gnn), pt_min=0.3 (ckf); repeat for more")]
# the option of every command that computes (deepreco.threads)
Threads = Annotated[int | None, typer.Option(
    "--threads", min=1, help="CPU threads to compute on (torch, numba, OpenMP) "
                             "[default: the cores not busy with other processes]")]
