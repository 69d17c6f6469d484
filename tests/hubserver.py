"""A fake Hugging Face Hub HTTP server for offline tests.

`FakeHub` serves the parts of the Hub's HTTP protocol that the **unmodified**
``huggingface_hub`` client (2.x, ``httpx2`` transport) uses to create model repos,
upload (regular and git-LFS files), commit, list and download, over real sockets on
127.0.0.1. State lives in memory and dies with the server.

Usage (pytest)::

    from tests.hubserver import FakeHub

    @pytest.fixture
    def hub(monkeypatch, tmp_path):
        with FakeHub() as hub:
            hub.configure_client(monkeypatch, cache_dir=tmp_path / "hf-cache")
            yield hub

    def test_push(hub, tmp_path):
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        api.create_repo("org/model")
        api.upload_folder(repo_id="org/model", folder_path=tmp_path / "out")
        assert hub.stats["lfs_uploads"] == 1
        assert hub.files("org/model")["weights.ticket"] == b"..."

Configuring the client (read this before writing a Hub test):

* ``huggingface_hub`` copies its environment into ``huggingface_hub.constants`` at
  import time, and pytest usually imports it (through the project) before any test
  runs, so setting ``os.environ`` in a test module is not reliable.  The module reads
  the constants at call time, though, so `FakeHub.configure_client` patches them with
  ``monkeypatch`` (undone after the test): ``ENDPOINT`` *and*
  ``HUGGINGFACE_CO_URL_TEMPLATE`` (``hf_hub_url`` builds download URLs from the
  template and only swaps the prefix when it starts with ``constants.ENDPOINT``, so
  patching ``ENDPOINT`` alone sends downloads to huggingface.co), the module-level
  ``huggingface_hub.hf_api.api.endpoint`` (``huggingface_hub.upload_folder`` & co are
  bound methods of an ``HfApi()`` made at import), ``HF_HUB_DISABLE_XET``,
  ``HF_HUB_DISABLE_TELEMETRY``, ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and
  ``HF_TOKEN_PATH``; it also sets the matching environment variables
  (``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_DISABLE_XET=1``, ...) for subprocesses.
* Still pass ``endpoint=hub.endpoint`` (``HfApi``, ``hf_hub_download``) and
  ``cache_dir=`` where you can; it works even without `configure_client`.
* Offline-mode tests: after `configure_client`, also
  ``monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)``
  (``is_offline_mode()`` reads the constant, not the environment).
* ``HF_HUB_DISABLE_XET`` is required: ``hf_xet`` is installed with huggingface_hub 2.x
  and then ``upload_folder``/``create_commit`` upload through the Xet protocol, which
  this server does not speak (it answers the xet token routes with 501).  Patching
  ``constants.HF_HUB_DISABLE_XET`` after import is enough: ``is_xet_available()``
  reads it at call time.
* ``HF_HUB_DISABLE_TELEMETRY`` matters too: otherwise the first request of the process
  builds its user agent by fetching ``{constants.ENDPOINT}/api/agent-harnesses``
  (huggingface.co unless patched; this server answers it with an empty registry).

Protocol notes (what the client really does):

* ``preupload`` answers decide regular vs LFS; an ``oid`` equal to the local one
  (git blob sha1 for regular files, sha256 for LFS files) makes ``create_commit`` drop
  the file, and if nothing is left it makes *no* commit (it calls ``repo_info``).
* The LFS ``PUT`` to ``actions.upload.href`` carries **no** Authorization header (it
  is meant for a presigned S3 URL), so the href this server hands out is signed with an
  HMAC query parameter; a PUT needs that signature or a valid bearer token.
* ``HEAD`` and ``GET /resolve`` are served directly (no CDN redirect): ``ETag`` is the
  git blob sha1 (regular) or the sha256 (LFS, also in ``X-Linked-Etag`` with
  ``X-Linked-Size``); ranges answer 206.
* A 5xx answer makes the client retry with back-off (seconds), so internal errors of
  this server answer 501 and are recorded in `FakeHub.errors`.
* The client uploads LFS content with ``data=<file>`` and ``httpx2`` emits a
  ``DeprecationWarning`` ("Use 'content=<...>'") for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_LFS_EXTENSIONS = frozenset(
    {".safetensors", ".ticket", ".bin", ".png", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".npy", ".npz",
     ".pkl", ".msgpack", ".zip", ".gz", ".tar", ".parquet", ".arrow"}
)
LFS_THRESHOLD = 10_000_000  # files of this size or more go through LFS
MAX_REGULAR_SIZE = 10 * 1024 * 1024  # the Hub rejects larger non-LFS files in a commit
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class _Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def blob_id(self) -> str:
        """The git blob id: of the content, or of the LFS pointer file for LFS blobs."""
        return git_blob_sha1(self.pointer if self.lfs else self.data)

    @property
    def oid(self) -> str:
        """The id the client compares with (preupload `oid`, ETag): sha1 regular, sha256 LFS."""
        return self.sha256 if self.lfs else git_blob_sha1(self.data)


@dataclass
class _Commit:
    oid: str
    parent: str | None
    tree: dict[str, _Blob]
    title: str
    date: datetime


@dataclass
class _Repo:
    repo_id: str
    private: bool
    created: datetime
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # "main", "dev", "refs/pr/1" -> commit oid
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content
    prs: int = 0


class HubError(Exception):
    """An error answer: status, message (X-Error-Message and JSON body), optional X-Error-Code."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}


_REPO = r"(?P<repo>[^/]+/[^/]+?)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", r"/api/agent-harnesses", "agent_harnesses"),
        ("*", rf"/api/models/{_REPO}/xet-[a-z-]+(?:/.*)?", "xet"),
        ("GET", rf"/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?", "info"),
        ("GET", rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
        ("GET", rf"/api/models/{_REPO}/refs", "refs"),
        ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
        ("POST", rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", "create_branch"),
        ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", rf"/__lfs/{_REPO}/(?P<oid>[0-9a-f]{{64}})", "lfs_put"),
        ("POST", rf"/__lfs/{_REPO}/(?P<oid>[0-9a-f]{{64}})/verify", "lfs_verify"),
        ("GET", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]
]


@dataclass
class _Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # for HEAD: the length GET would send


def _json(obj: Any, status: int = 200, content_type: str = "application/json") -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), {"Content-Type": content_type})


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub  # set on the per-server subclass
    protocol_version = "HTTP/1.0"  # one request per connection: nothing stale in the client's pool

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        split = urlsplit(self.path)
        body = self._read_body()  # always drain the body before answering
        try:
            reply = self.hub._dispatch(self.command, split.path, parse_qs(split.query), dict(self.headers), body)
        except HubError as err:
            headers = {"X-Error-Message": err.message, **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            reply = _json({"error": err.message, **err.extra}, err.status)
            reply.headers.update(headers)
        except Exception:  # a bug here: 501, which the client does not retry
            self.hub.errors.append(traceback.format_exc())
            reply = _json({"error": "FakeHub internal error"}, 501)
        self.send_response(reply.status)
        for key, value in reply.headers.items():  # latin-1 only, no CR/LF (hostile paths end up in messages)
            self.send_header(key, re.sub(r"[\r\n]", " ", value).encode("ascii", "backslashreplace").decode())
        length = reply.content_length if reply.content_length is not None else len(reply.body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle


class FakeHub:
    """In-memory fake of the Hugging Face Hub's HTTP API, for the unmodified client.

    Serves on ``http://127.0.0.1:<free port>`` (`endpoint`) from a background
    ``ThreadingHTTPServer``; use it as a context manager or call `start` / `stop`.

    Model repos are keyed ``"org/name"``; each has branches (``main``, created
    branches, ``refs/pr/N``) pointing at commits, and each commit holds the full file
    tree. A new repo starts with an initial commit holding a ``.gitattributes``, as on
    the Hub. Files are regular git blobs or LFS objects; `lfs_rule` decides which at
    preupload time (size >= ``lfs_threshold``, an extension in ``lfs_extensions``, or a
    NUL byte in the first 512 bytes).

    Only ``token`` is a valid bearer token (user ``testuser``, write access to every
    namespace). Writes without it answer 401; private repos read without it answer 401
    ``RepoNotFound``; any request with a wrong token answers 401 "Invalid credentials
    in Authorization header", as the Hub does.

    Test hooks:
        stats: counters -- ``lfs_uploads`` (LFS PUTs stored), ``lfs_bytes``,
            ``regular_uploads`` (files sent base64 inside commits), ``lfs_files_committed``,
            ``commits``, ``preuploads``, ``downloads`` (GET resolve), ``heads``.
        requests: ``(method, path)`` of every request, path without the query string.
        errors: tracebacks of internal errors (should stay empty).
        files / put_files / is_lfs / head / branches: read and seed state directly.
    """

    def __init__(self, token: str = "hf_test_token", *, user: str = "testuser",
                 lfs_threshold: int = LFS_THRESHOLD, lfs_extensions: frozenset[str] = DEFAULT_LFS_EXTENSIONS) -> None:
        self.token, self.user = token, user
        self.lfs_threshold, self.lfs_extensions = lfs_threshold, lfs_extensions
        self.stats: Counter[str] = Counter()
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(16)
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeHub:
        if self._server is None:
            handler = type("_BoundHandler", (_Handler,), {"hub": self})
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="FakeHub", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def configure_client(self, monkeypatch: Any, *, cache_dir: str | os.PathLike[str] | None = None,
                         token: bool = True) -> None:
        """Point the (already imported) ``huggingface_hub`` at this server for one test.

        ``monkeypatch`` is pytest's fixture (anything with ``setattr``/``setenv``/``delenv``).
        With ``token=True`` the valid token is the ambient one (``HF_TOKEN``); with
        ``token=False`` there is none, and no token file is read either.
        """
        import huggingface_hub.constants as constants
        from huggingface_hub import hf_api, utils

        endpoint = self.endpoint
        for name, value in [
            ("ENDPOINT", endpoint),
            ("HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"),
            ("HF_HUB_DISABLE_XET", True), ("HF_HUB_DISABLE_TELEMETRY", True), ("HF_HUB_OFFLINE", False),
            ("HF_TOKEN_PATH", os.path.join(os.fspath(cache_dir or "/nonexistent"), "no-token-here")),
        ]:
            monkeypatch.setattr(constants, name, value)
        monkeypatch.setattr(hf_api.api, "endpoint", endpoint)
        env = {"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        for key, val in env.items():
            monkeypatch.setenv(key, val)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
        if token:
            monkeypatch.setenv("HF_TOKEN", self.token)
        else:
            monkeypatch.delenv("HF_TOKEN", raising=False)
        if cache_dir is not None:
            monkeypatch.setattr(constants, "HF_HUB_CACHE", os.fspath(cache_dir))
            monkeypatch.setenv("HF_HUB_CACHE", os.fspath(cache_dir))
        close_session = getattr(utils, "close_session", None)  # huggingface_hub 1.x/2.x (httpx)
        if close_session is not None:
            close_session()  # the next request builds a client that sees the proxy settings above

    # ------------------------------------------------------------------ direct access
    def files(self, repo: str, rev: str = "main") -> dict[str, bytes]:
        """The file tree of ``repo`` at ``rev`` (branch, ``refs/pr/N`` or commit sha)."""
        with self._lock:
            return {p: b.data for p, b in self._commit_at(self._repo(repo), rev).tree.items()}

    def is_lfs(self, repo: str, path: str, rev: str = "main") -> bool:
        with self._lock:
            return self._commit_at(self._repo(repo), rev).tree[path].lfs

    def head(self, repo: str, rev: str = "main") -> str:
        """The commit sha ``rev`` points at."""
        with self._lock:
            return self._commit_at(self._repo(repo), rev).oid

    def branches(self, repo: str) -> dict[str, str]:
        with self._lock:
            return dict(self._repo(repo).branches)

    def put_files(self, repo: str, files: dict[str, bytes], private: bool = False, *, rev: str = "main",
                  message: str = "seed", lfs: bool | None = None) -> str:
        """Commit ``files`` on top of ``rev`` (creating the repo if needed), skipping all
        validation so tests can seed hostile content. Returns the commit sha."""
        with self._lock:
            if repo not in self._repos:
                self._create(repo, private)
            r = self._repos[repo]
            base = self._commit_at(r, rev)
            tree = dict(base.tree)
            for path, data in files.items():
                is_lfs = self.lfs_rule(path, len(data), data[:512]) if lfs is None else lfs
                tree[path] = _Blob(data, is_lfs)
                if is_lfs:
                    r.lfs_objects[hashlib.sha256(data).hexdigest()] = data
            return self._add_commit(r, rev, base.oid, tree, message).oid

    def lfs_rule(self, path: str, size: int, sample: bytes) -> bool:
        return size >= self.lfs_threshold or Path(path).suffix.lower() in self.lfs_extensions or b"\0" in sample

    # ------------------------------------------------------------------ state helpers
    def _repo(self, repo_id: str) -> _Repo:
        try:
            return self._repos[repo_id]
        except KeyError:
            raise KeyError(f"no repo {repo_id!r} on the FakeHub") from None

    def _create(self, repo_id: str, private: bool) -> _Repo:
        r = self._repos[repo_id] = _Repo(repo_id, private, datetime.now(timezone.utc))
        patterns = "".join(f"*{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in sorted(self.lfs_extensions))
        self._add_commit(r, "main", None, {".gitattributes": _Blob(patterns.encode(), False)}, "initial commit")
        return r

    def _add_commit(self, r: _Repo, branch: str, parent: str | None, tree: dict[str, _Blob], title: str) -> _Commit:
        self._counter += 1
        seed = json.dumps([parent, title, self._counter, sorted((p, b.blob_id) for p, b in tree.items())])
        commit = _Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, tree, title, datetime.now(timezone.utc))
        r.commits[commit.oid] = commit
        r.branches[branch] = commit.oid
        return commit

    def _commit_at(self, r: _Repo, rev: str) -> _Commit:
        rev = rev[len("refs/heads/"):] if rev.startswith("refs/heads/") else rev
        if rev in r.branches:
            return r.commits[r.branches[rev]]
        if re.fullmatch(r"[0-9a-f]{7,40}", rev):
            found = [c for oid, c in r.commits.items() if oid.startswith(rev)]
            if len(found) == 1:
                return found[0]
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def _signature(self, repo_id: str, oid: str) -> str:
        return hmac.new(self._secret, f"{repo_id}:{oid}".encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ HTTP dispatch
    def _dispatch(self, method: str, raw_path: str, query: dict[str, list[str]], headers: dict[str, str],
                  body: bytes) -> _Reply:
        with self._lock:
            self.requests.append((method, raw_path))
        for route_method, pattern, name in _ROUTES:
            match = pattern.fullmatch(raw_path)
            if match and route_method in ("*", method):
                params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                lowered = {k.lower(): v for k, v in headers.items()}
                auth = self._auth(lowered)
                handler: Callable[..., _Reply] = getattr(self, f"_h_{name}")
                with self._lock:
                    return handler(method=method, query=query, body=body, auth=auth, headers=lowered, **params)
        raise HubError(404, f"FakeHub: no route for {method} {raw_path}")

    def _auth(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization")
        if value is None:
            return False
        if value == f"Bearer {self.token}":
            return True
        raise HubError(401, "Invalid credentials in Authorization header")

    @staticmethod
    def _need_auth(auth: bool) -> None:
        if not auth:
            raise HubError(401, "Invalid username or password.")

    def _readable(self, repo_id: str, auth: bool) -> _Repo:
        r = self._repos.get(repo_id)
        if r is None or (r.private and not auth):
            raise HubError(404 if auth else 401, "Repository not found", "RepoNotFound")
        return r

    def _writable(self, repo_id: str, auth: bool) -> _Repo:
        self._need_auth(auth)
        return self._readable(repo_id, auth)

    @staticmethod
    def _payload(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise HubError(400, "Invalid JSON body") from None
        if not isinstance(data, dict):
            raise HubError(400, "JSON body must be an object")
        return data

    # ------------------------------------------------------------------ handlers
    def _h_whoami(self, auth: bool, **_: Any) -> _Reply:
        self._need_auth(auth)
        return _json({"type": "user", "id": "0" * 24, "name": self.user, "fullname": "Test User",
                      "email": f"{self.user}@example.invalid", "emailVerified": True, "isPro": False, "orgs": [],
                      "auth": {"type": "access_token", "accessToken": {"displayName": "fakehub", "role": "write"}}})

    def _h_agent_harnesses(self, **_: Any) -> _Reply:
        return _json({"standardEnvVars": [], "harnesses": {}})

    def _h_xet(self, **_: Any) -> _Reply:
        raise HubError(501, "FakeHub does not implement the Xet protocol: set HF_HUB_DISABLE_XET=1")

    def _h_create_repo(self, body: bytes, auth: bool, **_: Any) -> _Reply:
        self._need_auth(auth)
        data = self._payload(body)
        name, org = data.get("name"), data.get("organization") or self.user
        if data.get("type", "model") != "model":
            raise HubError(400, "FakeHub only hosts model repos")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.-]{1,96}", name) or not re.fullmatch(r"[\w.-]+", org):
            raise HubError(400, f"Invalid repo name: {org}/{name}")
        repo_id = f"{org}/{name}"
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self._repos:
            # create_repo(exist_ok=True) reads "url" from the 409 body
            raise HubError(409, "You already created this model repo", extra={"url": url})
        private = bool(data.get("private")) or data.get("visibility") == "private"
        self._create(repo_id, private)
        return _json({"url": url, "name": repo_id, "id": repo_id})

    def _h_validate_yaml(self, body: bytes, **_: Any) -> _Reply:
        import yaml  # a dependency of huggingface_hub

        content = str(self._payload(body).get("content", ""))
        match = re.match(r"^---\s*\n(.*?)\n---\s*(?:\n|$)", content, re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
            if meta is not None and not isinstance(meta, dict):
                raise ValueError("metadata must be a YAML mapping")
        except Exception as err:  # yaml.YAMLError or the ValueError above
            return _json({"errors": [{"message": str(err)}], "warnings": []}, 400)
        return _json({"errors": [], "warnings": []})

    def _h_info(self, repo: str, auth: bool, rev: str = "main", **_: Any) -> _Reply:
        r = self._readable(repo, auth)
        commit = self._commit_at(r, rev)
        siblings = []
        for path, blob in sorted(commit.tree.items()):
            sib: dict[str, Any] = {"rfilename": path, "size": len(blob.data), "blobId": blob.blob_id}
            if blob.lfs:
                sib["lfs"] = {"size": len(blob.data), "sha256": blob.sha256, "pointerSize": len(blob.pointer)}
            siblings.append(sib)
        card = _card_data(commit.tree.get("README.md"))
        tags = [str(t) for t in (card.get("tags") or []) if isinstance(t, (str, int))] if card else []
        return _json({"_id": r.repo_id, "id": r.repo_id, "modelId": r.repo_id, "author": r.repo_id.split("/")[0],
                      "sha": commit.oid, "lastModified": commit.date.strftime(_ISO),
                      "createdAt": r.created.strftime(_ISO), "private": r.private, "gated": False,
                      "disabled": False, "downloads": 0, "likes": 0, "tags": tags,
                      "library_name": card.get("library_name") if card else None,
                      "cardData": card, "siblings": siblings})

    def _h_tree(self, repo: str, rev: str, auth: bool, query: dict[str, list[str]], path: str = "",
                **_: Any) -> _Reply:
        tree = self._commit_at(self._readable(repo, auth), rev).tree
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        files = {p: b for p, b in tree.items() if p.startswith(prefix)}
        if prefix and not files:
            raise HubError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        entries: dict[str, dict[str, Any]] = {}
        for p, blob in files.items():
            parts = p[len(prefix):].split("/")
            for i in range(1, len(parts)):
                if not recursive and i > 1:
                    break
                folder = prefix + "/".join(parts[:i])
                entries[folder] = {"type": "directory", "path": folder,
                                   "oid": hashlib.sha1(f"tree:{folder}".encode()).hexdigest(), "size": 0}
            if recursive or len(parts) == 1:
                entry: dict[str, Any] = {"type": "file", "path": p, "size": len(blob.data), "oid": blob.blob_id}
                if blob.lfs:
                    entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
                entries[p] = entry
        return _json([entries[k] for k in sorted(entries)])

    def _h_refs(self, repo: str, auth: bool, **_: Any) -> _Reply:
        r = self._readable(repo, auth)

        def ref(name: str, oid: str) -> dict[str, str]:
            full = name if name.startswith("refs/") else f"refs/heads/{name}"
            return {"name": name, "ref": full, "targetCommit": oid}

        return _json({"branches": [ref(n, o) for n, o in r.branches.items() if not n.startswith("refs/pr/")],
                      "pullRequests": [ref(n, o) for n, o in r.branches.items() if n.startswith("refs/pr/")],
                      "tags": [], "converts": []})

    def _h_create_branch(self, repo: str, branch: str, body: bytes, auth: bool, **_: Any) -> _Reply:
        r = self._writable(repo, auth)
        if branch.startswith("refs/") or not re.fullmatch(r"[\w./-]+", branch):
            raise HubError(400, f"Invalid reference for a branch: {branch}")
        if branch in r.branches:
            raise HubError(409, "Reference already exists")
        start = self._commit_at(r, str(self._payload(body).get("startingPoint") or "main"))
        r.branches[branch] = start.oid
        return _json({})

    def _h_preupload(self, repo: str, rev: str, body: bytes, auth: bool, **_: Any) -> _Reply:
        r = self._writable(repo, auth)
        tree = self._commit_at(r, rev).tree
        self.stats["preuploads"] += 1
        out = []
        for item in self._payload(body).get("files", []):
            path, size = str(item["path"]), int(item["size"])
            sample = base64.b64decode(item.get("sample") or "")
            answer: dict[str, Any] = {"path": path, "shouldIgnore": False,
                                      "uploadMode": "lfs" if self.lfs_rule(path, size, sample) else "regular"}
            if path in tree:
                answer["oid"] = tree[path].oid
            out.append(answer)
        return _json({"files": out, "commitOid": self._commit_at(r, rev).oid})

    def _h_lfs_batch(self, repo: str, body: bytes, auth: bool, **_: Any) -> _Reply:
        r = self._writable(repo, auth)
        data = self._payload(body)
        if data.get("operation") != "upload":
            raise HubError(400, "FakeHub only implements the LFS upload operation")
        objects = []
        for obj in data.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                objects.append({"oid": str(oid), "size": int(size or 0),
                                "error": {"code": 422, "message": "Invalid oid or size"}})
            elif oid in r.lfs_objects:
                objects.append({"oid": oid, "size": size})  # already stored: no actions
            else:
                base = f"{self.endpoint}/__lfs/{repo}/{oid}"
                objects.append({"oid": oid, "size": size, "authenticated": True, "actions": {
                    "upload": {"href": f"{base}?sig={self._signature(repo, oid)}", "expires_in": 3600},
                    "verify": {"href": f"{base}/verify", "expires_in": 3600}}})
        return _json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                     content_type="application/vnd.git-lfs+json")

    def _h_lfs_put(self, repo: str, oid: str, body: bytes, auth: bool, query: dict[str, list[str]],
                   **_: Any) -> _Reply:
        if not (auth or hmac.compare_digest(query.get("sig", [""])[0], self._signature(repo, oid))):
            raise HubError(401, "Invalid or missing upload signature")
        r = self._readable(repo, True)
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match its sha256 oid")
        r.lfs_objects[oid] = body
        self.stats["lfs_uploads"] += 1
        self.stats["lfs_bytes"] += len(body)
        return _Reply(200, b"", {"ETag": f'"{oid}"'})

    def _h_lfs_verify(self, repo: str, oid: str, body: bytes, auth: bool, **_: Any) -> _Reply:
        r = self._writable(repo, auth)
        size = self._payload(body).get("size")
        if oid not in r.lfs_objects or (size is not None and size != len(r.lfs_objects[oid])):
            raise HubError(404, f"LFS object {oid} not found")
        return _json({"message": "Object verified"})

    def _h_commit(self, repo: str, rev: str, body: bytes, auth: bool, query: dict[str, list[str]],
                  **_: Any) -> _Reply:
        r = self._writable(repo, auth)
        create_pr = query.get("create_pr", ["0"])[0].lower() in ("1", "true")
        if rev not in r.branches:
            self._commit_at(r, rev)  # 404 RevisionNotFound for unknown revs
            raise HubError(400, f"Cannot commit to {rev}: not a branch")
        try:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        except ValueError:
            raise HubError(400, "Invalid ndjson body") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first ndjson line must be the header")
        header = lines[0].get("value") or {}
        head = self._commit_at(r, rev)
        parent = header.get("parentCommit")
        if parent:
            base = self._commit_at(r, parent)
            if not create_pr and base.oid != head.oid:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            head = base
        tree = dict(head.tree)
        counts: Counter[str] = Counter()
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value") or {}
            path = str(value.get("path", ""))
            if not path or path.startswith("/") or ".." in path.split("/") or path.startswith(".git/"):
                raise HubError(400, f"Invalid path: {path!r}")
            if key == "file":
                data = base64.b64decode(value.get("content", "")) if value.get("encoding") == "base64" \
                    else str(value.get("content", "")).encode()
                if len(data) > MAX_REGULAR_SIZE:
                    raise HubError(400, f"{path} is larger than 10 MiB: use LFS")
                tree[path] = _Blob(data, False)
                counts["regular_uploads"] += 1
            elif key == "lfsFile":
                oid = value.get("oid")
                if oid not in r.lfs_objects:
                    raise HubError(400, f"LFS pointer for {path} points to an object that was not uploaded")
                tree[path] = _Blob(r.lfs_objects[oid], True)
                counts["lfs_files_committed"] += 1
            elif key == "deletedFile":
                if tree.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                folder = path.rstrip("/") + "/"
                doomed = [p for p in tree if p.startswith(folder)]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del tree[p]
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        pr_url = None
        branch = rev
        if create_pr:
            r.prs += 1
            branch = f"refs/pr/{r.prs}"
            pr_url = f"{self.endpoint}/{repo}/discussions/{r.prs}"
        commit = self._add_commit(r, branch, head.oid, tree, str(header.get("summary") or "commit"))
        self.stats.update(counts)
        self.stats["commits"] += 1
        return _json({"success": True, "commitOid": commit.oid, "commitUrl": f"{self.endpoint}/{repo}/commit/"
                      f"{commit.oid}", "pullRequestUrl": pr_url, "hookOutput": ""})

    def _h_resolve(self, method: str, repo: str, rev: str, path: str, auth: bool, headers: dict[str, str],
                   **_: Any) -> _Reply:
        r = self._readable(repo, auth)
        commit = self._commit_at(r, rev)
        blob = commit.tree.get(path)
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        data, size = blob.data, len(blob.data)
        out = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.oid}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream",
                   "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}"}
        if blob.lfs:
            out.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(size)})
        status, start, end = 200, 0, size
        if "range" in headers:
            start, end = _parse_range(headers["range"], size, out)
            status = 206
            out["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        self.stats["heads" if method == "HEAD" else "downloads"] += 1
        return _Reply(status, b"" if method == "HEAD" else data[start:end], out, content_length=end - start)


def _parse_range(value: str, size: int, headers: dict[str, str]) -> tuple[int, int]:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` -> half-open [start, end); 416 otherwise."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) + 1, size) if last else size
        else:
            start, end = max(size - int(last), 0), size
        if start < end:
            return start, end
    raise HubError(416, "Requested range not satisfiable", headers={**headers, "Content-Range": f"bytes */{size}"})


def _card_data(readme: _Blob | None) -> dict[str, Any] | None:
    if readme is None:
        return None
    match = re.match(rb"^---\s*\n(.*?)\n---\s*(?:\n|$)", readme.data, re.S)
    if not match:
        return None
    try:
        import yaml

        meta = yaml.safe_load(match.group(1).decode("utf-8"))
        return json.loads(json.dumps(meta, default=str)) if isinstance(meta, dict) else None
    except Exception:  # hostile README: no card data, like a Hub that failed to parse it
        return None
