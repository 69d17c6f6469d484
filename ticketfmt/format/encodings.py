"""The encodings of a ticket file: the :class:`Encoding` interface and its registry (a leaf, imports no torch).

An encoding says how a masked weight is stored. It has two halves:

- the **header rule** (:meth:`Encoding.mask_layout`, :meth:`Encoding.values_shape`): the dtype
  and shape of ``mask/<key>`` and the shape of ``init/<key>`` / ``trained/<key>``, from the
  weight's shape and its number of survivors. The torch-free header reader
  (:mod:`ticketfmt.format.spec`) checks every masked tensor against it before anything is read;
- the **codec** (:meth:`Encoding.encode_mask`, :meth:`Encoding.encode_values`,
  :meth:`Encoding.decode_mask`, :meth:`Encoding.decode_values`, :meth:`Encoding.count_kept`):
  tensors in, tensors out. :func:`ticketfmt.format.tensors.encode_tensors` /
  :func:`~ticketfmt.format.tensors.decode_tensors` (``Ticket.save`` / ``Ticket.load``) and
  :func:`ticketfmt.checks.check_layers` dispatch to it by the file's ``encoding``.

The built-in encodings (``docs/SPEC.md``, "Encodings", is the normative text):

============  =======================================  ==========================================
encoding      ``mask/<key>``                           ``init/<key>``, ``trained/<key>``
============  =======================================  ==========================================
``packed``    ``U8[ceil(n / 8)]``: the mask's bits,    ``[kept]``: the surviving values, row-major
              row-major, most significant bit first    (:mod:`ticketfmt.format.packed`)
``dense``     ``BOOL`` in the weight's shape           the full tensor (zeros at pruned positions)
                                                       (:mod:`ticketfmt.format.dense`)
============  =======================================  ==========================================

Unmasked tensors are stored in full in every encoding. Importing :mod:`ticketfmt.format`
registers the built-in ones. Adding an encoding is one module that subclasses :class:`Encoding`
and calls :func:`register_encoding`, plus its import line in ``ticketfmt/format/__init__.py``;
the module must import no torch at import time (the header reader imports it; import torch or
numpy inside the codec methods). Registering a name twice raises.

Example:
    >>> import ticketfmt.format
    >>> get_encoding("packed").mask_layout((10, 3), kept=7), get_encoding("packed").values_shape((10, 3), kept=7)
    (('U8', (4,)), (7,))
    >>> get_encoding("dense").mask_layout((10, 3), kept=7), get_encoding("dense").values_shape((10, 3), kept=7)
    (('BOOL', (10, 3)), (10, 3))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, overload

from ticketfmt.registry import Registry

__all__ = ["Encoding", "ENCODING_NAMES", "register_encoding", "unregister_encoding", "get_encoding"]


Tensor = Any
"""``torch.Tensor`` in the codec's signatures: not imported, as the torch-free header reader imports this module
(the import contracts count ``TYPE_CHECKING`` imports too)."""


class Encoding:
    """How one encoding stores a masked weight: the header rule (torch-free) and the codec (tensors).

    Subclasses set ``name`` and implement every method below; register an instance with
    :func:`register_encoding`. Tensors given to the codec are on the CPU, views of the reader's
    private buffer (it holds only this file's tensors); a decoded tensor may be the tensor it
    decodes, but no two decoded tensors may share memory.

    Example:
        >>> class Toy(Encoding):  # doctest: +SKIP
        ...     name = "toy"
        ...     def mask_layout(self, shape, kept): ...
        >>> register_encoding(Toy())  # doctest: +SKIP
    """

    name: str = ""
    zeroes_pruned: bool = False
    """Whether decoded values hold zeros at pruned positions by construction (``packed``: nothing else is
    stored). When False, ``Ticket`` zeroes them after its checks, as a dense file may hold anything there."""

    # -- the header rule (no torch) ---------------------------------------------------------------------------
    def mask_layout(self, shape: tuple[int, ...], kept: int) -> tuple[str, tuple[int, ...]]:  # pragma: no cover
        """The safetensors dtype and shape of ``mask/<key>`` for a weight of ``shape`` with ``kept`` survivors."""
        raise NotImplementedError

    def values_shape(self, shape: tuple[int, ...], kept: int) -> tuple[int, ...]:  # pragma: no cover
        """The shape of ``init/<key>`` and ``trained/<key>`` for a weight of ``shape`` with ``kept`` survivors."""
        raise NotImplementedError

    # -- the codec (tensors) ----------------------------------------------------------------------------------
    def encode_mask(self, mask: Tensor) -> Tensor:  # pragma: no cover
        """``mask/<key>`` for a BOOL mask."""
        raise NotImplementedError

    def encode_values(self, values: Tensor, mask: Tensor) -> Tensor:  # pragma: no cover
        """``init/<key>`` (or ``trained/<key>``) for the full tensor ``values`` masked by ``mask``."""
        raise NotImplementedError

    def decode_mask(self, raw: Tensor, shape: tuple[int, ...]) -> Tensor:  # pragma: no cover
        """The BOOL mask of ``shape`` that ``raw`` (a ``mask/<key>`` checked by :meth:`count_kept`) stores."""
        raise NotImplementedError

    def decode_values(self, raw: Tensor, mask: Tensor) -> Tensor:  # pragma: no cover
        """The full tensor (``mask``'s shape) that ``raw`` stores."""
        raise NotImplementedError

    def count_kept(self, raw: Tensor, shape: tuple[int, ...]) -> int:  # pragma: no cover
        """The survivors ``raw`` (a ``mask/<key>`` of the header rule's layout) stores, without decoding it.

        ``raw`` is a CPU tensor or a numpy array (the packed ``ticket convert`` path checks the
        file's numpy views through :func:`ticketfmt.checks.check_layers`). Raises ``ValueError``
        with a short reason (``"padding bits are not zero"``) when ``raw`` has that layout but no
        valid mask does; the reader reports it as a corrupted file.
        """
        raise NotImplementedError


_ENCODINGS: Registry[Encoding] = Registry(
    "encoding", error=ValueError, fix=lambda: f"use one of {', '.join(_ENCODINGS)}",
    taken="an encoding named {name!r} is registered already ({old})", taken_fix="unregister_encoding() it first")

E = TypeVar("E", bound=Encoding)


class _Names(Sequence[str]):
    """The registered encodings' names in registration order, read live from the registry."""

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...

    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        return tuple(_ENCODINGS)[i]

    def __len__(self) -> int:
        return len(_ENCODINGS)

    def __iter__(self) -> Iterator[str]:
        return iter(_ENCODINGS)

    def __contains__(self, name: object) -> bool:
        return name in _ENCODINGS

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # it changes as encodings register

    def __repr__(self) -> str:
        return repr(tuple(self))


ENCODING_NAMES: Sequence[str] = _Names()
"""The encodings' names, the default (``packed``) first; a live view, so encodings registered later appear."""


def register_encoding(encoding: E) -> E:
    """Add ``encoding`` to the registry under ``encoding.name``; returns it.

    Raises ``ValueError`` when the name is empty or taken (a second registration is a bug, not an
    override: :func:`unregister_encoding` the old one first).

    Example:
        >>> register_encoding(get_encoding("dense"))
        Traceback (most recent call last):
        ...
        ValueError: an encoding named 'dense' is registered already (DenseEncoding); unregister_encoding() it first
    """
    _ENCODINGS.add(encoding)
    return encoding


def unregister_encoding(name: str) -> Encoding:
    """Remove the encoding ``name``; returns it (tests register toy encodings and remove them)."""
    return _ENCODINGS.unregister(name)


def get_encoding(name: str) -> Encoding:
    """The encoding ``name``; an unknown name raises ``ValueError``.

    Example:
        >>> get_encoding("dense").zeroes_pruned
        False
    """
    return _ENCODINGS.get(name)
