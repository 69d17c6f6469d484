"""How IMP follows the reference implementation (open_lth), and the named options that depart from it.

The defaults are the reference's behaviour, row by row (``docs/FIDELITY.md``):

- ``prune_count="reference"``: each level prunes ``ceil(rate × remaining)`` weights: the
  threshold is the sorted magnitude at that index among the surviving prunable weights and a
  weight survives only if ``|w| > threshold`` (so ties at the threshold are pruned, and without
  ties one more weight than the count goes: open_lth's ``sparse_global``). ``"round"``: keep
  exactly ``round((1 - rate)^L · N)`` (ticketfmt 1.0).
- ``remaining="all-layers"``: "remaining" counts every Conv2d/Linear weight of the network,
  the layers left dense included (the reference's mask covers them; its CIFAR VGG leaves
  ``fc.weight`` unpruned but counts it). ``"prunable"``: only the prunable weights.
- ``data_order="same"``: every level trains on the same shuffle order (the reference's
  ``data_order_seed``). ``"per-level"``: a different order per level (ticketfmt 1.0).
- ``dense_level="two-runs"``: the dense level 0 pre-trains 0→rewind, then trains rewind→end
  with a fresh optimizer (momentum restarts at the rewind step), as the reference's
  rewinding does. ``"one-run"``: one uninterrupted run (ticketfmt 1.0).

The learning-rate warm-up is a recipe field (:attr:`~ticketfmt.train.recipes.Recipe.warmup_offset`).

Example:
    >>> ImpOptions().departures()
    []
    >>> ImpOptions(data_order="per-level").departures()
    ['data_order=per-level']
    >>> w = {"a": torch.tensor([0.1, 0.2, 0.2, 0.3, 0.4])}
    >>> reference_prune(w, {"a": torch.ones(5, dtype=torch.bool)}, 0.2)["a"].tolist()  # ceil(1.0)=1: ties at 0.2 go
    [False, False, False, True, True]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ticketfmt.errors import TicketError
from ticketfmt.pruning import keep_top

__all__ = ["ImpOptions", "REFERENCE", "LEGACY", "reference_prune", "round_prune", "imp_keep",
           "unpruned_layer_weights"]

_CHOICES = {"prune_count": ("reference", "round"), "remaining": ("all-layers", "prunable"),
            "data_order": ("same", "per-level"), "dense_level": ("two-runs", "one-run")}


@dataclass(frozen=True)
class ImpOptions:
    """The IMP behaviours that may depart from the reference; the defaults are the reference's.

    Recorded in every level ticket's provenance (``imp_options``) and in the run config.
    """

    prune_count: str = "reference"
    remaining: str = "all-layers"
    data_order: str = "same"
    dense_level: str = "two-runs"

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise TicketError(f"unknown {name} {value!r}", fix=f"use one of {', '.join(allowed)} "
                                                                   f"({allowed[0]} is the reference's)")

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_provenance(cls, provenance: Mapping[str, Any]) -> ImpOptions:
        """The options an IMP ticket was found with (tickets of ticketfmt 1.0 record none: :data:`LEGACY`)."""
        rec = provenance.get("imp_options")
        if not isinstance(rec, Mapping):
            return LEGACY
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: str(v) for k, v in rec.items() if k in names})

    def departures(self) -> list[str]:
        """``name=value`` for every option that is not the reference's behaviour."""
        return [f"{k}={getattr(self, k)}" for k, allowed in _CHOICES.items() if getattr(self, k) != allowed[0]]


REFERENCE = ImpOptions()
"""open_lth's behaviour on every row."""

LEGACY = ImpOptions(prune_count="round", remaining="prunable", data_order="per-level", dense_level="one-run")
"""What ticketfmt 1.0 did (and what its IMP tickets, which record no options, were found with)."""


def imp_keep(total: int, level: int, rate: float) -> int:
    """Weights the ``round`` rule keeps at ``level``: ``round((1 - rate)^level · total)``."""
    return round(((1.0 - rate) ** level) * total)


def unpruned_layer_weights(model: nn.Module, prunable: Iterable[str]) -> int:
    """Weights of the Conv2d/Linear layers left dense (the reference counts them as remaining)."""
    names = set(prunable)
    return sum(m.weight.numel() for name, m in model.named_modules()
               if isinstance(m, nn.Conv2d | nn.Linear) and f"{name}.weight" not in names)


def reference_prune(trained: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], rate: float,
                    unpruned: int = 0) -> dict[str, torch.Tensor]:
    """One level of open_lth's ``sparse_global`` pruning over ``masks``' tensors.

    ``n = ceil(rate × (surviving prunable weights + unpruned))``; the threshold is the
    ``n``-th smallest surviving magnitude (0-based, float32); survivors keep ``|w| > threshold``.

    Raises:
        TicketError: ``n`` reaches past the surviving prunable weights (nothing left to prune).
    """
    names = list(masks)
    alive = sum(int(masks[k].sum()) for k in names)
    n = math.ceil(rate * (alive + unpruned))
    magnitude = {k: trained[k].detach().float().abs().cpu() for k in names}
    vector = torch.cat([magnitude[k][masks[k]] for k in names])
    if n >= vector.numel():
        raise TicketError(f"pruning {rate:g} of {alive + unpruned} remaining weights removes {n}, but only "
                          f"{vector.numel()} prunable weights survive",
                          fix="lower --rate or --levels, or pass --remaining prunable")
    threshold = torch.kthvalue(vector, n + 1).values
    return {k: masks[k] & (magnitude[k] > threshold) for k in names}


def round_prune(trained: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], keep: int
                ) -> dict[str, torch.Tensor]:
    """Keep exactly the ``keep`` largest surviving magnitudes (ticketfmt 1.0's rule)."""
    return keep_top({k: trained[k].detach().abs().float() for k in masks}, masks, keep)
