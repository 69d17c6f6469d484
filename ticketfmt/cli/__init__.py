"""The `ticket` command line: :data:`app` (in :mod:`.app`) and the command modules that register on it.

Only this package imports typer and rich; each command module is a thin layer over the
library and imports torch inside its commands, so ``ticket info`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from ticketfmt.cli.app import app, run

__all__ = ["app", "main", "load_commands"]


def load_commands() -> None:
    """Register every command on :data:`app` (importing a command module registers its commands)."""
    from ticketfmt.cli import convert, core, export, hub, train  # noqa: F401


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `ticket` console script: every error becomes one line and exit code 2.

    ``TICKETFMT_DEBUG=1`` shows the traceback instead.

    Example:
        >>> main(["models", "--json"])  # doctest: +SKIP
    """
    load_commands()
    run(argv)
