"""The README's "Extending" section, done for real: one small thing of each kind, added from this file.

Each toy is what the corresponding new module would hold (a zoo family and its converter, an
encoding, a pruning method, a dataset), registered through the same registry calls, used
through the public API and the CLI (in-process), and unregistered afterwards so that no other
test sees it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from make_data import write_archive
from torch import nn

from ticketfmt import Ticket, build_model, prune
from ticketfmt.converters import FamilyConverter, convert, convert_file, get_converter, register, unregister
from ticketfmt.data import DATASETS, get_spec, load_split, make_loader, register_dataset
from ticketfmt.data.specs import CIFAR10_MEAN, CIFAR10_STD, DatasetSpec, unregister_dataset
from ticketfmt.errors import ConversionError, TicketFormatError
from ticketfmt.format.encodings import ENCODING_NAMES, Encoding, get_encoding, register_encoding, unregister_encoding
from ticketfmt.format.spec import ENCODINGS, read_header
from ticketfmt.format.tensors import encode_tensors, write_tensors
from ticketfmt.pruning import PRUNERS, register_pruner, unregister_pruner
from ticketfmt.zoo import (FAMILIES, ArchSpec, Family, get_arch, list_archs, prunable_names, register_family,
                           unregister_family)


def _same(a: Ticket, b: Ticket) -> None:
    assert a.arch == b.arch and list(a.masks) == list(b.masks)
    for k in a.masks:
        assert torch.equal(a.masks[k], b.masks[k]), k
    assert set(a.init) == set(b.init)
    for k in a.init:
        assert torch.equal(a.init[k], b.init[k]), k


# == a model family: ticketfmt/zoo/<family>.py and converters/<family>.py ====================================
class ToyUnit(nn.Module):
    """One unit of the toy network: a residual Linear layer (every unit of the stage has the same shapes)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.fc(x))


class ToyMLP(nn.Module):
    """``stem`` (Linear), ``layer1`` (``units`` ToyUnits), ``fc``: the unit layout the Family defaults describe."""

    def __init__(self, units: int, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Linear(16, width)
        self.layer1 = nn.Sequential(*(ToyUnit(width) for _ in range(units)))
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layer1(torch.relu(self.stem(x.flatten(1)))))


class ToyFamily(Family):
    """``toy_mlpN``: N residual units in one stage, on 1x4x4 inputs (what ``ticketfmt/zoo/toy.py`` would hold)."""

    name = "toy_mlp"
    default_classes = 3
    input_size = (1, 4, 4)

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = re.fullmatch(r"toy_mlp(\d+)", name)
        return self.make(library, "linear", (int(m.group(1)),)) if m and int(m.group(1)) > 0 else None

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        return f"toy_mlp{stages[0]}"

    def depth(self, spec: ArchSpec) -> int:
        return spec.stages[0] + 2

    def build(self, spec: ArchSpec) -> nn.Module:
        return ToyMLP(spec.stages[0], spec.num_classes)

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": f"{__name__}.ToyMLP", "units": spec.stages[0], "num_classes": spec.num_classes}

    def named_ids(self) -> tuple[str, ...]:
        return ("toy_mlp2", "toy_mlp4")


class ToyConverter(FamilyConverter):
    """Its elastic converter (what ``converters/toy.py`` would hold): only the classifier needs saying."""

    families = ("toy_mlp",)

    def classifier_keys(self, spec: ArchSpec) -> tuple[str, ...]:
        return ("fc.weight", "fc.bias")

    def init_classifier(self, spec: ArchSpec, shapes: dict[str, tuple[int, ...]], generator: torch.Generator,
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {k: (torch.rand(shapes[k], generator=generator) * 0.2 - 0.1).to(dtype) for k in self.classifier_keys(spec)}


@pytest.fixture
def toy_family() -> Iterator[None]:
    register_family(ToyFamily())
    register(ToyConverter())
    try:
        yield
    finally:
        unregister("toy_mlp")
        unregister_family("toy_mlp")


def test_a_family_is_a_zoo_module_and_a_converter_module(toy_family: None, tmp_path: Path,
                                                           cli: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_family(ToyFamily())
    with pytest.raises(ValueError, match="already has a converter"):
        register(ToyConverter())
    # The zoo: names, building, prunable weights, listing.
    spec = get_arch("toy_mlp2")
    assert (spec.family, spec.stages, spec.num_classes, spec.depth) == ("toy_mlp", (2,), 3, 4)
    assert {"toy_mlp2", "toy_mlp4"} <= {s.id for s in list_archs()}
    model = build_model("toy_mlp2", seed=0)
    assert model(torch.zeros(5, 1, 4, 4)).shape == (5, 3)
    assert prunable_names(spec) == ["stem.weight", "layer1.0.fc.weight", "layer1.1.fc.weight", "fc.weight"]
    # Tickets: save, load, prune; the stage table follows the default unit layout.
    ticket = prune(Ticket.from_model(model, "toy_mlp2"), 0.5, method="magnitude")
    assert set(ticket.stage_sparsity()) == {"stem", "stage1", "head"}
    ticket.save(tmp_path / "t2.ticket")
    _same(Ticket.load(tmp_path / "t2.ticket"), ticket)
    # Elastic conversion, in memory and file to file (the packed path): unit 1 is replicated into units 1-3.
    r4 = convert(ticket, "toy_mlp4")
    assert r4.arch == "toy_mlp4" and r4.provenance["strategy"] == "interpolate"
    for j in (1, 2, 3):
        assert torch.equal(r4.masks[f"layer1.{j}.fc.weight"], ticket.masks["layer1.1.fc.weight"])
    out = convert_file(tmp_path / "t2.ticket", "toy_mlp4", tmp_path / "t4.ticket")
    assert out.arch == "toy_mlp4" and out.encoding == "packed"
    _same(Ticket.load(tmp_path / "t4.ticket"), r4)
    # The CLI serves it with no change of its own.
    assert cli("convert", "--from", tmp_path / "t2.ticket", "--to", "toy_mlp4", "-o", tmp_path / "c4.ticket").code == 0
    _same(Ticket.load(tmp_path / "c4.ticket"), r4)
    info = cli("info", tmp_path / "c4.ticket", "--json")
    assert info.code == 0 and json.loads(info.stdout)["arch"]["id"] == "toy_mlp4"
    listing = cli("models")
    assert listing.code == 0 and "toy_mlp4" in listing.stdout


# == an encoding: ticketfmt/format/<encoding>.py ==============================================================
class IndexEncoding(Encoding):
    """``toy-index``: a mask as the I64 flat indices of its survivors, values as the survivors.

    The header rule depends on ``kept`` (the index list's length), which the built-in
    encodings do not use; the codec checks its own invariant (increasing, in range).
    """

    name = "toy-index"
    zeroes_pruned = True

    def mask_layout(self, shape: tuple[int, ...], kept: int) -> tuple[str, tuple[int, ...]]:
        return "I64", (kept,)

    def values_shape(self, shape: tuple[int, ...], kept: int) -> tuple[int, ...]:
        return (kept,)

    def encode_mask(self, mask: torch.Tensor) -> torch.Tensor:
        return torch.nonzero(mask.reshape(-1)).reshape(-1)

    def encode_values(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return values[mask]

    def decode_mask(self, raw: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        mask = torch.zeros(math.prod(shape), dtype=torch.bool)
        mask[raw] = True
        return mask.reshape(shape)

    def decode_values(self, raw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return raw.new_zeros(mask.shape).masked_scatter_(mask, raw)

    def count_kept(self, raw: torch.Tensor, shape: tuple[int, ...]) -> int:
        if raw.numel() and (int(raw[0]) < 0 or int(raw[-1]) >= math.prod(shape) or bool((raw.diff() <= 0).any())):
            raise ValueError("indices are not increasing within the weight")
        return raw.numel()


@pytest.fixture
def toy_encoding() -> Iterator[None]:
    register_encoding(IndexEncoding())
    try:
        yield
    finally:
        unregister_encoding("toy-index")


def test_an_encoding_is_one_module(toy_encoding: None, r8_ticket: Ticket, tmp_path: Path,
                                   cli: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_encoding(IndexEncoding())
    assert "toy-index" in ENCODINGS and ENCODING_NAMES[0] == "packed"  # the live list; the default stays first
    path = tmp_path / "r8.ticket"
    size = r8_ticket.save(path, encoding="toy-index")
    header = read_header(path)  # the torch-free reader applies the encoding's header rule
    assert header.encoding == "toy-index" and header.tensors["mask/conv1.weight"].dtype == "I64"
    assert header.tensors["mask/conv1.weight"].shape == (header.layers["conv1.weight"].kept,)
    back = Ticket.load(path)
    _same(back, r8_ticket)
    assert back.encoding == "toy-index" and size == path.stat().st_size
    # Re-saving is byte-identical, in this encoding and in packed.
    assert back.save(tmp_path / "again.ticket", encoding="toy-index") == size
    assert (tmp_path / "again.ticket").read_bytes() == path.read_bytes()
    back.save(tmp_path / "a.ticket")
    r8_ticket.save(tmp_path / "b.ticket")
    assert (tmp_path / "a.ticket").read_bytes() == (tmp_path / "b.ticket").read_bytes()
    # The CLI's --encoding accepts it, and `info` reads it from the header.
    res = cli("prune", path, "--sparsity", "0.7", "-o", tmp_path / "p.ticket", "--encoding", "toy-index")
    assert res.code == 0, res.stderr
    assert read_header(tmp_path / "p.ticket").encoding == "toy-index"
    info = cli("info", tmp_path / "p.ticket", "--json")
    assert info.code == 0 and json.loads(info.stdout)["encoding"] == "toy-index"


def test_an_encodings_rules_are_checked_on_read(toy_encoding: None, r8_ticket: Ticket, tmp_path: Path) -> None:
    r8_ticket.save(tmp_path / "ok.ticket", encoding="toy-index")
    meta = {k: v for k, v in read_header(tmp_path / "ok.ticket").metadata.items() if k != "payload_sha256"}
    tensors = encode_tensors(r8_ticket.masks, {"init": r8_ticket.init}, "toy-index")
    # The codec's own check (count_kept): indices out of order.
    shuffled = dict(tensors, **{"mask/conv1.weight": tensors["mask/conv1.weight"].flip(0)})
    write_tensors(tmp_path / "order.ticket", shuffled, meta)
    with pytest.raises(TicketFormatError, match="mask/conv1.weight: indices are not increasing"):
        Ticket.load(tmp_path / "order.ticket")
    # The header rule: a mask of the wrong length is refused before the payload is read.
    short = dict(tensors, **{"mask/conv1.weight": tensors["mask/conv1.weight"][:-1]})
    write_tensors(tmp_path / "short.ticket", short, meta)
    with pytest.raises(TicketFormatError, match=r"expected I64\[\d+\] for a toy-index ticket"):
        read_header(tmp_path / "short.ticket")
    # Unregistered, the encoding is unknown again: its files are refused with a one-line error.
    unregister_encoding("toy-index")
    try:
        assert "toy-index" not in ENCODINGS
        with pytest.raises(TicketFormatError, match="unknown encoding 'toy-index'"):
            Ticket.load(tmp_path / "ok.ticket")
        with pytest.raises(ValueError, match="unknown encoding"):
            get_encoding("toy-index")
    finally:
        register_encoding(IndexEncoding())  # the fixture unregisters it


# == a pruning method: ticketfmt/pruning/<method>.py ==========================================================
def _toy_scores(ticket: Ticket, **_: Any) -> dict[str, torch.Tensor]:
    """Keep the last weights of every layer (row-major): position over layer size, so layers prune alike."""
    return {k: (torch.arange(m.numel(), dtype=torch.float64) / m.numel()).reshape(m.shape)
            for k, m in ticket.masks.items()}


@pytest.fixture
def toy_pruner() -> Iterator[None]:
    register_pruner("toy")(_toy_scores)
    try:
        yield
    finally:
        unregister_pruner("toy")


def test_a_pruning_method_is_one_module(toy_pruner: None, tmp_path: Path, cli: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_pruner("toy")(_toy_scores)
    dense = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    pruned = prune(dense, 0.75, method="toy")
    assert pruned.sparsity == pytest.approx(0.75, abs=1e-5)
    assert pruned.provenance["pruning"][-1]["method"] == "toy"
    for k, m in pruned.masks.items():
        flat = m.reshape(-1).to(torch.uint8)
        assert torch.equal(flat, flat.sort().values), k  # pruned, then kept: a suffix of every layer
    # `ticket prune --method toy` runs it through the same registry.
    dense.save(tmp_path / "d.ticket")
    res = cli("prune", tmp_path / "d.ticket", "--sparsity", "0.75", "--method", "toy", "-o", tmp_path / "p.ticket")
    assert res.code == 0, res.stderr
    _same(Ticket.load(tmp_path / "p.ticket"), pruned)
    unregister_pruner("toy")
    try:
        assert "toy" not in PRUNERS
        res = cli("prune", tmp_path / "d.ticket", "--sparsity", "0.75", "--method", "toy", "-o", tmp_path / "q.ticket")
        assert res.code == 2 and "'toy' is not one of" in res.stderr and not (tmp_path / "q.ticket").exists()
    finally:
        register_pruner("toy")(_toy_scores)  # the fixture unregisters it


# == a dataset: one DatasetSpec in ticketfmt/data/catalog.py (or a module of its own) =========================
@pytest.fixture
def toy_dataset(tmp_path: Path) -> Iterator[Path]:
    register_dataset(DatasetSpec("toy-stripes", 2, 32, CIFAR10_MEAN, CIFAR10_STD, True, "archive",
                                 archive="toy-stripes.tar.gz", archive_root="toy-stripes",
                                 description="two classes of synthetic stripes (a test dataset)"))
    try:
        write_archive(tmp_path / "data" / "toy-stripes.tar.gz", root="toy-stripes", per_class=(4, 2),
                      classes=("left", "right"))
        yield tmp_path / "data"
    finally:
        unregister_dataset("toy-stripes")


def test_a_dataset_is_one_registration(toy_dataset: Path, tmp_path: Path, cli: Callable[..., Any]) -> None:
    assert get_spec("toy-stripes").num_classes == 2
    data = load_split("toy-stripes", "train", toy_dataset, cache_dir=tmp_path / "cache")
    assert data.classes == ("left", "right") and tuple(data.images.shape) == (8, 32, 32, 3)
    loader = make_loader("toy-stripes", "train", 4, train=True, device="cpu", data_dir=toy_dataset,
                         cache_dir=tmp_path / "cache", num_workers=1)
    images, labels = next(iter(loader))
    assert tuple(images.shape) == (4, 3, 32, 32) and set(labels.tolist()) <= {0, 1}
    # The CLI takes it wherever it takes a dataset: SNIP scores a batch of it.
    Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8").save(tmp_path / "d.ticket")
    res = cli("prune", tmp_path / "d.ticket", "--sparsity", "0.5", "--method", "snip", "--dataset", "toy-stripes",
              "--data-dir", toy_dataset, "-o", tmp_path / "snip.ticket")
    assert res.code == 0, res.stderr
    snip = Ticket.load(tmp_path / "snip.ticket")
    assert snip.sparsity == pytest.approx(0.5, abs=1e-5) and snip.provenance["pruning"][-1]["dataset"] == "toy-stripes"


def test_the_toys_are_gone_afterwards() -> None:
    # Runs after the tests above: every toy was unregistered, so no other test sees one.
    assert "toy-index" not in ENCODINGS and "toy" not in PRUNERS and "toy-stripes" not in DATASETS
    assert "toy_mlp" not in FAMILIES
    with pytest.raises(ConversionError, match="no elastic converter"):
        get_converter("toy_mlp")
