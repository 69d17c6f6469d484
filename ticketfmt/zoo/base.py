"""The model zoo: architectures as data, with stable ids, buildable by name.

An architecture is an :class:`ArchSpec`: a family, a block type and a tuple of units per
stage (residual blocks for ResNets, conv layers for VGGs). Each family owns its name
grammar (``cifar_resnet56``, ``timm/resnet50``, ``torchvision/resnet_basic-2-3-4-3``,
``vgg16_bn``, ``cifar_vgg19``) and knows which parameters are prunable and which
state-dict keys belong to each unit, which is all the converters need. Importing this
module does not import torch; building a model does.

Example:
    >>> from ticketfmt.zoo import get_arch
    >>> spec = get_arch("cifar_resnet56")
    >>> spec.family, spec.block, spec.stages
    ('cifar_resnet', 'basic', (9, 9, 9))
    >>> get_arch("resnet50").id, get_arch("torchvision/resnet50").library
    ('timm/resnet50', 'torchvision')
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import UnknownArchError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ArchSpec", "spec_from_json", "iter_units", "Family", "FAMILIES", "get_arch", "list_archs", "build_model", "register_family",
           "state_dict_shapes", "prunable_names"]

LIBRARIES = ("builtin", "timm", "torchvision")


@dataclass(frozen=True)
class ArchSpec:
    """An architecture: everything needed to build it and to map tickets between depths.

    ``stages[s]`` is the number of units in stage ``s``: residual blocks for ResNets,
    conv layers (with their BatchNorm) for VGGs. Unit 0 of a stage is the one that
    downsamples or changes the width.
    """

    id: str
    library: str
    family: str
    block: str
    stages: tuple[int, ...]
    num_classes: int
    input_size: tuple[int, int, int]

    @property
    def name(self) -> str:
        """The id without its library prefix (``resnet50`` for ``timm/resnet50``)."""
        return self.id.split("/", 1)[-1]

    @property
    def depth(self) -> int:
        return _family(self.family).depth(self)

    @property
    def family_obj(self) -> Family:
        return _family(self.family)

    def with_num_classes(self, num_classes: int) -> ArchSpec:
        return replace(self, num_classes=num_classes)

    def unit_prefixes(self, stage: int, index: int) -> tuple[str, ...]:
        """State-dict key prefixes (ending in '.') of unit ``index`` of stage ``stage``."""
        return _family(self.family).unit_prefixes(self, stage, index)

    def stage_of(self, key: str) -> str:
        """``stem``, ``stage1`` .. ``stageN`` or ``head``: where a state-dict key lives."""
        return _family(self.family).stage_of(self, key)

    def to_json(self) -> dict[str, Any]:
        """The ``arch`` metadata of a ticket."""
        return {"id": self.id, "library": self.library, "family": self.family, "block": self.block,
                "stages": list(self.stages), "num_classes": self.num_classes, "input_size": list(self.input_size),
                "constructor": _family(self.family).constructor(self)}


class Family:
    """A family of architectures: its name grammar, its builder and its unit layout."""

    name: str = ""
    libraries: tuple[str, ...] = ()
    default_library: str = "builtin"

    def parse(self, name: str, library: str) -> ArchSpec | None:  # pragma: no cover - interface
        raise NotImplementedError

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def make(self, library: str, block: str, stages: tuple[int, ...], num_classes: int | None = None) -> ArchSpec:
        lib = library if library != "builtin" else self.default_library
        name = self.canonical_name(block, stages)
        arch_id = name if lib == "builtin" else f"{lib}/{name}"
        return ArchSpec(arch_id, lib, self.name, block, stages, num_classes or self.default_classes,
                        self.input_size)

    default_classes = 1000
    input_size = (3, 224, 224)

    def depth(self, spec: ArchSpec) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def build(self, spec: ArchSpec) -> nn.Module:  # pragma: no cover - interface
        raise NotImplementedError

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def is_prunable(self, spec: ArchSpec, module_name: str, module: nn.Module) -> bool:
        from torch import nn
        return isinstance(module, nn.Conv2d | nn.Linear)

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        return (f"layer{stage + 1}.{index}.",)

    def stage_of(self, spec: ArchSpec, key: str) -> str:
        m = re.match(r"layer(\d+)\.", key)
        if m:
            return f"stage{m.group(1)}"
        return "head" if key.startswith(("fc.", "classifier.", "head.", "pre_logits.")) else "stem"


def _counts(text: str) -> tuple[int, ...] | None:
    if not re.fullmatch(r"\d+(-\d+)*", text):
        return None
    counts = tuple(int(c) for c in text.split("-"))
    return counts if all(c > 0 for c in counts) else None


class CifarResNetFamily(Family):
    """``cifar_resnetN`` (N = 6n+2) or ``cifar_resnet-a-b-c`` (blocks per stage)."""

    name = "cifar_resnet"
    libraries = ("builtin",)
    default_classes = 10
    input_size = (3, 32, 32)

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
            stages = _counts(m.group(2)) or ()
            if len(stages) != 3:
                raise UnknownArchError(f"{name!r}: a CIFAR ResNet has 3 stages",
                                       fix="write the blocks per stage as cifar_resnet-3-3-3")
        return self.make(library, "basic", stages)

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        if len(set(stages)) == 1 and len(stages) == 3:
            return f"cifar_resnet{6 * stages[0] + 2}"
        return "cifar_resnet-" + "-".join(map(str, stages))

    def depth(self, spec: ArchSpec) -> int:
        return 2 * sum(spec.stages) + 2

    def build(self, spec: ArchSpec) -> nn.Module:
        from ticketfmt.models import CifarResNet
        return CifarResNet(spec.stages, num_classes=spec.num_classes)

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
        stages = _counts(m.group(2)) or ()
        if len(stages) != 4:
            raise UnknownArchError(f"{name!r}: an ImageNet ResNet has 4 stages",
                                   fix=f"write the blocks per stage as resnet_{m.group(1)}-2-3-4-3")
        return self.make(library, m.group(1), stages)

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        for depth, (b, s) in RESNET_NAMED.items():
            if (b, s) == (block, stages):
                return f"resnet{depth}"
        return f"resnet_{block}-" + "-".join(map(str, stages))

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

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        cls = "timm.models.resnet.ResNet" if spec.library == "timm" else "torchvision.models.resnet.ResNet"
        block = "BasicBlock" if spec.block == "basic" else "Bottleneck"
        return {"class": cls, "block": block, "layers": list(spec.stages)}


VGG_NAMED: dict[int, tuple[int, ...]] = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3),
                                         19: (2, 2, 4, 4, 4)}


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
        stages = _counts(m.group(2)) or ()
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

    pool_last = True

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
        # The paper leaves the VGG classifier dense: only the feature convs are pruned.
        from torch import nn
        return module_name.startswith("features.") and isinstance(module, nn.Conv2d)


class VGGFamily(_VGGBase):
    """ImageNet VGGs of timm and torchvision: ``vgg16``, ``vgg16_bn``, ``vgg_bn-2-2-3-3-3``."""

    name = "vgg"
    libraries = ("timm", "torchvision")
    default_library = "timm"

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

    def build(self, spec: ArchSpec) -> nn.Module:
        from ticketfmt.models import CifarVGG
        return CifarVGG(spec.stages, num_classes=spec.num_classes)

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:
        return {"class": "ticketfmt.models.CifarVGG", "convs": list(spec.stages)}


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add a family to the zoo (its name grammar is tried by :func:`get_arch`)."""
    FAMILIES[family.name] = family
    return family


for _f in (CifarResNetFamily(), ResNetFamily(), VGGFamily(), CifarVGGFamily()):
    register_family(_f)


def _family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownArchError(f"unknown architecture family {name!r}",
                               fix=f"known families: {', '.join(FAMILIES)}") from None


@functools.lru_cache(maxsize=256)
def _parse(arch: str) -> ArchSpec:
    text = arch.strip()
    library, sep, name = text.partition("/")
    if not sep:
        library, name = "builtin", text
    elif library not in LIBRARIES:
        raise UnknownArchError(f"unknown library {library!r} in {arch!r}",
                               fix=f"write the id as NAME or LIBRARY/NAME with LIBRARY one of {', '.join(LIBRARIES)}")
    for family in FAMILIES.values():
        spec = family.parse(name, library)
        if spec is None:
            continue
        if library != "builtin" and library not in family.libraries:
            raise UnknownArchError(f"{name!r} is not available from {library}",
                                   fix=f"use {family.make('builtin', spec.block, spec.stages).id}")
        return spec
    raise UnknownArchError(f"unknown architecture {arch!r}",
                           fix="run `ticket models` to list the zoo (e.g. cifar_resnet20, resnet50, "
                               "torchvision/vgg16_bn, cifar_vgg16)")


def get_arch(arch: str | ArchSpec, num_classes: int | None = None) -> ArchSpec:
    """Resolve an architecture id (or pass an :class:`ArchSpec` through), optionally with ``num_classes``."""
    spec = arch if isinstance(arch, ArchSpec) else _parse(arch)
    if num_classes is not None:
        if num_classes < 1:
            raise UnknownArchError(f"num_classes must be at least 1, got {num_classes}", fix="pass --num-classes N")
        spec = spec.with_num_classes(num_classes)
    return spec


def spec_from_json(arch: dict[str, Any]) -> ArchSpec:
    """The :class:`ArchSpec` recorded in a ticket's ``arch`` metadata."""
    spec = get_arch(str(arch["id"]))
    num_classes = arch.get("num_classes", spec.num_classes)
    if type(num_classes) is not int or not 1 <= num_classes <= 1_000_000:
        raise UnknownArchError(f"arch num_classes {num_classes!r} is not an integer in [1, 1000000]",
                               fix="repair the ticket's metadata")
    return spec.with_num_classes(num_classes)


def list_archs() -> list[ArchSpec]:
    """The named architectures of the zoo, for ``ticket models`` and parametrized tests."""
    names = [f"cifar_resnet{d}" for d in (20, 32, 44, 56, 110)]
    names += [f"{lib}/resnet{d}" for lib in ("timm", "torchvision") for d in (18, 34, 50, 101, 152)]
    names += ["timm/resnet_basic-2-3-4-3"]
    names += [f"{lib}/vgg{d}{bn}" for lib in ("timm", "torchvision") for d in VGG_NAMED for bn in ("", "_bn")]
    names += [f"cifar_vgg{d}" for d in VGG_NAMED]
    return [get_arch(n) for n in names]


def build_model(arch: str | ArchSpec, num_classes: int | None = None, seed: int | None = None) -> nn.Module:
    """Build the architecture as a real ``nn.Module`` (timm, torchvision or builtin), freshly initialized.

    Example:
        >>> model = build_model("cifar_resnet20", num_classes=10, seed=0)
        >>> sum(p.numel() for p in model.parameters())
        272474
    """
    import torch
    spec = get_arch(arch, num_classes)
    if seed is None:
        return _family(spec.family).build(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _family(spec.family).build(spec)


def prunable_names(spec: ArchSpec, model: nn.Module | None = None) -> list[str]:
    """State-dict names of the prunable weights, in module order."""
    return list(_layout(spec).prunable) if model is None else _prunable_of(spec, model)


def _prunable_of(spec: ArchSpec, model: nn.Module) -> list[str]:
    fam = _family(spec.family)
    return [f"{name}.weight" for name, m in model.named_modules() if name and fam.is_prunable(spec, name, m)]


@dataclass(frozen=True)
class _Layout:
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    prunable: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _layout(spec: ArchSpec) -> _Layout:
    import torch
    # Built on the meta device: shapes without allocating or initializing anything.
    with torch.device("meta"):
        model = _family(spec.family).build(spec)
    sd = model.state_dict()
    return _Layout({k: tuple(v.shape) for k, v in sd.items()}, {k: str(v.dtype) for k, v in sd.items()},
                   tuple(_prunable_of(spec, model)))


def state_dict_shapes(spec: ArchSpec) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of the architecture and its shape (computed on the meta device)."""
    return dict(_layout(spec).shapes)


def iter_units(spec: ArchSpec) -> Iterator[tuple[int, int, tuple[str, ...]]]:
    """Yield ``(stage, index, prefixes)`` for every unit of the architecture."""
    for s, n in enumerate(spec.stages):
        for j in range(n):
            yield s, j, spec.unit_prefixes(s, j)


StageCallback = Callable[[str], None]
