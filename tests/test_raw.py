"""The numpy-free byte layer of the packed convert path (ticketfmt.format.raw): its checks agree with numpy's."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from ticketfmt.converters.files import PackedSource
from ticketfmt.errors import TicketFormatError
from ticketfmt.format.arrays import NUMPY_DTYPES, dtype_name, popcount, read_arrays, widen, write_arrays
from ticketfmt.format.raw import RawTensor, popcount_bytes, read_raw

GOLDEN = Path(__file__).parent / "golden" / "cifar_resnet8-packed-v1.0.ticket"


def _numpy_finite(dtype: str, raw: bytes) -> bool:
    a = widen(np.frombuffer(raw, NUMPY_DTYPES[dtype]))
    with np.errstate(invalid="ignore"):
        return bool(np.isfinite(a.astype(np.float64)).all())


@pytest.mark.parametrize("dtype", ["F16", "BF16"])
def test_all_finite_agrees_with_numpy_on_every_16_bit_pattern(dtype: str) -> None:
    for v in range(1 << 16):
        raw = b"\x00\x3c" + struct.pack("<H", v)  # a finite value, then the pattern
        assert RawTensor.of_bytes(dtype, (2,), raw).all_finite() == _numpy_finite(dtype, raw), hex(v)


@pytest.mark.parametrize("dtype,np_dtype", [("F32", "<f4"), ("F64", "<f8")])
def test_all_finite_agrees_with_numpy_on_wide_floats(dtype: str, np_dtype: str) -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal(257).astype(np_dtype)
    specials = [np.inf, -np.inf, np.nan, -np.nan, np.finfo(np_dtype).max, -np.finfo(np_dtype).max,
                np.finfo(np_dtype).tiny, 2.0 ** 127]
    for x in specials:
        a = base.copy()
        a[rng.integers(a.size)] = x
        assert RawTensor.of_bytes(dtype, a.shape, a.tobytes()).all_finite() == bool(np.isfinite(a).all()), x
    for _ in range(200):  # random bit patterns: every exponent, sign and payload
        raw = rng.integers(0, 256, size=64 * base.itemsize, dtype=np.uint8).tobytes()
        assert RawTensor.of_bytes(dtype, (64,), raw).all_finite() == _numpy_finite(dtype, raw)
    assert RawTensor.of_bytes(dtype, (0,), b"").all_finite()
    assert not RawTensor.of_bytes("I64", (1,), b"\xff" * 8).is_float


def test_popcount_and_read_agree_with_numpy() -> None:
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 256, size=1001, dtype=np.uint8)
    assert popcount_bytes(bits.tobytes()) == popcount(bits) == int(np.unpackbits(bits).sum())
    read, (header, arrays, sha) = read_raw(GOLDEN), read_arrays(GOLDEN)
    assert read.finish() == sha and read.header == header
    for k, a in arrays.items():
        t = read.tensors[k]
        assert (t.dtype, t.shape, bytes(t.data)) == (dtype_name(a.dtype), a.shape, a.tobytes())


def test_packed_source_refuses_non_finite_values_and_bad_bool_bytes(tmp_path: Path) -> None:
    header, arrays, _ = read_arrays(GOLDEN)
    meta = {k: v for k, v in header.metadata.items() if k != "payload_sha256"}
    for bad, match in (("init/conv1.weight", "NaN or infinite"), ("init/fc.bias", "NaN or infinite")):
        changed = {k: a.copy() for k, a in arrays.items()}
        changed[bad][0] = np.nan
        write_arrays(tmp_path / "nan.ticket", changed, meta)
        with pytest.raises(TicketFormatError, match=match):
            PackedSource.open(tmp_path / "nan.ticket")
    flags = {**arrays, "init/flag": np.array([0, 2], dtype=np.uint8).view(np.bool_)}
    write_arrays(tmp_path / "bool.ticket", flags, meta)
    with pytest.raises(TicketFormatError, match="BOOL values other than 0 and 1"):
        read_raw(tmp_path / "bool.ticket")


def test_all_finite_sees_a_nan_in_any_slice(monkeypatch) -> None:
    import ticketfmt.format.raw as raw
    monkeypatch.setattr(raw, "_CHUNK_BYTES", 64)  # large tensors are checked a slice at a time: every slice counts
    a = np.random.default_rng(2).standard_normal(1000).astype("<f4")
    assert RawTensor.of_bytes("F32", a.shape, a.tobytes()).all_finite()
    for pos in (0, 15, 16, 17, 999):
        b = a.copy()
        b[pos] = np.inf
        assert not RawTensor.of_bytes("F32", b.shape, b.tobytes()).all_finite(), pos


def test_popcount_counts_across_slices(monkeypatch) -> None:
    import ticketfmt.format.raw as raw
    monkeypatch.setattr(raw, "_CHUNK_BYTES", 7)
    bits = np.random.default_rng(3).integers(0, 256, size=1000, dtype=np.uint8)
    assert popcount_bytes(bits.tobytes()) == int(np.unpackbits(bits).sum()) and popcount_bytes(b"") == 0
