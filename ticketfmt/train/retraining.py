"""How a ticket retrains from its rewind step: its training contract, the plan, the data options, the run, the record.

The building blocks that :func:`ticketfmt.train.verify` (one retraining) and
:func:`ticketfmt.train.lmc` (two copies from the same point) share, so both start, train and
record a ticket the same way.

Example:
    >>> training_contract({"method": "init"})
    ({'rewind': '0'}, 'ticket')
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ticketfmt.errors import DataError, TicketError
from ticketfmt.ticket import Ticket
from ticketfmt.train.dist import Dist, device_name
from ticketfmt.train.fidelity import ImpOptions
from ticketfmt.train.loop import ProgressFn, Span, Stop, Trainer, data_stream, train_steps
from ticketfmt.train.planning import estimate_fields, loader_images, machine_fields, seconds_per_image
from ticketfmt.train.recipes import Recipe, get_recipe, protocol, recipe_for
from ticketfmt.train.resumable import Progress, VerifyCheckpoint, ticket_digest
from ticketfmt.train.runfiles import RunLog, now

__all__ = ["CONTRACT_FIELDS", "training_contract", "VerifyPlan", "resolve_recipe", "contract_seed", "make_plan",
           "data_options", "train_span", "checkpoint_config", "open_checkpoint", "result_record", "announce"]

CONTRACT_FIELDS = ("recipe", "rewind", "rewind_step", "steps_per_epoch", "dataset", "subset", "seed", "normalize",
                   "resize", "crop")
"""The provenance fields that say how a ticket trains (a converted ticket carries its source's)."""


def training_contract(provenance: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """A ticket's training contract and where it was read: ``"ticket"`` or ``"source_provenance"``.

    Fields missing at the top level are taken from ``source_provenance`` (recursively, for a
    conversion of a conversion). A ticket made by ``ticket new`` (method ``init``) rewinds to 0; an
    IMP ticket of ticketfmt 1.0 (no ``imp_options`` recorded) was trained with ``normalize="cifar"``.

    Example:
        >>> training_contract({"method": "elastic", "source_provenance": {"rewind": "20it", "seed": 3}})
        ({'rewind': '20it', 'seed': 3}, 'source_provenance')
    """
    own = {k: provenance[k] for k in CONTRACT_FIELDS if provenance.get(k) is not None}
    if provenance.get("method") == "init":
        own.setdefault("rewind", "0")
    if provenance.get("method") == "imp" and "imp_options" not in provenance:
        own.setdefault("normalize", "cifar")  # ticketfmt 1.0's IMP tickets were trained on the data's own statistics
    source = provenance.get("source_provenance")
    if not isinstance(source, Mapping):
        return own, "ticket"
    inherited, _ = training_contract(source)
    return {**inherited, **own}, ("ticket" if "rewind" in own else "source_provenance")


@dataclass(frozen=True)
class VerifyPlan:
    """What :func:`verify` trains: the recipe, the steps ``start_step .. total_steps``, the seed and data stream."""

    recipe: Recipe
    seed: int
    steps_per_epoch: int
    start_step: int
    total_steps: int
    stream: int
    contract: str
    from_scratch: bool
    normalize: str = "reference"
    resize: bool = False
    crop: str = "reference"

    @property
    def start_lr(self) -> float:
        """The learning rate of the first step (the schedule fast-forwarded to ``start_step``)."""
        return self.recipe.lr_at(self.start_step, self.steps_per_epoch)

    def event(self) -> dict[str, Any]:
        return {"phase": "plan", "command": "verify", "start_step": self.start_step, "steps": self.total_steps,
                "lr": self.start_lr, "rewind": self.recipe.rewind, "contract": self.contract,
                "from_scratch": self.from_scratch, "recipe": self.recipe.describe(), "epochs": self.recipe.epochs,
                "steps_per_epoch": self.steps_per_epoch, "steps_left": self.total_steps - self.start_step}


def resolve_recipe(ticket: Ticket, contract: Mapping[str, Any], recipe: str | Recipe | None,
            overrides: Mapping[str, Any]) -> Recipe:
    if isinstance(recipe, Recipe):
        base = recipe
    elif recipe is not None:
        base = get_recipe(recipe)
    elif isinstance(contract.get("recipe"), Mapping):
        base = Recipe.from_json(contract["recipe"], source=f"the provenance of {ticket.path or 'the ticket'}")
    else:
        base = recipe_for(ticket.spec)
    rewind = overrides.get("rewind")
    if rewind is None and contract.get("rewind") is not None:
        rewind = str(contract["rewind"])
    return base.override(**{**overrides, "rewind": rewind})


def contract_seed(ticket: Ticket, contract: Mapping[str, Any], seed: int | None) -> int:
    """The seed asked for, else the contract's, else 0; checked (a file's value too).

    Example:
        >>> contract_seed(Ticket.load("r20.ticket"), {"seed": 3}, None)  # doctest: +SKIP
        3
    """
    seed = contract.get("seed", 0) if seed is None else seed
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63):
        raise TicketError(f"seed {seed!r} (of {ticket.path or 'the ticket'}'s provenance unless given) is not an "
                          "integer in [0, 2**63)", fix="pass --seed 0")
    return seed


def make_plan(ticket: Ticket, recipe: Recipe, seed: int, spe: int, contract: str, from_scratch: bool,
          data_options: Mapping[str, Any]) -> VerifyPlan:
    prov = ticket.provenance
    total = recipe.total_steps(spe)
    start = 0 if from_scratch else recipe.rewind_step(spe)
    if start >= total:
        raise TicketError(f"the ticket's rewind point {recipe.rewind} (step {start}) is not before the end of training "
                          f"({total} steps, {spe} an epoch)",
                          fix="train longer (--epochs), rewind earlier (--rewind), or pass --from-scratch")
    # an IMP ticket retrains on the batches of its own level (every level's, by the reference's order)
    stream = 0
    if prov.get("method") == "imp":
        stream = data_stream(int(prov.get("level", 0)), ImpOptions.from_provenance(prov).data_order)
    return VerifyPlan(recipe, seed, spe, start, total, stream, contract, from_scratch, **data_options)


def data_options(ticket: Ticket, dataset: str, contract: Mapping[str, Any], data_dir: Any,
                  asked: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """``normalize``/``resize``/``crop`` (asked, else the contract's, else the reference's) and the augmentation.

    The input pipeline follows the ticket's input size and the data; a mismatch fails here, before any work.
    """
    from ticketfmt import data as D

    dspec = D.get_spec(dataset)
    if dspec.num_classes and dspec.num_classes != ticket.num_classes:
        raise DataError(f"{dataset} has {dspec.num_classes} classes but the ticket's {ticket.arch} head has "
                        f"{ticket.num_classes}", fix="verify on the dataset the ticket was made for")
    defaults = {"normalize": "reference", "resize": False, "crop": "reference"}
    opts = {k: asked[k] if asked.get(k) is not None else contract.get(k, v) for k, v in defaults.items()}
    opts["normalize"], opts["crop"], opts["resize"] = str(opts["normalize"]), str(opts["crop"]), bool(opts["resize"])
    pipe = D.input_pipeline(dataset, ticket.spec, data_dir=data_dir, **opts)
    return opts, pipe.augmentation


def train_span(trainer: Trainer, data: Any, plan: VerifyPlan, level: Any, emit: ProgressFn | None,
           log: RunLog, checkpoint: VerifyCheckpoint | None = None) -> Span:
    """Train the plan's steps (from the step a restored ``checkpoint`` reached).

    With ``checkpoint``, the state is saved at every epoch's end and when a stop (SIGINT/SIGTERM)
    is honoured. The span returned counts the whole retraining, the resumed part's images and
    seconds included.
    """
    t0 = time.perf_counter()
    spe, total = plan.steps_per_epoch, plan.total_steps
    resumed = checkpoint.resumed if checkpoint is not None else None
    start = resumed.step if resumed is not None else plan.start_step
    prior = resumed if resumed is not None else Progress(start)

    def so_far(s: int) -> Progress:  # a stop mid-epoch has no measured span yet: count full batches
        return Progress(s, prior.seconds + time.perf_counter() - t0,
                        prior.images + (s - start) * plan.recipe.batch_size)

    def report(s: int, stats: dict[str, float]) -> None:
        if emit is None:
            return
        elapsed = time.perf_counter() - t0
        eta = (total - s) * elapsed / (s - start) if s > start else None
        emit({"phase": "train", "level": level, "levels": None, "epoch": (s - 1) // spe + 1,
              "epochs": plan.recipe.epochs, "step": s, "steps": total, "start_step": start, "eta_s": eta, **stats})

    def emit_epoch(epoch: int, s: int, stats: dict[str, float], complete: bool) -> None:
        if emit is not None:
            emit({"phase": "epoch", "level": level, "levels": None, "epoch": epoch, "epochs": plan.recipe.epochs,
                  "step": s, "complete": complete, **stats})

    def on_epoch(epoch: int, s: int, stats: dict[str, float]) -> None:
        log.write({"event": "epoch", "epoch": epoch + 1, "step": s, **stats})
        if checkpoint is not None and s < total:
            checkpoint.save(trainer, so_far(s))
        emit_epoch(epoch + 1, s, stats, True)

    def on_stop(epoch: int, s: int, stats: dict[str, float]) -> None:
        emit_epoch(epoch + 1, s, stats, False)
        if checkpoint is not None and checkpoint.path is not None:
            checkpoint.save(trainer, so_far(s))
            if emit is not None:
                emit({"phase": "interrupted", "step": s, "checkpoint": str(checkpoint.path)})

    stop = Stop()
    with stop.installed():
        span = train_steps(trainer, data.train, plan.recipe, start=start, end=total, steps_per_epoch=spe,
                           stream=plan.stream, whole_batches=data.whole_batches, report=report, on_epoch=on_epoch,
                           stop=stop, on_stop=on_stop)
    span.images += prior.images
    span.seconds += prior.seconds
    return span


def checkpoint_config(ticket: Ticket, dataset: str, plan: VerifyPlan, subset: int | None, dev: torch.device,
                      dist: Dist) -> dict[str, Any]:
    """What a retraining's checkpoint must agree with to be continued (the CPU thread count too: results
    depend on it)."""
    return {"ticket": ticket_digest(ticket), "dataset": dataset, "recipe": plan.recipe.to_json(), "seed": plan.seed,
            "subset": subset, "start_step": plan.start_step, "total_steps": plan.total_steps, "stream": plan.stream,
            "steps_per_epoch": plan.steps_per_epoch, "normalize": plan.normalize, "resize": plan.resize,
            "crop": plan.crop, "device": dev.type, "world_size": dist.world_size,
            "threads": torch.get_num_threads() if dev.type == "cpu" else None}


def open_checkpoint(path: str | os.PathLike[str] | None, ticket: Ticket, dataset: str, plan: VerifyPlan,
                    subset: int | None, trainer: Trainer, emit: ProgressFn | None) -> VerifyCheckpoint:
    """A retraining's checkpoint (keeping nothing without a path), loaded into ``trainer`` when the file exists."""
    config = checkpoint_config(ticket, dataset, plan, subset, trainer.device, trainer.dist) if path is not None else {}
    ckpt = VerifyCheckpoint(None if path is None else Path(path), config, trainer.dist)
    if ckpt.restore(trainer) is not None and emit is not None:
        emit({"phase": "resume", "step": ckpt.resumed.step, "checkpoint": str(path)})
    return ckpt


def result_record(ticket: Ticket, dataset: str, plan: VerifyPlan, subset: int | None, correct: int, seen: int,
            span: Span, dev: torch.device, dist: Dist, split: str,
            checkpoint: VerifyCheckpoint | None = None) -> dict[str, Any]:
    rec = plan.recipe
    kind, why = protocol(rec, subset)
    record: dict[str, Any] = {
        "dataset": dataset, "split": split, "metric": "top1", "value": round(100.0 * correct / max(seen, 1), 2),
        "correct": correct, "total": seen, "epochs": rec.epochs, "subset": subset, "seed": plan.seed,
        "protocol": kind, **({"protocol_note": why} if why else {}),
        "recipe": rec.to_json(), "date": now(), "device": device_name(dev), "threads": torch.get_num_threads(),
        "world_size": dist.world_size, "images_per_sec": round(span.images_per_sec, 1) if span.seconds > 0 else None,
        "source": "verify", "start_step": plan.start_step, "start_lr": plan.start_lr, "rewind": rec.rewind,
        "contract": plan.contract, "steps": plan.total_steps - plan.start_step, "from_scratch": plan.from_scratch,
        "normalize": plan.normalize, "crop": plan.crop, "augmentation": rec.augmentation,
        **({"resize": True} if plan.resize else {}),
        "sparsity": round(ticket.sparsity, 6),
    }
    for key in ("dense_reference", "imp_reference"):
        if isinstance(ticket.provenance.get(key), Mapping):
            record[key] = dict(ticket.provenance[key])
    if checkpoint is not None and checkpoint.resumed is not None:  # lmc's copies keep no checkpoint
        record["resumed_at_step"] = checkpoint.resumed.step
    return record


def announce(plan: VerifyPlan, trainer: Trainer, data: Any, dataset: str, ticket: Ticket, subset: int | None,
              emit: ProgressFn) -> None:
    """Send the plan event: the steps, the recipe, the device and data, and the time a short timing predicts."""
    spi = seconds_per_image(trainer, data.train)
    emit({**plan.event(), "arch": ticket.arch, "sparsity": ticket.sparsity, "dataset": dataset, "split": data.split,
          "augmentation": data.augmentation, "notice": data.notice, "test_images": loader_images(data.test),
          **machine_fields(trainer.device, trainer.dist, torch.get_num_threads()),
          **estimate_fields(plan.recipe, plan.total_steps - plan.start_step, trainer.dist, spi,
                            loader_images(data.train), subset)})
