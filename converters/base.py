"""Planning a conversion: the family hooks (:class:`FamilyConverter`) and the validated :class:`Plan`.

:func:`plan_conversion` resolves the target architecture, checks that the conversion exists,
builds the per-stage mappings (from a strategy or a mapping string) and the complete
target-key → source-key table, all from ``zoo.state_dict_shapes`` (computed from the
architecture's spec, no torch). Every error is raised here, so a command can plan all its targets before
writing anything. :mod:`ticketfmt.converters.apply` then only indexes and copies tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import ConversionError
from ticketfmt.zoo import FAMILIES, ArchSpec, get_arch, prunable_names, state_dict_shapes

from ticketfmt.converters.mapping import StageMap, format_mapping, format_stage, generate, parse_mapping
from ticketfmt.converters.notation import Notation, format_notation, parse_notation
from ticketfmt.converters.registry import get_converter

if TYPE_CHECKING:  # planning needs shapes only: the packed `ticket convert` path imports no torch
    import torch

    from ticketfmt.ticket import Ticket

__all__ = ["FamilyConverter", "Plan", "plan_conversion", "resolve_target", "DEPTH_GAP_RATIO", "FAMILY_TITLES"]

DEPTH_GAP_RATIO = 2.5
"""Warn when the target has this many times more (or fewer) units than the source, all stages together.

ResNet-14 → ResNet-44 (the paper's failing case) is 6 → 21 blocks, 3.5×; ResNet-20 → ResNet-56 is 3×;
ResNet-18 → ResNet-34 (which transfers in the paper's Table 1) is 2×.
"""

FAMILY_TITLES = {"cifar_resnet": "CIFAR ResNet", "resnet": "ImageNet ResNet", "vgg": "ImageNet VGG",
                 "cifar_vgg": "CIFAR VGG"}
FAMILY_TITLES.update({"vit": "ImageNet ViT", "cifar_vit": "CIFAR ViT"})


class FamilyConverter:
    """What the engine needs to know about a family beyond the zoo's unit layout.

    Subclasses set ``families`` and override the hooks; register an instance with
    :func:`ticketfmt.converters.registry.register`.
    """

    families: tuple[str, ...] = ()

    def stage_labels(self, spec: ArchSpec) -> list[str]:
        """Human names of the stages, used in error messages (``stage 2 (layer2)``)."""
        return [f"stage {s + 1}" for s in range(len(spec.stages))]

    def one_string_for_all(self, spec: ArchSpec) -> bool:
        """Whether a single stage string may stand for every stage (CIFAR ResNets)."""
        return False

    def fixed_first_unit(self, spec: ArchSpec, stage: int) -> bool:
        """Whether unit 0 of ``stage`` is special (it downsamples or changes the width): then copied one to one.

        False for a stage of identical units (a VGG's hidden classifier layers, MobileNetV1's
        512-channel blocks): the strategies and mapping strings treat unit 0 like the others.
        """
        return True

    def notation(self, spec: ArchSpec) -> Notation | None:
        """The reference's single mapping string over module indices (:mod:`.notation`); None: stage strings."""
        return None

    def check_blocks(self, source: ArchSpec, target: ArchSpec) -> None:
        """Raise :class:`ConversionError` when the units of source and target differ in kind."""
        if source.block != target.block:
            raise ConversionError(f"{source.id} has {source.block} units and {target.id} {target.block} units",
                                  fix="convert between architectures with the same block type")

    def outer_key(self, key: str, source: ArchSpec, target: ArchSpec) -> str:
        """The source key of a target key outside every unit (stem, head): the same key by default."""
        return key

    def may_reshape(self, key: str) -> bool:
        """Whether this (outer) target key may hold the source tensor reshaped (same number of elements)."""
        return False

    def classifier_keys(self, spec: ArchSpec) -> tuple[str, ...]:
        """The keys re-initialized when the number of classes changes."""
        raise NotImplementedError

    def init_classifier(self, spec: ArchSpec, shapes: dict[str, tuple[int, ...]], generator: torch.Generator,
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """Fresh classifier tensors, initialized as the family's library does."""
        raise NotImplementedError


@dataclass(frozen=True)
class Plan:
    """A validated conversion: everything :func:`apply_plan` needs, and what the command reports."""

    source: ArchSpec
    target: ArchSpec
    stage_maps: tuple[StageMap, ...]
    strategy: str
    stage_strategies: tuple[str, ...]
    reinit_classifier: bool
    # (target key, source key or None when re-initialized, is a replicated copy) in target state-dict order.
    key_map: tuple[tuple[str, str | None, bool], ...] = field(repr=False)
    warnings: tuple[str, ...] = ()
    one_for_all: bool = False
    text: str | None = None  # the family's own mapping string (a reference notation), when it has one

    @property
    def mappings(self) -> list[str]:
        """The reference-code string of each stage."""
        return [format_stage(m) for m in self.stage_maps]

    @property
    def mapping(self) -> str:
        """The whole mapping (stages joined by ``|``, or one string when a CIFAR ResNet's stages agree).

        Pass it to ``--mapping`` to reproduce the conversion. A family with a reference notation
        (:mod:`ticketfmt.converters.notation`) gets its string (``0:0,2;2:4,6`` for a VGG's classifier).
        """
        return self.text if self.text is not None else format_mapping(self.stage_maps, self.one_for_all)

    @property
    def direction(self) -> str:
        a, b = sum(self.source.stages), sum(self.target.stages)
        return "stretch" if b > a else "squeeze" if b < a else "same depth"


def resolve_target(source: ArchSpec, target: str | ArchSpec, num_classes: int | None = None) -> tuple[ArchSpec, bool]:
    """The target :class:`ArchSpec` and whether its classifier must be re-initialized.

    A target id without a library prefix takes the source's library (``resnet101`` from a
    torchvision ticket is ``torchvision/resnet101``); the number of classes is the source's
    unless ``num_classes`` is given. An :class:`ArchSpec` whose class count differs from the
    source's needs ``num_classes``.
    """
    if isinstance(target, ArchSpec):
        spec = target
        if num_classes is None and spec.num_classes != source.num_classes:
            raise ConversionError(f"{spec.id} has {spec.num_classes} classes but the {source.id} ticket has "
                                  f"{source.num_classes}", fix=f"pass num_classes={spec.num_classes} (--num-classes "
                                                               f"{spec.num_classes}) to re-initialize the classifier")
        classes = num_classes if num_classes is not None else spec.num_classes
    else:
        spec = get_arch(target)
        if "/" not in target.strip() and spec.family == source.family and source.library in FAMILIES[spec.family].libraries:
            spec = FAMILIES[spec.family].make(source.library, spec.block, spec.stages)
        classes = num_classes if num_classes is not None else source.num_classes
    spec = get_arch(spec, classes)
    return spec, spec.num_classes != source.num_classes


def _check_family(source: ArchSpec, target: ArchSpec) -> None:
    if source.family == target.family:
        return
    a, b = FAMILY_TITLES.get(source.family, source.family), FAMILY_TITLES.get(target.family, target.family)
    same_kind = a.split()[-1] == b.split()[-1]
    why = ("they have different stems, widths and classifiers" if same_kind
           else "the transformation only replicates or drops units within one family")
    example = {"cifar_resnet": "cifar_resnet56", "resnet": "resnet101", "vgg": "vgg19_bn",
               "cifar_vgg": "cifar_vgg19", "vit": "vit_tiny_patch16_224-14",
               "cifar_vit": "cifar_vit_tiny-8"}.get(source.family, "a deeper network of the same family")
    raise ConversionError(f"cannot convert {source.id} ({a}) to {target.id} ({b}): {why}",
                          fix=f"pick a target of the {a} family, e.g. {example}")


def plan_conversion(source: Ticket | ArchSpec | str, target: str | ArchSpec, strategy: str | None = None,
                    mapping: str | None = None, num_classes: int | None = None) -> Plan:
    """Validate a conversion without touching any tensor; raises :class:`ConversionError` on any problem.

    Example:
        >>> plan = plan_conversion("cifar_resnet20", "cifar_resnet32")
        >>> plan.mappings, plan.strategy
        (['0:0;1:1,2;2:3,4', '0:0;1:1,2;2:3,4', '0:0;1:1,2;2:3,4'], 'interpolate')
    """
    src = get_arch(source.spec if hasattr(source, "spec") else source)  # a Ticket, or what get_arch takes
    tgt, reinit = resolve_target(src, target, num_classes)
    _check_family(src, tgt)
    conv = get_converter(src.family)
    conv.check_blocks(src, tgt)
    labels = conv.stage_labels(tgt)
    if mapping is not None and strategy is not None:
        raise ConversionError("give either a strategy or a mapping, not both",
                              fix="drop --strategy: an explicit --mapping says everything")
    if len(src.stages) != len(tgt.stages):
        raise ConversionError(f"{src.id} has {len(src.stages)} stages and {tgt.id} {len(tgt.stages)}",
                              fix="the number of stages never changes")
    fixed = [conv.fixed_first_unit(tgt, s) for s in range(len(tgt.stages))]
    notations = (conv.notation(src), conv.notation(tgt))
    if mapping is not None:
        maps = _parse(conv, mapping, src, tgt, labels, fixed, notations)
        used = ["mapping"] * len(maps)
        strategy_name = "mapping"
    else:
        maps, used = generate(strategy, src.stages, tgt.stages, labels, fixed)
        changed = [u for u in used if u != "identity"]
        strategy_name = strategy or ("/".join(dict.fromkeys(changed)) if changed else "identity")
    key_map = _key_map(conv, src, tgt, maps, reinit)
    text = format_notation(maps, *notations) if notations[0] and notations[1] else None
    return Plan(src, tgt, tuple(tuple(m) for m in maps), strategy_name, tuple(used), reinit, key_map,
                tuple(_warnings(src, tgt, maps, labels, fixed)), conv.one_string_for_all(tgt), text)


def _parse(conv: FamilyConverter, mapping: str, src: ArchSpec, tgt: ArchSpec, labels: list[str], fixed: list[bool],
           notations: tuple[Notation | None, Notation | None]) -> list[StageMap]:
    """The per-stage maps of a ``--mapping`` string: stage strings, or the family's reference notation."""
    if notations[0] is not None and notations[1] is not None:
        return parse_notation(mapping, notations[0], notations[1], src.stages, tgt.stages, fixed, labels,
                              src.name, tgt.name)
    try:
        example: str | None = format_mapping(generate(None, src.stages, tgt.stages, labels, fixed)[0],
                                             conv.one_string_for_all(tgt))
    except ConversionError:
        example = None
    return parse_mapping(mapping, src.stages, tgt.stages, conv.one_string_for_all(tgt), labels,
                         source_name=src.name, target_name=tgt.name, arch_label=f"{tgt.id}", example=example,
                         fixed_first=fixed)


def _warnings(src: ArchSpec, tgt: ArchSpec, maps: list[StageMap], labels: list[str],
              fixed: list[bool] | None = None) -> list[str]:
    out = []
    a, b = sum(src.stages), sum(tgt.stages)
    ratio = max(a, b) / min(a, b)
    if ratio >= DEPTH_GAP_RATIO:
        out.append(f"large depth gap: {src.name} has {a} units and {tgt.name} {b} ({ratio:.1f}x); the paper finds "
                   "tickets transfer best between nearby depths (ResNet-14 tickets are no better than pruning at "
                   "initialization on ResNet-44 and deeper); consider converting from a closer depth")
    early = []
    for s, m in enumerate(maps):
        n_src = src.stages[s]
        if 1 < len(m) < n_src and 1 not in m and (fixed is None or fixed[s]):  # a stage of alike units: no "early"
            early.append(labels[s])
    if early:
        out.append(f"{', '.join(early)}: block 1 is dropped; the paper finds that dropping the early blocks hurts "
                   "badly (ResNet-56 → ResNet-32 keeping blocks 5-8); keep them with --strategy spread or first")
    return out


def _find_prefix(key: str, prefixes: dict[str, Any]) -> str | None:
    pos = key.find(".")
    while pos != -1:
        if key[:pos + 1] in prefixes:
            return key[:pos + 1]
        pos = key.find(".", pos + 1)
    return None


def _key_map(conv: FamilyConverter, src: ArchSpec, tgt: ArchSpec, maps: list[StageMap],
             reinit: bool) -> tuple[tuple[str, str | None, bool], ...]:
    s_shapes, t_shapes = state_dict_shapes(src), state_dict_shapes(tgt)
    s_prunable, t_prunable = set(prunable_names(src)), set(prunable_names(tgt))
    unit_map: dict[str, tuple[str, bool]] = {}
    for s, m in enumerate(maps):
        seen: set[int] = set()
        for j, i in enumerate(m):
            copy = i in seen
            seen.add(i)
            for tp, sp in zip(tgt.unit_prefixes(s, j), src.unit_prefixes(s, i), strict=True):
                unit_map[tp] = (sp, copy)
    src_units = {p: None for s, n in enumerate(src.stages) for i in range(n) for p in src.unit_prefixes(s, i)}
    reinit_keys = set(conv.classifier_keys(tgt)) if reinit else set()
    out: list[tuple[str, str | None, bool]] = []
    used_outer: set[str] = set()
    for k, shape in t_shapes.items():
        if k in reinit_keys:
            out.append((k, None, False))
            continue
        p = _find_prefix(k, unit_map)
        if p is not None:
            sp, copy = unit_map[p]
            sk = sp + k[len(p):]
        else:
            sk, copy = conv.outer_key(k, src, tgt), False
            used_outer.add(sk)
        if sk not in s_shapes:
            raise ConversionError(f"{tgt.id} tensor {k!r} has no counterpart {sk!r} in {src.id}",
                                  fix="these architectures cannot be converted into each other")
        if s_shapes[sk] != shape:
            reshapable = p is None and conv.may_reshape(k) and math.prod(s_shapes[sk]) == math.prod(shape)
            if not reshapable:
                raise ConversionError(f"{tgt.id} tensor {k!r} has shape {list(shape)} but its source {sk!r} in "
                                      f"{src.id} has {list(s_shapes[sk])}",
                                      fix="these architectures cannot be converted into each other")
        if (k in t_prunable) != (sk in s_prunable):
            raise ConversionError(f"{k!r} is prunable in one of {src.id} and {tgt.id} but not in the other",
                                  fix="these architectures cannot be converted into each other")
        out.append((k, sk, copy))
    src_classifier = set(conv.classifier_keys(src)) if reinit else set()
    left = [k for k in s_shapes if _find_prefix(k, src_units) is None and k not in used_outer
            and k not in src_classifier]
    if left:
        raise ConversionError(f"{src.id} tensor {left[0]!r} has no place in {tgt.id}",
                              fix="these architectures cannot be converted into each other")
    return tuple(out)
