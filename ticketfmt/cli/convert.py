"""`ticket convert`: elastic conversion of a ticket to deeper or shallower networks of its family.

A thin layer over :mod:`ticketfmt.converters`: every target is planned (validated) before anything
is written; torch and the converters are imported inside the command so `ticket info`
stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from ticketfmt.cli.app import NoVerify, app, check_output, err, out, warn
from ticketfmt.errors import ConversionError, OutputExistsError, TicketError

if TYPE_CHECKING:
    from ticketfmt.converters import Plan


@app.command()
def convert(
    source: Annotated[Path, typer.Option("--from", help="The ticket to convert.", dir_okay=False)],
    to: Annotated[str, typer.Option("--to", help="Target architecture(s), comma-separated: resnet101, "
                                                 "torchvision/resnet101, cifar_resnet32,cifar_resnet56.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file; a folder when there are several "
                                                                "targets (files named <target>.ticket).")],
    strategy: Annotated[Optional[str], typer.Option(help="interpolate (default stretch), append, first, last; "
                                                         "spread (default squeeze), first, last.")] = None,
    mapping: Annotated[Optional[str], typer.Option(help="The reference code's mapping, e.g. '0:0;1:1,2;2:3,4' "
                                                        "(stages joined by '|').")] = None,
    num_classes: Annotated[Optional[int], typer.Option("--num-classes", help="Re-initialize the classifier for N "
                                                                             "classes (left dense).")] = None,
    permute_copies: Annotated[Optional[int], typer.Option("--permute-copies", metavar="SEED",
                                                          help="Control: shuffle the masks of replicated copies "
                                                               "within each tensor.")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="packed (default) or dense.")] = "packed",
    force: Annotated[bool, typer.Option("--force", help="Replace outputs that exist.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
    no_verify: NoVerify = False,
) -> None:
    """Convert a ticket to deeper (stretch) or shallower (squeeze) networks of its family by replicating or dropping blocks, mask and init together (the Elastic Lottery Ticket Hypothesis).

    Stem, classifier and block 0 of every stage are copied one to one; trained weights are dropped. Every target is validated before anything is written.

    Example: ticket convert --from resnet50.ticket --to resnet101 -o resnet101.ticket

    Example: ticket convert --from r20.ticket --to cifar_resnet32,cifar_resnet44,cifar_resnet56 -o out/

    Example: ticket convert --from r56.ticket --to cifar_resnet32 --strategy spread -o r32.ticket

    Example: ticket convert --from r20.ticket --to cifar_resnet32 --mapping "0:0;1:1,2;2:3,4" -o r32.ticket

    Example: ticket convert --from vgg16.ticket --to torchvision/vgg19 -o vgg19.ticket  (crosses libraries)
    """
    from ticketfmt.format.spec import ENCODINGS

    if encoding not in ENCODINGS:
        raise typer.BadParameter(f"{encoding!r} is not one of {', '.join(ENCODINGS)}", param_hint="--encoding")
    if strategy is not None and mapping is not None:
        raise typer.BadParameter("give either --strategy or --mapping, not both", param_hint="--strategy/--mapping")
    if num_classes is not None and num_classes < 1:
        raise typer.BadParameter(f"{num_classes} is not a number of classes (at least 1)", param_hint="--num-classes")
    targets = [t.strip() for t in to.split(",") if t.strip()]
    if not targets:
        raise typer.BadParameter("name at least one target architecture", param_hint="--to")

    from ticketfmt.converters import apply_plan, plan_conversion
    from ticketfmt.format.spec import read_header
    from ticketfmt.ticket import Ticket
    from ticketfmt.zoo import spec_from_json

    # 1. Plan every target from the source's header alone: all errors come out before any write.
    header = read_header(source)
    src_spec = spec_from_json(header.arch)
    plans = [plan_conversion(src_spec, t, strategy=strategy, mapping=mapping, num_classes=num_classes)
             for t in targets]
    paths = _outputs(output, plans)
    for p in paths:
        check_output(p, force)

    # 2. Load, convert and write. A packed source written packed is converted at the level of its
    #    packed tensors (byte-identical to the Ticket path, without unpacking anything).
    from ticketfmt.converters.files import PackedSource, write_converted

    fast = header.encoding == "packed" and encoding == "packed"
    src: Any = PackedSource.open(source, verify=not no_verify) if fast else Ticket.load(source, verify=not no_verify)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for plan, path in zip(plans, paths, strict=True):
        if fast:
            result: Any = write_converted(src, plan, path, permute_copies=permute_copies)
            size = result.size
        else:
            result = apply_plan(src, plan, permute_copies=permute_copies)
            size = result.save(path, encoding=encoding)
        rows.append(_summary(plan, result, path, size))
        del result

    has_trained = src.trained is not None if not fast else src.has_trained
    src_row = {"file": str(source), "arch": src_spec.id, "num_classes": src_spec.num_classes,
               "stages": list(src_spec.stages), "sparsity": src.sparsity, "stage_sparsity": src.stage_sparsity(),
               "has_trained": has_trained}
    for w in dict.fromkeys(w for r in rows for w in r["warnings"]):
        warn(w)
    if has_trained:
        warn(f"{source} holds trained weights; they belong to {src_spec.id} and were dropped (the converted ticket "
             "holds masks and init only: train it, e.g. with `ticket verify`)")
    for r in rows:
        if r["num_classes_reinit"]:
            err.print(f"note: {r['arch']}: classifier re-initialized for {r['num_classes']} classes "
                      f"(was {src_spec.num_classes}; seed {r['classifier_seed']}, left dense)", soft_wrap=True)
        err.print(f"wrote {r['file']} ({r['arch']}, {r['size'] / 1e6:.2f} MB, {encoding})")
    if as_json:
        out.print_json(json.dumps({"source": src_row, "targets": rows, "trained_dropped": src_row["has_trained"],
                                   "permute_copies": permute_copies, "encoding": encoding}))
        return
    out.print(_table(src_row, rows))
    for r in rows:
        out.print(f"{r['arch']}: {r['direction']}, strategy {r['strategy']}, --mapping '{r['mapping']}'",
                  soft_wrap=True)


def _outputs(output: Path, plans: list[Plan]) -> list[Path]:
    """The output file of each plan: ``output`` itself for one target, else ``output/<name>.ticket``."""
    folder = len(plans) > 1 or output.is_dir() or str(output).endswith(("/", "\\"))
    if not folder:
        if not output.parent.is_dir():
            raise TicketError(f"the folder of {output} does not exist", fix=f"create {output.parent} first")
        return [output]
    if output.exists() and not output.is_dir():
        raise OutputExistsError(f"{output} is a file, but {len(plans)} targets need a folder",
                                fix="give a folder with -o (it is created if missing)")
    names = [p.target.name for p in plans]
    dup = {n for n in names if names.count(n) > 1}
    paths = []
    for p in plans:
        stem = p.target.name if p.target.name not in dup else f"{p.target.library}-{p.target.name}"
        paths.append(output / f"{stem}.ticket")
    if len(set(paths)) != len(paths):
        raise ConversionError("the same target is named twice in --to", fix="list each target once")
    return paths


def _summary(plan: Plan, ticket: Any, path: Path, size: int) -> dict[str, Any]:
    prov = ticket.provenance
    return {"file": str(path), "arch": ticket.arch, "num_classes": ticket.num_classes, "size": size,
            "stages": list(plan.target.stages), "direction": plan.direction, "strategy": plan.strategy,
            "stage_strategies": list(plan.stage_strategies), "mapping": plan.mapping, "mappings": plan.mappings,
            "sparsity": ticket.sparsity, "stage_sparsity": ticket.stage_sparsity(),
            "num_classes_reinit": plan.reinit_classifier, "classifier_seed": prov.get("classifier_seed"),
            "permute_copies": prov.get("permute_copies"), "copies_permuted": prov.get("copies_permuted"),
            "warnings": list(plan.warnings)}


def _table(src: dict[str, Any], rows: list[dict[str, Any]]) -> Table:
    table = Table(title="sparsity (fraction of prunable weights removed)", title_justify="left")
    table.add_column("")
    table.add_column(f"{src['arch']} (source)", justify="right")
    for r in rows:
        table.add_column(r["arch"], justify="right")
    table.add_row("units", "-".join(map(str, src["stages"])), *("-".join(map(str, r["stages"])) for r in rows))
    stages = list(dict.fromkeys([*src["stage_sparsity"], *(s for r in rows for s in r["stage_sparsity"])]))
    for s in stages:
        cells = [_pct(src["stage_sparsity"].get(s))] + [_pct(r["stage_sparsity"].get(s)) for r in rows]
        if s == "head":
            cells = [c + (" (new)" if i and rows[i - 1]["num_classes_reinit"] else "") for i, c in enumerate(cells)]
        table.add_row(s, *cells)
    table.add_row("overall", _pct(src["sparsity"]), *(_pct(r["sparsity"]) for r in rows), style="bold")
    return table


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.2%}"
