"""`ticket find` (IMP with rewinding) and `ticket verify` (retrain a ticket with its mask fixed, record top-1).

Both run under torchrun too (``torchrun --nproc_per_node 8 -m ticketfmt verify ...``): rank 0
prints and writes, the other ranks stay quiet. torch is imported inside the commands.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from ticketfmt.cli.app import NoVerify, app, check_output, err, out

Dataset = Annotated[str, typer.Option("--dataset", "-d", help="cifar10, cifar100, cifar10-jpeg, cifar10-mini, imagenet "
                                                               "or imagefolder:PATH.")]
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Where the dataset lives (default: the data "
                                                                    "layer's setting, e.g. TICKETFMT_SHARED_DATA).")]
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
RecipeName = Annotated[Optional[str], typer.Option("--recipe", help="cifar_resnet, cifar_vgg or imagenet_resnet "
                                                                    "(default: by architecture family).")]
Subset = Annotated[Optional[int], typer.Option("--subset", help="Train on a seeded class-balanced subset of N images.")]
Device = Annotated[str, typer.Option("--device", help="auto (cuda when available), cpu, cuda, cuda:N.")]
Compile = Annotated[bool, typer.Option("--compile", help="Run the model through torch.compile.")]
SyncBN = Annotated[bool, typer.Option("--sync-bn/--no-sync-bn", help="Under torchrun: BatchNorm statistics over "
                                                                      "the whole batch (same result as one process).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
Normalize = Annotated[Optional[str], typer.Option("--normalize", help="Input normalization: reference (ImageNet "
                                                                      "mean/std, open_lth's) or cifar (the data's "
                                                                      "own statistics).")]


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def _overrides(epochs: int | None, lr: float | None, batch_size: int | None, milestones: str | None,
               warmup: float | None, momentum: float | None, weight_decay: float | None,
               warmup_offset: int | None = None) -> dict[str, Any]:
    for name, value, ok in (("--epochs", epochs, epochs is None or epochs >= 1),
                            ("--warmup-offset", warmup_offset, warmup_offset in (None, 0, 1)),
                            ("--lr", lr, lr is None or lr > 0),
                            ("--batch-size", batch_size, batch_size is None or batch_size >= 1),
                            ("--warmup", warmup, warmup is None or warmup >= 0),
                            ("--momentum", momentum, momentum is None or 0 <= momentum < 1),
                            ("--weight-decay", weight_decay, weight_decay is None or weight_decay >= 0)):
        if not ok:
            raise typer.BadParameter(f"{value} is out of range", param_hint=name)
    ms = None
    if milestones is not None:
        try:
            ms = tuple(float(t) for t in milestones.split(",") if t.strip())
        except ValueError:
            raise typer.BadParameter(f"{milestones!r} is not a comma-separated list of epochs",
                                     param_hint="--milestones") from None
    return {"epochs": epochs, "lr": lr, "batch_size": batch_size, "milestones": ms, "warmup_epochs": warmup,
            "momentum": momentum, "weight_decay": weight_decay, "warmup_offset": warmup_offset}


def _check_subset(subset: int | None) -> None:
    if subset is not None and subset < 1:
        raise typer.BadParameter(f"{subset} is not a positive number of images", param_hint="--subset")


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-:--:--"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@contextmanager
def _display(title: str) -> Iterator[Any]:
    """A live progress line on stderr (off when stderr is not a terminal); yields the progress callback."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    enabled = err.is_terminal and _is_main()
    progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), console=err, transient=True, disable=not enabled)
    with progress:
        task = progress.add_task(title, total=None, info="")

        def callback(event: dict[str, Any]) -> None:
            phase = event.get("phase")
            if phase == "data":
                total = event.get("total") or None
                progress.update(task, description=str(event.get("description", "data")), completed=event["done"],
                                total=total, info=f"{event['done']:,} images")
            elif phase == "train":
                level, levels = event.get("level"), event.get("levels")
                where = f"level {level}/{levels} " if levels is not None else (f"{title} " if level is None
                                                                                 else f"{title} (level {level}) ")
                start = int(event.get("start_step") or 0)
                ips = event.get("images_per_sec") or 0.0
                info = (f"step {event['step']}/{event['steps']}  loss {event['loss']:.3f}  acc {event['acc']:.1f}%  "
                        f"{ips:,.0f} img/s  ETA {_fmt_eta(event.get('eta_s'))}")
                progress.update(task, description=f"{where}epoch {event['epoch']}/{event['epochs']}",
                                completed=event["step"] - start, total=max(1, event["steps"] - start), info=info)
            elif phase == "eval":
                progress.update(task, description="evaluating", completed=event["done"],
                                total=event.get("total") or None, info=f"{event['done']:,} test images")
            elif phase == "level":
                if _is_main():
                    progress.console.print(f"level {event['level']}/{event['levels']}: {event['sparsity']:.2%} sparse, "
                                           f"top-1 {event['top1']:.2f}%  → {event['path']}", soft_wrap=True)
            elif phase == "plan":
                if _is_main():
                    origin = " (the source ticket's contract)" if event.get("contract") == "source_provenance" else ""
                    progress.console.print(f"training from step {event['start_step']} (rewind {event['rewind']}"
                                           f"{origin}) to step {event['steps']}, lr {event['lr']:g} at the start",
                                           soft_wrap=True)
            elif phase == "resume":
                if _is_main():
                    progress.console.print(f"resuming at level {event['level']}, step {event['step']}")
            elif phase == "interrupted":
                if _is_main():
                    progress.console.print(f"stopped at level {event['level']}, step {event['step']}; "
                                           f"checkpoint {event['checkpoint']} (continue with --resume)", soft_wrap=True)

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
    seed: Annotated[int, typer.Option("--seed", help="Seeds the initialization, subset, data order and "
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
    device: Device = "auto",
    compile: Compile = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in -o (after a kill or Ctrl-C; "
                                                          "--levels may be raised).")] = False,
    data_dir: DataDir = None,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Also evaluate every N epochs (0: at the end "
                                                                 "of each level).")] = 0,
    sync_bn: SyncBN = True,
    as_json: AsJson = False,
) -> None:
    """Find tickets by iterative magnitude pruning with rewinding: one ticket file per level.

    Each level trains with the mask fixed from the rewind point, prunes --rate of the remaining weights by global magnitude and rewinds. A checkpoint is written every epoch; Ctrl-C stops at the next step and --resume continues to the same result.

    Example: ticket find cifar_resnet20 --dataset cifar10 --levels 10 --rewind 1000it -o runs/r20
    """
    if levels < 0:
        raise typer.BadParameter(f"{levels} is negative", param_hint="--levels")
    if not 0.0 < rate < 1.0:
        raise typer.BadParameter(f"{rate} is not in (0, 1)", param_hint="--rate")
    if eval_every < 0:
        raise typer.BadParameter(f"{eval_every} is negative", param_hint="--eval-every")
    _check_subset(subset)
    overrides = _overrides(epochs, lr, batch_size, milestones, warmup, momentum, weight_decay, warmup_offset)
    from ticketfmt.data import get_spec
    from ticketfmt.train.fidelity import ImpOptions
    from ticketfmt.train.recipes import RECIPES, parse_rewind
    from ticketfmt.zoo import get_arch

    options = ImpOptions(prune_count=prune_count, remaining=remaining, data_order=data_order, dense_level=dense_level)
    get_arch(arch)
    get_spec(dataset)
    if recipe is not None and recipe not in RECIPES:
        raise typer.BadParameter(f"{recipe!r} is not one of {', '.join(RECIPES)}", param_hint="--recipe")
    if rewind is not None:
        parse_rewind(rewind, 1)
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"{output} is a file", param_hint="-o")
    command = _command([("--dataset", dataset), ("--levels", levels), ("--rewind", rewind),
                        ("--rate", rate if rate != 0.2 else None), ("--epochs", epochs), ("--lr", lr),
                        ("--batch-size", batch_size), ("--milestones", milestones), ("--warmup", warmup),
                        ("--momentum", momentum), ("--weight-decay", weight_decay), ("--recipe", recipe),
                        ("--subset", subset), ("--seed", seed), ("--warmup-offset", warmup_offset),
                        ("--init", init if init != "reference" else None), ("--normalize", normalize),
                        *[(f"--{d.split('=')[0].replace('_', '-')}", d.split("=")[1]) for d in options.departures()],
                        ("-o", output)], ["find", arch])

    from ticketfmt.train import find as run_find

    try:
        with _display("find") as callback:
            result = run_find(arch, dataset, levels, out_dir=output, rate=rate, rewind=rewind, recipe=recipe,
                              subset=subset, seed=seed, resume=resume, device=device, compile=compile,
                              data_dir=data_dir, progress=callback, sync_bn=sync_bn, eval_every=eval_every,
                              command=command, options=options, init=init, normalize=normalize or "reference",
                              **overrides)
    except KeyboardInterrupt:
        if _is_main():
            err.print(f"interrupted: the run in {output} is resumable with --resume")
        raise
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
    out.print(table)


def _ref_text(name: str, ref: Any) -> str | None:
    if not isinstance(ref, dict) or "value" not in ref:
        return None
    budget = [str(ref.get("dataset", "?"))]
    if ref.get("epochs") is not None:
        budget.append(f"{ref['epochs']} epochs")
    if ref.get("subset") is not None:
        budget.append(f"subset {ref['subset']}")
    return f"{name} {float(ref['value']):.2f}% ({', '.join(budget)})"


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The ticket to retrain.", exists=True, dir_okay=False)],
    dataset: Dataset,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the ticket with the result "
                                                                          "recorded here.", dir_okay=False)] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Record the result in FILE itself (atomically).")] = False,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Start the schedule at step 0, not at the "
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
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the data order (default: the "
                                                               "ticket's).")] = None,
    device: Device = "auto",
    compile: Compile = False,
    data_dir: DataDir = None,
    save_trained: Annotated[bool, typer.Option("--save-trained", help="Also store the trained weights in the "
                                                                      "written ticket.")] = False,
    sync_bn: SyncBN = True,
    normalize: Normalize = None,
    force: Annotated[bool, typer.Option("--force", help="Replace -o if it exists.")] = False,
    as_json: AsJson = False,
    no_verify: NoVerify = False,
) -> None:
    """Retrain a ticket from its rewind weights with the mask fixed, evaluate top-1 on the test split.

    Prints the accuracy with the dense and IMP references the ticket's provenance knows, and records the result in the ticket's results (-o NEW or --in-place; without them nothing is written). The recipe, rewind step and seed are the ticket's own (a converted ticket's are its source's: it starts at the source's rewind step, the LR schedule fast-forwarded) unless overridden.

    Example: ticket verify r56.ticket --dataset cifar10 -o r56-verified.ticket
    """
    if output is not None and in_place:
        raise typer.BadParameter("give at most one of -o and --in-place", param_hint="-o/--in-place")
    _check_subset(subset)
    overrides = _overrides(epochs, lr, batch_size, milestones, warmup, momentum, weight_decay, warmup_offset)
    from ticketfmt.data import get_spec
    from ticketfmt.train.recipes import RECIPES, parse_rewind

    get_spec(dataset)
    if recipe is not None and recipe not in RECIPES:
        raise typer.BadParameter(f"{recipe!r} is not one of {', '.join(RECIPES)}", param_hint="--recipe")
    if rewind is not None:
        parse_rewind(rewind, 1)
    if output is not None and _is_main():
        check_output(output, force)

    from ticketfmt.ticket import Ticket
    from ticketfmt.train import verify as run_verify

    ticket = Ticket.load(file, verify=not no_verify)
    with _display("verify") as callback:
        verified, record = run_verify(ticket, dataset, from_scratch=from_scratch, recipe=recipe, subset=subset,
                                      seed=seed, device=device, data_dir=data_dir, compile=compile, progress=callback,
                                      sync_bn=sync_bn, store_trained=save_trained, rewind=rewind,
                                      normalize=normalize, **overrides)
    if not _is_main():
        return
    target = file if in_place else output
    if target is not None:
        verified.save(target, encoding=ticket.encoding or "packed")
    if as_json:
        out.print_json(json.dumps(record))
    else:
        budget = [f"{record['dataset']} {record['split']}", f"{record['epochs']} epochs"]
        if record.get("subset") is not None:
            budget.append(f"subset {record['subset']}")
        budget.append(f"seed {record['seed']}")
        budget.append("from step 0" if record["from_scratch"] else
                      f"from step {record['start_step']} (rewind {record['rewind']}, lr {record['start_lr']:g})")
        line = Text.assemble("top-1 ", (f"{record['value']:.2f}%", "bold"),
                             f" ({record['correct']}/{record['total']}; {', '.join(budget)}; "
                             f"{ticket.sparsity:.2%} sparse)")
        out.print(line, soft_wrap=True)
        refs = [t for t in (_ref_text("dense", record.get("dense_reference")),
                            _ref_text("IMP", record.get("imp_reference"))) if t]
        if refs:
            out.print("references: " + "; ".join(refs), soft_wrap=True)
    if target is not None:
        err.print(f"recorded in {target}")
