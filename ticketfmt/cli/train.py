"""`ticket find` (IMP with rewinding) and `ticket verify` (retrain a ticket with its mask fixed, record top-1).

Both run under torchrun too (``torchrun --nproc_per_node 8 -m ticketfmt verify ...``): rank 0
prints and writes, the other ranks stay quiet. torch is imported inside the commands.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from ticketfmt.cli.app import NoVerify, app, check_output, err, out, print_table

Dataset = Annotated[str, typer.Option("--dataset", "-d", help="cifar10, cifar100, cifar10-jpeg, cifar10-mini, imagenet "
                                                               "or imagefolder:PATH.")]
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Where the dataset lives (default: the data "
                                                                    "layer's setting: $TICKETFMT_DATA or ~/.cache/ticketfmt/data).")]
Epochs = Annotated[Optional[int], typer.Option("--epochs", help="Training epochs (default: the recipe's; milestones "
                                                                "scale with it).")]
Lr = Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate (default: the recipe's).")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Global batch size (default: the recipe's).")]
Milestones = Annotated[Optional[str], typer.Option("--milestones", help="Epochs of the x0.1 steps, e.g. 80,120.")]
Warmup = Annotated[Optional[float], typer.Option("--warmup", help="Linear warm-up epochs.")]
WarmupOffset = Annotated[Optional[int], typer.Option("--warmup-offset", help="Warm-up step s trains at "
                                                                           "lr*(s+OFFSET)/warm: 0 (the reference's, "
                                                                           "lr 0 at step 0) or 1 (ticketfmt 1.0).")]
Momentum = Annotated[Optional[float], typer.Option("--momentum", help="SGD momentum (default 0.9).")]
WeightDecay = Annotated[Optional[float], typer.Option("--weight-decay", help="Weight decay (default 1e-4).")]
RecipeName = Annotated[Optional[str], typer.Option("--recipe", help="cifar_resnet, cifar_vgg, imagenet_resnet, "
                                                                    "cifar_vit or imagenet_vit (default: by "
                                                                    "architecture family).")]
Subset = Annotated[Optional[int], typer.Option("--subset", help="Train on a seeded class-balanced subset of N images.")]
Device = Annotated[str, typer.Option("--device", help="auto (cuda when available), cpu, cuda, cuda:N.")]
Compile = Annotated[bool, typer.Option("--compile", metavar="", help="Run the model through torch.compile.")]
SyncBN = Annotated[bool, typer.Option("--sync-bn/--no-sync-bn", metavar="", help="Under torchrun: BatchNorm statistics over "
                                                                      "the whole batch (same result as one process).")]
AsJson = Annotated[bool, typer.Option("--json", metavar="", help="Print JSON on stdout.")]
Normalize = Annotated[Optional[str], typer.Option("--normalize", help="Input normalization: reference (ImageNet "
                                                                      "mean/std, open_lth's) or cifar (the data's "
                                                                      "own statistics).")]
Resize = Annotated[Optional[bool], typer.Option("--resize", metavar="",
                                                help="Allow upscaling images smaller than the network's input (e.g. "
                                                     "32x32 images for a 224x224 network); without it that is an "
                                                     "error. The pipeline follows the network's input size.")]
Crop = Annotated[Optional[str], typer.Option("--crop", help="RandomResizedCrop of ImageNet-size inputs: reference "
                                                            "(scale 0.1-1, ratio 0.8-1.25, open_lth's) or torchvision "
                                                            "(0.08-1, 3/4-4/3).")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="torch CPU threads (default: the threads as set, "
                                                                  "shared by the ticketfmt training jobs running on "
                                                                  "this machine: 2 cores, 2 jobs: 1 each). CPU "
                                                                  "results are reproducible at a given thread count, "
                                                                  "which is recorded.")]


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def _overrides(epochs: int | None, lr: float | None, batch_size: int | None, milestones: str | None,
               warmup: float | None, momentum: float | None, weight_decay: float | None,
               warmup_offset: int | None = None) -> dict[str, Any]:
    from ticketfmt.train.recipes import MAX_EPOCHS

    finite = math.isfinite  # inf and nan cannot be trained on: refused here, before any data is read
    for name, value, ok in (("--epochs", epochs, epochs is None or 1 <= epochs <= MAX_EPOCHS),
                            ("--warmup-offset", warmup_offset, warmup_offset in (None, 0, 1)),
                            ("--lr", lr, lr is None or (finite(lr) and lr > 0)),
                            ("--batch-size", batch_size, batch_size is None or batch_size >= 1),
                            ("--warmup", warmup, warmup is None or (finite(warmup) and 0 <= warmup <= MAX_EPOCHS)),
                            ("--momentum", momentum, momentum is None or 0 <= momentum < 1),
                            ("--weight-decay", weight_decay, weight_decay is None or
                             (finite(weight_decay) and weight_decay >= 0))):
        if not ok:
            raise typer.BadParameter(f"{value} is out of range" + (f" (at most {MAX_EPOCHS} epochs)" if name in
                                     ("--epochs", "--warmup") and value == value else ""), param_hint=name)
    ms = None
    if milestones is not None:
        try:
            ms = tuple(float(t) for t in milestones.split(",") if t.strip())
        except ValueError:
            raise typer.BadParameter(f"{milestones!r} is not a comma-separated list of epochs",
                                     param_hint="--milestones") from None
        if not all(finite(m) and 0 < m <= MAX_EPOCHS for m in ms):
            raise typer.BadParameter(f"{milestones!r}: each milestone must be an epoch in (0, {MAX_EPOCHS}]",
                                     param_hint="--milestones")
    return {"epochs": epochs, "lr": lr, "batch_size": batch_size, "milestones": ms, "warmup_epochs": warmup,
            "momentum": momentum, "weight_decay": weight_decay, "warmup_offset": warmup_offset}


def _check_subset(subset: int | None, threads: int | None = None, crop: str | None = None) -> None:
    if subset is not None and subset < 1:
        raise typer.BadParameter(f"{subset} is not a positive number of images", param_hint="--subset")
    if threads is not None and threads < 1:
        raise typer.BadParameter(f"{threads} is not a positive number of threads", param_hint="--threads")
    from ticketfmt.data import CROPS

    if crop is not None and crop not in CROPS:
        raise typer.BadParameter(f"{crop!r} is not one of {', '.join(CROPS)}", param_hint="--crop")


def _budget(dataset: str, recipe: str | None, rewind: str | None, subset: int | None, threads: int | None,
            crop: str | None, epochs: int | None, lr: float | None, batch_size: int | None, milestones: str | None,
            warmup: float | None, momentum: float | None, weight_decay: float | None,
            warmup_offset: int | None) -> dict[str, Any]:
    """Check the budget options find, verify and lmc share (before any data is read); returns the recipe overrides."""
    _check_subset(subset, threads, crop)
    overrides = _overrides(epochs, lr, batch_size, milestones, warmup, momentum, weight_decay, warmup_offset)
    from ticketfmt.data import get_spec
    from ticketfmt.train.recipes import RECIPES, parse_rewind

    get_spec(dataset)
    if recipe is not None and recipe not in RECIPES:
        raise typer.BadParameter(f"{recipe!r} is not one of {', '.join(RECIPES)}", param_hint="--recipe")
    if rewind is not None:
        parse_rewind(rewind, 1)
    return overrides


def _budget_words(record: dict[str, Any], seed: str, start: str) -> list[str]:
    """How a recorded retraining was budgeted, for the one-line report of verify and lmc."""
    words = [f"{record['dataset']} {record['split']}", _plural(record["epochs"], "epoch")]
    if record.get("subset") is not None:
        words.append(f"subset {record['subset']}")
    words.append(seed)
    if record.get("protocol") == "reduced":
        words.append("reduced protocol")
    words.append("from step 0" if record["from_scratch"] else start)
    return words


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-:--:--"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _fmt_duration(seconds: float | None) -> str:
    """``45s``, ``2m 10s``, ``3h 05m``, ``2d 4h``: an estimate, to the unit that matters."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "unknown"
    s = max(0, int(round(seconds)))
    if s < 1:
        return "under 1s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


_SLOW_CPU_S = 120.0  # on a CPU, a plan longer than this also says how to shorten it


def _rewind(event: dict[str, Any]) -> str:
    """Where the plan's trainings start: the recipe's rewind point, or ``0`` for ``verify --from-scratch``."""
    if event.get("command") in ("verify", "lmc") and event.get("start_step") == 0:
        return "0"
    return str(event.get("rewind") or "0")


def _short_run(event: dict[str, Any]) -> tuple[int, int | None, int]:
    """The ``--epochs``/``--subset`` to suggest for a shorter run that still starts before its first lr drop.

    A rewind point fixed in iterations (the reference's ``1000it``) does not shrink with the data:
    ``--epochs 2 --subset 5000`` is 80 steps, which a rewind at step 1000 is past, and a run that
    starts after the learning rate has dropped learns little. The suggestion keeps the start within
    the first third of the shortened schedule (before the first drop of every built-in recipe):
    two epochs on the smallest subset that allows it, else more epochs on the whole split (subset
    ``None``). Returns ``(epochs, subset, steps a training takes from its start)``.
    """
    from ticketfmt.train.recipes import parse_rewind

    images, epochs = int(event.get("train_images") or 0), int(event.get("epochs") or 1)
    batch, rewind = max(1, int(event.get("batch_size") or 128)), _rewind(event)
    sizes = sorted({min(images, n) for n in (5000, 10000, 20000, 30000, 40000)} | {images}) if images else [5000]
    for e in range(min(epochs, 2), epochs + 1):
        for n in sizes:
            spe = math.ceil(n / batch)
            start = parse_rewind(rewind, spe)
            if 3 * start < e * spe or (e == epochs and n == sizes[-1]):
                return e, (None if n == images and images > 5000 else n), e * spe - start
    return epochs, None, 0  # not reached: the loop's last case returns


def _shorter(event: dict[str, Any]) -> str | None:
    """On a CPU, how to shorten a long plan: --epochs/--subset and what they would cost at the measured speed."""
    from ticketfmt.train.recipes import parse_rewind

    eta, spi = event.get("eta_s"), event.get("seconds_per_image")
    if event.get("device_type") != "cpu" or (eta is not None and eta <= _SLOW_CPU_S):
        return None
    e, n, steps = _short_run(event)
    images = int(event.get("train_images") or 0)
    if images and e * (n or images) >= int(event.get("epochs") or 1) * images:
        return None  # already as short as it can usefully be
    example = f"e.g. --epochs {e}" + (f" --subset {n}" if n else "")
    if spi is not None and images:
        # the trainings still to run (1 for verify, the levels left for find), each shortened the same way
        spe, steps_left = int(event.get("steps_per_epoch") or 1), int(event.get("steps_left") or 0)
        whole = int(event.get("epochs") or 1) * spe - parse_rewind(_rewind(event), spe)
        trainings = steps_left / max(1, whole)
        example += f": about {_fmt_duration(spi * int(event.get('batch_size') or 128) * steps * trainings)}"
    return (f"  on a CPU this is long: shorten it with --epochs N (the milestones scale with it) and --subset N "
            f"(training images), {example}; the result is then recorded as protocol \"reduced\"")


def _plan_lines(event: dict[str, Any]) -> list[str]:
    """The plan, before training: what, recipe, steps, device, data, estimate (and on a slow CPU, how to shorten it)."""
    command = event.get("command", "verify")
    test = f"{event['test_images']:,} images" if event.get("test_images") else "its images"
    what = (f"{event.get('arch', '?')} ({event.get('sparsity', 0.0):.2%} sparse)" if command in ("verify", "lmc")
            else f"{event.get('arch', '?')}, {_plural(event.get('levels'), 'level')} after the dense level 0")
    metric = "test error along the path between two copies" if command == "lmc" else "top-1"
    lines = [f"plan: {command} {what} on {event.get('dataset', '?')}, {metric} on its {event.get('split', 'test')} "
             f"split ({test})"]
    if event.get("recipe"):
        lines.append(f"  recipe: {event['recipe']}")
    origin = " (the source ticket's contract)" if event.get("contract") == "source_provenance" else ""
    train = f"{event['train_images']:,} training images" if event.get("train_images") else "the training split"
    if command in ("verify", "lmc"):
        steps = (f"steps {event['start_step']} -> {event['steps']} ({event['steps'] - event['start_step']} steps, "
                 f"{event.get('steps_per_epoch', '?')} an epoch), rewind {event['rewind']}{origin}, "
                 f"lr {event['lr']:g} at the start")
    else:
        steps = (f"{event['steps']} steps a level ({event.get('steps_per_epoch', '?')} an epoch), levels 1+ from "
                 f"the rewind step {event.get('rewind_step')}; {event.get('steps_left', '?')} steps left "
                 f"(from level {event.get('level', 0)}, step {event.get('start_step', 0)})")
    lines.append(f"  training: {steps}; {train}, batch {event.get('batch_size', '?')}, "
                 f"augmentation {event.get('augmentation') or 'unknown'}")
    if command == "lmc":
        orders = event.get("data_orders") or ["?", "?"]
        lines.append(f"  lmc: two copies, data orders {orders[0]} and {orders[1]} (same mask, init and data), then "
                     f"the test error at {event.get('points')} points of the linear path between them")
    if event.get("device"):
        procs = event.get("world_size", 1)
        lines.append(f"  device: {event['device']}, {procs} process{'es' if procs != 1 else ''}")
    if event.get("seconds_per_step") is not None:
        lines.append(f"  estimate: about {_fmt_duration(event.get('eta_s'))} of training "
                     f"({event['seconds_per_step']:.3g} s a step, from timing 2 steps)")
    if event.get("protocol") == "reduced":
        lines.append(f"  protocol: reduced ({event.get('protocol_note')}): recorded as such, never as the "
                     "benchmark result")
    hint = _shorter(event)
    return lines + ([hint] if hint else [])


def _where(event: dict[str, Any]) -> str:
    """``level 1/4 epoch 2/3`` (find), ``copy A epoch 2/3`` (lmc) or ``epoch 2/3`` (verify)."""
    level, levels = event.get("level"), event.get("levels")
    where = f"level {level}/{levels} " if levels is not None else ""  # verify's level is the ticket's, not a stage
    if event.get("copy"):  # lmc trains two copies
        where = f"copy {event['copy']} "
    return f"{where}epoch {event['epoch']}/{event['epochs']}"


def _train_text(event: dict[str, Any]) -> tuple[str, str]:
    """``(where, info)`` of a training progress event: ``level 1/4 epoch 2/3`` and the step, loss, speed, ETA."""
    ips = event.get("images_per_sec") or 0.0
    info = (f"step {event['step']}/{event['steps']}  loss {event['loss']:.3f}  acc {event['acc']:.1f}%  "
            f"{ips:,.0f} img/s  ETA {_fmt_eta(event.get('eta_s'))}")
    return _where(event), info


def _epoch_line(event: dict[str, Any]) -> str:
    """The summary of an epoch (or of its part before a stop), kept in the log of a long run."""
    how = "done" if event.get("complete") else "stopped"
    test = f"  test acc {event['test_acc']:.2f}%" if event.get("test_acc") is not None else ""
    return (f"{_where(event)} {how}: loss {event['loss']:.3f}  train acc {event['train_acc']:.1f}%{test}  "
            f"{event['images_per_sec']:,.0f} img/s  {_fmt_duration(event['seconds'])}")


def _event_line(event: dict[str, Any]) -> str | None:
    """The line an event prints whatever the display (plan, notice, epoch, level, resume, interruption); None: no
    line."""
    phase = event.get("phase")
    if phase == "plan":
        return "\n".join(_plan_lines(event))
    if phase == "notice":
        return f"note: {event['message']}"
    if phase == "level":
        return (f"level {event['level']}/{event['levels']}: {event['sparsity']:.2%} sparse, "
                f"top-1 {event['top1']:.2f}%  -> {event['path']}")
    if phase == "epoch":
        return _epoch_line(event)
    if phase == "point":
        return f"lmc point {event['index']}/{event['points']}: alpha {event['alpha']:.3f}, test error {event['error']:.2f}%"
    if phase == "resume" and "level" not in event:  # a retraining's checkpoint (verify --checkpoint)
        return f"resuming at step {event['step']} from {event['checkpoint']}"
    if phase == "resume":
        return f"resuming at level {event['level']}, step {event['step']}"
    if phase == "interrupted" and "level" not in event:
        return (f"stopped at step {event['step']}; training state in {event['checkpoint']} "
                "(the same command continues)")
    if phase == "interrupted":
        return (f"stopped at level {event['level']}, step {event['step']}; "
                f"checkpoint {event['checkpoint']} (continue with --resume)")
    return None


def _progress_interval() -> float:
    """Seconds between plain progress lines (``TICKETFMT_PROGRESS_SECONDS``, default 10)."""
    try:
        return max(0.0, float(os.environ.get("TICKETFMT_PROGRESS_SECONDS", "10")))
    except ValueError:
        return 10.0


class _PlainProgress:
    """Progress as plain lines on stderr (CI, nohup, a log file): one line per phase change, per epoch,
    at the end of a training span, and otherwise at most one every ``interval`` seconds."""

    def __init__(self, title: str, interval: float) -> None:
        self.title, self.interval = title, interval
        self.last = -float("inf")
        self.key: tuple[Any, ...] | None = None

    def _emit(self, text: str) -> None:
        err.print(text, soft_wrap=True, markup=False, highlight=False)

    def __call__(self, event: dict[str, Any]) -> None:
        line = _event_line(event)
        if line is not None:
            self._emit(line)
            return
        parts = self._text(event)
        if parts is None:
            return
        text, key, final = parts
        now = time.monotonic()
        if key != self.key or final or now - self.last >= self.interval:
            self.key, self.last = key, now
            self._emit(f"{self.title} {text}")

    def _text(self, event: dict[str, Any]) -> tuple[str, tuple[Any, ...], bool] | None:
        """``(text, key, final)``: a new key (phase, level, epoch) or a final event always prints."""
        phase = event.get("phase")
        done, total = int(event.get("done") or 0), int(event.get("total") or 0)
        if phase == "data":
            if not done and not total:  # the announcement: off a terminal the decode lines (or the plan) follow
                return None
            count = f": {done:,}/{total:,} images" if total else (f": {done:,} images" if done else "")
            return f"data: {event.get('description', 'loading')}{count}", (phase,), bool(total) and done >= total
        if phase == "train":
            where, info = _train_text(event)
            return f"{where}  {info}", (phase, event.get("level"), event.get("epoch")), event["step"] >= event["steps"]
        if phase == "eval":
            return f"evaluating: {done:,}/{total:,} images", (phase, event.get("level")), bool(total) and done >= total
        return None


@contextmanager
def _display(title: str) -> Iterator[Any]:
    """Progress on stderr; yields the callback the library reports to (rank 0 only prints).

    On a terminal: a live bar (transient) whose first phase says what the data layer is doing;
    elsewhere: plain lines at a steady interval (:class:`_PlainProgress`).
    """
    if not _is_main():
        yield lambda event: None
        return
    if not err.is_terminal:
        yield _PlainProgress(title, _progress_interval())
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), console=err, transient=True)
    with progress:
        task = progress.add_task(f"{title}: starting", total=None, info="")

        def callback(event: dict[str, Any]) -> None:
            phase = event.get("phase")
            line = _event_line(event)
            if line is not None:
                progress.console.print(line, soft_wrap=True, markup=False, highlight=False)
                if phase == "plan":
                    progress.update(task, description=f"{title}: training", completed=0, total=None, info="")
            elif phase == "data":
                total = event.get("total") or None
                progress.update(task, description=str(event.get("description", "data")), completed=event["done"],
                                total=total, info=f"{event['done']:,} images" if event.get("done") else "")
            elif phase == "train":
                where, info = _train_text(event)
                start = int(event.get("start_step") or 0)
                progress.update(task, description=f"{title} {where}", completed=event["step"] - start,
                                total=max(1, event["steps"] - start), info=info)
            elif phase == "eval":
                progress.update(task, description="evaluating", completed=event["done"],
                                total=event.get("total") or None, info=f"{event['done']:,} test images")

        yield callback


def _command(parts: list[tuple[str, Any]], positional: list[str]) -> str:
    """The command line that reproduces a run, from its non-default options."""
    words = ["ticket", *positional]
    for flag, value in parts:
        if value is None or value is False:
            continue
        words.append(flag)
        if value is not True:
            words.append(str(value))
    return shlex.join(words)


@app.command()
def find(
    arch: Annotated[str, typer.Argument(help="Architecture id, e.g. cifar_resnet20, resnet50, cifar_vgg16.")],
    dataset: Dataset,
    levels: Annotated[int, typer.Option("--levels", help="Pruning levels after the dense level 0 "
                                                         "(level L is 1-(1-rate)^L sparse).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run folder: level-LL.ticket, checkpoint, "
                                                                "metrics.jsonl.", file_okay=False)],
    rewind: Annotated[Optional[str], typer.Option("--rewind", help="Rewind point: 1000it, 5ep or 0 "
                                                                   "(default: the recipe's).")] = None,
    rate: Annotated[float, typer.Option("--rate", help="Fraction of the remaining weights pruned per level.")] = 0.2,
    epochs: Epochs = None,
    lr: Lr = None,
    batch_size: BatchSize = None,
    milestones: Milestones = None,
    warmup: Warmup = None,
    warmup_offset: WarmupOffset = None,
    momentum: Momentum = None,
    weight_decay: WeightDecay = None,
    recipe: RecipeName = None,
    subset: Subset = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="Seeds the initialization, subset, data order and "
                                                     "augmentation.")] = 0,
    prune_count: Annotated[str, typer.Option("--prune-count", help="reference: ceil(rate x remaining) pruned, "
                                                                   "ties pruned (open_lth); round: keep "
                                                                   "round((1-rate)^L N).")] = "reference",
    remaining: Annotated[str, typer.Option("--remaining", help="all-layers: unpruned Conv/Linear layers count as "
                                                               "remaining (open_lth); prunable: only the "
                                                               "prunable ones.")] = "all-layers",
    data_order: Annotated[str, typer.Option("--data-order", help="same: one shuffle order at every level "
                                                                 "(open_lth); per-level: a new order per "
                                                                 "level.")] = "same",
    dense_level: Annotated[str, typer.Option("--dense-level", help="two-runs: pre-train to the rewind step, then a "
                                                                   "fresh optimizer (open_lth); one-run.")] = "two-runs",
    init: Annotated[str, typer.Option("--init", help="Initializer of the dense network: reference (open_lth's "
                                                     "kaiming normal, BN uniform) or library.")] = "reference",
    normalize: Normalize = None,
    resize: Resize = None,
    crop: Crop = None,
    threads: Threads = None,
    device: Device = "auto",
    compile: Compile = False,
    resume: Annotated[bool, typer.Option("--resume", metavar="", help="Continue the run in -o (after a kill or Ctrl-C; "
                                                          "--levels may be raised).")] = False,
    data_dir: DataDir = None,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Also evaluate every N epochs (0: at the end "
                                                                 "of each level).")] = 0,
    sync_bn: SyncBN = True,
    as_json: AsJson = False,
) -> None:
    """Find tickets by iterative magnitude pruning with rewinding: one ticket file per level.

    Each level trains with the mask fixed from the rewind point, prunes --rate of the remaining weights by global magnitude and rewinds. A checkpoint is written every epoch; Ctrl-C stops at the next step and --resume continues to the same result.

    Before training it prints the plan (recipe, steps, device, data, a timed estimate); progress goes to stderr (plain lines every 10 s when it is not a terminal). The input pipeline follows the network's input size and the data: a 32x32 network on an imagefolder: tree of 32x32 images gets the 32x32 pipeline.

    Example: ticket find cifar_resnet20 --dataset cifar10 --levels 10 --rewind 1000it -o runs/r20

    Example (minutes on a CPU): ticket find cifar_resnet20 --dataset cifar10-jpeg --levels 2 --epochs 1 --subset 2000 --rewind 10it -o runs/quick
    """
    if levels < 0:
        raise typer.BadParameter(f"{levels} is negative", param_hint="--levels")
    if not 0.0 < rate < 1.0:
        raise typer.BadParameter(f"{rate} is not in (0, 1)", param_hint="--rate")
    if eval_every < 0:
        raise typer.BadParameter(f"{eval_every} is negative", param_hint="--eval-every")
    from ticketfmt.train.fidelity import ImpOptions
    from ticketfmt.zoo import get_arch

    options = ImpOptions(prune_count=prune_count, remaining=remaining, data_order=data_order, dense_level=dense_level)
    get_arch(arch)
    overrides = _budget(dataset, recipe, rewind, subset, threads, crop, epochs, lr, batch_size, milestones, warmup,
                        momentum, weight_decay, warmup_offset)
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"{output} is a file", param_hint="-o")
    command = _command([("--dataset", dataset), ("--levels", levels), ("--rewind", rewind),
                        ("--rate", rate if rate != 0.2 else None), ("--epochs", epochs), ("--lr", lr),
                        ("--batch-size", batch_size), ("--milestones", milestones), ("--warmup", warmup),
                        ("--momentum", momentum), ("--weight-decay", weight_decay), ("--recipe", recipe),
                        ("--subset", subset), ("--seed", seed), ("--warmup-offset", warmup_offset),
                        ("--init", init if init != "reference" else None), ("--normalize", normalize),
                        ("--resize", bool(resize)), ("--crop", crop), ("--threads", threads),
                        *[(f"--{d.split('=')[0].replace('_', '-')}", d.split("=")[1]) for d in options.departures()],
                        ("-o", output)], ["find", arch])

    from ticketfmt.train import find as run_find

    try:
        with _display("find") as callback:
            result = run_find(arch, dataset, levels, out_dir=output, rate=rate, rewind=rewind, recipe=recipe,
                              subset=subset, seed=seed, resume=resume, device=device, compile=compile,
                              data_dir=data_dir, progress=callback, sync_bn=sync_bn, eval_every=eval_every,
                              command=command, options=options, init=init, normalize=normalize or "reference",
                              resize=bool(resize), crop=crop or "reference", threads=threads, **overrides)
    except KeyboardInterrupt:
        if _is_main():
            err.print(f"interrupted: the run in {output} is resumable with --resume", soft_wrap=True)
        raise typer.Exit(130) from None
    if not _is_main():
        return
    rows = [{"level": i, "sparsity": s, "top1": a, "path": str(p)}
            for i, (p, a, s) in enumerate(zip(result.tickets, result.accuracies, result.sparsities))]
    if as_json:
        out.print_json(json.dumps({"out_dir": str(output), "levels": rows}))
        return
    table = Table("level", "sparsity", "top-1", "ticket", title=f"{arch} on {dataset}", title_justify="left")
    for r in rows:
        table.add_row(str(r["level"]), f"{r['sparsity']:.2%}", f"{r['top1']:.2f}%", r["path"])
    print_table(table)


def _ref_text(name: str, ref: Any) -> str | None:
    if not isinstance(ref, dict) or "value" not in ref:
        return None
    budget = [str(ref.get("dataset", "?"))]
    if ref.get("epochs") is not None:
        budget.append(_plural(ref["epochs"], "epoch"))
    if ref.get("subset") is not None:
        budget.append(f"subset {ref['subset']}")
    return f"{name} {float(ref['value']):.2f}% ({', '.join(budget)})"


def _reproduction(ticket: Any, dataset: str, asked: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the last result, the verify keywords of its budget)`` for ``--reproduce`` (no other budget options)."""
    from ticketfmt.train.verify import budget_of

    given = sorted(k for k, v in asked.items() if v not in (None, False))
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise typer.BadParameter(f"--reproduce takes the budget from the record; drop {flags}",
                                 param_hint="--reproduce")
    tops = [r for r in ticket.results if r.get("metric", "top1") == "top1"]  # not an lmc error barrier
    if not tops:
        raise typer.BadParameter("the ticket records no top-1 result to reproduce", param_hint="--reproduce")
    last = dict(tops[-1])
    if last.get("dataset") not in (None, dataset):
        raise typer.BadParameter(f"the ticket's last result is on {last['dataset']}, not {dataset}",
                                 param_hint="--dataset")
    return last, budget_of(last)


def _reproduction_text(record: dict[str, Any], last: dict[str, Any]) -> str:
    """Whether a re-run reproduced the recorded value, and if not, what differed (device, threads)."""
    here, there = str(record.get("device")), str(last.get("device", "an unrecorded device"))
    if record["reproduces"]:
        return f"reproduced: {record['value']:.2f}% is the recorded {last['value']:.2f}% exactly ({here})"
    diff = record["value"] - float(last["value"])
    why = ("the same device and thread count: another torch build or data decode" if here == there
           else "float rounding differs between devices and thread counts")
    return (f"not reproduced: {record['value']:.2f}% against the recorded {last['value']:.2f}% ({diff:+.2f} points); "
            f"recorded on {there}, run on {here}: {why}")


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The ticket to retrain.", exists=True, dir_okay=False)],
    dataset: Dataset,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the ticket with the result "
                                                                          "recorded here.", dir_okay=False)] = None,
    in_place: Annotated[bool, typer.Option("--in-place", metavar="", help="Record the result in FILE itself (atomically).")] = False,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", metavar="", help="Start the schedule at step 0, not at the "
                                                                      "rewind step.")] = False,
    rewind: Annotated[Optional[str], typer.Option("--rewind", help="Start step (default: the ticket's rewind "
                                                                   "point).")] = None,
    epochs: Epochs = None,
    lr: Lr = None,
    batch_size: BatchSize = None,
    milestones: Milestones = None,
    warmup: Warmup = None,
    warmup_offset: WarmupOffset = None,
    momentum: Momentum = None,
    weight_decay: WeightDecay = None,
    recipe: RecipeName = None,
    subset: Subset = None,
    seed: Annotated[Optional[int], typer.Option("--seed", min=0, max=2**63 - 1, help="Seed of the data order (default: the "
                                                               "ticket's).")] = None,
    device: Device = "auto",
    compile: Compile = False,
    data_dir: DataDir = None,
    save_trained: Annotated[bool, typer.Option("--save-trained", metavar="", help="Also store the trained weights in the "
                                                                      "written ticket.")] = False,
    sync_bn: SyncBN = True,
    normalize: Normalize = None,
    resize: Resize = None,
    crop: Crop = None,
    threads: Threads = None,
    reproduce: Annotated[bool, typer.Option("--reproduce", metavar="",
                                            help="Re-run the ticket's last result with its own recorded budget "
                                                 "(recipe, subset, seed, start, CPU thread count) and say whether "
                                                 "it reproduces.")] = False,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Replace -o if it exists.")] = False,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", dir_okay=False,
                                                       help="Save the training state here at every epoch's end "
                                                            "and on Ctrl-C; the same command continues from it "
                                                            "(removed when done).")] = None,
    as_json: AsJson = False,
    no_verify: NoVerify = False,
) -> None:
    """Retrain a ticket from its rewind weights with the mask fixed, evaluate top-1 on the test split.

    Prints the accuracy with the dense and IMP references the ticket's provenance knows, and records the result in the ticket's results (-o NEW or --in-place; without them nothing is written). The recipe, rewind step and seed are the ticket's own (a converted ticket's are its source's: it starts at the source's rewind step, the LR schedule fast-forwarded) unless overridden.

    Before training it prints the plan (recipe, steps, device, data, a timed estimate; on a CPU, how to shorten it). A result on a training subset or fewer epochs than the recipe's is recorded with protocol "reduced".

    Example: ticket verify r56.ticket --dataset cifar10 -o r56-verified.ticket

    Example (minutes on a CPU): ticket verify r56.ticket --dataset cifar10-jpeg --epochs 2 --subset 5000 -o r56-quick.ticket

    Example: ticket verify r56-verified.ticket --dataset cifar10 --reproduce

    Example (stop with Ctrl-C, run again to continue): ticket verify r56.ticket --dataset cifar10 --checkpoint r56.state -o r56-verified.ticket
    """
    if output is not None and in_place:
        raise typer.BadParameter("give at most one of -o and --in-place", param_hint="-o/--in-place")
    overrides = _budget(dataset, recipe, rewind, subset, threads, crop, epochs, lr, batch_size, milestones, warmup,
                        momentum, weight_decay, warmup_offset)
    if output is not None and _is_main():
        check_output(output, force)

    from ticketfmt.ticket import Ticket
    from ticketfmt.train import verify as run_verify

    ticket = Ticket.load(file, verify=not no_verify)
    asked = {"from_scratch": from_scratch, "recipe": recipe, "subset": subset, "seed": seed, "rewind": rewind,
             "normalize": normalize, "resize": resize, "crop": crop, "threads": threads, **overrides}
    recorded = _reproduction(ticket, dataset, asked) if reproduce else None
    if recorded is not None:
        asked = {**asked, **recorded[1]}
    try:
        with _display("verify") as callback:
            verified, record = run_verify(ticket, dataset, device=device, data_dir=data_dir, compile=compile,
                                          progress=callback, sync_bn=sync_bn, store_trained=save_trained,
                                          checkpoint=checkpoint, **asked)
    except KeyboardInterrupt:
        if _is_main():
            err.print("interrupted: nothing written" if checkpoint is None or not checkpoint.exists() else
                      f"interrupted: no ticket written; the training state is in {checkpoint} "
                      "(the same command continues)", soft_wrap=True)
        raise typer.Exit(130) from None
    if not _is_main():
        return
    if recorded is not None:
        record = {**record, "reproduces": record["value"] == recorded[0]["value"],
                  "recorded_value": recorded[0]["value"]}
    target = file if in_place else output
    if target is not None:
        verified.save(target, encoding=ticket.encoding or "packed")
    if as_json:
        out.print_json(json.dumps(record))
    else:
        budget = _budget_words(record, f"seed {record['seed']}", f"from step {record['start_step']} "
                               f"(rewind {record['rewind']}, lr {record['start_lr']:g})")
        line = Text.assemble("top-1 ", (f"{record['value']:.2f}%", "bold"),
                             f" ({record['correct']}/{record['total']}; {', '.join(budget)}; "
                             f"{ticket.sparsity:.2%} sparse)")
        out.print(line, soft_wrap=True)
        refs = [t for t in (_ref_text("dense", record.get("dense_reference")),
                            _ref_text("IMP", record.get("imp_reference"))) if t]
        if refs:
            out.print("references: " + "; ".join(refs), soft_wrap=True)
        if recorded is not None:
            out.print(_reproduction_text(record, recorded[0]), soft_wrap=True)
    if target is not None:
        err.print(f"recorded in {target}")
