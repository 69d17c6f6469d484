"""A ticket on any ``nn.Module`` through ``torch.nn.utils.prune`` (``weight_orig`` + ``weight_mask``).

:func:`apply_masks` checks that the model has the ticket's architecture (both ways: every
prunable weight of the model is masked by the ticket, every masked layer of the ticket is in
the model, shapes equal), loads the ticket's ``init`` weights (θ_r ⊙ m) by default, and then
registers each mask with ``prune.custom_from_mask``, so code written for PyTorch's pruning
utilities trains the ticket as is (``prune.remove`` makes the masks permanent).

Example:
    >>> from ticketfmt import Ticket, apply_masks, build_model
    >>> ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    >>> model = apply_masks(build_model("cifar_resnet8", seed=1), ticket)
    >>> hasattr(model.conv1, "weight_mask")
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from ticketfmt.errors import MaskError
from ticketfmt.zoo import format_version_for, prunable_names

if TYPE_CHECKING:
    from ticketfmt.ticket import Ticket

__all__ = ["apply_masks"]


def apply_masks(model: nn.Module, ticket: Ticket, *, load_init: bool = True) -> nn.Module:
    """Load the ticket's ``init`` into ``model`` and register its masks with ``prune.custom_from_mask``.

    Each pruned module gets ``weight_orig`` (a parameter) and ``weight_mask`` (a buffer), and
    ``weight`` is recomputed as their product before every forward pass, so the pruned weights
    stay zero during training; ``prune.remove(module, "weight")`` makes it permanent. The
    model must have the ticket's architecture (e.g. ``ticket.build_model()`` or the same timm /
    torchvision model): every weight the ticket's family prunes must be masked by the ticket,
    every mask must find its weight, shapes equal, else :class:`MaskError` and nothing changes.
    ``load_init=False`` keeps the model's own weights (masked) instead of the ticket's rewind
    weights. Masks move to the device of each weight; loaded weights keep the model's dtype.

    Example:
        >>> import torch.nn.utils.prune as prune  # doctest: +SKIP
        >>> model = apply_masks(build_model("timm/resnet50"), ticket)  # doctest: +SKIP
        >>> prune.is_pruned(model)  # doctest: +SKIP
        True
    """
    from torch.nn.utils import prune

    plan = _plan(model, ticket)
    if load_init:
        _check_state(model, ticket.init, ticket.arch)
    # Everything is checked before anything changes: all or nothing.
    if load_init:
        model.load_state_dict(ticket.init, strict=True)
    for module, param, mask in plan:
        weight = getattr(module, param)
        prune.custom_from_mask(module, param, mask.to(device=weight.device, dtype=weight.dtype))
    return model


def _plan(model: nn.Module, ticket: Ticket) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """``(module, parameter, mask)`` for every mask, after checking the architecture both ways."""
    modules = dict(model.named_modules())
    for name, module in modules.items():
        buffers = {k for k, _ in module.named_buffers(recurse=False)}
        if any(f"{p[:-len('_orig')]}_mask" in buffers for p, _ in module.named_parameters(recurse=False)
               if p.endswith("_orig")):
            raise MaskError(f"module {name or 'the model'!r} already has a pruning mask", tensor=name,
                            fix="apply the masks to a fresh model, or prune.remove() the old ones first")
    plan: list[tuple[nn.Module, str, torch.Tensor]] = []
    for name, mask in ticket.masks.items():
        module_name, _, param = name.rpartition(".")
        module = modules.get(module_name)
        weight = getattr(module, param, None) if module is not None else None
        if not isinstance(weight, torch.Tensor):
            raise MaskError(f"the model has no parameter {name!r} of the {ticket.arch} ticket", tensor=name,
                            fix="apply the masks to a model of the ticket's architecture (ticket.build_model())")
        if tuple(weight.shape) != tuple(mask.shape):
            raise MaskError(f"{name!r} has shape {list(weight.shape)} in the model but {list(mask.shape)} in the "
                            f"{ticket.arch} ticket", tensor=name, fix="check the architecture and num_classes")
        plan.append((module, param, mask))
    # The other way: a model with more layers (a ResNet-101 under a ResNet-50 ticket) must not
    # keep its extra layers dense without a word.
    rule = format_version_for(ticket.spec, ticket.masks)  # a format 1.0 VGG ticket leaves its classifier dense
    unmasked = [n for n in prunable_names(ticket.spec, model, version=rule) if n not in ticket.masks]
    if unmasked:
        raise MaskError(f"the model has {len(unmasked)} prunable weight(s) that the {ticket.arch} ticket does not "
                        f"mask, first {unmasked[0]!r}: it is not a {ticket.arch}", tensor=unmasked[0],
                        fix="apply the masks to a model of the ticket's architecture (ticket.build_model()), or "
                            "convert the ticket to the model's depth with `ticket convert`")
    return plan


def _check_state(model: nn.Module, init: Mapping[str, torch.Tensor], arch: str) -> None:
    """The model's state dict has exactly the keys and shapes of the ticket's ``init``."""
    state = model.state_dict()
    missing = [k for k in init if k not in state]
    if missing:
        raise MaskError(f"the model has no tensor {missing[0]!r} of the {arch} ticket's init "
                        f"({len(missing)} missing)", tensor=missing[0],
                        fix="apply the ticket to a model of its architecture, or pass load_init=False to keep "
                            "the model's own weights")
    extra = [k for k in state if k not in init]
    if extra:
        raise MaskError(f"the model's tensor {extra[0]!r} is not in the {arch} ticket's init ({len(extra)} extra)",
                        tensor=extra[0], fix="apply the ticket to a model of its architecture, or pass "
                                             "load_init=False to keep the model's own weights")
    for k, v in init.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise MaskError(f"{k!r} has shape {list(state[k].shape)} in the model but {list(v.shape)} in the {arch} "
                            "ticket's init", tensor=k, fix="check the architecture and num_classes")
