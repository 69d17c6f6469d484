"""The registry of family converters: a leaf, filled when :mod:`ticketfmt.converters` is imported.

Each built-in family module (``resnet``, ``vgg``) registers its converter on import; the
package imports them, so the registry is complete as soon as any ``ticketfmt.converters``
module is. Registering a family twice raises.

Example:
    >>> from ticketfmt.converters import get_converter
    >>> get_converter("cifar_resnet").families
    ('cifar_resnet', 'resnet')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from ticketfmt.errors import ConversionError
from ticketfmt.registry import Registry

if TYPE_CHECKING:
    from ticketfmt.converters.base import FamilyConverter

__all__ = ["register", "unregister", "get_converter", "registered_families", "register_fallback"]

_CONVERTERS: Registry[FamilyConverter] = Registry(
    "converter", error=ConversionError, unknown="no elastic converter for the {name!r} family",
    fix=lambda: f"convertible families: {', '.join(registered_families())}",
    taken="the {name!r} family already has a converter ({old})", taken_fix="unregister() it first")
_FALLBACKS: list[tuple[Callable[[str], FamilyConverter | None], Callable[[], Iterable[str]]]] = []

C = TypeVar("C", bound="FamilyConverter")


def register(converter: C) -> C:
    """Register ``converter`` for each family it lists in ``families``; returns it.

    Raises ``ValueError`` when one of its families already has a converter (a second
    registration is a bug, not an override: :func:`unregister` the old one first).

    Example:
        >>> class ToyConverter(FamilyConverter):  # doctest: +SKIP
        ...     families = ("toy",)
        >>> register(ToyConverter())  # doctest: +SKIP
    """
    for family in converter.families:  # all free, or none is registered
        _CONVERTERS.check_free(family)
    for family in converter.families:
        _CONVERTERS.register(family, converter)
    return converter


def unregister(family: str) -> FamilyConverter:
    """Remove the converter of ``family`` (from every family it serves); returns it."""
    converter = _CONVERTERS.unregister(family)
    for f in converter.families:
        if f in _CONVERTERS:
            _CONVERTERS.unregister(f)
    return converter


def get_converter(family: str) -> FamilyConverter:
    """The converter of a zoo family (``cifar_resnet``, ``resnet``, ``vgg``, ``cifar_vgg``)."""
    if family not in _CONVERTERS:
        for fallback, _ in _FALLBACKS:
            found = fallback(family)
            if found is not None:
                return found
    return _CONVERTERS.get(family)


def register_fallback(finder: Callable[[str], FamilyConverter | None], serves: Callable[[], Iterable[str]]) -> None:
    """Serve families without a converter of their own: ``finder(family)`` returns one, or None.

    ``serves()`` names the families ``finder`` serves right now (it is asked each time, since
    zoo families come and go), so :func:`registered_families` and error messages list them. The
    generic converter of staged families (``ticketfmt.converters.staged``) registers here, so a
    zoo family described by its stages needs no converter module.
    """
    _FALLBACKS.append((finder, serves))


def registered_families() -> list[str]:
    """The families with a converter (their own or a fallback's), sorted.

    Example:
        >>> "cifar_resnet" in registered_families()
        True
    """
    names = set(_CONVERTERS)
    for _, serves in _FALLBACKS:
        names.update(serves())
    return sorted(names)
