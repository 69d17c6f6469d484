"""Elastic conversion of every staged family (:class:`ticketfmt.zoo.staged.StagedFamily`): ViTs, ConvNeXts, ...

A staged family says, as data, where its units are (``blocks.{j}.``, ``stages.{s}.blocks.{j}.``)
and what its classifier is; that is all the engine needs, so one :class:`StagedConverter` serves
them all: it is found through :func:`~ticketfmt.converters.registry.register_fallback` for any
registered StagedFamily that has no converter of its own. The mapping semantics are the
ResNets' (``docs/CONVERT.md``): units are whole blocks, replicated (stretch) or dropped
(squeeze) with their masks and init by the same strategies (``interpolate``/``append``/
``first``/``last``, ``spread``/``first``/``last``) or a reference-code mapping string; unit 0 of
each stage is copied one to one (with what the family puts in it: a ConvNeXt's downsample layer);
everything outside the units (a ViT's patch embedding, class token, position embedding, final
norm and head; a ConvNeXt's stem and head) is copied one to one.

Example:
    >>> from ticketfmt.converters.base import plan_conversion
    >>> plan_conversion("cifar_vit_tiny-6", "cifar_vit_tiny-8").mapping
    '0:0;1:1,2;2:3,4;3:5;4:6;5:7'
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ticketfmt.errors import ConversionError
from ticketfmt.zoo import FAMILIES, ArchSpec
from ticketfmt.zoo.staged import StagedFamily

from ticketfmt.converters.base import FamilyConverter
from ticketfmt.converters.registry import register_fallback

if TYPE_CHECKING:  # torch only draws a re-initialized classifier (--num-classes)
    import torch

__all__ = ["StagedConverter", "staged_converter"]


class StagedConverter(FamilyConverter):
    """The converter of one staged family, read off its description."""

    def __init__(self, family: StagedFamily) -> None:
        self.family = family
        self.families = (family.name,)

    def stage_labels(self, spec: ArchSpec) -> list[str]:
        return [f"stage {s + 1} ({self.family.unit_template.format(s=s, j='*').rstrip('.')})"
                for s in range(len(spec.stages))]

    def check_blocks(self, source: ArchSpec, target: ArchSpec) -> None:
        if source.block != target.block:
            deeper = self.family.canonical_name(source.block, tuple(n + 1 for n in source.stages))
            raise ConversionError(f"{source.id} is built of {source.block} blocks and {target.id} of {target.block} "
                                  "blocks: their tensors differ in shape or kind",
                                  fix=f"convert to another depth of {source.block} (e.g. {deeper})")

    def classifier_keys(self, spec: ArchSpec) -> tuple[str, ...]:
        return self.family.classifier

    def init_classifier(self, spec: ArchSpec, shapes: dict[str, tuple[int, ...]], generator: torch.Generator,
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        import torch
        weight, bias = self.family.classifier
        if self.family.classifier_init == "trunc_normal":
            # timm's head init: N(0, 0.02²) truncated at ±2 (absolute, as timm's trunc_normal_), zero bias.
            w = torch.nn.init.trunc_normal_(torch.empty(shapes[weight]), std=0.02, a=-2.0, b=2.0, generator=generator)
            return {weight: w.to(dtype), bias: torch.zeros(shapes[bias], dtype=dtype)}
        fan_in = math.prod(shapes[weight][1:])
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        w = (torch.rand(shapes[weight], generator=generator) * 2 - 1) * bound
        b = (torch.rand(shapes[bias], generator=generator) * 2 - 1) * bound
        return {weight: w.to(dtype), bias: b.to(dtype)}


_SERVED: dict[str, StagedConverter] = {}


def staged_converter(family: str) -> StagedConverter | None:
    """The converter of a registered staged family (made once per family object), None for any other family.

    Example:
        >>> staged_converter("cifar_vit").families, staged_converter("cifar_resnet")
        (('cifar_vit',), None)
    """
    obj = FAMILIES.get(family)
    if not isinstance(obj, StagedFamily):
        return None
    conv = _SERVED.get(family)
    if conv is None or conv.family is not obj:  # a family re-registered (tests) gets a fresh converter
        conv = _SERVED[family] = StagedConverter(obj)
    return conv


def staged_families() -> list[str]:
    """The registered staged families (those :func:`staged_converter` serves)."""
    return [name for name, obj in FAMILIES.items() if isinstance(obj, StagedFamily)]


register_fallback(staged_converter, staged_families)
