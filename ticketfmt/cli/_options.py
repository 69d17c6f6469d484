"""Option aliases shared by the commands (as huggingface_hub's CLI does): one spelling, one help text each.

A command writes ``force: Force = False`` instead of repeating the ``typer.Option(...)``.
Flags carry an empty metavar, so help shows ``--force`` and not ``--force <bool>`` (which
reads as if it took a value).

Example:
    >>> from ticketfmt.cli._options import Force, NoVerify
    >>> def command(force: Force = False, no_verify: NoVerify = False) -> None: ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["NoVerify", "Force", "Output", "Encoding", "AsJson", "Token", "Revision", "check_encoding"]


def check_encoding(value: str) -> str:
    """The ``--encoding`` value, checked (a one-line usage error names the encodings)."""
    from ticketfmt.format.spec import ENCODINGS

    if value not in ENCODINGS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(ENCODINGS)}", param_hint="--encoding")
    return value


NoVerify = Annotated[bool, typer.Option("--no-verify", metavar="",
                                        help="Skip the integrity checks on load (the payload sha256; for Hub "
                                             "downloads also config.json's agreement with the ticket).")]
"""``--no-verify``: every command that loads a ticket file."""

Force = Annotated[bool, typer.Option("--force", metavar="", help="Replace outputs that exist.")]
"""``--force``: every command that writes a file (outputs are never replaced without it)."""

Output = Annotated[Path, typer.Option("-o", "--output", help="Where to write the ticket.", dir_okay=False)]
"""``-o/--output``: the ticket file a command writes."""

Encoding = Annotated[str, typer.Option("--encoding", callback=check_encoding,
                                       help="packed (bits + surviving values) or dense.")]
"""``--encoding``: the file encoding of the tickets a command writes (default packed)."""

AsJson = Annotated[bool, typer.Option("--json", metavar="", help="Print JSON instead of tables (for scripts).")]
"""``--json``: every listing and report command."""

Token = Annotated[Optional[str], typer.Option("--token", help="Hub token (default: HF_TOKEN or `hf auth login`; "
                                                              "prefer those: a token on the command line is "
                                                              "visible to other users). Never printed.",
                                              show_default=False)]
"""``--token``: every command that talks to the Hub."""

Revision = Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit (default: main).")]
"""``--revision``: every command that reads from the Hub."""
