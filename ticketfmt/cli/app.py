"""The `ticket` command: the typer app, the output helpers, and the one place that turns exceptions into messages.

Data goes to stdout (:data:`out`), everything else to stderr (:data:`err`). On a terminal,
tables are drawn; anywhere else (a pipe, a file, CI) they are plain tab-separated lines and
nothing is cut to the terminal width, so ``ticket models | grep resnet50`` finds it.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ticketfmt.cli._options import NoVerify
from ticketfmt.errors import OutputExistsError, TicketError
from ticketfmt.format.atomic import output_scope, refuse_replacing

__all__ = ["app", "run", "out", "err", "warn", "check_output", "print_table", "print_json", "NoVerify"]

app = typer.Typer(
    name="ticket",
    help="Lottery tickets as files: make, prune, inspect, convert across depths, train, verify and share them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

out = Console(highlight=False)  # data goes to stdout
err = Console(stderr=True, highlight=False)  # progress, warnings and errors go to stderr

# typer exports BadParameter but not its base class, the usage error (a bad option, a missing argument, no
# command): take it from BadParameter's bases (click's own class on typer < 0.26, typer's vendored one after).
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

_PIPE_WIDTH = 1 << 16  # off a terminal nothing is wrapped or cut (rich's default would be 80 columns)
_widened = False


def _version(value: bool) -> None:
    if value:
        from ticketfmt._version import __version__

        out.print(f"ticketfmt {__version__}", soft_wrap=True)
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", metavar="", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    pass


def warn(message: str) -> None:
    """One ``warning:`` line on stderr."""
    err.print(Text.assemble(("warning: ", "yellow"), message), soft_wrap=True)


def check_output(path: Path, force: bool) -> None:
    """Refuse to replace an existing output unless ``--force`` (checked before any work is done)."""
    if (path.exists() or path.is_symlink()) and not force:  # a dangling symlink is an existing output too
        raise OutputExistsError(f"{path} already exists", fix="pass --force to replace it, or choose another -o")
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory", fix="give a file name with -o")
    if not force:  # and if another writer creates it meanwhile, publishing it fails too (no check-then-rename race)
        refuse_replacing(path)


def _plain(cell: Any) -> str:
    text = cell.plain if isinstance(cell, Text) else Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)
    return " ".join(text.split())  # one line per row, no tabs inside a cell


def print_table(table: Table) -> None:
    """Print a table: drawn on a terminal; elsewhere tab-separated (title as ``# title``, then a header row).

    Example:
        >>> t = Table("id", "params")
        >>> t.add_row("timm/resnet50", "25.56M")
        >>> print_table(t)  # piped: "id\\tparams" then "timm/resnet50\\t25.56M"  # doctest: +SKIP
    """
    if out.is_terminal:
        out.print(table)
        return
    lines = [f"# {_plain(table.title)}"] if table.title else []
    if table.show_header:
        lines.append("\t".join(_plain(c.header) for c in table.columns))
    cells = [list(c.cells) for c in table.columns]
    lines += ["\t".join(_plain(col[i]) for col in cells) for i in range(table.row_count)]
    out.file.write("".join(line + "\n" for line in lines))  # verbatim: rich would expand the tabs


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (verbatim: no markup, nothing wrapped)."""
    out.print_json(json.dumps(data))


def _fit_output() -> None:
    """Off a terminal, print at full width (nothing wrapped or cut); on one, at the terminal's width."""
    global _widened
    if not out.is_terminal:
        out.soft_wrap, out.width, _widened = True, _PIPE_WIDTH, True
    elif _widened:  # a terminal after a pipe (in-process callers): back to the terminal's size
        out.soft_wrap, _widened = False, False
        out.width = None  # type: ignore[assignment]  # rich: None = measure the terminal


def _usage_line(e: Exception) -> str:
    ctx = getattr(e, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else " (see `ticket --help`)"
    message = " ".join(e.format_message().split())  # type: ignore[attr-defined]
    # A mistyped command: click >= 8.5 suggests the name and typer adds the same suggestion; say it once.
    first, _, rest = message.partition(" Did you mean ")
    suggestion, again, repeated = rest.partition(" Did you mean ")
    if again and suggestion == repeated:
        message = f"{first} Did you mean {suggestion}"
    return message + where


def _is_help(e: Exception) -> bool:
    """Whether a usage error is a group called without a command (typer has printed its help already).

    typer exports no name for that error either; its class name is the same in typer and click.
    """
    return type(e).__name__ == "NoArgsIsHelpError"


def _error(label: str, message: str) -> None:
    err.print(Text.assemble((label, "bold red"), message), soft_wrap=True)


def _command(args: list[str]) -> Any:
    """The click command that parses ``args``: the app with only the command ``args`` names, when it names one.

    typer lays out every registered command (signatures, options) before it parses anything;
    laying out one is ~50 ms less of each start (issue 13: `ticket info` under 0.3 s). With no
    command named (``ticket``, ``ticket --help``, a typo), every registered one is laid out.
    """
    name = args[0] if args else None
    one = copy.copy(app)  # shallow: the registered lists are replaced below, never mutated
    one.registered_commands = [c for c in app.registered_commands
                               if (c.name or typer.main.get_command_name(c.callback.__name__)) == name]
    one.registered_groups = [g for g in app.registered_groups if g.name == name]
    command = typer.main.get_command(one if one.registered_commands or one.registered_groups else app)
    _unwrap_help(command)
    return command


def unwrap_paragraphs(text: str) -> str:
    """``text`` with each paragraph's line breaks turned into spaces, so the terminal wraps it at its width.

    typer's rich help keeps a docstring's single line breaks after the first paragraph (the lines of
    ``ticket prune --help`` broke mid-sentence); a paragraph that starts with ``\\b`` (click's "keep
    this block as written", used for example lists) is left as it is.

    Example:
        >>> unwrap_paragraphs("Title.\\n\\nOne sentence\\nsplit in two.")
        'Title.\\n\\nOne sentence split in two.'
    """
    paragraphs = [p.strip("\n") for p in text.split("\n\n")]
    return "\n\n".join(p if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines())
                       for p in paragraphs)


def _unwrap_help(command: Any) -> None:
    """Unwrap the help of ``command`` and of its sub-commands (:func:`unwrap_paragraphs`)."""
    if command.help:
        command.help = unwrap_paragraphs(inspect.cleandoc(command.help))
    for sub in getattr(command, "commands", {}).values():
        _unwrap_help(sub)


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the app on ``argv``: every error becomes one line and exit code 2 (``TICKETFMT_DEBUG=1``: traceback).

    The commands must be registered first (:func:`ticketfmt.cli.main` does both).
    """
    debug = os.environ.get("TICKETFMT_DEBUG", "") not in ("", "0")
    _fit_output()
    command = _command(list(argv) if argv is not None else sys.argv[1:])
    try:
        with output_scope():  # the outputs this command must not replace (check_output) are its own
            rv = command.main(args=list(argv) if argv is not None else None, prog_name="ticket", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Exit as e:
        code = e.exit_code
    except UsageError as e:
        if _is_help(e):
            err.print(e.format_message())  # type: ignore[attr-defined]
        else:
            if debug:
                traceback.print_exc()
            _error("error: ", _usage_line(e))
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        code = 130
    except TicketError as e:
        if debug:
            traceback.print_exc()
        _error("error: ", str(e))
        code = 2
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except OSError as e:
        if debug:
            traceback.print_exc()
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        _error("error: ", f"{where}{e.strerror or e}")
        code = 2
    except Exception as e:  # a bug: say so in one line, the traceback is one variable away
        if debug:
            raise
        _error("internal error: ", f"{type(e).__name__}: {' '.join(str(e).split())} "
               "(set TICKETFMT_DEBUG=1 for the traceback and report it)")
        code = 1
    sys.stdout.flush()
    raise SystemExit(code)
