"""Reading and writing ticket files (both encodings), atomically and with validation first.

The byte layout and the rules are in ``docs/SPEC.md``; :mod:`ticketfmt.format.spec` validates a
header without torch. This module turns validated headers into tensors and back.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ticketfmt.format.atomic import atomic_write
from ticketfmt.errors import TicketFormatError, TicketIntegrityError
from ticketfmt.format.spec import ENCODINGS, FORMAT, FORMAT_VERSION, MAX_HEADER_BYTES, VERSIONS, Header, parse_header

__all__ = ["pack_bits", "unpack_bits", "write_tensors", "read_file", "popcount", "atomic_write", "sha256_file", "base_metadata"]

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


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    t = t.detach().contiguous().cpu().reshape(-1)
    return memoryview(t.view(torch.uint8).numpy()) if t.numel() else memoryview(b"")


def write_tensors(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> int:
    """Write a safetensors file with a ``payload_sha256`` in its metadata; returns the file size.

    Tensors are laid out by decreasing element size so every tensor is aligned to its dtype.
    """
    order = sorted(tensors, key=lambda k: -tensors[k].element_size())
    views = {k: _tensor_bytes(tensors[k]) for k in order}
    digest = hashlib.sha256()
    header: dict[str, Any] = {}
    offset = 0
    for k in order:
        t = tensors[k]
        if t.dtype not in DTYPE_NAMES:
            raise TicketFormatError(f"tensor {k!r} has dtype {t.dtype}, which safetensors cannot store",
                                    fix="convert it to float32", tensor=k)
        nbytes = views[k].nbytes
        header[k] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
        digest.update(views[k])
    meta = dict(metadata)
    meta["payload_sha256"] = digest.hexdigest()
    header = {"__metadata__": meta, **header}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((-len(raw)) % 8)
    if len(raw) > MAX_HEADER_BYTES:
        raise TicketFormatError(f"header would be {len(raw)} bytes, over the {MAX_HEADER_BYTES}-byte limit", path=path,
                                fix="store less metadata")
    atomic_write(path, [struct.pack("<Q", len(raw)), raw, *(views[k] for k in order)])
    return 8 + len(raw) + offset


def read_file(path: str | os.PathLike[str], verify: bool = True) -> tuple[Header, dict[str, torch.Tensor], str]:
    """Read a ticket file: its validated header, its tensors by full name, and the file's sha256.

    Sizes are checked against the header before anything is allocated; with ``verify`` the
    payload's sha256 is compared with the one recorded in the metadata.
    """
    from ticketfmt.format.spec import read_header
    p = str(path)
    header = read_header(p)  # validates everything that can be checked without the payload
    try:
        with open(p, "rb") as f:
            buf = bytearray(header.file_size)
            got = f.readinto(buf)
    except OSError as e:
        raise TicketFormatError(f"cannot read: {e.strerror}", path=p, fix="check the file") from None
    if got != header.file_size:
        raise TicketFormatError("file changed size while being read", path=p, fix="read it again")
    # The header just read must be the one validated (the file may have been replaced in between).
    header = parse_header(bytes(buf[:header.data_offset]), len(buf), p)
    file_sha = hashlib.sha256(buf).hexdigest()
    payload = memoryview(buf)[header.data_offset:]
    if verify:
        recorded = header.metadata.get("payload_sha256")
        if recorded is None:
            raise TicketIntegrityError("no payload_sha256 in the metadata", path=p,
                                       fix="load with verify=False (--no-verify) to read it anyway")
        if hashlib.sha256(payload).hexdigest() != recorded:
            raise TicketIntegrityError("payload does not match its sha256: the file is corrupted", path=p,
                                       fix="download or copy it again (or load with --no-verify)")
    tensors: dict[str, torch.Tensor] = {}
    for name, info in header.tensors.items():
        dtype = TORCH_DTYPES[info.dtype]
        if info.end == info.start:
            tensors[name] = torch.empty(info.shape, dtype=dtype)
            continue
        t = torch.frombuffer(payload[info.start:info.end], dtype=torch.uint8).view(dtype).reshape(info.shape)
        if dtype == torch.bool and bool((t.view(torch.uint8) > 1).any()):
            raise TicketFormatError(f"tensor {name!r}: BOOL values other than 0 and 1", path=p, tensor=name,
                                    fix="the file is corrupted; download or copy it again")
        tensors[name] = t
    return header, tensors, file_sha


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(bits: torch.Tensor) -> int:
    """The number of set bits of a uint8 tensor (numpy: single-threaded, no OpenMP wake-up per small tensor)."""
    return int(_POPCOUNT[bits.numpy()].sum(dtype=np.int64)) if bits.numel() else 0


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def base_metadata(encoding: str, version: str = FORMAT_VERSION) -> dict[str, str]:
    """The format fields every ticket file's ``__metadata__`` starts with.

    ``version`` is the format version the file follows: writers give the lowest one that
    describes the file (``ticketfmt.zoo.format_version_for``), so older readers keep reading it.

    Example:
        >>> base_metadata("packed", "1.0")["format_version"]
        '1.0'
    """
    from ticketfmt._version import __version__
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    if version not in VERSIONS:
        raise ValueError(f"unknown format version {version!r}; this ticketfmt writes {', '.join(VERSIONS)}")
    return {"format": FORMAT, "format_version": version, "encoding": encoding,
            "created_by": f"ticketfmt {__version__}"}
