"""Carrying out a :class:`~ticketfmt.converters.base.Plan`: the one walk over its key map.

:func:`walk_plan` visits the plan's target-key → source-key table once, in target state-dict
order: a prunable target key takes its source's mask and init values (shuffled together for a
replicated copy under ``permute_copies``), any other key its source tensor, and a classifier
re-initialized for a new number of classes gets fresh tensors. It reads and writes through a
:class:`TensorSource`, so the same walk serves a :class:`~ticketfmt.ticket.Ticket` in memory
(:func:`apply_plan`: dense masks, full tensors) and a packed file
(:mod:`ticketfmt.converters.files`: the bytes of mask bits and surviving values, nothing
unpacked, no numpy, no torch), and the two write byte-identical files. torch is imported only to draw
random numbers (``permute_copies``, a re-initialized classifier), so both paths draw the same
ones. :func:`elastic_provenance` is the converted ticket's provenance, for both.

Example:
    >>> from ticketfmt import Ticket, build_model
    >>> from ticketfmt.converters import apply_plan, plan_conversion
    >>> r20 = Ticket.from_model(build_model("cifar_resnet20", seed=0), "cifar_resnet20")
    >>> apply_plan(r20, plan_conversion(r20, "cifar_resnet32")).arch
    'cifar_resnet32'
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ticketfmt.errors import ConversionError
from ticketfmt.zoo import format_version_for, prunable_names, state_dict_shapes

from ticketfmt.converters.base import Plan
from ticketfmt.converters.registry import get_converter

if TYPE_CHECKING:
    import torch

    from ticketfmt.ticket import Ticket

__all__ = ["TensorSource", "Walked", "walk_plan", "apply_plan", "elastic_provenance", "tensor_sha256",
           "TRAINING_CONTRACT"]

TRAINING_CONTRACT = ("recipe", "rewind", "rewind_step", "steps_per_epoch", "dataset", "subset", "seed")
"""The source provenance keys a converted ticket carries at its own top level (those the source has).

They say how the ticket is trained (``ticket verify`` reads them): the Elastic LTH branch
trains the target from the source lottery's rewind step, with the source's recipe and data.
"""


class TensorSource(Protocol):
    """How :func:`walk_plan` reads a source's tensors and builds the target's, in one representation.

    The representation is the source's own (tensors for a Ticket, numpy arrays for a packed
    file); the walk only passes them around.
    """

    format_version: str
    """The format version whose prunable rule the source's masks follow; the target follows it too."""

    def masked(self, key: str, shape: tuple[int, ...]) -> tuple[Any, Any, int]:
        """The mask and init values of a prunable source key (for a target of ``shape``) and its kept count."""
        ...

    def unmasked(self, key: str, shape: tuple[int, ...]) -> Any:
        """The init tensor of an unmasked source key, as a target tensor of ``shape``."""
        ...

    def permuted(self, mask: Any, values: Any, shape: tuple[int, ...], perm: torch.Tensor) -> tuple[Any, Any]:
        """Mask and values with positions shuffled by ``perm`` (a permutation of the flat positions)."""
        ...

    def dense(self, values: Any) -> tuple[Any, Any]:
        """An all-kept mask for the full tensor ``values``, and the values as stored under it."""
        ...

    def dtype(self, key: str) -> str | None:
        """The safetensors dtype (``F32``) of the source's init tensor ``key`` (None when the source has none)."""
        ...

    def adopt(self, tensor: torch.Tensor) -> Any:
        """A freshly drawn tensor (a re-initialized classifier) in this source's representation."""
        ...


@dataclass(frozen=True)
class Walked:
    """The target's tensors, in the source's representation and the target's state-dict order."""

    masks: dict[str, Any]
    values: dict[str, Any]
    kept: dict[str, int]
    copies_permuted: int


def walk_plan(plan: Plan, source: TensorSource, permute_copies: int | None = None,
              classifier_seed: int = 0) -> Walked:
    """Build the target's masks and init values from ``source`` by ``plan`` (the one walk).

    ``permute_copies=SEED`` shuffles, within each tensor, the mask of every replicated copy
    (every copy of a source unit after the first), moving the init values with their mask
    positions so every kept weight still holds a value of the source ticket.
    """
    t_shapes = state_dict_shapes(plan.target)
    t_prunable = prunable_names(plan.target, version=source.format_version)
    prunable = set(t_prunable)
    gen = _generator(permute_copies) if permute_copies is not None else None
    masks: dict[str, Any] = {}
    values: dict[str, Any] = {}
    kept: dict[str, int] = {}
    copies_permuted = 0
    for k, sk, copy in plan.key_map:
        if sk is None:  # re-initialized below
            continue
        shape = t_shapes[k]
        if k not in prunable:
            values[k] = source.unmasked(sk, shape)
            continue
        m, v, kept[k] = source.masked(sk, shape)
        if gen is not None and copy:
            import torch  # only under permute_copies: torch's stream, so every path shuffles alike
            m, v = source.permuted(m, v, shape, torch.randperm(math.prod(shape), generator=gen))
            copies_permuted += 1
        masks[k], values[k] = m, v
    if plan.reinit_classifier:
        for k, v in _fresh_classifier(plan, source, classifier_seed).items():
            values[k] = v
            if k in prunable:  # a new classifier is left dense
                masks[k], values[k] = source.dense(v)
                kept[k] = math.prod(t_shapes[k])
    return Walked({k: masks[k] for k in t_prunable}, {k: values[k] for k in t_shapes}, kept, copies_permuted)


def _generator(seed: int) -> torch.Generator:
    import torch
    return torch.Generator().manual_seed(seed)


def _fresh_classifier(plan: Plan, source: TensorSource, seed: int) -> dict[str, Any]:
    from ticketfmt.format.tensors import TORCH_DTYPES  # torch: the classifier is drawn from torch's stream
    conv = get_converter(plan.target.family)
    t_shapes = state_dict_shapes(plan.target)
    # The new classifier keeps the dtype of the source's.
    dtypes = [d for d in (source.dtype(k) for k in conv.classifier_keys(plan.source)) if d is not None]
    fresh = conv.init_classifier(plan.target, {k: t_shapes[k] for k in conv.classifier_keys(plan.target)},
                                 _generator(seed), TORCH_DTYPES[dtypes[0] if dtypes else "F32"])
    return {k: source.adopt(t) for k, t in fresh.items()}


class _TicketTensors:
    """A :class:`TensorSource` over a ticket in memory: bool masks and full tensors."""

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.format_version = format_version_for(ticket.spec, ticket.masks)

    def masked(self, key: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, int]:
        m, v = self.ticket.masks[key], self.ticket.init[key]
        # Fresh copies (replicated units must not share memory), θ ⊙ m written in the same pass, so the Ticket
        # made of them (apply_plan) skips its own zeroing.
        from ticketfmt.format.arrays import count_true  # numpy: only the in-memory path needs it
        mask = _copy(m.reshape(shape))
        return mask, _masked_copy(v.reshape(shape), mask), count_true(m)

    def unmasked(self, key: str, shape: tuple[int, ...]) -> torch.Tensor:
        return _copy(self.ticket.init[key].reshape(shape))

    def permuted(self, mask: torch.Tensor, values: torch.Tensor, shape: tuple[int, ...],
                 perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mask.reshape(-1)[perm].reshape(shape), values.reshape(-1)[perm].reshape(shape)

    def dense(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch
        return torch.ones(values.shape, dtype=torch.bool), values

    def dtype(self, key: str) -> str | None:
        from ticketfmt.format.tensors import DTYPE_NAMES
        t = self.ticket.init.get(key)
        return DTYPE_NAMES[t.dtype] if t is not None else None

    def adopt(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor


def _copy(t: torch.Tensor) -> torch.Tensor:
    """A copy made by numpy: single-threaded, where torch's clone wakes its thread pool for every tensor."""
    from ticketfmt.format.tensors import array_to_tensor, tensor_to_array
    return array_to_tensor(tensor_to_array(t).copy())


def _masked_copy(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values ⊙ mask`` as a new tensor, in one numpy pass (zeros where the mask is 0)."""
    import numpy as np

    from ticketfmt.format.tensors import array_to_tensor, tensor_to_array
    a = tensor_to_array(values)
    out = np.zeros_like(a)
    np.copyto(out, a, where=mask.numpy())
    return array_to_tensor(out)


def apply_plan(ticket: Ticket, plan: Plan, permute_copies: int | None = None, classifier_seed: int = 0) -> Ticket:
    """Carry out a :class:`Plan` on ``ticket``: copy masks and init unit by unit into the target.

    See :func:`walk_plan` for ``permute_copies``; ``classifier_seed`` seeds a classifier
    re-initialized for a new number of classes.

    Example:
        >>> r32 = apply_plan(r20, plan_conversion(r20, "cifar_resnet32"), permute_copies=1)  # doctest: +SKIP
    """
    if ticket.spec != plan.source:
        raise ConversionError(f"the plan converts {plan.source.id} ({plan.source.num_classes} classes) but the ticket "
                              f"is {ticket.arch} ({ticket.num_classes} classes)", fix="plan for this ticket")
    from ticketfmt.ticket import Ticket
    walked = walk_plan(plan, _TicketTensors(ticket), permute_copies, classifier_seed)
    provenance = elastic_provenance(
        plan, sha256=ticket.file_sha256 or tensor_sha256(ticket), sha256_of="file" if ticket.file_sha256 else "tensors",
        sparsity=ticket.sparsity, path=ticket.path, had_trained=ticket.trained is not None,
        source_provenance=ticket.provenance, permute_copies=permute_copies, copies_permuted=walked.copies_permuted,
        classifier_seed=classifier_seed)
    # The walk wrote θ ⊙ m into fresh tensors (_TicketTensors.masked): nothing left for the constructor to zero.
    return Ticket(plan.target, walked.masks, walked.values, None, provenance, [], _zero_pruned=False)


def tensor_sha256(ticket: Ticket) -> str:
    """A sha256 of a ticket's architecture, masks and init tensors (for tickets not loaded from a file)."""
    import torch
    h = hashlib.sha256(ticket.arch.encode())
    for section, tensors in (("mask", ticket.masks), ("init", ticket.init)):
        for name in sorted(tensors):
            t = tensors[name].detach().contiguous().cpu()
            h.update(f"{section}/{name}:{t.dtype}:{list(t.shape)}".encode())
            if t.numel():
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool
                         else t.reshape(-1).to(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def elastic_provenance(plan: Plan, *, sha256: str, sha256_of: str, sparsity: float, path: str | None,
                       had_trained: bool, source_provenance: Mapping[str, Any], permute_copies: int | None,
                       copies_permuted: int, classifier_seed: int) -> dict[str, Any]:
    """The provenance of a converted ticket (the in-memory and the packed-file paths both use it).

    The source's training contract (:data:`TRAINING_CONTRACT`: recipe, rewind point, data,
    seed) is copied to the top level, so the converted ticket trains from the source lottery's
    rewind step as the reference's branch does; the source's whole provenance is kept under
    ``source_provenance``.
    """
    return {
        **{k: source_provenance[k] for k in TRAINING_CONTRACT if k in source_provenance},
        "method": "elastic",
        "source": {"arch": plan.source.id, "num_classes": plan.source.num_classes, "sha256": sha256,
                   "sha256_of": sha256_of, "sparsity": round(sparsity, 6),
                   "path": os.path.basename(path) if path else None},
        "direction": plan.direction,
        "strategy": plan.strategy,
        "stage_strategies": list(plan.stage_strategies),
        "mappings": plan.mappings,
        "mapping": plan.mapping,
        "permute_copies": permute_copies,
        "copies_permuted": copies_permuted if permute_copies is not None else 0,
        "num_classes_reinit": plan.reinit_classifier,
        "classifier_seed": classifier_seed if plan.reinit_classifier else None,
        "trained_dropped": had_trained,
        "source_provenance": dict(source_provenance),
    }
