"""Hub integration (push, pull, from_pretrained, cards): built on the core, the converters and the cards.

The one :class:`~ticketfmt.ticket.Ticket` class integrates with ``huggingface_hub.ModelHubMixin``:
its ``save_pretrained`` / ``from_pretrained`` live in the core (:mod:`ticketfmt.pretrained`),
while the model card (:mod:`cards`) and the push policy live here, above the core; importing
this module installs them on ``Ticket`` (``from ticketfmt import Ticket`` imports it).

- :func:`push`: one commit (``upload_folder`` of a temporary folder holding
  ``ticket.safetensors``, ``config.json``, ``density.png`` and ``README.md``); refuses a ticket
  without a recorded result unless ``allow_unverified``; never replaces a README already in the
  repo unless ``card="overwrite"``; an unchanged ticket uploads nothing and makes no commit.
- :func:`pull`: ``hf_hub_download`` of ``ticket.safetensors`` and ``config.json`` (cache,
  ``HF_HUB_OFFLINE=1``, pinned ``revision``), validated (a config that contradicts the ticket
  is an error), copied byte for byte.
- :func:`card_text`: the card of a ticket file, rendered locally.

Failures of ``huggingface_hub`` become one-line :class:`~ticketfmt.errors.HubError` s with the
fix (:func:`~ticketfmt.pretrained.hub_errors`); tokens are never printed or logged.

Example:
    >>> from ticketfmt.hub import push, pull
    >>> push("r56.ticket", "user/cifar_resnet56-cifar10-ticket")  # doctest: +SKIP
    PushResult(repo_id='user/cifar_resnet56-cifar10-ticket', ...)
    >>> pull("user/cifar_resnet56-cifar10-ticket", "r56.ticket", revision="main")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cards import render_card, render_card_text
from ticketfmt.errors import HubAuthError, OutputExistsError, UnverifiedTicketError
from ticketfmt.pretrained import (CONFIG_FILE, PLOT_FILE, README_FILE, TICKET_FILE, check_config, commit_of,
                                  download_config, download_ticket, hub_errors, load_ticket_file, map_hub_error,
                                  resolve_token, scrub)
from ticketfmt.ticket import Ticket

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

__all__ = ["push", "pull", "card_text", "PushResult", "PullResult", "Ticket", "CARD_POLICIES", "hub_errors",
           "map_hub_error", "scrub", "REPO_FILES"]

CARD_POLICIES = ("keep", "overwrite")
REPO_FILES = (TICKET_FILE, CONFIG_FILE, PLOT_FILE, README_FILE)


@dataclass(frozen=True)
class PushResult:
    """What :func:`push` did."""

    repo_id: str
    revision: str  # the branch pushed to ("main" unless --revision), or the PR's ref
    commit: str  # the commit the repo is at now (the new one, or the old head when nothing changed)
    commit_url: str
    changed: bool  # False: every file was already there, nothing was uploaded and no commit was made
    readme: str  # "written", "overwritten", "unchanged" (the same card was there) or "kept" (another README)
    pr_url: str | None = None
    repo_url: str = ""


@dataclass(frozen=True)
class PullResult:
    """What :func:`pull` did."""

    repo_id: str
    path: Path
    commit: str | None
    ticket: Ticket
    size: int


def _git_blob_id(data: bytes) -> str:
    """The git object id of a file with this content (what the Hub reports as ``blobId``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _load(ticket: Ticket | str | os.PathLike[str], verify: bool = True) -> Ticket:
    return ticket if isinstance(ticket, Ticket) else Ticket.load(ticket, verify=verify)


def push(ticket: Ticket | str | os.PathLike[str], repo_id: str, *, private: bool | None = None,
         revision: str | None = None, create_pr: bool = False, allow_unverified: bool = False, card: str = "keep",
         token: str | None = None, commit_message: str | None = None, license: str | None = None,  # noqa: A002
         base_model: str | None = None, card_kwargs: dict[str, Any] | None = None,
         verify: bool = True) -> PushResult:
    """Publish a ticket (a :class:`Ticket` or a ``.ticket`` file) to ``repo_id`` in one commit.

    Args:
        private: create the repo private (an existing repo keeps its visibility).
        revision: the branch to push to (created from ``main`` if missing).
        create_pr: open a pull request instead of committing to the branch.
        allow_unverified: publish even though no evaluation result is recorded.
        card: ``keep`` (default: an existing ``README.md`` in the repo stays as it is) or
            ``overwrite`` (replace it with the rendered card).
        token: a Hub token (default: ``HF_TOKEN`` or the one of ``hf auth login``); never printed.
        license, base_model: for the card's front matter.
        verify: check the file's payload sha256 when loading it (``False``: ``--no-verify``).

    Raises:
        UnverifiedTicketError: no result recorded and not ``allow_unverified``.
        HubAuthError, HubNotFoundError, HubOfflineError, HubError: one line with the fix.

    Example:
        >>> push("r56.ticket", "user/cifar_resnet56-cifar10-ticket", revision="v2", create_pr=True)  # doctest: +SKIP
    """
    from huggingface_hub import HfApi

    if card not in CARD_POLICIES:
        raise ValueError(f"card must be one of {', '.join(CARD_POLICIES)}, not {card!r}")
    source = ticket if isinstance(ticket, Ticket) else str(ticket)
    t = _load(ticket, verify)
    name = t.path or f"this {t.arch} ticket" if isinstance(source, Ticket) else source
    if not t.verified and not allow_unverified:
        raise UnverifiedTicketError(f"{name} has no recorded evaluation result, so it cannot be published as a "
                                    "verified ticket",
                                    fix="run `ticket verify FILE --in-place` first, or pass --allow-unverified (the "
                                        "card will say that no results are recorded)")
    tok = resolve_token(token)
    if tok is None:
        raise HubAuthError(f"pushing to {repo_id} needs a Hub token with write access", repo_id=repo_id,
                           fix="run `hf auth login`, set HF_TOKEN, or pass --token")
    with hub_errors(repo_id=repo_id, revision=revision, action="push", token=tok):
        api = HfApi(token=tok)
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        repo_id = repo_url.repo_id
        branch = revision or "main"
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        before = api.repo_info(repo_id, revision=branch, files_metadata=True)
        remote_readme = next((s for s in (before.siblings or []) if s.rfilename == README_FILE), None)
        kwargs = {"repo_id": repo_id, "base_model": base_model, "license": license, **(card_kwargs or {})}
        with tempfile.TemporaryDirectory(prefix="ticket-push-") as tmp:
            folder = Path(tmp) / "repo"
            t.save_pretrained(folder, model_card_kwargs=kwargs)
            readme = folder / README_FILE
            if not readme.exists():  # save_pretrained wrote none (e.g. a subclass): render it here
                readme.write_text(render_card_text(t, **kwargs), encoding="utf-8")
            if remote_readme is None:
                readme_state = "written"
            elif remote_readme.blob_id and remote_readme.blob_id == _git_blob_id(readme.read_bytes()):
                readme_state = "unchanged"
            elif card == "keep":
                readme_state = "kept"
                readme.unlink()
            else:
                readme_state = "overwritten"
            message = commit_message or f"Upload {t.arch} ticket ({t.sparsity:.2%} sparse) with ticketfmt"
            info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=branch, create_pr=create_pr,
                                     commit_message=message)
    changed = info.oid != before.sha or bool(info.pr_url)
    return PushResult(repo_id=repo_id, revision=info.pr_revision or branch, commit=info.oid,
                      commit_url=str(info.commit_url), changed=changed, readme=readme_state,
                      pr_url=info.pr_url, repo_url=str(repo_url))


def pull(repo_id: str, output: str | os.PathLike[str], *, revision: str | None = None, force: bool = False,
         token: str | bool | None = None, cache_dir: str | os.PathLike[str] | None = None,
         force_download: bool = False, verify: bool = True) -> PullResult:
    """Download the ticket of ``repo_id`` (at ``revision``) to ``output``, byte for byte.

    Goes through ``hf_hub_download`` (the standard cache; ``HF_HUB_OFFLINE=1`` reads from it)
    and fetches ``ticket.safetensors`` and ``config.json`` only. The file is validated as a
    ticket (checksums included) and ``config.json`` must not contradict it (the ticket file is
    the source of truth; an inconsistent repo is an error) before ``output`` is written,
    atomically. ``verify=False`` skips the checksum and the config check.

    Example:
        >>> pull("user/cifar_resnet56-cifar10-ticket", "r56.ticket", revision="v1")  # doctest: +SKIP
    """
    from ticketfmt.atomic import atomic_write

    out = Path(output)
    if out.is_dir():
        raise OutputExistsError(f"{out} is a directory", fix="give a file name with -o")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} already exists", fix="pass --force to replace it, or choose another -o")
    path = download_ticket(repo_id, revision=revision, cache_dir=cache_dir, token=token,
                           force_download=force_download)
    where = f"repo {repo_id}" + (f"@{revision}" if revision else "")
    ticket = load_ticket_file(path, where, verify=verify, repo_id=repo_id, revision=revision)
    config = download_config(repo_id, revision=commit_of(path) or revision, cache_dir=cache_dir, token=token)
    if verify:
        check_config(ticket, config, where, repo_id=repo_id, revision=revision)

    def chunks() -> Any:
        with open(path, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")

    atomic_write(out, chunks())
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


def _render(ticket: Ticket, **kwargs: Any) -> ModelCard:
    """The renderer installed on ``Ticket`` (``generate_model_card``): the ticket card."""
    if "file_size" not in kwargs and ticket.path and os.path.isfile(ticket.path):
        kwargs["file_size"] = os.path.getsize(ticket.path)
    return render_card(ticket, **kwargs)


Ticket.install_hub_integration(render_card=_render, push=push)
