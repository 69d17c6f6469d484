"""ticketfmt: a standard file format and toolchain for lottery tickets.

Example:
    >>> from ticketfmt import Ticket, build_model
    >>> ticket = Ticket.from_model(build_model("cifar_resnet20", seed=0), "cifar_resnet20")
    >>> ticket.arch
    'cifar_resnet20'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ticketfmt._version import __version__

# Exports load lazily so `ticket info` (header only) does not pay for importing torch.
_EXPORTS = {
    "Ticket": "ticketfmt.ticket",
    "build_model": "ticketfmt.zoo",
    "get_arch": "ticketfmt.zoo",
    "list_archs": "ticketfmt.zoo",
    "ArchSpec": "ticketfmt.zoo",
    "read_header": "ticketfmt.format.spec",
    "prune": "ticketfmt.pruning",
    "apply_masks": "ticketfmt.interop",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from ticketfmt.interop import apply_masks
    from ticketfmt.pruning import prune
    from ticketfmt.format.spec import read_header
    from ticketfmt.ticket import Ticket
    from ticketfmt.zoo import ArchSpec, build_model, get_arch, list_archs


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ticketfmt' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(module), name)
