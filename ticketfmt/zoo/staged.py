"""Families described by their stages: a template for the unit prefixes, a prunable-module pattern, a classifier.

Many of timm's networks are stages of repeated identical blocks: a ViT is one stage
(``blocks.{j}.``), a ConvNeXt four (``stages.{s}.blocks.{j}.``). Everything the checks, the
stage tables and the elastic converter need of such a family is data on a :class:`StagedFamily`:

- ``unit_template``: the state-dict prefix of unit ``j`` of stage ``s`` (``"blocks.{j}."``);
- ``prunable``: a regular expression over module names; the Conv2d and Linear modules it matches
  have their weight masked (ViT: the attention and MLP Linear layers of the blocks);
- ``head_prefixes``: the keys of the ``head`` stage (the rest outside every unit is ``stem``);
- ``classifier`` and ``classifier_init``: the output layer's keys, and how a fresh one is drawn
  when a conversion changes the number of classes (``trunc_normal``: timm's N(0, 0.02²) weight
  truncated at ±2, zero bias; ``linear_default``: nn.Linear's uniform ±1/√fan_in).

A subclass still owns its name grammar (:meth:`Family.parse`) and its builder; the generic
converter (``ticketfmt.converters.staged``) serves every registered StagedFamily with no
converter module of its own, so adding such a family is one file in the zoo (plus, for the
torch-free checks, its layout in :mod:`ticketfmt.zoo.shapes`; without one it is laid out on the
meta device).

Example:
    >>> from ticketfmt.zoo import get_arch
    >>> spec = get_arch("cifar_vit_tiny-6")
    >>> spec.unit_prefixes(0, 2), spec.stage_of("blocks.2.attn.qkv.weight"), spec.stage_of("head.weight")
    (('blocks.2.',), 'stage1', 'head')
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from ticketfmt.zoo.base import ArchSpec, Family

if TYPE_CHECKING:
    from torch import nn

__all__ = ["StagedFamily", "CLASSIFIER_INITS"]

CLASSIFIER_INITS = ("trunc_normal", "linear_default")
"""How a staged family's classifier is re-drawn when a conversion changes the number of classes."""


@functools.lru_cache(maxsize=32)
def _unit_regex(template: str) -> re.Pattern[str]:
    """``"stages.{s}.blocks.{j}."`` → a pattern capturing the stage and unit numbers of a key."""
    parts = re.split(r"(\{[sj]\})", template)
    pattern = "".join(rf"(?P<{p[1]}>\d{{1,9}})" if p in ("{s}", "{j}") else re.escape(p) for p in parts)
    return re.compile(pattern)


class StagedFamily(Family):
    """A :class:`Family` whose unit layout, prunable set and classifier are class attributes (see the module doc).

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> get_arch("vit_tiny_patch16_224").family_obj.classifier
        ('head.weight', 'head.bias')
    """

    unit_template = "blocks.{j}."
    """The prefix of unit ``{j}`` of stage ``{s}`` (a one-stage family leaves ``{s}`` out)."""
    prunable = r"blocks\.\d+\..*"
    """Module names (full match) whose Conv2d / Linear weight is masked."""
    unit0_templates: tuple[str, ...] = ()
    """More prefixes of unit 0 of stage ``{s}``: what a stage holds before its blocks (a ConvNeXt's
    ``stages.{s}.downsample.``) belongs to its unit 0, as a ResNet's projection shortcut to block 0."""
    head_prefixes: tuple[str, ...] = ("head.",)
    classifier: tuple[str, ...] = ("head.weight", "head.bias")
    classifier_init = "trunc_normal"

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        extra = tuple(t.format(s=stage) for t in self.unit0_templates) if index == 0 else ()
        return (*extra, self.unit_template.format(s=stage, j=index))

    def stage_of(self, spec: ArchSpec, key: str) -> str:
        m = _unit_regex(self.unit_template).match(key)
        if m:
            return f"stage{int(m.groupdict().get('s') or 0) + 1}"
        for template in self.unit0_templates:
            m = _unit_regex(template).match(key)
            if m:
                return f"stage{int(m.groupdict().get('s') or 0) + 1}"
        return "head" if key.startswith(self.head_prefixes) else "stem"

    def is_prunable(self, spec: ArchSpec, module_name: str, module: nn.Module) -> bool:
        return super().is_prunable(spec, module_name, module) and re.fullmatch(self.prunable, module_name) is not None
