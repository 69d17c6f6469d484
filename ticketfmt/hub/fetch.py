"""Downloading one file from a Hub that may lie: bounded, verified, atomic, and never outside the cache.

``hf_hub_download`` (huggingface_hub 2.4) trusts the server: it names the cached blob after
the ``ETag`` header (``blobs/<ETag>``: ``../../x`` writes outside the cache), the snapshot
after ``X-Repo-Commit`` and the ref file after ``--revision``; it writes whatever the body
holds before it compares sizes, and never checks the bytes against their hash, so a server
that serves B under A's ETag poisons the cache for every later download of A.
:func:`fetch_file` fetches through huggingface_hub's own HTTP session into the same cache
layout (``refs/``, ``blobs/``, ``snapshots/``, so ``HF_HUB_OFFLINE=1`` and every other tool
read what it wrote), but:

- the revision is a branch, tag, commit or ``refs/pr/N`` name, checked before any request;
- the answer's ``X-Repo-Commit`` must be a 40-hex commit id (the one asked for, when a commit
  was asked for) and its ``ETag`` a sha256 (LFS) or a git blob id, 64 or 40 lowercase hex
  digits; anything else is refused before a byte is fetched;
- at most the stated size (itself within the caller's limit) is ever written, into a
  temporary file beside the blob, whatever the server sends;
- the bytes must hash to the ETag (sha256, or the git blob sha1) before they are renamed
  into the cache; a cached file that does not (poisoned by an older client) is removed and
  fetched again, so an honest server heals it.

Example:
    >>> path = fetch_file("user/r56-ticket", "ticket.safetensors", limit=1 << 30)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ticketfmt.errors import HubNotFoundError, NotATicketRepoError

__all__ = ["fetch_file", "check_revision", "is_transport_error", "RemoteFile"]

_COMMIT = re.compile(r"[0-9a-f]{40}")
_ETAG = re.compile(r"[0-9a-f]{64}|[0-9a-f]{40}")
_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+/-]{0,255}")
_CHUNK = 1 << 20


def _shown(value: object) -> str:
    """A server's or user's value in a message: escaped (no terminal control characters), cut."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_revision(revision: str | None, repo_id: str | None = None) -> None:
    """Refuse a revision that is not a plain branch, tag, commit or ``refs/pr/N`` name (before any request).

    The cache stores a branch's commit in ``refs/<revision>``: a ``..`` component, an absolute
    path or a backslash would put that file outside the cache.

    Example:
        >>> check_revision("refs/pr/1"), check_revision("v1.0")
        (None, None)
        >>> check_revision("../../x")
        Traceback (most recent call last):
        ...
        ticketfmt.errors.HubNotFoundError: revision '../../x' is not a branch, tag or commit name; ...
    """
    if revision is None:
        return
    parts = revision.split("/") if isinstance(revision, str) else [""]
    if (not isinstance(revision, str) or not _REVISION.fullmatch(revision) or any(p in ("", ".", "..") for p in parts)
            or revision.endswith(".lock")):
        of = f" of {repo_id}" if repo_id else ""
        raise HubNotFoundError(f"revision {_shown(revision)}{of} is not a branch, tag or commit name", repo_id=repo_id,
                               fix="give --revision as a branch (main), a tag (v1.0), a commit id or refs/pr/N")


def is_transport_error(e: BaseException) -> bool:
    """Whether ``e`` is a network failure of httpx / requests (not an answer of the server)."""
    names = {c.__name__ for c in type(e).__mro__}
    module = type(e).__module__.split(".")[0]
    return module.startswith(("httpx", "httpcore", "requests", "urllib3")) and bool(
        names & {"TransportError", "NetworkError", "ConnectError", "TimeoutException", "ConnectionError",
                 "ProtocolError", "ProxyError"})


@dataclass(frozen=True)
class RemoteFile:
    """What the server says about one file at one revision, checked: where to GET it and what it must be."""

    repo_id: str
    filename: str
    commit: str
    etag: str
    size: int
    url: str

    def refuse(self, what: str) -> NotATicketRepoError:
        return NotATicketRepoError(f"the Hub's answer for {self.filename} of {self.repo_id} {what}; nothing was "
                                   "cached (a lying or broken server)", repo_id=self.repo_id, filename=self.filename,
                                   fix="check HF_ENDPOINT and the repo id, and try again")


def _remote(repo_id: str, filename: str, revision: str | None, token: str | bool | None) -> RemoteFile:
    """HEAD the file (huggingface_hub's own request) and check every value that will name a cache path."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), token=token)
    remote = RemoteFile(repo_id, filename, str(meta.commit_hash), str(meta.etag), -1, str(meta.location))
    if not _COMMIT.fullmatch(remote.commit) or (_COMMIT.fullmatch(revision or "") and remote.commit != revision):
        raise remote.refuse(f"names commit {_shown(meta.commit_hash)}, not a commit id"
                            + (f" (asked for {revision})" if revision else ""))
    if not _ETAG.fullmatch(remote.etag):
        raise remote.refuse(f"has the ETag {_shown(meta.etag)}, neither a sha256 nor a git blob id")
    if type(meta.size) is not int or meta.size < 0:
        raise remote.refuse("does not state the file's size")
    return RemoteFile(repo_id, filename, remote.commit, remote.etag, meta.size, remote.url)


def _digest(etag: str, size: int) -> hashlib._Hash:
    """The hash the ETag is: sha256 of the content (LFS), or git's blob sha1 (``blob <size>\\0`` + content)."""
    if len(etag) == 64:
        return hashlib.sha256()
    digest = hashlib.sha1()
    digest.update(b"blob %d\0" % size)
    return digest


def _matches(path: Path, etag: str) -> bool:
    """Whether a cached file's bytes are what its ETag says."""
    try:
        digest = _digest(etag, path.stat().st_size)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == etag


def _download(remote: RemoteFile, blob: Path, token: str | bool | None) -> None:
    """GET the file into a temporary file beside ``blob``: at most ``remote.size`` bytes, hash checked, renamed."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_stream_backoff

    headers = build_hf_headers(token=token)
    headers["Accept-Encoding"] = "identity"  # the bytes hashed must be the file's, not a compressed form
    blob.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{remote.etag}.", suffix=".incomplete", dir=blob.parent)
    digest, written = _digest(remote.etag, remote.size), 0
    try:
        with os.fdopen(fd, "wb") as f, http_stream_backoff("GET", remote.url, headers=headers,
                                                           timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
                                                           retry_on_status_codes=(408, 429)) as response:
            hf_raise_for_status(response)
            for chunk in response.iter_bytes(chunk_size=_CHUNK):
                written += len(chunk)
                if written > remote.size:  # never write past what was stated (and checked against the limit)
                    raise remote.refuse(f"sent more than the {remote.size:,} bytes it stated")
                digest.update(chunk)
                f.write(chunk)
        if written != remote.size:
            raise remote.refuse(f"sent {written:,} bytes, not the {remote.size:,} it stated")
        if digest.hexdigest() != remote.etag:
            raise remote.refuse(f"served bytes that do not hash to its ETag {remote.etag[:12]}...")
        os.chmod(tmp, 0o644)
        os.replace(tmp, blob)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _link(blob: Path, pointer: Path) -> None:
    """``snapshots/<commit>/<file>`` → ``blobs/<etag>`` (a relative symlink, as huggingface_hub; else a copy)."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:
        shutil.copyfile(blob, pointer)


def _write_ref(storage: Path, revision: str, commit: str) -> None:
    """``refs/<revision>`` holds the commit a branch or tag resolved to (read offline); atomic."""
    if revision == commit:
        return
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    if ref.is_file() and ref.read_text() == commit:
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{ref.name}.", suffix=".tmp", dir=ref.parent)
    with os.fdopen(fd, "w") as f:
        f.write(commit)
    os.replace(tmp, ref)


def fetch_file(repo_id: str, filename: str, *, limit: int, too_large: Callable[[int], BaseException],
               revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
               force_download: bool = False, local_files_only: bool = False,
               token: str | bool | None = None) -> str:
    """The cached path of ``filename`` of ``repo_id`` at ``revision``, downloaded as this module's docstring says.

    A file over ``limit`` bytes (as the server states it) raises ``too_large(size)`` before
    anything is fetched. Offline (``HF_HUB_OFFLINE=1``, ``local_files_only``) or when the Hub
    cannot be reached, the cache answers (``hf_hub_download(local_files_only=True)``, which
    writes nothing). huggingface_hub's errors propagate (:func:`ticketfmt.hub.repo.hub_errors` maps them).
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.utils import validate_repo_id

    check_revision(revision, repo_id)
    validate_repo_id(repo_id)

    def cached() -> str:
        return str(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, local_files_only=True,
                                   token=token))

    if local_files_only or constants.HF_HUB_OFFLINE:
        return cached()
    try:
        remote = _remote(repo_id, filename, revision, token)
    except Exception as e:  # noqa: BLE001 - a network failure falls back to the cache, as hf_hub_download does
        if not is_transport_error(e) or force_download:
            raise
        return cached()
    storage = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    pointer = storage / "snapshots" / remote.commit / filename
    blob = storage / "blobs" / remote.etag
    if not force_download and (pointer.exists() or blob.exists()):
        if _matches(blob if blob.exists() else pointer, remote.etag):
            if not pointer.exists():
                _link(blob, pointer)
            _write_ref(storage, revision or "main", remote.commit)
            return str(pointer)
        # A poisoned entry (bytes that are not their ETag's, cached by an older client): removed, fetched again.
        for stale in (pointer, blob):
            if stale.is_symlink() or stale.exists():
                stale.unlink()
    if remote.size > limit:
        raise too_large(remote.size)
    _download(remote, blob, token)
    _link(blob, pointer)
    _write_ref(storage, revision or "main", remote.commit)
    return str(pointer)
