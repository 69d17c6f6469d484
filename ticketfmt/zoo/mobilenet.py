"""MobileNetV1 for CIFAR (VITA-Group/ElasticLTH ``models/cifar_mobilenetv1.py``): ``cifar_mobilenetv1[_N]``.

A 3×3 stem conv (``conv``, ``bn``: 3 → 32 channels), then depthwise-separable blocks (3×3
depthwise conv + BN + ReLU, 1×1 pointwise conv + BN + ReLU, no biases) in three parts:
``layers_part1`` (64, 128/2, 128, 256/2, 256, 512/2), ``layers_part2`` (N blocks of 512
channels at stride 1; N = 5 unless given, MobileNetV1's own count), ``layers_part3``
(1024/2, 1024), global average pooling and ``fc``. The names are the reference's.

The three parts are the three stages; the reference converts ``layers_part2`` only, whose
blocks are all alike (no block downsamples or changes the width), so a conversion
stretches or squeezes it and copies the rest one to one. Every conv and linear weight is
prunable, depthwise convs and ``fc`` included (the reference ignores no layer).

Example:
    >>> from ticketfmt.zoo import get_arch
    >>> spec = get_arch("cifar_mobilenetv1")
    >>> spec.id, spec.stages, spec.depth, spec.unit_prefixes(1, 0)
    ('cifar_mobilenetv1', (6, 5, 2), 28, ('layers_part2.0.',))
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo.base import ArchSpec, Family
from ticketfmt.zoo.infer import library_of, out_features
from ticketfmt.zoo.registry import register_family

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CifarMobileNetV1Family", "DEFAULT_BLOCKS"]

DEFAULT_BLOCKS = 5
"""The 512-channel blocks of ``cifar_mobilenetv1`` (MobileNetV1's own)."""


class CifarMobileNetV1Family(Family):
    """``cifar_mobilenetv1[_N]``: N stride-1 512-channel depthwise-separable blocks in ``layers_part2``."""

    name = "cifar_mobilenetv1"
    libraries = ("builtin",)
    default_classes = 10
    input_size = (3, 32, 32)
    max_units = 64
    unit_word = "blocks"

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = re.fullmatch(r"cifar_mobilenetv1(?:_(\d+))?", name)
        if not m:
            return None
        blocks = int(m.group(1)) if m.group(1) else DEFAULT_BLOCKS
        if blocks < 1:
            raise UnknownArchError(f"{name!r}: a MobileNetV1 has at least one 512-channel block",
                                   fix="use cifar_mobilenetv1_N with N >= 1 (cifar_mobilenetv1 is N = 5)")
        return self.make(library, "dwsep", (6, blocks, 2))

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        return "cifar_mobilenetv1" if stages[1] == DEFAULT_BLOCKS else f"cifar_mobilenetv1_{stages[1]}"

    def named_ids(self) -> tuple[str, ...]:
        return ("cifar_mobilenetv1_3", "cifar_mobilenetv1", "cifar_mobilenetv1_7")

    def depth(self, spec: ArchSpec) -> int:
        return 2 * sum(spec.stages) + 2  # two convs a block, the stem conv and fc

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        return (f"layers_part{stage + 1}.{index}.",)

    def stage_of(self, spec: ArchSpec, key: str) -> str:
        m = re.match(r"layers_part(\d)\.", key)
        if m:
            return f"stage{m.group(1)}"
        return "head" if key.startswith("fc.") else "stem"

    def infer(self, model: nn.Module) -> ArchSpec | None:
        if library_of(model) != "builtin" or type(model).__name__ != "CifarMobileNetV1":
            return None
        return self.make("builtin", "dwsep", (6, len(model.layers_part2), 2),  # type: ignore[arg-type]
                         out_features(model.fc))  # type: ignore[arg-type]

    def build(self, spec: ArchSpec) -> nn.Module:
        from ticketfmt.models import CifarMobileNetV1
        return CifarMobileNetV1(spec.stages[1], num_classes=spec.num_classes)

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": "ticketfmt.models.CifarMobileNetV1", "blocks": spec.stages[1]}


register_family(CifarMobileNetV1Family())
