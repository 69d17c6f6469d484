"""`ticket lmc`: linear mode connectivity of a ticket (two copies on two data orders, the error barrier between them).

A thin layer over :func:`ticketfmt.train.lmc`; the budget options are verify's. torch and
matplotlib are imported inside the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from ticketfmt.cli.app import NoVerify, app, check_output, err, out, print_table
from ticketfmt.cli.train import (AsJson, BatchSize, Compile, Crop, DataDir, Dataset, Device, Epochs, Lr, Milestones,
                                 Momentum, Normalize, RecipeName, Resize, Subset, SyncBN, Threads, Warmup,
                                 WarmupOffset, WeightDecay, _budget, _budget_words, _display, _is_main)
from ticketfmt.errors import OutputExistsError


def _orders(text: str) -> tuple[int, int]:
    try:
        a, b = (int(t) for t in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not two comma-separated integers (e.g. 9999,10001)",
                                 param_hint="--data-orders") from None
    if a == b:
        raise typer.BadParameter(f"the two copies need different data orders, got {a} twice",
                                 param_hint="--data-orders")
    if min(a, b) < 0:
        raise typer.BadParameter(f"{text!r}: data orders are non-negative", param_hint="--data-orders")
    return a, b


def _check_paths(file: Path, target: Path | None, plot: Path | None, force: bool) -> None:
    """Refuse, before any work, outputs that exist (without --force) or a plot that would overwrite a ticket."""
    if target is not None and target != file:
        check_output(target, force)
    if plot is not None:
        if plot.exists() and plot.resolve() in {file.resolve(), *([target.resolve()] if target else [])}:
            raise OutputExistsError(f"--plot {plot} is a ticket of this command", fix="write the plot to another file")
        if target is not None and plot.resolve() == target.resolve():
            raise OutputExistsError(f"--plot {plot} is the -o ticket", fix="write the plot to another file")
        check_output(plot, force)


def _report(record: dict[str, Any], sparsity: float) -> None:
    table = Table("alpha", "test error", title="test error along (1 - alpha) A + alpha B", title_justify="left")
    for a, e in zip(record["alphas"], record["errors"]):
        table.add_row(f"{a:.3f}", f"{e:.2f}%")
    print_table(table)
    orders = record["data_orders"]
    budget = _budget_words(record, f"seed {record['seed']}, data orders {orders[0]} and {orders[1]}",
                           f"from step {record['start_step']}")
    ends = record["endpoints"]
    out.print(Text.assemble("error barrier ", (f"{record['value']:.2f}", "bold"),
                            f" points (max error {record['max_error']:.2f}% along the path, ends {ends[0]:.2f}% and "
                            f"{ends[1]:.2f}%; {record['points']} points; {', '.join(budget)}; {sparsity:.2%} sparse)"),
              soft_wrap=True)


@app.command()
def lmc(
    file: Annotated[Path, typer.Argument(help="The ticket whose stability is measured.", exists=True, dir_okay=False)],
    dataset: Dataset,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the ticket with the barrier "
                                                                          "recorded here.", dir_okay=False)] = None,
    in_place: Annotated[bool, typer.Option("--in-place", metavar="", help="Record the barrier in FILE itself "
                                                                          "(atomically).")] = False,
    points: Annotated[int, typer.Option("--points", help="Points on the linear path, ends included (the "
                                                         "reference's 21; at least 2).")] = 21,
    data_orders: Annotated[str, typer.Option("--data-orders", help="The two copies' data streams (the reference: "
                                                                   "its seed + 9999 and + 10001).")] = "9999,10001",
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also write the error along the path (PNG).",
                                                 dir_okay=False)] = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", metavar="", help="Start the schedule at step 0, "
                                                                                  "not at the rewind step.")] = False,
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
    seed: Annotated[Optional[int], typer.Option("--seed", min=0, max=2**63 - 1, help="Seed of the data: subset, and the base of both "
                                                               "orders (default: the ticket's).")] = None,
    device: Device = "auto",
    compile: Compile = False,
    data_dir: DataDir = None,
    sync_bn: SyncBN = True,
    normalize: Normalize = None,
    resize: Resize = None,
    crop: Crop = None,
    threads: Threads = None,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Replace -o and --plot if they exist.")] = False,
    as_json: AsJson = False,
    no_verify: NoVerify = False,
) -> None:
    """Linear mode connectivity: train two copies of a ticket on two data orders, measure the error barrier between them.

    Both copies start at the ticket's rewind point with its mask and training contract (verify's budget options apply) and differ only in the order of the training data. The test error is measured at --points evenly spaced points of the straight line between the two trained networks (the masks re-applied, BatchNorm statistics interpolated as the reference does); the barrier is the largest error along the line minus the mean of the two ends' errors. A stable (winning) ticket has a barrier near 0: the paper reports 8.72 for ResNet-20 -> 32 and 69.72 for ResNet-14 -> 32.

    The barrier is recorded in the ticket's results (metric error_barrier) with -o NEW or --in-place; progress goes to stderr.

    Example: ticket lmc r32.ticket --dataset cifar10 -o r32-lmc.ticket --plot r32-lmc.png

    Example (minutes on a CPU): ticket lmc r32.ticket --dataset cifar10-jpeg --epochs 2 --subset 5000 --points 11 -o r32-lmc.ticket
    """
    if output is not None and in_place:
        raise typer.BadParameter("give at most one of -o and --in-place", param_hint="-o/--in-place")
    if points < 2:
        raise typer.BadParameter(f"{points} points cannot make a path (at least 2; the reference uses 21)",
                                 param_hint="--points")
    orders = _orders(data_orders)
    overrides = _budget(dataset, recipe, rewind, subset, threads, crop, epochs, lr, batch_size, milestones, warmup,
                        momentum, weight_decay, warmup_offset)
    target = file if in_place else output
    if _is_main():
        _check_paths(file, target, plot, force)

    from ticketfmt.ticket import Ticket
    from ticketfmt.train import lmc as run_lmc

    ticket = Ticket.load(file, verify=not no_verify)
    try:
        with _display("lmc") as callback:
            res = run_lmc(ticket, dataset, points=points, data_orders=orders, from_scratch=from_scratch,
                          recipe=recipe, subset=subset, seed=seed, rewind=rewind, device=device, data_dir=data_dir,
                          compile=compile, progress=callback, sync_bn=sync_bn, normalize=normalize, resize=resize,
                          crop=crop, threads=threads, **overrides)
    except KeyboardInterrupt:
        if _is_main():
            err.print("interrupted: nothing written")
        raise typer.Exit(130) from None
    if not _is_main():
        return
    if target is not None:
        res.ticket.save(target, encoding=ticket.encoding or "packed")
    if plot is not None:
        from ticketfmt.cards.plot import lmc_plot  # matplotlib is imported only here

        lmc_plot(res.alphas, {"test": res.errors}, plot, endpoints=(f"copy A, order {orders[0]}",
                                                                    f"copy B, order {orders[1]}"),
                 title=f"{ticket.arch} ({ticket.sparsity:.2%} sparse) on {dataset}: error barrier {res.barrier:.2f}")
    if as_json:
        out.print_json(json.dumps({**res.record, "file": str(target) if target else None,
                                   "plot": str(plot) if plot else None}))
    else:
        _report(res.record, ticket.sparsity)
    for path in (target, plot):
        if path is not None:
            err.print(f"wrote {path}" if path == plot else f"recorded in {path}")
