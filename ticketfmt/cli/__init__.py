"""The `ticket` command line. Each module registers its commands on :data:`app`."""

from __future__ import annotations

import importlib

from ticketfmt.cli.app import app, main

__all__ = ["app", "main", "load_commands"]

# Command modules, imported when the CLI starts (each is a thin layer over the library).
COMMAND_MODULES = ["ticketfmt.cli.core", "ticketfmt.cli.convert", "ticketfmt.cli.train", "ticketfmt.cli.hub"]


def load_commands() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
