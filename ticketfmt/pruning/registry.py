"""The registry of pruning methods: a leaf, filled when :mod:`ticketfmt.pruning` is imported.

A pruning method is a scorer ``(ticket, **kwargs) -> {name: scores}`` (higher = keep);
:func:`ticketfmt.pruning.prune` keeps the best scores. Registering a name twice raises.

Example:
    >>> import ticketfmt.pruning
    >>> sorted(ticketfmt.pruning.PRUNERS)
    ['grasp', 'magnitude', 'random', 'snip', 'synflow']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ticketfmt.errors import TicketError
from ticketfmt.registry import Registry

if TYPE_CHECKING:
    import torch

    from ticketfmt.ticket import Ticket

__all__ = ["PRUNERS", "Scorer", "register_pruner", "unregister_pruner", "get_pruner"]


class Scorer(Protocol):
    def __call__(self, ticket: Ticket, **kwargs: Any) -> dict[str, torch.Tensor]: ...


_PRUNERS: Registry[Scorer] = Registry(
    "pruning method", error=TicketError, fix="use one of {names}",
    taken="a pruning method named {name!r} is already registered ({old!r})",
    taken_fix="pick another name or unregister_pruner() it first")

PRUNERS: Mapping[str, Scorer] = _PRUNERS.view
"""Every registered pruning method by name (read-only: add with :func:`register_pruner`)."""


def register_pruner(name: str) -> Callable[[Scorer], Scorer]:
    """Register a scoring function ``(ticket, **kwargs) -> {name: scores}`` as the pruning method ``name``.

    Raises ``ValueError`` when ``name`` is taken (a second registration is a bug, not an override).

    Example:
        >>> @register_pruner("ones")  # doctest: +SKIP
        ... def _ones(ticket, **_):
        ...     return {k: torch.ones(m.shape) for k, m in ticket.masks.items()}
    """
    def deco(fn: Scorer) -> Scorer:
        return _PRUNERS.register(name, fn)
    return deco


def unregister_pruner(name: str) -> Scorer:
    """Remove the method ``name`` (tests, plug-ins that replace one on purpose); returns it."""
    return _PRUNERS.unregister(name)


def get_pruner(name: str) -> Scorer:
    """The scorer of the method ``name``; a one-line :class:`TicketError` naming the known ones otherwise."""
    return _PRUNERS.get(name)
