"""The reinit baseline: a ticket's mask on a freshly initialized network (open_lth's ``randomly_reinitialize``).

The control of the lottery ticket hypothesis: if the same mask trained from a new random
initialization does as well as the ticket, the ticket's own initialization was not what made it
win. The reference's branch keeps the level's mask, builds the model anew with the run's
initializer and trains it with the lottery's own hyperparameters from the lottery's start step;
:func:`reinit` makes that ticket: ``like``'s masks and training contract (its provenance), the
zoo's initializer (``like``'s own, else the reference's) with a new seed, no trained weights, no
results. ``verify`` then trains it exactly as it would train ``like``.

Example:
    >>> from ticketfmt import Ticket, build_model, prune
    >>> t = prune(Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8"), 0.5)
    >>> r = reinit(t, seed=7)
    >>> r.sparsity == t.sparsity, r.provenance["pruning"][-1]["method"], r.provenance["pruning"][-1]["seed"]
    (True, 'reinit', 7)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ticketfmt.errors import TicketError
from ticketfmt.ticket import Ticket
from ticketfmt.zoo import build_model

__all__ = ["reinit", "REINIT_SEED_OFFSET", "initializer_of"]

REINIT_SEED_OFFSET = 10_000
"""Without a seed, the fresh initialization uses the ticket's seed + this (never the seed of its own init)."""


def initializer_of(provenance: Mapping[str, Any]) -> str:
    """The initializer a ticket's network was made with (``init`` in its provenance or its source's), else the reference's.

    Example:
        >>> initializer_of({"method": "elastic", "source_provenance": {"init": "library"}}), initializer_of({})
        ('library', 'reference')
    """
    if provenance.get("init") in ("reference", "library"):
        return str(provenance["init"])
    source = provenance.get("source_provenance")
    return initializer_of(source) if isinstance(source, Mapping) else "reference"


def _default_seed(provenance: Mapping[str, Any]) -> int:
    seed = provenance.get("seed")
    source = provenance.get("source_provenance")
    if seed is None and isinstance(source, Mapping):
        return _default_seed(source)
    return int(seed or 0) + REINIT_SEED_OFFSET


def reinit(like: Ticket, seed: int | None = None, *, init: str | None = None) -> Ticket:
    """``like``'s masks and training contract on a network freshly initialized with ``seed``.

    ``init`` is the zoo's initializer (``"reference"`` or ``"library"``; default: ``like``'s own,
    :func:`initializer_of`); ``seed`` defaults to ``like``'s seed + :data:`REINIT_SEED_OFFSET`. The
    provenance is ``like``'s with a ``pruning`` step ``{"method": "reinit", "seed", "init", "like",
    "like_sha256", "sparsity"}``; trained weights and results are dropped (they belong to ``like``).

    Raises:
        TicketError: an unknown initializer, or a seed that gives back ``like``'s own initial weights.
    """
    init = initializer_of(like.provenance) if init is None else init
    if init not in ("reference", "library"):
        raise TicketError(f"unknown initializer {init!r}", fix="use init='reference' or init='library'")
    seed = _default_seed(like.provenance) if seed is None else int(seed)
    step = {"method": "reinit", "sparsity": round(like.sparsity, 6), "seed": seed, "init": init, "like": like.arch,
            "like_sha256": like.file_sha256}
    provenance = {**like.provenance, "pruning": [*like.provenance.get("pruning", []), step]}
    fresh = Ticket.from_model(build_model(like.spec, seed=seed, init=init), like.spec, masks=like.masks,
                              provenance=provenance)
    if all(torch.equal(fresh.init[k][m], like.init[k][m]) for k, m in like.masks.items()):
        raise TicketError(f"seed {seed} gives back the ticket's own initial weights: that is not a reinitialization",
                          fix="pass another --seed (the default is the ticket's seed + 10000)")
    return fresh
