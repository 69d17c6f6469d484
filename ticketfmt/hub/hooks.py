"""What :class:`~ticketfmt.ticket.Ticket`'s Hub hooks call, as ``huggingface_hub.ModelHubMixin`` subclasses do.

``Ticket._save_pretrained``, ``_from_pretrained``, ``generate_model_card``, ``push_to_hub`` and ``verified``
import this module inside the method (the one upward import the layer contract allows, named in
``.importlinter``). Nothing is installed on the class from here, so the ticket behaves the same however it
was imported. This module, and everything it imports, never imports :mod:`ticketfmt.ticket` at run time:
the ticket (or its class) is always an argument, so the hooks make no import cycle.

Example:
    >>> from ticketfmt.ticket import Ticket
    >>> Ticket.load("r20.ticket").generate_model_card().data.library_name  # doctest: +SKIP
    'ticketfmt'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticketfmt.cards import render_card
from ticketfmt.hub.origin import record_origin
from ticketfmt.hub.publish import push_ticket
from ticketfmt.hub.repo import (check_config, commit_of, download_config, download_ticket, hub_errors, is_verified,
                                load_folder, load_ticket_file, save_folder)

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

    from ticketfmt.ticket import Ticket

__all__ = ["save_pretrained", "from_pretrained", "push", "model_card", "hub_errors", "is_verified"]


def save_pretrained(ticket: Ticket, directory: str | os.PathLike[str]) -> None:
    """``ticket.safetensors`` (the original bytes when unchanged), ``config.json`` and ``density.png``."""
    save_folder(ticket, directory)


def from_pretrained(cls: type[Ticket], *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                    force_download: bool, local_files_only: bool, token: str | bool | None,
                    verify: bool = True) -> Ticket:
    """A ticket of class ``cls`` from a ``save_pretrained`` folder or a Hub repo (the config is checked).

    A ticket from a repo records its origin in ``provenance["hub"]`` (:mod:`ticketfmt.hub.origin`).
    """
    if os.path.isdir(model_id):
        return load_folder(model_id, loader=cls.load, verify=verify)
    path = download_ticket(model_id, revision=revision, cache_dir=cache_dir, force_download=force_download,
                           local_files_only=local_files_only, token=token)
    ticket = load_ticket_file(path, f"repo {model_id}", loader=cls.load, verify=verify, repo_id=model_id,
                              revision=revision)
    config = download_config(model_id, revision=commit_of(path) or revision, cache_dir=cache_dir,
                             local_files_only=local_files_only, token=token)
    if verify:
        check_config(ticket, config, f"repo {model_id}", repo_id=model_id, revision=revision)
    ticket.hub_repo_id, ticket.hub_revision = model_id, commit_of(path)
    # Where it came from travels with it (pruned, re-verified or converted, the card names it as base_model).
    ticket.provenance = record_origin(ticket.provenance, model_id, commit_of(path) or revision, ticket.file_sha256)
    return ticket


def push(ticket: Ticket, repo_id: str, **kwargs: Any) -> str:
    """Publish ``ticket`` (see :func:`ticketfmt.hub.push`); returns the commit URL."""
    return str(push_ticket(ticket, repo_id, **kwargs).commit_url)


def model_card(ticket: Ticket, **kwargs: Any) -> ModelCard:
    """The ticket's model card (:func:`ticketfmt.cards.render_card`), with the file size when there is a file."""
    if "file_size" not in kwargs and ticket.path and os.path.isfile(ticket.path):
        kwargs["file_size"] = os.path.getsize(ticket.path)
    return render_card(ticket, **kwargs)
