"""The `ticket` command: the typer app and the one place that turns exceptions into messages."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer._click import exceptions as click_exc  # typer vendors click; its exceptions live there
from rich.console import Console
from rich.text import Text

from ticketfmt.errors import OutputExistsError, TicketError

app = typer.Typer(
    name="ticket",
    help="Lottery tickets as files: make, prune, inspect, convert across depths, train, verify and share them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

NoVerify = Annotated[bool, typer.Option("--no-verify", help="Skip the integrity checks on load (the payload "
                                                             "sha256; for Hub downloads also config.json's "
                                                             "agreement with the ticket).")]
"""The ``--no-verify`` option of every command that loads a ticket file."""

out = Console(highlight=False)  # data goes to stdout
err = Console(stderr=True, highlight=False)  # progress, warnings and errors go to stderr


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit (2 = bad input)."""
    err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    raise SystemExit(code)


def warn(message: str) -> None:
    err.print(Text.assemble(("warning: ", "yellow"), message), soft_wrap=True)


def check_output(path: Path, force: bool) -> None:
    """Refuse to replace an existing output unless ``--force`` (checked before any work is done)."""
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists", fix="pass --force to replace it, or choose another -o")
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory", fix="give a file name with -o")


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Any]:
    """A rich progress bar on stderr (quiet when stderr is not a terminal); yields ``update(done, total)``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
                        disable=not err.is_terminal)
    with progress:
        task = progress.add_task(description, total=total)

        def update(done: int, total_: int | None = None, desc: str | None = None) -> None:
            progress.update(task, completed=done, total=total_ if total_ is not None else total,
                            description=desc or description)

        yield update


def _usage_line(e: click_exc.UsageError) -> str:
    ctx = e.ctx
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else " (see `ticket --help`)"
    return " ".join(e.format_message().split()) + where


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `ticket` console script: every error becomes one line and exit code 2.

    ``TICKETFMT_DEBUG=1`` shows the traceback instead.
    """
    from ticketfmt.cli import load_commands

    load_commands()
    debug = os.environ.get("TICKETFMT_DEBUG", "") not in ("", "0")
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=list(argv) if argv is not None else None, prog_name="ticket", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Exit as e:
        code = e.exit_code
    except click_exc.NoArgsIsHelpError as e:
        err.print(e.format_message() if hasattr(e, "format_message") else str(e))
        code = 2
    except click_exc.UsageError as e:
        if debug:
            traceback.print_exc()
        err.print(Text.assemble(("error: ", "bold red"), _usage_line(e)), soft_wrap=True)
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        code = 130
    except TicketError as e:
        if debug:
            traceback.print_exc()
        err.print(Text.assemble(("error: ", "bold red"), str(e)), soft_wrap=True)
        code = 2
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except OSError as e:
        if debug:
            traceback.print_exc()
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        err.print(Text.assemble(("error: ", "bold red"), f"{where}{e.strerror or e}"), soft_wrap=True)
        code = 2
    except Exception as e:  # a bug: say so in one line, the traceback is one variable away
        if debug:
            raise
        err.print(Text.assemble(("internal error: ", "bold red"), f"{type(e).__name__}: {' '.join(str(e).split())} "
                  "(set TICKETFMT_DEBUG=1 for the traceback and report it)"), soft_wrap=True)
        code = 1
    sys.stdout.flush()
    raise SystemExit(code)
