"""Elastic conversion of MobileNetV1 for CIFAR (``cifar_mobilenetv1[_N]``): ``layers_part2`` changes depth.

As the reference (VITA-Group/ElasticLTH ``change_depth_cifar_mobilenetv1``), only the stride-1
512-channel blocks of ``layers_part2`` are replicated or dropped, with their masks and init;
the stem, ``layers_part1``, ``layers_part3`` and ``fc`` are copied one to one. The mapping
string is one string over the ``layers_part2`` indices. The blocks are all alike (none
downsamples or changes the width), so block 0 is replicated like the others:
``cifar_mobilenetv1_3`` → ``cifar_mobilenetv1`` (5 blocks) interpolates to ``0:0,1;1:2,3;2:4``.

Example:
    >>> from ticketfmt.converters.base import plan_conversion
    >>> plan_conversion("cifar_mobilenetv1_3", "cifar_mobilenetv1").mapping
    '0:0,1;1:2,3;2:4'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketfmt.zoo import ArchSpec

from ticketfmt.converters.base import FamilyConverter
from ticketfmt.converters.notation import Notation
from ticketfmt.converters.registry import register
from ticketfmt.converters.resnet import _linear_default

if TYPE_CHECKING:  # torch only draws a re-initialized classifier (--num-classes)
    import torch

__all__ = ["MobileNetV1Converter"]

PART2 = 1


class MobileNetV1Converter(FamilyConverter):
    families = ("cifar_mobilenetv1",)

    def stage_labels(self, spec: ArchSpec) -> list[str]:
        return [f"layers_part{s + 1}" for s in range(3)]

    def fixed_first_unit(self, spec: ArchSpec, stage: int) -> bool:
        return stage != PART2  # every 512-channel stride-1 block is alike

    def notation(self, spec: ArchSpec) -> Notation:
        return Notation({j: (PART2, j) for j in range(spec.stages[PART2])}, "layers_part2.{i}")

    def classifier_keys(self, spec: ArchSpec) -> tuple[str, ...]:
        return ("fc.weight", "fc.bias")

    def init_classifier(self, spec: ArchSpec, shapes: dict[str, tuple[int, ...]], generator: torch.Generator,
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return _linear_default(shapes, "fc.weight", "fc.bias", generator, dtype)  # nn.Linear's own init


register(MobileNetV1Converter())
