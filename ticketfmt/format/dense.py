"""The ``dense`` encoding: BOOL masks in the weight's shape and every tensor in full.

``mask/<key>`` is ``BOOL`` of the weight's shape; ``init/<key>`` and ``trained/<key>`` are the
full tensors. Writers store zeros at pruned positions (a ticket is ``θ ⊙ m``); a reader zeroes
them anyway after its checks (:attr:`~ticketfmt.format.encodings.Encoding.zeroes_pruned` is False).
Imports no torch.

Example:
    >>> from ticketfmt.format.encodings import get_encoding
    >>> get_encoding("dense").mask_layout((2, 3), kept=4)
    ('BOOL', (2, 3))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketfmt.format.encodings import Encoding, register_encoding

if TYPE_CHECKING:
    import torch

__all__ = ["DenseEncoding"]


class DenseEncoding(Encoding):
    """BOOL masks and full tensors."""

    name = "dense"
    zeroes_pruned = False

    def mask_layout(self, shape: tuple[int, ...], kept: int) -> tuple[str, tuple[int, ...]]:
        return "BOOL", tuple(shape)

    def values_shape(self, shape: tuple[int, ...], kept: int) -> tuple[int, ...]:
        return tuple(shape)

    def encode_mask(self, mask: torch.Tensor) -> torch.Tensor:
        return mask

    def encode_values(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return values

    def decode_mask(self, raw: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return _own(raw)

    def decode_values(self, raw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return _own(raw)

    def count_kept(self, raw: torch.Tensor, shape: tuple[int, ...]) -> int:
        import numpy as np
        return int(np.count_nonzero(np.asarray(raw)))  # numpy: single-threaded, no OpenMP wake-up per mask


def _own(raw: torch.Tensor) -> torch.Tensor:
    """``raw`` itself when aligned: the reader's buffer is private to this read and holds nothing but the file's
    tensors (``ticketfmt.format.arrays.read_arrays``), so a copy would only double the load's time and memory."""
    return raw if raw.data_ptr() % raw.element_size() == 0 else raw.clone()


register_encoding(DenseEncoding())
