"""The ticket file format: round trips, golden files, size bound, and clean errors on bad files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ticketfmt import Ticket, build_model, prune
from ticketfmt.errors import MaskError, TicketFormatError, TicketIntegrityError, TicketVersionError
from ticketfmt.format.tensors import pack_bits, unpack_bits
from ticketfmt.format.spec import read_header
from ticketfmt.zoo import ArchSpec, Family, get_arch, prunable_names, register_family, unregister_family

GOLDEN = Path(__file__).parent / "golden"


def assert_same(a: Ticket, b: Ticket) -> None:
    assert a.arch == b.arch and a.num_classes == b.num_classes
    assert a.masks.keys() == b.masks.keys() and a.init.keys() == b.init.keys()
    for k in a.masks:
        assert torch.equal(a.masks[k], b.masks[k]), k
    for k in a.init:
        assert a.init[k].dtype == b.init[k].dtype, k
        assert torch.equal(a.init[k].view(torch.uint8) if a.init[k].dim() else a.init[k],
                           b.init[k].view(torch.uint8) if b.init[k].dim() else b.init[k]), k
    assert (a.trained is None) == (b.trained is None)
    assert a.provenance == b.provenance and a.results == b.results


@pytest.mark.parametrize("encoding", ["packed", "dense"])
def test_golden_tickets_load(encoding: str) -> None:
    expected = json.loads((GOLDEN / "expected-v1.0.json").read_text())
    ticket = Ticket.load(GOLDEN / f"cifar_resnet8-{encoding}-v1.0.ticket")
    assert ticket.arch == expected["arch"] and ticket.encoding == encoding
    assert ticket.sparsity == pytest.approx(expected["sparsity"], abs=0)
    assert {k: v[0] for k, v in ticket.layer_density().items()} == expected["kept"]
    for k, v in ticket.init.items():
        assert float(v.double().sum()) == expected["init_sum"][k], k
    model = ticket.build_model()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_golden_encodings_agree() -> None:
    assert_same(Ticket.load(GOLDEN / "cifar_resnet8-packed-v1.0.ticket"),
                Ticket.load(GOLDEN / "cifar_resnet8-dense-v1.0.ticket"))


def test_dense_packed_round_trip_is_bit_exact(r8_ticket: Ticket, tmp_path: Path) -> None:
    r8_ticket.results.append({"dataset": "x", "metric": "top1", "value": 0.5})
    r8_ticket.save(tmp_path / "a.ticket", encoding="dense")
    dense = Ticket.load(tmp_path / "a.ticket")
    dense.save(tmp_path / "b.ticket", encoding="packed")
    packed = Ticket.load(tmp_path / "b.ticket")
    packed.save(tmp_path / "c.ticket", encoding="dense")
    again = Ticket.load(tmp_path / "c.ticket")
    assert_same(r8_ticket, dense)
    assert_same(dense, packed)
    assert (tmp_path / "a.ticket").read_bytes() == (tmp_path / "c.ticket").read_bytes()
    assert_same(packed, again)


def test_trained_weights_round_trip(tmp_path: Path) -> None:
    model = build_model("cifar_resnet8", seed=1)
    trained = build_model("cifar_resnet8", seed=2)
    ticket = prune(Ticket.from_model(model, "cifar_resnet8", trained=trained), 0.7)
    ticket.save(tmp_path / "t.ticket")
    back = Ticket.load(tmp_path / "t.ticket")
    assert back.trained is not None
    for k, m in ticket.masks.items():
        assert torch.equal(back.trained[k], torch.where(m, trained.state_dict()[k], 0.0))
    assert torch.equal(back.build_model("trained").fc.bias, trained.fc.bias)


def test_any_safetensors_reader_opens_both_encodings(r8_ticket: Ticket, tmp_path: Path) -> None:
    for encoding in ("packed", "dense"):
        path = tmp_path / f"{encoding}.ticket"
        r8_ticket.save(path, encoding=encoding)
        tensors = load_file(path)
        assert "init/conv1.weight" in tensors and "mask/conv1.weight" in tensors
        with safe_open(path, "pt") as f:
            assert f.metadata()["format"] == "ticketfmt"
            assert f.metadata()["encoding"] == encoding
        if encoding == "dense":
            assert tensors["mask/conv1.weight"].dtype == torch.bool
            assert torch.equal(tensors["init/conv1.weight"], r8_ticket.init["conv1.weight"])
        else:
            assert tensors["mask/conv1.weight"].dtype == torch.uint8
            assert tensors["init/conv1.weight"].numel() == int(r8_ticket.masks["conv1.weight"].sum())


def test_pack_bits_matches_numpy_order() -> None:
    import numpy as np

    g = torch.Generator().manual_seed(0)
    for n in (1, 7, 8, 9, 1000):
        m = torch.rand(n, generator=g) > 0.5
        packed = pack_bits(m)
        assert packed.tolist() == np.packbits(m.numpy()).tolist()
        assert torch.equal(unpack_bits(packed, (n,)), m)


def test_packed_size_bound_cifar_resnet56_at_90_percent(tmp_path: Path) -> None:
    ticket = prune(Ticket.from_model(build_model("cifar_resnet56", seed=0), "cifar_resnet56"), 0.9)
    size = ticket.save(tmp_path / "p.ticket")
    dense_size = ticket.save(tmp_path / "d.ticket", encoding="dense")
    kept = sum(k for k, _ in ticket.layer_density().values())
    total = sum(n for _, n in ticket.layer_density().values())
    unmasked = sum(v.numel() * v.element_size() for k, v in ticket.init.items() if k not in ticket.masks)
    bound = 1.05 * (4 * kept + total / 8 + unmasked)
    header = read_header(tmp_path / "p.ticket")
    payload = size - header.data_offset
    # The payload meets the bound; the JSON header (about 100 bytes per tensor, 430
    # tensors here) is reported separately since it does not grow with the weights.
    assert payload <= bound, (payload, bound)
    assert size <= bound + 100 * len(header.tensors), (size, bound)
    assert size < dense_size / 5


def test_load_refuses_newer_major_version(r8_ticket: Ticket, tmp_path: Path) -> None:
    path = tmp_path / "v2.ticket"
    r8_ticket.save(path)
    rewrite_metadata(path, format_version="2.0")
    with pytest.raises(TicketVersionError, match=r"format version 2\.0.*upgrade ticketfmt"):
        Ticket.load(path)
    rewrite_metadata(path, format_version="1.7")  # a newer minor version still loads
    assert Ticket.load(path, verify=False).arch == "cifar_resnet8"


def rewrite_metadata(path: Path, **changes: str) -> None:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"].update(changes)
    new = json.dumps(header).encode()
    new += b" " * ((-len(new)) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])


def test_plain_safetensors_file_is_not_a_ticket(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(3)}, path, metadata={"format": "pt"})
    with pytest.raises(TicketFormatError, match="not a ticket"):
        Ticket.load(path)
    save_file({"w": torch.zeros(3)}, path)
    with pytest.raises(TicketFormatError, match="not a ticket"):
        Ticket.load(path)


@pytest.mark.parametrize("cut", [0, 5, 8, 100, -1, -100])
def test_truncated_file_gives_clean_error(r8_ticket: Ticket, tmp_path: Path, cut: int) -> None:
    path = tmp_path / "t.ticket"
    r8_ticket.save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[:cut] if cut >= 0 else raw[:cut])
    with pytest.raises(TicketFormatError) as info:
        Ticket.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_flipped_header_bytes_give_clean_errors(r8_ticket: Ticket, tmp_path: Path) -> None:
    path = tmp_path / "t.ticket"
    r8_ticket.save(path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    g = torch.Generator().manual_seed(0)
    positions = torch.randint(0, 8 + n, (300,), generator=g).tolist()
    for i, pos in enumerate(positions):
        bad = bytearray(raw)
        bad[pos] ^= 1 << (i % 8)
        path.write_bytes(bytes(bad))
        try:
            loaded = Ticket.load(path)
        except TicketFormatError as e:
            assert "\n" not in str(e)
        else:  # a flip inside a JSON string can leave a valid ticket (e.g. in provenance)
            assert loaded.arch == "cifar_resnet8"


def test_flipped_payload_bit_is_caught(r8_ticket: Ticket, tmp_path: Path) -> None:
    path = tmp_path / "t.ticket"
    r8_ticket.save(path)
    header = read_header(path)
    info = header.tensors["init/fc.bias"]  # a float: any flipped bit leaves a well-formed value
    raw = bytearray(path.read_bytes())
    raw[header.data_offset + info.start + 1] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(TicketIntegrityError, match="corrupted"):
        Ticket.load(path)
    Ticket.load(path, verify=False)  # the bytes are still well-formed


@pytest.mark.parametrize("change", ["dtype", "shape", "offsets", "mask_shape", "layers_kept", "arch"])
def test_changed_dtype_or_shape_gives_clean_error(r8_ticket: Ticket, tmp_path: Path, change: str) -> None:
    path = tmp_path / "t.ticket"
    r8_ticket.save(path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    name = "init/conv1.weight"
    if change == "dtype":
        header[name]["dtype"] = "F16"
    elif change == "shape":
        header["init/fc.bias"]["shape"] = [5, 2]  # same byte count, wrong shape for the arch
    elif change == "offsets":
        header[name]["data_offsets"][1] += 4
    elif change == "mask_shape":
        header["mask/conv1.weight"]["dtype"] = "BOOL"
    elif change == "layers_kept":
        layers = json.loads(header["__metadata__"]["layers"])
        layers["conv1.weight"]["kept"] += 1
        header["__metadata__"]["layers"] = json.dumps(layers)
    elif change == "arch":
        arch = json.loads(header["__metadata__"]["arch"])
        arch["id"] = "cifar_resnet21"
        header["__metadata__"]["arch"] = json.dumps(arch)
    new = json.dumps(header).encode()
    new += b" " * ((-len(new)) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])
    with pytest.raises(TicketFormatError) as info:
        Ticket.load(path, verify=False)
    assert "\n" not in str(info.value)


def test_masks_are_validated_in_both_directions(r8_ticket: Ticket) -> None:
    masks = dict(r8_ticket.masks)
    masks.pop("fc.weight")
    with pytest.raises(MaskError, match="no mask.*fc.weight"):
        r8_ticket.replace(masks=masks)
    masks = dict(r8_ticket.masks, **{"bn1.weight": torch.ones(16, dtype=torch.bool)})
    with pytest.raises(MaskError, match="bn1.weight.*not a prunable"):
        r8_ticket.replace(masks=masks)
    masks = dict(r8_ticket.masks, **{"fc.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(MaskError, match="shape"):
        r8_ticket.replace(masks=masks)
    masks = dict(r8_ticket.masks, **{"fc.weight": torch.full((10, 64), 2.0)})
    with pytest.raises(MaskError, match="not binary"):
        r8_ticket.replace(masks=masks)
    init = dict(r8_ticket.init, **{"fc.bias": torch.full((10,), float("nan"))})
    with pytest.raises(MaskError, match="NaN"):
        r8_ticket.replace(init=init)


def test_pruned_weights_are_zero_in_init(r8_ticket: Ticket) -> None:
    for k, m in r8_ticket.masks.items():
        assert bool((r8_ticket.init[k][~m] == 0).all())


def test_save_is_atomic_and_leaves_no_temporary(r8_ticket: Ticket, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "t.ticket"
    r8_ticket.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        prune(r8_ticket, 0.9).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.ticket"]


@pytest.mark.parametrize("encoding", ["packed", "dense"])
def test_golden_files_resave_byte_identically(encoding: str, tmp_path: Path) -> None:
    golden = GOLDEN / f"cifar_resnet8-{encoding}-v1.0.ticket"
    Ticket.load(golden).save(tmp_path / "again.ticket", encoding=encoding)
    assert (tmp_path / "again.ticket").read_bytes() == golden.read_bytes()
    assert read_header(tmp_path / "again.ticket").version == "1.0"  # a ResNet file needs nothing newer


# -- the prunable set per format version (1.1 prunes the hidden classifier layers of ImageNet VGGs) --------------
# An ImageNet VGG has a 25088 x 4096 classifier layer at any size, too big for a fast test: a toy family with the
# same versioned rule (its hidden layer prunable since 1.1, its output layer dense) exercises the format's rules.

class VersionedToy(Family):
    """``vtoy``: conv stem, a hidden linear layer (prunable since format 1.1), a dense output layer."""

    name = "vtoy"
    libraries = ("builtin",)
    default_classes = 3
    input_size = (1, 4, 4)

    def parse(self, name: str, library: str) -> ArchSpec | None:
        return self.make(library, "toy", (1,)) if name == "vtoy" else None

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        return "vtoy"

    def depth(self, spec: ArchSpec) -> int:
        return 3

    def build(self, spec: ArchSpec) -> torch.nn.Module:
        return torch.nn.ModuleDict({"conv": torch.nn.Conv2d(1, 2, 3), "hidden": torch.nn.Linear(8, 8),
                                    "out": torch.nn.Linear(8, spec.num_classes)})

    def constructor(self, spec: ArchSpec) -> dict[str, object]:
        return {"class": "test_format.VersionedToy"}

    def is_prunable(self, spec: ArchSpec, module_name: str, module: torch.nn.Module) -> bool:
        return super().is_prunable(spec, module_name, module) and module_name != "out"

    def prunable_since(self, spec: ArchSpec, weight: str) -> str:
        return "1.1" if weight == "hidden.weight" else "1.0"


@pytest.fixture()
def vtoy():
    register_family(VersionedToy())
    yield get_arch("vtoy")
    unregister_family("vtoy")


def _vtoy_ticket(spec: ArchSpec, masked: list[str]) -> Ticket:
    init = build_model(spec, seed=0).state_dict()
    g = torch.Generator().manual_seed(0)
    masks = {k: torch.rand(init[k].shape, generator=g) < 0.5 for k in masked}
    return Ticket(spec, masks, init)


@pytest.mark.parametrize("encoding", ["packed", "dense"])
def test_files_record_the_lowest_version_and_keep_their_prunable_set(vtoy: ArchSpec, encoding: str,
                                                                      tmp_path: Path) -> None:
    assert prunable_names(vtoy) == ["conv.weight", "hidden.weight"]
    current, legacy = _vtoy_ticket(vtoy, ["conv.weight", "hidden.weight"]), _vtoy_ticket(vtoy, ["conv.weight"])
    for ticket, version, masked in ((current, "1.1", ["conv.weight", "hidden.weight"]),
                                    (legacy, "1.0", ["conv.weight"])):
        path = tmp_path / f"{version}.ticket"
        ticket.save(path, encoding=encoding)
        header = read_header(path)  # the torch-free reader knows what is masked without the zoo
        assert header.version == version and list(header.layers) == masked
        assert sorted(k[5:] for k in header.tensors if k.startswith("mask/")) == masked
        back = Ticket.load(path)
        assert list(back.masks) == masked and torch.equal(back.init["hidden.weight"], ticket.init["hidden.weight"])
        back.save(tmp_path / "again.ticket", encoding=encoding)
        assert (tmp_path / "again.ticket").read_bytes() == path.read_bytes()
    # A 1.0 ticket's sparsity counts only its masked weights: the unmasked hidden layer is dense, not pruned.
    assert legacy.sparsity == pytest.approx(1 - int(legacy.masks["conv.weight"].sum()) / 18)


def test_masked_set_is_checked_against_the_files_version_both_ways(vtoy: ArchSpec, tmp_path: Path) -> None:
    current, legacy = tmp_path / "current.ticket", tmp_path / "legacy.ticket"
    _vtoy_ticket(vtoy, ["conv.weight", "hidden.weight"]).save(current)
    _vtoy_ticket(vtoy, ["conv.weight"]).save(legacy)
    rewrite_metadata(current, format_version="1.0")
    with pytest.raises(TicketFormatError, match=r"masks 'hidden.weight', which format 1\.0 leaves dense in vtoy"):
        Ticket.load(current)
    rewrite_metadata(legacy, format_version="1.1")
    with pytest.raises(TicketFormatError, match=r"format 1\.1 prunes 1 weight\(s\) of vtoy.*'hidden.weight'"):
        Ticket.load(legacy)
    rewrite_metadata(legacy, format_version="1.9")  # a newer minor version: the newest rule this reader knows
    with pytest.raises(TicketFormatError, match="does not mask"):
        Ticket.load(legacy)


def test_in_memory_masks_must_follow_one_versions_rule(vtoy: ArchSpec) -> None:
    with pytest.raises(MaskError, match="no mask.*conv.weight"):
        _vtoy_ticket(vtoy, ["hidden.weight"])  # no version masks the hidden layer but not the conv
    with pytest.raises(MaskError, match="'out.weight' is not a prunable weight"):
        _vtoy_ticket(vtoy, ["conv.weight", "hidden.weight", "out.weight"])


def test_format_version_must_be_major_minor(r8_ticket: Ticket, tmp_path: Path) -> None:
    path = tmp_path / "t.ticket"
    r8_ticket.save(path)
    rewrite_metadata(path, format_version="1")
    with pytest.raises(TicketFormatError, match="'1' is not MAJOR.MINOR"):
        Ticket.load(path)
