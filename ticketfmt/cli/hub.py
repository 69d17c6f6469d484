"""`ticket push`, `ticket pull`, `ticket card` and `ticket import open-lth`: sharing tickets.

A thin layer over :mod:`ticketfmt.hub` and :mod:`ticketfmt.interop`, imported inside the
commands so `ticket info` stays fast. Hub failures arrive as one-line ``HubError`` s (exit 2);
tokens are never printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from ticketfmt.cli.app import NoVerify, app, check_output, err, out, warn
from ticketfmt.errors import OutputExistsError

import_app = typer.Typer(name="import", help="Turn other tools' runs into tickets (open_lth / ElasticLTH).",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")

Token = Annotated[Optional[str], typer.Option("--token", help="Hub token (default: HF_TOKEN or `hf auth login`; "
                                                             "prefer those: a token on the command line is visible "
                                                             "to other users). Never printed.",
                                              show_default=False)]
Revision = Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit (default: main).")]


@contextmanager
def _hub_progress() -> Iterator[None]:
    """huggingface_hub's progress bars on a terminal only (they would clutter logs)."""
    from huggingface_hub.utils import (are_progress_bars_disabled, disable_progress_bars, enable_progress_bars,
                                       logging)

    was_disabled = are_progress_bars_disabled()
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # our own lines say what happened (e.g. "up to date")
    if not err.is_terminal:
        disable_progress_bars()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if not was_disabled:
            enable_progress_bars()


@app.command()
def push(
    file: Annotated[Path, typer.Argument(help="The .ticket file to publish.", dir_okay=False)],
    repo: Annotated[str, typer.Argument(help="The Hub repo, USER/NAME or ORG/NAME (created if missing).")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to push to (created from main if "
                                                                       "missing; default main).")] = None,
    create_pr: Annotated[bool, typer.Option("--create-pr", help="Open a pull request instead of committing.")] = False,
    allow_unverified: Annotated[bool, typer.Option("--allow-unverified", help="Publish a ticket that has no "
                                                                              "recorded result.")] = False,
    card: Annotated[str, typer.Option("--card", help="keep: leave a README.md already in the repo as it is; "
                                                     "overwrite: replace it with the rendered card.")] = "keep",
    license: Annotated[Optional[str], typer.Option("--license", help="License in the card (default apache-2.0).")
                       ] = None,  # noqa: A002
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Hub repo of the ticket this one was "
                                                                           "converted from (for the card).")] = None,
    message: Annotated[Optional[str], typer.Option("-m", "--message", help="Commit message.")] = None,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Replace files of other libraries in the repo "
                                                                   "(a timm config.json).")] = False,
    allow_empty_layers: Annotated[bool, typer.Option("--allow-empty-layers", metavar="",
                                                     help="Publish a ticket with a fully pruned layer.")] = False,
    token: Token = None,
) -> None:
    """Publish a ticket on the Hugging Face Hub, in one commit.

    The repo gets ticket.safetensors (the file, byte for byte), config.json (timm's layout: timm.create_model('hf-hub:REPO') builds the architecture with its preprocessing), model.safetensors.index.json (the Hub's safetensors index, naming the ticket), density.png, the benchmark results in .eval_results/, and README.md (the model card; one already in the repo is kept unless --card overwrite). Files of other libraries already in the repo (a timm config.json) are kept unless --force. The ticket must have a recorded result (`ticket verify`) unless --allow-unverified, and no fully pruned layer unless --allow-empty-layers. An unchanged ticket uploads nothing.

    \b
    Examples:
      ticket push r56.ticket user/cifar_resnet56-cifar10-ticket
      ticket push r56.ticket user/r56-ticket --private --revision v2
      ticket push r56.ticket someorg/r56-ticket --create-pr --card overwrite
      ticket push init.ticket user/r56-init --allow-unverified
      ticket push r50.ticket user/my-timm-resnet50      # beside timm's files: its config.json is kept
    """
    from ticketfmt.hub import CARD_POLICIES, push as push_ticket

    if card not in CARD_POLICIES:
        raise typer.BadParameter(f"{card!r} is not one of {', '.join(CARD_POLICIES)}", param_hint="--card")
    with _hub_progress():
        result = push_ticket(file, repo, private=private or None, revision=revision, create_pr=create_pr,
                             allow_unverified=allow_unverified, card=card, token=token, commit_message=message,
                             license=license, base_model=base_model, verify=True, force=force,
                             allow_empty_layers=allow_empty_layers)
    if not result.changed:
        err.print(f"{result.repo_id}@{result.revision} is up to date: nothing uploaded", soft_wrap=True)
    elif result.pr_url:
        err.print(f"opened {result.pr_url} on {result.repo_id}", soft_wrap=True)
    else:
        err.print(f"pushed {file} to {result.repo_id}@{result.revision} (commit {result.commit[:10]})", soft_wrap=True)
    if result.readme == "kept":
        warn("README.md is already in the repo and was kept (pass --card overwrite to replace it with the new card)")
    for name in result.kept:
        warn(f"{name} in the repo belongs to another library (not ticketfmt) and was kept; the ticket is in "
             "ticket.safetensors beside it (pass --force to replace it)")
    out.print(result.pr_url or result.commit_url, soft_wrap=True)


@app.command()
def pull(
    repo: Annotated[str, typer.Argument(help="The Hub repo, USER/NAME.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the ticket.", dir_okay=False)],
    revision: Revision = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the output if it exists.")] = False,
    force_download: Annotated[bool, typer.Option("--force-download", help="Download again even if cached.")
                              ] = False,
    token: Token = None,
    no_verify: NoVerify = False,
    verbatim: Annotated[bool, typer.Option("--verbatim", metavar="", help="Write the published file byte for "
                                                                         "byte, without recording where it came "
                                                                         "from.")] = False,
) -> None:
    """Download a ticket from the Hugging Face Hub.

    Fetches ticket.safetensors and config.json only, through the standard Hugging Face cache (HF_HUB_OFFLINE=1 reads from it), and checks them before writing the output: the ticket's checksum, and that config.json does not contradict the ticket (the ticket file is the source of truth; an inconsistent repo is an error). --no-verify skips both checks. The output records the repo and commit in its provenance ("hub"), so tickets made from it name the repo as their base model; its tensors are the published ones byte for byte (--verbatim: the whole file).

    \b
    Examples:
      ticket pull user/cifar_resnet56-cifar10-ticket -o r56.ticket
      ticket pull user/r56-ticket -o r56-v1.ticket --revision v1
      HF_HUB_OFFLINE=1 ticket pull user/r56-ticket -o r56.ticket --force
    """
    from ticketfmt.hub import pull as pull_ticket

    check_output(output, force)
    with _hub_progress():
        result = pull_ticket(repo, output, revision=revision, force=force, token=token, force_download=force_download,
                             verify=not no_verify, verbatim=verbatim)
    t = result.ticket
    at = f"@{result.commit[:10]}" if result.commit else ""
    err.print(f"wrote {result.path} ({t.arch}, {t.sparsity:.2%} sparse, {result.size / 1e6:.2f} MB) from "
              f"{result.repo_id}{at}", soft_wrap=True)
    if not t.verified:
        warn("this ticket has no recorded result: its accuracy is unknown (`ticket verify` measures it)")


@app.command()
def card(
    file: Annotated[Path, typer.Argument(help="A .ticket file.", dir_okay=False)],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Where to write the card (default: "
                                                                          "stdout).", dir_okay=False)] = None,
    repo_id: Annotated[Optional[str], typer.Option("--repo-id", help="The repo the card is for (used in the "
                                                                     "loading examples).")] = None,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Hub repo of the source ticket.")] = None,
    license: Annotated[Optional[str], typer.Option("--license", help="License (default apache-2.0).")
                       ] = None,  # noqa: A002
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Also write density.png beside the card "
                                                                "(with -o).")] = True,
    force: Annotated[bool, typer.Option("--force", help="Replace the output if it exists.")] = False,
    no_verify: NoVerify = False,
) -> None:
    """Render the model card a push would write (README.md), locally.

    \b
    Examples:
      ticket card r56.ticket -o README.md --repo-id user/r56-ticket
      ticket card r56.ticket | less
    """
    from ticketfmt.format.atomic import atomic_write
    from ticketfmt.hub import card_text
    from ticketfmt.hub.repo import PLOT_FILE
    from ticketfmt.ticket import Ticket

    png = output.parent / PLOT_FILE if output is not None and plot else None
    if png is not None and png.absolute() == output.absolute():  # type: ignore[union-attr]
        raise OutputExistsError(f"the card {output} would be its own plot", fix="name the card README.md or pass "
                                "--no-plot")
    for path in (output, png):  # every output is checked before any is written
        if path is not None:
            check_output(path, force)
    ticket = Ticket.load(file, verify=not no_verify)
    text = card_text(ticket, repo_id=repo_id, base_model=base_model, license=license)
    if output is None:
        typer.echo(text, nl=False)  # verbatim: no rich markup or emoji codes
        return
    atomic_write(output, [text.encode("utf-8")])
    wrote = [str(output)]
    if png is not None:
        from ticketfmt.cards.plot import density_plot
        density_plot(ticket.layer_density(), png, ticket.spec)
        wrote.append(str(png))
    err.print(f"wrote {', '.join(wrote)}", soft_wrap=True)


@import_app.command("open-lth")
def import_open_lth(
    run_dir: Annotated[Path, typer.Argument(help="The open_lth run: a lottery_<hash> folder, one of its replicate_N "
                                                 "folders, or an ElasticLTH branch folder "
                                                 "(level_L/lottery_branch_change_depth_<hash>).", file_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the ticket.", dir_okay=False)],
    level: Annotated[Optional[int], typer.Option("--level", help="The pruning level to import (a branch folder's "
                                                                 "is its parent's).", min=0)] = None,
    replicate: Annotated[int, typer.Option("--replicate", help="Which replicate_N of a lottery_<hash> folder.",
                                           min=1)] = 1,
    arch: Annotated[Optional[str], typer.Option("--arch", help="Architecture id (default: from hparams.log, e.g. "
                                                               "cifar_resnet_20 -> cifar_resnet20, imagenet_resnet_50 "
                                                               "-> torchvision/resnet50; a branch's from its "
                                                               "checkpoint's keys).")] = None,
    rewind_checkpoint: Annotated[Optional[str], typer.Option("--rewind-checkpoint", help="Checkpoint to take the "
                                                             "weights from (default: the earliest of level_0/main, "
                                                             "model_ep0_it0.pth or the rewind step; a branch's "
                                                             "own).")] = None,
    with_trained: Annotated[bool, typer.Option("--with-trained", help="Also import the level's trained "
                                                                      "weights.")] = False,
    encoding: Annotated[str, typer.Option("--encoding", help="packed (default) or dense.")] = "packed",
    force: Annotated[bool, typer.Option("--force", help="Replace the output if it exists.")] = False,
) -> None:
    """Turn a level of an open_lth / ElasticLTH lottery run into a ticket.

    Reads the level's mask.pth, the checkpoint at the training start step (level_0/main/model_ep0_it0.pth, or the rewind step) and hparams.log, all with torch.load(weights_only=True): nothing pickled is executed. The run's hyperparameters become the ticket's recipe, so `ticket verify` retrains it as the run did.

    \b
    Examples:
      ticket import open-lth open_lth_data/lottery_93bc65d6 --level 8 -o r20-l8.ticket
      ticket import open-lth lottery_93bc65d6 --replicate 2 --level 8 -o r20-l8-rep2.ticket
      ticket import open-lth lottery_93bc65d6/replicate_1/level_5/lottery_branch_change_depth_1f0e... -o r32.ticket
    """
    from ticketfmt.interop import import_open_lth as do_import
    from ticketfmt.format.spec import ENCODINGS

    if encoding not in ENCODINGS:
        raise typer.BadParameter(f"{encoding!r} is not one of {', '.join(ENCODINGS)}", param_hint="--encoding")
    check_output(output, force)
    ticket, notes = do_import(run_dir, level, arch, replicate=replicate, rewind_checkpoint=rewind_checkpoint,
                              with_trained=with_trained)
    for note in notes:
        warn(note)
    size = ticket.save(output, encoding=encoding)
    prov = ticket.provenance
    recipe = prov.get("recipe")
    trained = f", {recipe['epochs']} epochs at lr {recipe['lr']:g}" if isinstance(recipe, dict) else ""
    err.print(f"wrote {output} ({ticket.arch}, level {prov.get('level', '?')}, {ticket.sparsity:.2%} sparse, rewind "
              f"{prov.get('rewind', '?')}{trained}, seed {prov.get('seed', '?')}, {size / 1e6:.2f} MB)", soft_wrap=True)
