"""Hub integration (push, pull, from_pretrained, cards): built on the core, the converters and the cards.

The one :class:`~ticketfmt.ticket.Ticket` class integrates with ``huggingface_hub.ModelHubMixin``:
its ``save_pretrained`` / ``from_pretrained`` live in the core (:mod:`ticketfmt.hub.repo`),
while the model card (:mod:`ticketfmt.cards`) and the push policy live here, above the core; importing
this module installs them on ``Ticket`` (``from ticketfmt import Ticket`` imports it).

- :func:`push`: one commit (``upload_folder`` of a temporary folder holding
  ``ticket.safetensors``, ``config.json``, ``density.png`` and ``README.md``); refuses a ticket
  without a recorded result unless ``allow_unverified``; never replaces a README already in the
  repo unless ``card="overwrite"``; an unchanged ticket uploads nothing and makes no commit.
- :func:`pull`: ``hf_hub_download`` of ``ticket.safetensors`` and ``config.json`` (cache,
  ``HF_HUB_OFFLINE=1``, pinned ``revision``), validated (a config that contradicts the ticket
  is an error), written with its Hub origin in ``provenance["hub"]`` (the payload byte for
  byte; ``verbatim=True``: the whole file byte for byte).
- :func:`card_text`: the card of a ticket file, rendered locally.

Failures of ``huggingface_hub`` become one-line :class:`~ticketfmt.errors.HubError` s with the
fix (:func:`~ticketfmt.hub.repo.hub_errors`); tokens are never printed or logged.

Example:
    >>> from ticketfmt.hub import push, pull
    >>> push("r56.ticket", "user/cifar_resnet56-cifar10-ticket")  # doctest: +SKIP
    PushResult(repo_id='user/cifar_resnet56-cifar10-ticket', ...)
    >>> pull("user/cifar_resnet56-cifar10-ticket", "r56.ticket", revision="main")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketfmt.cards import render_card_text
from ticketfmt.errors import OutputExistsError
from ticketfmt.hub.origin import record_origin, write_with_provenance
from ticketfmt.hub.publish import CARD_POLICIES, PushResult, push_ticket
from ticketfmt.hub.repo import (CONFIG_FILE, PLOT_FILE, README_FILE, TICKET_FILE, check_config, commit_of,
                                  download_config, download_ticket, hub_errors, load_ticket_file, map_hub_error,
                                  resolve_token, scrub)
from ticketfmt.ticket import Ticket

__all__ = ["push", "pull", "card_text", "PushResult", "PullResult", "CARD_POLICIES", "hub_errors",
           "map_hub_error", "scrub", "REPO_FILES"]

REPO_FILES = (TICKET_FILE, CONFIG_FILE, PLOT_FILE, README_FILE)


@dataclass(frozen=True)
class PullResult:
    """What :func:`pull` did."""

    repo_id: str
    path: Path
    commit: str | None
    ticket: Ticket
    size: int


def _load(ticket: Ticket | str | os.PathLike[str], verify: bool = True) -> Ticket:
    return ticket if isinstance(ticket, Ticket) else Ticket.load(ticket, verify=verify)


def push(ticket: Ticket | str | os.PathLike[str], repo_id: str, *, private: bool | None = None,
         revision: str | None = None, create_pr: bool = False, allow_unverified: bool = False, card: str = "keep",
         token: str | None = None, commit_message: str | None = None, license: str | None = None,  # noqa: A002
         base_model: str | None = None, card_kwargs: dict[str, Any] | None = None,
         verify: bool = True, force: bool = False, allow_empty_layers: bool = False) -> PushResult:
    """Publish a ticket (a :class:`Ticket` or a ``.ticket`` file) to ``repo_id`` in one commit.

    Args:
        private: create the repo private (an existing repo keeps its visibility).
        revision: the branch to push to (created from ``main`` if missing).
        create_pr: open a pull request instead of committing to the branch.
        allow_unverified: publish even though no evaluation result is recorded.
        card: ``keep`` (default: an existing ``README.md`` in the repo stays as it is) or
            ``overwrite`` (replace it with the rendered card).
        token: a Hub token (default: ``HF_TOKEN`` or the one of ``hf auth login``); never printed.
        license, base_model: for the card's front matter (``base_model`` defaults to the Hub repo the
            ticket, or its source, was downloaded from).
        verify: check the file's payload sha256 when loading it (``False``: ``--no-verify``).
        force: replace files of other libraries in the repo (a timm ``config.json``, a
            ``model.safetensors.index.json``); without it they are kept and :attr:`PushResult.kept`
            names them.
        allow_empty_layers: publish a ticket with a fully pruned layer (it cuts the network).

    Raises:
        UnverifiedTicketError: no result recorded and not ``allow_unverified``.
        MaskError: a layer keeps no weight and not ``allow_empty_layers``.
        HubAuthError, HubNotFoundError, HubOfflineError, HubError: one line with the fix.

    Example:
        >>> push("r56.ticket", "user/cifar_resnet56-cifar10-ticket", revision="v2", create_pr=True)  # doctest: +SKIP
    """
    if card not in CARD_POLICIES:
        raise ValueError(f"card must be one of {', '.join(CARD_POLICIES)}, not {card!r}")
    t = _load(ticket, verify)
    name = None if isinstance(ticket, Ticket) else str(ticket)
    kwargs = {"base_model": base_model, "license": license, **(card_kwargs or {})}
    return push_ticket(t, repo_id, name=name, private=private, revision=revision, create_pr=create_pr,
                       allow_unverified=allow_unverified, card=card, token=token, commit_message=commit_message,
                       card_kwargs=kwargs, force=force, allow_empty_layers=allow_empty_layers)


def pull(repo_id: str, output: str | os.PathLike[str], *, revision: str | None = None, force: bool = False,
         token: str | bool | None = None, cache_dir: str | os.PathLike[str] | None = None,
         force_download: bool = False, verify: bool = True, verbatim: bool = False) -> PullResult:
    """Download the ticket of ``repo_id`` (at ``revision``) to ``output``.

    Goes through ``hf_hub_download`` (the standard cache; ``HF_HUB_OFFLINE=1`` reads from it)
    and fetches ``ticket.safetensors`` and ``config.json`` only. The file is validated as a
    ticket (checksums included) and ``config.json`` must not contradict it (the ticket file is
    the source of truth; an inconsistent repo is an error) before ``output`` is written,
    atomically. ``verify=False`` skips the checksum and the config check.

    The output records where it came from in ``provenance["hub"]`` (repo id, commit, the
    published file's sha256), so what is made from it names the repo as its ``base_model``;
    only the header's provenance differs from the published file, the tensor payload is the
    same byte for byte. ``verbatim=True`` writes the published file itself, byte for byte.

    Example:
        >>> pull("user/cifar_resnet56-cifar10-ticket", "r56.ticket", revision="v1")  # doctest: +SKIP
    """
    from ticketfmt.format.atomic import atomic_write

    out = Path(output)
    if out.is_dir():
        raise OutputExistsError(f"{out} is a directory", fix="give a file name with -o")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} already exists", fix="pass --force to replace it, or choose another -o")
    path = download_ticket(repo_id, revision=revision, cache_dir=cache_dir, token=token,
                           force_download=force_download)
    where = f"repo {repo_id}" + (f"@{revision}" if revision else "")
    ticket = load_ticket_file(path, where, loader=Ticket.load, verify=verify, repo_id=repo_id, revision=revision)
    config = download_config(repo_id, revision=commit_of(path) or revision, cache_dir=cache_dir, token=token)
    if verify:
        check_config(ticket, config, where, repo_id=repo_id, revision=revision)

    def chunks() -> Any:
        with open(path, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")

    if verbatim:
        atomic_write(out, chunks())
    else:
        ticket.provenance = record_origin(ticket.provenance, repo_id, commit_of(path) or revision, ticket.file_sha256)
        write_with_provenance(path, out, ticket.provenance)
        from ticketfmt.format.tensors import sha256_file
        ticket.file_sha256 = sha256_file(out)
    ticket.path = str(out)
    ticket.hub_repo_id, ticket.hub_revision = repo_id, commit_of(path)
    return PullResult(repo_id=repo_id, path=out, commit=commit_of(path), ticket=ticket, size=out.stat().st_size)


def card_text(ticket: Ticket | str | os.PathLike[str], *, repo_id: str | None = None, base_model: str | None = None,
              license: str | None = None, plot_path: str | None = PLOT_FILE,  # noqa: A002
              verify: bool = True) -> str:
    """The model card (``README.md`` text) of a ticket or a ticket file (``verify``: check its checksum).

    Example:
        >>> print(card_text("r56.ticket", repo_id="user/r56-ticket"))  # doctest: +SKIP
    """
    t = _load(ticket, verify)
    size = os.path.getsize(t.path) if t.path and os.path.isfile(t.path) else None
    return render_card_text(t, repo_id=repo_id, base_model=base_model, license=license, plot_path=plot_path,
                            file_size=size)
