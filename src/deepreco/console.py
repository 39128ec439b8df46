"""What every command prints with: the consoles, and the one-line error that ends a command."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(exc: Exception) -> NoReturn:
    """Print ``error: <message>`` on one line of stderr and exit with status 1."""
    from rich.markup import escape

    # escaped: a message may hold brackets that are not markup ("pip install 'deepreco[train]'", "[1, 2]")
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(1) from None


def command_group(help: str) -> typer.Typer:
    """A Typer application for a group of commands, set up as every deepreco command is."""
    return typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=help)


# the options of every command whose learned methods may run their networks on a server (deepreco.export.client)
Server = Annotated[str | None, typer.Option("--server", help="gRPC address HOST:PORT of a deepreco serve (or Triton) "
                                                             "server: the networks run there, the rest here")]
Fallback = Annotated[str | None, typer.Option("--fallback", help="local: run the networks in-process when the "
                                                                 "server does not answer (said on stderr)")]
# the option of every command that computes (deepreco.threads)
Threads = Annotated[int | None, typer.Option("--threads", help="CPU threads to compute on (torch, numba, OpenMP) "
                                                               "[default: the cores not busy with other processes]")]
