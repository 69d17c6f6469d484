"""One-shot pruning of tickets to an exact sparsity, with any method of the registry.

Every method hits the requested sparsity exactly: it keeps ``round((1 - S) * N)`` of the
``N`` prunable weights (ties broken by position, so results are reproducible). With
``like=other``, the per-layer densities of ``other`` are matched layer by layer instead
(the matched-sparsity baselines of the Elastic LTH paper).

A result that prunes a whole layer is refused unless asked (``allow_empty_layers``): an empty
layer cuts the network. ``keep_dense`` (layers left unpruned, open_lth's
``pruning_layers_to_ignore``) and ``min_density`` (a floor per layer) are the remedies.

Example:
    >>> from ticketfmt import Ticket, build_model, prune
    >>> ticket = Ticket.from_model(build_model("cifar_resnet20", seed=0), "cifar_resnet20")
    >>> round(prune(ticket, 0.8, method="magnitude").sparsity, 4)
    0.8
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ticketfmt.checks import empty_layers, refuse_empty_layers
from ticketfmt.errors import MaskError, TicketError
from ticketfmt.pruning.registry import get_pruner
from ticketfmt.pruning.reinit import reinit
from ticketfmt.ticket import Ticket

__all__ = ["prune", "keep_top", "layer_counts_like", "dense_layers", "collapse_fix"]


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


def dense_layers(ticket: Ticket, patterns: Iterable[str]) -> list[str]:
    """The prunable layers ``patterns`` name, in the ticket's order (what ``--keep-dense`` keeps unpruned).

    A pattern is a mask name (``fc.weight``), a module (``fc``, ``layer4``: every prunable
    weight under it) or a shell pattern (``layer4.*.conv3.weight``). A pattern that names no
    prunable layer is an error (with the closest name), so a typo never prunes what it meant to keep.

    Example:
        >>> from ticketfmt import Ticket, build_model
        >>> t = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
        >>> dense_layers(t, ["fc", "conv1"])
        ['conv1.weight', 'fc.weight']
    """
    names = list(ticket.masks)
    chosen: set[str] = set()
    for raw in patterns:
        pattern = raw.strip()
        if not pattern:
            continue
        hits = {n for n in names if n == pattern or n.startswith(pattern + ".")
                or (any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(n, pattern))}
        if not hits:
            close = difflib.get_close_matches(pattern, names + sorted({n.rsplit(".", 1)[0] for n in names}), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise MaskError(f"--keep-dense {pattern!r} names no prunable layer of {ticket.arch}", tensor=pattern,
                            fix=f"{hint}give a layer or module name such as {names[-1].rsplit('.', 1)[0]!r} or "
                                f"{names[0]!r} (`ticket info FILE` lists the layers)")
        chosen |= hits
    return [n for n in names if n in chosen]


def _floor(ticket: Ticket, scores: Mapping[str, torch.Tensor], dense: list[str],
           min_density: float) -> dict[str, torch.Tensor]:
    """The weights kept whatever the global ranking: every surviving weight of ``dense``, and per other layer
    its best-scored ``ceil(min_density * size)`` survivors (all of them when fewer survive)."""
    reserved = {}
    for k, m in ticket.masks.items():
        if k in dense:
            reserved[k] = m.clone()
        elif min_density > 0:
            want = min(int(m.sum()), math.ceil(min_density * m.numel()))
            reserved[k] = keep_top({k: scores[k]}, {k: m}, want)[k]
        else:
            reserved[k] = torch.zeros_like(m)
    return reserved


def _global_masks(ticket: Ticket, scores: Mapping[str, torch.Tensor], sparsity: float, dense: list[str],
                  min_density: float) -> dict[str, torch.Tensor]:
    """Exactly ``round((1 - sparsity) * N)`` weights kept: the floor of :func:`_floor`, then the global best."""
    total = sum(m.numel() for m in ticket.masks.values())
    current = sum(int(m.sum()) for m in ticket.masks.values())
    keep = round((1.0 - sparsity) * total)
    if keep > current:
        raise TicketError(f"the ticket is already {1 - current / total:.2%} sparse, above the requested "
                          f"{sparsity:.2%}", fix="ask for a higher --sparsity")
    if not dense and min_density <= 0:
        return keep_top(scores, ticket.masks, keep)
    reserved = _floor(ticket, scores, dense, min_density)
    floor = sum(int(r.sum()) for r in reserved.values())
    if floor > keep:
        raise TicketError(f"--keep-dense/--min-density keep {floor:,} weights, more than the {keep:,} that "
                          f"{sparsity:.2%} sparsity leaves", fix="keep fewer layers dense, lower --min-density, "
                                                                 "or ask for a lower --sparsity")
    free = {k: ticket.masks[k] & ~reserved[k] for k in ticket.masks if k not in dense}
    rest = keep_top({k: scores[k] for k in free}, free, keep - floor) if free else {}
    return {k: reserved[k] | rest[k] if k in rest else reserved[k] for k in ticket.masks}


def _like_masks(ticket: Ticket, scores: Mapping[str, torch.Tensor], counts: Mapping[str, int]
                ) -> dict[str, torch.Tensor]:
    masks = {}
    for k, m in ticket.masks.items():
        alive = int(m.sum())
        if counts[k] > alive:
            raise MaskError(f"layer {k!r} keeps {alive} weights, fewer than the {counts[k]} of the --like ticket",
                            tensor=k, fix="prune a denser ticket (for example the level-0 ticket from `ticket new`)")
        masks[k] = keep_top({k: scores[k]}, {k: m}, counts[k])[k]
    return masks


def collapse_fix(ticket: Ticket, layers: Iterable[str]) -> str:
    """The remedies offered when pruning would empty ``layers`` (CLI flags, then the Python arguments)."""
    modules = ",".join(dict.fromkeys(n.rsplit(".", 1)[0] for n in layers))
    return (f"keep it dense with --keep-dense {modules} (keep_dense=[...]), keep a minimum per layer with "
            "--min-density 0.01 (min_density=0.01), or pass --allow-empty-layers (allow_empty_layers=True) to write "
            "it anyway")


def _reinit(ticket: Ticket, sparsity: float | None, like: Ticket | None, seed: int | None,
            init: str | None = None, **_: Any) -> Ticket:
    """``method="reinit"``: ``like``'s mask and contract on a fresh initialization (:func:`~ticketfmt.pruning.reinit.reinit`)."""
    if like is None:
        raise TicketError("reinit keeps the mask of another ticket", fix="pass --like T (like=T)")
    layer_counts_like(ticket, like)  # the same architecture and layers
    if sparsity is not None and abs(sparsity - like.sparsity) > 1e-6:
        raise TicketError(f"reinit keeps the --like ticket's sparsity ({like.sparsity:.2%}), not {sparsity:.2%}",
                          fix="drop --sparsity")
    return reinit(like, seed, init=init)


def prune(ticket: Ticket, sparsity: float | None = None, method: str = "magnitude", *, like: Ticket | None = None,
          seed: int | None = None, keep_dense: Iterable[str] = (), min_density: float = 0.0, allow_empty_layers: bool = False,
          **kwargs: Any) -> Ticket:
    """Prune ``ticket`` to ``sparsity`` (or to ``like``'s per-layer densities) with ``method``.

    Weights already pruned stay pruned: the new mask is a subset of the old one. The
    result records the method, the target and the seed in its provenance.

    Global pruning can empty a whole layer (a fresh timm ResNet-50 at 80% by magnitude loses
    all of ``fc.weight``: its initial weights are the smallest), which cuts the network. That
    is refused with a :class:`~ticketfmt.errors.MaskError` naming the layer, unless
    ``allow_empty_layers``. The remedies: ``keep_dense`` (layers or modules left unpruned,
    as open_lth's ``pruning_layers_to_ignore``; their weights still count in the sparsity, so the
    others are pruned harder) and ``min_density`` (every layer keeps at least this fraction
    of its weights, its best-scored ones). The total sparsity stays exact with both.

    ``method="reinit"``: ``like``'s mask and contract on a fresh init (:func:`~ticketfmt.pruning.reinit`).

    Example:
        >>> t = prune(ticket, 0.9, method="random", seed=1)  # doctest: +SKIP
        >>> t = prune(resnet50_ticket, 0.8, keep_dense=["fc"])  # doctest: +SKIP
    """
    if method == "reinit":
        return _reinit(ticket, sparsity, like, seed, **kwargs)
    seed = 0 if seed is None else seed
    scorer = get_pruner(method)
    total = sum(m.numel() for m in ticket.masks.values())
    counts = layer_counts_like(ticket, like) if like is not None else None
    if counts is None and (sparsity is None or not 0.0 <= sparsity < 1.0):
        raise TicketError(f"sparsity must be in [0, 1), got {sparsity}", fix="pass --sparsity 0.9 for 90%")
    if not 0.0 <= min_density <= 1.0:
        raise TicketError(f"min_density must be in [0, 1], got {min_density}", fix="pass --min-density 0.01 for 1%")
    dense = dense_layers(ticket, keep_dense)
    if counts is not None and (dense or min_density > 0):
        raise TicketError("--keep-dense and --min-density do not apply with --like (it fixes every layer's count)",
                          fix="drop them, or prune to a --sparsity instead")
    target = 1.0 - sum(counts.values()) / total if counts is not None else float(sparsity)  # type: ignore[arg-type]
    kwargs.setdefault("target_sparsity", target)
    scores = scorer(ticket, seed=seed, **kwargs)
    if counts is not None:
        masks = _like_masks(ticket, scores, counts)
    else:
        masks = _global_masks(ticket, scores, target, dense, min_density)
    empty = empty_layers({k: (int(m.sum()), m.numel()) for k, m in masks.items()})
    if empty and not allow_empty_layers:
        refuse_empty_layers({k: (0, masks[k].numel()) for k in empty}, f"{method} pruning to {target:.2%} sparsity",
                            fix=collapse_fix(ticket, empty))
    step: dict[str, Any] = {"method": method, "sparsity": round(target, 6), "seed": seed}
    if empty:
        step["empty_layers"] = empty  # written on request (allow_empty_layers): said in the provenance
    if like is not None:
        step.update(like=like.arch, like_sha256=like.file_sha256)
    if dense:
        step["keep_dense"] = dense
    if min_density > 0:
        step["min_density"] = min_density
    provenance = dict(ticket.provenance)
    provenance["pruning"] = [*provenance.get("pruning", []), step]
    return ticket.replace(masks=masks, provenance=provenance, results=[])
