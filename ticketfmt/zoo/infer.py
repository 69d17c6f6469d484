"""What a built model is: its architecture (read off its class and layers) and its state, pruned or not.

:func:`infer_arch` asks every registered family (:meth:`Family.infer`) and then checks the
model's state dict against the spec, key by key and shape by shape, so a look-alike that the
zoo does not hold (timm's ``resnet50d`` deep stem, a wide ResNet, a ResNeXt) is refused by name
instead of mislabelled. The library comes from the model's class: a ``torchvision.models.resnet50()``
is ``torchvision/resnet50``, a ``timm.create_model("resnet50")`` is ``timm/resnet50``.

:func:`split_pruned` reads ``torch.nn.utils.prune``'s reparametrization (``weight_orig`` and
``weight_mask``) out of a state dict: the plain weights (``weight_orig ⊙ weight_mask``, what the
pruned module computes with) and the masks.

Example:
    >>> import torchvision
    >>> from ticketfmt.zoo.infer import infer_arch
    >>> infer_arch(torchvision.models.resnet18(num_classes=10)).id  # doctest: +SKIP
    'torchvision/resnet18'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ticketfmt.errors import MaskError, UnknownArchError
from ticketfmt.zoo.base import ArchSpec, state_dict_shapes
from ticketfmt.zoo.registry import FAMILIES

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["library_of", "infer_arch", "check_state_shapes", "PrunedState", "split_pruned", "model_state",
           "out_features"]

_LIBRARY_OF_MODULE = (("timm.", "timm"), ("torchvision.", "torchvision"), ("ticketfmt.", "builtin"))


def library_of(model: nn.Module) -> str | None:
    """``timm``, ``torchvision`` or ``builtin`` (ticketfmt's own models): where the model's class is defined.

    Example:
        >>> from ticketfmt.models import CifarResNet
        >>> library_of(CifarResNet((1, 1, 1)))
        'builtin'
    """
    module = type(model).__module__ + "."
    return next((lib for prefix, lib in _LIBRARY_OF_MODULE if module.startswith(prefix)), None)


def out_features(module: nn.Module | None) -> int | None:
    """The output width of a classifier layer (an ``nn.Linear``, or a 1×1 conv), None for anything else."""
    from torch import nn

    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    return None


def infer_arch(model: nn.Module, shapes: Mapping[str, tuple[int, ...]] | None = None) -> ArchSpec:
    """The zoo's :class:`ArchSpec` of a built model (timm or torchvision ResNet or VGG, a builtin CIFAR model).

    ``shapes`` is the model's plain state dict as ``key -> shape`` (default: ``model.state_dict()``;
    give it for a model pruned with ``torch.nn.utils.prune``, see :func:`split_pruned`). Raises
    :class:`UnknownArchError` when no family claims the model or its tensors differ from the spec.

    Example:
        >>> from ticketfmt.zoo import build_model
        >>> infer_arch(build_model("cifar_resnet-1-2-1", num_classes=7)).id
        'cifar_resnet-1-2-1'
    """
    for family in FAMILIES.values():
        spec = family.infer(model)
        if spec is not None:
            break
    else:
        cls = f"{type(model).__module__}.{type(model).__qualname__}"
        raise UnknownArchError(f"cannot tell the architecture of a {cls} model",
                               fix="pass the architecture id (arch=, see `ticket models`); ticketfmt reads timm and "
                                   "torchvision ResNets and VGGs and its own CIFAR models")
    if shapes is None:
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_state_shapes(spec, shapes, what=f"the {type(model).__name__} model")
    return spec


def check_state_shapes(spec: ArchSpec, shapes: Mapping[str, tuple[int, ...]], what: str, fix: str | None = None
                       ) -> None:
    """Every key of ``spec``'s state dict is in ``shapes`` with its shape, and nothing else; else one-line error.

    ``fix`` replaces the default advice (which is about models of an unknown variant).

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> check_state_shapes(get_arch("cifar_resnet8"), {}, "the file")
        Traceback (most recent call last):
        ...
        ticketfmt.errors.UnknownArchError: the file is not a cifar_resnet8: it lacks 'conv1.weight' (and 55 more); ...
    """
    expected = state_dict_shapes(spec)
    fix = fix or ("the zoo holds the plain timm and torchvision ResNets and VGGs (no other stem, width, groups or "
                  "attention blocks); check the architecture (`ticket models`)")
    missing = [k for k in expected if k not in shapes]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UnknownArchError(f"{what} is not a {spec.id}: it lacks {missing[0]!r}{more}", fix=fix)
    extra = [k for k in shapes if k not in expected]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise UnknownArchError(f"{what} is not a {spec.id}: {extra[0]!r}{more} is not in {spec.id}'s state dict",
                               fix=fix)
    for k, shape in expected.items():
        if tuple(shapes[k]) != tuple(shape):
            raise UnknownArchError(f"{what} is not a {spec.id}: {k!r} has shape {list(shapes[k])}, {spec.id} has "
                                   f"{list(shape)}", fix=fix)


@dataclass(frozen=True)
class PrunedState:
    """A state dict with ``torch.nn.utils.prune``'s reparametrization resolved.

    ``state``: the plain state dict (``name.weight = weight_orig ⊙ weight_mask`` for pruned
    modules, every other tensor as it was, in the original order); ``masks``: the bool mask of
    each pruned weight (empty when nothing was pruned).
    """

    state: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]


def split_pruned(state: Mapping[str, torch.Tensor]) -> PrunedState:
    """Resolve ``X_orig`` / ``X_mask`` pairs (``torch.nn.utils.prune``) into ``X`` and a bool mask of ``X``.

    Tensors are detached copies on the CPU. A mask that is not binary, or one over anything but
    a ``weight`` (tickets mask weights only), raises :class:`MaskError`.

    Example:
        >>> import torch
        >>> s = split_pruned({"fc.weight_orig": torch.tensor([2.0, 3.0]), "fc.weight_mask": torch.tensor([1.0, 0.0]),
        ...                   "fc.bias": torch.tensor([1.0])})
        >>> s.state["fc.weight"], s.masks["fc.weight"], list(s.state)
        (tensor([2., 0.]), tensor([ True, False]), ['fc.weight', 'fc.bias'])
    """
    plain: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        base = key[:-len("_orig")] if key.endswith("_orig") else None
        if base is None and key.endswith("_mask") and f"{key[:-len('_mask')]}_orig" in state:
            continue  # read with its _orig
        if base is None or f"{base}_mask" not in state:
            plain[key] = value.detach().cpu().clone()
            continue
        mask = state[f"{base}_mask"].detach().cpu()
        if base.rpartition(".")[2] != "weight":
            raise MaskError(f"{base!r} is pruned with torch.nn.utils.prune, but tickets mask weights only",
                            tensor=base, fix="prune.remove() the mask of that tensor first")
        if mask.shape != value.shape or not bool(((mask == 0) | (mask == 1)).all()):
            raise MaskError(f"the torch.nn.utils.prune mask of {base!r} is not a binary mask of its shape",
                            tensor=base, fix="prune with masks of 0 and 1 (prune.custom_from_mask)")
        masks[base] = mask != 0
        orig = value.detach().cpu()
        plain[base] = orig * mask.to(orig.dtype)  # what the pruned module computes with
    return PrunedState(plain, masks)


def model_state(model: nn.Module) -> PrunedState:
    """The model's state dict with any ``torch.nn.utils.prune`` masks read out (:func:`split_pruned`).

    Example:
        >>> import torch
        >>> from torch.nn.utils import prune
        >>> layer = torch.nn.Linear(2, 1)
        >>> _ = prune.custom_from_mask(layer, "weight", torch.tensor([[1.0, 0.0]]))
        >>> model_state(layer).masks["weight"]
        tensor([[ True, False]])
    """
    return split_pruned(model.state_dict())
