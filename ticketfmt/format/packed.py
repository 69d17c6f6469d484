"""The ``packed`` encoding (the default): masks as bits, masked tensors as their surviving values only.

``mask/<key>`` is ``U8[ceil(n / 8)]``, the mask's ``n`` bits row-major, most significant bit
first, padding bits zero; ``init/<key>`` and ``trained/<key>`` hold the ``kept`` surviving
values in row-major order. Pruned positions store nothing, so they decode as zeros.

This module imports no torch at import time (the header reader imports it through
:mod:`ticketfmt.format`); the codec imports the bit packing of :mod:`ticketfmt.format.tensors`
when it runs.

Example:
    >>> import torch
    >>> from ticketfmt.format.encodings import get_encoding
    >>> packed = get_encoding("packed")
    >>> mask = torch.tensor([True, False, True])
    >>> packed.encode_mask(mask), packed.encode_values(torch.tensor([1.0, 2.0, 3.0]), mask)
    (tensor([160], dtype=torch.uint8), tensor([1., 3.]))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketfmt.format.encodings import Encoding, register_encoding
from ticketfmt.format.raw import RawTensor, popcount_bytes

if TYPE_CHECKING:
    import torch

__all__ = ["PackedEncoding"]


class PackedEncoding(Encoding):
    """Mask bits (``U8``) and the surviving values (``[kept]``)."""

    name = "packed"
    zeroes_pruned = True

    def mask_layout(self, shape: tuple[int, ...], kept: int) -> tuple[str, tuple[int, ...]]:
        n = 1
        for d in shape:
            n *= d
        return "U8", ((n + 7) // 8,)

    def values_shape(self, shape: tuple[int, ...], kept: int) -> tuple[int, ...]:
        return (kept,)

    def encode_mask(self, mask: torch.Tensor) -> torch.Tensor:
        from ticketfmt.format.tensors import pack_bits  # torch and numpy: only when tensors are encoded
        return pack_bits(mask)

    def encode_values(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from ticketfmt.format.tensors import array_to_tensor, tensor_to_array
        # numpy's gather, single-threaded (see decode_values): torch's values[mask] is 10x slower on shared cores.
        return array_to_tensor(tensor_to_array(values)[mask.detach().cpu().numpy()])

    def decode_mask(self, raw: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        from ticketfmt.format.tensors import unpack_bits
        return unpack_bits(raw, shape)

    def decode_values(self, raw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        import numpy as np

        from ticketfmt.format.tensors import array_to_tensor, tensor_to_array
        # numpy, single-threaded: calloc'd zeros (no fill pass) and one scatter; torch's zeros + masked_scatter_
        # take twice as long and collapse when OpenMP threads compete for busy cores.
        values = tensor_to_array(raw)
        out = np.zeros(tuple(mask.shape), dtype=values.dtype)
        out[mask.numpy()] = values
        return array_to_tensor(out)

    def count_kept(self, raw: torch.Tensor | RawTensor, shape: tuple[int, ...]) -> int:
        n = 1
        for d in shape:
            n *= d
        data = raw.data if isinstance(raw, RawTensor) else raw  # the packed convert path: bytes, no numpy
        # The last byte's unused low bits must be zero: a file has one byte sequence per mask.
        if n % 8 and len(data) and int(data[-1]) & ((1 << (8 - n % 8)) - 1):
            raise ValueError("padding bits are not zero")
        if isinstance(raw, RawTensor):
            return popcount_bytes(data)
        from ticketfmt.format.arrays import popcount  # numpy: tensors
        return popcount(raw)


register_encoding(PackedEncoding())
