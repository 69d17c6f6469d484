"""Publishing a ticket: one commit of a temporary folder (``huggingface_hub``'s ``push_to_hub`` design).

Files of other libraries already in the repo are never replaced without ``force``: another
library's ``config.json`` (a timm repo the ticket is added to) or safetensors index is kept,
and a repo holding its own ``model.safetensors`` gets no index naming the ticket. Only
ticketfmt's own ``.eval_results/ticketfmt-*.yaml`` files are replaced (or removed when the
ticket no longer has that benchmark result).

This module never imports :mod:`ticketfmt.ticket` at run time: :meth:`Ticket.push_to_hub` reaches it
through :mod:`ticketfmt.hub.hooks`, and the ticket is only ever an argument here.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticketfmt.cards import EVAL_RESULTS_PREFIX, render_card_text
from ticketfmt.checks import refuse_empty_layers
from ticketfmt.errors import HubAuthError, UnverifiedTicketError
from ticketfmt.hub.config import (CONFIG_FILE, INDEX_FILE, WEIGHTS_FILE, is_ticketfmt_config, is_ticketfmt_index,
                                  read_json)
from ticketfmt.hub.origin import origin_of, without_origin
from ticketfmt.hub.repo import MAX_CONFIG_BYTES, README_FILE, hub_errors, resolve_token

if TYPE_CHECKING:
    from huggingface_hub import HfApi

    from ticketfmt.ticket import Ticket

__all__ = ["CARD_POLICIES", "PushResult", "push_ticket"]

CARD_POLICIES = ("keep", "overwrite")


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
    kept: tuple[str, ...] = ()  # files of other libraries left as they were (pass force=True to replace them)



def _git_blob_id(data: bytes) -> str:
    """The git object id of a file with this content (what the Hub reports as ``blobId``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _check_publishable(t: Ticket, name: str, allow_unverified: bool, allow_empty_layers: bool) -> None:
    if not allow_empty_layers:
        refuse_empty_layers(t.layer_density(), name,
                            fix="prune it again with --keep-dense or --min-density (`ticket prune`), or pass "
                                "--allow-empty-layers (allow_empty_layers=True) to publish it anyway")
    if not t.verified and not allow_unverified:
        raise UnverifiedTicketError(f"{name} has no recorded evaluation result, so it cannot be published as a "
                                    "verified ticket",
                                    fix="run `ticket verify FILE --in-place` first, or pass --allow-unverified "
                                        "(allow_unverified=True from Python; the card will say that no results are "
                                        "recorded)")


def _readme_state(folder: Path, remote_readme: Any, card: str) -> str:
    """What happens to ``README.md``; removes the rendered card from ``folder`` when the remote one is kept."""
    readme = folder / README_FILE
    if remote_readme is None:
        return "written"
    if remote_readme.blob_id and remote_readme.blob_id == _git_blob_id(readme.read_bytes()):
        return "unchanged"
    if card == "keep":
        readme.unlink()
        return "kept"
    return "overwritten"


def _remote_json(api: HfApi, repo_id: str, branch: str, sibling: Any) -> Any:
    """A small JSON file of the repo (None when it is too large or not JSON: it then counts as another's).

    Fetched as the ticket is (:func:`ticketfmt.hub.fetch.fetch_file`: checked, bounded, verified).
    """
    from ticketfmt.hub.fetch import fetch_file

    if sibling.size is not None and sibling.size > MAX_CONFIG_BYTES:
        return None

    class _TooLarge(Exception):
        pass

    try:
        return read_json(fetch_file(repo_id, sibling.rfilename, limit=MAX_CONFIG_BYTES, too_large=_TooLarge,
                                    revision=branch, token=api.token))
    except _TooLarge:  # larger than any config ticketfmt writes: not ours
        return None


def _foreign_files(api: HfApi, repo_id: str, branch: str, before: Any, folder: Path, force: bool
                   ) -> tuple[list[str], list[str]]:
    """Drop from ``folder`` what would replace another library's file; returns (kept, stale ticketfmt files)."""
    remote = {s.rfilename: s for s in (before.siblings or [])}
    kept: list[str] = []
    if CONFIG_FILE in remote and not force and not is_ticketfmt_config(
            _remote_json(api, repo_id, branch, remote[CONFIG_FILE])):
        (folder / CONFIG_FILE).unlink()
        kept.append(CONFIG_FILE)
    stale = [n for n in remote if n.startswith(EVAL_RESULTS_PREFIX) and not (folder / n).is_file()]
    ours = INDEX_FILE in remote and is_ticketfmt_index(_remote_json(api, repo_id, branch, remote[INDEX_FILE]))
    if WEIGHTS_FILE in remote:  # the repo's weights are that library's: the ticket does not claim the index
        (folder / INDEX_FILE).unlink(missing_ok=True)
        stale += [INDEX_FILE] if ours else []
    elif INDEX_FILE in remote and not force and not ours:
        (folder / INDEX_FILE).unlink()
        kept.append(INDEX_FILE)
    return kept, stale


def _prepare_repo(api: HfApi, repo_id: str, private: bool | None, branch: str) -> tuple[str, Any, Any]:
    """Create the repo (and branch) when missing; returns (repo id, repo url, the branch's info before)."""
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
    repo_id = repo_url.repo_id
    if branch != "main":
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    return repo_id, repo_url, api.repo_info(repo_id, revision=branch, files_metadata=True)


def _for_repo(t: Ticket, repo_id: str) -> Ticket:
    """The ticket as published to ``repo_id``: its Hub origin dropped when that is this very repo (pushed back)."""
    if origin_of(t.provenance) != repo_id:
        return t
    back = t.replace(provenance=without_origin(t.provenance))
    back.path, back.file_sha256, back.encoding = t.path, t.file_sha256, t.encoding  # the original bytes if equal
    return back


def push_ticket(t: Ticket, repo_id: str, *, name: str | None = None, private: bool | None = None,
                revision: str | None = None, create_pr: bool = False, allow_unverified: bool = False,
                card: str = "keep", token: str | None = None, commit_message: str | None = None,
                card_kwargs: dict[str, Any] | None = None, force: bool = False,
                allow_empty_layers: bool = False) -> PushResult:
    """Publish the ticket ``t`` to ``repo_id`` in one commit (see :func:`ticketfmt.hub.push` for the arguments).

    Example:
        >>> push_ticket(ticket, "user/cifar_resnet56-cifar10-ticket", private=True)  # doctest: +SKIP
    """
    from huggingface_hub import HfApi

    if card not in CARD_POLICIES:
        raise ValueError(f"card must be one of {', '.join(CARD_POLICIES)}, not {card!r}")
    _check_publishable(t, name or t.path or f"this {t.arch} ticket", allow_unverified, allow_empty_layers)
    tok = resolve_token(token)
    if tok is None:
        raise HubAuthError(f"pushing to {repo_id} needs a Hub token with write access", repo_id=repo_id,
                           fix="run `hf auth login`, set HF_TOKEN, or pass --token")
    branch = revision or "main"
    with hub_errors(repo_id=repo_id, revision=revision, action="push", token=tok):
        api = HfApi(token=tok)
        repo_id, repo_url, before = _prepare_repo(api, repo_id, private, branch)
        remote_readme = next((s for s in (before.siblings or []) if s.rfilename == README_FILE), None)
        kwargs = {"repo_id": repo_id, **(card_kwargs or {})}
        t = _for_repo(t, repo_id)
        with tempfile.TemporaryDirectory(prefix="ticket-push-") as tmp:
            folder = Path(tmp) / "repo"
            t.save_pretrained(folder, model_card_kwargs=kwargs)
            if not (folder / README_FILE).exists():  # save_pretrained wrote none (e.g. a subclass): render it
                (folder / README_FILE).write_text(render_card_text(t, **kwargs), encoding="utf-8")
            readme_state = _readme_state(folder, remote_readme, card)
            kept, stale = _foreign_files(api, repo_id, branch, before, folder, force)
            message = commit_message or f"Upload {t.arch} ticket ({t.sparsity:.2%} sparse) with ticketfmt"
            info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=branch, create_pr=create_pr,
                                     commit_message=message, delete_patterns=stale or None)
    changed = info.oid != before.sha or bool(info.pr_url)
    return PushResult(repo_id=repo_id, revision=info.pr_revision or branch, commit=info.oid,
                      commit_url=str(info.commit_url), changed=changed, readme=readme_state,
                      pr_url=info.pr_url, repo_url=str(repo_url), kept=tuple(kept))
