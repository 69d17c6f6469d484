"""The one leaf registry of named things that every ticketfmt registry is built on.

Families, converters, encodings, pruning methods and datasets each keep a :class:`Registry`:
a name is registered once (a second registration is a bug, not an override), can be
unregistered (tests and plug-ins), and looking up an unknown name raises the registry's own
error in one line saying what is wrong and how to fix it. This module imports only
:mod:`ticketfmt.errors`, so every layer may use it.

Example:
    >>> colours = Registry("colour")
    >>> colours.register("red", 0xFF0000)
    16711680
    >>> colours.register("red", 1)
    Traceback (most recent call last):
    ...
    ValueError: colour 'red' is registered already (int); unregister it first
    >>> colours.get("blue")
    Traceback (most recent call last):
    ...
    ticketfmt.errors.TicketError: unknown colour 'blue'; known colours: red
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

from ticketfmt.errors import TicketError

__all__ = ["Registry", "describe"]

T = TypeVar("T")


def describe(obj: object) -> str:
    """How a taken-name error names what holds the name: a function's qualified name, else its class's name.

    Example:
        >>> describe(describe), describe(3)
        ('describe', 'int')
    """
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def _error(cls: type[Exception], message: str, fix: str) -> Exception:
    # ticketfmt's errors join what and how-to-fix themselves; a builtin gets the same single line.
    return cls(message, fix=fix) if issubclass(cls, TicketError) else cls(f"{message}; {fix}")


class Registry(Generic[T]):
    """Named objects of one ``kind``, in registration order.

    The messages are ``str.format`` templates with the fields ``kind``, ``name`` and ``old``
    (:func:`describe` of what holds a taken name); ``fix`` may also use ``names`` (the sorted
    names), or be a function returning the text (a registry that lists names its own way).

    Args:
        kind: what one entry is, for messages (``"pruning method"``).
        error: raised for an unknown name (a ticketfmt error gets ``fix=``; a builtin one line).
        unknown, fix: the unknown-name message and its how-to-fix.
        taken, taken_fix: the taken-name message (a ``taken_error``) and its how-to-fix.

    Example:
        >>> reg = Registry("shape", fix="use one of {names}")
        >>> reg.register("square", 4), reg.register("circle", 0)
        (4, 0)
        >>> reg.names(), list(reg), "square" in reg
        (['circle', 'square'], ['square', 'circle'], True)
        >>> reg.unregister("square"), reg.names()
        (4, ['circle'])
    """

    def __init__(self, kind: str, *, error: type[Exception] = TicketError,
                 unknown: str = "unknown {kind} {name!r}", fix: str | Callable[[], str] = "known {kind}s: {names}",
                 taken_error: type[Exception] = ValueError,
                 taken: str = "{kind} {name!r} is registered already ({old})",
                 taken_fix: str = "unregister it first") -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._error, self._unknown, self._fix = error, unknown, fix
        self._taken_error, self._taken, self._taken_fix = taken_error, taken, taken_fix
        self._watchers: list[Callable[[], object]] = []
        self.view: Mapping[str, T] = MappingProxyType(self._entries)
        """A read-only, live mapping of the entries (a package's public ``FAMILIES``, ``PRUNERS``)."""

    def check_free(self, name: str) -> None:
        """Raise the taken-name error when ``name`` is registered (a registration of several names checks all first)."""
        if name in self._entries:
            fields = {"kind": self.kind, "name": name, "old": describe(self._entries[name])}
            raise _error(self._taken_error, self._taken.format(**fields), self._taken_fix.format(**fields))

    def register(self, name: str, obj: T) -> T:
        """Register ``obj`` as ``name``; returns it. A taken name raises (``unregister`` it first)."""
        self.check_free(name)
        self._entries[name] = obj
        self._changed()
        return obj

    def add(self, obj: T) -> T:
        """Register ``obj`` under its ``name`` attribute; a ``ValueError`` when it has none."""
        name = getattr(obj, "name", "")
        if not name:
            raise ValueError(f"{type(obj).__name__} has no name: set the class attribute `name`")
        return self.register(name, obj)

    def unregister(self, name: str) -> T:
        """Remove ``name``; returns what it held. A ``KeyError`` when it is not registered."""
        if name not in self._entries:
            raise KeyError(f"{self.kind} {name!r} is not registered")
        obj = self._entries.pop(name)
        self._changed()
        return obj

    def get(self, name: str) -> T:
        """The entry ``name``; an unknown name raises :meth:`unknown_error`."""
        try:
            return self._entries[name]
        except KeyError:
            raise self.unknown_error(name) from None

    def unknown_error(self, name: str) -> Exception:
        """The error for an unknown ``name``: what, and how to fix it (the known names)."""
        fix = self._fix() if callable(self._fix) else self._fix.format(kind=self.kind, names=", ".join(self.names()))
        return _error(self._error, self._unknown.format(kind=self.kind, name=name), fix)

    def watch(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` after every registration and removal (caches of lookups drop stale entries)."""
        self._watchers.append(callback)

    def _changed(self) -> None:
        for callback in self._watchers:
            callback()

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in registration order."""
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
