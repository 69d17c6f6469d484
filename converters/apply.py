"""Carrying out a :class:`~ticketfmt.converters.base.Plan`: the one walk over its key map.

:func:`walk_plan` visits the plan's target-key → source-key table once, in target state-dict
order: a prunable target key takes its source's mask and init values (shuffled together for a
replicated copy under ``permute_copies``), any other key its source tensor, and a classifier
re-initialized for a new number of classes gets fresh tensors. It reads and writes through a
:class:`TensorSource`, so the same walk serves a :class:`~ticketfmt.ticket.Ticket` in memory
(:func:`apply_plan`: dense masks, full tensors) and a packed file
(:mod:`ticketfmt.converters.files`: mask bits and surviving values, nothing unpacked), and the
two write byte-identical files. :func:`elastic_provenance` is the converted ticket's
provenance, for both.

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
from typing import Any, Protocol

import torch

from ticketfmt.errors import ConversionError
from ticketfmt.ticket import Ticket
from ticketfmt.zoo import format_version_for, prunable_names, state_dict_shapes

from ticketfmt.converters.base import Plan
from ticketfmt.converters.registry import get_converter

__all__ = ["TensorSource", "Walked", "walk_plan", "apply_plan", "elastic_provenance", "tensor_sha256",
           "TRAINING_CONTRACT"]

TRAINING_CONTRACT = ("recipe", "rewind", "rewind_step", "steps_per_epoch", "dataset", "subset", "seed")
"""The source provenance keys a converted ticket carries at its own top level (those the source has).

They say how the ticket is trained (``ticket verify`` reads them): the Elastic LTH branch
trains the target from the source lottery's rewind step, with the source's recipe and data.
"""


class TensorSource(Protocol):
    """How :func:`walk_plan` reads a source's tensors and builds the target's, in one representation."""

    format_version: str
    """The format version whose prunable rule the source's masks follow; the target follows it too."""

    def masked(self, key: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The mask and init values of a prunable source key (for a target of ``shape``) and its kept count."""
        ...

    def unmasked(self, key: str, shape: tuple[int, ...]) -> torch.Tensor:
        """The init tensor of an unmasked source key, as a target tensor of ``shape``."""
        ...

    def permuted(self, mask: torch.Tensor, values: torch.Tensor, shape: tuple[int, ...],
                 perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask and values with positions shuffled by ``perm`` (a permutation of the flat positions)."""
        ...

    def dense(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An all-kept mask for the full tensor ``values``, and the values as stored under it."""
        ...

    def dtype(self, key: str) -> torch.dtype | None:
        """The dtype of the source's init tensor ``key`` (None when the source has none)."""
        ...


@dataclass(frozen=True)
class Walked:
    """The target's tensors, in the source's representation and the target's state-dict order."""

    masks: dict[str, torch.Tensor]
    values: dict[str, torch.Tensor]
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
    gen = torch.Generator().manual_seed(permute_copies) if permute_copies is not None else None
    masks: dict[str, torch.Tensor] = {}
    values: dict[str, torch.Tensor] = {}
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
            m, v = source.permuted(m, v, shape, torch.randperm(math.prod(shape), generator=gen))
            copies_permuted += 1
        masks[k], values[k] = m, v
    if plan.reinit_classifier:
        for k, v in _fresh_classifier(plan, source, classifier_seed).items():
            values[k] = v
            if k in prunable:  # a new classifier is left dense
                masks[k], values[k] = source.dense(v)
                kept[k] = v.numel()
    return Walked({k: masks[k] for k in t_prunable}, {k: values[k] for k in t_shapes}, kept, copies_permuted)


def _fresh_classifier(plan: Plan, source: TensorSource, seed: int) -> dict[str, torch.Tensor]:
    conv = get_converter(plan.target.family)
    t_shapes = state_dict_shapes(plan.target)
    # The new classifier keeps the dtype of the source's.
    dtypes = [d for d in (source.dtype(k) for k in conv.classifier_keys(plan.source)) if d is not None]
    return conv.init_classifier(plan.target, {k: t_shapes[k] for k in conv.classifier_keys(plan.target)},
                                torch.Generator().manual_seed(seed), dtypes[0] if dtypes else torch.float32)


class _TicketTensors:
    """A :class:`TensorSource` over a ticket in memory: bool masks and full tensors."""

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.format_version = format_version_for(ticket.spec, ticket.masks)

    def masked(self, key: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, int]:
        m, v = self.ticket.masks[key], self.ticket.init[key]
        # The Ticket constructor writes θ ⊙ m into a new tensor: only the mask needs copying.
        return m.reshape(shape).clone(), v.reshape(shape), int(m.sum())

    def unmasked(self, key: str, shape: tuple[int, ...]) -> torch.Tensor:
        return self.ticket.init[key].reshape(shape).clone()

    def permuted(self, mask: torch.Tensor, values: torch.Tensor, shape: tuple[int, ...],
                 perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mask.reshape(-1)[perm].reshape(shape), values.reshape(-1)[perm].reshape(shape)

    def dense(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.ones(values.shape, dtype=torch.bool), values

    def dtype(self, key: str) -> torch.dtype | None:
        t = self.ticket.init.get(key)
        return t.dtype if t is not None else None


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
    walked = walk_plan(plan, _TicketTensors(ticket), permute_copies, classifier_seed)
    provenance = elastic_provenance(
        plan, sha256=ticket.file_sha256 or tensor_sha256(ticket), sha256_of="file" if ticket.file_sha256 else "tensors",
        sparsity=ticket.sparsity, path=ticket.path, had_trained=ticket.trained is not None,
        source_provenance=ticket.provenance, permute_copies=permute_copies, copies_permuted=walked.copies_permuted,
        classifier_seed=classifier_seed)
    return Ticket(plan.target, walked.masks, walked.values, None, provenance, [])


def tensor_sha256(ticket: Ticket) -> str:
    """A sha256 of a ticket's architecture, masks and init tensors (for tickets not loaded from a file)."""
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
