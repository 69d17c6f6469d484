"""The registry of model families: a leaf, filled when :mod:`ticketfmt.zoo` is imported.

Each family module (``ticketfmt.zoo.resnet``, ``ticketfmt.zoo.vgg``) registers its families
when it is imported, and ``ticketfmt.zoo`` imports them all, so the registry is complete as
soon as any zoo module is (timm's direction). Registering a name twice raises: a second
registration is a bug, not an override.

Example:
    >>> from ticketfmt.zoo import FAMILIES
    >>> list(FAMILIES)[:4]
    ['cifar_resnet', 'resnet', 'vgg', 'cifar_vgg']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from ticketfmt.errors import UnknownArchError
from ticketfmt.registry import Registry

if TYPE_CHECKING:
    from ticketfmt.zoo.base import Family

__all__ = ["FAMILIES", "register_family", "unregister_family", "get_family", "watch_families"]

_FAMILIES: Registry[Family] = Registry(
    "model family", error=UnknownArchError, unknown="unknown architecture family {name!r}",
    fix=lambda: f"known families: {', '.join(_FAMILIES)}",
    taken="the model family {name!r} is registered already ({old})", taken_fix="unregister_family() it first")

FAMILIES: Mapping[str, Family] = _FAMILIES.view
"""Registered families by name (read-only), in registration order (the order :func:`ticketfmt.zoo.get_arch` tries them)."""

F = TypeVar("F", bound="Family")


def register_family(family: F) -> F:
    """Add a family to the zoo (its name grammar is then tried by ``get_arch``); returns it.

    Raises ``ValueError`` when a family of that name is registered already
    (:func:`unregister_family` it first).

    Example:
        >>> class ToyFamily(Family):  # doctest: +SKIP
        ...     name = "toy"
        >>> register_family(ToyFamily())  # doctest: +SKIP
    """
    _FAMILIES.add(family)
    return family


def unregister_family(name: str) -> Family:
    """Remove the family ``name`` from the zoo; returns it (tests register toy families and remove them).

    The zoo's caches of parsed ids are cleared (:func:`watch_families`), so its names stop resolving.
    """
    return _FAMILIES.unregister(name)


def get_family(name: str) -> Family:
    """The registered family ``name``; an unknown name raises :class:`~ticketfmt.errors.UnknownArchError`."""
    return _FAMILIES.get(name)


def watch_families(callback: Callable[[], object]) -> None:
    """Call ``callback()`` whenever a family is registered or removed (the zoo's id caches clear themselves so).

    Example:
        >>> watch_families(lambda: None)  # e.g. an lru_cache's cache_clear
    """
    _FAMILIES.watch(callback)
