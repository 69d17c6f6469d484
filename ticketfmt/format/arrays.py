"""Ticket files as numpy arrays: the byte-level reader and writer (imports no torch).

:func:`read_arrays` reads a file once into one buffer, checks it (header, sizes, payload sha256,
BOOL bytes) and returns every tensor as a zero-copy numpy view of that buffer;
:func:`write_arrays` lays tensors out as safetensors (by decreasing element size, so every
tensor is aligned), records the payload's sha256 and writes atomically, through
:func:`ticketfmt.format.raw.write_payload`, the numpy-free writer of the packed ``ticket convert``
path. The torch layer (:mod:`ticketfmt.format.tensors`: ``read_file``, ``write_tensors``) wraps
these two, so files written from bytes, numpy arrays or tensors are the same bytes for the same
tensors.

numpy has no bfloat16: ``BF16`` tensors are arrays of :data:`BF16` (a 2-byte record), which
index, copy and write like any other dtype; :func:`widen` gives their float32 values.

Example:
    >>> import numpy as np
    >>> packbits(np.array([True, False, True, True, False, False, False, False, True]))
    array([176, 128], dtype=uint8)
    >>> unpackbits(np.array([176, 128], dtype=np.uint8), (3, 3)).sum(), popcount(np.array([176, 128], dtype=np.uint8))
    (np.int64(4), 4)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ticketfmt.errors import TicketFormatError
from ticketfmt.format.raw import (_PARALLEL_HASH_BYTES, SPEC_NOTES, Digests, base_metadata,  # noqa: F401 (re-exported)
                                  integrity_first, write_payload)
from ticketfmt.format.spec import Header, parse_header

__all__ = ["BF16", "NUMPY_DTYPES", "dtype_name", "FileRead", "start_read", "read_arrays", "write_arrays", "array_bytes", "packbits", "unpackbits", "popcount",
           "count_true", "widen", "sha256_file", "base_metadata", "SPEC_NOTES"]

BF16 = np.dtype([("bf16", "<u2")])
"""The numpy stand-in for safetensors' ``BF16``: the raw 2 bytes of each value."""

NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype("u1"), "I8": np.dtype("i1"), "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"), "F16": np.dtype("<f2"), "BF16": BF16, "I32": np.dtype("<i4"), "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"), "I64": np.dtype("<i8"), "U64": np.dtype("<u8"), "F64": np.dtype("<f8"),
}
_NAMES = {v: k for k, v in NUMPY_DTYPES.items()}
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_BITWISE_COUNT = getattr(np, "bitwise_count", None)  # numpy >= 2.0


def dtype_name(dtype: np.dtype[Any]) -> str:
    """safetensors' name of a numpy dtype (``F32``, ``BF16`` for :data:`BF16`); ``KeyError`` if it has none."""
    return _NAMES[np.dtype(dtype)]


def packbits(mask: np.ndarray) -> np.ndarray:
    """A bool array's bits as bytes, row-major, most significant bit first (the ``packed`` mask layout)."""
    return np.packbits(np.asarray(mask, dtype=np.bool_).reshape(-1))


def unpackbits(raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`packbits`: a bool array of ``shape``."""
    n = 1
    for d in shape:
        n *= d
    return np.unpackbits(np.asarray(raw, dtype=np.uint8).reshape(-1), count=n).view(np.bool_).reshape(shape)


def popcount(bits: Any) -> int:
    """The number of set bits of a uint8 array (or CPU tensor), single-threaded.

    numpy >= 2 counts 8 bytes at a time (``bitwise_count`` of a uint64 view: ~40x the table
    lookup, which older numpy uses; a packed ResNet-50's masks: 0.4 ms against 14 ms).
    """
    a = np.ascontiguousarray(bits).reshape(-1)
    if not a.size:
        return 0
    if _BITWISE_COUNT is None or a.dtype != np.uint8:
        return int(_POPCOUNT[a].sum(dtype=np.int64))
    whole = a.size - a.size % 8
    return (int(_BITWISE_COUNT(a[:whole].view(np.uint64)).sum(dtype=np.int64))
            + int(_BITWISE_COUNT(a[whole:]).sum(dtype=np.int64)))


def count_true(mask: Any) -> int:
    """The number of True entries of a bool array or CPU tensor (numpy: single-threaded, no OpenMP wake-up).

    torch's ``mask.sum()`` wakes its thread pool for every mask; on cores shared with other work
    that costs tens of milliseconds a call. Tensors numpy cannot view (on a GPU) are summed by torch.

    Example:
        >>> count_true(np.array([True, False, True]))
        2
    """
    try:
        a = np.asarray(mask)
    except (TypeError, RuntimeError):
        return int(mask.sum())
    return int(np.count_nonzero(a))


def widen(a: np.ndarray) -> np.ndarray:
    """The values of a floating-point array as numpy computes them (:data:`BF16` → float32); others unchanged."""
    if a.dtype != BF16:
        return a
    return (a.view("<u2").astype(np.uint32) << 16).view(np.float32)


@dataclass
class FileRead:
    """A ticket file read into one private buffer, its checksums still being computed (:func:`start_read`)."""

    header: Header
    arrays: dict[str, np.ndarray]
    digests: Digests = field(repr=False)

    def finish(self) -> str:
        """Wait for the checksums; returns the file's sha256, raises ``TicketIntegrityError`` on a corrupted payload."""
        return self.digests.result()

    @contextmanager
    def integrity_first(self) -> Iterator[None]:
        """Run checks on the tensors while the checksums compute; a corrupted payload is reported before their errors.

        Example:
            >>> read = start_read("r50.ticket")  # doctest: +SKIP
            >>> with read.integrity_first():  # doctest: +SKIP
            ...     check(read.arrays)
            >>> file_sha = read.finish()  # doctest: +SKIP
        """
        with integrity_first(self.digests):
            yield


def start_read(path: str | os.PathLike[str], verify: bool = True) -> FileRead:
    """Read a ticket file into one buffer and start its checksums; :meth:`FileRead.finish` waits for them.

    The header is validated before the payload is allocated; tensors are numpy views of the
    buffer (checked: BOOL tensors hold only 0 and 1). With ``verify`` the payload must match the
    ``payload_sha256`` recorded in the metadata.
    """
    from ticketfmt.format.spec import read_header
    p = str(path)
    header = read_header(p)  # validates everything that can be checked without the payload
    buf = np.empty(header.file_size, dtype=np.uint8)
    try:
        with open(p, "rb", buffering=0) as f:
            got = f.readinto(memoryview(buf))
            got += len(f.read(1))  # a file that grew since its header was read
    except OSError as e:
        raise TicketFormatError(f"cannot read: {e.strerror}", path=p, fix="check the file") from None
    if got != header.file_size:
        raise TicketFormatError("file changed size while being read", path=p, fix="read it again")
    # The header just read must be the one validated (the file may have been replaced in between).
    header = parse_header(buf[:header.data_offset].tobytes(), len(buf), p)
    read = FileRead(header, {}, Digests(memoryview(buf), header.data_offset, header.metadata.get("payload_sha256"),
                                         verify, p))
    base = header.data_offset
    with read.integrity_first():
        for name, info in header.tensors.items():
            raw = buf[base + info.start:base + info.end]
            if info.dtype == "BOOL" and raw.size and int(raw.max()) > 1:
                raise TicketFormatError(f"tensor {name!r}: BOOL values other than 0 and 1", path=p, tensor=name,
                                        fix="the file is corrupted; download or copy it again")
            read.arrays[name] = raw.view(NUMPY_DTYPES[info.dtype]).reshape(info.shape)
    return read


def read_arrays(path: str | os.PathLike[str], verify: bool = True) -> tuple[Header, dict[str, np.ndarray], str]:
    """Read a ticket file: its validated header, its tensors as numpy views of one buffer, and the file's sha256.

    :func:`start_read` then :meth:`FileRead.finish`: with ``verify`` the payload's sha256 is
    compared with the one recorded in the metadata.

    Example:
        >>> header, arrays, sha = read_arrays("tests/golden/cifar_resnet8-packed-v1.0.ticket")  # doctest: +SKIP
    """
    read = start_read(path, verify)
    return read.header, read.arrays, read.finish()


def array_bytes(a: np.ndarray) -> memoryview:
    """An array's bytes, row-major, as stored in a file (a view when ``a`` is contiguous).

    Example:
        >>> bytes(array_bytes(np.array([1, 2], dtype=np.uint16)))
        b'\\x01\\x00\\x02\\x00'
    """
    a = np.ascontiguousarray(a).reshape(-1)
    return memoryview(a.view(np.uint8)) if a.size else memoryview(b"")


def write_arrays(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> int:
    """Write a safetensors file with a ``payload_sha256`` in its metadata, atomically; returns the file size.

    Tensors are laid out by decreasing element size (ties in the given order), so every tensor
    is aligned to its dtype; the header is padded to 8 bytes.

    Example:
        >>> write_arrays("t.ticket", {"init/w": np.zeros(3, np.float32)}, base_metadata("packed"))  # doctest: +SKIP
        232
    """
    entries = []
    for k, a in arrays.items():
        try:
            name = dtype_name(a.dtype)
        except KeyError:
            raise TicketFormatError(f"tensor {k!r} has dtype {a.dtype}, which safetensors cannot store",
                                    fix="convert it to float32", tensor=k) from None
        entries.append((k, name, a.shape, array_bytes(a)))
    return write_payload(path, entries, metadata)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
