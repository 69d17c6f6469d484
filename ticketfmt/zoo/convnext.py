"""timm's ConvNeXts, as a staged family: four stages of identical blocks (``stages.{s}.blocks.{j}.``).

This module is the whole family, zoo and converter alike: the generic converter of staged
families (``ticketfmt.converters.staged``) reads the unit layout and the classifier off this
description (its torch-free layout is ``_convnext`` in :mod:`ticketfmt.zoo.shapes`).

- ids: ``convnext_atto``, ``convnext_femto``, ``convnext_pico``, ``convnext_nano``, ``convnext_tiny``,
  ``convnext_small``, ``convnext_base`` (timm's depths), and any blocks per stage after the size:
  ``convnext_atto-2-2-8-2`` (the conversion targets);
- unit: a block (layer scale ``gamma``, 7×7 depthwise ``conv_dw``, ``norm``, MLP ``fc1``/``fc2``);
  each stage's ``downsample`` (LayerNorm2d + 2×2 conv, before stages 2-4) belongs to its unit 0, which is
  copied one to one (as a ResNet's block 0 with its projection shortcut), as are the stem and the head;
- prunable: every conv and linear weight inside the stages (depthwise convs, MLP layers, downsample
  convs); the stem conv and the output layer ``head.fc`` stay dense, as the ViTs' patch embedding and head.

Example:
    >>> from ticketfmt.zoo import get_arch
    >>> spec = get_arch("convnext_atto")
    >>> spec.id, spec.stages, spec.stage_of("stages.2.downsample.1.weight")
    ('timm/convnext_atto', (2, 2, 6, 2), 'stage3')
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo.base import ArchSpec, parse_counts
from ticketfmt.zoo.infer import library_of, out_features
from ticketfmt.zoo.registry import register_family
from ticketfmt.zoo.shapes import CONVNEXT_CONV_MLP, CONVNEXT_DIMS
from ticketfmt.zoo.staged import StagedFamily

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ConvNeXtFamily", "CONVNEXT_DEPTHS"]

CONVNEXT_DEPTHS = {"atto": (2, 2, 6, 2), "femto": (2, 2, 6, 2), "pico": (2, 2, 6, 2), "nano": (2, 2, 8, 2),
                   "tiny": (3, 3, 9, 3), "small": (3, 3, 27, 3), "base": (3, 3, 27, 3)}
"""Blocks per stage of timm's named ConvNeXts."""


def _block_of(size: str) -> str:
    """The block type of a size: the first size of the same widths (ConvNeXt-S is a deeper ConvNeXt-T)."""
    return "convnext_" + next(s for s, d in CONVNEXT_DIMS.items() if d == CONVNEXT_DIMS[size])


class ConvNeXtFamily(StagedFamily):
    """timm's ConvNeXt: ``convnext_nano`` or ``convnext_nano-2-2-10-2`` (blocks per stage)."""

    name = "convnext"
    libraries = ("timm",)
    default_library = "timm"
    max_units = 64  # convnext_xxlarge has 30 in its third stage
    unit_word = "blocks"
    unit_template = "stages.{s}.blocks.{j}."
    unit0_templates = ("stages.{s}.downsample.",)
    prunable = r"stages\.\d+\.(blocks\.\d+\.(conv_dw|mlp\.fc[12])|downsample\.1)"
    head_prefixes = ("head.",)
    classifier = ("head.fc.weight", "head.fc.bias")
    classifier_init = "trunc_normal"
    _pattern = re.compile(rf"convnext_(?P<size>{'|'.join(CONVNEXT_DIMS)})(?:-(?P<stages>.+))?")

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = self._pattern.fullmatch(name)
        if not m:
            return None
        size = m.group("size")
        stages = parse_counts(m.group("stages")) if m.group("stages") else CONVNEXT_DEPTHS[size]
        if not stages or len(stages) != 4:
            raise UnknownArchError(f"{name!r}: a ConvNeXt has 4 stages of at least one block",
                                   fix=f"write the blocks per stage as convnext_{size}-2-2-8-2")
        return self.make(library, _block_of(size), stages)

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        named = [s for s, d in CONVNEXT_DEPTHS.items() if d == stages and _block_of(s) == block]
        return f"convnext_{named[0]}" if named else f"{block}-" + "-".join(map(str, stages))

    def named_ids(self) -> tuple[str, ...]:
        return tuple(f"timm/convnext_{size}" for size in ("atto", "femto", "pico", "nano", "tiny"))

    def depth(self, spec: ArchSpec) -> int:
        return sum(spec.stages)

    def kwargs(self, spec: ArchSpec) -> dict[str, Any]:
        """The keyword arguments of timm's ``ConvNeXt`` for ``spec`` (recorded as its constructor)."""
        size = spec.block.removeprefix("convnext_")
        return {"depths": list(spec.stages), "dims": list(CONVNEXT_DIMS[size]), "conv_mlp": size in CONVNEXT_CONV_MLP,
                "num_classes": spec.num_classes}

    def build(self, spec: ArchSpec) -> nn.Module:
        from timm.models.convnext import ConvNeXt
        return ConvNeXt(**self.kwargs(spec))

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": "timm.models.convnext.ConvNeXt", **self.kwargs(spec)}

    def infer(self, model: nn.Module) -> ArchSpec | None:
        if library_of(model) != "timm" or type(model).__name__ != "ConvNeXt":
            return None
        stages = model.stages  # type: ignore[attr-defined]
        dims = tuple(int(s.blocks[0].conv_dw.out_channels) for s in stages if len(s.blocks))
        size = next((k for k, v in CONVNEXT_DIMS.items() if v == dims), None)
        if size is None or len(dims) != 4:
            return None
        return self.make("timm", _block_of(size), tuple(len(s.blocks) for s in stages),
                         out_features(getattr(model.head, "fc", None)))  # type: ignore[attr-defined]


register_family(ConvNeXtFamily())
