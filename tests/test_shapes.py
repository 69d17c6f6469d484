"""The torch-free layout table (ticketfmt.zoo.shapes) against the real timm, torchvision and builtin modules."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ticketfmt.models import VGG_WIDTHS
from ticketfmt.zoo import (Family, get_arch, get_family, list_archs, prunable_names, register_family,
                           state_dict_dtypes, state_dict_shapes, unregister_family)
from ticketfmt.zoo import base, shapes

GENERATED = ["timm/resnet_bottleneck-3-4-10-3", "torchvision/resnet_bottleneck-1-1-1-1", "timm/resnet_basic-1-5-1-2",
             "torchvision/resnet_basic-4-1-1-1", "cifar_resnet-1-2-3", "cifar_resnet-5-1-1", "cifar_vgg-1-2-1-3-1",
             "timm/vgg_bn-1-1-3-1-2", "timm/vgg-2-1-1-1-1", "torchvision/vgg_bn-1-2-1-1-4", "torchvision/vgg-3-1-2-1-1"]


def _real(spec) -> tuple[list[tuple[str, tuple[int, ...], str]], list[str]]:
    """The module's own state dict (names in order, shapes, dtypes) and prunable weights, built on the meta device."""
    with torch.device("meta"):
        model = get_family(spec.family).build(spec)
    sd = [(k, tuple(v.shape), shapes.TORCH_DTYPE_NAMES[str(v.dtype)]) for k, v in model.state_dict().items()]
    return sd, base._prunable_of(spec, model)


@pytest.mark.parametrize("arch", [s.id for s in list_archs()] + GENERATED + ["cifar_resnet20:100", "resnet18:7",
                                                                             "torchvision/vgg11_bn:5", "vgg16:3"])
def test_table_is_the_real_state_dict(arch: str) -> None:
    name, _, classes = arch.partition(":")
    spec = get_arch(name, int(classes) if classes else None)
    table = shapes.layout(spec)
    assert table is not None
    sd, prunable = _real(spec)
    assert [(t.name, t.shape, t.dtype) for t in table] == sd  # same keys, same order, shapes and dtypes
    assert [t.name for t in table if t.prunable] == prunable  # the family's rule on the real modules
    assert prunable_names(spec) == prunable
    assert list(state_dict_shapes(spec).items()) == [(k, s) for k, s, _ in sd]
    assert state_dict_dtypes(spec) == {k: d for k, _, d in sd}


def test_widths_agree_with_the_builtin_models() -> None:
    assert shapes.VGG_WIDTHS == VGG_WIDTHS


def test_the_zoo_computes_layouts_without_torch() -> None:
    code = ("import sys\n"
            "from ticketfmt.zoo import get_arch, prunable_names, state_dict_shapes, format_version_for\n"
            "for a in ('timm/resnet152', 'torchvision/vgg19_bn', 'cifar_vgg11', 'cifar_resnet110'):\n"
            "    s = get_arch(a); state_dict_shapes(s); format_version_for(s, prunable_names(s)); s.to_json()\n"
            "print(sorted(m for m in ('torch', 'timm', 'torchvision', 'numpy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_family_without_a_table_is_built_on_the_meta_device() -> None:
    class Tiny(Family):
        name = "tiny_linear"

        def parse(self, name, library):
            return self.make(library, "linear", (1,)) if name == "tiny_linear" else None

        def canonical_name(self, block, stages):
            return "tiny_linear"

        def build(self, spec):
            return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))

    register_family(Tiny())
    try:
        spec = get_arch("tiny_linear")
        assert shapes.layout(spec) is None
        assert state_dict_shapes(spec)["0.weight"] == (3, 4)
        assert state_dict_dtypes(spec)["1.num_batches_tracked"] == "I64"
        assert prunable_names(spec) == ["0.weight"]
    finally:
        unregister_family("tiny_linear")
        base._layout.cache_clear()
