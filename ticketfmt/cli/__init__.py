"""The `ticket` command line: :data:`app` (in :mod:`.app`) and the command modules that register on it.

Only this package imports typer and rich; each command module is a thin layer over the
library and imports torch inside its commands, so ``ticket info`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from ticketfmt.cli.app import app, run

__all__ = ["app", "main", "load_commands", "COMMAND_MODULES"]


COMMAND_MODULES = {"convert": "convert", "new": "core", "prune": "core", "info": "core", "models": "core",
                   "export": "export", "push": "hub", "pull": "hub", "card": "hub", "import": "hub",
                   "find": "train", "verify": "train", "lmc": "lmc"}
"""The module under ``ticketfmt.cli`` that registers each command (tests/test_cli.py checks it against the app)."""


def load_commands(argv: Sequence[str] | None = None) -> None:
    """Register the commands on :data:`app` (importing a command module registers its commands).

    Every command; or, when ``argv`` starts with a command's name, only the commands of its
    module: importing them all is ~30 ms of each start (issue 13: ``ticket info`` under 0.3 s).
    """
    module = COMMAND_MODULES.get(argv[0]) if argv else None
    if module is not None:
        importlib.import_module(f"ticketfmt.cli.{module}")
        return
    from ticketfmt.cli import convert, core, export, hub, lmc, train  # noqa: F401


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `ticket` console script: every error becomes one line and exit code 2.

    ``TICKETFMT_DEBUG=1`` shows the traceback instead.

    Example:
        >>> main(["models", "--json"])  # doctest: +SKIP
    """
    load_commands(list(argv) if argv is not None else sys.argv[1:])
    run(argv)
