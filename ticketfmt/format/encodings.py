"""The two encodings of a ticket file, as data (imports no torch): what each stores for a masked weight.

============  =======================================  ==========================================
encoding      ``mask/<key>``                           ``init/<key>``, ``trained/<key>``
============  =======================================  ==========================================
``packed``    ``U8[ceil(n / 8)]``: the mask's bits,    ``[kept]``: the surviving values, row-major
              row-major, most significant bit first
``dense``     ``BOOL`` in the weight's shape           the full tensor (zeros at pruned positions)
============  =======================================  ==========================================

Unmasked tensors are stored in full in both. The header reader (:mod:`.spec`) checks every
masked tensor against this table before anything is read; the bit packing itself is
:func:`ticketfmt.format.tensors.pack_bits` (torch and numpy). ``docs/SPEC.md`` ("Encodings") is
the normative text.

Example:
    >>> get_encoding("packed").mask_layout((10, 3)), get_encoding("packed").values_shape((10, 3), kept=7)
    (('U8', (4,)), (7,))
    >>> get_encoding("dense").mask_layout((10, 3)), get_encoding("dense").values_shape((10, 3), kept=7)
    (('BOOL', (10, 3)), (10, 3))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Encoding", "ENCODING_NAMES", "get_encoding"]


@dataclass(frozen=True)
class Encoding:
    """How one encoding lays out a masked weight: the mask's dtype and shape, the values' shape."""

    name: str
    packed: bool
    """Whether masks are bits and masked values only the survivors (else BOOL masks and full tensors)."""

    def mask_layout(self, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        """The safetensors dtype and shape of ``mask/<key>`` for a weight of ``shape``."""
        return ("U8", ((math.prod(shape) + 7) // 8,)) if self.packed else ("BOOL", tuple(shape))

    def values_shape(self, shape: tuple[int, ...], kept: int) -> tuple[int, ...]:
        """The shape of ``init/<key>`` and ``trained/<key>`` for a weight of ``shape`` with ``kept`` survivors."""
        return (kept,) if self.packed else tuple(shape)


_BY_NAME: dict[str, Encoding] = {e.name: e for e in (Encoding("packed", True), Encoding("dense", False))}
ENCODING_NAMES = tuple(_BY_NAME)
"""The encodings' names, the default (``packed``) first."""


def get_encoding(name: str) -> Encoding:
    """The encoding ``name``; an unknown name raises ``ValueError``.

    Example:
        >>> get_encoding("dense").packed
        False
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown encoding {name!r}; use one of {', '.join(ENCODING_NAMES)}") from None
