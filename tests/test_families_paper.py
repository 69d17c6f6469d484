"""The paper's appendix networks (issue 16, items 1-3): VGG with n FC layers, LeNet MLPs on MNIST, CIFAR MobileNetV1.

Each family: its names and zoo entry, its torch-free layout against the real module, its
prunable set as the reference defines it, conversions that reproduce the reference's mapping
semantics (VITA-Group/ElasticLTH ``lottery/branch/morphism.py``, restated below as an oracle
over state dicts), and ``find``/``verify`` on a tiny budget. ``mnist`` / ``mnist-mini``: the
MNIST-format data (torchvision's file names and idx format).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from make_data import DATA_DIR, write_archive, write_mnist

from ticketfmt import Ticket, build_model
from ticketfmt.converters import convert, convert_file, plan_conversion
from ticketfmt.data import get_spec, input_pipeline, load_split, make_loader
from ticketfmt.errors import ConversionError, DataError, UnknownArchError
from ticketfmt.train import find, verify
from ticketfmt.train.recipes import recipe_for
from ticketfmt.zoo import get_arch, get_family, prunable_names, state_dict_dtypes, state_dict_shapes
from ticketfmt.zoo.base import _prunable_of
from ticketfmt.zoo.shapes import TORCH_DTYPE_NAMES, layout


def _random_ticket(arch: str, seed: int = 0) -> Ticket:
    """A ticket of ``arch`` with seeded random tensors and a seeded random half of every prunable weight kept."""
    spec, gen = get_arch(arch), torch.Generator().manual_seed(seed)
    dtypes = state_dict_dtypes(spec)
    init = {k: torch.randn(s, generator=gen) if dtypes[k] == "F32" else torch.zeros(s, dtype=torch.int64)
            for k, s in state_dict_shapes(spec).items()}
    masks = {k: torch.rand(init[k].shape, generator=gen) < 0.5 for k in prunable_names(spec)}
    return Ticket(spec, masks, init)


# The reference's depth morphism (ElasticLTH change_depth_cifar_vggnfc / _mnist_lenet / _cifar_mobilenetv1), as
# a test oracle: a key of the converted module (`classifier.`, `fc_layers.`, `layers_part2.`) goes to every target
# index its source index maps to; every other key is copied as it is.
_CONVERTED = {"cifar_vggnfc": "classifier.", "mnist_lenet": "fc_layers.", "cifar_mobilenetv1": "layers_part2."}


def _reference_morphism(family: str, source: dict[str, torch.Tensor], mapping: str) -> dict[str, torch.Tensor]:
    entries = {int(a): [int(t) for t in b.split(",")] for a, b in (e.split(":") for e in mapping.split(";"))}
    out = {}
    for key, value in source.items():
        if not key.startswith(_CONVERTED[family]):
            out[key] = value
            continue
        head, index, rest = key.split(".", 2)
        for target in entries.get(int(index), []):
            out[f"{head}.{target}.{rest}"] = value
    return out


CASES = [  # source, target, the reference's mapping string (also what the default strategy gives)
    ("cifar_vggnfc_13_64_3", "cifar_vggnfc_13_64_5", "0:0,2;2:4,6"),
    ("cifar_vggnfc_13_64_5", "cifar_vggnfc_13_64_2", "0:0"),
    ("mnist_lenet_300_300_100", "mnist_lenet_300_300_300_100", "0:0;1:1,2;2:3"),
    ("mnist_lenet_300_300_300_100", "mnist_lenet_300_300_100", "0:0;1:1;3:2"),
    ("cifar_mobilenetv1_3", "cifar_mobilenetv1", "0:0,1;1:2,3;2:4"),
]


# ---------------------------------------------------------------------------------------------- the zoo


def test_names_follow_the_references_grammar(cli: Callable[..., Any]) -> None:
    spec = get_arch("cifar_vggnfc_13_64_3")
    assert (spec.family, spec.block, spec.stages, spec.depth) == ("cifar_vggnfc", "vgg13-64", (2, 2, 2, 2, 2, 2), 13)
    assert get_arch("cifar_vggnfc_16").id == "cifar_vggnfc_16_64_1"  # the reference's W = 64, N = 1 defaults
    assert get_arch("cifar_vggnfc_13_32").stages[-1] == 0 and get_arch("cifar_vggnfc_13_32").id == "cifar_vggnfc_13_32"
    lenet = get_arch("mnist_lenet_300_300_100")
    assert (lenet.block, lenet.stages, lenet.input_size, lenet.depth) == ("300-100", (2, 1), (1, 28, 28), 4)
    assert get_arch("mnist_lenet_500_300_300_100").stages == (1, 2, 1)
    mobile = get_arch("cifar_mobilenetv1")
    assert (mobile.stages, mobile.depth, get_arch("cifar_mobilenetv1_5").id) == ((6, 5, 2), 28, "cifar_mobilenetv1")
    # The reference builds a 64-wide VGG for cifar_vggnfc_13_128_3 (it reads W from 4-part names only): refused.
    for bad, what in [("cifar_vggnfc_13_128_3", "width 64 whatever W"), ("cifar_vggnfc_12_64_3", "unknown VGG depth"),
                      ("mnist_lenet_0_100", "hidden width"), ("cifar_mobilenetv1_0", "at least one")]:
        with pytest.raises(UnknownArchError, match=what):
            get_arch(bad)
    res = cli("models", "*_[lmv]*")
    assert res.code == 0
    for arch in ("cifar_vggnfc_13_64_2", "cifar_vggnfc_13_64_5", "mnist_lenet_300_100", "cifar_mobilenetv1_7"):
        assert arch in res.stdout


@pytest.mark.parametrize("arch", ["cifar_vggnfc_11_16", "cifar_vggnfc_19_64_4", "mnist_lenet_20_20_7_7_7",
                                  "cifar_mobilenetv1_1", "mnist_lenet_300_100:3", "cifar_mobilenetv1_2:100"])
def test_layout_and_prunable_set_are_the_real_modules(arch: str) -> None:
    name, _, classes = arch.partition(":")
    spec = get_arch(name, int(classes) if classes else None)
    with torch.device("meta"):
        model = get_family(spec.family).build(spec)
    real = [(k, tuple(v.shape), TORCH_DTYPE_NAMES[str(v.dtype)]) for k, v in model.state_dict().items()]
    assert [(t.name, t.shape, t.dtype) for t in layout(spec)] == real
    assert prunable_names(spec) == _prunable_of(spec, model)


def test_prunable_sets_are_the_references() -> None:
    # ElasticLTH/open_lth: every Conv2d and Linear weight but the ignored ones (fc.weight for the VGG-nFC and
    # the LeNet; none for the MobileNet: its depthwise convs and fc are pruned too).
    vgg = prunable_names(get_arch("cifar_vggnfc_13_64_3"))
    assert vgg[-2:] == ["classifier.0.weight", "classifier.2.weight"] and "fc.weight" not in vgg and len(vgg) == 12
    assert prunable_names(get_arch("mnist_lenet_300_100")) == ["fc_layers.0.weight", "fc_layers.1.weight"]
    mobile = prunable_names(get_arch("cifar_mobilenetv1_3"))
    assert mobile[0] == "conv.weight" and mobile[-1] == "fc.weight" and "layers_part2.2.conv1.weight" in mobile
    assert state_dict_shapes(get_arch("cifar_mobilenetv1_3"))["layers_part2.0.conv1.weight"] == (512, 1, 3, 3)


def test_models_compute_and_recipes_are_the_references() -> None:
    for arch, channels in (("cifar_vggnfc_11_8", 3), ("mnist_lenet_30_30_10", 1), ("cifar_mobilenetv1_1", 3)):
        model = build_model(arch, num_classes=4, seed=0)
        side = 28 if channels == 1 else 32
        assert model(torch.zeros(2, channels, side, side)).shape == (2, 4)
        assert Ticket.from_model(model).spec == get_arch(arch, 4)  # the architecture is read off the module
    lenet = recipe_for("mnist_lenet_300_100")  # open_lth's mnist_lenet hparams: plain SGD 0.1, 40 epochs
    assert (lenet.lr, lenet.momentum, lenet.weight_decay, lenet.epochs, lenet.milestones, lenet.augmentation,
            lenet.rewind) == (0.1, 0.0, 0.0, 40, (), "none", "0")
    vgg, mobile = recipe_for("cifar_vggnfc_13_64_3"), recipe_for("cifar_mobilenetv1")
    assert (vgg.lr, vgg.momentum, vgg.weight_decay, vgg.milestones) == (0.1, 0.9, 1e-4, (80.0, 120.0))
    assert (mobile.epochs, mobile.milestones, mobile.weight_decay) == (160, (80.0, 120.0), 1e-4)


# ---------------------------------------------------------------------------------------------- conversion


@pytest.mark.parametrize(("source", "target", "mapping"), CASES)
def test_conversion_is_the_references_morphism(source: str, target: str, mapping: str) -> None:
    by_strategy = plan_conversion(source, target)
    assert by_strategy.mapping == mapping  # the default strategy writes the reference's string
    assert by_strategy.stage_maps == plan_conversion(source, target, mapping=mapping).stage_maps
    ticket = _random_ticket(source)
    converted = convert(ticket, target, mapping=mapping)
    assert converted.provenance["mapping"] == mapping
    want_init = _reference_morphism(ticket.spec.family, ticket.init, mapping)
    want_masks = _reference_morphism(ticket.spec.family, ticket.masks, mapping)
    assert list(converted.init) == list(state_dict_shapes(get_arch(target)))
    assert set(want_init) == set(converted.init) and set(want_masks) == set(converted.masks)
    for k, v in want_init.items():
        assert torch.equal(converted.init[k], v), k
    for k, m in want_masks.items():
        assert torch.equal(converted.masks[k], m), k
    assert type(converted.build_model()).__name__ in ("CifarVGGNFC", "MnistLeNet", "CifarMobileNetV1")  # strict load


def test_mapping_strings_are_the_references_and_checked() -> None:
    ticket = _random_ticket("cifar_mobilenetv1_7")
    reordered = convert(ticket, "cifar_mobilenetv1_3", mapping="6:0;0:1;3:2")  # any block anywhere: all alike
    assert torch.equal(reordered.masks["layers_part2.0.conv2.weight"], ticket.masks["layers_part2.6.conv2.weight"])
    assert reordered.provenance["mapping"] == "0:1;3:2;6:0"
    for source, target, mapping, what in [
        ("cifar_vggnfc_13_64_3", "cifar_vggnfc_13_64_5", "0:0,1;2:4,6", r"classifier\.1 .*use the indices 0, 2, 4, 6"),
        ("cifar_vggnfc_13_64_3", "cifar_vggnfc_13_64_5", "0:0,2;2:4", r"writes nothing into classifier\.6"),
        ("cifar_vggnfc_13_64_3", "cifar_vggnfc_13_64_5", "0:0|0:0", "takes one string"),
        ("cifar_vggnfc_13_64_3", "cifar_vggnfc_16_64_5", None, "changes the number of FC layers only"),
        ("cifar_vggnfc_13_64_1", "cifar_vggnfc_13_64_3", None, "no unit here to replicate"),
        ("mnist_lenet_300_300_100", "mnist_lenet_300_300_300_100", "0:0;1:1,3;2:2", "their shapes differ"),
        ("mnist_lenet_300_300_100", "mnist_lenet_300_300_300_100", "0:0,1;1:2;2:3", "changes the width"),
        ("mnist_lenet_300_100", "mnist_lenet_500_100", None, "widths 300-100"),
        ("mnist_lenet_300_100", "mnist_lenet_300_300_100", None, "only unit 0"),
        ("cifar_vggnfc_13_64_3", "cifar_vgg13", None, "within one family"),
    ]:
        with pytest.raises(ConversionError, match=what):
            plan_conversion(source, target, mapping=mapping)


def test_packed_file_conversion_and_the_cli(tmp_path: Path, cli: Callable[..., Any]) -> None:
    ticket = _random_ticket("cifar_mobilenetv1_3")
    ticket.save(tmp_path / "m3.ticket")
    res = cli("convert", "--from", tmp_path / "m3.ticket", "--to", "cifar_mobilenetv1", "--mapping", "0:0,1;1:2,3;2:4",
              "-o", tmp_path / "cli.ticket")
    assert res.code == 0, res.stderr
    assert "--mapping '0:0,1;1:2,3;2:4'" in res.stderr + res.stdout
    packed = convert_file(tmp_path / "m3.ticket", "cifar_mobilenetv1", tmp_path / "m5.ticket")
    assert packed.encoding == "packed"
    memory = convert(Ticket.load(tmp_path / "m3.ticket"), "cifar_mobilenetv1")
    for path in (tmp_path / "m5.ticket", tmp_path / "cli.ticket"):
        back = Ticket.load(path)
        assert back.provenance["mapping"] == "0:0,1;1:2,3;2:4"
        for k in memory.masks:
            assert torch.equal(back.masks[k], memory.masks[k]), k


# ---------------------------------------------------------------------------------------------- MNIST


def test_mnist_files_are_torchvisions_format(tmp_path: Path) -> None:
    import torchvision

    # tests/data/mnist-mini is what make_data writes, and torchvision's own MNIST reads the same images from it.
    write_mnist(tmp_path / "again")
    for f in (DATA_DIR / "mnist-mini" / "raw").iterdir():
        assert (tmp_path / "again" / "raw" / f.name).read_bytes() == f.read_bytes(), f.name
        raw = tmp_path / "tv" / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        (raw / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    tv = torchvision.datasets.MNIST(str(tmp_path / "tv"), train=True, download=False)
    ours = load_split("mnist-mini", "train", DATA_DIR, cache_dir=tmp_path / "cache")
    assert torch.equal(ours.images[..., 0], tv.data) and torch.equal(ours.labels, tv.targets)
    assert ours.classes == tuple(tv.classes) and tuple(ours.images.shape) == (30, 28, 28, 1)
    # `mnist` reads the same layout (DATA/MNIST/raw, unzipped files too) but must be all of MNIST.
    with pytest.raises(DataError, match="holds 30 images, but mnist train has 60,000"):
        load_split("mnist", "train", tmp_path / "tv", cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=r"no train-images-idx3-ubyte\[\.gz\]"):
        load_split("mnist-mini", "train", tmp_path / "empty", cache_dir=tmp_path / "no-cache")


def test_mnist_pipeline_is_the_references(tmp_path: Path) -> None:
    spec = get_spec("mnist")
    assert (spec.channels, spec.image_size, spec.split_sizes) == (1, 28, (60_000, 10_000))
    pipe = input_pipeline("mnist-mini", get_arch("mnist_lenet_300_100"))
    assert (pipe.mean, pipe.std, pipe.size) == ((0.1307,), (0.3081,), 28)  # open_lth normalizes MNIST by its own
    loader = make_loader("mnist-mini", "test", 20, False, "cpu", DATA_DIR, cache_dir=tmp_path, input_size=(1, 28, 28))
    x, _ = next(iter(loader))
    assert tuple(x.shape) == (20, 1, 28, 28) and float(x.min()) == pytest.approx(-0.1307 / 0.3081, abs=1e-5)
    with pytest.raises(DataError, match="grayscale images but the network takes 3"):
        input_pipeline("mnist-mini", get_arch("cifar_resnet20"))


# ---------------------------------------------------------------------------------------------- training


def test_lenet_find_convert_verify_on_mnist(tmp_path: Path, cli: Callable[..., Any]) -> None:
    out = tmp_path / "run"
    res = cli("find", "mnist_lenet_300_300_100", "--dataset", "mnist-mini", "--levels", "1", "--epochs", "1",
              "--batch-size", "16", "-o", out)
    assert res.code == 0, res.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["recipe"]["name"] == "mnist_lenet" and run["augmentation"] == "none" and run["input_size"] == [1, 28, 28]
    level1 = Ticket.load(out / "level-01.ticket")
    assert level1.sparsity == pytest.approx(0.2, abs=0.01) and level1.results[0]["dataset"] == "mnist-mini"
    res = cli("convert", "--from", out / "level-01.ticket", "--to", "mnist_lenet_300_300_300_100", "-o",
              tmp_path / "l4.ticket")
    assert res.code == 0 and "--mapping '0:0;1:1,2;2:3'" in res.stderr + res.stdout
    res = cli("verify", tmp_path / "l4.ticket", "--dataset", "mnist-mini", "--epochs", "1", "--batch-size", "16",
              "--in-place")
    assert res.code == 0, res.stderr
    (record,) = Ticket.load(tmp_path / "l4.ticket").results
    assert record["total"] == 20 and record["protocol"] == "reduced" and record["augmentation"] == "none"


@pytest.fixture
def tiny_cifar(tmp_path: Path) -> Path:
    """A cifar10-mini archive of 10 training and 10 test images."""
    return write_archive(tmp_path / "data" / "cifar10-mini-jpeg.tar.gz", per_class=(1, 1)).parent


def _budget(data: Path) -> dict[str, Any]:
    return {"data_dir": data, "epochs": 1, "batch_size": 5, "threads": 1, "rewind": "1it", "num_workers": 1}


def test_mobilenet_find_convert_verify(tiny_cifar: Path, tmp_path: Path) -> None:
    result = find("cifar_mobilenetv1_2", "cifar10-mini", 1, out_dir=tmp_path / "run", **_budget(tiny_cifar))
    ticket = Ticket.load(result.tickets[-1])
    assert ticket.arch == "cifar_mobilenetv1_2" and ticket.sparsity == pytest.approx(0.2, abs=0.01)
    verified, record = verify(convert(ticket, "cifar_mobilenetv1_3"), "cifar10-mini", **_budget(tiny_cifar))
    assert verified.arch == "cifar_mobilenetv1_3" and record["total"] == 10 and record["protocol"] == "reduced"
    assert record["augmentation"] == "crop32-pad4+flip" and record["recipe"]["name"] == "cifar_mobilenetv1"


def test_vggnfc_find_and_verify(tiny_cifar: Path, tmp_path: Path) -> None:
    # find on a narrow one-FC VGG (a 64-wide one writes ~100 MB of checkpoints a level); verify on the paper's
    # 64-wide VGG with its classifier stretched from 2 to 3 FC layers.
    result = find("cifar_vggnfc_11_8", "cifar10-mini", 1, out_dir=tmp_path / "run", **_budget(tiny_cifar))
    found = Ticket.load(result.tickets[-1])
    assert "fc.weight" not in found.masks and found.sparsity == pytest.approx(0.2, abs=0.01)
    dense = Ticket.from_model(build_model("cifar_vggnfc_11_64_2", seed=0), "cifar_vggnfc_11_64_2")
    stretched = convert(dense, "cifar_vggnfc_11_64_3")
    assert stretched.provenance["mapping"] == "0:0,2"
    verified, record = verify(stretched, "cifar10-mini", **_budget(tiny_cifar))
    assert verified.arch == "cifar_vggnfc_11_64_3" and record["total"] == 10
    assert record["recipe"]["name"] == "cifar_vggnfc"


# ---------------------------------------------------------------------------------------------- open_lth runs


def test_open_lth_runs_of_the_appendix_networks_import(tmp_path: Path, cli: Callable[..., Any]) -> None:
    from test_interop import _hparams, make_run

    from ticketfmt.interop.open_lth_models import infer_open_lth_arch

    # The reference's names and keys are ours: a checkpoint says its architecture (a change_depth branch records none).
    for arch in ("cifar_vggnfc_13_64_3", "mnist_lenet_300_300_100", "cifar_mobilenetv1_3"):
        with torch.device("meta"):
            state = build_model(arch).state_dict()
        assert infer_open_lth_arch(state) == arch
    # An open_lth LeNet lottery on MNIST (mnist_lenet_300_100's default hparams: plain SGD 0.1, 40 epochs).
    training = ["    * optimizer_name => sgd", "    * lr => 0.1", "    * training_steps => 40ep"]
    hparams = _hparams("mnist", 128, "mnist_lenet_300_100", training, None)
    lottery, rewind, masks = make_run(tmp_path, "mnist_lenet_300_100", "mnist_lenet_300_100", hparams, levels=1,
                                      start="model_ep0_it0.pth", end="model_ep40_it0.pth")
    res = cli("import", "open-lth", lottery, "--level", "1", "-o", tmp_path / "l.ticket")
    assert res.code == 0, res.stderr
    ticket = Ticket.load(tmp_path / "l.ticket")
    assert ticket.arch == "mnist_lenet_300_100"
    assert all(torch.equal(ticket.masks[k], masks[1][k].bool()) for k in masks[1])
    recipe = ticket.provenance["recipe"]
    assert (ticket.provenance["dataset"], recipe["momentum"], recipe["augmentation"]) == ("mnist", 0.0, "none")


def test_a_grayscale_ticket_without_a_dataset_gets_one_channel_preprocessing() -> None:
    """The Hub config's mean/std have one entry per input channel even when no dataset is on record."""
    from ticketfmt import Ticket, build_model
    from ticketfmt.hub.config import preprocessing

    pre = preprocessing(Ticket.from_model(build_model("mnist_lenet_300_100", seed=0), "mnist_lenet_300_100"))
    assert pre["input_size"] == [1, 28, 28]
    assert len(pre["mean"]) == len(pre["std"]) == 1


@pytest.mark.parametrize("arch, dataset, augmented", [("mnist_lenet_300_100", "mnist-mini", False),
                                                       ("cifar_resnet8", "cifar10-mini", True)])
def test_snip_scores_on_batches_augmented_like_the_recipe(cli, tmp_path, monkeypatch, arch: str, dataset: str,
                                                           augmented: bool) -> None:
    """`ticket prune --method snip` draws its batches the way the network trains: the LeNet recipe never augments."""
    import ticketfmt.data as data

    asked: list[object] = []
    real = data.make_loader

    def spy(*args, **kwargs):
        asked.append(kwargs.get("augment"))
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "make_loader", spy)
    src = tmp_path / "t.ticket"
    assert cli("new", arch, "-o", src).code == 0
    res = cli("prune", src, "--sparsity", "0.5", "--method", "snip", "--dataset", dataset, "-o", tmp_path / "s.ticket")
    assert res.code == 0, res.stderr
    assert asked == [augmented]
