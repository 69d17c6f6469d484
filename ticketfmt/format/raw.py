"""Ticket files as bytes: the reader and writer that need neither numpy nor torch.

:func:`read_raw` reads a file once into one buffer, checks it (header, sizes, payload sha256,
BOOL bytes) and returns every tensor as a :class:`RawTensor`: its dtype name, shape and a
zero-copy ``memoryview`` of its bytes. :func:`write_payload` lays tensors out as safetensors (by
decreasing element size, so every tensor is aligned), records the payload's sha256 and writes
atomically; :func:`ticketfmt.format.arrays.write_arrays` (numpy) and so ``Ticket.save`` (torch)
write through it, so every path writes the same bytes for the same tensors.

This is what the packed ``ticket convert`` path runs on: a packed ticket's masks are bit strings
and its kept values byte runs, so re-indexing them is moving bytes, counting kept weights is
``int.bit_count`` and checking values for NaN/inf is a look at their exponent bytes, all at C
speed through ``bytes`` methods, without paying numpy's import (about 0.1 s of a new process).

Example:
    >>> popcount_bytes(bytes([176, 128]))
    4
    >>> RawTensor.of_bytes("F32", (2,), b"\\x00\\x00\\x80\\x3f\\x00\\x00\\x80\\x7f").all_finite()  # 1.0, inf
    False
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ticketfmt.errors import TicketFormatError, TicketIntegrityError
from ticketfmt.format.atomic import atomic_write
from ticketfmt.format.spec import (DTYPE_SIZES, ENCODINGS, FORMAT, FORMAT_VERSION, MAX_HEADER_BYTES, VERSIONS, Header,
                                   parse_header)

__all__ = ["RawTensor", "RawRead", "read_raw", "write_payload", "popcount_bytes", "base_metadata", "SPEC_NOTES"]

_PARALLEL_HASH_BYTES = 1 << 22  # below this, a second thread costs more than it saves
_CHUNK_BYTES = 1 << 22  # bytes checked or counted at a time: the temporary copies stay small

# A float is NaN or infinite when its exponent bits are all set; they lie in its two most significant bytes
# (little-endian: the last two of each element). dtype -> (mask of the last byte, mask of the one before).
_EXPONENT = {"F16": (0x7C, 0x00), "BF16": (0x7F, 0x80), "F32": (0x7F, 0x80), "F64": (0x7F, 0xF0)}


@functools.lru_cache(maxsize=None)
def _tables(mask: int) -> tuple[bytes, bytes]:
    """``bytes.translate`` tables for ``mask``: 1 where a byte has every bit of ``mask`` set, else 0; and the bytes
    lacking some bit of it (to delete)."""
    return (bytes(int(b & mask == mask) for b in range(256)), bytes(b for b in range(256) if b & mask != mask))


def popcount_bytes(data: Any) -> int:
    """The number of set bits of a bytes-like object (C speed: big integers' ``bit_count``, 4 MiB at a time)."""
    view = memoryview(data).cast("B")
    return sum(int.from_bytes(view[i:i + _CHUNK_BYTES], "little").bit_count()
               for i in range(0, view.nbytes, _CHUNK_BYTES))


@dataclass(frozen=True)
class RawTensor:
    """A tensor as the bytes of a safetensors file: dtype name (``F32``), shape, row-major little-endian data."""

    dtype: str
    shape: tuple[int, ...]
    data: memoryview = field(repr=False)

    @classmethod
    def of_bytes(cls, dtype: str, shape: tuple[int, ...], data: Any) -> RawTensor:
        """A tensor over ``data`` (bytes-like, not copied), cast to a flat byte view.

        Example:
            >>> RawTensor.of_bytes("U8", (2,), b"\\xff\\x80").data.nbytes
            2
        """
        return cls(dtype, tuple(shape), memoryview(data).cast("B"))

    @property
    def itemsize(self) -> int:
        return DTYPE_SIZES[self.dtype]

    @property
    def is_float(self) -> bool:
        return self.dtype in _EXPONENT

    def reshape(self, shape: tuple[int, ...]) -> RawTensor:
        """The same bytes under another shape of as many elements."""
        return self if tuple(shape) == self.shape else RawTensor(self.dtype, tuple(shape), self.data)

    def all_finite(self) -> bool:
        """Whether no value is NaN or infinite (always True for integer and BOOL tensors)."""
        if self.dtype not in _EXPONENT:
            return True
        step = _CHUNK_BYTES - _CHUNK_BYTES % self.itemsize  # whole values per slice: a bounded copy at a time
        return all(_finite_bytes(self.data[i:i + step].tobytes(), self.dtype)
                   for i in range(0, self.data.nbytes, step))


def _finite_bytes(data: bytes, dtype: str) -> bool:
    """Whether the little-endian floats ``data`` hold no NaN or infinity (their exponent bits are never all set)."""
    hi_mask, lo_mask = _EXPONENT[dtype]
    size = DTYPE_SIZES[dtype]
    hi = data[size - 1::size]  # a bytes slice of a copy: 5x a strided memoryview's copy
    if not hi.translate(None, _tables(hi_mask)[1]):  # no value of magnitude near the top of the range
        return True
    if not lo_mask:
        return False
    lo = data[size - 2::size]
    both = int.from_bytes(hi.translate(_tables(hi_mask)[0]), "little") & int.from_bytes(
        lo.translate(_tables(lo_mask)[0]), "little")
    return not both


def _hash(data: memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class Digests:
    """The file's sha256 and (to verify) the payload's, computed in background threads (hashlib releases the GIL).

    The caller checks and decodes the tensors meanwhile; :meth:`result` joins and compares.
    """

    def __init__(self, buf: memoryview, offset: int, recorded: str | None, verify: bool, path: str) -> None:
        self.recorded, self.verify, self.path = recorded, verify, path
        self.out: dict[str, str] = {}
        jobs = {"file": buf, **({"payload": buf[offset:]} if verify and recorded is not None else {})}
        if len(buf) < _PARALLEL_HASH_BYTES:  # a thread costs more than it saves
            self.out.update({k: _hash(v) for k, v in jobs.items()})
            self.threads: list[threading.Thread] = []
        else:
            self.threads = [threading.Thread(target=self._run, args=(k, v), daemon=True) for k, v in jobs.items()]
            for t in self.threads:
                t.start()

    def _run(self, key: str, data: memoryview) -> None:
        self.out[key] = _hash(data)

    def result(self) -> str:
        """The file's sha256, once the payload matched its recorded sha256 (with ``verify``)."""
        for t in self.threads:
            t.join()
        self.threads = []
        if self.verify:
            if self.recorded is None:
                raise TicketIntegrityError("no payload_sha256 in the metadata", path=self.path,
                                           fix="load with verify=False (--no-verify) to read it anyway")
            if self.out["payload"] != self.recorded:
                raise TicketIntegrityError("payload does not match its sha256: the file is corrupted", path=self.path,
                                           fix="download or copy it again (or load with --no-verify)")
        return self.out["file"]


@contextmanager
def integrity_first(digests: Digests) -> Iterator[None]:
    """Run checks while the checksums compute; a corrupted payload is reported before the checks' errors."""
    try:
        yield
    except BaseException:
        digests.result()  # raises the integrity error, if any, in place of the checks' (corruption explains them)
        raise


def read_buffer(path: str, header: Header) -> tuple[memoryview, Header]:
    """The whole file at ``path`` in one private buffer, sized by ``header`` (validated before anything is
    allocated), and the header parsed again from the buffer (the file may have been replaced meanwhile)."""
    try:
        with open(path, "rb") as f:
            buf = f.read(header.file_size + 1)  # one more byte: a file that grew since its header was read
    except OSError as e:
        raise TicketFormatError(f"cannot read: {e.strerror}", path=path, fix="check the file") from None
    if len(buf) != header.file_size:
        raise TicketFormatError("file changed size while being read", path=path, fix="read it again")
    view = memoryview(buf)  # read-only: the tensors are views of it, never written
    return view, parse_header(view[:header.data_offset], len(buf), path)


@dataclass
class RawRead:
    """A ticket file read into one buffer as :class:`RawTensor` views, its checksums still computing."""

    header: Header
    tensors: dict[str, RawTensor]
    digests: Digests = field(repr=False)

    def finish(self) -> str:
        """Wait for the checksums; returns the file's sha256, raises ``TicketIntegrityError`` on a corrupted payload."""
        return self.digests.result()

    def integrity_first(self) -> Any:
        """A context manager: checks run in it see a corrupted payload reported before their own errors."""
        return integrity_first(self.digests)


def read_raw(path: str | os.PathLike[str], verify: bool = True, header: Header | None = None) -> RawRead:
    """Read a ticket file into one buffer, as :class:`RawTensor` views, and start its checksums.

    ``header``: the file's header if the caller has read it already (it is parsed again from the
    buffer read, not trusted). BOOL tensors must hold only 0 and 1; with ``verify`` the payload
    must match its recorded ``payload_sha256`` (:meth:`RawRead.finish`).

    Example:
        >>> read = read_raw("r50.ticket")  # doctest: +SKIP
        >>> read.tensors["mask/conv1.weight"].dtype, read.finish()[:8]  # doctest: +SKIP
        ('U8', '3f1c2a9e')
    """
    from ticketfmt.format.spec import read_header
    p = str(path)
    buf, header = read_buffer(p, header if header is not None else read_header(p))
    read = RawRead(header, {}, Digests(buf, header.data_offset, header.metadata.get("payload_sha256"), verify, p))
    base = header.data_offset
    with read.integrity_first():
        for name, info in header.tensors.items():
            raw = buf[base + info.start:base + info.end]
            if info.dtype == "BOOL" and raw.tobytes().translate(None, b"\x00\x01"):
                raise TicketFormatError(f"tensor {name!r}: BOOL values other than 0 and 1", path=p, tensor=name,
                                        fix="the file is corrupted; download or copy it again")
            read.tensors[name] = RawTensor(info.dtype, tuple(info.shape), raw)
    return read


def write_payload(path: str | os.PathLike[str], tensors: Sequence[tuple[str, str, Sequence[int], memoryview]],
                  metadata: Mapping[str, str]) -> int:
    """Write ``(name, dtype, shape, bytes)`` tensors as a safetensors file with a ``payload_sha256``; returns its size.

    Tensors are laid out by decreasing element size (ties in the given order), so every tensor
    is aligned to its dtype; the header is padded to 8 bytes; the write is atomic.
    """
    order = sorted(tensors, key=lambda t: -DTYPE_SIZES[t[1]])
    digest = hashlib.sha256()
    header: dict[str, Any] = {}
    views = []
    offset = 0
    for name, dtype, shape, view in order:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + view.nbytes]}
        offset += view.nbytes
        digest.update(view)
        views.append(view)
    meta = dict(metadata)
    meta["payload_sha256"] = digest.hexdigest()
    raw = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((-len(raw)) % 8)
    if len(raw) > MAX_HEADER_BYTES:
        raise TicketFormatError(f"header would be {len(raw)} bytes, over the {MAX_HEADER_BYTES}-byte limit", path=path,
                                fix="store less metadata")
    atomic_write(path, [struct.pack("<Q", len(raw)), raw, *views])
    return 8 + len(raw) + offset


SPEC_NOTES = {
    "packed": "a ticketfmt ticket (docs/SPEC.md of ticketfmt, format 1.x). For each weight K in the 'layers' "
              "metadata: mask/K (U8) is the 0/1 mask flattened row-major, 8 to a byte, most significant bit first "
              "(numpy.packbits), padding bits 0; init/K and trained/K hold the kept values in row-major order: "
              "w = zeros(shape); w[unpackbits(mask, count=prod(shape)).reshape(shape) == 1] = values. "
              "Every other tensor is stored whole.",
    "dense": "a ticketfmt ticket (docs/SPEC.md of ticketfmt, format 1.x). For each weight K in the 'layers' "
             "metadata: mask/K (BOOL) is the 0/1 mask in the weight's shape; init/K and trained/K are the whole "
             "weights, +0.0 where the mask is 0. Every other tensor is stored whole.",
}
"""The ``spec`` metadata of each built-in encoding: how a plain safetensors user decodes the file (informative)."""


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
    meta = {"format": FORMAT, "format_version": version, "encoding": encoding,
            "created_by": f"ticketfmt {__version__}"}
    if encoding in SPEC_NOTES:  # informative, for readers without ticketfmt (an encoding added later may have none)
        meta["spec"] = SPEC_NOTES[encoding]
    return meta
