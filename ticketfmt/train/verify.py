"""The evaluator (:func:`verify`): retrain a ticket with its mask fixed from its rewind step, record its test top-1.

A ticket trains by its own *training contract*: the ``recipe``, ``rewind`` point and
``seed`` at the top level of its provenance (:func:`training_contract`). A converted ticket
written before converters copied the contract up falls back to its ``source_provenance``, so
a converted ticket starts, as the reference's change-depth branch (Elastic LTH) does, at the
source lottery's rewind step with the learning-rate schedule fast-forwarded to that step.

Example:
    >>> from ticketfmt import Ticket  # doctest: +SKIP
    >>> verified, record = verify(Ticket.load("r56.ticket"), "cifar10")  # doctest: +SKIP
    >>> record["start_step"], record["value"]  # doctest: +SKIP
    (20, 91.3)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ticketfmt.errors import TicketError
from ticketfmt.ticket import Ticket
from ticketfmt.train.dist import cpu_threads, start_run
from ticketfmt.train.loop import ProgressFn, Trainer, evaluate
from ticketfmt.train.recipes import Recipe
from ticketfmt.train.resumable import saved_threads
from ticketfmt.train.retraining import (CONTRACT_FIELDS, VerifyPlan, announce, contract_seed, data_options,
                                        make_plan, open_checkpoint, resolve_recipe, result_record, train_span,
                                        training_contract)
from ticketfmt.train.rundata import DataFactory, make_data, recipe_for_data
from ticketfmt.train.runfiles import RunLog

__all__ = ["CONTRACT_FIELDS", "training_contract", "VerifyPlan", "Verified", "verify", "budget_of"]


class Verified(NamedTuple):
    """:func:`verify`'s answer: a new ticket with the record appended to its results, and the record."""

    ticket: Ticket
    record: dict[str, Any]


def budget_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`verify` keywords that re-run a recorded result with its own budget (to reproduce it).

    The whole recorded recipe (epochs, batch, schedule, rewind point), the subset, seed, start
    (``from_scratch``), input options and, for a CPU result, its thread count: on the same
    machine and torch build a CPU result is reproduced exactly; on another thread count or
    device, float rounding moves the value (by tenths of a point, up to a point or two at
    small budgets: see docs/FIDELITY.md).

    Example:
        >>> verified, again = verify(ticket, "cifar10", **budget_of(ticket.results[-1]))  # doctest: +SKIP
        >>> again["value"] == ticket.results[-1]["value"]  # doctest: +SKIP
        True
    """
    if not isinstance(record.get("recipe"), Mapping):
        raise TicketError("the result records no recipe", fix="re-verify with explicit --epochs/--subset/--seed")
    recipe = Recipe.from_json(record["recipe"], source="the ticket's last result")
    out: dict[str, Any] = {"recipe": recipe, "rewind": recipe.rewind, "subset": record.get("subset"),
                           "seed": record.get("seed"), "from_scratch": bool(record.get("from_scratch", False))}
    for key in ("normalize", "crop", "resize"):
        if record.get(key) is not None:
            out[key] = record[key]
    if str(record.get("device", "")).startswith("cpu") and record.get("threads"):
        out["threads"] = int(record["threads"])
    return out


def verify(ticket: Ticket, dataset: str, *, from_scratch: bool = False, recipe: str | Recipe | None = None,
           subset: int | None = None, seed: int | None = None, device: str | torch.device | None = "auto",
           data_dir: str | os.PathLike[str] | None = None, compile: bool = False, progress: ProgressFn | None = None,
           sync_bn: bool = True, store_trained: bool = False, log_path: str | os.PathLike[str] | None = None,
           num_workers: int = 2, normalize: str | None = None, data_factory: DataFactory | None = None,
           resize: bool | None = None, crop: str | None = None, threads: int | None = None,
           checkpoint: str | os.PathLike[str] | None = None, **overrides: Any) -> Verified:
    """Retrain a ticket with its mask fixed, record its top-1 on the evaluation split; returns a new ticket and the record.

    Training starts from the ticket's ``init`` weights (``θ_r ⊙ m``) at its rewind step, the learning-rate
    schedule fast-forwarded to it (``from_scratch``: at step 0), with a fresh optimizer. The recipe, rewind
    point and seed are the ticket's training contract (:func:`training_contract`; else the family default),
    with ``overrides`` (``epochs``, ``lr``, ``batch_size``, ``rewind``, ...); ``normalize``, ``resize`` and
    ``crop`` default to the contract's, else the reference's (ImageNet mean/std, no upscaling, open_lth's
    crop). The input pipeline follows the ticket's input size and the data (:func:`~ticketfmt.data.input_pipeline`).
    An IMP ticket verified with the budget it was found with (same seed, subset, epochs, thread
    count) retrains on the very batches of its IMP level, so on the CPU it reproduces the recorded
    accuracy exactly; :func:`budget_of` gives the keywords that re-run a recorded result.

    The record (``dataset``, ``split`` (its real name: ``validation`` for ImageNet), ``metric``,
    ``value`` (top-1, %), ``correct``, ``total``, ``epochs``, ``subset``, ``seed``, ``protocol``
    (``full``, or ``reduced`` with ``protocol_note``: a subset or fewer epochs than the recipe's),
    ``recipe``, ``date``, ``device``, ``threads``, ``images_per_sec``, ``start_step``, ``start_lr``,
    ``rewind``, ``contract``, ``from_scratch``, ``normalize``, ``crop``, ``augmentation``,
    ``dense_reference``/``imp_reference`` when the provenance knows them) is appended to the
    new ticket's results; with ``store_trained`` its trained weights are the retrained ones.
    ``ticket`` itself is not changed. ``threads`` sets torch's CPU threads for the run. A
    ``checkpoint`` file saves the state at each epoch's end and on SIGINT/SIGTERM; a call finding
    it continues (at its thread count) to the uninterrupted run's weights (``resumed_at_step``).

    Raises:
        DataError: the dataset cannot be loaded, is not what its name says, or does not fit the ticket.
        TicketError: bad recipe values, a rewind point not before the end, another retraining's checkpoint.
    """
    contract, origin = training_contract(ticket.provenance)
    options, augmentation = data_options(ticket, dataset, contract, data_dir,
                                          {"normalize": normalize, "resize": resize, "crop": crop})
    seed = contract_seed(ticket, contract, seed)
    rec = recipe_for_data(resolve_recipe(ticket, contract, recipe, overrides), augmentation)
    dist, dev, emit = start_run(device, progress)
    with cpu_threads(saved_threads(checkpoint) if threads is None else threads):
        data = (data_factory or make_data)(dataset, rec, device=dev, dist=dist, data_dir=data_dir, subset=subset,
                                           seed=seed, progress=emit, num_workers=num_workers,
                                           input_size=ticket.spec, **options)
        plan = make_plan(ticket, rec, seed, len(data.train), origin, from_scratch, options)
        trainer = Trainer(ticket.build_model("init"), ticket.masks, rec, device=dev, dist=dist, compile=compile,
                          sync_bn=sync_bn)
        if emit:  # the plan first, then where a checkpoint resumes it
            announce(plan, trainer, data, dataset, ticket, subset, emit)
        ckpt = open_checkpoint(checkpoint, ticket, dataset, plan, subset, trainer, emit)
        log = RunLog(Path(log_path) if log_path else None, dist.is_main)
        span = train_span(trainer, data, plan, ticket.provenance.get("level"), emit, log, ckpt)
        correct, seen = evaluate(trainer.module, data.test, device=dev, dist=dist, progress=emit)
        record = result_record(ticket, dataset, plan, subset, correct, seen, span, dev, dist, data.split, ckpt)
        ckpt.remove()
    log.write({"event": "verify", **{k: v for k, v in record.items() if k != "recipe"}})
    changes: dict[str, Any] = {"results": [*ticket.results, record]}
    if store_trained:
        changes["trained"] = trainer.state_dict()  # the new ticket zeroes the pruned weights
    return Verified(ticket.replace(**changes), record)
