"""`ticket new`, `ticket prune`, `ticket info` and `ticket models`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from ticketfmt.cli._options import AsJson, Encoding, Force, NoVerify, Output
from ticketfmt.cli.app import app, check_output, err, out, print_json, print_table, warn
from ticketfmt.errors import OutputExistsError, TicketError


def _wrote(path: Path, ticket: Any, size: int, encoding: str, as_json: bool, extra: dict[str, Any]) -> None:
    """The report of a command that wrote one ticket: JSON on stdout with --json (the line stays on stderr)."""
    if as_json:
        print_json({"file": str(path), "arch": ticket.arch, "num_classes": ticket.num_classes, "size": size,
                    "encoding": encoding, "sparsity": ticket.sparsity, **extra})


@app.command()
def new(
    arch: Annotated[str, typer.Argument(help="Architecture id, e.g. cifar_resnet20, resnet50, torchvision/vgg16_bn.")],
    output: Output,
    seed: Annotated[int, typer.Option(min=0, max=2**63 - 1, help="Seed of the initialization.")] = 0,
    init: Annotated[str, typer.Option("--init", help="Initializer: reference (open_lth's: kaiming normal fan_in, "
                                                     "BatchNorm weight U(0,1)) or library (the model library's own; "
                                                     "see docs/FIDELITY.md).")] = "reference",
    num_classes: Annotated[Optional[int], typer.Option("--num-classes", help="Classes (default: the arch's, or "
                                                                            "those of --weights).")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", dir_okay=False,
                                                    help="Start from this state dict (safetensors, timm or "
                                                         "torchvision keys; torch.nn.utils.prune's weight_orig + "
                                                         "weight_mask form keeps its masks).")] = None,
    pretrained: Annotated[bool, typer.Option("--pretrained", metavar="",
                                             help="Start from the library's pretrained weights (timm: its default "
                                                  "tag, from the Hugging Face Hub; torchvision: DEFAULT).")] = False,
    masks: Annotated[str, typer.Option("--masks", help="ones (keep every weight) or nonzero (keep the non-zero "
                                                       "weights of --weights / --pretrained).")] = "ones",
    encoding: Encoding = "packed",
    force: Force = False,
    as_json: AsJson = False,
) -> None:
    """Make a level-0 ticket: all-ones masks and a fresh initialization, a state dict file, or pretrained weights.

    Names are forgiving: ResNet50, resnet-50 and resnet50 are timm/resnet50; a typo gets a "did you mean".

    Example: ticket new cifar_resnet20 -o r20.ticket --seed 0

    Example: ticket new torchvision/resnet50 --weights resnet50.safetensors -o r50.ticket

    Example: ticket new resnet50 --pretrained -o r50-pretrained.ticket
    """
    from ticketfmt.ticket import Ticket
    from ticketfmt.zoo import build_model, get_arch

    if weights is not None and pretrained:
        raise typer.BadParameter("give --weights or --pretrained, not both", param_hint="--weights/--pretrained")
    if masks not in ("ones", "nonzero"):
        raise typer.BadParameter(f"{masks!r} is not ones or nonzero", param_hint="--masks")
    if masks == "nonzero" and weights is None and not pretrained:
        raise typer.BadParameter("a fresh initialization has no zeros to read: give --weights or --pretrained",
                                 param_hint="--masks")
    spec = get_arch(arch, num_classes)  # a bad id fails before anything is read
    check_output(output, force)
    how = None if masks == "ones" else masks
    if weights is not None:
        from ticketfmt.interop import ticket_from_weights
        ticket = ticket_from_weights(arch, weights, masks=how, num_classes=num_classes, seed=seed)
    elif pretrained:
        from ticketfmt.interop import ticket_from_pretrained
        ticket = ticket_from_pretrained(spec, masks=how, seed=seed)
    else:
        if init not in ("reference", "library"):
            raise TicketError(f"unknown initializer {init!r}", fix="use --init reference or --init library")
        ticket = Ticket.from_model(build_model(spec, seed=seed, init=init), spec,
                                   provenance={"method": "init", "seed": seed, "level": 0, "init": init})
    size = ticket.save(output, encoding=encoding)
    source = ticket.provenance.get("source", {})
    origin = f", from {source.get('repo_id') or source.get('weights') or source.get('file')}" if source else ""
    err.print(f"wrote {output} ({ticket.arch}, {size / 1e6:.2f} MB, {encoding}{origin}, {ticket.sparsity:.2%} "
              "sparse)", soft_wrap=True)
    _wrote(output, ticket, size, encoding, as_json, {"seed": seed, **({"source": source} if source else {})})


@app.command()
def prune(
    output: Output,
    file: Annotated[Optional[Path], typer.Argument(help="The ticket to prune (optional with --method reinit: "
                                                        "only its layers are checked against --like).")] = None,
    sparsity: Annotated[Optional[float], typer.Option(help="Target fraction of prunable weights removed, e.g. 0.9.")] = None,
    method: Annotated[str, typer.Option(help="Pruning method: magnitude, random, snip, grasp, synflow; reinit: "
                                             "--like T's mask on a fresh initialization (the reinit "
                                             "baseline).")] = "magnitude",
    like: Annotated[Optional[Path], typer.Option(help="Match this ticket's per-layer densities (a baseline).")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, max=2**63 - 1, help="Seed for random methods and the data order (default 0); with "
                                                     "reinit, of the fresh initialization (default: the --like "
                                                     "ticket's seed + 10000).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Training data for snip and grasp "
                                                                     "(cifar10, cifar10-jpeg, imagenet, ...).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Where the dataset lives.")] = None,
    batches: Annotated[int, typer.Option("--batches", help="Training batches (of 128) snip and grasp score "
                                                           "with.")] = 1,
    resize: Annotated[bool, typer.Option("--resize", metavar="", help="Let snip/grasp upscale images smaller than "
                                                                    "the network's input (the batches follow the "
                                                                    "network's input size).")] = False,
    keep_dense: Annotated[Optional[str], typer.Option("--keep-dense", help="Layers or modules left unpruned, "
                                                      "comma-separated, e.g. fc,conv1 (they still count in the "
                                                      "sparsity).")] = None,
    min_density: Annotated[float, typer.Option("--min-density", help="Every layer keeps at least this fraction "
                                                                     "of its weights, e.g. 0.01.")] = 0.0,
    allow_empty_layers: Annotated[bool, typer.Option("--allow-empty-layers", metavar="",
                                                     help="Write the ticket even if a layer loses every "
                                                          "weight (it cuts the network).")] = False,
    encoding: Encoding = "packed",
    force: Force = False,
    no_verify: NoVerify = False,
    as_json: AsJson = False,
) -> None:
    """Prune a ticket once, globally, to an exact sparsity (or to another ticket's per-layer densities).

    snip and grasp score with --batches training batches of --dataset; synflow needs no data. A result that prunes
    a whole layer (it cuts the network) is refused unless --allow-empty-layers; --keep-dense and --min-density
    prevent it.

    Example: ticket prune r56.ticket --method snip --like r56-imp.ticket --dataset cifar10 -o r56-snip.ticket

    Example: ticket prune resnet50.ticket --sparsity 0.8 --keep-dense fc,conv1 -o r50-80.ticket

    Example: ticket prune --method reinit --like r56-imp.ticket -o r56-reinit.ticket
    """
    from ticketfmt.pruning.pai import DATA_METHODS
    from ticketfmt.pruning import PRUNERS, prune as prune_ticket
    from ticketfmt.ticket import Ticket

    if method not in PRUNERS and method != "reinit":
        raise typer.BadParameter(f"{method!r} is not one of {', '.join([*sorted(PRUNERS), 'reinit'])}",
                                 param_hint="--method")
    if file is None and (method != "reinit" or like is None):
        raise typer.BadParameter("give the ticket to prune (only --method reinit --like T needs none)",
                                 param_hint="FILE")
    if (sparsity is None) == (like is None):
        raise typer.BadParameter("give exactly one of --sparsity and --like", param_hint="--sparsity/--like")
    if sparsity is not None and not 0.0 <= sparsity < 1.0:
        raise typer.BadParameter(f"{sparsity} is not in [0, 1)", param_hint="--sparsity")
    if batches < 1:
        raise typer.BadParameter(f"{batches} is not a positive number of batches", param_hint="--batches")
    if method in DATA_METHODS and dataset is None:
        raise typer.BadParameter(f"{method} scores with training data: pass --dataset", param_hint="--dataset")
    if not 0.0 <= min_density <= 1.0:
        raise typer.BadParameter(f"{min_density} is not in [0, 1]", param_hint="--min-density")
    if like is not None and (keep_dense or min_density > 0):
        raise typer.BadParameter("--like fixes every layer's count: drop --keep-dense/--min-density",
                                 param_hint="--keep-dense/--min-density")
    if dataset is not None:
        from ticketfmt.data import get_spec
        get_spec(dataset)
    check_output(output, force)
    other = Ticket.load(like, verify=not no_verify) if like is not None else None
    ticket = Ticket.load(file, verify=not no_verify) if file is not None else other
    assert ticket is not None  # FILE, or reinit's --like (checked above)
    kwargs: dict[str, Any] = {}
    if method in DATA_METHODS:
        from ticketfmt.pruning.pai import data_batches
        assert dataset is not None
        from ticketfmt.train.recipes import recipe_for
        # scored on batches like the ones the network trains on: no augmentation where its recipe has none
        augment = recipe_for(ticket.spec).augmentation != "none"
        kwargs = {"data": data_batches(dataset, batches, data_dir=data_dir, seed=seed or 0, input_size=ticket.spec,
                                       resize=resize, augment=augment),
                  "batches": batches}
    result = prune_ticket(ticket, sparsity, method, like=other, seed=seed, keep_dense=(keep_dense or "").split(","),
                          min_density=min_density, allow_empty_layers=allow_empty_layers, **kwargs)
    if allow_empty_layers:
        from ticketfmt.checks import empty_layers
        empty = empty_layers(result.layer_density())
        if empty:
            warn(f"{len(empty)} layer(s) keep no weight ({', '.join(empty[:3])}{', ...' if len(empty) > 3 else ''}): "
                 "they cut the network (--allow-empty-layers)")
    if dataset is not None and method in DATA_METHODS:
        history = list(result.provenance.get("pruning", []))
        if history:
            history[-1] = {**history[-1], "dataset": dataset, "batches": batches, "batch_size": 128}
            result = result.replace(provenance={**result.provenance, "pruning": history})
    size = result.save(output, encoding=encoding)
    err.print(f"wrote {output}: {ticket.arch} {ticket.sparsity:.2%} -> {result.sparsity:.2%} sparse ({method})",
              soft_wrap=True)
    seed = (result.provenance.get("pruning") or [{}])[-1].get("seed", seed)  # reinit's default is derived
    _wrote(output, result, size, encoding, as_json, {"method": method, "seed": seed,
                                                       "source_sparsity": ticket.sparsity})


def header_summary(path: Path) -> dict[str, Any]:
    """Everything `ticket info` shows, from the header alone (no torch, no payload)."""
    from ticketfmt.zoo.claims import check_header
    from ticketfmt.format.spec import read_header
    from ticketfmt.zoo import in_state_dict_order, spec_from_json

    header = read_header(path)
    spec = spec_from_json(header.arch)
    check_header(str(path), header, spec)  # the masked set and shapes against the zoo: bounded, no payload
    # the model's order (stem, stages, head), whatever order the file lists its tensors in
    layers = [{"name": n, "stage": spec.stage_of(n), "shape": list(l.shape), "kept": l.kept, "total": l.numel,
               "density": l.density} for n, l in in_state_dict_order(spec, header.layers).items()]
    stages: dict[str, list[int]] = {}
    for l in layers:
        s = stages.setdefault(l["stage"], [0, 0])
        s[0] += l["kept"]
        s[1] += l["total"]
    kept = sum(l["kept"] for l in layers)
    total = sum(l["total"] for l in layers)
    sections = sorted({t.split("/", 1)[0] for t in header.tensors})
    return {
        "file": str(path), "file_size": header.file_size, "format_version": header.version,
        "encoding": header.encoding, "arch": header.arch, "sections": sections,
        "sparsity": 1 - kept / total if total else 0.0, "prunable": total, "kept": kept,
        "stages": {k: {"kept": v[0], "total": v[1], "sparsity": 1 - v[0] / v[1] if v[1] else 0.0}
                   for k, v in stages.items()},
        "layers": layers, "provenance": header.provenance, "results": header.results,
        "payload_sha256": header.metadata.get("payload_sha256"),
        # What info checked (the header and its architecture) and what it did not (anything in the payload).
        "checked": ["header", "architecture"], "not_verified": list(NOT_VERIFIED),
    }


NOT_VERIFIED = ("payload_sha256", "mask_bits", "weights")
"""What `ticket info` (header only) does not check; every command that loads the ticket does."""
ROWS_SHOWN = 50
"""Provenance entries and results shown as tables (all of them: ``--json``), so any file prints in linear time."""


def _text(value: Any, cut: int | None = None) -> Text:
    """A value from a file as terminal-safe text: never markup, control characters escaped (``\\x1b``), cut."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if cut is not None and len(text) > cut:
        text = text[:cut - 3] + "..."
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return Text(text)


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="A .ticket file.")],
    as_json: AsJson = False,
    plot: Annotated[Optional[Path], typer.Option(help="Also write the density bar chart (PNG): per layer, coloured "
                                                      "by stage (per block above 60 layers).")] = None,
    layers: Annotated[bool, typer.Option("--layers/--no-layers", help="Show the per-layer table.")] = True,
    force: Force = False,
) -> None:
    """Show a ticket: architecture, encoding, size, sparsity (overall, per stage, per layer), provenance, results.

    Reads and checks only the header, so it is fast on any size of ticket; the payload (its
    sha256, the masks, the weights) is not verified: every command that loads the ticket does.

    Example: ticket info r56.ticket --json
    """
    if plot is not None:
        if file.exists() and plot.exists() and plot.resolve() == file.resolve():
            raise OutputExistsError(f"--plot {plot} is the ticket being shown", fix="write the plot to another file")
        check_output(plot, force)
    summary = header_summary(file)
    if plot is not None:
        from ticketfmt.cards.plot import density_plot  # matplotlib is imported only here
        from ticketfmt.zoo import spec_from_json
        density_plot({l["name"]: (l["kept"], l["total"]) for l in summary["layers"]}, plot,
                     spec_from_json(summary["arch"]))
    if as_json:
        print_json(summary)
        return
    _print_summary(file, summary, layers)
    if plot is not None:
        err.print(Text(f"wrote {plot}"))


def _print_summary(file: Path, summary: dict[str, Any], layers: bool) -> None:
    """`ticket info`'s tables. Everything from the file is shown as plain text (no markup, control characters
    escaped), and provenance and results show at most ROWS_SHOWN rows, so a hostile header prints safely and fast."""
    arch = summary["arch"]
    out.print(Text.assemble((_text(str(file)).plain, "bold"), "  ", _text(arch["id"], 80), " (",
                            _text(arch.get("library", "?"), 40), f", {_text(arch.get('num_classes'), 20)} classes)  "
                            f"format {summary['format_version']} {summary['encoding']}  "
                            f"{summary['file_size'] / 1e6:.2f} MB  sections: {', '.join(summary['sections'])}"),
              soft_wrap=True)
    out.print(f"sparsity [bold]{summary['sparsity']:.2%}[/] ({summary['kept']:,} of {summary['prunable']:,} "
              "prunable weights kept)")
    table = Table("stage", "kept", "total", "sparsity", title="per stage", title_justify="left")
    for name, s in summary["stages"].items():
        table.add_row(_text(name), f"{s['kept']:,}", f"{s['total']:,}", f"{s['sparsity']:.2%}")
    print_table(table)
    if layers:
        lt = Table("layer", "shape", "kept", "density", title="per layer", title_justify="left")
        for l in summary["layers"]:
            lt.add_row(_text(l["name"]), "×".join(map(str, l["shape"])), f"{l['kept']:,}", f"{l['density']:.2%}")
        print_table(lt)
    provenance = summary["provenance"]
    if provenance:
        pt = Table("provenance", "value", title_justify="left", show_header=False, box=None)
        cut = 100 if out.is_terminal else None  # long values are cut on a terminal only
        for key in sorted(provenance)[:ROWS_SHOWN]:
            pt.add_row(Text(_text(key, cut).plain, style="bold"), _text(provenance[key], cut))
        more = f", {len(provenance) - ROWS_SHOWN:,} more entries" if len(provenance) > ROWS_SHOWN else ""
        out.print(f"[bold]provenance[/] (all of it{more}: `ticket info --json`)")
        print_table(pt)
    _print_results(summary["results"])
    out.print("checked: the header and its architecture; not verified: the payload (its sha256, the mask bits, the "
              "weights), which every command that loads the ticket checks", soft_wrap=True)


def _print_results(results: list[dict[str, Any]]) -> None:
    if not results:
        out.print("results: none recorded (run `ticket verify`)")
        return
    title = "results" + (f" (first {ROWS_SHOWN} of {len(results):,}: `ticket info --json`)"
                         if len(results) > ROWS_SHOWN else "")
    rt = Table("dataset", "metric", "value", "epochs", "date", title=title, title_justify="left")
    for r in results[:ROWS_SHOWN]:
        rt.add_row(*(_text(r.get(k, d), 60) for k, d in (("dataset", ""), ("metric", "top1"), ("value", ""),
                                                          ("epochs", ""), ("date", ""))))
    print_table(rt)


@app.command()
def models(
    pattern: Annotated[Optional[str], typer.Argument(help="Only ids matching this glob, with or without the library "
                                                          "prefix, as timm.list_models: 'resnet*', 'torchvision/*', "
                                                          "'*_bn'.")] = None,
    as_json: AsJson = False,
) -> None:
    """List the model zoo (id, library, family, block type, units per stage, parameters).

    Piped, the table is tab-separated and nothing is cut.

    Example: ticket models 'resnet*'

    Example: ticket models | grep resnet50

    Example: ticket models --json
    """
    from ticketfmt.zoo import list_archs, state_dict_shapes
    from ticketfmt.zoo.names import did_you_mean, matches, normalize

    specs = [s for s in list_archs() if pattern is None or matches(normalize(pattern), s.id)]
    if not specs and pattern is not None:
        close = did_you_mean(pattern, n=3)
        warn(f"no architecture of the zoo matches {pattern!r}"
             + (f"; did you mean {', '.join(close)}?" if close else "; try a glob such as 'resnet*'"))
    rows = []
    for spec in specs:
        params = sum(_prod(s) for k, s in state_dict_shapes(spec).items() if not k.endswith(("running_mean",
                     "running_var", "num_batches_tracked")))
        rows.append({"id": spec.id, "library": spec.library, "family": spec.family, "block": spec.block,
                     "stages": list(spec.stages), "depth": spec.depth, "num_classes": spec.num_classes,
                     "params": params})
    if as_json:
        print_json(rows)
        return
    table = Table("id", "library", "family", "block", "units per stage", "params")
    for r in rows:
        table.add_row(r["id"], r["library"], r["family"], r["block"], "-".join(map(str, r["stages"])),
                      f"{r['params'] / 1e6:.2f}M")
    print_table(table)
    # Piped, stdout holds only the table (for grep and cut); the hint goes to stderr.
    (out if out.is_terminal else err).print(
        "Any depth works too: cifar_resnetN (N = 6n+2), resnet_basic-2-3-4-3, resnet_bottleneck-3-4-6-3, "
        "vgg_bn-2-2-3-3-3, cifar_vgg-2-2-3-3-3, cifar_vggnfc_13_64_N, mnist_lenet_300_..._100, cifar_mobilenetv1_N, "
        "vit_tiny_patch16_224-N, cifar_vit_tiny-N, convnext_atto-2-2-8-2; prefix timm/ or torchvision/.",
        soft_wrap=True)


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
