"""`ticket convert`: elastic conversion of a ticket to deeper or shallower networks of its family.

A thin layer over :func:`ticketfmt.converters.convert_file`: every target is planned (validated)
before anything is written and the source is read once; torch and the converters are imported
inside the command so `ticket info` stays fast.
"""

# No `from __future__ import annotations`: typer reads the command's signature with typing.get_type_hints, which
# compiles every string annotation at each start (a few ms of the command's CPU time); real annotations cost nothing.
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from ticketfmt.cli._options import AsJson, Encoding, Force, NoVerify
from ticketfmt.cli.app import app, check_output, err, out, print_json, print_table, warn
from ticketfmt.errors import ConversionError, OutputExistsError, TicketError

if TYPE_CHECKING:
    from ticketfmt.converters import ConvertedFile, Plan, SourceFile


@app.command()
def convert(
    source: Annotated[Path, typer.Option("--from", help="The ticket to convert.", dir_okay=False)],
    to: Annotated[str, typer.Option("--to", help="Target architecture(s), comma-separated: resnet101, "
                                                 "torchvision/resnet101, cifar_resnet32,cifar_resnet56.")],
    # a str, not a Path: Path("dir/") drops the trailing slash that says "a folder"
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Output file, or a folder (files named "
                                                                          "<target>.ticket). Default: <target>.ticket "
                                                                          "beside the source, one per target.",
                                                   show_default=False)] = None,
    strategy: Annotated[Optional[str], typer.Option(help="interpolate (default stretch), append, first, last; "
                                                         "spread (default squeeze), first, last.")] = None,
    mapping: Annotated[Optional[str], typer.Option(help="The reference code's mapping, e.g. '0:0;1:1,2;2:3,4' "
                                                        "(stages joined by '|').")] = None,
    num_classes: Annotated[Optional[int], typer.Option("--num-classes", help="Re-initialize the classifier for N "
                                                                             "classes (left dense).")] = None,
    permute_copies: Annotated[Optional[int], typer.Option("--permute-copies", metavar="SEED",
                                                          help="Control: shuffle the masks of replicated copies "
                                                               "within each tensor.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also write the conversion picture (PNG): source "
                                                                "and target blocks, each linked to the block it "
                                                                "came from, coloured by density.",
                                                 dir_okay=False)] = None,
    encoding: Encoding = "packed",
    force: Force = False,
    as_json: AsJson = False,
    no_verify: NoVerify = False,
    allow_empty_layers: Annotated[bool, typer.Option("--allow-empty-layers", metavar="",
                                                     help="Convert a source with a fully pruned layer.")] = False,
) -> None:
    """Convert a ticket to deeper (stretch) or shallower (squeeze) networks of its family by replicating or dropping blocks, mask and init together (the Elastic Lottery Ticket Hypothesis).

    Stem, classifier and block 0 of every stage are copied one to one; trained weights are dropped. Every target is validated before anything is written; the source is read once. Without -o, each target is written beside the source as <target>.ticket; existing files are only replaced with --force.

    Example: ticket convert --from resnet50.ticket --to resnet101   (writes resnet101.ticket beside resnet50.ticket)

    Example: ticket convert --from r20.ticket --to cifar_resnet32,cifar_resnet44,cifar_resnet56 -o out/

    Example: ticket convert --from r56.ticket --to cifar_resnet32 --strategy spread -o r32.ticket

    Example: ticket convert --from r20.ticket --to cifar_resnet32 --mapping "0:0;1:1,2;2:3,4" -o r32.ticket

    Example: ticket convert --from vgg16.ticket --to torchvision/vgg19 -o vgg19.ticket  (crosses libraries)

    Example: ticket convert --from r20.ticket --to cifar_resnet56 -o r56.ticket --plot r20-to-r56.png
    """
    if strategy is not None and mapping is not None:
        raise typer.BadParameter("give either --strategy or --mapping, not both", param_hint="--strategy/--mapping")
    if num_classes is not None and num_classes < 1:
        raise typer.BadParameter(f"{num_classes} is not a number of classes (at least 1)", param_hint="--num-classes")
    targets = [t.strip() for t in to.split(",") if t.strip()]
    if not targets:
        raise typer.BadParameter("name at least one target architecture", param_hint="--to")

    from ticketfmt.converters import SourceFile, convert_file, plan_conversion
    from ticketfmt.format.spec import read_header
    from ticketfmt.zoo import spec_from_json

    # 1. Plan every target from the source's header alone: all errors come out before any write.
    header = read_header(source)
    src_spec = spec_from_json(header.arch)
    if not allow_empty_layers:  # a fully pruned layer would be carried into every target (issue 14)
        from ticketfmt.checks import refuse_empty_layers
        refuse_empty_layers({n: (l.kept, l.numel) for n, l in header.layers.items()}, str(source),
                            fix="prune the source again with --keep-dense or --min-density (`ticket prune`), or "
                                "pass --allow-empty-layers to convert it anyway")
    plans = [plan_conversion(src_spec, t, strategy=strategy, mapping=mapping, num_classes=num_classes)
             for t in targets]
    paths = _outputs(source, output, plans)
    for p in [*paths, *([plot] if plot is not None else [])]:
        check_output(p, force)

    # 2. Read the source once (a packed source written packed stays packed: nothing is unpacked), write each target.
    src = SourceFile.open(source, verify=not no_verify, encoding=encoding, header=header)  # not read again
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    rows = [_summary(plan, convert_file(src, plan, path, permute_copies=permute_copies))
            for plan, path in zip(plans, paths, strict=True)]
    _report(src, rows, encoding, permute_copies, as_json)
    if plot is not None:
        _plot(plot, source, plans, rows)


def _plot(path: Path, source: Path, plans: "list[Plan]", rows: list[dict[str, Any]]) -> None:
    """``--plot``: the conversion picture of every target, from the headers (matplotlib is imported only here)."""
    from ticketfmt.cards.plot import BlockDensities, ConversionView, conversion_plot
    from ticketfmt.format.spec import read_header

    def layers(file: str | Path) -> dict[str, tuple[int, int]]:
        return {n: (info.kept, info.numel) for n, info in read_header(file).layers.items()}

    views = [ConversionView(BlockDensities.of(p.target, layers(r["file"])), p.stage_maps,
                            f"{p.target.id}: {p.direction}, strategy {p.strategy}, --mapping '{p.mapping}'")
             for p, r in zip(plans, rows, strict=True)]
    conversion_plot(BlockDensities.of(plans[0].source, layers(source)), views, path)
    err.print(f"wrote {path}", soft_wrap=True)


def _report(src: "SourceFile", rows: list[dict[str, Any]], encoding: str, permute_copies: int | None,
            as_json: bool) -> None:
    """Warnings and notes on stderr; the sparsity table (or JSON) on stdout."""
    spec = src.spec
    src_row = {"file": src.path, "arch": spec.id, "num_classes": spec.num_classes, "stages": list(spec.stages),
               "sparsity": src.sparsity, "stage_sparsity": src.stage_sparsity(), "has_trained": src.has_trained}
    for w in dict.fromkeys(w for r in rows for w in r["warnings"]):
        warn(w)
    if src.has_trained:
        warn(f"{src.path} holds trained weights; they belong to {spec.id} and were dropped (the converted ticket "
             "holds masks and init only: train it, e.g. with `ticket verify`)")
    for r in rows:
        if r["num_classes_reinit"]:
            err.print(f"note: {r['arch']}: classifier re-initialized for {r['num_classes']} classes "
                      f"(was {spec.num_classes}; seed {r['classifier_seed']}, left dense)", soft_wrap=True)
        err.print(f"wrote {r['file']} ({r['arch']}, {r['size'] / 1e6:.2f} MB, {encoding})", soft_wrap=True)
    if as_json:
        print_json({"source": src_row, "targets": rows, "trained_dropped": src_row["has_trained"],
                    "permute_copies": permute_copies, "encoding": encoding})
        return
    print_table(_table(src_row, rows))
    for r in rows:
        out.print(f"{r['arch']}: {r['direction']}, strategy {r['strategy']}, --mapping '{r['mapping']}'",
                  soft_wrap=True, markup=False)


def _outputs(source: Path, output_arg: str | None, plans: "list[Plan]") -> list[Path]:
    """The output file of each plan.

    No ``-o``: ``<target>.ticket`` beside the source. ``-o FILE`` for one target; ``-o FOLDER``
    (several targets, an existing folder, or a trailing slash): ``FOLDER/<target>.ticket``.
    """
    output = None if output_arg is None else Path(output_arg)
    folder = output is None or len(plans) > 1 or output.is_dir() or output_arg.endswith(("/", "\\"))
    if output is not None and not folder:
        if not output.parent.is_dir():
            raise TicketError(f"the folder of {output} does not exist", fix=f"create {output.parent} first")
        paths = [output]
    else:
        where = source.parent if output is None else output
        if output is not None and output.exists() and not output.is_dir():
            raise OutputExistsError(f"{output} is a file, but {len(plans)} targets need a folder",
                                    fix="give a folder with -o (it is created if missing)")
        names = [p.target.name for p in plans]
        dup = {n for n in names if names.count(n) > 1}  # resnet101 from timm and torchvision: prefix the library
        paths = [where / f"{n if n not in dup else f'{p.target.library}-{n}'}.ticket" for p, n in zip(plans, names)]
        if len(set(paths)) != len(paths):
            raise ConversionError("the same target is named twice in --to", fix="list each target once")
    for p in paths:
        if p.resolve() == source.resolve():
            raise OutputExistsError(f"{p} would replace the source ticket", fix="give another output with -o")
    return paths


def _summary(plan: "Plan", result: "ConvertedFile") -> dict[str, Any]:
    prov = result.provenance
    return {"file": result.path, "arch": result.arch, "num_classes": result.num_classes, "size": result.size,
            "stages": list(plan.target.stages), "direction": plan.direction, "strategy": plan.strategy,
            "stage_strategies": list(plan.stage_strategies), "mapping": plan.mapping, "mappings": plan.mappings,
            "sparsity": result.sparsity, "stage_sparsity": result.stage_sparsity(),
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
