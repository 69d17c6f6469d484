"""Elastic conversion of VGGs: timm and torchvision VGG 11/13/16/19 (with and without BN) and the CIFAR VGGs.

The unit is a conv layer with its BatchNorm (``features.i.`` and ``features.i+1.``); the
five stages lie between the max-pools, and conv 0 of each stage (which changes the width)
is copied one to one. The classifier is copied one to one too, masks included: its hidden
layers are pruned since format 1.1, its output layer never (as in the reference).

timm and torchvision share the ``features`` indices but not the classifier: timm holds
torchvision's first two linear layers as convolutions. Crossing libraries maps and reshapes:

=========================  ==========================  =====================
timm                       torchvision                 shape (timm → tv)
=========================  ==========================  =====================
``pre_logits.fc1``         ``classifier.0``            4096×512×7×7 → 4096×25088
``pre_logits.fc2``         ``classifier.3``            4096×4096×1×1 → 4096×4096
``head.fc``                ``classifier.6``            classes×4096 (same)
=========================  ==========================  =====================

The reshape is exact: a 7×7 convolution over the 7×7 feature map is the linear layer over
its (channel, row, column) flattening, which is how torchvision flattens.

Example:
    >>> from ticketfmt.converters.base import plan_conversion
    >>> plan_conversion("cifar_vgg16", "cifar_vgg19").mapping
    '0:0;1:1|0:0;1:1|0:0;1:1,2;2:3|0:0;1:1,2;2:3|0:0;1:1,2;2:3'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketfmt.errors import ConversionError
from ticketfmt.zoo import ArchSpec, state_dict_shapes

from ticketfmt.converters.base import FamilyConverter
from ticketfmt.converters.registry import register
from ticketfmt.converters.resnet import _linear_default

if TYPE_CHECKING:  # torch only draws a re-initialized classifier (--num-classes)
    import torch

__all__ = ["VGGConverter", "TIMM_TO_TORCHVISION", "TORCHVISION_TO_TIMM"]

TIMM_TO_TORCHVISION = {
    "pre_logits.fc1.weight": "classifier.0.weight", "pre_logits.fc1.bias": "classifier.0.bias",
    "pre_logits.fc2.weight": "classifier.3.weight", "pre_logits.fc2.bias": "classifier.3.bias",
    "head.fc.weight": "classifier.6.weight", "head.fc.bias": "classifier.6.bias",
}
TORCHVISION_TO_TIMM = {v: k for k, v in TIMM_TO_TORCHVISION.items()}


class VGGConverter(FamilyConverter):
    families = ("vgg", "cifar_vgg")

    def stage_labels(self, spec: ArchSpec) -> list[str]:
        shapes = state_dict_shapes(spec)
        out = []
        for s in range(len(spec.stages)):
            width = shapes[f"{spec.unit_prefixes(s, 0)[0]}weight"][0]
            out.append(f"stage {s + 1} ({width}-channel convs)")
        return out

    def check_blocks(self, source: ArchSpec, target: ArchSpec) -> None:
        if source.block == target.block:
            return
        has, hasnt = (source, target) if source.block == "conv_bn" else (target, source)
        bn_name = target.name + "_bn" if target.block == "conv" else target.name.replace("_bn", "")
        raise ConversionError(f"{has.id} has a BatchNorm after every conv and {hasnt.id} has none, so their units "
                              "hold different tensors", fix=f"convert to {bn_name} instead")

    def outer_key(self, key: str, source: ArchSpec, target: ArchSpec) -> str:
        if source.library == target.library:
            return key
        table = TIMM_TO_TORCHVISION if target.library == "timm" else TORCHVISION_TO_TIMM
        return table.get(key, key)

    def may_reshape(self, key: str) -> bool:
        return key in TIMM_TO_TORCHVISION or key in TORCHVISION_TO_TIMM

    def classifier_keys(self, spec: ArchSpec) -> tuple[str, ...]:
        if spec.family == "cifar_vgg":
            return ("classifier.weight", "classifier.bias")
        if spec.library == "timm":
            return ("head.fc.weight", "head.fc.bias")
        return ("classifier.6.weight", "classifier.6.bias")

    def init_classifier(self, spec: ArchSpec, shapes: dict[str, tuple[int, ...]], generator: torch.Generator,
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        weight, bias = self.classifier_keys(spec)
        if spec.family == "cifar_vgg":
            # The CIFAR VGG keeps nn.Linear's default initialization for its classifier.
            return _linear_default(shapes, weight, bias, generator, dtype)
        # timm and torchvision initialize VGG linear layers with N(0, 0.01) weights and zero biases.
        import torch
        w = torch.randn(shapes[weight], generator=generator) * 0.01
        return {weight: w.to(dtype), bias: torch.zeros(shapes[bias], dtype=dtype)}


register(VGGConverter())
