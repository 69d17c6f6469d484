"""One-shot pruning of tickets to an exact sparsity, with any method of the registry.

Every method hits the requested sparsity exactly: it keeps ``round((1 - S) * N)`` of the
``N`` prunable weights (ties broken by position, so results are reproducible). With
``like=other``, the per-layer densities of ``other`` are matched layer by layer instead
(the matched-sparsity baselines of the Elastic LTH paper).

Example:
    >>> from ticketfmt import Ticket, build_model, prune
    >>> ticket = Ticket.from_model(build_model("cifar_resnet20", seed=0), "cifar_resnet20")
    >>> round(prune(ticket, 0.8, method="magnitude").sparsity, 4)
    0.8
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ticketfmt.errors import MaskError, TicketError
from ticketfmt.pruning.registry import get_pruner
from ticketfmt.ticket import Ticket

__all__ = ["prune", "keep_top", "layer_counts_like"]


def keep_top(scores: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], keep: int) -> dict[str, torch.Tensor]:
    """Global top-``keep`` of ``scores`` among the currently unmasked weights."""
    names = list(masks)
    flat = torch.cat([torch.where(masks[k], scores[k].float(), float("-inf")).reshape(-1) for k in names])
    out = torch.zeros(flat.numel(), dtype=torch.bool)
    if keep > 0:
        out[torch.topk(flat, keep, sorted=False).indices] = True
    result, i = {}, 0
    for k in names:
        n = masks[k].numel()
        result[k] = out[i:i + n].reshape(masks[k].shape)
        i += n
    return result


def layer_counts_like(ticket: Ticket, like: Ticket) -> dict[str, int]:
    """How many weights ``like`` keeps in each layer, checked against ``ticket``'s layers."""
    if set(like.masks) != set(ticket.masks):
        odd = sorted(set(like.masks) ^ set(ticket.masks))[0]
        raise MaskError(f"--like ticket ({like.arch}) and this ticket ({ticket.arch}) have different layers "
                        f"(first: {odd!r})", tensor=odd, fix="pass a --like ticket of the same architecture")
    counts = {}
    for k, m in like.masks.items():
        if m.shape != ticket.masks[k].shape:
            raise MaskError(f"--like layer {k!r} has shape {list(m.shape)}, this ticket's is "
                            f"{list(ticket.masks[k].shape)}", tensor=k, fix="pass a --like ticket of the same architecture")
        counts[k] = int(m.sum())
    return counts


def prune(ticket: Ticket, sparsity: float | None = None, method: str = "magnitude", *, like: Ticket | None = None,
          seed: int = 0, **kwargs: Any) -> Ticket:
    """Prune ``ticket`` to ``sparsity`` (or to ``like``'s per-layer densities) with ``method``.

    Weights already pruned stay pruned: the new mask is a subset of the old one. The
    result records the method, the target and the seed in its provenance.

    Example:
        >>> t = prune(ticket, 0.9, method="random", seed=1)  # doctest: +SKIP
    """
    scorer = get_pruner(method)
    total = sum(m.numel() for m in ticket.masks.values())
    current = sum(int(m.sum()) for m in ticket.masks.values())
    counts = layer_counts_like(ticket, like) if like is not None else None
    if counts is not None:
        kwargs.setdefault("target_sparsity", 1.0 - sum(counts.values()) / total)
    elif sparsity is not None:
        kwargs.setdefault("target_sparsity", sparsity)
    if counts is None and (sparsity is None or not 0.0 <= sparsity < 1.0):
        raise TicketError(f"sparsity must be in [0, 1), got {sparsity}", fix="pass --sparsity 0.9 for 90%")
    scores = scorer(ticket, seed=seed, **kwargs)
    if counts is not None:
        masks = {}
        for k, m in ticket.masks.items():
            alive = int(m.sum())
            if counts[k] > alive:
                raise MaskError(f"layer {k!r} keeps {alive} weights, fewer than the {counts[k]} of the --like ticket",
                                tensor=k, fix="prune a denser ticket (for example the level-0 ticket from `ticket new`)")
            masks[k] = keep_top({k: scores[k]}, {k: m}, counts[k])[k]
        target = 1.0 - sum(counts.values()) / total
    else:
        if sparsity is None or not 0.0 <= sparsity < 1.0:
            raise TicketError(f"sparsity must be in [0, 1), got {sparsity}", fix="pass --sparsity 0.9 for 90%")
        keep = round((1.0 - sparsity) * total)
        if keep > current:
            raise TicketError(f"the ticket is already {1 - current / total:.2%} sparse, above the requested "
                              f"{sparsity:.2%}", fix="ask for a higher --sparsity")
        masks = keep_top(scores, ticket.masks, keep)
        target = sparsity
    provenance = dict(ticket.provenance)
    history = list(provenance.get("pruning", []))
    history.append({"method": method, "sparsity": round(target, 6), "seed": seed,
                    **({"like": like.arch, "like_sha256": like.file_sha256} if like is not None else {})})
    provenance["pruning"] = history
    return ticket.replace(masks=masks, provenance=provenance, results=[])
