"""Seeded mutations of valid tickets, shared by the test suite and `bench/fuzz.py`.

Each case mutates one valid file and loads it (``Ticket.load``) and shows it (``ticket
info``'s header summary). Two fuzzers share the cases:

- the **byte** fuzzer: header bytes, the length prefix, offsets, dtypes, shapes, metadata
  JSON, truncation, payload bytes;
- the **structure-aware** fuzzer (issue 17): it parses the header and mutates what a hostile
  writer controls, as JSON: metadata values anywhere in ``arch`` / ``provenance`` /
  ``results`` / ``layers`` (huge integers, NaN, deep nesting, long strings and lists,
  duplicate keys, terminal escapes, wrong types), shapes (rank, huge and zero dimensions),
  architecture ids (huge depths and unit counts, other archs), many zero-size tensors, and
  the values at pruned positions; half its cases re-seal the payload sha256, so the
  mutation reaches the checks behind the checksum.

The only acceptable outcomes are the project's format error (a ``TicketError`` for ``info``)
or a successful load of a still-valid ticket; :func:`measure_case` also reports each case's
time and peak memory, which the suite and ``bench/fuzz.py`` bound.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path

from ticketfmt.errors import TicketError, TicketFormatError

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


# -- the structure-aware fuzzer ----------------------------------------------------------------------------
JSON_KEYS = ("arch", "provenance", "results", "layers")
SCALE: float = 1
"""Size factor of the structure-aware fuzzer's big values (strings, lists, objects, added layers): ``bench/fuzz.py``
runs at 10 (up to 1 MB strings, 100,000-element lists, 10,000 added layers), the suite's bound test at 1, and its
2,000 structure-aware cases at 0.2 (up to 20 KB strings, 2,000-element lists, 200 added layers: the same shapes of
input, sized to keep the test in seconds)."""


def _n(base: int) -> int:
    """``base`` at the current :data:`SCALE` (at least 1)."""
    return max(1, int(base * SCALE))
HOSTILE_IDS = ["cifar_resnet-10000000-1-1", "timm/resnet_bottleneck-10000-1-1-1", "cifar_vgg-100000000-1-2-2-2",
               "cifar_vgg-1000000000000-1-2-2-2", "cifar_resnet" + "9" * 5000, "x" * 10_000, "cifar_resnet-256-256-256",
               "timm/resnet_bottleneck-64-64-64-64", "cifar_resnet20", "cifar_vgg11", "timm/vgg11", "../../etc/passwd",
               "cifar_resnet8\x1b[2J", "cifar_resnet-1-1", "torchvision/cifar_resnet8", "", "cifar_resnet1202"]


_RAW_VALUES: list[Callable[[random.Random], str]] = [
    lambda r: "9" * r.choice([41, 300, 5000]), lambda r: "-" + "9" * 4301, lambda r: r.choice(["NaN", "Infinity"]),
    lambda r: r.choice(["-Infinity", "1e999", "-1e400", "1.5e308", str(2**64), str(-(2**63)), "-0", "0.5"]),
    lambda r: "[" * (d := r.choice([31, 33, 500, 5000])) + "]" * d, lambda r: '{"a":' * 40 + "1" + "}" * 40,
    lambda r: json.dumps("x" * r.choice([1000, _n(100_000)])),
    lambda r: json.dumps(list(range(r.choice([100, _n(10_000)])))),
    lambda r: json.dumps({f"k{i}": i for i in range(r.choice([100, _n(2_000)]))}), lambda r: '{"a": 1, "a": 2}',
    lambda r: json.dumps("\x1b[2J\x1b]0;owned\x07\x1b]8;;file:///etc/passwd\x07x"),
    lambda r: json.dumps("[/] [link=file:///x]y"), lambda r: r.choice(["true", "null", '"\\ud800"', "[]", "{}"]),
]


def _raw_value(rng: random.Random) -> str:
    """A hostile JSON value, as raw text (so it can hold what ``json.dumps`` would never write)."""
    return rng.choice(_RAW_VALUES)(rng)


def _mutate_json_text(rng: random.Random, text: str) -> str:
    """Replace one value of a JSON document (a random node, any depth) with a hostile raw value."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    marker = "\u0000MARK\u0000"
    paths: list[list[object]] = []

    def walk(node: object, path: list[object]) -> None:
        paths.append(path)
        if len(paths) > 5000:
            return
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            walk(v, [*path, k])

    walk(doc, [])
    path = rng.choice(paths)
    if not path:
        return _raw_value(rng)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]  # type: ignore[index]
    parent[path[-1]] = marker  # type: ignore[index]
    return json.dumps(doc).replace(json.dumps(marker), _raw_value(rng), 1)


def metadata_value(rng: random.Random, raw: bytes) -> bytes:
    _, header, payload = _split(raw)
    key = rng.choice(JSON_KEYS)
    header["__metadata__"][key] = _mutate_json_text(rng, header["__metadata__"].get(key, "{}"))
    return _join(header, payload)


def hostile_shape(rng: random.Random) -> object:
    return rng.choice([[2**62] * rng.choice([9, 50_000]) + [0], [0, 2**70], [2**40, 2**40], [2**41], [0] * 9,
                       [-1], [1.0], [True], [[3]], [2**63], [0, 2**63], list(range(1, 9)), [], [10**12]])


def structured_shape(rng: random.Random, raw: bytes) -> bytes:
    _, header, payload = _split(raw)
    if rng.random() < 0.5:
        name = rng.choice([k for k in header if k != "__metadata__"])
        header[name]["shape"] = hostile_shape(rng)
    else:
        layers = json.loads(header["__metadata__"]["layers"])
        layers[rng.choice(sorted(layers))]["shape"] = hostile_shape(rng)
        header["__metadata__"]["layers"] = json.dumps(layers)
    return _join(header, payload)


def arch_id(rng: random.Random, raw: bytes) -> bytes:
    _, header, payload = _split(raw)
    arch = json.loads(header["__metadata__"]["arch"])
    field = rng.choice(["id", "id", "id", "num_classes", "stages", "library", "constructor", "input_size"])
    if field == "id":
        arch["id"] = rng.choice(HOSTILE_IDS)
    else:
        arch[field] = rng.choice([10**9, -1, 0, True, "x", [10**7, 1, 1], {"class": "os.system"}, None, 2**64])
    header["__metadata__"]["arch"] = json.dumps(arch)
    return _join(header, payload)


def many_entries(rng: random.Random, raw: bytes) -> bytes:
    """Add N zero-size masked layers (mask, init and layers entries), N up to 1,000 × :data:`SCALE`."""
    _, header, payload = _split(raw)
    layers, end = json.loads(header["__metadata__"]["layers"]), len(payload)
    packed = header["__metadata__"].get("encoding") == "packed"
    for i in range(rng.choice([10, _n(200), _n(1000)])):
        layers[f"z{i}.weight"] = {"shape": [0], "kept": 0}
        header[f"mask/z{i}.weight"] = {"dtype": "U8" if packed else "BOOL", "shape": [0], "data_offsets": [end, end]}
        header[f"init/z{i}.weight"] = {"dtype": "F32", "shape": [0], "data_offsets": [end, end]}
    header["__metadata__"]["layers"] = json.dumps(layers)
    return _join(header, payload)


def header_text(rng: random.Random, raw: bytes) -> bytes:
    """Edits only raw JSON can make: a duplicate key, deep nesting of an entry, NaN in an offset, a BOM."""
    n, _, payload = _split(raw)
    text = raw[8:8 + n].decode("utf-8").rstrip()
    version = rng.choice(["1", "1.0.0", "01.0", "1.0-rc1", "0.9", "2.0", "1.99", " 1.0", "1.0\\n", "١.٠"])
    text = rng.choice([
        lambda t: t[:-1] + ',"__metadata__":{"format":"ticketfmt"}}',
        lambda t: re.sub(r'"data_offsets":\s*\[', '"data_offsets":[' + "[" * 40, t, count=1),
        lambda t: re.sub(r'"data_offsets":\s*\[', '"data_offsets":[NaN,', t, count=1),
        lambda t: "\ufeff" + t,
        lambda t: t[:-1] + ',"x":' + "[" * (d := rng.choice([40, 3000])) + "]" * d + "}",
        lambda t: re.sub(r'"format_version":\s*"[^"]*"', lambda m: '"format_version":"' + version + '"', t, count=1),
        lambda t: re.sub(r'"sparsity":\s*"', lambda m: '"sparsity":"' + rng.choice(["nan", "-0", "1e-3", " ", "0x1"]),
                         t, count=1),
    ])(text)
    body = text.encode("utf-8")
    return struct.pack("<Q", len(body)) + body + payload


def pruned_value(rng: random.Random, raw: bytes) -> bytes:
    """A dense file with a value other than +0.0 (-0.0, 0.5, NaN) at a pruned position."""
    n, header, payload = _split(raw)
    if header["__metadata__"].get("encoding") != "dense":
        return raw
    layers = json.loads(header["__metadata__"]["layers"])
    name = rng.choice(sorted(layers))
    mask, values = header[f"mask/{name}"], header.get(f"{rng.choice(['init', 'trained'])}/{name}", header[f"init/{name}"])
    bits = payload[mask["data_offsets"][0]:mask["data_offsets"][1]]
    pruned = [i for i, b in enumerate(bits) if b == 0]
    if not pruned or values["dtype"] != "F32":
        return raw
    at = values["data_offsets"][0] + 4 * rng.choice(pruned)
    value = rng.choice([b"\x00\x00\x00\x80", struct.pack("<f", 0.5), b"\x00\x00\xc0\x7f"])
    return raw[:8 + n] + payload[:at] + value + payload[at + 4:]


def reseal(raw: bytes) -> bytes:
    """Recompute ``payload_sha256`` so a mutation is judged by the checks behind the checksum."""
    try:
        n, header, payload = _split(raw)
        header["__metadata__"]["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    except (ValueError, KeyError, TypeError, AttributeError, struct.error, RecursionError):
        return raw
    return _join(header, payload)


STRUCTURED: list[Mutation] = [metadata_value, metadata_value, structured_shape, arch_id, arch_id, many_entries,
                              header_text, pruned_value, pruned_value]


def mutate(seed: int, originals: list[bytes], structured: bool | None = None) -> tuple[bytes, bool]:
    """The file of case ``seed`` and whether to verify its checksum (half the cases are structure-aware)."""
    rng = random.Random(seed)
    raw = rng.choice(originals)
    use_structure = rng.random() < 0.5 if structured is None else structured  # as is_structured() says
    pool = STRUCTURED if use_structure else MUTATIONS
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            raw = rng.choice(pool)(rng, raw)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, struct.error, RecursionError):
            pass  # a structured mutation cannot parse an already-broken file: keep it as it is
    if use_structure and rng.random() < 0.5:
        raw = reseal(raw)
    return raw, rng.random() < 0.5


def is_structured(seed: int, originals: list[bytes]) -> bool:
    """Whether case ``seed`` (``structured=None``) is structure-aware, as :func:`mutate` decides it."""
    rng = random.Random(seed)
    rng.choice(originals)
    return rng.random() < 0.5


def _show(path: Path, seed: int) -> None:
    """``ticket info``'s header summary: a project error (unknown arch included) or a summary, nothing else."""
    from ticketfmt.cli.core import header_summary

    try:
        json.dumps(header_summary(path))
    except TicketError as e:
        if "\n" in str(e) or not str(e):
            raise AssertionError(f"seed {seed}: info's error message is not one line: {e!r}") from None


def run_case(seed: int, originals: list[bytes], path: Path, verify: bool | None = None,
             structured: bool | None = None) -> str:
    """Mutate one original with ``seed``, show and load it; returns 'error' or 'loaded', raises on anything else."""
    raw, verify_default = mutate(seed, originals, structured)
    path.write_bytes(raw)
    return check_file(path, seed, verify_default if verify is None else verify)


def check_file(path: Path, seed: int, verify: bool) -> str:
    """Show (``ticket info``'s summary) and load a mutated file: 'error' or 'loaded', raises on anything else."""
    from ticketfmt import Ticket

    _show(path, seed)
    try:
        ticket = Ticket.load(path, verify=verify)
    except TicketFormatError as e:
        if "\n" in str(e) or not str(e):
            raise AssertionError(f"seed {seed}: error message is not one line: {e!r}") from None
        return "error"
    # A load that succeeds must give a ticket that is still valid (it passed the constructor's checks).
    ticket.sparsity  # noqa: B018 - exercising the masks
    return "loaded"


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (``VmHWM``), or 0 where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux: ``echo 5 > /proc/self/clear_refs``); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def current_rss() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure_case(seed: int, originals: list[bytes], path: Path, structured: bool | None = None
                 ) -> tuple[str, float, int, float]:
    """:func:`run_case` with the reader's wall time (s), its peak memory over the RSS it started at (bytes;
    -1: unknown) and its CPU time (s: this process's, which a shared or ``nice``-d machine does not inflate);
    the mutation itself (the fuzzer's own JSON work) is not measured."""
    raw, verify = mutate(seed, originals, structured)
    path.write_bytes(raw)
    del raw
    measured = _reset_peak_rss()
    start_rss = current_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = check_file(path, seed, verify)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return outcome, seconds, max(0, _peak_rss() - start_rss) if measured else -1, cpu
