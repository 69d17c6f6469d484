"""The model zoo: ids, name grammar, builds, prunable parameters and units."""

from __future__ import annotations

import pytest
import torch

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo import build_model, get_arch, iter_units, list_archs, prunable_names, state_dict_shapes

SMALL = ["cifar_resnet20", "cifar_resnet8", "cifar_vgg11", "timm/resnet_basic-1-1-1-1",
         "torchvision/resnet_bottleneck-1-1-1-1", "timm/vgg_bn-1-1-1-1-1", "torchvision/vgg-1-1-1-1-1"]


@pytest.mark.parametrize("spec", list_archs(), ids=lambda s: s.id)
def test_every_zoo_entry_has_consistent_layout(spec) -> None:
    shapes = state_dict_shapes(spec)
    prunable = prunable_names(spec)
    assert prunable and all(k in shapes and len(shapes[k]) in (2, 4) for k in prunable)
    assert get_arch(spec.id) == spec  # ids are stable and canonical
    covered: set[str] = set()
    for stage, index, prefixes in iter_units(spec):
        keys = {k for k in shapes if k.startswith(prefixes)}
        assert keys, (stage, index)
        assert not keys & covered
        assert {spec.stage_of(k) for k in keys} == {f"stage{stage + 1}"}
        covered |= keys
    # Everything outside the units is the stem or the head.
    assert {spec.stage_of(k) for k in shapes if k not in covered} <= {"stem", "head"}
    if spec.family in ("vgg", "cifar_vgg"):
        assert all(k.startswith("features.") for k in prunable)  # the VGG classifier stays dense
    else:
        assert prunable[-1] == "fc.weight"


@pytest.mark.parametrize("arch", SMALL)
def test_small_models_build_and_run(arch: str) -> None:
    spec = get_arch(arch, num_classes=7)
    model = build_model(spec, seed=0).eval()
    size = 32 if spec.input_size[1] == 32 else 64
    with torch.no_grad():
        assert model(torch.zeros(1, 3, size, size)).shape == (1, 7)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == state_dict_shapes(spec)


def test_builds_are_seeded() -> None:
    a, b = build_model("cifar_resnet8", seed=3), build_model("cifar_resnet8", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = build_model("cifar_resnet8", seed=4)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


@pytest.mark.parametrize("name, family, block, stages, library", [
    ("cifar_resnet56", "cifar_resnet", "basic", (9, 9, 9), "builtin"),
    ("cifar_resnet110", "cifar_resnet", "basic", (18, 18, 18), "builtin"),
    ("resnet50", "resnet", "bottleneck", (3, 4, 6, 3), "timm"),
    ("timm/resnet101", "resnet", "bottleneck", (3, 4, 23, 3), "timm"),
    ("torchvision/resnet18", "resnet", "basic", (2, 2, 2, 2), "torchvision"),
    ("resnet_basic-2-3-4-3", "resnet", "basic", (2, 3, 4, 3), "timm"),
    ("vgg16_bn", "vgg", "conv_bn", (2, 2, 3, 3, 3), "timm"),
    ("torchvision/vgg11", "vgg", "conv", (1, 1, 2, 2, 2), "torchvision"),
    ("cifar_vgg19", "cifar_vgg", "conv_bn", (2, 2, 4, 4, 4), "builtin"),
])
def test_name_grammar(name, family, block, stages, library) -> None:
    spec = get_arch(name)
    assert (spec.family, spec.block, spec.stages, spec.library) == (family, block, stages, library)


def test_named_depths_match_their_ids() -> None:
    assert get_arch("cifar_resnet-3-3-3").id == "cifar_resnet20"
    assert get_arch("resnet_bottleneck-3-4-6-3").id == "timm/resnet50"
    assert get_arch("torchvision/resnet_basic-2-2-2-2").id == "torchvision/resnet18"
    assert get_arch("resnet50").depth == 50 and get_arch("cifar_resnet56").depth == 56
    assert get_arch("vgg19").depth == 19


@pytest.mark.parametrize("bad, match", [
    ("cifar_resnet21", "6n\\+2.*cifar_resnet20"),
    ("resnet51", "unknown ResNet depth 51"),
    ("vgg12", "unknown VGG depth"),
    ("foo/resnet50", "unknown library"),
    ("torchvision/cifar_resnet20", "not available from torchvision"),
    ("mobilenet", "unknown architecture.*ticket models"),
    ("resnet_basic-2-2", "4 stages"),
])
def test_bad_ids_give_one_line_errors(bad: str, match: str) -> None:
    with pytest.raises(UnknownArchError, match=match) as info:
        get_arch(bad)
    assert "\n" not in str(info.value)
