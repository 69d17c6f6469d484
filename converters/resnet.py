"""Elastic conversion of ResNets: CIFAR ResNets (any 6n+2) and ImageNet ResNets of timm and torchvision.

The unit is a residual block (``layerS.J.``); block 0 of each stage holds the stride and
the projection shortcut (``downsample``) and is copied one to one, as are the stem
(``conv1``, ``bn1``) and the classifier (``fc``). timm and torchvision ResNets share their
parameter names and shapes, so crossing libraries (``--to torchvision/resnet101`` from a
timm ticket) is the same copy. BasicBlock and Bottleneck ResNets cannot be converted into
each other: their blocks hold tensors of different shapes.

Example:
    >>> from ticketfmt.converters.base import plan_conversion
    >>> plan_conversion("timm/resnet18", "resnet34").mapping
    '0:0;1:1,2|0:0;1:1,2,3|0:0;1:1,2,3,4,5|0:0;1:1,2'
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ticketfmt.errors import ConversionError
from ticketfmt.zoo import ArchSpec

from ticketfmt.converters.base import FamilyConverter
from ticketfmt.converters.registry import register

if TYPE_CHECKING:  # torch only draws a re-initialized classifier (--num-classes)
    import torch

__all__ = ["ResNetConverter"]

_BLOCK_TITLES = {"basic": "BasicBlock", "bottleneck": "Bottleneck"}
_EXAMPLES = {"basic": "resnet18, resnet34 or resnet_basic-2-3-4-3", "bottleneck": "resnet50, resnet101 or resnet152"}


class ResNetConverter(FamilyConverter):
    families = ("cifar_resnet", "resnet")

    def stage_labels(self, spec: ArchSpec) -> list[str]:
        return [f"stage {s + 1} (layer{s + 1})" for s in range(len(spec.stages))]

    def one_string_for_all(self, spec: ArchSpec) -> bool:
        # The reference code takes one string for the three stages of a CIFAR ResNet.
        return spec.family == "cifar_resnet"

    def check_blocks(self, source: ArchSpec, target: ArchSpec) -> None:
        if source.block == target.block:
            return
        a, b = _BLOCK_TITLES[source.block], _BLOCK_TITLES[target.block]
        raise ConversionError(f"{source.id} is built of {a}s and {target.id} of {b}s: their blocks hold tensors of "
                              "different shapes, so no block mapping exists between them",
                              fix=f"convert to a {a} ResNet ({_EXAMPLES[source.block]})")

    def classifier_keys(self, spec: ArchSpec) -> tuple[str, ...]:
        return ("fc.weight", "fc.bias")

    def init_classifier(self, spec: ArchSpec, shapes: dict[str, tuple[int, ...]], generator: torch.Generator,
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        # nn.Linear's default initialization (timm, torchvision and the CIFAR ResNet keep it for fc):
        # weight and bias uniform in ±1/sqrt(fan_in).
        return _linear_default(shapes, "fc.weight", "fc.bias", generator, dtype)


def _linear_default(shapes: dict[str, tuple[int, ...]], weight: str, bias: str, generator: torch.Generator,
                    dtype: torch.dtype) -> dict[str, torch.Tensor]:
    import torch
    fan_in = shapes[weight][1]
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    w = (torch.rand(shapes[weight], generator=generator) * 2 - 1) * bound
    b = (torch.rand(shapes[bias], generator=generator) * 2 - 1) * bound
    return {weight: w.to(dtype), bias: b.to(dtype)}


register(ResNetConverter())
