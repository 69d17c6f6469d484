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

import bisect
import functools
import re
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo.base import ArchSpec, Family, parse_counts
from ticketfmt.zoo.infer import library_of, out_features
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


@functools.lru_cache(maxsize=256)
def _stage_starts(block: str, stages: tuple[int, ...], pool_last: bool) -> tuple[int, ...]:
    """The ``features`` index of each stage's first conv (a max-pool follows every stage but, maybe, the last)."""
    per_conv = 3 if block == "conv_bn" else 2
    starts, i = [], 0
    for s, n in enumerate(stages):
        starts.append(i)
        i += n * per_conv + (1 if (pool_last or s < len(stages) - 1) else 0)
    return tuple(starts)


def _vgg_cfg(stages: tuple[int, ...], pool_last: bool) -> list[int | str]:
    from ticketfmt.zoo.shapes import VGG_WIDTHS  # torch-free: file metadata (arch.constructor) needs it
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
    max_units = 16  # VGG-19 has 4 convs per stage
    unit_word = "convs"

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
        return [list(range(start, start + n * per_conv, per_conv))
                for start, n in zip(_stage_starts(spec.block, spec.stages, self.pool_last), spec.stages)]

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        # Arithmetic, not a lookup table: one unit's prefixes cost the same at any depth.
        per_conv = 3 if spec.block == "conv_bn" else 2
        i = _stage_starts(spec.block, spec.stages, self.pool_last)[stage] + index * per_conv
        return (f"features.{i}.", f"features.{i + 1}.") if spec.block == "conv_bn" else (f"features.{i}.",)

    def stage_of(self, spec: ArchSpec, key: str) -> str:
        m = re.match(r"features\.(\d{1,9})\.", key)
        if not m:
            return "head"
        # A binary search over the stages' first indices (cached per spec): linear over a file's layers.
        i, starts = int(m.group(1)), _stage_starts(spec.block, spec.stages, self.pool_last)
        s = bisect.bisect_right(starts, i) - 1
        per_conv = 3 if spec.block == "conv_bn" else 2
        # A conv and its BN (index + 1) belong to the stage; the pool after the last conv does not.
        return f"stage{s + 1}" if s >= 0 and i <= starts[s] + (spec.stages[s] - 1) * per_conv + 1 else "head"

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

    def infer(self, model: nn.Module) -> ArchSpec | None:
        library = library_of(model)
        if library not in self.libraries or type(model).__name__ != "VGG":
            return None
        return _read_vgg(self, model, library)

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

    def infer(self, model: nn.Module) -> ArchSpec | None:
        if library_of(model) != "builtin" or type(model).__name__ != "CifarVGG":
            return None
        return _read_vgg(self, model, "builtin")

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": "ticketfmt.models.CifarVGG", "convs": list(spec.stages)}


def _read_vgg(family: Family, model: nn.Module, library: str) -> ArchSpec | None:
    """Convs per stage (split at the max-pools of ``features``), BatchNorm or not, and classes of a built VGG."""
    from torch import nn

    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        return None
    stages, bn = [0], False
    for layer in features:
        if isinstance(layer, nn.MaxPool2d):
            stages.append(0)
        stages[-1] += isinstance(layer, nn.Conv2d)
        bn = bn or isinstance(layer, nn.BatchNorm2d)
    if stages[-1] == 0:  # the ImageNet VGGs pool after the last stage too
        stages.pop()
    try:
        head = model.get_submodule(OUTPUT_LAYER[library])
    except AttributeError:
        return None
    return family.make(library, "conv_bn" if bn else "conv", tuple(stages), out_features(head))


register_family(VGGFamily())
register_family(CifarVGGFamily())
