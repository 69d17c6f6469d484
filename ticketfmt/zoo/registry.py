"""The registry of model families: a leaf, filled when :mod:`ticketfmt.zoo` is imported.

Each family module (``ticketfmt.zoo.resnet``, ``ticketfmt.zoo.vgg``) registers its families
when it is imported, and ``ticketfmt.zoo`` imports them all, so the registry is complete as
soon as any zoo module is (timm's direction). Registering a name twice raises: a second
registration is a bug, not an override.

Example:
    >>> from ticketfmt.zoo import FAMILIES
    >>> sorted(FAMILIES)
    ['cifar_resnet', 'cifar_vgg', 'resnet', 'vgg']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ticketfmt.errors import UnknownArchError

if TYPE_CHECKING:
    from ticketfmt.zoo.base import Family

__all__ = ["FAMILIES", "register_family", "unregister_family", "get_family"]

FAMILIES: dict[str, Family] = {}
"""Registered families by name, in registration order (the order :func:`ticketfmt.zoo.get_arch` tries them)."""

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
    if not family.name:
        raise ValueError(f"{type(family).__name__} has no name: set the class attribute `name`")
    if family.name in FAMILIES:
        raise ValueError(f"the model family {family.name!r} is registered already "
                         f"({type(FAMILIES[family.name]).__name__}); unregister_family() it first")
    FAMILIES[family.name] = family
    return family


def unregister_family(name: str) -> Family:
    """Remove the family ``name`` from the zoo; returns it (tests register toy families and remove them)."""
    return FAMILIES.pop(name)


def get_family(name: str) -> Family:
    """The registered family ``name``; an unknown name raises :class:`~ticketfmt.errors.UnknownArchError`."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownArchError(f"unknown architecture family {name!r}",
                               fix=f"known families: {', '.join(FAMILIES)}") from None
