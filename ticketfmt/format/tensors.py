"""Reading and writing ticket files (every encoding), atomically and with validation first.

The byte layout and the rules are in ``docs/SPEC.md``; :mod:`ticketfmt.format.spec` validates a
header without torch. This module turns validated headers into tensors and back:
:func:`read_file` / :func:`write_tensors` move the file's tensors, :func:`decode_tensors` /
:func:`encode_tensors` convert between them and a ticket's masks and weights through the file's
encoding (:mod:`ticketfmt.format.encodings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch

from ticketfmt.errors import TicketFormatError
from ticketfmt.format.arrays import NUMPY_DTYPES, base_metadata, popcount, read_arrays, sha256_file, write_arrays
from ticketfmt.format.atomic import atomic_write
from ticketfmt.format.encodings import get_encoding
from ticketfmt.format.spec import Header

__all__ = ["pack_bits", "unpack_bits", "write_tensors", "read_file", "popcount", "atomic_write", "sha256_file",
           "base_metadata", "encode_tensors", "decode_tensors", "tensor_to_array", "array_to_tensor"]

TORCH_DTYPES: dict[str, torch.dtype] = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "U16": torch.uint16,
    "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32, "U32": torch.uint32, "F32": torch.float32,
    "I64": torch.int64, "U64": torch.uint64, "F64": torch.float64,
}
DTYPE_NAMES = {v: k for k, v in TORCH_DTYPES.items()}


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Pack a bool tensor into bytes, most significant bit first (as ``numpy.packbits``).

    Example:
        >>> pack_bits(torch.tensor([True, False, True, True, False, False, False, False, True]))
        tensor([176, 128], dtype=torch.uint8)
    """
    flat = mask.detach().reshape(-1).cpu().numpy()
    return torch.from_numpy(np.packbits(flat))


def unpack_bits(packed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: a bool tensor of ``shape``."""
    n = 1
    for d in shape:
        n *= d
    bits = np.unpackbits(packed.reshape(-1).numpy(), count=n)
    return torch.from_numpy(bits.view(np.bool_)).reshape(shape)


def tensor_to_array(t: torch.Tensor, name: str = "tensor") -> np.ndarray:
    """A zero-copy numpy view of a tensor's values (bfloat16 as :data:`~ticketfmt.format.arrays.BF16`).

    Example:
        >>> tensor_to_array(torch.ones(2, dtype=torch.bfloat16)).dtype.names
        ('bf16',)
    """
    if t.dtype not in DTYPE_NAMES:
        raise TicketFormatError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot store",
                                fix="convert it to float32", tensor=name)
    flat = t.detach().contiguous().cpu().reshape(-1)
    return flat.view(torch.uint8).numpy().view(NUMPY_DTYPES[DTYPE_NAMES[t.dtype]]).reshape(tuple(t.shape))


def array_to_tensor(a: np.ndarray) -> torch.Tensor:
    """The inverse of :func:`tensor_to_array`: a tensor sharing ``a``'s memory (BF16 arrays as bfloat16).

    Example:
        >>> array_to_tensor(np.zeros(2, np.float32))
        tensor([0., 0.])
    """
    from ticketfmt.format.arrays import dtype_name
    raw = torch.from_numpy(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
    return raw.view(TORCH_DTYPES[dtype_name(a.dtype)]).reshape(a.shape)


def write_tensors(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> int:
    """Write a safetensors file with a ``payload_sha256`` in its metadata; returns the file size.

    Tensors are laid out by decreasing element size so every tensor is aligned to its dtype
    (:func:`ticketfmt.format.arrays.write_arrays` writes the bytes: the same for numpy arrays).
    """
    return write_arrays(path, {k: tensor_to_array(t, k) for k, t in tensors.items()}, metadata)


def read_file(path: str | os.PathLike[str], verify: bool = True) -> tuple[Header, dict[str, torch.Tensor], str]:
    """Read a ticket file: its validated header, its tensors by full name, and the file's sha256.

    Sizes are checked against the header before anything is allocated; with ``verify`` the
    payload's sha256 is compared with the one recorded in the metadata. The tensors share the
    one buffer the file was read into (:func:`ticketfmt.format.arrays.read_arrays`).
    """
    header, arrays, file_sha = read_arrays(path, verify=verify)
    return header, {name: array_to_tensor(a) for name, a in arrays.items()}, file_sha


def encode_tensors(masks: Mapping[str, torch.Tensor], sections: Mapping[str, Mapping[str, torch.Tensor] | None],
                   encoding: str) -> dict[str, torch.Tensor]:
    """The file tensors of a ticket in ``encoding``: ``mask/<key>``, then ``<section>/<key>`` section by section.

    ``masks`` are BOOL; ``sections`` (``init``, ``trained``; None = absent) hold whole state dicts.
    Masked tensors go through the encoding's codec, the others are stored as they are. An
    unknown encoding raises ``ValueError`` before anything is encoded.

    Example:
        >>> m = {"w": torch.tensor([True, False, True])}
        >>> encode_tensors(m, {"init": {"w": torch.tensor([1.0, 0.0, 3.0]), "b": torch.zeros(1)}}, "packed")
        {'mask/w': tensor([160], dtype=torch.uint8), 'init/w': tensor([1., 3.]), 'init/b': tensor([0.])}
    """
    codec = get_encoding(encoding)
    tensors = {f"mask/{name}": codec.encode_mask(m) for name, m in masks.items()}
    for section, weights in sections.items():
        for name, v in (weights or {}).items():
            m = masks.get(name)
            tensors[f"{section}/{name}"] = v if m is None else codec.encode_values(v, m)
    return tensors


def decode_tensors(header: Header, tensors: Mapping[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """The BOOL masks (in ``layers`` order) and the full weights by section of a file read by :func:`read_file`.

    The inverse of :func:`encode_tensors` through the header's encoding; returned tensors share no
    memory with each other (a dense file's tensors stay in the read's private buffer, uncopied).
    Sections absent from the file are empty dicts.

    Example:
        >>> header, tensors, _ = read_file("tests/golden/cifar_resnet8-packed-v1.0.ticket")  # doctest: +SKIP
        >>> masks, sections = decode_tensors(header, tensors)  # doctest: +SKIP
    """
    codec = get_encoding(header.encoding)
    masks = {name: codec.decode_mask(tensors[f"mask/{name}"], layer.shape) for name, layer in header.layers.items()}
    sections: dict[str, dict[str, torch.Tensor]] = {"init": {}, "trained": {}}
    for full, t in tensors.items():  # the file's order, which a re-save keeps
        section, _, name = full.partition("/")
        if section != "mask":
            sections[section][name] = codec.decode_values(t, masks[name]) if name in masks else t.clone()
    return masks, sections
