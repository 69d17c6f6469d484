"""IMP with rewinding (:func:`find`): the run as an object (:class:`ImpRun`), one ticket file per level.

As the paper and its reference code (open_lth ``lottery/runner.py``), with the defaults of
:mod:`ticketfmt.train.fidelity`:

1. build ``θ_0`` (seeded) and pre-train densely from step 0 to the rewind step ``r``: ``θ_r``;
   then train the dense network from ``r`` to the end with a fresh optimizer (the
   reference's two runs). The dense run is level 0 (``level-00.ticket``: dense mask, ``θ_r``,
   its test top-1);
2. prune ``ceil(rate × remaining)`` weights by global magnitude of the trained weights
   (ties at the threshold pruned);
3. reset the survivors to ``θ_r`` and train with the mask fixed from step ``r`` (the
   learning-rate schedule continues from there, the optimizer starts fresh, the batches
   are the same at every level); write ``level-LL.ticket`` (mask, ``θ_r ⊙ m``, trained
   weights, provenance, its test top-1); repeat from 2.

Runs survive: a checkpoint (safetensors tensors + JSON metadata, no pickle, optimizer
momentum included) is written atomically after every epoch and at every level, and Ctrl-C
(or SIGTERM) stops at the next step boundary after writing one; ``resume=True`` continues
to the same result. Every random choice derives from the seed (the initialization, the data
order and augmentation of each epoch), so on the CPU a resumed run gives bit-identical
masks and weights.

Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``, each process trains on
its slice of every global batch, BatchNorm statistics are synchronized (``sync_bn``) and
rank 0 writes the files.

Example:
    >>> run = find("cifar_resnet20", "cifar10", levels=5, out_dir="runs/r20", epochs=20)  # doctest: +SKIP
    >>> run.tickets[-1].name, run.accuracies[-1]  # doctest: +SKIP
    ('level-05.ticket', 90.1)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist

from ticketfmt._version import __version__
from ticketfmt.errors import DataError, OutputExistsError, TicketError
from ticketfmt.format.atomic import atomic_write
from ticketfmt.ticket import Ticket
from ticketfmt.train.dist import Dist, barrier, cpu_threads, device_name, start_run
from ticketfmt.train.fidelity import REFERENCE, ImpOptions, imp_keep, reference_prune, round_prune, unpruned_layer_weights
from ticketfmt.train.loop import ProgressFn, Stop, Trainer, data_stream, evaluate, train_steps
from ticketfmt.train.planning import estimate_fields, loader_images, machine_fields, seconds_per_image
from ticketfmt.train.recipes import Recipe, protocol, recipe_for
from ticketfmt.train.rundata import DataFactory, RunData, make_data, recipe_for_data
from ticketfmt.train.runfiles import (CHECKPOINT, METRICS, RUN_CONFIG, RunLog, diff_config, level_name,
                                      load_checkpoint, now, save_checkpoint)
from ticketfmt.zoo import INITS, ArchSpec, build_model, get_arch, prunable_names, state_dict_shapes

__all__ = ["FindResult", "ImpPlan", "ImpRun", "find"]


@dataclass
class FindResult:
    """What :func:`find` produced: one ticket per level (level 0 is the dense rewind point)."""

    out_dir: Path
    tickets: list[Path] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    sparsities: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ImpPlan:
    """The constants of an IMP run (everything but its progress)."""

    spec: ArchSpec
    dataset: str
    levels: int
    rate: float
    recipe: Recipe
    subset: int | None
    seed: int
    options: ImpOptions
    out: Path
    steps_per_epoch: int
    rewind_step: int
    names: tuple[str, ...]
    init: str = "reference"
    normalize: str = "reference"
    eval_every: int = 0
    compile: bool = False
    sync_bn: bool = True
    command: str | None = None
    resize: bool = False
    crop: str = "reference"
    threads: int | None = None

    @property
    def total_steps(self) -> int:
        return self.recipe.total_steps(self.steps_per_epoch)

    def config(self) -> dict[str, Any]:
        """What a resume must agree with (``run.json`` and the checkpoint)."""
        return run_config(self.spec, self.dataset, self.rate, self.recipe, self.subset, self.seed, self.options,
                          self.init, self.normalize, self.resize, self.crop)


def run_config(spec: ArchSpec, dataset: str, rate: float, recipe: Recipe, subset: int | None, seed: int,
               options: ImpOptions, init: str = "reference", normalize: str = "reference", resize: bool = False,
               crop: str = "reference") -> dict[str, Any]:
    """The settings a run folder is bound to (the recipe's ``augmentation`` is the data pipeline's)."""
    rec = recipe.to_json()
    rec.pop("overrides", None)
    return {"arch": spec.id, "num_classes": spec.num_classes, "dataset": dataset, "rate": rate, "recipe": rec,
            "subset": subset, "seed": seed, "imp_options": options.to_json(), "init": init, "normalize": normalize,
            "resize": resize, "crop": crop}


def _reference(record: dict[str, Any] | None, sparsity: float | None = None) -> dict[str, Any] | None:
    if not record:
        return None
    ref = {"value": record["value"], "dataset": record["dataset"], "epochs": record["epochs"],
           "subset": record.get("subset"), "seed": record.get("seed")}
    if sparsity is not None:
        ref["sparsity"] = round(sparsity, 6)
    return ref


class ImpRun:
    """One IMP run in progress: the level, the step, the masks, the rewind weights, the results.

    :meth:`run` alternates :meth:`train_level`, :meth:`finish_level` (evaluate, write the
    level's ticket) and :meth:`prune_and_rewind` until the last level; :meth:`checkpoint`
    saves the whole state, :meth:`restore` reads it back.
    """

    def __init__(self, plan: ImpPlan, data: RunData, dist: Dist, device: torch.device,
                 progress: ProgressFn | None = None) -> None:
        self.plan, self.data, self.dist, self.device = plan, data, dist, device
        self.emit = progress if dist.is_main else None
        self.log = RunLog(plan.out / METRICS, dist.is_main)
        self.level = 0
        self.step = 0
        self.masks: dict[str, torch.Tensor] | None = None
        self.rewind_state: dict[str, torch.Tensor] | None = None
        self.results: dict[str, dict[str, Any]] = {}
        self.speeds: dict[str, float] = {}
        self.trainer = self._trainer()
        self.unpruned = unpruned_layer_weights(self.trainer.module, plan.names)
        self.stop = Stop()
        self._t0 = time.perf_counter()
        self._steps_here = 0

    def _trainer(self) -> Trainer:
        p = self.plan
        return Trainer(build_model(p.spec, seed=p.seed, init=p.init), self.masks, p.recipe, device=self.device, dist=self.dist,
                       compile=p.compile, sync_bn=p.sync_bn)

    # -- start ---------------------------------------------------------------------------------------
    def begin(self) -> None:
        """A fresh run: write ``run.json`` and the first checkpoint."""
        p = self.plan
        if self.dist.is_main:
            p.out.mkdir(parents=True, exist_ok=True)
            info = {**p.config(), "levels": p.levels, "rewind_step": p.rewind_step,
                    "steps_per_epoch": p.steps_per_epoch, "augmentation": p.recipe.augmentation,
                    "input_size": list(p.spec.input_size), "data_notice": self.data.notice,
                    "split": self.data.split, "world_size": self.dist.world_size,
                    "threads": torch.get_num_threads(), "created": now(), "ticketfmt": __version__,
                    "command": p.command}
            atomic_write(p.out / RUN_CONFIG, [json.dumps(info, indent=2).encode()])
        if p.rewind_step == 0:
            self.rewind_state = self.trainer.state_dict()
        self.checkpoint()

    def restore(self, meta: dict[str, Any], groups: dict[str, dict[str, torch.Tensor]]) -> None:
        """Continue from a checkpoint's state."""
        self.level, self.step = int(meta["level"]), int(meta["step"])
        self.results = dict(meta.get("results", {}))
        self.speeds = dict(meta.get("speeds", {}))
        self.masks = {k: v.to(torch.bool) for k, v in groups.get("mask", {}).items()} or None
        self.rewind_state = groups.get("rewind") or None
        self.trainer = self._trainer()
        self.trainer.load(groups["model"], groups.get("momentum"))
        if self.emit:
            self.emit({"phase": "resume", "level": self.level, "step": self.step})
        self.log.write({"event": "resume", "level": self.level, "step": self.step})

    def checkpoint(self) -> None:
        """Save the whole state (rank 0), then wait for every process."""
        p = self.plan
        if self.dist.is_main:
            state = {"config": p.config(), "level": self.level, "step": self.step, "levels": p.levels,
                     "rewind_step": p.rewind_step, "steps_per_epoch": p.steps_per_epoch, "results": self.results,
                     "speeds": self.speeds, "saved": now()}
            save_checkpoint(p.out / CHECKPOINT, state, {"model": self.trainer.state_dict(),
                                                        "momentum": self.trainer.momentum(), "mask": self.masks,
                                                        "rewind": self.rewind_state})
        barrier(self.dist)

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> FindResult:
        """Train, evaluate and prune level after level up to ``plan.levels``."""
        with self.stop.installed():
            while True:
                self.train_level()
                self.finish_level()
                if self.level >= self.plan.levels:
                    break
                if self.stop.check(self.dist, self.device, 0, every=1):
                    self.checkpoint()
                    raise KeyboardInterrupt
                self.prune_and_rewind()
        return self.result()

    def train_level(self) -> None:
        """Train the current level from ``self.step`` to the end of the schedule."""
        p = self.plan
        if self.step >= p.total_steps:
            return
        span = train_steps(self.trainer, self.data.train, p.recipe, start=self.step, end=p.total_steps,
                           steps_per_epoch=p.steps_per_epoch, stream=data_stream(self.level, p.options.data_order),
                           whole_batches=self.data.whole_batches, on_step=self._on_step, on_epoch=self._on_epoch,
                           report=self._report, stop=self.stop, on_stop=self._on_stop, label=f"level {self.level}")
        self.step = p.total_steps
        if span.seconds > 0:
            self.speeds[str(self.level)] = span.images_per_sec

    def _on_step(self, step: int) -> None:
        self.step = step
        self._steps_here += 1
        if self.level == 0 and step == self.plan.rewind_step and self.rewind_state is None:
            self.rewind_state = self.trainer.state_dict()
            if self.plan.options.dense_level == "two-runs":
                # the reference pre-trains 0→r and trains r→end as a second run: a fresh optimizer
                self.trainer.restart_optimizer()

    def _on_epoch(self, epoch: int, step: int, stats: dict[str, float]) -> None:
        p = self.plan
        self.step = step
        rec = {"event": "epoch", "level": self.level, "epoch": epoch + 1, "step": step, **stats}
        if p.eval_every and (epoch + 1) % p.eval_every == 0 and step < p.total_steps:
            c, t = evaluate(self.trainer.module, self.data.test, device=self.device, dist=self.dist)
            rec["test_acc"] = 100.0 * c / max(t, 1)
        self.log.write(rec)
        self.checkpoint()
        self._emit_epoch(epoch + 1, step, stats, complete=True, test_acc=rec.get("test_acc"))

    def _emit_epoch(self, epoch: int, step: int, stats: dict[str, float], *, complete: bool,
                    test_acc: float | None = None) -> None:
        if self.emit is None:
            return
        extra = {} if test_acc is None else {"test_acc": test_acc}
        self.emit({"phase": "epoch", "level": self.level, "levels": self.plan.levels, "epoch": epoch,
                   "epochs": self.plan.recipe.epochs, "step": step, "complete": complete, **stats, **extra})

    def _report(self, step: int, stats: dict[str, float]) -> None:
        if self.emit is None:
            return
        p = self.plan
        elapsed = time.perf_counter() - self._t0
        rate = self._steps_here / elapsed if elapsed > 0 else 0.0
        left = (p.total_steps - step) + max(0, p.levels - self.level) * (p.total_steps - p.rewind_step)
        self.emit({"phase": "train", "level": self.level, "levels": p.levels,
                   "epoch": (step - 1) // p.steps_per_epoch + 1, "epochs": p.recipe.epochs, "step": step,
                   "steps": p.total_steps, "start_step": 0 if self.level == 0 else p.rewind_step,
                   "eta_s": left / rate if rate > 0 else None, **stats})

    def _on_stop(self, epoch: int, step: int, stats: dict[str, float]) -> None:
        self.step = step
        self.checkpoint()
        self.log.write({"event": "interrupted", "level": self.level, "step": step})
        self._emit_epoch(epoch + 1, step, stats, complete=False)
        if self.emit:
            self.emit({"phase": "interrupted", "level": self.level, "step": step,
                       "checkpoint": str(self.plan.out / CHECKPOINT)})

    # -- the end of a level --------------------------------------------------------------------------
    def finish_level(self) -> None:
        """Evaluate the trained level and write its ticket (once: a resumed run skips a written level)."""
        key = str(self.level)
        if key in self.results:
            return
        correct, seen = evaluate(self.trainer.module, self.data.test, device=self.device, dist=self.dist,
                                 progress=self.emit, level=self.level)
        top1 = 100.0 * correct / max(seen, 1)
        record = self._record(correct, seen)
        self.results[key] = record
        ticket = self.level_ticket(record)
        path = self.plan.out / level_name(self.level)
        if self.dist.is_main:
            ticket.save(path)
        self.log.write({"event": "level", "level": self.level, "sparsity": ticket.sparsity, "test_acc": top1,
                        "correct": correct, "total": seen, "path": str(path)})
        self.checkpoint()
        if self.emit:
            self.emit({"phase": "level", "level": self.level, "levels": self.plan.levels,
                       "sparsity": ticket.sparsity, "top1": top1, "path": str(path)})

    def _masks_or_dense(self) -> dict[str, torch.Tensor]:
        shapes = state_dict_shapes(self.plan.spec)
        return self.masks or {n: torch.ones(shapes[n], dtype=torch.bool) for n in self.plan.names}

    def _record(self, correct: int, seen: int) -> dict[str, Any]:
        p, dist = self.plan, self.dist
        masks = self._masks_or_dense()
        kept, total = sum(int(m.sum()) for m in masks.values()), sum(m.numel() for m in masks.values())
        speed = self.speeds.get(str(self.level))
        kind, why = protocol(p.recipe, p.subset)
        return {"dataset": p.dataset, "split": self.data.split, "metric": "top1",
                "value": round(100.0 * correct / max(seen, 1), 2), "correct": correct, "total": seen,
                "epochs": p.recipe.epochs, "subset": p.subset, "seed": p.seed, "protocol": kind,
                **({"protocol_note": why} if why else {}), "recipe": p.recipe.to_json(), "date": now(),
                "device": device_name(self.device), "threads": torch.get_num_threads(), "world_size": dist.world_size,
                "images_per_sec": round(speed, 1) if speed else None, "source": "imp",
                "start_step": 0 if self.level == 0 else p.rewind_step, "sparsity": round(1.0 - kept / max(total, 1), 6)}

    def level_ticket(self, record: dict[str, Any]) -> Ticket:
        """The current level as a ticket: mask, ``θ_r``, trained weights, provenance, ``record``."""
        p, level = self.plan, self.level
        assert self.rewind_state is not None
        provenance: dict[str, Any] = {
            "method": "imp", "level": level, "levels": p.levels, "rate": p.rate,
            "target_sparsity": round(1.0 - (1.0 - p.rate) ** level, 6),
            "selection": _SELECTION[p.options.prune_count], "imp_options": p.options.to_json(),
            "rewind": p.recipe.rewind, "rewind_step": p.rewind_step, "steps_per_epoch": p.steps_per_epoch,
            "dataset": p.dataset, "subset": p.subset, "seed": p.seed, "init": p.init, "normalize": p.normalize,
            "crop": p.crop, "augmentation": p.recipe.augmentation, "epochs": p.recipe.epochs,
            "batch_size": p.recipe.batch_size, "recipe": p.recipe.to_json(), "device": device_name(self.device),
            "threads": torch.get_num_threads(), "world_size": self.dist.world_size, "ticketfmt": __version__,
            "torch": torch.__version__, "date": now(),
        }
        if p.command:
            provenance["command"] = p.command
        if p.resize:
            provenance["resize"] = True
        dense = _reference(self.results.get("0"), 0.0)
        if dense is not None:
            provenance["dense_reference"] = dense
        if level > 0:
            provenance["imp_reference"] = _reference(record, record["sparsity"])
        return Ticket(p.spec, self._masks_or_dense(), dict(self.rewind_state), self.trainer.state_dict(), provenance,
                      [dict(record)])

    # -- the next level ------------------------------------------------------------------------------
    def prune_and_rewind(self) -> None:
        """Prune the trained weights, reset the survivors to ``θ_r``, move to the next level at step ``r``."""
        assert self.rewind_state is not None
        self.masks = self._broadcast(self.next_masks(self.trainer.state_dict()))
        self.level += 1
        self.step = self.plan.rewind_step
        self.trainer = self._trainer()
        self.trainer.load(self.rewind_state)
        self.checkpoint()

    def next_masks(self, trained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The next level's masks from the trained weights, by the run's prune rule."""
        p = self.plan
        current = self._masks_or_dense()
        if p.options.prune_count == "round":
            total = sum(m.numel() for m in current.values())
            return round_prune(trained, current, imp_keep(total, self.level + 1, p.rate))
        unpruned = self.unpruned if p.options.remaining == "all-layers" else 0
        return reference_prune(trained, current, p.rate, unpruned)

    def _broadcast(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.dist.enabled:  # every process holds rank 0's masks
            return masks
        for n in self.plan.names:
            buf = masks[n].to(torch.uint8)
            buf = buf.to(self.device) if self.device.type == "cuda" else buf
            tdist.broadcast(buf, 0)
            masks[n] = buf.cpu().to(torch.bool)
        return masks

    def result(self) -> FindResult:
        result = FindResult(self.plan.out)
        for lv in range(self.plan.levels + 1):
            rec = self.results.get(str(lv))
            if rec is None:
                continue
            result.tickets.append(self.plan.out / level_name(lv))
            result.accuracies.append(float(rec["value"]))
            result.sparsities.append(float(rec["sparsity"]))
        return result


_SELECTION = {
    "reference": "global magnitude of the trained weights over all prunable tensors: ceil(rate x remaining) "
                 "pruned, ties at the threshold pruned (open_lth sparse_global)",
    "round": "global magnitude of the trained weights over all prunable tensors: round((1-rate)^level x N) kept",
}


# --------------------------------------------------------------------------------------------------
# find


def _setup(arch: str | ArchSpec, dataset: str, levels: int, rate: float, rewind: str | None,
           recipe: str | Recipe | None, num_classes: int | None, overrides: dict[str, Any]) -> tuple[ArchSpec, Recipe]:
    """The architecture and the recipe, its augmentation the input pipeline's (which fails early on a mismatch)."""
    from ticketfmt import data as D

    init, normalize = overrides.pop("init"), overrides.pop("normalize")
    data_dir, resize, crop = overrides.pop("data_dir"), overrides.pop("resize"), overrides.pop("crop")
    if init not in INITS:
        raise TicketError(f"unknown init {init!r}", fix=f"use one of {', '.join(INITS)} (reference: open_lth's)")
    if normalize not in D.NORMALIZE:
        raise TicketError(f"unknown normalization {normalize!r}",
                          fix=f"use one of {', '.join(D.NORMALIZE)} (reference: open_lth's)")
    if levels < 0:
        raise TicketError(f"levels must be 0 or more, got {levels}", fix="pass --levels 5")
    if not 0.0 < rate < 1.0:
        raise TicketError(f"rate must be in (0, 1), got {rate}", fix="pass --rate 0.2 (20% of the remaining weights)")
    dspec = D.get_spec(dataset)
    spec = get_arch(arch, num_classes if num_classes is not None else (dspec.num_classes or None))
    if isinstance(recipe, Recipe):
        rec = recipe.override(rewind=rewind, **overrides)
    else:
        rec = recipe_for(spec, recipe, rewind=rewind, **overrides)
    pipe = D.input_pipeline(dataset, spec, data_dir=data_dir, resize=resize, normalize=normalize, crop=crop)
    return spec, recipe_for_data(rec, pipe.augmentation)


def _saved_run(out: Path, config: dict[str, Any], resume: bool
               ) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]] | None:
    """The checkpoint to resume from (checked against ``config``), or None for a fresh run."""
    ckpt = out / CHECKPOINT
    if ckpt.exists():
        if not resume:
            raise OutputExistsError(f"{out} holds a run already", fix="pass --resume to continue it, or choose another -o")
        meta, groups = load_checkpoint(ckpt)
        # a run started before these settings were recorded ran with their defaults
        why = diff_config(_with_new_defaults(meta["config"]), config)
        if why is not None:
            raise TicketError(f"{out} was started with {why}",
                              fix=f"resume with the options of the original run (see {out / RUN_CONFIG})")
        return meta, groups
    if out.exists() and any(out.glob("level-*.ticket")):
        raise OutputExistsError(f"{out} holds tickets but no checkpoint", fix="choose another -o")
    return None


def _with_new_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A saved run config with the settings added since it was written at their (no-effect) defaults.

    A run started before ``resize``/``crop`` or a recipe's ``optimizer``/``schedule`` existed ran
    with what those default to, so its resume must not be refused for lacking them.
    """
    old = {"resize": False, "crop": "reference", **config}
    if isinstance(old.get("recipe"), dict):
        defaults = {f.name: f.default for f in fields(Recipe)
                    if f.name in ("optimizer", "schedule", "warmup_offset")}
        old["recipe"] = {**defaults, **old["recipe"]}
    return old


def _recorded_threads(out: Path) -> int | None:
    """The thread count a run folder's ``run.json`` records (None when it records none)."""
    try:
        n = json.loads((out / RUN_CONFIG).read_text()).get("threads")
    except (OSError, ValueError):
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else None


def _plan(spec: ArchSpec, dataset: str, levels: int, rate: float, rec: Recipe, subset: int | None, seed: int,
          options: ImpOptions, out: Path, data: RunData, **extra: Any) -> ImpPlan:
    if spec.num_classes != data.num_classes:
        raise DataError(f"{dataset} has {data.num_classes} classes but the {spec.id} head has {spec.num_classes}",
                        fix="leave num_classes to the dataset")
    spe = len(data.train)
    r = rec.rewind_step(spe)
    if r >= rec.total_steps(spe):
        raise TicketError(f"rewind point {rec.rewind} (step {r}) is not before the end of training "
                          f"(step {rec.total_steps(spe)})", fix="rewind earlier, or train longer with --epochs")
    return ImpPlan(spec, dataset, levels, rate, rec, subset, seed, options, out, spe, r,
                   tuple(prunable_names(spec)), **extra)


def _announce(run: ImpRun, progress: ProgressFn) -> None:
    """Send the plan event: what the run trains from where it stands, on what, and about how long it takes."""
    p, data = run.plan, run.data
    steps_left = (p.total_steps - run.step) + (p.levels - run.level) * (p.total_steps - p.rewind_step)
    spi = seconds_per_image(run.trainer, data.train)
    progress({"phase": "plan", "command": "find", "arch": p.spec.id, "dataset": p.dataset, "split": data.split,
              "levels": p.levels, "level": run.level, "start_step": run.step, "steps": p.total_steps,
              "rewind": p.recipe.rewind, "rewind_step": p.rewind_step, "steps_per_epoch": p.steps_per_epoch,
              "epochs": p.recipe.epochs, "steps_left": steps_left, "recipe": p.recipe.describe(),
              "augmentation": data.augmentation, "notice": data.notice, "test_images": loader_images(data.test),
              "lr": p.recipe.lr_at(run.step, p.steps_per_epoch),
              **machine_fields(run.device, run.dist, torch.get_num_threads()),
              **estimate_fields(p.recipe, steps_left, run.dist, spi, loader_images(data.train), p.subset)})


def find(arch: str | ArchSpec, dataset: str, levels: int, *, out_dir: str | os.PathLike[str], rate: float = 0.2,
         rewind: str | None = None, recipe: str | Recipe | None = None, subset: int | None = None, seed: int = 0,
         resume: bool = False, device: str | torch.device | None = "auto", compile: bool = False,
         data_dir: str | os.PathLike[str] | None = None, num_classes: int | None = None,
         progress: ProgressFn | None = None, sync_bn: bool = True, eval_every: int = 0, num_workers: int = 2,
         command: str | None = None, options: ImpOptions | None = None, init: str = "reference",
         normalize: str = "reference", data_factory: DataFactory | None = None, resize: bool = False,
         crop: str = "reference", threads: int | None = None, **overrides: Any) -> FindResult:
    """Find tickets by iterative magnitude pruning with rewinding; one ticket file per level in ``out_dir``.

    Args:
        arch, dataset: an architecture id or spec; ``cifar10``, ``cifar10-jpeg``, ``imagenet``, ``imagefolder:PATH``...
        levels, rate: pruning levels after the dense level 0, each removing ``rate`` of the remaining weights.
        out_dir: the run folder (``level-LL.ticket``, ``checkpoint.safetensors``, ``metrics.jsonl``, ``run.json``).
        rewind, recipe, overrides: the rewind point (``1000it``, ``5ep``, ``0``) and recipe (default: the family's),
            with recipe fields overridden (``epochs``, ``lr``, ``batch_size``, ``milestones``, ``warmup_offset``...).
        subset, seed: a seeded class-balanced training subset; the seed of the init, subset, order and augmentation.
        resume: continue the run in ``out_dir`` (a folder holding another run is refused without it).
        device, compile, sync_bn, threads, num_workers: where and how to train (``threads`` is recorded: CPU
            results are bit-reproducible at a given thread count).
        options, init, normalize, crop: departures from the reference (:class:`~ticketfmt.train.fidelity.ImpOptions`,
            ``init="library"``, ``normalize="cifar"``, ``crop="torchvision"``); docs/FIDELITY.md.
        data_dir, resize, data_factory: where the data lives, upscaling allowed, the loader builder
            (default :func:`~ticketfmt.train.rundata.make_data`; see :func:`ticketfmt.data.input_pipeline`).
        num_classes, eval_every, progress, command: head classes, extra test evaluations every N epochs, the
            progress callback, the command line recorded in the provenance.

    Returns a :class:`FindResult`; raises TicketError (bad arguments, occupied folder), DataError, and
    KeyboardInterrupt after writing a checkpoint that ``resume=True`` continues.

    Example:
        >>> find("cifar_resnet20", "cifar10-mini", 2, out_dir="run", epochs=1)  # doctest: +SKIP
    """
    spec, rec = _setup(arch, dataset, levels, rate, rewind, recipe, num_classes,
                       {**overrides, "init": init, "normalize": normalize, "data_dir": data_dir, "resize": resize,
                        "crop": crop})
    opts = options or REFERENCE
    out = Path(out_dir)
    saved = _saved_run(out, run_config(spec, dataset, rate, rec, subset, seed, opts, init, normalize, resize, crop),
                       resume)
    if threads is None and saved is not None:  # a resumed run keeps its thread count (CPU results depend on it)
        threads = _recorded_threads(out)
    dist, dev, emit = start_run(device, progress)
    with cpu_threads(threads):
        data = (data_factory or make_data)(dataset, rec, device=dev, dist=dist, data_dir=data_dir, subset=subset,
                                           seed=seed, progress=emit, num_workers=num_workers, normalize=normalize,
                                           input_size=spec, resize=resize, crop=crop)
        plan = _plan(spec, dataset, levels, rate, rec, subset, seed, opts, out, data, init=init, normalize=normalize,
                     eval_every=eval_every, compile=compile, sync_bn=sync_bn, command=command, resize=resize,
                     crop=crop, threads=threads)
        run = ImpRun(plan, data, dist, dev, emit)
        if saved is None:
            run.begin()
        else:
            run.restore(*saved)
        if emit is not None:
            _announce(run, emit)
        return run.run()
