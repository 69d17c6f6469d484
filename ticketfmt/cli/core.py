"""`ticket new`, `ticket prune`, `ticket info` and `ticket models`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ticketfmt.cli._options import AsJson, Encoding, Force, NoVerify, Output
from ticketfmt.cli.app import app, check_output, err, out, print_json, print_table


def _wrote(path: Path, ticket: Any, size: int, encoding: str, as_json: bool, extra: dict[str, Any]) -> None:
    """The report of a command that wrote one ticket: JSON on stdout with --json (the line stays on stderr)."""
    if as_json:
        print_json({"file": str(path), "arch": ticket.arch, "num_classes": ticket.num_classes, "size": size,
                    "encoding": encoding, "sparsity": ticket.sparsity, **extra})


@app.command()
def new(
    arch: Annotated[str, typer.Argument(help="Architecture id, e.g. cifar_resnet20, resnet50, torchvision/vgg16_bn.")],
    output: Output,
    seed: Annotated[int, typer.Option(help="Seed of the initialization.")] = 0,
    num_classes: Annotated[Optional[int], typer.Option("--num-classes", help="Classes (default: the arch's).")] = None,
    encoding: Encoding = "packed",
    force: Force = False,
    as_json: AsJson = False,
) -> None:
    """Make a level-0 ticket: all-ones masks and a fresh initialization.

    Example: ticket new cifar_resnet20 -o r20.ticket --seed 0
    """
    from ticketfmt.ticket import Ticket
    from ticketfmt.zoo import build_model, get_arch

    spec = get_arch(arch, num_classes)
    check_output(output, force)
    model = build_model(spec, seed=seed)
    ticket = Ticket.from_model(model, spec, provenance={"method": "init", "seed": seed, "level": 0})
    size = ticket.save(output, encoding=encoding)
    err.print(f"wrote {output} ({spec.id}, {size / 1e6:.2f} MB, {encoding})", soft_wrap=True)
    _wrote(output, ticket, size, encoding, as_json, {"seed": seed})


@app.command()
def prune(
    file: Annotated[Path, typer.Argument(help="The ticket to prune.")],
    output: Output,
    sparsity: Annotated[Optional[float], typer.Option(help="Target fraction of prunable weights removed, e.g. 0.9.")] = None,
    method: Annotated[str, typer.Option(help="Pruning method: magnitude, random, snip, grasp, synflow.")] = "magnitude",
    like: Annotated[Optional[Path], typer.Option(help="Match this ticket's per-layer densities (a baseline).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for random methods and the data order.")] = 0,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Training data for snip and grasp "
                                                                     "(cifar10, cifar10-jpeg, imagenet, ...).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Where the dataset lives.")] = None,
    batches: Annotated[int, typer.Option("--batches", help="Training batches (of 128) snip and grasp score "
                                                           "with.")] = 1,
    encoding: Encoding = "packed",
    force: Force = False,
    no_verify: NoVerify = False,
    as_json: AsJson = False,
) -> None:
    """Prune a ticket once, globally, to an exact sparsity (or to another ticket's per-layer densities).

    snip and grasp score with --batches training batches of --dataset; synflow needs no data.

    Example: ticket prune r56.ticket --method snip --like r56-imp.ticket --dataset cifar10 -o r56-snip.ticket
    """
    from ticketfmt.pruning.pai import DATA_METHODS
    from ticketfmt.pruning import PRUNERS, prune as prune_ticket
    from ticketfmt.ticket import Ticket

    if method not in PRUNERS:
        raise typer.BadParameter(f"{method!r} is not one of {', '.join(sorted(PRUNERS))}", param_hint="--method")
    if (sparsity is None) == (like is None):
        raise typer.BadParameter("give exactly one of --sparsity and --like", param_hint="--sparsity/--like")
    if sparsity is not None and not 0.0 <= sparsity < 1.0:
        raise typer.BadParameter(f"{sparsity} is not in [0, 1)", param_hint="--sparsity")
    if batches < 1:
        raise typer.BadParameter(f"{batches} is not a positive number of batches", param_hint="--batches")
    if method in DATA_METHODS and dataset is None:
        raise typer.BadParameter(f"{method} scores with training data: pass --dataset", param_hint="--dataset")
    if dataset is not None:
        from ticketfmt.data import get_spec
        get_spec(dataset)
    check_output(output, force)
    ticket = Ticket.load(file, verify=not no_verify)
    other = Ticket.load(like, verify=not no_verify) if like is not None else None
    kwargs: dict[str, Any] = {}
    if method in DATA_METHODS:
        from ticketfmt.pruning.pai import data_batches
        assert dataset is not None
        kwargs = {"data": data_batches(dataset, batches, data_dir=data_dir, seed=seed), "batches": batches}
    result = prune_ticket(ticket, sparsity, method, like=other, seed=seed, **kwargs)
    if dataset is not None and method in DATA_METHODS:
        history = list(result.provenance.get("pruning", []))
        if history:
            history[-1] = {**history[-1], "dataset": dataset, "batches": batches, "batch_size": 128}
            result = result.replace(provenance={**result.provenance, "pruning": history})
    size = result.save(output, encoding=encoding)
    err.print(f"wrote {output}: {ticket.arch} {ticket.sparsity:.2%} -> {result.sparsity:.2%} sparse ({method})",
              soft_wrap=True)
    _wrote(output, result, size, encoding, as_json, {"method": method, "seed": seed,
                                                       "source_sparsity": ticket.sparsity})


def header_summary(path: Path) -> dict[str, Any]:
    """Everything `ticket info` shows, from the header alone (no torch, no payload)."""
    from ticketfmt.format.spec import read_header
    from ticketfmt.zoo import spec_from_json

    header = read_header(path)
    spec = spec_from_json(header.arch)
    layers = [{"name": n, "stage": spec.stage_of(n), "shape": list(l.shape), "kept": l.kept, "total": l.numel,
               "density": l.density} for n, l in header.layers.items()]
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
    }


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="A .ticket file.")],
    as_json: AsJson = False,
    plot: Annotated[Optional[Path], typer.Option(help="Also write a per-layer density bar chart (PNG).")] = None,
    layers: Annotated[bool, typer.Option("--layers/--no-layers", help="Show the per-layer table.")] = True,
) -> None:
    """Show a ticket: architecture, encoding, size, sparsity (overall, per stage, per layer), provenance, results.

    Reads only the header, so it is fast on any size of ticket.

    Example: ticket info r56.ticket --json
    """
    summary = header_summary(file)
    if plot is not None:
        from ticketfmt.cards.plot import density_plot
        density_plot({l["name"]: l["density"] for l in summary["layers"]}, plot,
                     title=f"{summary['arch']['id']}: {summary['sparsity']:.2%} sparse",
                     stages={l["name"]: l["stage"] for l in summary["layers"]})
    if as_json:
        print_json(summary)
        return
    arch = summary["arch"]
    out.print(f"[bold]{escape(str(file))}[/]  {arch['id']} ({arch.get('library', '?')}, {arch.get('num_classes')} classes)  "
              f"format {summary['format_version']} {summary['encoding']}  {summary['file_size'] / 1e6:.2f} MB  "
              f"sections: {', '.join(summary['sections'])}")
    out.print(f"sparsity [bold]{summary['sparsity']:.2%}[/] ({summary['kept']:,} of {summary['prunable']:,} "
              "prunable weights kept)")
    table = Table("stage", "kept", "total", "sparsity", title="per stage", title_justify="left")
    for name, s in summary["stages"].items():
        table.add_row(name, f"{s['kept']:,}", f"{s['total']:,}", f"{s['sparsity']:.2%}")
    print_table(table)
    if layers:
        lt = Table("layer", "shape", "kept", "density", title="per layer", title_justify="left")
        for l in summary["layers"]:
            lt.add_row(l["name"], "×".join(map(str, l["shape"])), f"{l['kept']:,}", f"{l['density']:.2%}")
        print_table(lt)
    if summary["provenance"]:
        pt = Table("provenance", "value", title_justify="left", show_header=False, box=None)
        cut = 100 if out.is_terminal else None  # long values are cut on a terminal only
        for key, value in sorted(summary["provenance"].items()):
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            pt.add_row(f"[bold]{key}[/]", text if cut is None or len(text) <= cut else text[:cut - 3] + "...")
        out.print("[bold]provenance[/] (all of it: `ticket info --json`)")
        print_table(pt)
    if summary["results"]:
        rt = Table("dataset", "metric", "value", "epochs", "date", title="results", title_justify="left")
        for r in summary["results"]:
            rt.add_row(str(r.get("dataset", "")), str(r.get("metric", "top1")), str(r.get("value", "")),
                       str(r.get("epochs", "")), str(r.get("date", "")))
        print_table(rt)
    else:
        out.print("results: none recorded (run `ticket verify`)")
    if plot is not None:
        err.print(f"wrote {plot}")


@app.command()
def models(as_json: AsJson = False) -> None:
    """List the model zoo (id, library, family, block type, units per stage, parameters).

    Piped, the table is tab-separated and nothing is cut.

    Example: ticket models | grep resnet50

    Example: ticket models --json
    """
    from ticketfmt.zoo import list_archs, state_dict_shapes

    rows = []
    for spec in list_archs():
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
        "vgg_bn-2-2-3-3-3, cifar_vgg-2-2-3-3-3; prefix timm/ or torchvision/.", soft_wrap=True)


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
