"""Loading fast without losing a check: Ticket.load, lazy Ticket.open, Ticket.build_model without init."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from ticketfmt import Ticket, build_model
from ticketfmt.errors import TicketFormatError, TicketIntegrityError
from ticketfmt.format.spec import read_header
from ticketfmt.pruning import prune
from ticketfmt.zoo import get_family, list_archs


@pytest.fixture(scope="module")
def r14(tmp_path_factory) -> dict[str, Path]:
    t = prune(Ticket.from_model(build_model("cifar_resnet14", seed=0), "cifar_resnet14"), 0.7, method="magnitude")
    t = t.replace(trained={k: v * 2 if v.is_floating_point() else v.clone() for k, v in t.init.items()})
    d = tmp_path_factory.mktemp("r14")
    out = {}
    for enc in ("packed", "dense"):
        out[enc] = d / f"{enc}.ticket"
        t.save(out[enc], encoding=enc)
    return out


def _payload_offset(path: Path, tensor: str) -> int:
    h = read_header(path)
    return h.data_offset + h.tensors[tensor].start


def _corrupt(src: Path, dst: Path, tensor: str, byte: int = 0, xor: int = 0x01) -> Path:
    data = bytearray(src.read_bytes())
    data[_payload_offset(src, tensor) + byte] ^= xor
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("enc", ["packed", "dense"])
def test_loaded_tensors_share_no_memory(r14, enc) -> None:
    t = Ticket.load(r14[enc])
    ref = Ticket.load(r14[enc])
    for section in (t.init, t.trained):
        for k in section:
            section[k].add_(1) if section[k].is_floating_point() else section[k].add_(1)
    for k, m in t.masks.items():
        assert torch.equal(m, ref.masks[k])  # masks untouched by writing every weight in place
        m.logical_not_()
    for k in t.init:
        assert torch.equal(t.init[k], ref.init[k] + 1)  # init and trained never alias each other
        assert torch.equal(t.trained[k], ref.trained[k] + 1)


@pytest.mark.parametrize("enc", ["packed", "dense"])
def test_a_corrupted_payload_is_reported_before_what_it_breaks(r14, tmp_path, enc) -> None:
    # A flipped mask bit breaks the kept count; the checksum (computed meanwhile, in threads) explains it first.
    bad = _corrupt(r14[enc], tmp_path / "bad.ticket", "mask/conv1.weight")
    with pytest.raises(TicketIntegrityError, match="sha256"):
        Ticket.load(bad)
    with pytest.raises(TicketFormatError, match="keeps .* weights but the metadata says"):
        Ticket.load(bad, verify=False)


def test_file_sha256_is_the_files(r14) -> None:
    import hashlib
    for path in r14.values():
        assert Ticket.load(path).file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_large_files_hash_in_threads_and_agree(tmp_path) -> None:
    import hashlib

    from ticketfmt.format import arrays
    t = Ticket.from_model(build_model("cifar_vgg11", seed=0), "cifar_vgg11")  # 37 MB dense: over the threshold
    p = tmp_path / "v.ticket"
    t.save(p, encoding="dense")
    assert p.stat().st_size > arrays._PARALLEL_HASH_BYTES
    assert Ticket.load(p).file_sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    with pytest.raises(TicketIntegrityError):
        Ticket.load(_corrupt(p, tmp_path / "bad.ticket", "init/features.0.weight", byte=5))


# -- Ticket.build_model: built on the meta device, nothing initialized, the ticket's tensors copied in ----------
@pytest.mark.parametrize("spec", list_archs(), ids=lambda s: s.id)
def test_every_buffer_is_in_the_state_dict(spec) -> None:
    # to_empty() leaves storage uninitialized: safe only because load_state_dict then fills every tensor.
    with torch.device("meta"):
        model = get_family(spec.family).build(spec)
    state = model.state_dict()
    assert all(k in state for k, _ in model.named_parameters()) and all(k in state for k, _ in model.named_buffers())


@pytest.mark.parametrize("weights", ["init", "trained"])
def test_build_model_holds_the_tickets_tensors_and_copies_them(r14, weights) -> None:
    t = Ticket.load(r14["packed"])
    rng = torch.random.get_rng_state()
    model = t.build_model(weights)
    assert torch.equal(torch.random.get_rng_state(), rng)  # no init drew random numbers
    state = getattr(t, weights)
    got = model.state_dict()
    assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)
    assert not any(v.is_meta for v in got.values())
    with torch.no_grad():
        model.conv1.weight.add_(1)
    assert not torch.equal(model.conv1.weight, state["conv1.weight"])  # training the model leaves the ticket alone
    out = model.eval()(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


# -- Ticket.open: lazy access -------------------------------------------------------------------------------------
@pytest.mark.parametrize("enc", ["packed", "dense"])
def test_open_decodes_what_is_asked_and_matches_load(r14, enc, monkeypatch) -> None:
    from ticketfmt.ticketfile import TicketFile

    full = Ticket.load(r14[enc])
    read: list[str] = []
    real = TicketFile._array
    monkeypatch.setattr(TicketFile, "_array", lambda self, name: read.append(name) or real(self, name))
    with Ticket.open(r14[enc]) as f:
        assert (f.arch, f.sparsity, f.provenance) == (full.arch, round(full.sparsity, 6), full.provenance)
        assert list(f.masks) == list(full.masks) and list(f.init) == list(full.init) and f.trained is not None
        assert torch.equal(f.masks["layer2.0.conv1.weight"], full.masks["layer2.0.conv1.weight"])
        assert read == ["mask/layer2.0.conv1.weight"]  # nothing else was read
        w = f.init["layer3.1.conv2.weight"]
        assert torch.equal(w, full.init["layer3.1.conv2.weight"])
        assert torch.equal(f.trained["fc.bias"], full.trained["fc.bias"])
        assert all(torch.equal(f.masks[k], full.masks[k]) for k in full.masks)
        assert all(torch.equal(f.init[k], full.init[k]) for k in full.init)
    assert w.sum() == full.init["layer3.1.conv2.weight"].sum()  # decoded tensors outlive the file
    with pytest.raises(ValueError, match="closed"):
        f.init["fc.bias"]


def test_open_checks_like_load(r14, tmp_path) -> None:
    bad = _corrupt(r14["packed"], tmp_path / "bad.ticket", "mask/layer1.0.conv1.weight")
    with pytest.raises(TicketIntegrityError, match="sha256"):
        Ticket.open(bad)
    with Ticket.open(bad, verify=False) as f:
        f.masks["conv1.weight"]  # an intact layer reads fine
        with pytest.raises(TicketFormatError, match="keeps .* weights but the metadata says"):
            f.masks["layer1.0.conv1.weight"]
    # dense: a nonzero value at a pruned position is refused on access, as Ticket.load refuses the file.
    h = read_header(r14["dense"])
    t = Ticket.load(r14["dense"])
    pos = int((~t.masks["conv1.weight"]).reshape(-1).nonzero()[0])
    data = bytearray(r14["dense"].read_bytes())
    off = h.data_offset + h.tensors["init/conv1.weight"].start + 4 * pos
    data[off:off + 4] = struct.pack("<f", 0.5)
    (tmp_path / "nz.ticket").write_bytes(bytes(data))
    with pytest.raises(TicketFormatError, match="pruned position"):
        Ticket.load(tmp_path / "nz.ticket", verify=False)
    with Ticket.open(tmp_path / "nz.ticket", verify=False) as f:
        f.init["fc.weight"]
        with pytest.raises(TicketFormatError, match="pruned position"):
            f.init["conv1.weight"]
