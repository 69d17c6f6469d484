"""`ticket export`: a ticket's masked weights as a state dict for timm, torchvision or torch.nn.utils.prune."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ticketfmt.cli._options import AsJson, Force, NoVerify
from ticketfmt.cli.app import app, check_output, err, print_json

TARGET_HELP = ("timm or torchvision: the plain state dict that the library's model loads with strict=True; "
               "torch-prune: torch.nn.utils.prune's form (weight_orig + weight_mask) for continued masked training.")


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="The ticket to export.")],
    to: Annotated[str, typer.Option("--to", help=TARGET_HELP)],
    output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False,
                                         help="Where to write the state dict (safetensors), e.g. model.safetensors.")],
    weights: Annotated[str, typer.Option("--weights", help="init (the rewind point the ticket trains from) or "
                                                           "trained.")] = "init",
    force: Force = False,
    no_verify: NoVerify = False,
    as_json: AsJson = False,
) -> None:
    """Export a ticket's masked weights (pruned weights are zeros) as a safetensors state dict for another library.

    A timm ticket exports to torchvision and back (ResNets and VGGs); the CIFAR models export to torch-prune.

    Example: ticket export r50.ticket --to timm -o model.safetensors

    Example: ticket export r50.ticket --to torch-prune --weights trained -o pruned.safetensors
    """
    from ticketfmt.interop.export import TARGETS, export_state_dict, save_export
    from ticketfmt.ticket import Ticket

    if to not in TARGETS:
        raise typer.BadParameter(f"{to!r} is not one of {', '.join(TARGETS)}", param_hint="--to")
    if weights not in ("init", "trained"):
        raise typer.BadParameter(f"{weights!r} is not init or trained", param_hint="--weights")
    check_output(output, force)
    ticket = Ticket.load(file, verify=not no_verify)
    exported = export_state_dict(ticket, to, weights=weights)
    size = save_export(exported, output, source=ticket)
    err.print(f"wrote {output} ({exported.spec.id}, {to}, {weights} weights, {ticket.sparsity:.2%} sparse, "
              f"{size / 1e6:.2f} MB)", soft_wrap=True)
    prepare = "ticketfmt.interop.prepare_torch_prune(model, state); " if to == "torch-prune" else ""
    err.print(f"load it: model = {exported.code}; state = safetensors.torch.load_file({str(output)!r}); {prepare}"
              "model.load_state_dict(state, strict=True)", soft_wrap=True, markup=False)
    if as_json:
        print_json({"file": str(output), "target": to, "arch": exported.spec.id, "num_classes": exported.spec.num_classes,
                    "weights": weights, "size": size, "sparsity": ticket.sparsity, "load": exported.code})
