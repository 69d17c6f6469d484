"""Self-test of tests/hubserver.py: the unmodified huggingface_hub client against FakeHub."""

from __future__ import annotations

import os

# Effective only if nothing imported huggingface_hub yet; FakeHub.configure_client patches the
# constants at run time anyway, which is what makes these tests independent of import order.
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import hashlib  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from huggingface_hub import HfApi, hf_hub_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

try:
    from tests.hubserver import FakeHub
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from hubserver import FakeHub  # type: ignore[no-redef]

# huggingface_hub uploads LFS content with httpx2's deprecated `data=<file>`.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

REPO = "org/tickets"
BIG = 10_500_000


@pytest.fixture
def api(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=hub.token)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("hello ticket\n")
    (out / "sub" / "big.dat").write_bytes(hashlib.sha256(b"seed").digest() * (BIG // 32 + 1))
    return out


def _download(hub: FakeHub, tmp_path: Path, filename: str, **kwargs: object) -> bytes:
    path = hf_hub_download(REPO, filename, endpoint=hub.endpoint, token=hub.token,
                           cache_dir=tmp_path / "dl-cache", **kwargs)  # type: ignore[arg-type]
    return Path(path).read_bytes()


def test_create_repo_conflict_and_exist_ok(hub: FakeHub, api: HfApi) -> None:
    url = api.create_repo(REPO)
    assert url == f"{hub.endpoint}/{REPO}" and url.repo_id == REPO
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(REPO)
    assert err.value.response.status_code == 409
    assert api.create_repo(REPO, exist_ok=True).repo_id == REPO
    info = api.model_info(REPO)
    assert info.id == REPO and len(info.sha or "") == 40 and info.private is False
    assert [s.rfilename for s in info.siblings or []] == [".gitattributes"]
    assert api.whoami()["name"] == "testuser"


def test_upload_lfs_then_noop_reupload(hub: FakeHub, api: HfApi, folder: Path, tmp_path: Path) -> None:
    api.create_repo(REPO)
    first = api.upload_folder(repo_id=REPO, folder_path=folder)
    assert hub.stats["lfs_uploads"] == 1 and hub.stats["regular_uploads"] == 1 and hub.stats["commits"] == 1
    assert hub.is_lfs(REPO, "sub/big.dat") and not hub.is_lfs(REPO, "notes.txt")
    assert hub.files(REPO)["sub/big.dat"] == (folder / "sub" / "big.dat").read_bytes()
    assert first.oid == hub.head(REPO)

    hub.requests.clear()
    again = api.upload_folder(repo_id=REPO, folder_path=folder)
    # The client asks preupload (which returns the remote oids) and the LFS batch API (which
    # returns no upload action), then drops every unchanged file and makes no commit at all.
    methods = {m for m, _ in hub.requests}
    assert "PUT" not in methods
    assert ("POST", f"/{REPO}.git/info/lfs/objects/batch") in hub.requests
    assert not any(p.endswith("/commit/main") for _, p in hub.requests)
    assert hub.stats["lfs_uploads"] == 1 and hub.stats["regular_uploads"] == 1 and hub.stats["commits"] == 1
    assert again.oid == first.oid == hub.head(REPO)

    assert _download(hub, tmp_path, "notes.txt") == b"hello ticket\n"
    assert _download(hub, tmp_path, "sub/big.dat") == (folder / "sub" / "big.dat").read_bytes()
    tree = {f.path: f for f in api.list_repo_tree(REPO, recursive=True)}
    assert set(tree) == {".gitattributes", "notes.txt", "sub", "sub/big.dat"}
    assert tree["sub/big.dat"].lfs.sha256 == hashlib.sha256(hub.files(REPO)["sub/big.dat"]).hexdigest()
    assert [f.path for f in api.list_repo_tree(REPO, path_in_repo="sub")] == ["sub/big.dat"]


def test_revision_pinning_and_errors(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    first = hub.put_files(REPO, {"a.txt": b"v1"})
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="a.txt", repo_id=REPO)
    assert hub.head(REPO) != first
    assert _download(hub, tmp_path, "a.txt") == b"v2"
    assert _download(hub, tmp_path, "a.txt", revision=first) == b"v1"
    assert api.model_info(REPO, revision=first).sha == first
    with pytest.raises(HfHubHTTPError) as stale:  # parent_commit is no longer the head of main
        api.upload_file(path_or_fileobj=b"v3", path_in_repo="a.txt", repo_id=REPO, parent_commit=first)
    assert stale.value.response.status_code == 412
    api.upload_file(path_or_fileobj=b"x", path_in_repo="gone/x.txt", repo_id=REPO)
    api.delete_folder("gone", repo_id=REPO)
    assert set(hub.files(REPO)) == {".gitattributes", "a.txt"}

    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/missing", "a.txt", endpoint=hub.endpoint, token=hub.token, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/missing")
    with pytest.raises(EntryNotFoundError):
        _download(hub, tmp_path, "nope.txt")
    with pytest.raises(RevisionNotFoundError):
        _download(hub, tmp_path, "a.txt", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="no-such-branch")
    assert api.file_exists(REPO, "a.txt") and not api.file_exists(REPO, "b.txt")


def test_bad_token_and_private_repo(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    api.create_repo(REPO)
    bad = HfApi(endpoint=hub.endpoint, token="hf_wrong")
    with pytest.raises(HfHubHTTPError) as err:
        bad.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=REPO)
    assert err.value.response.status_code == 401
    assert err.value.response.headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=hub.endpoint, token=False).create_repo("org/other")
    assert err.value.response.status_code == 401
    assert hub.stats["commits"] == 0

    hub.put_files("org/secret", {"w.txt": b"hidden"}, private=True)
    anonymous = HfApi(endpoint=hub.endpoint, token=False)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info("org/secret")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/secret", "w.txt", endpoint=hub.endpoint, token=False, cache_dir=tmp_path)
    assert api.model_info("org/secret").private is True
    assert Path(hf_hub_download("org/secret", "w.txt", endpoint=hub.endpoint, token=hub.token,
                                cache_dir=tmp_path)).read_bytes() == b"hidden"


def test_create_pr_and_branch(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    api.create_repo(REPO)
    main = hub.head(REPO)
    info = api.upload_file(path_or_fileobj=b"proposal", path_in_repo="p.txt", repo_id=REPO, create_pr=True)
    assert info.pr_url == f"{hub.endpoint}/{REPO}/discussions/1"
    assert info.pr_revision == "refs/pr/1" and info.pr_num == 1
    assert hub.head(REPO) == main and "p.txt" not in hub.files(REPO)
    assert hub.files(REPO, "refs/pr/1")["p.txt"] == b"proposal"
    assert _download(hub, tmp_path, "p.txt", revision="refs/pr/1") == b"proposal"

    api.create_branch(REPO, branch="dev")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_branch(REPO, branch="dev")
    assert err.value.response.status_code == 409
    api.upload_file(path_or_fileobj=b"d", path_in_repo="d.txt", repo_id=REPO, revision="dev")
    assert "d.txt" in hub.files(REPO, "dev") and "d.txt" not in hub.files(REPO)
    refs = api.list_repo_refs(REPO, include_pull_requests=True)
    assert {b.name for b in refs.branches} == {"main", "dev"}
    assert [p.ref for p in refs.pull_requests or []] == ["refs/pr/1"]


def test_safetensors_metadata_over_range_requests(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(3, 4), "b": torch.ones(4, dtype=torch.float16)}, str(path), metadata={"k": "v"})
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=path, path_in_repo="model.safetensors", repo_id=REPO)
    assert hub.is_lfs(REPO, "model.safetensors") and hub.stats["lfs_uploads"] == 1
    meta = api.get_safetensors_metadata(REPO)
    tensors = meta.files_metadata["model.safetensors"].tensors
    assert tensors["w"].shape == [3, 4] and tensors["w"].dtype == "F32"
    assert tensors["b"].dtype == "F16" and meta.files_metadata["model.safetensors"].metadata == {"k": "v"}

    url = f"{hub.endpoint}/{REPO}/resolve/main/model.safetensors"
    auth = {"Authorization": f"Bearer {hub.token}"}
    data = path.read_bytes()
    with urllib.request.urlopen(urllib.request.Request(url, headers={**auth, "Range": "bytes=2-9"})) as part:
        assert part.status == 206 and part.read() == data[2:10]
        assert part.headers["Content-Range"] == f"bytes 2-9/{len(data)}"
    with urllib.request.urlopen(urllib.request.Request(url, headers=auth, method="HEAD")) as head:
        assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert head.headers["X-Linked-Size"] == str(len(data)) and head.headers["X-Repo-Commit"] == hub.head(REPO)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(url, headers={**auth, "Range": f"bytes={len(data)}-"}))
    err.value.close()
    assert err.value.code == 416

def test_readme_yaml_validation_and_card_data(hub: FakeHub, api: HfApi) -> None:
    api.create_repo(REPO)
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=b"---\ntags: [a\n---\n", path_in_repo="README.md", repo_id=REPO)
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\ntags: [lottery]\n---\n# Card\n", path_in_repo="README.md",
                    repo_id=REPO)
    info = api.model_info(REPO)
    assert info.tags == ["lottery"] and info.card_data is not None and info.card_data.license == "mit"


def test_configure_client_covers_module_level_functions(hub: FakeHub, tmp_path: Path) -> None:
    # No endpoint=, token= or cache_dir=: everything comes from what configure_client patched.
    import huggingface_hub

    huggingface_hub.create_repo(REPO, private=True)
    huggingface_hub.upload_file(path_or_fileobj=b"\xc3\xbc", path_in_repo="dir/na\u00efve \u00fc.txt", repo_id=REPO)
    path = Path(huggingface_hub.hf_hub_download(REPO, "dir/na\u00efve \u00fc.txt"))
    assert path.read_bytes() == b"\xc3\xbc" and path.is_relative_to(tmp_path / "hf-cache")
    assert huggingface_hub.model_info(REPO).private is True
    assert hub.files(REPO)["dir/na\u00efve \u00fc.txt"] == b"\xc3\xbc"
    assert Path(huggingface_hub.snapshot_download(REPO), "dir/na\u00efve \u00fc.txt").exists()
