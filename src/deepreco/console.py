"""What every command prints with: the consoles, and the one-line error that ends a command."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from .errors import DeepRecoError, UsageError

console = Console()
err_console = Console(stderr=True)


def _debug() -> bool:
    """DEEPRECO_DEBUG=1: show the traceback behind an error too."""
    return os.environ.get("DEEPRECO_DEBUG", "") not in ("", "0")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def say_error(message: str) -> None:
    """``error: <message>`` on one line of stderr."""
    from rich.markup import escape

    # escaped: a message may hold brackets that are not markup ("pip install 'deepreco[train]'", "[1, 2]")
    err_console.print(f"[bold red]error:[/] {escape(_one_line(message))}", highlight=False, soft_wrap=True)


def fail(exc: Exception) -> NoReturn:
    """Print ``error: <message>`` on one line of stderr and exit: status 2 for a usage error, 1 for the rest."""
    if _debug():
        import traceback

        traceback.print_exception(exc)
    say_error(str(exc))
    raise typer.Exit(2 if isinstance(exc, UsageError) else 1) from None


class OneLineErrors(TyperGroup):
    """The top command group: whatever stops a command is one line ``error: ...`` on stderr, never a traceback
    (DEEPRECO_DEBUG=1 shows it): exit status 2 for a usage error (an unknown option, a value out of range, an
    output path that cannot be written), 1 for bad data and anything else."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # Click's usage errors (typer's copy of Click)
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
            say_error(str(exc))
            sys.exit(2 if isinstance(exc, UsageError) else 1)
        except Exception as exc:
            if _debug():
                raise
            if isinstance(exc, OSError) and exc.strerror:
                where = f"{exc.filename}: " if exc.filename else ""
                say_error(f"{where}{exc.strerror}")
            else:
                say_error(f"internal error, {type(exc).__name__}: {exc} (DEEPRECO_DEBUG=1 shows where)")
            sys.exit(1)
        # Click in standalone mode exits 0 whatever a command returns; an Exit (ours or --help's) gives its code
        sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


def command_group(help: str) -> typer.Typer:
    """A Typer application for a group of commands, set up as every deepreco command is."""
    return typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=help,
                       cls=OneLineErrors)


# the options of every command whose learned methods may run their networks on a server (deepreco.export.client)
Server = Annotated[str | None, typer.Option("--server", help="gRPC address HOST:PORT of a deepreco serve (or Triton) "
                                                             "server: the networks run there, the rest here")]
Fallback = Annotated[str | None, typer.Option("--fallback", help="local: run the networks in-process when the "
                                                                 "server does not answer (said on stderr)")]
