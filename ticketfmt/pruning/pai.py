"""Pruning at initialization: SNIP, GraSP and SynFlow, registered as methods of :func:`ticketfmt.pruning.prune`.

These are the baselines the Elastic LTH paper compares transformed tickets against. Each is
a scorer ``(ticket, **kwargs) -> {name: scores}`` (higher = keep); :func:`~ticketfmt.pruning.prune`
then keeps exactly ``round((1 - S) · N)`` weights (or the per-layer counts of ``like``), so
every method hits the requested sparsity exactly. Weights the ticket already prunes stay
pruned.

- ``snip`` (Lee et al., 2019): connection sensitivity ``|θ ⊙ ∂L/∂θ|`` summed over ``batches``
  training batches. Needs ``data``.
- ``grasp`` (Wang et al., 2020): keeps the weights whose removal least reduces the gradient
  flow, score ``θ ⊙ Hg`` (``H`` the Hessian and ``g`` the gradient of the loss with logits
  divided by ``temperature`` = 200). Needs ``data``.
- ``synflow`` (Tanaka et al., 2020): data-free and iterative: ``rounds`` (100) rounds of
  scoring ``|θ ⊙ ∂R/∂θ|`` with ``R`` the sum of the output of the network with absolute
  weights on an all-ones input (float64, BatchNorm in eval mode), pruning to an
  exponentially decreasing density, every round exact through
  :func:`~ticketfmt.pruning.keep_top`. The target comes from ``prune`` (``target_sparsity``).

``data`` is an iterable of ``(images, labels)`` batches (a list, or a loader of
:mod:`ticketfmt.data`); ``batches`` says how many are used; ``device`` where to compute.

Example:
    >>> import ticketfmt.pruning.pai  # registers snip, grasp, synflow  # doctest: +SKIP
    >>> from ticketfmt.pruning import prune  # doctest: +SKIP
    >>> prune(ticket, 0.9, method="synflow").sparsity  # doctest: +SKIP
    0.9
    >>> batches = data_batches("cifar10", 4)  # doctest: +SKIP
    >>> prune(ticket, 0.9, method="snip", data=batches).sparsity  # doctest: +SKIP
    0.9
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ticketfmt.errors import TicketError
from ticketfmt.pruning.core import keep_top
from ticketfmt.pruning.registry import register_pruner
from ticketfmt.ticket import Ticket

__all__ = ["snip_scores", "grasp_scores", "synflow_scores", "data_batches", "DATA_METHODS"]

DATA_METHODS = ("snip", "grasp")
"""The methods that need training batches (``data=``)."""


def data_batches(dataset: str, batches: int, *, batch_size: int = 128, data_dir: str | Path | None = None,
                 seed: int = 0, device: str | torch.device = "cpu", input_size: Any = None, resize: bool = False,
                 normalize: str = "reference", crop: str = "reference", augment: bool | None = None
                 ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``batches`` shuffled training batches of a dataset (what ``--dataset/--batches`` use).

    ``augment``: whether the batches are augmented like training batches (default: yes); pass
    False for a network whose recipe trains without augmentation (the LeNets on MNIST).

    The batches are made for a network of ``input_size`` (pass the ticket's ``spec``): the input
    pipeline follows it and the data (:func:`ticketfmt.data.input_pipeline`; ``resize``,
    ``normalize`` and ``crop`` are its options), so a CIFAR network scores 32x32 batches of an
    ``imagefolder:`` tree of 32x32 images, not 224x224 upscales.

    Example:
        >>> batches = data_batches("cifar10-mini", 2, batch_size=64, input_size=ticket.spec)  # doctest: +SKIP
        >>> len(batches), batches[0][0].shape  # doctest: +SKIP
        (2, torch.Size([64, 3, 32, 32]))
    """
    from ticketfmt.data import make_loader

    if batches < 1:
        raise TicketError(f"batches must be at least 1, got {batches}", fix="pass --batches 1 or more")
    loader = make_loader(dataset, "train", batch_size, True, device, data_dir, seed=seed, input_size=input_size,
                         resize=resize, normalize=normalize, crop=crop, augment=augment)
    loader.set_epoch(0)
    out = list(itertools.islice(iter(loader), batches))
    if len(out) < batches:
        raise TicketError(f"{dataset} has only {len(out)} batches of {batch_size}", fix="ask for fewer --batches")
    return out


def _take(data: Any, batches: int | None, method: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if data is None:
        raise TicketError(f"{method} needs training data", fix="pass --dataset (and --batches), or data=[(x, y), ...]")
    if hasattr(data, "set_epoch"):
        data.set_epoch(0)
    n = 1 if batches is None else int(batches)
    if n < 1:
        raise TicketError(f"batches must be at least 1, got {n}", fix="pass --batches 1 or more")
    out = list(itertools.islice(iter(data), n)) if not isinstance(data, tuple) else [data]
    if not out:
        raise TicketError(f"{method}: the data holds no batches", fix="pass a non-empty dataset")
    return out


def _model(ticket: Ticket, device: str | torch.device, dtype: torch.dtype = torch.float32) -> nn.Module:
    model = ticket.build_model("init").to(device=device, dtype=dtype)
    return model


def _prunable(model: nn.Module, ticket: Ticket) -> dict[str, nn.Parameter]:
    params = dict(model.named_parameters())
    return {k: params[k] for k in ticket.masks}


def snip_scores(ticket: Ticket, data: Any, batches: int | None = 1, device: str | torch.device = "cpu"
                ) -> dict[str, torch.Tensor]:
    """SNIP: ``|θ ⊙ ∂L/∂θ|``, the gradient summed over the batches (BatchNorm in training mode)."""
    batch_list = _take(data, batches, "snip")
    model = _model(ticket, device)
    model.train()
    weights = _prunable(model, ticket)
    model.zero_grad(set_to_none=True)
    for x, y in batch_list:
        F.cross_entropy(model(x.to(device)), y.to(device)).backward()
    return {k: (w.detach() * w.grad).abs().cpu() if w.grad is not None else torch.zeros_like(w).cpu()
            for k, w in weights.items()}


def grasp_scores(ticket: Ticket, data: Any, batches: int | None = 1, device: str | torch.device = "cpu",
                 temperature: float = 200.0) -> dict[str, torch.Tensor]:
    """GraSP: ``θ ⊙ Hg`` (keep high), the official code's ``-θ ⊙ Hg`` negated."""
    batch_list = _take(data, batches, "grasp")
    model = _model(ticket, device)
    model.train()
    names = list(ticket.masks)
    weights = list(_prunable(model, ticket).values())
    grad_w: list[torch.Tensor] | None = None
    for x, y in batch_list:
        loss = F.cross_entropy(model(x.to(device)) / temperature, y.to(device))
        g = torch.autograd.grad(loss, weights)
        grad_w = [gi.detach() for gi in g] if grad_w is None else [a + b.detach() for a, b in zip(grad_w, g)]
    assert grad_w is not None
    model.zero_grad(set_to_none=True)
    for x, y in batch_list:
        loss = F.cross_entropy(model(x.to(device)) / temperature, y.to(device))
        g = torch.autograd.grad(loss, weights, create_graph=True)
        z = sum((gi * gw).sum() for gi, gw in zip(g, grad_w))
        z.backward()  # type: ignore[union-attr]
    return {k: (w.detach() * w.grad).cpu() if w.grad is not None else torch.zeros_like(w).cpu()
            for k, w in zip(names, weights)}


@torch.no_grad()
def _linearize(model: nn.Module) -> None:
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_floating_point():
            t.abs_()


def synflow_scores(ticket: Ticket, target_sparsity: float, rounds: int = 100, device: str | torch.device = "cpu"
                   ) -> dict[str, torch.Tensor]:
    """SynFlow, iterative: returns scores whose global top ``round((1-S)·N)`` are exactly its survivors.

    Survivors score in ``[1, 2]`` (their last-round SynFlow score, normalized), a weight pruned
    in round ``k`` of ``rounds`` scores in ``[-(rounds-k+1), -(rounds-k))``, so per-layer
    selections (``like=``) prefer the weights SynFlow pruned last.
    """
    if target_sparsity is None:
        raise TicketError("synflow needs the target sparsity", fix="call it through prune(ticket, sparsity, 'synflow')")
    if rounds < 1:
        raise TicketError(f"rounds must be at least 1, got {rounds}", fix="pass rounds=100")
    model = _model(ticket, device, torch.float64)
    model.eval()
    _linearize(model)
    weights = _prunable(model, ticket)
    masks = {k: m.to(device) for k, m in ticket.masks.items()}
    total = sum(m.numel() for m in masks.values())
    current = sum(int(m.sum()) for m in masks.values())
    final = round((1.0 - target_sparsity) * total)
    final = min(final, current)
    removed_round = {k: torch.zeros(m.shape, dtype=torch.int64, device=device) for k, m in masks.items()}
    removed_score = {k: torch.zeros(m.shape, dtype=torch.float64, device=device) for k, m in masks.items()}
    c, h, w = ticket.spec.input_size
    ones = torch.ones((1, c, h, w), dtype=torch.float64, device=device)
    original = {k: p.detach().clone() for k, p in weights.items()}
    scores: dict[str, torch.Tensor] = {}
    for k in range(1, rounds + 1):
        keep = round(current * (final / current) ** (k / rounds)) if current else 0
        keep = final if k == rounds else max(keep, final)
        with torch.no_grad():
            for name, p in weights.items():
                p.copy_(original[name] * masks[name])
        model.zero_grad(set_to_none=True)
        model(ones).sum().backward()
        scores = {name: (p.grad * p).detach().abs() if p.grad is not None else torch.zeros_like(p)
                  for name, p in weights.items()}
        new = keep_top(scores, masks, keep)
        for name in masks:
            dropped = masks[name] & ~new[name].to(device)
            removed_round[name][dropped] = k
            removed_score[name][dropped] = scores[name][dropped]
            masks[name] = new[name].to(device)
    top = max((float(s[masks[n]].max()) for n, s in scores.items() if bool(masks[n].any())), default=1.0) or 1.0
    out = {}
    for name, m in masks.items():
        final_score = 1.0 + scores[name] / top
        rs = removed_score[name]
        pruned = -(rounds - removed_round[name] + 1).to(torch.float64) + rs / (rs + 1.0)
        out[name] = torch.where(m, final_score, pruned).float().cpu()
    return out


@register_pruner("snip")
def _snip(ticket: Ticket, *, data: Any = None, batches: int | None = 1, device: str | torch.device = "cpu",
          **_: Any) -> dict[str, torch.Tensor]:
    return snip_scores(ticket, data, batches, device)


@register_pruner("grasp")
def _grasp(ticket: Ticket, *, data: Any = None, batches: int | None = 1, device: str | torch.device = "cpu",
           temperature: float = 200.0, **_: Any) -> dict[str, torch.Tensor]:
    return grasp_scores(ticket, data, batches, device, temperature)


@register_pruner("synflow")
def _synflow(ticket: Ticket, *, target_sparsity: float | None = None, rounds: int = 100,
             device: str | torch.device = "cpu", **_: Any) -> dict[str, torch.Tensor]:
    if target_sparsity is None:
        raise TicketError("synflow needs the target sparsity", fix="call it through prune(ticket, sparsity, 'synflow')")
    return synflow_scores(ticket, target_sparsity, rounds, device)
