"""One place for the checks of tensors against an architecture.

:func:`check_layers` checks a file's masks against its ``layers`` table (used by ``Ticket.load``
and the packed conversion path); :func:`check_tensors` checks masks and weights against the
architecture (used by the ``Ticket`` constructor and the packed conversion path), so a ticket
in memory, a loaded file and a file converted without unpacking pass the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ticketfmt.errors import MaskError, TicketFormatError
from ticketfmt.format.spec import Header
from ticketfmt.format.tensors import popcount
from ticketfmt.zoo import ArchSpec, format_version_for, prunable_names, state_dict_shapes

__all__ = ["check_layers", "check_tensors", "all_finite"]


def check_layers(path: str, header: Header, tensors: dict[str, torch.Tensor], spec: ArchSpec) -> None:
    """Check every mask against the architecture and the ``layers`` table, without unpacking.

    The ``layers`` table (the masked tensors) must be exactly the architecture's prunable
    weights under the rule of the file's format version, both ways (``docs/SPEC.md``, "Prunable
    weights"); shapes must be the architecture's, packed padding bits zero, and each mask's
    popcount equal to its recorded ``kept``.
    """
    shapes = state_dict_shapes(spec)
    _check_masked_set(path, header, spec)
    packed = header.encoding == "packed"
    for name, layer in header.layers.items():
        if name not in shapes:
            raise TicketFormatError(f"layer {name!r} is not in {spec.id}'s state dict", path=path, tensor=name,
                                    fix="the file is corrupted or was written for another architecture")
        if layer.shape != shapes[name]:
            raise TicketFormatError(f"layer {name!r} has shape {list(layer.shape)} but {spec.id} expects "
                                    f"{list(shapes[name])}", path=path, tensor=name, fix="the file is corrupted")
        raw = tensors[f"mask/{name}"]
        if packed and layer.numel % 8 and raw.numel() and int(raw[-1]) & ((1 << (8 - layer.numel % 8)) - 1):
            raise TicketFormatError(f"mask/{name}: padding bits are not zero", path=path, tensor=f"mask/{name}",
                                    fix="the file is corrupted; download or copy it again")
        kept = popcount(raw) if packed else int(raw.sum())
        if kept != layer.kept:
            raise TicketFormatError(f"mask/{name} keeps {kept} weights but the metadata says {layer.kept}", path=path,
                                    tensor=f"mask/{name}", fix="the file is corrupted; download or copy it again")


def _check_masked_set(path: str, header: Header, spec: ArchSpec) -> None:
    """The file's masked tensors (its ``layers``) are the prunable weights of its format version, both ways."""
    rule = prunable_names(spec, version=header.version)
    missing = [n for n in rule if n not in header.layers]
    if missing:
        raise TicketFormatError(f"format {header.version} prunes {len(missing)} weight(s) of {spec.id} that the file "
                                f"does not mask, first {missing[0]!r}", path=path, tensor=missing[0],
                                fix="the file is corrupted or its format_version is wrong")
    extra = [n for n in header.layers if n not in rule]
    if extra:
        raise TicketFormatError(f"the file masks {extra[0]!r}, which format {header.version} leaves dense in "
                                f"{spec.id}", path=path, tensor=extra[0],
                                fix="the file is corrupted or its format_version is wrong")


def all_finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite.

    A finite sum proves it (NaN and inf propagate); only a non-finite sum (an overflow of large
    finite values, or a real NaN/inf) needs the exact test. numpy on a zero-copy view: single
    threaded, so the time does not depend on waking OpenMP threads for many small tensors.

    Example:
        >>> all_finite(torch.tensor([1.0, 3e38, 3e38])), all_finite(torch.tensor([1.0, float("nan")]))
        (True, False)
    """
    try:
        a = t.detach().numpy()
    except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16), or not on the CPU
        return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(a.sum(dtype=np.float64))) or bool(np.isfinite(a).all())


def check_tensors(spec: ArchSpec, masks: Mapping[str, tuple[int, ...]],
                  sections: Mapping[str, Mapping[str, torch.Tensor] | None], *, packed: bool = False) -> None:
    """Check masks and weights against the architecture; raises :class:`MaskError` on the first problem.

    ``masks`` maps each mask's name to its shape: exactly the prunable weights, each of the
    architecture's shape. Each section of ``sections`` (``init``, ``trained``; None = absent)
    holds exactly the state dict's keys, of the architecture's shapes (``packed``: the masked
    tensors hold only their surviving values, sized by the header, and are not shape-checked
    here), with finite floating-point values.

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> check_tensors(get_arch("cifar_resnet8"), {}, {})
        Traceback (most recent call last):
        ...
        ticketfmt.errors.MaskError: 10 prunable weight(s) of cifar_resnet8 have no mask, first 'conv1.weight'; ...
    """
    shapes = state_dict_shapes(spec)
    # The rule of the format version these masks follow (format 1.0 tickets of ImageNet VGGs keep their classifier
    # dense); masks that follow no version are reported against the current rule.
    prunable = prunable_names(spec, version=format_version_for(spec, masks))
    arch = spec.id
    missing = [n for n in prunable if n not in masks]
    if missing:
        raise MaskError(f"{len(missing)} prunable weight(s) of {arch} have no mask, first {missing[0]!r}",
                        tensor=missing[0], fix="give a mask for every Conv2d/Linear weight the architecture prunes")
    extra = [n for n in masks if n not in prunable]
    if extra:
        raise MaskError(f"mask {extra[0]!r} is not a prunable weight of {arch}", tensor=extra[0],
                        fix="check the architecture id or drop the extra masks")
    for name, shape in masks.items():
        if tuple(shape) != shapes[name]:
            raise MaskError(f"mask {name!r} has shape {list(shape)} but {arch} expects {list(shapes[name])}",
                            tensor=name, fix="check the architecture id and num_classes")
    for section, weights in sections.items():
        if weights is not None:
            _check_section(spec, shapes, section, weights, set(masks) if packed else set())


def _check_section(spec: ArchSpec, shapes: Mapping[str, tuple[int, ...]], section: str,
                   weights: Mapping[str, torch.Tensor], unshaped: set[str]) -> None:
    arch = spec.id
    absent = [k for k in shapes if k not in weights]
    if absent:
        raise MaskError(f"{section} weights lack {len(absent)} key(s) of {arch}, first {absent[0]!r}",
                        tensor=absent[0], fix="store the whole state dict (BatchNorm buffers included)")
    unknown = [k for k in weights if k not in shapes]
    if unknown:
        raise MaskError(f"{section} key {unknown[0]!r} is not in {arch}'s state dict", tensor=unknown[0],
                        fix="check the architecture id")
    for k, v in weights.items():
        if k not in unshaped and tuple(v.shape) != shapes[k]:
            raise MaskError(f"{section} tensor {k!r} has shape {list(v.shape)} but {arch} expects "
                            f"{list(shapes[k])}", tensor=k, fix="check the architecture id and num_classes")
        if v.is_floating_point() and not all_finite(v):
            raise MaskError(f"{section} tensor {k!r} holds NaN or infinite values", tensor=k,
                            fix="start from finite weights")
