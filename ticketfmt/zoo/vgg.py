"""The VGG families: the ImageNet VGGs of timm and torchvision and the CIFAR VGGs (builtin).

Units are conv layers with their BatchNorm (``features.i.`` and ``features.i+1.``), laid out
as torchvision's ``features`` sequence in every library. As in the reference (open_lth's
``pruning_layers_to_ignore='fc.weight'``), every conv and linear weight is prunable except the
output layer's: the hidden classifier layers of the ImageNet VGGs (timm ``pre_logits.fc1`` /
``pre_logits.fc2``, torchvision ``classifier.0`` / ``classifier.3``) are pruned since format
1.1; format 1.0 left them dense, and files of that version keep that rule.

Example:
    >>> from ticketfmt.zoo import get_arch, prunable_names
    >>> [n for n in prunable_names(get_arch("torchvision/vgg11")) if not n.startswith("features.")]
    ['classifier.0.weight', 'classifier.3.weight']
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo.base import ArchSpec, Family, parse_counts
from ticketfmt.zoo.registry import register_family

if TYPE_CHECKING:
    from torch import nn

__all__ = ["VGGFamily", "CifarVGGFamily", "VGG_NAMED", "HIDDEN_CLASSIFIER"]

VGG_NAMED: dict[int, tuple[int, ...]] = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3),
                                         19: (2, 2, 4, 4, 4)}
HIDDEN_CLASSIFIER: dict[str, tuple[str, ...]] = {
    "timm": ("pre_logits.fc1.weight", "pre_logits.fc2.weight"),
    "torchvision": ("classifier.0.weight", "classifier.3.weight"),
}
"""The hidden classifier weights of the ImageNet VGGs: prunable since format 1.1."""
OUTPUT_LAYER = {"timm": "head.fc", "torchvision": "classifier.6", "builtin": "classifier"}
"""The output layer of each library's VGG: left dense, as the reference leaves ``fc``."""


def _vgg_cfg(stages: tuple[int, ...], pool_last: bool) -> list[int | str]:
    from ticketfmt.models import VGG_WIDTHS
    cfg: list[int | str] = []
    for s, n in enumerate(stages):
        cfg += [VGG_WIDTHS[s]] * n
        if pool_last or s < len(stages) - 1:
            cfg.append("M")
    return cfg


class _VGGBase(Family):
    """Shared by the ImageNet and the CIFAR VGGs: units are conv layers (with their BN)."""

    prefix = "vgg"
    pool_last = True

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = re.fullmatch(rf"{self.prefix}(\d+)(_bn)?", name)
        if m:
            depth = int(m.group(1))
            if depth not in VGG_NAMED:
                raise UnknownArchError(f"unknown VGG depth {depth}",
                                       fix=f"use {self.prefix}11, 13, 16 or 19, or give the convs per stage as "
                                           f"{self.prefix}-2-2-3-3-3")
            return self.make(library, self._block(m.group(2) is not None), VGG_NAMED[depth])
        m = re.fullmatch(rf"{self.prefix}(_bn)?-(.+)", name)
        if not m:
            return None
        stages = parse_counts(m.group(2)) or ()
        if len(stages) != 5:
            raise UnknownArchError(f"{name!r}: a VGG has 5 stages", fix=f"write the convs per stage as {self.prefix}-2-2-3-3-3")
        return self.make(library, self._block(m.group(1) is not None), stages)

    def _block(self, bn: bool) -> str:
        return "conv_bn" if bn else "conv"

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        bn = "_bn" if block == "conv_bn" else ""
        for depth, s in VGG_NAMED.items():
            if s == stages:
                return f"{self.prefix}{depth}{bn}"
        return f"{self.prefix}{bn}-" + "-".join(map(str, stages))

    def depth(self, spec: ArchSpec) -> int:
        return sum(spec.stages) + 3

    def feature_indices(self, spec: ArchSpec) -> list[list[int]]:
        """``features`` index of each conv, per stage."""
        per_conv = 3 if spec.block == "conv_bn" else 2
        out: list[list[int]] = []
        i = 0
        for s, n in enumerate(spec.stages):
            out.append(list(range(i, i + n * per_conv, per_conv)))
            i += n * per_conv + (1 if (self.pool_last or s < len(spec.stages) - 1) else 0)
        return out

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        i = self.feature_indices(spec)[stage][index]
        return (f"features.{i}.", f"features.{i + 1}.") if spec.block == "conv_bn" else (f"features.{i}.",)

    def stage_of(self, spec: ArchSpec, key: str) -> str:
        m = re.match(r"features\.(\d+)\.", key)
        if not m:
            return "head"
        i = int(m.group(1))
        for s, idx in enumerate(self.feature_indices(spec)):
            if idx and idx[0] <= i <= idx[-1] + 1:
                return f"stage{s + 1}"
        return "head"

    def is_prunable(self, spec: ArchSpec, module_name: str, module: nn.Module) -> bool:
        # The reference prunes every conv and linear weight but the output layer's.
        return super().is_prunable(spec, module_name, module) and module_name != OUTPUT_LAYER[spec.library]


class VGGFamily(_VGGBase):
    """ImageNet VGGs of timm and torchvision: ``vgg16``, ``vgg16_bn``, ``vgg_bn-2-2-3-3-3``."""

    name = "vgg"
    libraries = ("timm", "torchvision")
    default_library = "timm"

    def named_ids(self) -> tuple[str, ...]:
        return tuple(f"{lib}/vgg{d}{bn}" for lib in ("timm", "torchvision") for d in VGG_NAMED for bn in ("", "_bn"))

    def prunable_since(self, spec: ArchSpec, weight: str) -> str:
        return "1.1" if weight in HIDDEN_CLASSIFIER[spec.library] else "1.0"

    def build(self, spec: ArchSpec) -> nn.Module:
        from torch import nn
        if spec.library == "timm":
            from timm.models.vgg import VGG
            return VGG(_vgg_cfg(spec.stages, True), num_classes=spec.num_classes,
                       norm_layer=nn.BatchNorm2d if spec.block == "conv_bn" else None)
        from torchvision.models.vgg import VGG as TVVGG, make_layers
        return TVVGG(make_layers(_vgg_cfg(spec.stages, True), batch_norm=spec.block == "conv_bn"),
                     num_classes=spec.num_classes)

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        cls = "timm.models.vgg.VGG" if spec.library == "timm" else "torchvision.models.vgg.VGG"
        return {"class": cls, "cfg": _vgg_cfg(spec.stages, True), "batch_norm": spec.block == "conv_bn"}


class CifarVGGFamily(_VGGBase):
    """The CIFAR VGGs of the lottery-ticket literature: ``cifar_vgg11/13/16/19`` (always with BN)."""

    name = "cifar_vgg"
    prefix = "cifar_vgg"
    libraries = ("builtin",)
    default_classes = 10
    input_size = (3, 32, 32)
    pool_last = False

    def _block(self, bn: bool) -> str:
        return "conv_bn"

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        for depth, s in VGG_NAMED.items():
            if s == stages:
                return f"cifar_vgg{depth}"
        return "cifar_vgg-" + "-".join(map(str, stages))

    def named_ids(self) -> tuple[str, ...]:
        return tuple(f"cifar_vgg{d}" for d in VGG_NAMED)

    def build(self, spec: ArchSpec) -> nn.Module:
        from ticketfmt.models import CifarVGG
        return CifarVGG(spec.stages, num_classes=spec.num_classes)

    def library_init(self, spec: ArchSpec, model: nn.Module) -> None:
        model.library_init()  # type: ignore[operator]

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": "ticketfmt.models.CifarVGG", "convs": list(spec.stages)}


register_family(VGGFamily())
register_family(CifarVGGFamily())
