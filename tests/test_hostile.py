"""Hostile input: corrupted tickets (--no-verify), hostile Hub repos, and bad arguments to every command.

Hub tests drive the unmodified huggingface_hub client over real sockets against
tests/hubserver.py's FakeHub (repos seeded directly with ``put_files``, no validation).
"""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import pytest
import typer

from ticketfmt import Ticket
from ticketfmt.errors import NotATicketRepoError
from ticketfmt.format.spec import read_header

try:
    from tests.hubserver import FakeHub
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from hubserver import FakeHub  # type: ignore[no-redef]

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

RESULT = {"dataset": "cifar10", "split": "test", "metric": "top1", "value": 0.9, "epochs": 1}


def one_line_error(res, *needles: str) -> str:
    """Exit 2, exactly one line on stderr starting with 'error:', holding every needle, no traceback."""
    assert res.code == 2, (res.code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


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
    both("pull", "org/damaged", "-o", tmp_path / "pulled.ticket")
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
        assert cli("pull", repo, "-o", out, "--no-verify").code == 0
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
    ("new",): None,
    ("models",): None,
    ("prune",): [[MISSING, "-o", "o.ticket", "--sparsity", "0.5"],
                 ["{good}", "-o", "o.ticket", "--like", MISSING]],
    ("info",): [[MISSING]],
    ("convert",): [["--from", MISSING, "--to", "cifar_resnet20", "-o", "o.ticket"],
                   ["--from", MISSING, "--to", "cifar_resnet20,cifar_resnet32"]],  # outputs beside the source
    ("find",): [["cifar_resnet8", "-d", "imagefolder:no-such-dir", "--levels", "1", "-o", "run"]],
    ("verify",): [[MISSING, "-d", "cifar10"]],
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
