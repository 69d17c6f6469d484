"""The ResNet families: the CIFAR ResNets (builtin) and the ImageNet ResNets of timm and torchvision.

Units are residual blocks (``layerS.J.``); every Conv2d and Linear weight is prunable, the
``fc`` output layer included, as in the reference.

Example:
    >>> from ticketfmt.zoo import get_arch
    >>> get_arch("cifar_resnet56").stages, get_arch("resnet_basic-2-3-4-3").id
    ((9, 9, 9), 'timm/resnet_basic-2-3-4-3')
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError
from ticketfmt.zoo.base import ArchSpec, Family, parse_counts
from ticketfmt.zoo.infer import library_of, out_features
from ticketfmt.zoo.registry import register_family

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CifarResNetFamily", "ResNetFamily", "RESNET_NAMED"]


class CifarResNetFamily(Family):
    """``cifar_resnetN`` (N = 6n+2) or ``cifar_resnet-a-b-c`` (blocks per stage)."""

    name = "cifar_resnet"
    libraries = ("builtin",)
    default_classes = 10
    input_size = (3, 32, 32)
    max_units = 256  # cifar_resnet1202 (200 per stage) is the deepest of the literature
    unit_word = "blocks"

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = re.fullmatch(r"cifar_resnet(?:(\d+)|-(.+))", name)
        if not m:
            return None
        if m.group(1):
            depth = int(m.group(1))
            if depth < 8 or (depth - 2) % 6:
                raise UnknownArchError(f"CIFAR ResNet depth {depth} is impossible: the depth must be 6n+2 with n >= 1",
                                       fix=f"use {_near_6n2(depth)} (cifar_resnet20, 32, 44, 56, 110, ...)")
            n = (depth - 2) // 6
            stages = (n, n, n)
        else:
            stages = parse_counts(m.group(2)) or ()
            if len(stages) != 3:
                raise UnknownArchError(f"{name!r}: a CIFAR ResNet has 3 stages",
                                       fix="write the blocks per stage as cifar_resnet-3-3-3")
        return self.make(library, "basic", stages)

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        if len(set(stages)) == 1 and len(stages) == 3:
            return f"cifar_resnet{6 * stages[0] + 2}"
        return "cifar_resnet-" + "-".join(map(str, stages))

    def named_ids(self) -> tuple[str, ...]:
        return tuple(f"cifar_resnet{d}" for d in (20, 32, 44, 56, 110))

    def depth(self, spec: ArchSpec) -> int:
        return 2 * sum(spec.stages) + 2

    def build(self, spec: ArchSpec) -> nn.Module:
        from ticketfmt.models import CifarResNet
        return CifarResNet(spec.stages, num_classes=spec.num_classes)

    def library_init(self, spec: ArchSpec, model: nn.Module) -> None:
        model.library_init()  # type: ignore[operator]

    def infer(self, model: nn.Module) -> ArchSpec | None:
        if library_of(model) != "builtin" or type(model).__name__ != "CifarResNet":
            return None
        return _read_resnet(self, model, "builtin")

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": "ticketfmt.models.CifarResNet", "blocks": list(spec.stages)}


def _near_6n2(depth: int) -> str:
    lo = max(8, depth - (depth - 2) % 6)
    return f"cifar_resnet{lo} or cifar_resnet{lo + 6}"


RESNET_NAMED: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)), 26: ("bottleneck", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}


class ResNetFamily(Family):
    """ImageNet ResNets of timm and torchvision: ``resnet50`` or ``resnet_basic-2-3-4-3`` (the paper's ResNet-26)."""

    name = "resnet"
    libraries = ("timm", "torchvision")
    default_library = "timm"
    max_units = 64  # resnet200 has 36 in its third stage
    unit_word = "blocks"

    def parse(self, name: str, library: str) -> ArchSpec | None:
        m = re.fullmatch(r"resnet(\d+)", name)
        if m:
            depth = int(m.group(1))
            if depth not in RESNET_NAMED:
                known = ", ".join(f"resnet{d}" for d in RESNET_NAMED)
                raise UnknownArchError(f"unknown ResNet depth {depth}",
                                       fix=f"use one of {known}, or give the blocks per stage as resnet_basic-2-3-4-3 "
                                           "or resnet_bottleneck-3-4-6-3")
            block, stages = RESNET_NAMED[depth]
            return self.make(library, block, stages)
        m = re.fullmatch(r"resnet_(basic|bottleneck)-(.+)", name)
        if not m:
            return None
        stages = parse_counts(m.group(2)) or ()
        if len(stages) != 4:
            raise UnknownArchError(f"{name!r}: an ImageNet ResNet has 4 stages",
                                   fix=f"write the blocks per stage as resnet_{m.group(1)}-2-3-4-3")
        return self.make(library, m.group(1), stages)

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        for depth, (b, s) in RESNET_NAMED.items():
            if (b, s) == (block, stages):
                return f"resnet{depth}"
        return f"resnet_{block}-" + "-".join(map(str, stages))

    def named_ids(self) -> tuple[str, ...]:
        ids = tuple(f"{lib}/resnet{d}" for lib in ("timm", "torchvision") for d in (18, 34, 50, 101, 152))
        return ids + ("timm/resnet_basic-2-3-4-3",)

    def depth(self, spec: ArchSpec) -> int:
        return (2 if spec.block == "basic" else 3) * sum(spec.stages) + 2

    def build(self, spec: ArchSpec) -> nn.Module:
        if spec.library == "timm":
            from timm.models import resnet as tr
            block = tr.BasicBlock if spec.block == "basic" else tr.Bottleneck
            return tr.ResNet(block=block, layers=list(spec.stages), num_classes=spec.num_classes)
        from torchvision.models import resnet as vr
        block = vr.BasicBlock if spec.block == "basic" else vr.Bottleneck
        return vr.ResNet(block, list(spec.stages), num_classes=spec.num_classes)

    def infer(self, model: nn.Module) -> ArchSpec | None:
        library = library_of(model)
        if library not in self.libraries or type(model).__name__ != "ResNet":
            return None
        return _read_resnet(self, model, library)

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        cls = "timm.models.resnet.ResNet" if spec.library == "timm" else "torchvision.models.resnet.ResNet"
        block = "BasicBlock" if spec.block == "basic" else "Bottleneck"
        return {"class": cls, "block": block, "layers": list(spec.stages)}


def _read_resnet(family: Family, model: nn.Module, library: str) -> ArchSpec | None:
    """Blocks per stage (``layer1``, ``layer2``, ...), block type and classes of a built ResNet."""
    stages = []
    while hasattr(model, f"layer{len(stages) + 1}"):
        stages.append(len(getattr(model, f"layer{len(stages) + 1}")))
    kinds = {"BasicBlock": "basic", "Bottleneck": "bottleneck"}
    block = kinds.get(type(model.layer1[0]).__name__) if stages and stages[0] else None
    if block is None:
        return None
    return family.make(library, block, tuple(stages), out_features(getattr(model, "fc", None)))


register_family(CifarResNetFamily())
register_family(ResNetFamily())
