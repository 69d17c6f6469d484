"""The ticket file format, version 1: constants and a header reader that imports no torch.

A ticket is a safetensors file: an 8-byte little-endian header length ``N``, ``N`` bytes
of JSON, then the tensor payload. This module reads and validates the header (every
offset, dtype, shape and the ticketfmt metadata) without touching the payload, so
``ticket info`` starts fast and a hostile file is refused before anything is allocated.
The normative description is ``docs/SPEC.md``.

Example:
    >>> from ticketfmt.format.spec import read_header
    >>> header = read_header("tests/golden/cifar_resnet8-packed-v1.0.ticket")  # doctest: +SKIP
    >>> header.arch["id"], header.encoding, round(header.sparsity, 3)  # doctest: +SKIP
    ('cifar_resnet8', 'packed', 0.5)
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketfmt.errors import TicketFormatError, TicketVersionError
from ticketfmt.format.encodings import ENCODING_NAMES, get_encoding
from ticketfmt.format.limits import (MAX_HEADER_BYTES, MAX_METADATA_KEYS, MAX_NAME_CHARS, MAX_TENSORS, loads,
                                     shape_problem)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "VERSIONS",
    "version_tuple",
    "ENCODINGS",
    "DTYPE_SIZES",
    "TensorInfo",
    "LayerInfo",
    "Header",
    "read_header",
    "parse_header",
]

FORMAT = "ticketfmt"
VERSIONS = ("1.0", "1.1")
"""Every format version this reader knows, oldest first (``docs/SPEC.md``, "Versioning" says what each changed)."""
FORMAT_VERSION = VERSIONS[-1]
SUPPORTED_MAJOR = 1
ENCODINGS = ENCODING_NAMES  # a live view of the encoding registry
SECTIONS = ("mask", "init", "trained")
# MAX_HEADER_BYTES (from ticketfmt.format.limits, docs/SPEC.md "Limits"): a longer header is refused unread.
DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
REQUIRED_METADATA = ("format", "format_version", "encoding", "arch", "layers", "sparsity", "payload_sha256")
JSON_METADATA = ("arch", "provenance", "results", "layers")
_FIX_NOT_TICKET = "pass a .ticket file written by ticketfmt (for example from `ticket new`)"
_FIX_IMPORT = "make a ticket from a checkpoint with `ticket import` or `Ticket.from_model`"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
ARCH_FIELDS: dict[str, type] = {"id": str, "library": str, "family": str, "block": str, "stages": list,
                                "num_classes": int, "input_size": list, "constructor": dict}
"""The fields of the ``arch`` metadata and their JSON types (``id`` is required and authoritative)."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor entry of the header: dtype, shape and byte range in the payload."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class LayerInfo:
    """A prunable tensor as recorded in the ``layers`` metadata: its shape and survivors."""

    name: str
    shape: tuple[int, ...]
    kept: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def density(self) -> float:
        return self.kept / self.numel if self.numel else 1.0


@dataclass(frozen=True)
class Header:
    """A validated ticket header. Reading it never touches the tensor payload."""

    path: str
    file_size: int
    data_offset: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    arch: dict[str, Any]
    provenance: dict[str, Any]
    results: list[dict[str, Any]]
    layers: dict[str, LayerInfo]
    version: str
    encoding: str
    sparsity: float
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def arch_id(self) -> str:
        return str(self.arch["id"])

    def section(self, prefix: str) -> dict[str, TensorInfo]:
        """Tensors of one section (``mask``, ``init`` or ``trained``), keyed by state-dict name."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.tensors.items() if k.startswith(prefix + "/")}


def _err(path: str, message: str, fix: str = _FIX_NOT_TICKET, tensor: str | None = None) -> TicketFormatError:
    return TicketFormatError(message, fix=fix, path=path, tensor=tensor)


def read_header(path: str | os.PathLike[str]) -> Header:
    """Read and validate the header of the ticket at ``path`` (the payload is not read)."""
    p = str(path)
    try:
        size = os.path.getsize(p)
        with open(p, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise _err(p, f"file is {size} bytes, too short to be a ticket (at least 8 bytes of header length)")
            (n,) = struct.unpack("<Q", prefix)
            _check_header_len(p, n, size)
            raw = f.read(n)
    except FileNotFoundError:
        raise _err(p, "no such file", fix="check the path") from None
    except IsADirectoryError:
        raise _err(p, "is a directory, not a ticket file", fix="pass the path of a .ticket file") from None
    except PermissionError:
        raise _err(p, "permission denied", fix="check the file's permissions") from None
    return parse_header(prefix + raw, size, p)


def _check_header_len(path: str, n: int, size: int) -> None:
    if n > MAX_HEADER_BYTES:
        raise _err(path, f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit (corrupted or not a ticket)")
    if 8 + n > size:
        raise _err(path, f"header length {n} runs past the end of the {size}-byte file (truncated or not a ticket)",
                   fix="download or copy the file again")


def parse_header(buf: bytes, file_size: int, path: str = "<bytes>") -> Header:
    """Validate a header given the file's first ``8 + N`` bytes and its total size.

    Example:
        >>> raw = open("tests/golden/cifar_resnet8-packed-v1.0.ticket", "rb").read()  # doctest: +SKIP
        >>> parse_header(raw, len(raw)).version  # doctest: +SKIP
        '1.0'
    """
    if len(buf) < 8:
        raise _err(path, "too short to be a ticket")
    (n,) = struct.unpack("<Q", buf[:8])
    _check_header_len(path, n, file_size)
    if len(buf) < 8 + n:
        raise _err(path, "header is truncated", fix="download or copy the file again")
    obj, meta = _split_header(path, bytes(buf[8:8 + n]))
    version = _check_format(path, meta)
    parsed = _json_metadata(path, meta)
    encoding = meta["encoding"]
    if encoding not in ENCODINGS:
        raise _err(path, f"unknown encoding {encoding!r} (expected one of {', '.join(ENCODINGS)})")
    sparsity = _sparsity(path, meta["sparsity"])
    tensors = _parse_tensors(path, obj, file_size - 8 - n)
    layers = _parse_layers(path, parsed["layers"])
    _check_sections(path, tensors, layers, encoding)
    return Header(path=path, file_size=file_size, data_offset=8 + n, tensors=tensors, metadata=dict(meta),
                  arch=parsed["arch"], provenance=parsed["provenance"], results=parsed["results"], layers=layers,
                  version=version, encoding=encoding, sparsity=sparsity,
                  extra={k: v for k, v in meta.items() if k not in REQUIRED_METADATA and k not in JSON_METADATA})


def _split_header(path: str, raw: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """The header JSON's tensor entries and its ``__metadata__`` (strings to strings), within the limits."""
    try:
        obj = loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _err(path, "header is not UTF-8") from None
    except ValueError as e:
        raise _err(path, f"header: {e}") from None
    if not isinstance(obj, dict):
        raise _err(path, "header JSON is not an object")
    meta = obj.pop("__metadata__", None)
    if meta is None:
        raise _err(path, "safetensors file without metadata: not a ticket", fix=_FIX_IMPORT)
    if len(obj) > MAX_TENSORS:
        raise _err(path, f"header has {len(obj)} tensors, over the limit of {MAX_TENSORS}")
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _err(path, "__metadata__ must map strings to strings")
    if len(meta) > MAX_METADATA_KEYS or any(len(k) > MAX_NAME_CHARS for k in meta):
        raise _err(path, f"__metadata__ has over {MAX_METADATA_KEYS} keys or a key over {MAX_NAME_CHARS} characters")
    return obj, meta


def _check_format(path: str, meta: dict[str, str]) -> str:
    """Check ``format``, ``format_version`` (a readable major) and the required keys; returns the version."""
    if meta.get("format") != FORMAT:
        raise _err(path, f"metadata 'format' is {_short(meta.get('format'))}, not {FORMAT!r}: a safetensors file but "
                         "not a ticket", fix=_FIX_IMPORT)
    version = meta.get("format_version", "")
    try:
        major, _ = version_tuple(version)
    except ValueError:
        raise _err(path, f"metadata 'format_version' {_short(version)} is not MAJOR.MINOR (two decimal integers "
                         f"without leading zeros, major at least 1, e.g. {FORMAT_VERSION})") from None
    if major > SUPPORTED_MAJOR:
        raise TicketVersionError(
            f"written by format version {version}, this ticketfmt reads version {SUPPORTED_MAJOR}.x",
            fix="upgrade ticketfmt: pip install -U ticketfmt", path=path)
    for key in REQUIRED_METADATA:
        if key not in meta:
            raise _err(path, f"metadata key {key!r} is missing")
    if not _SHA256.fullmatch(meta["payload_sha256"]):
        raise _err(path, f"metadata 'payload_sha256' {_short(meta['payload_sha256'])} is not 64 lowercase hex digits")
    return version


def _short(value: Any, limit: int = 40) -> str:
    """``repr`` of a value from the file, cut: an error message stays one short line whatever the file holds."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_metadata(path: str, meta: dict[str, str]) -> dict[str, Any]:
    """The JSON-valued metadata (``arch``, ``provenance``, ``results``, ``layers``), parsed and type-checked."""
    parsed: dict[str, Any] = {"provenance": {}, "results": []}
    for key in JSON_METADATA:
        if key in meta:
            try:
                parsed[key] = loads(meta[key])
            except ValueError as e:
                raise _err(path, f"metadata {key!r}: {e}") from None
    _check_arch(path, parsed["arch"])
    if not isinstance(parsed["provenance"], dict):
        raise _err(path, "metadata 'provenance' must be a JSON object")
    results = parsed["results"]
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise _err(path, "metadata 'results' must be a JSON list of objects")
    return parsed


def _check_arch(path: str, arch: Any) -> None:
    """``arch``: an object with a non-empty string ``id``; its other known fields (informative) of their types."""
    if not isinstance(arch, dict) or not isinstance(arch.get("id"), str) or not 0 < len(arch["id"]) <= 256:
        raise _err(path, "metadata 'arch' must be a JSON object with a string 'id' (1 to 256 characters)")
    for key, kind in ARCH_FIELDS.items():
        value = arch.get(key)
        if value is not None and (type(value) is not kind):
            raise _err(path, f"metadata 'arch': field {key!r} must be a JSON {kind.__name__}, not {_short(value)}")


def _sparsity(path: str, text: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise _err(path, f"metadata 'sparsity' is not a decimal number: {_short(text)}")
    sparsity = float(text)
    if not 0.0 <= sparsity <= 1.0:
        raise _err(path, f"metadata 'sparsity' {sparsity} is outside [0, 1]")
    return sparsity


def version_tuple(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a ``MAJOR.MINOR`` format version; anything else raises ``ValueError``.

    Example:
        >>> version_tuple("1.10") > version_tuple("1.9")
        True
    """
    m = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if m is None or m.group(1) == "0":
        raise ValueError(f"format version {_short(version)} is not MAJOR.MINOR (e.g. {FORMAT_VERSION})")
    return int(m.group(1)), int(m.group(2))


def _parse_tensors(path: str, obj: dict[str, Any], data_len: int) -> dict[str, TensorInfo]:
    tensors: dict[str, TensorInfo] = {}
    for name, entry in obj.items():
        if not isinstance(entry, dict):
            raise _err(path, f"tensor {name!r}: entry is not an object", tensor=name)
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if len(name) > MAX_NAME_CHARS:
            raise _err(path, f"tensor {_short(name)}: name over {MAX_NAME_CHARS} characters", tensor=name[:60])
        if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
            raise _err(path, f"tensor {name!r}: unknown dtype {_short(dtype)}", tensor=name)
        problem = shape_problem(shape)
        if problem:
            raise _err(path, f"tensor {name!r}: {problem}", tensor=name)
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise _err(path, f"tensor {name!r}: data_offsets {offsets!r} are not within the {data_len}-byte payload",
                       tensor=name, fix="the file is truncated or corrupted; download or copy it again")
        nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
        if nbytes != offsets[1] - offsets[0]:
            raise _err(path, f"tensor {name!r}: {dtype}{shape} needs {nbytes} bytes but data_offsets span "
                             f"{offsets[1] - offsets[0]}", tensor=name)
        section, sep, key = name.partition("/")
        if not sep or section not in SECTIONS or not key:
            raise _err(path, f"tensor {name!r}: name must be mask/<key>, init/<key> or trained/<key>", tensor=name)
        tensors[name] = TensorInfo(name, dtype, tuple(shape), offsets[0], offsets[1])
    # The payload must be covered exactly, without gaps or overlaps (as safetensors requires).
    end = 0
    for info in sorted(tensors.values(), key=lambda t: (t.start, t.end)):
        if info.start != end:
            raise _err(path, f"tensor {info.name!r}: payload has a gap or overlap at byte {end}", tensor=info.name)
        end = info.end
    if end != data_len:
        raise _err(path, f"tensors cover {end} bytes but the payload is {data_len} bytes",
                   fix="the file is truncated or corrupted; download or copy it again")
    return tensors


def _parse_layers(path: str, raw: Any) -> dict[str, LayerInfo]:
    if not isinstance(raw, dict):
        raise _err(path, "metadata 'layers' must be a JSON object")
    if len(raw) > MAX_TENSORS:
        raise _err(path, f"metadata 'layers' has {len(raw)} entries, over the limit of {MAX_TENSORS}")
    layers: dict[str, LayerInfo] = {}
    for name, entry in raw.items():
        if len(name) > MAX_NAME_CHARS:
            raise _err(path, f"layer {_short(name)}: name over {MAX_NAME_CHARS} characters", tensor=name[:60])
        ok = isinstance(entry, dict) and type(entry.get("kept")) is int
        problem = shape_problem(entry.get("shape")) if ok else None
        if not ok or problem:
            raise _err(path, f"layer {name!r}: metadata needs a 'shape' list and an integer 'kept' count"
                             + (f" ({problem})" if problem else ""), tensor=name)
        info = LayerInfo(name, tuple(entry["shape"]), entry["kept"])
        if not 0 <= info.kept <= info.numel:
            raise _err(path, f"layer {name!r}: kept={info.kept} is outside [0, {info.numel}]", tensor=name)
        layers[name] = info
    return layers


def _check_sections(path: str, tensors: dict[str, TensorInfo], layers: dict[str, LayerInfo], encoding: str) -> None:
    """Check mask and value tensors against the ``layers`` table, so sizes are known to be right before reading."""
    masks = {k[5:]: v for k, v in tensors.items() if k.startswith("mask/")}
    if set(masks) != set(layers):
        missing = sorted(set(layers) - set(masks)) or sorted(set(masks) - set(layers))
        raise _err(path, f"masks and the 'layers' metadata disagree (first: {missing[0]!r})", tensor=missing[0])
    if not any(k.startswith("init/") for k in tensors):
        raise _err(path, "no init/ tensors: a ticket needs the weights to start training from")
    layout = get_encoding(encoding)
    for name, layer in layers.items():
        mask = masks[name]
        want_dtype, want_shape = layout.mask_layout(layer.shape, layer.kept)
        if mask.dtype != want_dtype or mask.shape != want_shape:
            raise _err(path, f"tensor 'mask/{name}': expected {want_dtype}{list(want_shape)} for a {encoding} ticket, "
                             f"found {mask.dtype}{list(mask.shape)}", tensor=f"mask/{name}")
        for section in ("init", "trained"):
            values = tensors.get(f"{section}/{name}")
            if values is None:
                if section == "init":
                    raise _err(path, f"tensor 'init/{name}' is missing for a masked layer", tensor=f"init/{name}")
                continue
            want = layout.values_shape(layer.shape, layer.kept)
            if values.dtype not in FLOAT_DTYPES or values.shape != want:
                raise _err(path, f"tensor '{section}/{name}': expected a float tensor of shape {list(want)}, "
                                 f"found {values.dtype}{list(values.shape)}", tensor=f"{section}/{name}")
