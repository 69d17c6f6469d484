"""Seeded mutations of valid tickets, shared by the test suite and `bench/fuzz.py`.

Each case mutates one valid file (header bytes, the length prefix, offsets, dtypes,
shapes, metadata JSON, truncation, payload bytes) and loads it. The only acceptable
outcomes are the project's format error or a successful load of a still-valid ticket.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from pathlib import Path

from ticketfmt.errors import TicketFormatError

Mutation = Callable[[random.Random, bytes], bytes]


def _split(raw: bytes) -> tuple[int, dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8:8 + n]), raw[8 + n:]


def _join(header: dict, payload: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + payload


def flip_header_bit(rng: random.Random, raw: bytes) -> bytes:
    n = struct.unpack("<Q", raw[:8])[0]
    b = bytearray(raw)
    i = rng.randrange(8, 8 + n)
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def random_header_byte(rng: random.Random, raw: bytes) -> bytes:
    n = struct.unpack("<Q", raw[:8])[0]
    b = bytearray(raw)
    b[rng.randrange(8, 8 + n)] = rng.choice(b'{}[]",:0123456789-e. \x00\xff')
    return bytes(b)


def length_prefix(rng: random.Random, raw: bytes) -> bytes:
    n = struct.unpack("<Q", raw[:8])[0]
    choices = [0, 1, n - 1, n + 1, n + 8, len(raw), 2**64 - 1, 2**63, 100_000_001, rng.randrange(2**32)]
    return struct.pack("<Q", rng.choice(choices) % 2**64) + raw[8:]


def truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[:rng.randrange(len(raw))]


def append_garbage(rng: random.Random, raw: bytes) -> bytes:
    return raw + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


def payload_byte(rng: random.Random, raw: bytes) -> bytes:
    n = struct.unpack("<Q", raw[:8])[0]
    b = bytearray(raw)
    if len(b) > 8 + n:
        b[rng.randrange(8 + n, len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def _tensor_edit(rng: random.Random, raw: bytes, edit: Callable[[random.Random, dict], None]) -> bytes:
    _, header, payload = _split(raw)
    name = rng.choice([k for k in header if k != "__metadata__"])
    edit(rng, header[name])
    return _join(header, payload)


def change_dtype(rng: random.Random, raw: bytes) -> bytes:
    def edit(r: random.Random, entry: dict) -> None:
        entry["dtype"] = r.choice(["BOOL", "U8", "F16", "BF16", "F32", "F64", "I64", "X9", 7, None])
    return _tensor_edit(rng, raw, edit)


def change_shape(rng: random.Random, raw: bytes) -> bytes:
    def edit(r: random.Random, entry: dict) -> None:
        shape = list(entry["shape"])
        op = r.randrange(6)
        if op == 0 and shape:
            shape[r.randrange(len(shape))] += r.choice([-1, 1, 2**40])
        elif op == 1:
            shape.append(r.choice([0, 1, 2]))
        elif op == 2 and shape:
            shape.pop()
        elif op == 3:
            shape = list(reversed(shape))
        elif op == 4:
            shape = [r.choice([-1, 1.5, "3", 2**62])]
        else:
            shape = "oops"
        entry["shape"] = shape
    return _tensor_edit(rng, raw, edit)


def change_offsets(rng: random.Random, raw: bytes) -> bytes:
    def edit(r: random.Random, entry: dict) -> None:
        a, b = entry["data_offsets"]
        entry["data_offsets"] = r.choice([[a, b + 1], [a - 1, b], [b, a], [a, 2**64], [0, 0], [a], "x", [a + 8, b + 8]])
    return _tensor_edit(rng, raw, edit)


def edit_metadata(rng: random.Random, raw: bytes) -> bytes:
    _, header, payload = _split(raw)
    meta = header["__metadata__"]
    key = rng.choice(sorted(meta) + ["extra"])
    value = meta.get(key, "")
    op = rng.randrange(7)
    if op == 0:
        meta.pop(key, None)
    elif op == 1:
        meta[key] = value[: rng.randrange(len(value) + 1)]
    elif op == 2:
        meta[key] = rng.choice(["", "null", "[]", "{}", "1e999", "-1", '{"id": 3}', "2.0", "\ud800"])
    elif op == 3 and value.startswith("{"):
        obj = json.loads(value)
        if obj:
            k = rng.choice(sorted(obj))
            obj[k] = rng.choice([None, -5, 0, 10**12, "x", [], {}, True, 1.5])
        meta[key] = json.dumps(obj)
    elif op == 4 and key == "layers":
        obj = json.loads(value)
        k = rng.choice(sorted(obj))
        obj[k][rng.choice(["shape", "kept"])] = rng.choice([0, -1, 10**9, [1], [2**40, 2**40], "x"])
        meta[key] = json.dumps(obj)
    elif op == 5:
        meta[key] = 42  # not a string
    else:
        header.pop("__metadata__")
        header["__metadata__"] = rng.choice([[], "x", None, {"format": "ticketfmt"}])
    return _join(header, payload)


def remove_or_rename_tensor(rng: random.Random, raw: bytes) -> bytes:
    _, header, payload = _split(raw)
    name = rng.choice([k for k in header if k != "__metadata__"])
    entry = header.pop(name)
    if rng.random() < 0.5:
        header[rng.choice(["init/", "mask/", "trained/", "other/", ""]) + name.split("/", 1)[-1] + rng.choice(["", "x"])] = entry
    return _join(header, payload)


MUTATIONS: list[Mutation] = [flip_header_bit, random_header_byte, length_prefix, truncate, append_garbage,
                             payload_byte, change_dtype, change_shape, change_offsets, edit_metadata,
                             remove_or_rename_tensor]


def run_case(seed: int, originals: list[bytes], path: Path, verify: bool | None = None) -> str:
    """Mutate one original with ``seed`` and load it; returns 'error' or 'loaded', raises on anything else."""
    from ticketfmt import Ticket

    rng = random.Random(seed)
    raw = rng.choice(originals)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            raw = rng.choice(MUTATIONS)(rng, raw)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, struct.error):
            pass  # a structured mutation cannot parse an already-broken file: keep it as it is
    path.write_bytes(raw)
    try:
        ticket = Ticket.load(path, verify=rng.random() < 0.5 if verify is None else verify)
    except TicketFormatError as e:
        if "\n" in str(e) or not str(e):
            raise AssertionError(f"seed {seed}: error message is not one line: {e!r}") from None
        return "error"
    # A load that succeeds must give a ticket that is still valid (it passed the constructor's checks).
    ticket.sparsity  # noqa: B018 - exercising the masks
    return "loaded"
