"""The ``__metadata__`` of a ticket file, built from its parts (imports no torch).

:func:`file_metadata` is the one metadata builder: ``Ticket.save`` and the packed conversion
path (:func:`ticketfmt.converters.convert_file`, numpy only) both call it, so both write the
same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ticketfmt.format.raw import base_metadata  # numpy-free: the packed convert path imports no numpy
from ticketfmt.sparsity import sparsity_of
from ticketfmt.zoo import ArchSpec, format_version_for

__all__ = ["file_metadata", "ANALYSIS_SOURCES"]

ANALYSIS_SOURCES = frozenset({"lmc"})
"""``results`` sources that analyse a ticket rather than evaluate it (``ticket lmc``'s error barrier):
they never make a ticket "verified" and never become a card's benchmark result."""


def file_metadata(spec: ArchSpec, provenance: Mapping[str, Any], results: list[dict[str, Any]],
                  layers: Mapping[str, tuple[tuple[int, ...], int]], encoding: str) -> dict[str, str]:
    """The ``__metadata__`` strings of a ticket file (before the payload checksum), from its parts.

    ``layers`` maps each mask's name, in file order, to its shape and its number of kept weights.

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> meta = file_metadata(get_arch("cifar_resnet8"), {"method": "init"}, [], {}, "packed")
        >>> meta["format"], meta["encoding"], meta["provenance"], meta["sparsity"]
        ('ticketfmt', 'packed', '{"method":"init"}', '0.000000')
    """
    meta = base_metadata(encoding, format_version_for(spec, layers))  # the lowest version describing the file
    density = {k: (kept, math.prod(shape)) for k, (shape, kept) in layers.items()}
    meta.update({
        "arch": json.dumps(spec.to_json(), separators=(",", ":")),
        "provenance": _strict("provenance", provenance, sort_keys=True),
        "results": _strict("results", results),
        "layers": json.dumps({k: {"shape": list(shape), "kept": kept} for k, (shape, kept) in layers.items()},
                             separators=(",", ":")),
        "sparsity": f"{sparsity_of(density):.6f}",
    })
    return meta


def _strict(key: str, value: Any, **kwargs: Any) -> str:
    """JSON the reader reads back (ticketfmt.format.limits: no NaN, within the nesting limit), else a one-line error."""
    from ticketfmt.errors import TicketFormatError
    from ticketfmt.format.limits import dumps

    try:
        return dumps(value, **kwargs)
    except ValueError as e:
        raise TicketFormatError(f"the ticket's {key} {e}: a reader would refuse the file (docs/SPEC.md, Limits)",
                                fix=f"store finite numbers and at most 32 levels of nesting in {key}") from None
