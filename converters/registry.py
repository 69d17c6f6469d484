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

if TYPE_CHECKING:
    from ticketfmt.converters.base import FamilyConverter

__all__ = ["register", "unregister", "get_converter", "registered_families", "register_fallback"]

_CONVERTERS: dict[str, FamilyConverter] = {}
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
    taken = [f for f in converter.families if f in _CONVERTERS]
    if taken:
        raise ValueError(f"the {taken[0]!r} family already has a converter ({type(_CONVERTERS[taken[0]]).__name__}); "
                         "unregister() it first")
    for family in converter.families:
        _CONVERTERS[family] = converter
    return converter


def unregister(family: str) -> FamilyConverter:
    """Remove the converter of ``family`` (from every family it serves); returns it."""
    converter = _CONVERTERS[family]
    for f in converter.families:
        _CONVERTERS.pop(f, None)
    return converter


def get_converter(family: str) -> FamilyConverter:
    """The converter of a zoo family (``cifar_resnet``, ``resnet``, ``vgg``, ``cifar_vgg``)."""
    if family in _CONVERTERS:
        return _CONVERTERS[family]
    for fallback, _ in _FALLBACKS:
        found = fallback(family)
        if found is not None:
            return found
    raise ConversionError(f"no elastic converter for the {family!r} family",
                          fix=f"convertible families: {', '.join(registered_families())}")


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
