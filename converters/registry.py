"""The registry of family converters: one :class:`~ticketfmt.converters.base.FamilyConverter` per zoo family.

Example:
    >>> from ticketfmt.converters import get_converter
    >>> get_converter("cifar_resnet").families
    ('cifar_resnet', 'resnet')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ticketfmt.errors import ConversionError

if TYPE_CHECKING:
    from ticketfmt.converters.base import FamilyConverter

__all__ = ["register", "get_converter", "registered_families"]

_CONVERTERS: dict[str, FamilyConverter] = {}

C = TypeVar("C", bound="FamilyConverter")


def register(converter: C) -> C:
    """Register ``converter`` for each family it lists in ``families`` (a later one replaces an earlier one)."""
    for family in converter.families:
        _CONVERTERS[family] = converter
    return converter


def get_converter(family: str) -> FamilyConverter:
    """The converter of a zoo family (``cifar_resnet``, ``resnet``, ``vgg``, ``cifar_vgg``)."""
    _load_builtin()
    try:
        return _CONVERTERS[family]
    except KeyError:
        raise ConversionError(f"no elastic converter for the {family!r} family",
                              fix=f"convertible families: {', '.join(sorted(_CONVERTERS))}") from None


def registered_families() -> list[str]:
    _load_builtin()
    return sorted(_CONVERTERS)


def _load_builtin() -> None:
    # The built-in converters register themselves on import.
    import ticketfmt.converters.resnet  # noqa: F401
    import ticketfmt.converters.vgg  # noqa: F401
