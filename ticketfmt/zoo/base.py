"""The zoo's core: architectures as data (:class:`ArchSpec`), the :class:`Family` interface, and lookups.

An architecture is an :class:`ArchSpec`: a family, a block type and a tuple of units per
stage (residual blocks for ResNets, conv layers for VGGs). Each family (one module per
family: :mod:`ticketfmt.zoo.resnet`, :mod:`ticketfmt.zoo.vgg`) owns its name grammar
(``cifar_resnet56``, ``timm/resnet50``, ``torchvision/resnet_basic-2-3-4-3``, ``vgg16_bn``,
``cifar_vgg19``) and knows which parameters are prunable and which state-dict keys belong to
each unit, which is all the converters need. Importing the zoo does not import torch;
building a model does.

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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from ticketfmt.errors import UnknownArchError
from ticketfmt.format.spec import FORMAT_VERSION, VERSIONS, version_tuple
from ticketfmt.zoo.shapes import TORCH_DTYPE_NAMES, layout as shape_table
from ticketfmt.zoo.names import did_you_mean, normalize, unknown_arch_fix  # imports only the registry
from ticketfmt.zoo.initializers import check_init, reference_init
from ticketfmt.zoo.registry import FAMILIES, get_family, watch_families

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ArchSpec", "Family", "LIBRARIES", "get_arch", "spec_from_json", "list_archs", "build_model",
           "prunable_names", "format_version_for", "state_dict_shapes", "state_dict_dtypes", "in_state_dict_order",
           "iter_units", "parse_counts"]

LIBRARIES = ("builtin", "timm", "torchvision")
V = TypeVar("V")


@dataclass(frozen=True)
class ArchSpec:
    """An architecture: everything needed to build it and to map tickets between depths.

    ``stages[s]`` is the number of units in stage ``s``: residual blocks for ResNets,
    conv layers (with their BatchNorm) for VGGs. Unit 0 of a stage is the one that
    downsamples or changes the width.

    Example:
        >>> get_arch("cifar_resnet20").unit_prefixes(1, 0)
        ('layer2.0.',)
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
        return get_family(self.family).depth(self)

    @property
    def family_obj(self) -> Family:
        return get_family(self.family)

    def with_num_classes(self, num_classes: int) -> ArchSpec:
        return replace(self, num_classes=num_classes)

    def unit_prefixes(self, stage: int, index: int) -> tuple[str, ...]:
        """State-dict key prefixes (ending in '.') of unit ``index`` of stage ``stage``."""
        return get_family(self.family).unit_prefixes(self, stage, index)

    def stage_of(self, key: str) -> str:
        """``stem``, ``stage1`` .. ``stageN`` or ``head``: where a state-dict key lives."""
        return get_family(self.family).stage_of(self, key)

    def to_json(self) -> dict[str, Any]:
        """The ``arch`` metadata of a ticket."""
        return {"id": self.id, "library": self.library, "family": self.family, "block": self.block,
                "stages": list(self.stages), "num_classes": self.num_classes, "input_size": list(self.input_size),
                "constructor": get_family(self.family).constructor(self)}


class Family:
    """A family of architectures: its name grammar, its builder and its unit layout.

    A new family subclasses this, implements the methods marked "interface", and registers
    an instance with :func:`ticketfmt.zoo.register_family` when its module is imported.

    Example:
        >>> get_arch("vgg16").family_obj.name
        'vgg'
    """

    name: str = ""
    libraries: tuple[str, ...] = ()
    default_library: str = "builtin"
    default_classes = 1000
    input_size = (3, 224, 224)
    max_units = 64
    """The most units a stage may have (ids asking for more are refused before anything is built)."""
    unit_word = "units"

    def parse(self, name: str, library: str) -> ArchSpec | None:  # pragma: no cover - interface
        """The spec named ``name`` (library prefix removed), None when the name is not of this family."""
        raise NotImplementedError

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def depth(self, spec: ArchSpec) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def build(self, spec: ArchSpec) -> nn.Module:  # pragma: no cover - interface
        """The module, as its library constructs it (timm and torchvision run their own init here)."""
        raise NotImplementedError

    def constructor(self, spec: ArchSpec) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def named_ids(self) -> tuple[str, ...]:
        """Ids of the family's named architectures, for ``ticket models`` (:func:`list_archs`)."""
        return ()

    def infer(self, model: nn.Module) -> ArchSpec | None:
        """The spec of a model of this family as its library builds it (read off its class and layers), else None.

        Used by :func:`ticketfmt.zoo.infer.infer_arch` (``Ticket.from_model(model)``), which then
        checks every state-dict shape against the spec; a family that cannot tell returns None.
        """
        return None

    def library_init(self, spec: ArchSpec, model: nn.Module) -> None:
        """The library's own initialization, when :meth:`build` does not run it (``init="library"``).

        timm and torchvision initialize in their constructors: nothing to do. Builtin modules
        are constructed with PyTorch's defaults, so the reference initializer sees the same
        random stream as the reference's own models; their historic init runs here.
        """

    def is_prunable(self, spec: ArchSpec, module_name: str, module: nn.Module) -> bool:
        """Whether the weight of ``module`` is pruned (the reference: every Conv2d and Linear)."""
        from torch import nn
        return isinstance(module, nn.Conv2d | nn.Linear)

    def prunable_since(self, spec: ArchSpec, weight: str) -> str:
        """The format version from which the prunable weight ``weight`` is masked ("1.0": always)."""
        return VERSIONS[0]

    def make(self, library: str, block: str, stages: tuple[int, ...], num_classes: int | None = None) -> ArchSpec:
        self.check_units(stages)
        lib = library if library != "builtin" else self.default_library
        name = self.canonical_name(block, stages)
        arch_id = name if lib == "builtin" else f"{lib}/{name}"
        return ArchSpec(arch_id, lib, self.name, block, stages, num_classes or self.default_classes,
                        self.input_size)

    def check_units(self, stages: tuple[int, ...]) -> None:
        """Refuse a stage of more than :attr:`max_units` units: the size of what gets built stays sane."""
        for s, n in enumerate(stages):
            if n > self.max_units:
                raise UnknownArchError(f"{self.name}-{'-'.join(map(str, stages[:8]))}: stage {s + 1} has {n:,} "
                                       f"{self.unit_word}, over the "
                                       f"{self.max_units} a stage may have",
                                       fix=f"use at most {self.max_units} {self.unit_word} per stage")

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        return (f"layer{stage + 1}.{index}.",)

    def stage_of(self, spec: ArchSpec, key: str) -> str:
        m = re.match(r"layer(\d+)\.", key)
        if m:
            return f"stage{m.group(1)}"
        return "head" if key.startswith(("fc.", "classifier.", "head.", "pre_logits.")) else "stem"


def parse_counts(text: str) -> tuple[int, ...] | None:
    """``"2-3-4-3"`` → ``(2, 3, 4, 3)``: units per stage as written in ids; None if malformed.

    Example:
        >>> parse_counts("2-3-4-3"), parse_counts("2-0")
        ((2, 3, 4, 3), None)
    """
    if not re.fullmatch(r"\d+(-\d+)*", text):
        return None
    counts = tuple(int(c) for c in text.split("-"))
    return counts if all(c > 0 for c in counts) else None


MAX_ARCH_ID_CHARS = 256
MAX_NUM_CLASSES = 1_000_000
_BIG_NUMBER = re.compile(r"\d{7,}")


def _check_id_size(arch: str) -> None:
    """An id too long, or with a number too large for any depth or unit count, is refused before it is parsed."""
    if len(arch) > MAX_ARCH_ID_CHARS:
        raise UnknownArchError(f"architecture id of {len(arch):,} characters (at most {MAX_ARCH_ID_CHARS})",
                               fix="run `ticket models` to list the zoo")
    big = _BIG_NUMBER.search(arch)
    if big:
        number = big.group() if len(big.group()) <= 12 else big.group()[:9] + "..."
        raise UnknownArchError(f"architecture id {arch[:60]!r}: {number} is too large for a depth or a unit count",
                               fix="depths and units per stage have at most 6 digits (see `ticket models`)")


@functools.lru_cache(maxsize=256)
def _parse(arch: str) -> ArchSpec:
    _check_id_size(arch)
    text = normalize(arch)  # the obvious aliases: ResNet50, resnet-50, VGG16-BN
    library, sep, name = text.partition("/")
    if not sep:
        library, name = "builtin", text
    elif library not in LIBRARIES:
        close = did_you_mean(library, LIBRARIES[1:], n=1)
        hint = f"did you mean {close[0]}/{name}? " if close else ""
        raise UnknownArchError(f"unknown library {library!r} in {arch!r}",
                               fix=f"{hint}write the id as NAME or LIBRARY/NAME with LIBRARY one of "
                                   f"{', '.join(LIBRARIES)}")
    for family in FAMILIES.values():
        spec = family.parse(name, library)
        if spec is None:
            continue
        if library != "builtin" and library not in family.libraries:
            raise UnknownArchError(f"{name!r} is not available from {library}",
                                   fix=f"use {family.make('builtin', spec.block, spec.stages).id}")
        return spec
    raise UnknownArchError(f"unknown architecture {arch!r}", fix=unknown_arch_fix(text))


watch_families(_parse.cache_clear)  # an unregistered (or replaced) family's ids must stop resolving


def get_arch(arch: str | ArchSpec, num_classes: int | None = None) -> ArchSpec:
    """Resolve an architecture id (or pass an :class:`ArchSpec` through), optionally with ``num_classes``.

    Example:
        >>> get_arch("cifar_resnet20", num_classes=100).num_classes
        100
    """
    spec = arch if isinstance(arch, ArchSpec) else _parse(arch)
    if num_classes is not None:
        if type(num_classes) is not int or not 1 <= num_classes <= MAX_NUM_CLASSES:
            raise UnknownArchError(f"num_classes must be an integer in [1, {MAX_NUM_CLASSES}], got {num_classes!r}",
                                   fix="pass --num-classes N")
        spec = spec.with_num_classes(num_classes)
    return spec


def spec_from_json(arch: dict[str, Any]) -> ArchSpec:
    """The :class:`ArchSpec` recorded in a ticket's ``arch`` metadata.

    Example:
        >>> spec_from_json({"id": "cifar_resnet20", "num_classes": 100}).num_classes
        100
    """
    spec = get_arch(str(arch["id"]))
    num_classes = arch.get("num_classes", spec.num_classes)
    if type(num_classes) is not int or not 1 <= num_classes <= MAX_NUM_CLASSES:
        raise UnknownArchError(f"arch num_classes {num_classes!r} is not an integer in [1, {MAX_NUM_CLASSES}]",
                               fix="repair the ticket's metadata")
    return spec.with_num_classes(num_classes)


def list_archs() -> list[ArchSpec]:
    """The named architectures of the zoo, family by family, for ``ticket models`` and parametrized tests.

    Example:
        >>> list_archs()[0].id
        'cifar_resnet20'
    """
    return [get_arch(n) for family in FAMILIES.values() for n in family.named_ids()]


def build_model(arch: str | ArchSpec, num_classes: int | None = None, seed: int | None = None,
                init: str = "reference") -> nn.Module:
    """Build the architecture as a real ``nn.Module`` (timm, torchvision or builtin), freshly initialized.

    ``init="reference"`` (the default) is the reference implementation's (open_lth's
    ``kaiming_normal`` model init with its ``uniform`` BatchNorm init), applied over what the
    library's constructor did: every Conv2d and Linear weight ~ N(0, 2 / fan_in), every
    BatchNorm2d γ ~ U(0, 1) and β = 0, biases left as constructed. ``init="library"`` departs
    from it: the library's own init (timm's, torchvision's, or the builtin modules' historic
    one). The initializer only matters for new models: a ticket's own weights always win.

    Example:
        >>> model = build_model("cifar_resnet20", num_classes=10, seed=0)
        >>> sum(p.numel() for p in model.parameters())
        272474
        >>> gamma = model.bn1.weight.detach()  # BatchNorm γ ~ U(0, 1)
        >>> float(gamma.min()) >= 0 and float(gamma.max()) < 1
        True
    """
    import torch
    check_init(init)
    spec = get_arch(arch, num_classes)
    family = get_family(spec.family)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = family.build(spec)
        if init == "library":
            family.library_init(spec, model)
        else:
            reference_init(model)
    return model


def prunable_names(spec: ArchSpec, model: nn.Module | None = None, *, version: str | None = None) -> list[str]:
    """State-dict names of the prunable weights, in module order.

    ``version`` (a format version, default the current one) selects the rule of that version:
    format 1.0 left the hidden classifier layers of timm/torchvision VGGs dense.

    Example:
        >>> prunable_names(get_arch("vgg11"))[-2:]
        ['pre_logits.fc1.weight', 'pre_logits.fc2.weight']
        >>> prunable_names(get_arch("vgg11"), version="1.0")[-1]
        'features.18.weight'
    """
    names = list(_layout(spec).prunable) if model is None else _prunable_of(spec, model)
    if version is None:
        return names
    family, v = get_family(spec.family), version_tuple(version)
    return [n for n in names if version_tuple(family.prunable_since(spec, n)) <= v]


def format_version_for(spec: ArchSpec, masked: Iterable[str]) -> str:
    """The lowest format version whose prunable set of ``spec`` is exactly ``masked`` (else the current one).

    Writers record it as the file's ``format_version``, so a file readable by an older
    reader says so; readers check a file's masks against the rule of its version.

    Example:
        >>> format_version_for(get_arch("cifar_resnet8"), prunable_names(get_arch("cifar_resnet8")))
        '1.0'
        >>> format_version_for(get_arch("vgg11"), prunable_names(get_arch("vgg11")))
        '1.1'
    """
    names = set(masked)
    for version in VERSIONS:
        if set(prunable_names(spec, version=version)) == names:
            return version
    return FORMAT_VERSION


def _prunable_of(spec: ArchSpec, model: nn.Module) -> list[str]:
    family = get_family(spec.family)
    return [f"{name}.weight" for name, m in model.named_modules() if name and family.is_prunable(spec, name, m)]


@dataclass(frozen=True)
class _Layout:
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    prunable: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _layout(spec: ArchSpec) -> _Layout:
    table = shape_table(spec)  # the built-in families: computed from the spec, without torch
    if table is None:
        return _meta_layout(spec)
    return _Layout({t.name: t.shape for t in table}, {t.name: t.dtype for t in table},
                   tuple(t.name for t in table if t.prunable))


watch_families(_layout.cache_clear)  # a layout built from a family that was since replaced is stale


def _meta_layout(spec: ArchSpec) -> _Layout:
    """A family :mod:`.shapes` does not describe: built on the meta device (nothing allocated or initialized)."""
    import torch
    with torch.device("meta"):
        model = get_family(spec.family).build(spec)
    sd = model.state_dict()
    return _Layout({k: tuple(v.shape) for k, v in sd.items()},
                   {k: TORCH_DTYPE_NAMES.get(str(v.dtype), str(v.dtype)) for k, v in sd.items()},
                   tuple(_prunable_of(spec, model)))


def state_dict_shapes(spec: ArchSpec) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of the architecture and its shape, in ``state_dict()`` order (no torch needed).

    Example:
        >>> state_dict_shapes(get_arch("cifar_resnet20"))["fc.weight"]
        (10, 64)
    """
    return dict(_layout(spec).shapes)


def in_state_dict_order(spec: ArchSpec, items: Mapping[str, V]) -> dict[str, V]:
    """``items`` keyed by state-dict names, in the architecture's ``state_dict()`` order (no torch needed).

    A file or a reparametrized module may list its keys in another order; keys the architecture
    lacks stay, at the end, for the caller's checks to name.

    Example:
        >>> list(in_state_dict_order(get_arch("cifar_resnet20"), {"fc.weight": 1, "conv1.weight": 2}))
        ['conv1.weight', 'fc.weight']
    """
    order = {k: i for i, k in enumerate(_layout(spec).shapes)}
    return dict(sorted(items.items(), key=lambda kv: order.get(kv[0], len(order))))


def state_dict_dtypes(spec: ArchSpec) -> dict[str, str]:
    """Every state-dict key of the architecture and its safetensors dtype (``F32``, ``I64``, ...).

    Example:
        >>> state_dict_dtypes(get_arch("cifar_resnet20"))["bn1.num_batches_tracked"]
        'I64'
    """
    return dict(_layout(spec).dtypes)


def iter_units(spec: ArchSpec) -> Iterator[tuple[int, int, tuple[str, ...]]]:
    """Yield ``(stage, index, prefixes)`` for every unit of the architecture.

    Example:
        >>> next(iter_units(get_arch("cifar_resnet20")))
        (0, 0, ('layer1.0.',))
    """
    for s, n in enumerate(spec.stages):
        for j in range(n):
            yield s, j, spec.unit_prefixes(s, j)

