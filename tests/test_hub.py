"""Hub sharing: push, pull, from_pretrained, cards, errors (apply_masks and open_lth import: test_interop.py).

Every Hub test drives the unmodified huggingface_hub client over real sockets against
tests/hubserver.py's FakeHub (no mocking of huggingface_hub functions).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import huggingface_hub
from huggingface_hub import ModelCard

from ticketfmt import Ticket, build_model, prune
from ticketfmt.format.spec import read_header
from ticketfmt.errors import HubAuthError, HubNotFoundError, HubOfflineError, NotATicketRepoError, \
    UnverifiedTicketError

from clierrors import one_line_error

try:
    from tests.hubserver import FakeHub
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from hubserver import FakeHub  # type: ignore[no-redef]

# huggingface_hub uploads LFS content with httpx2's deprecated `data=<file>`.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

RESULT = {"dataset": "cifar10", "split": "test", "metric": "top1", "value": 0.9123, "epochs": 160, "protocol": "full"}
IMP = {"method": "imp", "level": 3, "rate": 0.2, "rewind": "1000it", "dataset": "cifar10",
       "recipe": {"name": "cifar_resnet", "lr": 0.1}, "seed": 0}


@pytest.fixture(scope="module")
def base_ticket() -> Ticket:
    ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8", provenance=IMP)
    return prune(ticket, 0.5, method="magnitude")


@pytest.fixture
def verified(base_ticket: Ticket, tmp_path: Path) -> Path:
    path = tmp_path / "r8.ticket"
    base_ticket.replace(results=[RESULT]).save(path)
    return path


@pytest.fixture
def unverified(base_ticket: Ticket, tmp_path: Path) -> Path:
    path = tmp_path / "r8-unverified.ticket"
    base_ticket.save(path)
    return path


def payload(path: Path) -> bytes:
    """A safetensors file's tensor bytes (everything after the header)."""
    data = path.read_bytes()
    return data[8 + int.from_bytes(data[:8], "little"):]


def resolved(hub: FakeHub) -> set[str]:
    """The files the client asked for (HEAD or GET .../resolve/<rev>/<file>)."""
    return {path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in hub.requests if "/resolve/" in path}


# -- push and pull ----------------------------------------------------------------------------------------
def test_push_then_pull_is_byte_identical_and_a_repush_uploads_nothing(hub: FakeHub, cli, verified: Path,
                                                                      tmp_path: Path) -> None:
    res = cli("push", verified, "org/r8-ticket")
    assert res.code == 0, res.stderr
    assert res.stdout.strip().startswith(f"{hub.endpoint}/org/r8-ticket/commit/")
    files = hub.files("org/r8-ticket")
    assert set(files) == {".gitattributes", "ticket.safetensors", "config.json", "density.png", "README.md",
                          "model.safetensors.index.json", ".eval_results/ticketfmt-cifar10-test-top1.yaml"}
    assert files["ticket.safetensors"] == verified.read_bytes()
    assert hub.is_lfs("org/r8-ticket", "ticket.safetensors")  # the ticket takes the LFS path
    assert files["density.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert hub.stats["commits"] == 1  # one commit for all the files
    assert hub.stats["lfs_uploads"] == 2 and hub.stats["regular_uploads"] == 4
    assert hub.token not in res.stdout + res.stderr

    before = dict(hub.stats)
    again = cli("push", verified, "org/r8-ticket")
    assert again.code == 0, again.stderr
    assert "up to date" in again.stderr and "warning" not in again.stderr  # the same card is not "kept"
    for key in ("commits", "lfs_uploads", "regular_uploads", "lfs_bytes"):
        assert hub.stats[key] == before.get(key, 0), key  # nothing uploaded, no commit

    hub.requests.clear()
    out = tmp_path / "pulled.ticket"
    res = cli("pull", "org/r8-ticket", "-o", out)
    assert res.code == 0, res.stderr
    assert resolved(hub) == {"ticket.safetensors", "config.json"}  # only the expected files are fetched
    # The pulled file records where it came from; its tensors are the published ones, byte for byte.
    pulled, original = Ticket.load(out), Ticket.load(verified)
    assert pulled.provenance["hub"] == {"repo_id": "org/r8-ticket", "revision": hub.head("org/r8-ticket"),
                                        "sha256": hashlib.sha256(verified.read_bytes()).hexdigest()}
    assert {k: v for k, v in pulled.provenance.items() if k != "hub"} == original.provenance
    assert payload(out) == payload(verified)
    assert read_header(out).metadata["payload_sha256"] == read_header(verified).metadata["payload_sha256"]
    one_line_error(cli("pull", "org/r8-ticket", "-o", out), "already exists", "--force")
    assert cli("pull", "org/r8-ticket", "-o", out, "--force", "--verbatim").code == 0
    assert out.read_bytes() == verified.read_bytes()  # --verbatim: the published file itself


def test_revision_pinning_branch_and_pr(hub: FakeHub, cli, verified: Path, base_ticket: Ticket,
                                        tmp_path: Path) -> None:
    assert cli("push", verified, "org/r8").code == 0
    first = hub.head("org/r8")
    v2 = tmp_path / "v2.ticket"
    prune(base_ticket, 0.8).replace(results=[RESULT]).save(v2)
    assert cli("push", v2, "org/r8").code == 0
    old = tmp_path / "old.ticket"
    assert cli("pull", "org/r8", "-o", old, "--revision", first, "--verbatim").code == 0
    assert old.read_bytes() == verified.read_bytes()
    assert Ticket.from_pretrained("org/r8", revision=first).sparsity == pytest.approx(0.5, abs=1e-4)
    assert Ticket.from_pretrained("org/r8").sparsity == pytest.approx(0.8, abs=1e-4)

    assert cli("push", verified, "org/r8", "--revision", "dev").code == 0
    assert hub.files("org/r8", "dev")["ticket.safetensors"] == verified.read_bytes()
    assert hub.files("org/r8")["ticket.safetensors"] == v2.read_bytes()
    res = cli("push", verified, "org/r8", "--create-pr")
    assert res.code == 0 and res.stdout.strip().endswith("/discussions/1"), res.stderr
    assert hub.files("org/r8", "refs/pr/1")["ticket.safetensors"] == verified.read_bytes()
    assert hub.files("org/r8")["ticket.safetensors"] == v2.read_bytes()


def test_offline_mode_reads_from_the_cache(hub: FakeHub, cli, verified: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("push", verified, "org/r8").code == 0
    assert cli("pull", "org/r8", "-o", tmp_path / "online.ticket").code == 0
    Ticket.from_pretrained("org/r8")  # caches config.json too
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub.requests.clear()
    res = cli("pull", "org/r8", "-o", tmp_path / "offline.ticket", "--verbatim")
    assert res.code == 0, res.stderr
    assert (tmp_path / "offline.ticket").read_bytes() == verified.read_bytes()
    assert cli("pull", "org/r8", "-o", tmp_path / "offline2.ticket").code == 0  # the origin is recorded offline too
    assert Ticket.load(tmp_path / "offline2.ticket").provenance["hub"]["repo_id"] == "org/r8"
    assert Ticket.from_pretrained("org/r8").masks.keys() == Ticket.load(verified).masks.keys()
    assert hub.requests == []  # not one request
    # Offline and never downloaded: one line with the fix.
    one_line_error(cli("pull", "org/other", "-o", tmp_path / "x.ticket"), "HF_HUB_OFFLINE", "not in the cache")
    with pytest.raises(HubOfflineError):
        Ticket.from_pretrained("org/other")
    one_line_error(cli("push", verified, "org/r8"), "offline", "HF_HUB_OFFLINE")


# -- from_pretrained / save_pretrained / push_to_hub ---------------------------------------------------------
def test_from_pretrained_repo_and_folder_then_build_model(hub: FakeHub, verified: Path, tmp_path: Path) -> None:
    from ticketfmt.hub import push

    result = push(verified, "org/r8")
    assert result.changed and result.readme == "written"
    hub.requests.clear()
    ticket = Ticket.from_pretrained("org/r8")
    assert resolved(hub) <= {"ticket.safetensors", "config.json"}
    original = Ticket.load(verified)
    assert all(torch.equal(ticket.masks[k], original.masks[k]) for k in original.masks)
    assert ticket.results == [RESULT] and ticket.provenance["level"] == 3
    assert ticket.hub_repo_id == "org/r8" and ticket.hub_revision == hub.head("org/r8")
    assert ticket.provenance["hub"]["repo_id"] == "org/r8"  # the origin, recorded in memory
    model = ticket.build_model()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)

    folder = tmp_path / "saved"
    ticket.save_pretrained(folder)
    assert {p.name for p in folder.iterdir()} == {"ticket.safetensors", "config.json", "density.png", "README.md",
                                                  "model.safetensors.index.json", ".eval_results"}
    assert payload(folder / "ticket.safetensors") == payload(verified)  # the same tensors, plus the origin
    assert Ticket.load(folder / "ticket.safetensors").provenance["hub"]["repo_id"] == "org/r8"
    Ticket.load(verified).save_pretrained(tmp_path / "plain")  # unchanged from its file: the same bytes
    assert (tmp_path / "plain" / "ticket.safetensors").read_bytes() == verified.read_bytes()
    local = Ticket.from_pretrained(folder)
    assert local.sparsity == ticket.sparsity
    assert local.build_model()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert Ticket.from_pretrained(verified).results == [RESULT]  # a plain file works too
    # The ticket file is the truth: a damaged (or hostile) config.json does not matter.
    hub.put_files("org/odd-config", {"ticket.safetensors": verified.read_bytes(), "config.json": b"[1, 2"})
    assert Ticket.from_pretrained("org/odd-config").sparsity == ticket.sparsity
    # A modified ticket is saved afresh.
    changed = ticket.replace(results=[])
    changed.save_pretrained(tmp_path / "changed")
    assert Ticket.load(tmp_path / "changed" / "ticket.safetensors").results == []


def test_push_to_hub_method_and_refusal_of_unverified(hub: FakeHub, base_ticket: Ticket) -> None:
    with pytest.raises(UnverifiedTicketError, match="--allow-unverified"):
        base_ticket.push_to_hub("org/fresh")
    assert hub.stats["commits"] == 0
    url = base_ticket.push_to_hub("org/fresh", allow_unverified=True)
    assert url.startswith(f"{hub.endpoint}/org/fresh/commit/")
    card = hub.files("org/fresh")["README.md"].decode()
    assert "No results recorded" in card and "model-index" not in card
    back = Ticket.from_pretrained("org/fresh")
    assert back.sparsity == pytest.approx(base_ticket.sparsity)


def test_push_refuses_unverified_unless_allowed(hub: FakeHub, cli, unverified: Path) -> None:
    one_line_error(cli("push", unverified, "org/u"), "no recorded evaluation result", "--allow-unverified")
    assert hub.stats["commits"] == 0 and "POST" not in {m for m, _ in hub.requests}
    res = cli("push", unverified, "org/u", "--allow-unverified")
    assert res.code == 0, res.stderr
    assert b"No results recorded" in hub.files("org/u")["README.md"]


def test_existing_readme_is_kept_unless_card_overwrite(hub: FakeHub, cli, verified: Path) -> None:
    hub.put_files("org/r8", {"README.md": b"# My own card\n"})
    res = cli("push", verified, "org/r8")
    assert res.code == 0, res.stderr
    assert "kept" in res.stderr and "--card overwrite" in res.stderr
    files = hub.files("org/r8")
    assert files["README.md"] == b"# My own card\n" and "ticket.safetensors" in files
    res = cli("push", verified, "org/r8", "--card", "overwrite")
    assert res.code == 0, res.stderr
    card = ModelCard(hub.files("org/r8")["README.md"].decode())
    assert card.data.library_name == "ticketfmt"
    assert cli("push", verified, "org/r8", "--card", "replace").code == 2


def test_config_json_is_timm_compatible(hub: FakeHub, cli, verified: Path) -> None:
    assert cli("push", verified, "org/r8").code == 0
    config = json.loads(hub.files("org/r8")["config.json"])
    assert config["architecture"] == "cifar_resnet8" and config["num_classes"] == 10
    assert "library_name" not in config  # a top-level key timm would pass to PretrainedCfg
    pre = config["pretrained_cfg"]
    assert pre["input_size"] == [3, 32, 32] and pre["crop_pct"] == 1.0 and pre["num_classes"] == 10
    meta = config["ticketfmt"]
    assert meta["sha256"] == hashlib.sha256(verified.read_bytes()).hexdigest() and meta["file"] == "ticket.safetensors"
    assert meta["arch"]["id"] == "cifar_resnet8" and meta["verified"] is True
    assert meta["sparsity"] == pytest.approx(0.5, abs=1e-4) and meta["provenance"]["method"] == "imp"
    # The IMP ticket trained on CIFAR-10 with its own statistics (ticketfmt 1.0's IMP): the preprocessing says so.
    assert meta["preprocessing"]["dataset"] == "cifar10" and meta["preprocessing"]["normalize"] == "cifar"
    assert pre["mean"] == pytest.approx([0.4914, 0.4822, 0.4465]) and meta["preprocessing"]["resize"] is None
    # timm reads the config and refuses the architecture by name: it has no CIFAR ResNet (no PretrainedCfg error).
    import timm

    with pytest.raises(RuntimeError, match=r"Unknown model \(cifar_resnet8\)"):
        timm.create_model("hf-hub:org/r8")


@pytest.fixture(scope="module")
def r18_ticket() -> Ticket:
    """A timm ResNet-18 ticket at 90% (global magnitude, at least 1% of every layer), verified (a made-up record)."""
    ticket = Ticket.from_model(build_model("resnet18", seed=0), "resnet18", provenance={"method": "init", "seed": 0})
    return prune(ticket, 0.9, min_density=0.01).replace(results=[
        {"dataset": "imagenet", "split": "validation", "metric": "top1", "value": 61.5, "epochs": 90,
         "protocol": "full"}])


def test_timm_builds_a_pushed_ticket_from_its_config(hub: FakeHub, r18_ticket: Ticket, tmp_path: Path) -> None:
    import timm
    from timm.data import resolve_data_config

    r18_ticket.push_to_hub("org/r18")
    model = timm.create_model("hf-hub:org/r18")  # timm's own Hub loader reads config.json
    assert type(model).__name__ == "ResNet" and model.num_classes == 1000
    expected = r18_ticket.build_model()
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in expected.state_dict().items()}
    data = resolve_data_config({}, model=model)
    assert tuple(data["input_size"]) == (3, 224, 224) and data["crop_pct"] == 0.875 and data["interpolation"] == "bilinear"
    assert data["mean"] == pytest.approx((0.485, 0.456, 0.406)) and data["std"] == pytest.approx((0.229, 0.224, 0.225))
    # The masked weights come from ticketfmt: timm has no plain state dict to load (and says so, no TypeError).
    with pytest.raises(Exception) as raised:
        timm.create_model("hf-hub:org/r18", pretrained=True)
    assert not isinstance(raised.value, TypeError)
    # With the masked weights as a plain state dict beside it (what `ticket export --to timm` writes), timm loads
    # them with ticketfmt's config, and the next push leaves the repo's weights to that file (no index).
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in r18_ticket.init.items()}, str(tmp_path / "model.safetensors"))
    hub.put_files("org/r18", {"model.safetensors": (tmp_path / "model.safetensors").read_bytes()})
    loaded = timm.create_model("hf-hub:org/r18", pretrained=True)
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in loaded.state_dict().items())
    r18_ticket.push_to_hub("org/r18")
    assert "model.safetensors.index.json" not in hub.files("org/r18") and "model.safetensors" in hub.files("org/r18")


def test_push_into_a_timm_repo_keeps_its_files_unless_force(hub: FakeHub, cli, r18_ticket: Ticket,
                                                            tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file
    from timm.models import save_for_hf

    source = timm.create_model("resnet18", num_classes=10)
    save_for_hf(source, tmp_path / "timm", safe_serialization=True)  # timm's own repo layout
    hub.put_files("org/timm-r18", {p.name: p.read_bytes() for p in (tmp_path / "timm").iterdir()})
    timm_files = hub.files("org/timm-r18")
    assert {"config.json", "model.safetensors"} <= set(timm_files)
    path = tmp_path / "r18.ticket"
    r18_ticket.save(path)

    res = cli("push", path, "org/timm-r18")
    assert res.code == 0, res.stderr
    assert "config.json in the repo belongs to another library" in res.stderr and "--force" in res.stderr
    files = hub.files("org/timm-r18")
    assert files["config.json"] == timm_files["config.json"] and files["model.safetensors"] == timm_files[
        "model.safetensors"]
    assert "model.safetensors.index.json" not in files  # the repo's weights are timm's: no index naming the ticket
    assert files["ticket.safetensors"] == path.read_bytes()
    loaded = timm.create_model("hf-hub:org/timm-r18", pretrained=True)  # timm's repo still works
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert Ticket.from_pretrained("org/timm-r18").sparsity == pytest.approx(0.9, abs=1e-4)  # its config is not ours
    out = tmp_path / "pulled.ticket"
    assert cli("pull", "org/timm-r18", "-o", out).code == 0

    res = cli("push", path, "org/timm-r18", "--force")
    assert res.code == 0 and "belongs to another library" not in res.stderr, res.stderr
    config = json.loads(hub.files("org/timm-r18")["config.json"])
    assert "ticketfmt" in config and config["architecture"] == "resnet18"
    assert hub.files("org/timm-r18")["model.safetensors"] == timm_files["model.safetensors"]  # never touched


def test_hub_safetensors_metadata_and_eval_results(hub: FakeHub, verified: Path, base_ticket: Ticket,
                                                   tmp_path: Path) -> None:
    import yaml
    from huggingface_hub import HfApi, parse_eval_result_entries

    from ticketfmt.hub import push

    push(verified, "org/r8")
    meta = HfApi().get_safetensors_metadata("org/r8")  # through model.safetensors.index.json
    assert set(meta.weight_map.values()) == {"ticket.safetensors"}
    assert set(meta.weight_map) == _tensor_names(verified)
    assert meta.files_metadata["ticket.safetensors"].metadata["format"] == "ticketfmt"
    name = ".eval_results/ticketfmt-cifar10-test-top1.yaml"
    (entry,) = parse_eval_result_entries(yaml.safe_load(hub.files("org/r8")[name]))
    assert entry.dataset_id == "uoft-cs/cifar10" and entry.task_id == "default" and entry.value == pytest.approx(0.9123)
    assert "test split" in entry.notes
    # A ticket with only a reduced result has no benchmark result: ticketfmt's own file goes, others' stay.
    hub.put_files("org/r8", {".eval_results/mine.yaml": b"- dataset: {id: x/y, task_id: default}\n  value: 1\n"})
    reduced = tmp_path / "reduced.ticket"
    base_ticket.replace(results=[{**RESULT, "protocol": "reduced", "subset": 1000}]).save(reduced)
    push(reduced, "org/r8")
    files = hub.files("org/r8")
    assert name not in files and ".eval_results/mine.yaml" in files


def _tensor_names(path: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


# -- errors ----------------------------------------------------------------------------------------------
def test_bad_token_missing_token_and_the_token_never_shows(hub: FakeHub, cli, verified: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hf_SuperSecretToken0123456789"
    res = cli("push", verified, "org/r8", "--token", secret)
    one_line_error(res, "rejected the token", "hf auth login", token=secret)
    assert hub.stats["commits"] == 0
    monkeypatch.setenv("HF_TOKEN", secret)
    one_line_error(cli("push", verified, "org/r8"), "rejected the token", token=secret)
    hub.put_files("org/public", {"x.txt": b"x"})
    one_line_error(cli("pull", "org/public", "-o", tmp_path / "p.ticket"), "rejected the token", token=secret)
    with pytest.raises(HubAuthError) as err:
        Ticket.from_pretrained("org/public")
    assert secret not in str(err.value)

    hub.configure_client(monkeypatch, cache_dir=tmp_path / "hf-cache", token=False)
    one_line_error(cli("push", verified, "org/r8"), "needs a Hub token", "hf auth login")
    assert hub.stats["commits"] == 0
    hub.put_files("org/private", {"ticket.safetensors": verified.read_bytes()}, private=True)
    one_line_error(cli("pull", "org/private", "-o", tmp_path / "p.ticket"), "not found", "log in")


def test_repo_revision_and_file_not_found(hub: FakeHub, cli, verified: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.ticket"
    one_line_error(cli("pull", "org/missing", "-o", out), "repo org/missing not found", "check the repo id",
                   token=hub.token)
    with pytest.raises(HubNotFoundError):
        Ticket.from_pretrained("org/missing")
    hub.put_files("org/r8", {"ticket.safetensors": verified.read_bytes()})
    one_line_error(cli("pull", "org/r8", "-o", out, "--revision", "nope"), "revision 'nope' not found", "--revision")
    one_line_error(cli("pull", "not/a/repo", "-o", out), "not a valid repo id")
    with pytest.raises(HubNotFoundError, match="no such file or folder"):
        Ticket.from_pretrained(tmp_path / "no-such-folder")
    assert not out.exists()


def test_repos_that_are_not_tickets(hub: FakeHub, cli, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    out = tmp_path / "x.ticket"
    hub.put_files("org/config-only", {"config.json": b"{}"})
    one_line_error(cli("pull", "org/config-only", "-o", out), "not a ticket repo", "no ticket.safetensors",
                   "config.json")
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(4, 4)}, str(plain))
    hub.put_files("org/plain", {"ticket.safetensors": plain.read_bytes()})
    one_line_error(cli("pull", "org/plain", "-o", out), "is not a ticket file")
    with pytest.raises(NotATicketRepoError):
        Ticket.from_pretrained("org/plain")
    hub.put_files("org/pickles", {"pytorch_model.bin": b"\x80\x04pickle", "config.json": b"{}"})
    hub.requests.clear()
    one_line_error(cli("pull", "org/pickles", "-o", out), "only pickle weights", "pytorch_model.bin",
                   "never loads pickles")
    assert "pytorch_model.bin" not in resolved(hub)  # refused, never downloaded
    with pytest.raises(NotATicketRepoError, match="pickle"):
        Ticket.from_pretrained("org/pickles")
    folder = tmp_path / "pt-folder"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"\x80\x04")
    with pytest.raises(NotATicketRepoError, match="pickle"):
        Ticket.from_pretrained(folder)
    assert not out.exists()


# -- cards ------------------------------------------------------------------------------------------------
def test_card_with_results_has_a_model_index(cli, verified: Path, tmp_path: Path) -> None:
    readme = tmp_path / "card" / "README.md"
    res = cli("card", verified, "-o", readme, "--repo-id", "user/r8-ticket")
    assert res.code == 0, res.stderr
    assert (readme.parent / "density.png").exists()
    text = readme.read_text()
    card = ModelCard(text)
    data = card.data
    assert data.library_name == "ticketfmt" and data.license == "apache-2.0"
    assert {"lottery-ticket", "sparse", "pruning", "elastic-lottery-ticket", "cifar_resnet8", "cifar10"} <= set(
        data.tags)
    assert data.datasets == ["uoft-cs/cifar10"] and data.metrics == ["accuracy"]
    (ev,) = data.eval_results
    assert ev.metric_value == pytest.approx(0.9123) and ev.dataset_split == "test" and ev.metric_type == "accuracy"
    for needle in ("## Provenance", "level **3**", "`1000it`", "## Sparsity", "50.00%", "| stage1 |",
                   "`layer3.0.conv2.weight`", "(density.png)", "1 evaluation is recorded",
                   'Ticket.from_pretrained("user/r8-ticket")', "safe_open", "Elastic Lottery Ticket Hypothesis",
                   "Linear Mode Connectivity", "Finding Sparse, Trainable Neural Networks"):
        assert needle in text, needle
    assert "No results recorded" not in text
    one_line_error(cli("card", verified, "-o", readme), "already exists")
    res = cli("card", verified)  # to stdout
    assert res.code == 0 and res.stdout.startswith("---\n")


def test_card_without_results_and_of_a_converted_ticket(base_ticket: Ticket) -> None:
    from ticketfmt.cards import render_card

    card = render_card(base_ticket)
    assert "No results recorded" in card.text and card.data.eval_results is None
    converted = Ticket.from_model(build_model("cifar_resnet20", seed=1), "cifar_resnet20", provenance={
        "method": "elastic", "direction": "stretch", "strategy": "interpolate",
        "source": {"arch": "cifar_resnet8", "sha256": "ab" * 32, "sparsity": 0.5, "path": "r8.ticket",
                   "repo_id": "alice/r8-ticket"},
        "mappings": ["0:0,1,2", "0:0,1,2", "0:0;0:1,2"], "source_provenance": IMP,
        "evil": "a|b\n<script>`x`</script>", "nested": {"deep": [1, 2]}})
    card = render_card(converted, repo_id="bob/r20-ticket")
    text = str(card)
    assert card.data.base_model == "alice/r8-ticket"
    assert "Elastic Ticket Transformation" in text and "`interpolate`" in text and "| stage3 | `0:0;0:1,2` |" in text
    assert "The source ticket: found by **iterative magnitude pruning**" in text
    assert "<script>" not in text and "a\\|b" in text and "`nested.deep`" in text


def _record(value: float, **extra: object) -> dict[str, object]:
    return {"dataset": "cifar10", "split": "test", "metric": "top1", "value": value, "epochs": 160, **extra}


def test_model_index_has_the_latest_full_result_per_dataset_split_and_metric(base_ticket: Ticket) -> None:
    from ticketfmt.cards import benchmark_results, render_card

    recipe = {"name": "cifar_resnet", "epochs": 160, "overrides": []}
    results = [
        _record(90.1, protocol="full", source="imp"),
        _record(90.1, protocol="full", source="verify"),  # the same result twice: one row
        _record(41.0, protocol="reduced", subset=8000, protocol_note="a training subset of 8000 images"),
        _record(90.7, protocol="full", date="2026-12-01T00:00:00Z"),  # the latest full one
        _record(55.0, recipe={**recipe, "epochs": 2, "overrides": ["epochs"]}, epochs=2),  # old record, shortened
        _record(89.9, recipe=recipe),  # old record, the recipe's budget: full, but not the latest
        _record(70.0, protocol="full", dataset="cifar10-jpeg"),  # not the benchmark: no Hub id
        _record(99.0, protocol="full", split="train"),  # a training split is never a benchmark result
        _record(97.9, protocol="full", metric="top5"),
        _record(50.0, protocol="full", dataset="imagefolder:/home/me/pets"),
    ]
    ticket = base_ticket.replace(results=results)
    assert [(r["dataset"], r["split"], r["metric"], r["value"]) for r in benchmark_results(ticket)] == [
        ("cifar10", "test", "top1", 89.9), ("cifar10", "test", "top5", 97.9)]
    card = ModelCard(str(render_card(ticket, repo_id="user/r8-ticket")))  # parsed back by huggingface_hub
    evals = card.data.eval_results
    assert [(e.dataset_type, e.dataset_split, e.metric_type, e.metric_value) for e in evals] == [
        ("uoft-cs/cifar10", "test", "accuracy", 89.9), ("uoft-cs/cifar10", "test", "top_5_accuracy", 97.9)]
    assert len({e.metric_name for e in evals}) == len(evals)  # no duplicated metric rows
    assert card.data.datasets == ["uoft-cs/cifar10"]  # Hub ids of the known datasets only
    text = card.text
    assert text.count("| CIFAR-10 | test | top1 | 90.10% |") == 1 and "recorded 2 times (by `imp`, `verify`)" in text
    assert "reduced: a training subset of 8000 images" in text and "reduced: 2 epochs, shortened" in text
    assert "full (model-index)" in text and "/home/me" not in str(card.data) and "image folder pets" in text


def test_bundled_ticket_card_claims_no_benchmark_result() -> None:
    from ticketfmt.cards import render_card

    ticket = Ticket.load(Path(__file__).resolve().parents[1] / "examples" / "cifar_resnet20-imp-79.ticket")
    card = render_card(ticket, repo_id="user/r20")
    assert card.data.eval_results is None and card.data.datasets is None  # 40 of 160 epochs, on a JPEG copy
    assert card.text.count("| 86.84% |") == 1 and "reduced: 40 epochs instead of 160" in card.text


@pytest.fixture(scope="module")
def r14_ticket() -> Ticket:
    """A cifar_resnet14 ticket (two blocks per stage: it stretches) at 50%, verified (a made-up record)."""
    ticket = Ticket.from_model(build_model("cifar_resnet14", seed=0), "cifar_resnet14", provenance=IMP)
    return prune(ticket, 0.5).replace(results=[RESULT])


def test_base_model_is_the_hub_repo_a_ticket_came_from(hub: FakeHub, cli, r14_ticket: Ticket, tmp_path: Path) -> None:
    from ticketfmt.cards import render_card

    verified = tmp_path / "r14.ticket"
    r14_ticket.save(verified)
    assert cli("push", verified, "alice/r14").code == 0
    ticket = Ticket.from_pretrained("alice/r14")
    origin = {"repo_id": "alice/r14", "revision": hub.head("alice/r14"),
              "sha256": hashlib.sha256(verified.read_bytes()).hexdigest()}
    assert ticket.provenance["hub"] == origin
    assert render_card(prune(ticket, 0.7), repo_id="bob/r14-70").data.base_model == "alice/r14"
    # Pushed back where it came from: not its own base model, and the same file (no commit).
    assert render_card(ticket, repo_id="alice/r14").data.base_model is None
    before = hub.stats["commits"]
    ticket.push_to_hub("alice/r14")
    assert hub.stats["commits"] == before
    # Mirrored to another repo: the pushed card names the origin.
    ticket.push_to_hub("bob/r14")
    assert ModelCard(hub.files("bob/r14")["README.md"].decode()).data.base_model == "alice/r14"
    # Pulled, then converted with the CLI: the conversion carries the source's provenance, origin included.
    pulled, deeper = tmp_path / "pulled.ticket", tmp_path / "r20.ticket"
    assert cli("pull", "alice/r14", "-o", pulled).code == 0
    res = cli("convert", "--from", pulled, "--to", "cifar_resnet20", "-o", deeper)
    assert res.code == 0, res.stderr
    card = ModelCard(cli("card", deeper, "--repo-id", "bob/r20").stdout)
    assert card.data.base_model == "alice/r14"


def test_push_and_convert_refuse_a_ticket_with_an_empty_layer(hub: FakeHub, cli, r14_ticket: Ticket,
                                                              tmp_path: Path) -> None:
    masks = {**r14_ticket.masks, "fc.weight": torch.zeros_like(r14_ticket.masks["fc.weight"])}
    path = tmp_path / "cut.ticket"
    r14_ticket.replace(masks=masks).save(path)
    one_line_error(cli("push", path, "org/cut"), "'fc.weight'", "cut from the network", "--keep-dense",
                   "--allow-empty-layers")
    assert hub.stats["commits"] == 0
    one_line_error(cli("convert", "--from", path, "--to", "cifar_resnet20", "-o", tmp_path / "r20.ticket"),
                   "'fc.weight'", "--allow-empty-layers")
    assert not (tmp_path / "r20.ticket").exists()
    assert cli("push", path, "org/cut", "--allow-empty-layers").code == 0
    assert cli("convert", "--from", path, "--to", "cifar_resnet20", "-o", tmp_path / "r20.ticket",
               "--allow-empty-layers").code == 0


# -- one Ticket class, however it was imported (issue 10) ----------------------------------------------------------
IMPORT_PROBE = """
import sys
if sys.argv[1] == "core":
    from ticketfmt.ticket import Ticket
else:
    from ticketfmt import Ticket
ticket = Ticket.load(sys.argv[2])
print(str(ticket.generate_model_card(repo_id="org/r8-ticket")))
print("=== push ===")
try:
    ticket.push_to_hub("org/r8-ticket")
except Exception as e:
    print(type(e).__module__, type(e).__name__, e)
else:
    print("pushed")
"""


def test_ticket_behaves_alike_however_it_was_imported(unverified: Path, tmp_path: Path) -> None:
    # Fresh interpreters (python -P, outside the checkout): nothing imported earlier can leak into either.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))  # a push that got through would fail offline
    runs = {}
    for how in ("core", "package"):
        proc = subprocess.run([sys.executable, "-P", "-c", IMPORT_PROBE, how, str(unverified)], cwd=tmp_path,
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        runs[how] = proc.stdout
    assert runs["core"] == runs["package"]
    card, push = runs["core"].split("=== push ===\n")
    assert card.startswith("---\n") and "library_name: ticketfmt" in card and "## Sparsity" in card
    assert len(card.splitlines()) > 100 and "level **3**" in card  # the full card, not a generic one
    assert push.startswith("ticketfmt.errors UnverifiedTicketError ") and "allow_unverified=True" in push
