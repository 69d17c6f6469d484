"""open_lth's model names and state-dict names, and ticketfmt's architecture ids for them.

open_lth (and ElasticLTH, built on it) names its networks ``cifar_resnet_N[_W]``,
``cifar_vgg_N`` and ``imagenet_resnet_D[_W]``; the ImageNet ResNets are torchvision's
``ResNet`` under a ``model.`` prefix. ``imagenet_resnet_26`` (ElasticLTH) is the BasicBlock
ResNet with [2, 3, 4, 3] blocks, ``torchvision/resnet_basic-2-3-4-3`` here, not timm's
bottleneck ``resnet26``. A change_depth branch of ElasticLTH does not record its target
network in any file, so :func:`infer_open_lth_arch` reads it off the checkpoint's keys.
The networks of the paper's appendix (``cifar_vggnfc_D_W_N``, ``mnist_lenet_N1_N2...``,
``cifar_mobilenetv1[_N]``) have the same names and state-dict keys here as in the reference.

Example:
    >>> arch_from_open_lth("cifar_resnet_20"), arch_from_open_lth("imagenet_resnet_26")
    ('cifar_resnet20', 'torchvision/resnet_basic-2-3-4-3')
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ticketfmt.errors import ConversionError
from ticketfmt.zoo import ArchSpec, get_arch, state_dict_shapes

__all__ = ["arch_from_open_lth", "open_lth_key_map", "infer_open_lth_arch"]

_MODEL_NAME = re.compile(r"(cifar_resnet|cifar_vgg|imagenet_resnet)_(\d+)(?:_(\d+))?")
# open_lth's ImageNet ResNets by depth (models/imagenet_resnet.py; 26 is ElasticLTH's addition).
_IMAGENET_RESNETS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)), 26: ("basic", (2, 3, 4, 3)), 34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
_STANDARD_WIDTH = {"cifar_resnet": 16, "imagenet_resnet": 64}
_SAME_NAMES = re.compile(r"cifar_vggnfc_|mnist_lenet_|cifar_mobilenetv1")
"""The families whose names and state-dict keys are the reference's own (ticketfmt/zoo/vggnfc, lenet, mobilenet)."""


def arch_from_open_lth(model_name: str) -> str:
    """Our architecture id of an open_lth ``model_name`` (``cifar_resnet_20`` -> ``cifar_resnet20``).

    Example:
        >>> arch_from_open_lth("imagenet_resnet_50"), arch_from_open_lth("cifar_vgg_16")
        ('torchvision/resnet50', 'cifar_vgg16')
    """
    m = _MODEL_NAME.fullmatch(model_name.strip())
    if not m and _SAME_NAMES.match(model_name.strip()):
        return _arch(model_name.strip())  # the appendix networks: the reference's grammar is ours
    if not m:
        raise ConversionError(f"open_lth model {model_name!r} is not supported",
                              fix="ticketfmt imports cifar_resnet_N, cifar_vgg_N and imagenet_resnet_D runs; give "
                                  "--arch for others")
    kind, number, width = m.group(1), int(m.group(2)), m.group(3)
    if width and int(width) != _STANDARD_WIDTH.get(kind):
        raise ConversionError(f"open_lth model {model_name!r} has width {width}, but ticketfmt's {kind} networks are "
                              f"{_STANDARD_WIDTH.get(kind, 'fixed')} wide",
                              fix="only the standard width can be imported")
    if kind != "imagenet_resnet":
        return get_arch(f"{kind}{number}").id
    if number not in _IMAGENET_RESNETS:
        raise ConversionError(f"open_lth model {model_name!r}: unknown ImageNet ResNet depth {number}",
                              fix=f"open_lth builds depths {', '.join(map(str, _IMAGENET_RESNETS))}")
    block, stages = _IMAGENET_RESNETS[number]
    return get_arch(f"torchvision/resnet_{block}-{'-'.join(map(str, stages))}").id


def open_lth_key_map(spec: ArchSpec) -> dict[str, str]:
    """``open_lth name -> our name`` for every state-dict key of a CIFAR ResNet, CIFAR VGG or ImageNet ResNet.

    open_lth's CIFAR ResNet: ``conv``, ``bn``, ``blocks.N.{conv1,bn1,conv2,bn2}``,
    ``blocks.N.shortcut.{0,1}`` (blocks numbered across stages), ``fc``. Its CIFAR VGG:
    ``layers.N.{conv,bn}`` (N counts the max-pools too), ``fc``. Its ImageNet ResNet:
    torchvision's names under ``model.``. Ours follow torchvision.

    Example:
        >>> open_lth_key_map(get_arch("torchvision/resnet18"))["model.layer1.0.conv1.weight"]
        'layer1.0.conv1.weight'
    """
    if spec.family == "cifar_resnet":
        prefixes = _cifar_resnet_prefixes(spec)
    elif spec.family == "cifar_vgg":
        prefixes = _cifar_vgg_prefixes(spec)
    elif spec.family == "resnet":
        prefixes = {"": "model."}
    elif spec.family in ("cifar_vggnfc", "mnist_lenet", "cifar_mobilenetv1"):
        return {k: k for k in state_dict_shapes(spec)}
    else:
        raise ConversionError(f"{spec.id}: only CIFAR ResNets, CIFAR VGGs and ImageNet ResNets can be imported from "
                              "open_lth", fix="give --arch cifar_resnetN, cifar_vggN or torchvision/resnetN")
    mapping: dict[str, str] = {}
    for key in state_dict_shapes(spec):
        mine = next((p for p in prefixes if key.startswith(p)), None)
        if mine is None:  # pragma: no cover - every key of these families has a prefix
            raise ConversionError(f"no open_lth name for {key!r}")
        mapping[prefixes[mine] + key[len(mine):]] = key
    return mapping


def _cifar_resnet_prefixes(spec: ArchSpec) -> dict[str, str]:
    prefixes = {"conv1.": "conv.", "bn1.": "bn.", "fc.": "fc."}
    flat = 0
    for s, n in enumerate(spec.stages):
        for j in range(n):
            ours, theirs = f"layer{s + 1}.{j}.", f"blocks.{flat}."
            for part in ("conv1.", "bn1.", "conv2.", "bn2."):
                prefixes[ours + part] = theirs + part
            prefixes[ours + "downsample.0."] = theirs + "shortcut.0."
            prefixes[ours + "downsample.1."] = theirs + "shortcut.1."
            flat += 1
    return prefixes


def _cifar_vgg_prefixes(spec: ArchSpec) -> dict[str, str]:
    prefixes = {"classifier.": "fc."}
    layer = 0
    for s, idxs in enumerate(spec.family_obj.feature_indices(spec)):  # type: ignore[attr-defined]
        for i in idxs:
            prefixes[f"features.{i}."] = f"layers.{layer}.conv."
            prefixes[f"features.{i + 1}."] = f"layers.{layer}.bn."
            layer += 1
        if s < len(spec.stages) - 1:
            layer += 1  # open_lth's plan holds the max-pool ('M') as a layer
    return prefixes


def infer_open_lth_arch(state: Mapping[str, torch.Tensor]) -> str:
    """Our architecture id of an open_lth checkpoint, read off its keys (for branches that record no model name).

    Stage boundaries come from the keys: the blocks with a ``shortcut`` (CIFAR ResNet), the
    max-pools' gaps in ``layers.N`` (CIFAR VGG), ``model.layerS.J`` (ImageNet ResNet).

    Example:
        >>> keys = ["conv.weight", "blocks.0.conv1.weight", "blocks.1.shortcut.0.weight", "blocks.2.shortcut.0.weight"]
        >>> infer_open_lth_arch({k: torch.zeros(16, 3, 3, 3) for k in keys})
        'cifar_resnet8'
    """
    appendix = _appendix_arch(state)
    if appendix is not None:
        return appendix
    if any(k.startswith("model.layer") for k in state):
        counts: dict[int, int] = {}
        for k in state:
            m = re.match(r"model\.layer(\d+)\.(\d+)\.", k)
            if m:
                counts[int(m.group(1))] = max(counts.get(int(m.group(1)), 0), int(m.group(2)) + 1)
        block = "bottleneck" if any(re.match(r"model\.layer\d+\.\d+\.conv3\.", k) for k in state) else "basic"
        _check_width(state, "model.conv1.weight", "imagenet_resnet")
        return _arch(f"torchvision/resnet_{block}-" + "-".join(str(counts[s]) for s in sorted(counts)))
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))})
    if blocks:
        starts = [b for b in blocks if f"blocks.{b}.shortcut.0.weight" in state]
        bounds = [0, *starts, len(blocks)]
        _check_width(state, "conv.weight", "cifar_resnet")
        return _arch("cifar_resnet-" + "-".join(str(b - a) for a, b in zip(bounds, bounds[1:])))
    convs = sorted({int(m.group(1)) for k in state if (m := re.match(r"layers\.(\d+)\.conv\.", k))})
    if convs:
        stages, prev = [1], convs[0]
        for i in convs[1:]:
            if i == prev + 1:
                stages[-1] += 1
            else:  # a gap is a max-pool: a new stage
                stages.append(1)
            prev = i
        return _arch("cifar_vgg-" + "-".join(map(str, stages)))
    raise ConversionError("cannot tell the architecture from the checkpoint's keys (no blocks.N, layers.N or "
                          "model.layerS)", fix="give the architecture with --arch")


def _appendix_arch(state: Mapping[str, torch.Tensor]) -> str | None:
    """A LeNet (``fc_layers.N``), MobileNetV1 (``layers_part2.N``) or VGG-nFC (``classifier.N``) checkpoint's id."""
    widths = {int(m.group(1)): v.shape[0] for k, v in state.items()
              if (m := re.fullmatch(r"fc_layers\.(\d+)\.weight", k))}
    if widths:
        return _arch("mnist_lenet_" + "_".join(str(widths[i]) for i in sorted(widths)))
    part2 = {int(m.group(1)) for k in state if (m := re.match(r"layers_part2\.(\d+)\.", k))}
    if part2:
        return _arch(f"cifar_mobilenetv1_{len(part2)}")
    hidden = [k for k in state if re.fullmatch(r"classifier\.\d+\.weight", k)]
    first = state.get("layers.0.conv.weight")
    if not hidden or not isinstance(first, torch.Tensor):
        return None
    convs = sum(1 for k in state if re.fullmatch(r"layers\.\d+\.conv\.weight", k))
    depth = convs + 3  # VGG-D: D - 3 convs
    width = first.shape[0]
    return _arch(f"cifar_vggnfc_{depth}_{width}_{len(hidden) + 1}")


def _check_width(state: Mapping[str, torch.Tensor], key: str, kind: str) -> None:
    t = state.get(key)
    if isinstance(t, torch.Tensor) and t.dim() and t.shape[0] != _STANDARD_WIDTH[kind]:
        raise ConversionError(f"the checkpoint's {key} has {t.shape[0]} filters, but ticketfmt's {kind} networks are "
                              f"{_STANDARD_WIDTH[kind]} wide", fix="only the standard width can be imported")


def _arch(name: str) -> str:
    try:
        return get_arch(name).id
    except Exception as e:  # an impossible layout (e.g. 2 stages): say where it came from
        raise ConversionError(f"the checkpoint's keys describe {name!r}, which is not a ticketfmt architecture "
                              f"({e})", fix="give the architecture with --arch") from None
