"""The two data-free one-shot methods: global ``magnitude`` and ``random`` (registered on import).

Example:
    >>> from ticketfmt import Ticket, build_model
    >>> from ticketfmt.pruning import prune
    >>> ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    >>> round(prune(ticket, 0.5, method="random", seed=1).sparsity, 4)
    0.5
"""

from __future__ import annotations

from typing import Any

import torch

from ticketfmt.pruning.registry import register_pruner
from ticketfmt.ticket import Ticket

__all__ = ["magnitude_scores", "random_scores"]


@register_pruner("magnitude")
def magnitude_scores(ticket: Ticket, **_: Any) -> dict[str, torch.Tensor]:
    """``|θ|`` of the trained weights when the ticket holds some (one-shot pruning after training), else of init."""
    weights = ticket.trained if ticket.trained is not None else ticket.init
    return {k: weights[k].detach().abs().float() for k in ticket.masks}


@register_pruner("random")
def random_scores(ticket: Ticket, *, seed: int = 0, **_: Any) -> dict[str, torch.Tensor]:
    """Uniform random scores from a generator seeded with ``seed`` (the same seed, the same masks)."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(m.shape, generator=g) for k, m in ticket.masks.items()}
