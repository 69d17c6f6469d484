"""Hostile input: corrupted tickets (--no-verify), hostile Hub repos, and bad arguments to every command.

Hub tests drive the unmodified huggingface_hub client over real sockets against
tests/hubserver.py's FakeHub (repos seeded directly with ``put_files``, no validation).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import tempfile
import time
from pathlib import Path

import pytest
import typer

from ticketfmt import Ticket, prune
from ticketfmt.errors import NotATicketRepoError, TicketError, TicketFormatError
from ticketfmt.format.spec import read_header

from clierrors import one_line_error

try:
    from tests.hubserver import FakeHub
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from hubserver import FakeHub  # type: ignore[no-redef]

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

RESULT = {"dataset": "cifar10", "split": "test", "metric": "top1", "value": 0.9, "epochs": 1}


@pytest.fixture
def good(r8_ticket: Ticket, tmp_path: Path) -> Path:
    path = tmp_path / "good.ticket"
    r8_ticket.replace(results=[RESULT]).save(path)
    return path


def flip_payload_bit(src: Path, dst: Path) -> Path:
    """A copy of ``src`` with the lowest mantissa bit of one stored float flipped (still a valid ticket otherwise)."""
    header = read_header(src)
    name = next(n for n, t in header.tensors.items() if n.startswith("init/") and t.dtype == "F32" and t.end > t.start)
    data = bytearray(src.read_bytes())
    data[header.data_offset + header.tensors[name].start] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def files_under(root: Path, skip: Path | None = None) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and not (skip is not None and skip in p.parents)}


# -- 1. --no-verify ------------------------------------------------------------------------------------
def test_a_flipped_payload_bit_fails_every_loading_command_unless_no_verify(
        cli, hub: FakeHub, good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = flip_payload_bit(good, tmp_path / "bad.ticket")
    with pytest.raises(Exception, match="corrupted"):
        Ticket.load(bad)
    Ticket.load(bad, verify=False)

    def both(*args: str | Path) -> None:
        one_line_error(cli(*args), "corrupted")
        res = cli(*args, "--no-verify")
        assert res.code == 0, (args, res.stderr)

    both("prune", bad, "-o", tmp_path / "p.ticket", "--sparsity", "0.6")
    both("prune", good, "-o", tmp_path / "p2.ticket", "--like", bad)
    from ticketfmt import build_model

    r14 = Ticket.from_model(build_model("cifar_resnet14", seed=0), "cifar_resnet14")
    for encoding in ("packed", "dense"):  # the packed fast path and the Ticket path
        r14.save(tmp_path / f"r14-{encoding}.ticket", encoding=encoding)
        bad14 = flip_payload_bit(tmp_path / f"r14-{encoding}.ticket", tmp_path / f"bad14-{encoding}.ticket")
        both("convert", "--from", bad14, "--to", "cifar_resnet20", "-o", tmp_path / f"c-{encoding}.ticket",
             "--encoding", encoding)
    both("card", bad)
    # Publishing is never unchecked: push has no --no-verify, and a corrupted file is refused.
    one_line_error(cli("push", bad, "org/pushed"), "corrupted")
    assert cli("push", bad, "org/pushed", "--no-verify").code == 2
    hub.put_files("org/damaged", {"ticket.safetensors": bad.read_bytes()})
    both("pull", "org/damaged", "-o", tmp_path / "pulled.ticket", "--verbatim")
    assert (tmp_path / "pulled.ticket").read_bytes() == bad.read_bytes()

    # verify: loading is the first heavy step; past it, a stub stands in for the training.
    import ticketfmt.train
    from ticketfmt.errors import DataError

    def stub(ticket: Ticket, *args: object, **kwargs: object) -> None:
        raise DataError("stub trainer reached")

    monkeypatch.setattr(ticketfmt.train, "verify", stub)
    one_line_error(cli("verify", bad, "-d", "cifar10"), "corrupted")
    one_line_error(cli("verify", bad, "-d", "cifar10", "--no-verify"), "stub trainer reached")


# -- 2. hostile Hub repos -----------------------------------------------------------------------------
@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty working folder with the temporary folder under tmp_path, so every write is seen."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    return tmp_path


def resolved(hub: FakeHub) -> set[str]:
    """The files the client asked for (HEAD or GET .../resolve/<rev>/<file>)."""
    return {path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in hub.requests if "/resolve/" in path}


def downloaded(hub: FakeHub) -> set[str]:
    """The files whose content was fetched (GET .../resolve/<rev>/<file>)."""
    return {path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in hub.requests
            if method == "GET" and "/resolve/" in path}


def check_pull_refused(cli, hub: FakeHub, sandbox: Path, repo: str, *needles: str) -> str:
    """`ticket pull` and from_pretrained refuse ``repo`` in one line and write nothing outside the cache."""
    cache = sandbox / "hf-cache"
    before = files_under(sandbox, skip=cache)
    out = sandbox / "out" / "x.ticket"
    hub.requests.clear()
    line = one_line_error(cli("pull", repo, "-o", out), *needles)
    with pytest.raises(NotATicketRepoError):
        Ticket.from_pretrained(repo)
    assert not out.exists() and not out.parent.exists()
    assert files_under(sandbox, skip=cache) == before  # nothing outside the cache, no temporary files left
    assert resolved(hub) <= {"ticket.safetensors", "config.json"}  # only the expected files are ever fetched
    return line


def test_a_ticket_safetensors_that_is_not_a_ticket(cli, hub: FakeHub, sandbox: Path) -> None:
    import torch
    from safetensors.torch import save_file

    plain = sandbox / "tmp" / "plain.safetensors"
    save_file({"w": torch.zeros(4, 4)}, str(plain))
    hub.put_files("org/plain", {"ticket.safetensors": plain.read_bytes()})
    plain.unlink()
    check_pull_refused(cli, hub, sandbox, "org/plain", "org/plain", "is not a ticket file")
    hub.put_files("org/text", {"ticket.safetensors": b"<html>not found</html>"})
    check_pull_refused(cli, hub, sandbox, "org/text", "is not a ticket file")
    hub.put_files("org/empty", {"ticket.safetensors": b""})
    check_pull_refused(cli, hub, sandbox, "org/empty", "is not a ticket file")


def test_a_config_json_that_disagrees_with_the_ticket_is_an_error(cli, hub: FakeHub, good: Path, sandbox: Path,
                                                                  tmp_path: Path) -> None:
    from ticketfmt.hub import push

    push(good, "org/r8")
    config = json.loads(hub.files("org/r8")["config.json"])
    for repo, change in [("org/arch", {"architecture": "cifar_resnet20"}), ("org/classes", {"num_classes": 100}),
                         ("org/sha", {"ticketfmt": {**config["ticketfmt"], "sha256": "0" * 64}})]:
        hub.put_files(repo, {"ticket.safetensors": good.read_bytes(),
                             "config.json": json.dumps({**config, **change}).encode()})
        line = check_pull_refused(cli, hub, sandbox, repo, "config.json disagrees with ticket.safetensors",
                                  "source of truth")
        assert next(iter(change)) in line
        # --no-verify (verify=False) skips the check: the ticket file is used as it is.
        out = sandbox / f"{repo.split('/')[1]}.ticket"
        assert cli("pull", repo, "-o", out, "--no-verify", "--verbatim").code == 0
        assert out.read_bytes() == good.read_bytes()
        assert Ticket.from_pretrained(repo, verify=False).arch == "cifar_resnet8"
    # The consistent repo pulls; a config that states nothing (or cannot be read) is ignored.
    assert cli("pull", "org/r8", "-o", sandbox / "ok.ticket").code == 0
    assert resolved(hub) >= {"config.json"}
    hub.put_files("org/bare", {"ticket.safetensors": good.read_bytes(), "config.json": b'{"library_name": "x"}'})
    assert cli("pull", "org/bare", "-o", sandbox / "bare.ticket").code == 0
    # The same rule holds for a folder written by save_pretrained.
    folder = tmp_path / "folder"
    Ticket.load(good).save_pretrained(folder)
    Ticket.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "num_classes": 7}))
    with pytest.raises(NotATicketRepoError, match="disagrees"):
        Ticket.from_pretrained(folder)


def test_an_oversized_header_or_file_is_refused(cli, hub: FakeHub, good: Path, sandbox: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    claim = struct.pack("<Q", 200_000_000) + b'{"__metadata__":{}}'
    hub.put_files("org/header", {"ticket.safetensors": claim})
    check_pull_refused(cli, hub, sandbox, "org/header", "exceeds", "limit")
    huge = struct.pack("<Q", (1 << 64) - 1) + b"x" * 64
    hub.put_files("org/header2", {"ticket.safetensors": huge})
    check_pull_refused(cli, hub, sandbox, "org/header2", "exceeds")
    # A file over the download limit is refused from its reported size, before any byte is fetched.
    monkeypatch.setenv("TICKETFMT_MAX_TICKET_BYTES", str(good.stat().st_size - 1))
    hub.put_files("org/huge", {"ticket.safetensors": good.read_bytes()})
    line = check_pull_refused(cli, hub, sandbox, "org/huge", "over the", "TICKETFMT_MAX_TICKET_BYTES")
    assert "nothing was downloaded" in line
    assert "ticket.safetensors" not in downloaded(hub)
    blobs = sandbox / "hf-cache" / "models--org--huge" / "blobs"
    assert not blobs.exists() or not any(p.stat().st_size >= good.stat().st_size for p in blobs.iterdir())
    monkeypatch.delenv("TICKETFMT_MAX_TICKET_BYTES")
    assert cli("pull", "org/huge", "-o", sandbox / "huge.ticket").code == 0
    # An oversized config.json is not downloaded at all (it states nothing; the ticket file is the truth).
    import ticketfmt.hub.repo

    monkeypatch.setattr(ticketfmt.hub.repo, "MAX_CONFIG_BYTES", 1000)
    hub.put_files("org/big-config", {"ticket.safetensors": good.read_bytes(),
                                     "config.json": json.dumps({"num_classes": 3, "pad": "x" * 5000}).encode()})
    hub.requests.clear()
    assert cli("pull", "org/big-config", "-o", sandbox / "big-config.ticket").code == 0
    assert downloaded(hub) == {"ticket.safetensors"}


HOSTILE_NAMES = ["../evil.ticket", "/etc/ticketfmt-evil", "a/../../b.ticket", "..", "x/../../../evil.pt",
                 "ticket.safetensors/../../evil", "evil\nline.pt", "evil\x1b]0;owned\x07\x1b[2J.pt"]


def test_path_like_file_names_in_the_repo_listing(cli, hub: FakeHub, good: Path, sandbox: Path) -> None:
    hostile = {name: b"\x80\x04pickle" for name in HOSTILE_NAMES}
    hub.put_files("org/paths", hostile)
    line = check_pull_refused(cli, hub, sandbox, "org/paths", "org/paths", "only pickle weights")
    assert "\x1b" not in line and "\\x1b" in line  # a terminal escape in a name is shown escaped, not sent
    # Beside a real ticket: the ticket (and config.json) is fetched and nothing else.
    hub.put_files("org/paths", {"ticket.safetensors": good.read_bytes()})
    cache = sandbox / "hf-cache"
    before = files_under(sandbox, skip=cache)
    hub.requests.clear()
    out = sandbox / "out.ticket"
    res = cli("pull", "org/paths", "-o", out)
    assert res.code == 0, res.stderr
    assert Ticket.from_pretrained("org/paths").arch == "cifar_resnet8"
    assert resolved(hub) <= {"ticket.safetensors", "config.json"}
    assert files_under(sandbox, skip=cache) == before | {out}
    for cached in files_under(cache):
        assert cache in cached.resolve().parents or cached.resolve() == cache
        assert "evil" not in str(cached)
    assert not (sandbox.parent / "evil.ticket").exists() and not Path("/etc/ticketfmt-evil").exists()
    assert not (cache.parent / "b.ticket").exists()


# -- 2b. a Hub that lies (issue 17: items 5-7) -------------------------------------------------------------
class Liar:
    """Wraps FakeHub's resolve route (HEAD and GET of a file) on one instance: headers and bodies that lie."""

    def __init__(self, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
        self.etag: str | None = None  # the ETag (and X-Linked-Etag) every answer states
        self.commit: str | None = None  # the X-Repo-Commit every answer states
        self.body: bytes | None = None  # what GET sends instead of the file (HEAD still states the real size)
        self.any_revision = False  # answer every revision with main's files
        original = hub._h_resolve

        def lying(**kw: object):
            if self.any_revision:
                kw["rev"] = "main"
            reply = original(**kw)
            if self.etag is not None:
                reply.headers["ETag"] = f'"{self.etag}"'
                if "X-Linked-Etag" in reply.headers:
                    reply.headers["X-Linked-Etag"] = f'"{self.etag}"'
            if self.commit is not None:
                reply.headers["X-Repo-Commit"] = self.commit
            if self.body is not None and kw["method"] == "GET":
                reply.body, reply.content_length = self.body, len(self.body)
            return reply

        monkeypatch.setattr(hub, "_h_resolve", lying)


def outside_cache(sandbox: Path) -> set[Path]:
    """Every file under the test's folder but the cache, the temporary folder and the working folder's outputs."""
    return {p for p in sandbox.rglob("*") if "hf-cache" not in p.relative_to(sandbox).parts[:1]}


@pytest.mark.parametrize("lie", ["etag-traversal", "etag-absolute", "etag-not-hex", "commit-traversal",
                                 "revision-traversal"])
def test_a_lying_etag_commit_or_revision_writes_nothing_outside_the_cache(cli, hub: FakeHub, good: Path,
                                                                          sandbox: Path, lie: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    hub.put_files("org/r8", {"ticket.safetensors": good.read_bytes()})
    liar = Liar(hub, monkeypatch)
    revision: list[str] = []
    if lie == "etag-traversal":
        liar.etag = "../../../x/evil-blob"
    elif lie == "etag-absolute":
        liar.etag = str(sandbox / "x" / "evil-blob")
    elif lie == "etag-not-hex":
        liar.etag = "\x1b]0;owned\x07" + "0" * 56
    elif lie == "commit-traversal":
        liar.commit = "../../../x/evil-snapshot"
    else:
        liar.any_revision, revision = True, ["--revision", "../../../x/evil-ref"]
    before = outside_cache(sandbox)
    res = cli("pull", "org/r8", "-o", sandbox / "out.ticket", *revision)
    line = one_line_error(res, "org/r8")
    assert "\x1b" not in line  # what the server said is shown escaped
    assert outside_cache(sandbox) == before and not (sandbox / "x").exists()
    with pytest.raises(TicketError):
        Ticket.from_pretrained("org/r8", revision=revision[1] if revision else None)
    assert outside_cache(sandbox) == before
    blobs = sandbox / "hf-cache" / "models--org--r8" / "blobs"
    assert not blobs.exists() or not any(blobs.iterdir())  # nothing fetched: refused on the HEAD answer


def test_bytes_that_are_not_their_etag_are_never_cached_and_a_poisoned_cache_heals(
        cli, hub: FakeHub, good: Path, r8_ticket: Ticket, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = sandbox / "tmp" / "other.ticket"
    prune(r8_ticket, 0.8).save(other)  # another valid ticket (B), served under A's ETag
    hub.put_files("org/r8", {"ticket.safetensors": good.read_bytes()})
    liar = Liar(hub, monkeypatch)
    liar.body = other.read_bytes()[:good.stat().st_size].ljust(good.stat().st_size, b" ")
    one_line_error(cli("pull", "org/r8", "-o", sandbox / "a.ticket", "--verbatim"), "do not hash to its ETag")
    cache = sandbox / "hf-cache" / "models--org--r8"
    assert not [p for p in cache.rglob("*") if p.is_file() and p.parent.name == "blobs"]
    liar.body = None  # the server is honest again: the right bytes, nothing to heal
    assert cli("pull", "org/r8", "-o", sandbox / "a.ticket", "--verbatim").code == 0
    assert (sandbox / "a.ticket").read_bytes() == good.read_bytes()
    # A cache poisoned by an older client (B's bytes stored as A's blob) is detected, removed and fetched again.
    (blob,) = [p for p in (cache / "blobs").iterdir()]
    blob.write_bytes(other.read_bytes())
    assert cli("pull", "org/r8", "-o", sandbox / "b.ticket", "--verbatim").code == 0
    assert (sandbox / "b.ticket").read_bytes() == good.read_bytes() == blob.read_bytes()
    assert Ticket.from_pretrained("org/r8").file_sha256 == hashlib.sha256(good.read_bytes()).hexdigest()


def test_a_server_that_sends_more_than_it_stated_gets_at_most_that_written(
        cli, hub: FakeHub, good: Path, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ticketfmt.hub.fetch as fetch

    hub.put_files("org/r8", {"ticket.safetensors": good.read_bytes()})
    Liar(hub, monkeypatch).body = b"x" * (4 << 20)  # the HEAD states the real size; the GET sends 4 MB
    written: list[int] = []
    real_fdopen = fetch.os.fdopen

    class Counting:
        def __init__(self, f: object) -> None:
            self.f = f
            written.append(0)

        def write(self, data: bytes) -> int:
            written[-1] += len(data)
            return self.f.write(data)  # type: ignore[attr-defined]

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()  # type: ignore[attr-defined]

    monkeypatch.setattr(fetch.os, "fdopen", lambda fd, mode: Counting(real_fdopen(fd, mode)))
    monkeypatch.setattr(hub._server, "handle_error", lambda *args: None)  # the client hangs up mid-body: no noise
    one_line_error(cli("pull", "org/r8", "-o", sandbox / "a.ticket"), "more than the", "bytes it stated")
    assert written and max(written) <= good.stat().st_size  # never past the stated (and limited) size
    assert not any(p.is_file() for p in (sandbox / "hf-cache").rglob("*") if p.parent.name == "blobs")
    assert not (sandbox / "a.ticket").exists()


# -- 3. every command, bad arguments ---------------------------------------------------------------------
def all_commands() -> list[tuple[str, ...]]:
    """Every command path of the CLI: the root, groups and leaves (e.g. ``("import", "open-lth")``)."""
    from ticketfmt.cli import app, load_commands

    load_commands()
    paths: list[tuple[str, ...]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def leaf_commands() -> list[tuple[str, ...]]:
    paths = all_commands()
    return [p for p in paths if p and not any(q[:len(p)] == p and q != p for q in paths)]


def numeric_parameters() -> dict[tuple[str, ...], list[str]]:
    """For each leaf command, its parameters annotated int or float (from the typer callbacks' signatures)."""
    import typing

    from ticketfmt.cli import app, load_commands

    load_commands()
    found: dict[tuple[str, ...], list[str]] = {}

    def base(hint: object) -> set[object]:
        if typing.get_origin(hint) is typing.Annotated:
            return base(typing.get_args(hint)[0])
        if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            return {t for a in typing.get_args(hint) for t in base(a)}
        return {hint}

    def walk(t: typer.Typer, path: tuple[str, ...]) -> None:
        for c in t.registered_commands:
            assert c.callback is not None
            name = c.name or c.callback.__name__.replace("_", "-")
            hints = typing.get_type_hints(c.callback, include_extras=True)
            found[(*path, name)] = [k for k, h in hints.items() if k != "return" and base(h) & {int, float}]
        for g in t.registered_groups:
            assert g.typer_instance is not None
            walk(g.typer_instance, (*path, g.name or g.typer_instance.info.name))

    walk(app, ())
    return found


MISSING = "no-such-dir/missing.ticket"
# A call of each leaf with a nonexistent input file (None: the command reads no input file).
NONEXISTENT_INPUT: dict[tuple[str, ...], list[list[str]] | None] = {
    ("new",): [["cifar_resnet8", "--weights", MISSING, "-o", "o.ticket"]],
    ("export",): [[MISSING, "--to", "timm", "-o", "model.safetensors"]],
    ("models",): None,
    ("prune",): [[MISSING, "-o", "o.ticket", "--sparsity", "0.5"],
                 ["{good}", "-o", "o.ticket", "--like", MISSING]],
    ("info",): [[MISSING]],
    ("convert",): [["--from", MISSING, "--to", "cifar_resnet20", "-o", "o.ticket"],
                   ["--from", MISSING, "--to", "cifar_resnet20,cifar_resnet32"]],  # outputs beside the source
    ("find",): [["cifar_resnet8", "-d", "imagefolder:no-such-dir", "--levels", "1", "-o", "run"]],
    ("verify",): [[MISSING, "-d", "cifar10"]],
    ("lmc",): [[MISSING, "-d", "cifar10"]],
    ("push",): [[MISSING, "org/x"]],
    ("pull",): None,  # takes a repo id (its failures are covered by the Hub tests)
    ("card",): [[MISSING], [MISSING, "-o", "README.md"]],
    ("import", "open-lth"): [["no-such-dir", "--level", "1", "-o", "o.ticket"]],
}


def test_the_table_covers_every_command() -> None:
    assert set(NONEXISTENT_INPUT) == set(leaf_commands()) == set(numeric_parameters())
    assert "level" in numeric_parameters()[("import", "open-lth")] and "sparsity" in numeric_parameters()[("prune",)]
    assert ("import", "open-lth") in all_commands()


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "ticket")
def test_every_command_refuses_an_unknown_option_in_one_line(cli, path: tuple[str, ...], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    one_line_error(cli(*path, "--no-such-option"), "--no-such-option")
    one_line_error(cli(*path, "--no-such-option", "value", "extra"), "--no-such-option")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", sorted(NONEXISTENT_INPUT), ids=lambda p: " ".join(p))
def test_every_command_refuses_a_nonexistent_input_in_one_line(cli, path: tuple[str, ...], good: Path,
                                                               tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    for args in NONEXISTENT_INPUT[path] or []:
        args = [a.replace("{good}", str(good)) for a in args]
        one_line_error(cli(*path, *args), "no-such-dir")
    assert set(tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("path", leaf_commands(), ids=lambda p: " ".join(p))
def test_every_command_refuses_missing_or_malformed_arguments_in_one_line(cli, path: tuple[str, ...],
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from ticketfmt.cli import app

    monkeypatch.chdir(tmp_path)
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    if any(getattr(p, "required", False) for p in cmd.params):  # type: ignore[attr-defined]
        one_line_error(cli(*path), "Missing")
    numeric = numeric_parameters()[path]
    opts = {p.name: p.opts[0] for p in cmd.params}  # type: ignore[attr-defined]
    for name in numeric:
        one_line_error(cli(*path, opts[name], "not-a-number"), opts[name])
    assert list(tmp_path.iterdir()) == []


# -- 4. bounded work for every input (issue 17: items 1-4, 8, 9) ---------------------------------------------------
def rewrite(src: Path, dst: Path, edit) -> Path:
    """A copy of ``src`` whose header JSON went through ``edit(header)`` (payload unchanged: still sealed)."""
    raw = src.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * ((-len(text)) % 8)
    dst.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    return dst


def set_meta(key: str, value: str):
    return lambda header: header["__metadata__"].__setitem__(key, value)


def set_arch_id(arch_id: str):
    def edit(header: dict) -> None:
        arch = json.loads(header["__metadata__"]["arch"])
        arch["id"] = arch_id
        header["__metadata__"]["arch"] = json.dumps(arch)
    return edit


def bounded(fn, seconds: float = 10.0, megabytes: int = 256):
    """Run ``fn``; assert it took under ``seconds`` and grew peak memory by under ``megabytes``; returns its result.

    The bounds are loose (a loaded test machine); the failures they catch took 20 s to minutes and gigabytes.
    """
    from fuzzing import _peak_rss, _reset_peak_rss, current_rss

    measured = _reset_peak_rss()
    start, t0 = current_rss(), time.perf_counter()
    result = fn()
    seconds_taken = time.perf_counter() - t0
    assert seconds_taken < seconds, seconds_taken
    if measured:
        assert _peak_rss() - start < megabytes << 20, (_peak_rss() - start) >> 20
    return result


HUGE_IDS = ["cifar_resnet-10000000-1-1", "timm/resnet_bottleneck-10000-1-1-1", "cifar_vgg-100000000-1-2-2-2",
            "cifar_vgg-1000000000000-1-2-2-2", "cifar_resnet" + "9" * 5000, "x" * 100_000, "cifar_resnet-257-1-1",
            "torchvision/vgg_bn-17-1-1-1-1", "cifar_resnet6000002"]


@pytest.mark.parametrize("arch_id", HUGE_IDS, ids=lambda a: a[:40])
def test_an_arch_id_that_sizes_a_huge_network_is_refused_in_milliseconds(arch_id: str, cli, good: Path,
                                                                         tmp_path: Path) -> None:
    from ticketfmt.errors import UnknownArchError
    from ticketfmt.zoo import get_arch

    t0 = time.perf_counter()
    with pytest.raises(UnknownArchError) as info:
        get_arch(arch_id)
    # refused before anything is sized: the unbounded version took minutes and gigabytes, so 2 s is a wide margin
    assert time.perf_counter() - t0 < 2.0 and "\n" not in str(info.value) and len(str(info.value)) < 400
    one_line_error(cli("new", arch_id, "-o", tmp_path / "new.ticket"))
    bad = rewrite(good, tmp_path / "bad.ticket", set_arch_id(arch_id))
    with pytest.raises(TicketFormatError):
        bounded(lambda: Ticket.load(bad), seconds=5, megabytes=64)
    one_line_error(bounded(lambda: cli("info", bad), seconds=5, megabytes=64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ticket", "good.ticket"]  # nothing written


@pytest.mark.parametrize("arch_id", ["cifar_resnet-256-256-256", "timm/resnet_bottleneck-64-64-64-64",
                                     "cifar_vgg-16-16-16-16-16"])
def test_a_file_that_cannot_hold_its_arch_is_refused_before_the_arch_is_laid_out(
        arch_id: str, good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ticketfmt.zoo.base as base

    laid_out: list[object] = []
    real = base._layout.__wrapped__

    def spy(spec):
        laid_out.append(spec)
        return real(spec)

    monkeypatch.setattr(base, "_layout", spy)
    bad = rewrite(good, tmp_path / "bad.ticket", set_arch_id(arch_id))
    with pytest.raises(TicketFormatError, match=r"units, each with a prunable weight, but the file masks 10"):
        Ticket.load(bad)
    assert laid_out == []  # refused from the header's counts: nothing was laid out


def test_vgg_stage_lookup_is_arithmetic(tmp_path: Path) -> None:
    from ticketfmt.zoo import get_arch, state_dict_shapes

    for arch_id in ("cifar_vgg-16-16-16-16-16", "torchvision/vgg_bn-1-16-1-16-1", "timm/vgg13"):
        spec = get_arch(arch_id)
        family = spec.family_obj
        for s, convs in enumerate(family.feature_indices(spec)):  # type: ignore[attr-defined]
            for j, i in enumerate(convs):
                assert spec.stage_of(f"features.{i}.weight") == f"stage{s + 1}"
                assert spec.unit_prefixes(s, j)[0] == f"features.{i}."
        t0 = time.perf_counter()
        stages = [spec.stage_of(k) for k in state_dict_shapes(spec)]
        assert time.perf_counter() - t0 < 5.0 and stages[-1] == "head"  # the quadratic lookup took minutes


def test_huge_or_many_shapes_are_refused_from_the_header(cli, good: Path, tmp_path: Path) -> None:
    def entry(shape: list[int]):
        def edit(header: dict) -> None:
            end = max(e["data_offsets"][1] for k, e in header.items() if k != "__metadata__")
            header["init/zz"] = {"dtype": "F32", "shape": shape, "data_offsets": [end, end]}
        return edit

    for name, shape, says in [("rank", [2**62] * 50_000 + [0], "rank 50001 is over 8"),
                              ("wide", [0, 2**70], "is over 2**40"), ("product", [2**30, 2**30, 0], "multiply")]:
        bad = rewrite(good, tmp_path / f"{name}.ticket", entry(shape))
        with pytest.raises(TicketFormatError, match=re.escape(says)):
            bounded(lambda: Ticket.load(bad, verify=False), seconds=5, megabytes=64)
        one_line_error(bounded(lambda: cli("info", bad), seconds=5, megabytes=64), says)

    def zero_layers(count: int):
        def edit(header: dict) -> None:
            layers = json.loads(header["__metadata__"]["layers"])
            end = max(e["data_offsets"][1] for k, e in header.items() if k != "__metadata__")
            for i in range(count):
                layers[f"z{i}.weight"] = {"shape": [0], "kept": 0}
                header[f"mask/z{i}.weight"] = {"dtype": "U8", "shape": [0], "data_offsets": [end, end]}
                header[f"init/z{i}.weight"] = {"dtype": "F32", "shape": [0], "data_offsets": [end, end]}
            header["__metadata__"]["layers"] = json.dumps(layers)
        return edit

    many = rewrite(good, tmp_path / "many.ticket", zero_layers(40_000))  # 80,000 tensors: over the limit
    one_line_error(bounded(lambda: cli("info", many, "--json")), "over the limit of 65536")
    some = rewrite(good, tmp_path / "some.ticket", zero_layers(20_000))  # within the limits, not cifar_resnet8
    for args in (["--json"], ["--plot", tmp_path / "plot.png"], []):
        one_line_error(bounded(lambda: cli("info", some, *args)), "z0.weight", "leaves dense")
    assert not (tmp_path / "plot.png").exists()


@pytest.mark.parametrize("case", ["bigint", "nan", "deep", "duplicate", "long-run"])
def test_hostile_metadata_json_gives_the_format_error_everywhere(case: str, cli, good: Path, tmp_path: Path) -> None:
    provenance = {"bigint": '{"x": ' + "9" * 5000 + "}", "nan": '{"x": NaN}', "deep": '{"a":' + "[" * 980 + "]" * 980 + "}",
                  "duplicate": '{"seed": 0, "seed": 1}', "long-run": '{"x": 1.' + "0" * 41 + "}"}[case]
    bad = rewrite(good, tmp_path / "bad.ticket", set_meta("provenance", provenance))
    with pytest.raises(TicketFormatError, match="metadata 'provenance'"):
        Ticket.load(bad)
    for command in (["info", bad], ["card", bad], ["prune", bad, "-o", tmp_path / "p.ticket", "--sparsity", "0.6"]):
        one_line_error(cli(*command), "metadata 'provenance'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ticket", "good.ticket"]  # nothing written


def test_many_provenance_entries_print_in_linear_time(cli, good: Path, tmp_path: Path) -> None:
    bad = rewrite(good, tmp_path / "bad.ticket", set_meta("provenance", json.dumps({f"k{i:06}": i for i in range(100_000)})))
    res = bounded(lambda: cli("info", bad))
    assert res.code == 0 and "99,950 more entries" in res.stdout
    assert len(res.stdout.splitlines()) < 200
    res = cli("info", bad, "--json")
    assert len(json.loads(res.stdout)["provenance"]) == 100_000  # --json holds all of it


@pytest.mark.parametrize("terminal", [False, True])
def test_info_shows_escapes_and_markup_from_the_file_as_text(cli, good: Path, tmp_path: Path, terminal: bool,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from ticketfmt.cli.app import out

    monkeypatch.setattr(out, "_force_terminal", terminal)
    hostile = {"note": "\x1b[2J\x1b]0;owned\x07\x1b]8;;file:///etc/passwd\x07click\x1b]8;;\x07",
               "[/]": "[link=file:///etc/passwd]x[/link] [bold]b[/]", "tab\there": "new\nline"}

    def edit(header: dict) -> None:
        header["__metadata__"]["provenance"] = json.dumps(hostile)
        results = [{"dataset": "\x1b[31mred", "metric": "[/]", "value": 0.5, "epochs": 1}]
        header["__metadata__"]["results"] = json.dumps(results)

    bad = rewrite(good, tmp_path / "bad.ticket", edit)
    res = cli("info", bad)
    assert res.code == 0, res.stderr
    assert "\x1b]" not in res.stdout and "\x07" not in res.stdout and "\x1b[2J" not in res.stdout
    assert "\x1b[31m" not in res.stdout and "file:///etc/passwd" in res.stdout  # shown as text, never as a link
    assert "\\x1b]0;owned\\x07" in res.stdout and "[/]" in res.stdout and "[link=file:///etc/passwd]" in res.stdout
    assert "not verified" in res.stdout


def test_info_plot_never_replaces_the_ticket_or_an_output_without_force(cli, good: Path, tmp_path: Path) -> None:
    before = good.read_bytes()
    one_line_error(cli("info", good, "--plot", good), "is the ticket being shown")
    one_line_error(cli("info", good, "--plot", good, "--force"), "is the ticket being shown")
    assert good.read_bytes() == before
    existing = tmp_path / "plot.png"
    existing.write_bytes(b"keep")
    one_line_error(cli("info", good, "--plot", existing), "already exists", "--force")
    assert existing.read_bytes() == b"keep"
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "nowhere" / "x.png")
    one_line_error(cli("info", good, "--plot", dangling), "already exists")
    assert not (tmp_path / "nowhere").exists()
    assert cli("info", good, "--plot", existing, "--force").code == 0 and existing.read_bytes() != b"keep"


def test_structure_aware_fuzz_cases_stay_within_the_bounds(r8_ticket: Ticket, tmp_path: Path) -> None:
    """100 structure-aware cases at fuzzing.SCALE 1 (test_fuzz runs 2,000 at 0.2): each a format error or a valid
    load, each under 10 s and 256 MB of peak memory growth (bench/fuzz.py measures 100,000 at 10x the sizes)."""
    from fuzzing import measure_case

    originals = []
    for i, (ticket, encoding) in enumerate([(r8_ticket, "packed"), (prune(r8_ticket, 0.9), "dense")]):
        ticket.save(tmp_path / f"{i}.ticket", encoding=encoding)
        originals.append((tmp_path / f"{i}.ticket").read_bytes())
    worst_time, worst_memory = 0.0, 0
    for seed in range(100):
        outcome, _, memory, cpu = measure_case(seed, originals, tmp_path / "case.ticket", structured=True)
        assert outcome in ("error", "loaded")
        worst_time, worst_memory = max(worst_time, cpu), max(worst_memory, memory)  # CPU time: the machine is shared
    assert worst_time < 10 and worst_memory < 256 << 20, (worst_time, worst_memory)


# -- 5. outputs: no-clobber publish, every output checked first, read-only folders (issue 17, item 9) ---------------
def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_writers_without_force_exactly_one_wins(tmp_path: Path) -> None:
    """Writers that all found the output missing publish at once: one wins, the others get the --force error."""
    import threading

    from ticketfmt.errors import OutputExistsError
    from ticketfmt.format.atomic import atomic_write

    out, writers = tmp_path / "out.bin", 6
    ready = threading.Barrier(writers, timeout=60)
    results: dict[int, object] = {}

    def chunks(i: int):
        yield b"writer %d" % i
        ready.wait()  # every writer has its temporary file written before any publishes

    def write(i: int) -> None:
        try:
            atomic_write(out, chunks(i), force=False)
            results[i] = "won"
        except OutputExistsError as e:
            results[i] = str(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    winners = [i for i, r in results.items() if r == "won"]
    assert len(results) == writers and len(winners) == 1, results
    assert out.read_bytes() == b"writer %d" % winners[0]
    for i, r in results.items():
        if i != winners[0]:
            assert "already exists" in str(r) and "pass --force" in str(r) and "\n" not in str(r), r
    assert _temporaries(tmp_path) == []
    atomic_write(out, [b"forced"], force=True)  # --force replaces
    assert out.read_bytes() == b"forced" and _temporaries(tmp_path) == []


def test_two_commands_racing_for_one_output_without_force(good: Path, tmp_path: Path, monkeypatch) -> None:
    """Two `ticket prune -o same` both pass the existence check; publishing refuses the second (exit 2, no temp)."""
    import threading

    from ticketfmt.cli import main
    from ticketfmt.format import atomic

    ready, publish = threading.Barrier(2, timeout=60), atomic._publish

    def publish_together(tmp: str, target: Path, replace: bool) -> None:
        ready.wait()  # both commands have checked the output and written their file
        publish(tmp, target, replace)

    monkeypatch.setattr(atomic, "_publish", publish_together)
    out, codes = tmp_path / "race.ticket", []

    def command(sparsity: str) -> None:
        try:
            main(["prune", str(good), "--sparsity", sparsity, "-o", str(out)])
        except SystemExit as e:
            codes.append(e.code)

    threads = [threading.Thread(target=command, args=(s,)) for s in ("0.6", "0.7")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(codes) == [0, 2], codes
    assert Ticket.load(out).sparsity in (pytest.approx(0.6, abs=0.01), pytest.approx(0.7, abs=0.01))
    assert _temporaries(tmp_path) == []


def test_card_checks_every_output_before_writing_any(cli, good: Path, tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "density.png").write_bytes(b"keep")
    one_line_error(cli("card", good, "-o", folder / "README.md"), str(folder / "density.png"), "--force")
    assert sorted(p.name for p in folder.iterdir()) == ["density.png"] and (folder / "density.png").read_bytes() == b"keep"
    assert cli("card", good, "-o", folder / "README.md", "--no-plot").code == 0  # no plot: density.png is no output
    assert (folder / "density.png").read_bytes() == b"keep"
    one_line_error(cli("card", good, "-o", folder / "README.md"), "already exists", "--force")
    assert cli("card", good, "-o", folder / "README.md", "--force").code == 0
    assert (folder / "density.png").read_bytes().startswith(b"\x89PNG")
    one_line_error(cli("card", good, "-o", folder / "density.png", "--force"), "would be its own plot")


@pytest.mark.parametrize("command", ["card", "prune"])
def test_a_dangling_symlink_output_is_refused_without_force(command: str, cli, good: Path, tmp_path: Path) -> None:
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere" / "target")
    args = ("card", good, "-o", link) if command == "card" else ("prune", good, "--sparsity", "0.6", "-o", link)
    one_line_error(cli(*args), str(link), "already exists", "--force")
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
    assert _temporaries(tmp_path) == []


@pytest.mark.parametrize("code", ["EACCES", "EROFS"])
def test_a_read_only_folder_is_reported_for_the_output_not_the_temporary(code: str, cli, good: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    import errno
    import os

    from ticketfmt.format import atomic

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if code == "EROFS" or os.access(folder, os.W_OK):  # root ignores the mode: fail like the kernel would
        def refuse(*args, dir: str, prefix: str, suffix: str, **kwargs):  # noqa: A002
            number = getattr(errno, code)
            raise OSError(number, os.strerror(number), os.path.join(dir, prefix + "k2j4x" + suffix))
        monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    out = folder / "out.ticket"
    try:
        line = one_line_error(cli("prune", good, "--sparsity", "0.6", "-o", out), f"cannot write {out}",
                              "read-only", "choose another -o")
        assert ".tmp" not in line
        with pytest.raises(PermissionError, match="read-only"):  # the Python API: a PermissionError too
            Ticket.load(good).save(out)
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


# -- 6. values that cannot be trained on (issue 17, item 10) -----------------------------------------------------
FIND = ["find", "cifar_resnet8", "-d", "cifar10-mini", "--levels", "1", "--subset", "128", "--epochs", "1",
        "--batch-size", "64", "--rewind", "0"]


@pytest.mark.parametrize("args, says", [
    (["--warmup", "inf"], "--warmup"), (["--warmup", "nan"], "--warmup"), (["--milestones", "inf"], "--milestones"),
    (["--milestones", "nan"], "--milestones"), (["--milestones", "1,x"], "--milestones"),
    (["--seed", str(2**64)], "--seed"), (["--seed", "-1"], "--seed"), (["--lr", "inf"], "--lr"),
    (["--lr", "nan"], "--lr"), (["--lr", "-inf"], "--lr"), (["--epochs", "1000000000"], "at most 10000 epochs"),
    (["--weight-decay", "inf"], "--weight-decay"), (["--momentum", "nan"], "--momentum")],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_untrainable_options_are_refused_before_any_work(args: list[str], says: str, cli, good: Path,
                                                          tmp_path: Path) -> None:
    one_line_error(cli(*FIND, *args, "-o", tmp_path / "run"), says)
    one_line_error(cli("verify", good, "-d", "cifar10-mini", *args, "-o", tmp_path / "v.ticket"), says)
    assert list(tmp_path.iterdir()) == [good]  # nothing written, no run folder


def test_seeds_beyond_64_bits_are_refused_by_every_seeded_command(cli, good: Path, tmp_path: Path) -> None:
    one_line_error(cli("new", "cifar_resnet8", "--seed", str(2**64), "-o", tmp_path / "n.ticket"), "--seed")
    one_line_error(cli("prune", good, "--sparsity", "0.5", "--method", "random", "--seed", str(2**64),
                       "-o", tmp_path / "p.ticket"), "--seed")
    one_line_error(cli("lmc", good, "-d", "cifar10-mini", "--seed", str(2**64), "-o", tmp_path / "l.ticket"), "--seed")
    assert cli("new", "cifar_resnet8", "--seed", str(2**63 - 1), "-o", tmp_path / "n.ticket").code == 0


@pytest.mark.parametrize("field, value, says", [
    ("epochs", 1e9, "recipe field 'epochs' must be an integer in [1, 10000]"),
    ("epochs", 10**9, "recipe field 'epochs' must be an integer in [1, 10000]"),
    ("lr", "0.1", "recipe field 'lr' must be a finite number > 0, got '0.1'"),
    ("milestones", ["x"], "recipe field 'milestones' must be increasing epochs"),
    ("milestones", "80,120", "recipe field 'milestones' must be a list"),
    ("batch_size", True, "recipe field 'batch_size'"), ("nesterov", "yes", "recipe field 'nesterov'")])
def test_a_recipe_read_from_a_file_is_validated_like_cli_input(field: str, value: object, says: str, cli,
                                                               r8_ticket: Ticket, tmp_path: Path) -> None:
    from ticketfmt.train.recipes import RECIPES, Recipe

    record = {**RECIPES["cifar_resnet"].to_json(), field: value}
    path = tmp_path / "hostile.ticket"
    r8_ticket.replace(provenance={"method": "imp", "recipe": record, "seed": 0}).save(path)
    one_line_error(cli("verify", path, "-d", "cifar10-mini", "--subset", "64", "-o", tmp_path / "v.ticket"),
                   says, "the recipe in the provenance of", str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.ticket"]  # refused before any training
    with pytest.raises(TicketError, match=re.escape(f"the recipe in x.json: {says}")):
        Recipe.from_json(record, source="x.json")


@pytest.mark.parametrize("field", ["lr", "warmup_epochs", "gamma", "weight_decay", "milestones"])
@pytest.mark.parametrize("value", [float("inf"), float("nan")], ids=["inf", "nan"])
def test_a_recipe_record_with_inf_or_nan_is_refused(field: str, value: float) -> None:
    """JSON in a ticket cannot hold them (strict JSON); a record built in Python can: refused the same way."""
    from ticketfmt.train.recipes import RECIPES, Recipe

    record = {**RECIPES["cifar_resnet"].to_json(), field: [80, value] if field == "milestones" else value}
    with pytest.raises(TicketError, match=f"recipe field '{field}'"):
        Recipe.from_json(record, source="x.json")


def test_a_seed_read_from_a_file_is_validated(cli, r8_ticket: Ticket, tmp_path: Path) -> None:
    path = tmp_path / "seed.ticket"
    r8_ticket.replace(provenance={"method": "imp", "seed": 2**64}).save(path)
    one_line_error(cli("verify", path, "-d", "cifar10-mini", "--subset", "64"), "seed 18446744073709551616",
                   "--seed 0")


def test_training_stops_at_the_first_non_finite_loss(cli, tmp_path: Path) -> None:
    """lr 1e30: step 0 trains, step 1's loss is not finite; the run stops there and says so (not 'bad init')."""
    out = tmp_path / "run"
    res = cli(*FIND, "--lr", "1e30", "-o", out)
    assert res.code == 2 and "Traceback" not in res.stderr, res.stderr
    line = res.stderr.strip().splitlines()[-1]  # after the plan and the progress lines
    assert line.startswith("error: training stopped: the loss became NaN or infinite at step 1 (level 0, epoch 1, "
                           "lr 1e+29)") and "lower the learning rate" in line, line
    assert "holds NaN" not in res.stderr  # not blamed on the weights or the init
    assert not list(out.glob("level-*.ticket"))  # nothing trained after the bad step was written


# -- 7. the spec (issue 17, "The spec, v1.1"): a plain safetensors user decodes a packed file from its metadata ------
def test_the_spec_metadata_key_lets_a_plain_safetensors_user_decode_a_packed_file(r8_ticket: Ticket,
                                                                                   tmp_path: Path) -> None:
    import numpy as np
    from safetensors import safe_open

    path = tmp_path / "t.ticket"
    r8_ticket.save(path, encoding="packed")
    with safe_open(str(path), framework="numpy") as f:  # no ticketfmt below this line
        meta = f.metadata()
        note, layers = meta["spec"], json.loads(meta["layers"])
        assert "docs/SPEC.md" in note and "numpy.packbits" in note and "most significant bit first" in note
        for key, info in layers.items():
            shape, mask, values = info["shape"], f.get_tensor(f"mask/{key}"), f.get_tensor(f"init/{key}")
            w = np.zeros(shape, values.dtype)  # the note's recipe, verbatim
            w[np.unpackbits(mask, count=int(np.prod(shape))).reshape(shape) == 1] = values
            assert np.array_equal(w, (r8_ticket.init[key] * r8_ticket.masks[key]).numpy()), key
    r8_ticket.save(tmp_path / "d.ticket", encoding="dense")
    with safe_open(str(tmp_path / "d.ticket"), framework="numpy") as f:
        assert "BOOL" in f.metadata()["spec"] and "+0.0 where the mask is 0" in f.metadata()["spec"]
