"""The core side of Hub sharing: a ticket as a model repo folder, and Hub errors as one-line messages.

:class:`~ticketfmt.ticket.Ticket` integrates with ``huggingface_hub.ModelHubMixin``; its
``_save_pretrained`` / ``_from_pretrained`` hooks reach this module through :mod:`ticketfmt.hub.hooks`.
It never imports :mod:`ticketfmt.ticket` at run time (the ticket class is passed in), so the hooks make
no import cycle.

A ticket repo (or a folder written by ``save_pretrained``) holds:

- ``ticket.safetensors``: the ticket file itself, byte for byte when the ticket came from a
  file and is unchanged (the Hub's safetensors viewer reads it);
- ``config.json``: in timm's layout (``architecture``, ``num_classes``, ``pretrained_cfg`` with
  the preprocessing), so ``timm.create_model("hf-hub:...")`` reads it, plus the ticket's key
  metadata under ``"ticketfmt"`` (:mod:`ticketfmt.hub.config`);
- ``model.safetensors.index.json``: the Hub's safetensors index, naming the ticket file (so the
  Hub's safetensors metadata API reads it), unless the repo holds another library's weights;
- ``density.png``: the fraction of weights kept per layer;
- ``.eval_results/ticketfmt-*.yaml``: the benchmark results of the card's model-index in the
  Hub's eval results format;
- ``README.md``: the model card (rendered by :mod:`ticketfmt.cards`).

Only ``ticket.safetensors`` and ``config.json`` are ever downloaded, through
``hf_hub_download``: the standard cache, ``HF_HUB_OFFLINE=1`` and pinned revisions work as
everywhere on the Hub. Nothing is ever unpickled. The repo's file listing is only read to
explain a missing ticket, never to choose what to download, so hostile file names
(``../x``, ``/etc/x``) cannot make anything be written outside the cache.

The ticket file is the source of truth. A ticketfmt ``config.json`` (one with a
``"ticketfmt"`` object) that states something else (architecture, number of classes, the
ticket's arch id or sha256) makes the repo inconsistent, and loading it is an error
(:class:`~ticketfmt.errors.NotATicketRepoError`); a missing or unreadable ``config.json``, or
another library's (a timm repo the ticket was pushed into), states nothing about the ticket
and is ignored. ``verify=False``
skips both this check and the payload checksum. A ``ticket.safetensors`` larger than
:data:`MAX_TICKET_BYTES` is refused before it is downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticketfmt.errors import (HubAuthError, HubError, HubNotFoundError, HubOfflineError, NotATicketRepoError,
                              TicketError, TicketFormatError)
from ticketfmt.hub.config import CONFIG_FILE, INDEX_FILE, is_ticketfmt_config, timm_architecture
from ticketfmt.hub.fetch import fetch_file, is_transport_error
from ticketfmt.metadata import ANALYSIS_SOURCES

if TYPE_CHECKING:
    from ticketfmt.ticket import Ticket

__all__ = ["TICKET_FILE", "CONFIG_FILE", "INDEX_FILE", "PLOT_FILE", "README_FILE", "PICKLE_SUFFIXES", "config_dict",
           "save_folder", "load_folder", "download_ticket", "download_config", "hub_errors", "map_hub_error", "scrub", "resolve_token",
           "is_verified", "check_config", "MAX_TICKET_BYTES"]

TICKET_FILE = "ticket.safetensors"
PLOT_FILE = "density.png"
README_FILE = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
"""Weight files that are pickles (or may be): a repo holding only these is refused, never loaded."""
MAX_TICKET_BYTES = 16 << 30
"""The largest ``ticket.safetensors`` downloaded (16 GiB; ``TICKETFMT_MAX_TICKET_BYTES`` overrides it).

A dense VGG-19 with init and trained weights is about 1.2 GB; anything much larger is not a
ticket of the zoo, and is refused before a byte of it is fetched."""
MAX_CONFIG_BYTES = 10_000_000
"""A larger ``config.json`` is neither downloaded nor read (it states nothing)."""


# -- verification ----------------------------------------------------------------------------------
def is_evaluation(result: Any) -> bool:
    """Whether one ``results`` entry is an evaluation (a ``value``, not an analysis such as an error barrier)."""
    return isinstance(result, dict) and result.get("value") is not None and result.get("source") not in ANALYSIS_SOURCES


def is_verified(results: Any) -> bool:
    """Whether a ticket's ``results`` record at least one evaluation (:func:`is_evaluation`)."""
    return isinstance(results, list) and any(is_evaluation(r) for r in results)


# -- the repo folder ----------------------------------------------------------------------------------
def config_dict(ticket: Ticket, file_sha256: str | None = None) -> dict[str, Any]:
    """``config.json``: timm's ``architecture`` / ``num_classes`` / ``pretrained_cfg`` and the ticket's metadata.

    Keys and layout are timm's own (so ``timm.create_model("hf-hub:...")`` reads it); everything
    ticketfmt-specific lives under ``"ticketfmt"`` (:func:`ticketfmt.hub.config.config_dict`).
    """
    from ticketfmt.hub.config import config_dict as build

    return build(ticket, file_sha256, TICKET_FILE)


def _comparable(path: str) -> tuple[Any, ...]:
    """What makes two ticket files equivalent: metadata (but the writer) and the tensor table."""
    from ticketfmt.format.spec import JSON_METADATA, read_header

    header = read_header(path)
    meta = {k: (json.loads(v) if k in JSON_METADATA else v) for k, v in header.metadata.items() if k != "created_by"}
    table = sorted((t.name, t.dtype, t.shape, t.end - t.start) for t in header.tensors.values())
    return json.dumps(meta, sort_keys=True), table


def write_ticket_file(ticket: Ticket, target: Path) -> str:
    """Write ``ticket`` to ``target`` (the original file's bytes when equivalent); returns its sha256.

    A ticket loaded from a file and not modified since is written as that file, byte for
    byte, so a pushed ticket is exactly the file the user has. Otherwise it is saved afresh
    (in the encoding it was read with, ``packed`` for new tickets).
    """
    from ticketfmt.format.tensors import sha256_file

    ticket.save(target, encoding=ticket.encoding or "packed")
    source = ticket.path
    if source and ticket.file_sha256 and os.path.isfile(source):
        try:
            same = sha256_file(source) == ticket.file_sha256 and _comparable(source) == _comparable(str(target))
        except (OSError, TicketError, ValueError):
            same = False
        if same:
            tmp = target.with_name(f".{target.name}.orig")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
            return ticket.file_sha256
    return sha256_file(target)


def save_folder(ticket: Ticket, folder: str | os.PathLike[str]) -> None:
    """Write ``ticket.safetensors``, ``config.json`` and ``density.png`` into ``folder`` (not the card)."""
    from ticketfmt.cards.plot import density_plot

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sha = write_ticket_file(ticket, folder / TICKET_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(config_dict(ticket, sha), indent=2, sort_keys=True) + "\n",
                                      encoding="utf-8")
    _write_extras(ticket, folder)
    density_plot(ticket.layer_density(), folder / PLOT_FILE, ticket.spec)


def _write_extras(ticket: Ticket, folder: Path) -> None:
    """The Hub's safetensors index (naming the ticket file) and the ``.eval_results/`` files of the card."""
    from ticketfmt.cards import eval_result_files
    from ticketfmt.format.spec import read_header
    from ticketfmt.hub.config import index_dict

    path = folder / TICKET_FILE
    index = index_dict(TICKET_FILE, read_header(path).tensors, path.stat().st_size)
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    for name, text in eval_result_files(ticket).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _pickles(names: list[str]) -> list[str]:
    return [n for n in names if n.lower().endswith(PICKLE_SUFFIXES)]


def _printable(name: str) -> str:
    """A repo file name as it may be shown: control characters (terminal escapes, newlines) escaped."""
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def _not_a_ticket(where: str, names: list[str], *, repo_id: str | None = None,
                  revision: str | None = None) -> NotATicketRepoError:
    """The error for a repo or folder without ``ticket.safetensors``, saying what it holds instead."""
    names = [_printable(str(n)) for n in names]  # a hostile listing must not reach the terminal raw
    pickles = _pickles(names)
    if pickles:
        return NotATicketRepoError(
            f"{where} holds no {TICKET_FILE}, only pickle weights ({', '.join(sorted(pickles)[:3])}); ticketfmt never "
            "loads pickles", repo_id=repo_id, filename=TICKET_FILE, revision=revision,
            fix="ask its author for a ticket (`ticket push`), or turn an open_lth run into one with "
                "`ticket import open-lth RUN_DIR --level L -o x.ticket`")
    shown = ", ".join(sorted(n for n in names if not n.startswith("."))[:5]) or "nothing"
    return NotATicketRepoError(f"{where} is not a ticket repo: it has no {TICKET_FILE} (it holds {shown})",
                               repo_id=repo_id, filename=TICKET_FILE, revision=revision,
                               fix="check the repo id and --revision, or publish a ticket there with `ticket push`")


def load_ticket_file(path: str, where: str, *, loader: Callable[..., Ticket], verify: bool = True,
                     repo_id: str | None = None, revision: str | None = None) -> Ticket:
    """``loader(path, verify=...)`` (``Ticket.load``, passed in: this module never imports the ticket class) of a
    downloaded ``ticket.safetensors``; a file that is not a ticket says where it came from."""
    from ticketfmt.errors import TicketIntegrityError

    try:
        return loader(path, verify=verify)
    except TicketIntegrityError as e:
        raise NotATicketRepoError(f"{where}: {TICKET_FILE} is damaged ({e.message})", repo_id=repo_id,
                                  filename=TICKET_FILE, revision=revision,
                                  fix="download it again with force_download=True (`ticket pull --force-download`), or "
                                      "skip the check with verify=False (--no-verify)"
                                  ) from None
    except TicketFormatError as e:
        raise NotATicketRepoError(f"{where}: {TICKET_FILE} is not a ticket file ({e.message})", repo_id=repo_id,
                                  filename=TICKET_FILE, revision=revision,
                                  fix="ticketfmt reads ticket files only (written by `ticket new`, `find`, `convert` "
                                      "or `import`); this repo holds some other safetensors model") from None


def load_folder(folder: str | os.PathLike[str], *, loader: Callable[..., Ticket], verify: bool = True) -> Ticket:
    """The ticket of a folder written by ``save_pretrained`` (or any folder with ``ticket.safetensors``).

    With ``verify``, a ``config.json`` beside it must agree with it (:func:`check_config`).
    """
    folder = Path(folder)
    path = folder / TICKET_FILE
    if not path.is_file():
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        raise _not_a_ticket(f"folder {folder}", names)
    ticket = load_ticket_file(str(path), f"folder {folder}", loader=loader, verify=verify)
    if verify and (folder / CONFIG_FILE).is_file():
        check_config(ticket, str(folder / CONFIG_FILE), f"folder {folder}")
    return ticket


def _read_config(path: str) -> dict[str, Any] | None:
    """``config.json`` as a dict, or None when it is unreadable, too large or not a JSON object."""
    try:
        if os.path.getsize(path) > MAX_CONFIG_BYTES:
            return None
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_config(ticket: Ticket, config_path: str | None, where: str, *, repo_id: str | None = None,
                 revision: str | None = None) -> None:
    """Refuse a ``config.json`` that contradicts its ticket (the ticket file is the source of truth).

    Compared, where a ticketfmt config (one with a ``"ticketfmt"`` object) states them:
    ``architecture`` (timm's name of the architecture, or the ticket's arch id or name),
    ``num_classes``, ``ticketfmt.arch.id`` and ``ticketfmt.sha256``. A missing or unreadable
    config, or another library's, states nothing about the ticket and passes. Raises
    :class:`~ticketfmt.errors.NotATicketRepoError`.
    """
    if config_path is None:
        return
    config = _read_config(config_path)
    if not is_ticketfmt_config(config):
        return
    assert config is not None
    spec = ticket.spec
    meta = config["ticketfmt"]
    arch = meta.get("arch") if isinstance(meta.get("arch"), dict) else {}
    named = config.get("architecture")
    if named in (spec.id, spec.name):  # ticketfmt 1.0 wrote the name, this version timm's name or the id
        named = timm_architecture(spec)
    checks = [("architecture", {"architecture": named}, "architecture", timm_architecture(spec)),
              ("num_classes", config, "num_classes", spec.num_classes), ("ticketfmt.arch.id", arch, "id", spec.id)]
    if ticket.file_sha256:
        checks.append(("ticketfmt.sha256", meta, "sha256", ticket.file_sha256))
    for label, obj, key, expected in checks:
        if key not in obj or obj[key] is None:
            continue
        if obj[key] != expected:
            raise NotATicketRepoError(
                f"{where}: {CONFIG_FILE} disagrees with {TICKET_FILE} ({label} is {_shown(obj[key])} in "
                f"{CONFIG_FILE}, {_shown(expected)} in the ticket)", repo_id=repo_id, filename=CONFIG_FILE,
                revision=revision,
                fix=f"the ticket file is the source of truth and this repo is inconsistent: ask its author to push "
                    f"again (`ticket push`), or skip the check with verify=False (--no-verify)")


def max_ticket_bytes() -> int:
    """:data:`MAX_TICKET_BYTES`, or ``TICKETFMT_MAX_TICKET_BYTES`` when set to a number."""
    value = os.environ.get("TICKETFMT_MAX_TICKET_BYTES", "").strip()
    try:
        return int(value) if value else MAX_TICKET_BYTES
    except ValueError:
        return MAX_TICKET_BYTES


# -- downloads ----------------------------------------------------------------------------------------
def download_ticket(repo_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                    force_download: bool = False, local_files_only: bool = False,
                    token: str | bool | None = None) -> str:
    """Download ``ticket.safetensors`` (and nothing else) into the standard cache; returns the cached path.

    A repo without that file is explained: only pickles, only a config, or something else.
    A file over :func:`max_ticket_bytes` (as the Hub reports its size) is refused before it
    is downloaded. The server is not trusted (:mod:`ticketfmt.hub.fetch`): its ETag, commit id
    and size are checked before anything is written, at most that size is written, and the
    bytes must hash to the ETag before they are cached.
    """
    from huggingface_hub.errors import RemoteEntryNotFoundError

    where = f"repo {repo_id}" + (f"@{revision}" if revision else "")
    limit = max_ticket_bytes()

    def too_large(size: int) -> NotATicketRepoError:
        return NotATicketRepoError(
            f"{where}: {TICKET_FILE} is {size:,} bytes, over the {limit:,}-byte limit of a ticket download "
            "(not a ticket, or a hostile repo); nothing was downloaded", repo_id=repo_id,
            filename=TICKET_FILE, revision=revision,
            fix="check the repo id; to download it anyway, raise TICKETFMT_MAX_TICKET_BYTES")

    with hub_errors(repo_id=repo_id, filename=TICKET_FILE, revision=revision, token=token):
        try:
            return fetch_file(repo_id, TICKET_FILE, limit=limit, too_large=too_large, revision=revision,
                              cache_dir=cache_dir, force_download=force_download, local_files_only=local_files_only,
                              token=token)
        except RemoteEntryNotFoundError:
            names = _list_files(repo_id, revision, token)
            raise _not_a_ticket(f"repo {repo_id}" + (f"@{revision}" if revision else ""), names, repo_id=repo_id,
                                revision=revision) from None


def download_config(repo_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                    local_files_only: bool = False, token: str | bool | None = None) -> str | None:
    """Fetch ``config.json`` (the file the Hub counts downloads on), best effort: None when it cannot.

    A config over :data:`MAX_CONFIG_BYTES` is not downloaded (None: it states nothing), and it
    is fetched as the ticket is (:mod:`ticketfmt.hub.fetch`: checked ETag, bounded, verified).
    """
    try:
        return fetch_file(repo_id, CONFIG_FILE, limit=MAX_CONFIG_BYTES, too_large=lambda size: ValueError(size),
                          revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token)
    except Exception:  # the ticket is already loaded; the config is not needed to use it
        return None


def _list_files(repo_id: str, revision: str | None, token: str | bool | None) -> list[str]:
    from huggingface_hub import HfApi

    try:
        return list(HfApi(token=token).list_repo_files(repo_id, revision=revision))
    except Exception:  # only to explain an error better: never hide the first one
        return []


def commit_of(path: str) -> str | None:
    """The commit a cached file belongs to (``.../snapshots/<commit>/<file>``)."""
    parts = Path(path).parts
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


# -- tokens and errors ------------------------------------------------------------------------------
def resolve_token(token: str | bool | None) -> str | None:
    """The token a request will use: the one given, else the ambient one (``HF_TOKEN``, ``hf auth login``)."""
    if token is False:
        return None
    if isinstance(token, str) and token:
        return token
    from huggingface_hub import get_token

    return get_token()


def scrub(text: str, *tokens: str | bool | None) -> str:
    """``text`` with every token given (and the ambient one) replaced by ``***``."""
    secrets = {t for t in tokens if isinstance(t, str) and len(t) >= 4}
    with contextlib.suppress(Exception):
        ambient = resolve_token(None)
        if ambient and len(ambient) >= 4:
            secrets.add(ambient)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


_is_transport_error = is_transport_error  # one definition (ticketfmt.hub.fetch), used by the download fallback too


@dataclass(frozen=True)
class _Where:
    """What a Hub error is about, for its message (the token only tells "none" from "rejected")."""

    repo_id: str | None
    filename: str | None
    revision: str | None
    action: str
    have_token: bool

    @property
    def repo(self) -> str:
        return self.repo_id or "the repo"

    @property
    def what(self) -> str:
        at = f"@{self.revision}" if self.revision else ""
        return f"{self.filename} of {self.repo}{at}" if self.filename else f"{self.repo}{at}"

    @property
    def ctx(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "filename": self.filename, "revision": self.revision}


def _login_fix() -> str:
    return f"run `hf auth login` (or set HF_TOKEN, or pass --token) with a token from {_endpoint()}/settings/tokens"


def map_hub_error(exc: BaseException, *, repo_id: str | None = None, filename: str | None = None,
                  revision: str | None = None, action: str = "download",
                  token: str | bool | None = None) -> TicketError | None:
    """A one-line :class:`~ticketfmt.errors.HubError` (with the fix) for a ``huggingface_hub`` error, or None.

    ``action`` is ``download`` or ``push``; ``token`` is only used to tell "no token" from
    "a token the Hub rejects" and to keep it out of every message.

    Example:
        >>> map_hub_error(ValueError("not a Hub error")) is None
        True
    """
    where = _Where(repo_id, filename, revision, action, resolve_token(token) is not None)
    for e in _chain(exc):
        mapped = _connection_error(e, where)
        if mapped is None and _is_http_error(e):
            mapped = _http_error(e, where)
        if mapped is not None:
            return mapped
    return None


def _is_http_error(e: BaseException) -> bool:
    from huggingface_hub import errors as hf

    return isinstance(e, hf.HfHubHTTPError)


def _connection_error(e: BaseException, where: _Where) -> TicketError | None:
    """A bad repo id, offline mode, or no way to reach the Hub."""
    from huggingface_hub import errors as hf

    repo, ctx = where.repo, where.ctx
    if isinstance(e, hf.HFValidationError):
        return HubNotFoundError(f"{where.repo_id!r} is not a valid repo id", **ctx,
                                fix="write it as USER/NAME or ORG/NAME (letters, digits, '-', '_', '.')")
    if isinstance(e, hf.OfflineModeIsEnabled) or (isinstance(e, hf.LocalEntryNotFoundError) and _offline()):
        if where.action == "push":
            return HubOfflineError(f"cannot push to {repo} while offline mode is on (HF_HUB_OFFLINE=1)", **ctx,
                                   fix="unset HF_HUB_OFFLINE and push again")
        return HubOfflineError(f"offline mode is on (HF_HUB_OFFLINE=1) and {where.what} is not in the cache", **ctx,
                               fix="download it once online (`ticket pull` or from_pretrained), or unset "
                                   "HF_HUB_OFFLINE")
    if isinstance(e, hf.LocalEntryNotFoundError):
        return HubOfflineError(f"cannot reach the Hub at {_endpoint()} and {where.what} is not in the cache", **ctx,
                               fix="check the network connection (and HF_ENDPOINT or the proxy settings), then "
                                   "try again")
    if _is_transport_error(e):
        return HubOfflineError(f"cannot reach the Hub at {_endpoint()} ({type(e).__name__})", **ctx,
                               fix="check the network connection (and HF_ENDPOINT or the proxy settings); to use "
                                   "only the cache, set HF_HUB_OFFLINE=1")
    return None


def _http_error(e: BaseException, where: _Where) -> TicketError:
    """An answer of the Hub: credentials, gating, a missing repo, revision or file, or a status code."""
    from huggingface_hub import errors as hf

    repo, ctx = where.repo, where.ctx
    status = getattr(getattr(e, "response", None), "status_code", None)
    server = " ".join(str(getattr(e, "server_message", None) or "").split())
    if "invalid credentials" in server.lower() or "invalid token" in server.lower():
        return HubAuthError("the Hub rejected the token (invalid credentials)", **ctx,
                            fix=f"log in again with `hf auth login`, or set HF_TOKEN (or --token) to a valid "
                                f"token from {_endpoint()}/settings/tokens")
    if isinstance(e, hf.GatedRepoError):
        return HubAuthError(f"repo {repo} is gated", **ctx,
                            fix=f"accept its conditions on {_endpoint()}/{where.repo_id} and use a token of that "
                                "account")
    if isinstance(e, hf.RepositoryNotFoundError):
        if where.action == "push" and not where.have_token:
            return HubAuthError(f"pushing to {repo} needs a Hub token with write access", **ctx, fix=_login_fix())
        hint = "" if where.have_token else "; if it is private, log in first: " + _login_fix()
        return HubNotFoundError(f"repo {repo} not found on {_endpoint()}", **ctx,
                                fix=f"check the repo id (USER/NAME){hint}")
    if isinstance(e, hf.RevisionNotFoundError):
        return HubNotFoundError(f"revision {where.revision!r} not found in {repo}", **ctx,
                                fix="check the branch, tag or commit given with --revision")
    if isinstance(e, hf.RemoteEntryNotFoundError):
        at = f"@{where.revision}" if where.revision else ""
        return HubNotFoundError(f"{repo}{at} has no file {where.filename}", **ctx,
                                fix="check the repo id and --revision")
    return _status_error(status, server, str(e), where)


def _status_error(status: int | None, server: str, text: str, where: _Where) -> TicketError:
    repo, ctx = where.repo, where.ctx
    if status == 401:
        if not where.have_token:
            verb = "pushing to" if where.action == "push" else "reading"
            return HubAuthError(f"{verb} {repo} needs a Hub token", **ctx, fix=_login_fix())
        return HubAuthError("the Hub rejected the token", **ctx, fix=_login_fix())
    if status == 403:
        if where.action == "push":
            return HubAuthError(f"the token cannot write to {repo}", **ctx,
                                fix="use a token with write access to that namespace (fine-grained tokens must "
                                    "list it), or push to your own USER/NAME")
        return HubAuthError(f"the token may not read {repo}", **ctx,
                            fix="ask the owner for access, or use a token of an account that has it")
    if status == 412:
        return HubError(f"{repo} changed while pushing", fix="push again")
    if status is not None and status >= 500:
        return HubError(f"the Hub answered {status} ({server or 'server error'})", fix="try again in a few minutes")
    detail = server or (text.splitlines() or ["no message"])[0]
    return HubError(f"the Hub answered {status}: {detail}", fix="check the repo id, --revision and the token")


@contextlib.contextmanager
def hub_errors(*, repo_id: str | None = None, filename: str | None = None, revision: str | None = None,
               action: str = "download", token: str | bool | None = None) -> Iterator[None]:
    """Turn ``huggingface_hub`` errors raised inside into one-line :class:`~ticketfmt.errors.HubError` s.

    Messages never hold the token (it is scrubbed even from the server's words).

    Example:
        >>> with hub_errors(repo_id="user/r56-ticket"):  # doctest: +SKIP
        ...     hf_hub_download("user/r56-ticket", "ticket.safetensors")
    """
    try:
        yield
    except TicketError as e:
        cleaned = scrub(str(e), token)
        if cleaned != str(e):  # never let a token through, even inside our own messages
            raise HubError(cleaned) from None
        raise
    except Exception as e:  # noqa: BLE001 - mapped or re-raised unchanged
        mapped = map_hub_error(e, repo_id=repo_id, filename=filename, revision=revision, action=action, token=token)
        if mapped is None:
            raise
        if isinstance(mapped, HubError):
            text = scrub(str(mapped), token)
            if text != str(mapped):
                mapped = HubError(text)
        raise mapped from e
