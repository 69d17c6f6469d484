"""Tests of ticketfmt.data: cached splits, TensorLoader augmentation, sharding, ImageFolder."""

from __future__ import annotations

import ast
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ticketfmt import data as D
from ticketfmt.errors import DataError
from ticketfmt.data import (
    DATASETS,

    FolderLoader,
    ImageTensors,
    TensorLoader,
    cache_path,
    get_spec,
    load_split,
    make_loader,
    shared_data_dir,
    subset_indices,
)

MINI = "cifar10-mini-jpeg.tar.gz"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _mini_archive() -> Path:
    return shared_data_dir() / MINI


needs_mini = pytest.mark.skipif(
    not _mini_archive().is_file(),
    reason=f"shared data {MINI} not found in {shared_data_dir()}; set TICKETFMT_SHARED_DATA "
           "to the folder holding it",
)


@pytest.fixture(scope="module")
def mini_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder where cifar10-mini has been decoded once (both splits)."""
    if not _mini_archive().is_file():
        pytest.skip(f"shared data {MINI} not found; set TICKETFMT_SHARED_DATA")
    cache = tmp_path_factory.mktemp("cache")
    load_split("cifar10-mini", "train", cache_dir=cache)
    return cache


@pytest.fixture(scope="module")
def mini_train(mini_cache: Path) -> ImageTensors:
    data = load_split("cifar10-mini", "train", cache_dir=mini_cache)
    assert isinstance(data, ImageTensors)
    return data


def _norm(images_u8: torch.Tensor, spec=DATASETS["cifar10-mini"]) -> torch.Tensor:
    """Reference normalization: uint8 NHWC -> float NCHW."""
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (images_u8.permute(0, 3, 1, 2).float() / 255 - mean) / std


# --------------------------------------------------------------------------- specs, errors


def test_specs() -> None:
    assert set(DATASETS) >= {"cifar10", "cifar100", "cifar10-jpeg", "cifar10-mini", "imagenet"}
    assert DATASETS["cifar100"].num_classes == 100 and DATASETS["cifar100"].small
    assert not DATASETS["imagenet"].small and DATASETS["imagenet"].image_size == 224
    with pytest.raises(Exception):
        DATASETS["cifar10"].num_classes = 3  # type: ignore[misc]  # frozen


def test_unknown_dataset_error() -> None:
    with pytest.raises(DataError) as e:
        make_loader("mnist", "train", 8, train=True, device="cpu")
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert "\n" not in msg and "mnist" in msg
    assert "cifar10-mini" in msg and "imagefolder:PATH" in msg


def test_missing_data_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFMT_SHARED_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("TICKETFMT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="TICKETFMT_SHARED_DATA") as e:
        load_split("cifar10-mini", "train")
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="data-dir"):
        load_split("imagenet", "train")
    with pytest.raises(DataError, match="train/"):
        load_split("imagenet", "train", data_dir=tmp_path)
    with pytest.raises(DataError, match="split"):
        load_split("cifar10-mini", "valid")  # type: ignore[arg-type]


def test_default_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TICKETFMT_SHARED_DATA", raising=False)
    project = Path(D.__file__).resolve().parents[2]
    assert shared_data_dir() == project.parent / "shared" / "data"
    monkeypatch.setenv("TICKETFMT_CACHE", str(tmp_path))
    assert cache_path("cifar10-mini", "test") == tmp_path / "cifar10-mini-test.safetensors"


def test_library_does_not_import_cli_libraries() -> None:
    tree = ast.parse((Path(D.__file__).parent / "core.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert not names & {"typer", "rich", "click"}


# --------------------------------------------------------------------------- cache


@needs_mini
def test_cache_written_once_and_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFMT_CACHE", str(tmp_path / "cache"))
    calls: list[tuple[str, int, int]] = []
    first = load_split("cifar10-mini", "test", progress=lambda *a: calls.append(a))
    assert calls and all(isinstance(d, str) and isinstance(n, int) for d, n, _ in calls)
    assert calls[-1][1] == calls[-1][2] == 2500  # one pass decodes both splits
    for split in ("train", "test"):
        assert (tmp_path / "cache" / f"cifar10-mini-{split}.safetensors").is_file()

    # later loads neither decode nor need the source archive
    def no_decode(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(D, "_decode_archive", no_decode)
    monkeypatch.setenv("TICKETFMT_SHARED_DATA", str(tmp_path / "gone"))
    again = load_split("cifar10-mini", "test")
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert again.classes == CLASSES
    assert load_split("cifar10-mini", "train").images.shape[0] == 2000


@needs_mini
def test_damaged_cache_is_rebuilt(tmp_path: Path, mini_train: ImageTensors) -> None:
    path = cache_path("cifar10-mini", "train", tmp_path)
    path.write_bytes(b"not a safetensors file")
    data = load_split("cifar10-mini", "train", cache_dir=tmp_path, workers=1)
    assert torch.equal(data.images, mini_train.images)


@needs_mini
def test_mini_shapes_labels_and_order(mini_cache: Path, mini_train: ImageTensors) -> None:
    assert mini_train.images.shape == (2000, 32, 32, 3) and mini_train.images.dtype == torch.uint8
    assert mini_train.labels.dtype == torch.int64
    assert mini_train.labels.min() == 0 and mini_train.labels.max() == 9
    assert mini_train.labels.bincount().tolist() == [200] * 10
    assert torch.equal(mini_train.labels, torch.arange(10).repeat_interleave(200))  # sorted order
    assert mini_train.classes == CLASSES
    test = load_split("cifar10-mini", "test", cache_dir=mini_cache)
    assert test.images.shape == (500, 32, 32, 3) and test.labels.bincount().tolist() == [50] * 10
    x, y = mini_train[205]
    assert x.shape == (32, 32, 3) and y.item() == 1

    # ImageFolder order: image 201 is automobile/<second file in sorted order>
    from PIL import Image

    with tarfile.open(_mini_archive()) as tar:
        names = sorted(n for n in tar.getnames() if n.startswith("cifar10-mini/train/automobile/")
                       and n.endswith(".jpg"))
        blob = tar.extractfile(names[1]).read()  # type: ignore[union-attr]
    expected = np.array(Image.open(io.BytesIO(blob)).convert("RGB"))
    assert torch.equal(mini_train.images[201], torch.from_numpy(expected))


@needs_mini
def test_subset(mini_cache: Path, mini_train: ImageTensors) -> None:
    a = load_split("cifar10-mini", "train", cache_dir=mini_cache, subset=100, seed=1)
    b = load_split("cifar10-mini", "train", cache_dir=mini_cache, subset=100, seed=1)
    c = load_split("cifar10-mini", "train", cache_dir=mini_cache, subset=100, seed=2)
    assert len(a) == 100 and a.images.shape == (100, 32, 32, 3)
    assert a.labels.bincount(minlength=10).tolist() == [10] * 10
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    idx = subset_indices(mini_train.labels, 100, seed=1)
    assert torch.equal(a.images, mini_train.images[idx])
    odd = subset_indices(mini_train.labels, 15, seed=0)
    counts = mini_train.labels[odd].bincount(minlength=10)
    assert len(set(odd.tolist())) == 15 and counts.max() - counts.min() <= 1
    with pytest.raises(DataError, match="subset"):
        load_split("cifar10-mini", "train", cache_dir=mini_cache, subset=5000)


# --------------------------------------------------------------------------- TensorLoader


def _loader(images: torch.Tensor, **kw) -> TensorLoader:
    spec = DATASETS["cifar10-mini"]
    kw.setdefault("train", True)
    return TensorLoader(images, torch.arange(len(images)) % 10, kw.pop("batch_size", 64),
                        mean=spec.mean, std=spec.std, **kw)


def _pattern_images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g)  # no zeros


def test_loader_batches_shape_dtype_layout() -> None:
    images = _pattern_images(200)
    for train in (True, False):
        loader = _loader(images, train=train, batch_size=64)
        batches = list(loader)
        assert len(batches) == len(loader) == 4
        assert [x.shape[0] for x, _ in batches] == [64, 64, 64, 8]
        for x, y in batches:
            assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32
            assert x.is_contiguous(memory_format=torch.channels_last)
            assert y.dtype == torch.int64
    dropped = _loader(images, batch_size=64, drop_last=True)
    assert len(dropped) == 3 and [x.shape[0] for x, _ in dropped] == [64] * 3


def test_eval_loader_is_plain_normalization() -> None:
    images = _pattern_images(100)
    loader = _loader(images, train=False, batch_size=32)
    x = torch.cat([b for b, _ in loader])
    y = torch.cat([l for _, l in loader])
    torch.testing.assert_close(x, _norm(images), rtol=1e-5, atol=1e-5)
    assert torch.equal(y, torch.arange(100) % 10)


def test_augmentation_deterministic_per_seed_and_epoch() -> None:
    images = _pattern_images(256)

    def epoch(seed: int, e: int) -> tuple[torch.Tensor, torch.Tensor]:
        loader = _loader(images, seed=seed)
        loader.set_epoch(e)
        xs, ys = zip(*loader)
        return torch.cat(xs), torch.cat(ys)

    a, b = epoch(0, 3), epoch(0, 3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = epoch(0, 4)
    assert not torch.equal(a[1], c[1])  # another order
    assert not torch.equal(a[0], c[0])
    d = epoch(1, 3)
    assert not torch.equal(a[1], d[1])
    # shuffled labels are a permutation of all labels
    assert torch.equal(a[1].sort().values, (torch.arange(256) % 10).sort().values)


def test_crops_and_flips_happen_and_are_exact() -> None:
    """Every augmented image is one of the 9x9x2 crops/flips of its zero-padded original."""
    n = 128
    images = _pattern_images(n, seed=3)
    loader = _loader(images, shuffle=False, batch_size=100, seed=5)
    out = torch.cat([x for x, _ in loader])
    padded = torch.nn.functional.pad(images.permute(0, 3, 1, 2), (4, 4, 4, 4))  # uint8 zeros
    ref = _norm(padded.permute(0, 2, 3, 1))  # [n, 3, 40, 40], padding normalized from 0
    match = torch.full((n,), -1)  # index of the matching (oy, ox, flip), -1 for none
    cands = [(oy, ox, flip) for oy in range(9) for ox in range(9) for flip in (False, True)]
    for k, (oy, ox, flip) in enumerate(cands):
        crop = ref[:, :, oy:oy + 32, ox:ox + 32]
        crop = crop.flip(-1) if flip else crop
        hit = ((out - crop).abs().amax(dim=(1, 2, 3)) < 1e-5) & (match < 0)
        match[hit] = k
    assert (match >= 0).all(), "an image is not a crop/flip of its zero-padded original"
    seen_offsets = {cands[k][:2] for k in match.tolist()}
    seen_flips = {cands[k][2] for k in match.tolist()}
    assert seen_flips == {False, True}
    assert len(seen_offsets) > 20
    assert not torch.allclose(out, _norm(images), atol=1e-5)  # augmentation changed things


def test_padding_is_zero_before_normalization() -> None:
    spec = DATASETS["cifar10-mini"]
    white = torch.full((128, 32, 32, 3), 255, dtype=torch.uint8)
    x = torch.cat([b for b, _ in _loader(white, batch_size=64)])
    pad_value = (-torch.tensor(spec.mean) / torch.tensor(spec.std)).view(1, 3, 1, 1)
    white_value = ((1 - torch.tensor(spec.mean)) / torch.tensor(spec.std)).view(1, 3, 1, 1)
    is_pad = torch.isclose(x, pad_value.expand_as(x), atol=1e-5).all(1)
    is_white = torch.isclose(x, white_value.expand_as(x), atol=1e-5).all(1)
    assert (is_pad | is_white).all()
    assert is_pad.any() and is_white.all(0).any()
    assert is_pad.float().mean() < 0.3  # at most 8 of 32 rows/cols are padding
    # evaluation never pads
    ev = torch.cat([b for b, _ in _loader(white, train=False)])
    assert torch.isclose(ev, white_value.expand_as(ev), atol=1e-5).all()


@needs_mini
def test_tensor_loader_on_mini(mini_cache: Path) -> None:
    loader = make_loader("cifar10-mini", "train", 128, train=True, device="cpu",
                         seed=0, cache_dir=mini_cache)
    assert isinstance(loader, TensorLoader) and len(loader) == 16
    loader.set_epoch(0)
    x, y = next(iter(loader))
    assert x.shape == (128, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)
    assert 0 <= y.min() and y.max() <= 9
    ev = make_loader("cifar10-mini", "test", 100, train=False, device=torch.device("cpu"),
                     cache_dir=mini_cache)
    assert len(ev) == 5 and sum(b.shape[0] for b, _ in ev) == 500


# --------------------------------------------------------------------------- distributed


def test_distributed_shards_disjoint_equal_and_covering() -> None:
    n, world = 103, 4
    images = _pattern_images(n)
    for epoch in (0, 1):
        shards = []
        for rank in range(world):
            loader = _loader(images, rank=rank, world_size=world, seed=7, batch_size=8)
            loader.set_epoch(epoch)
            idx = loader.indices()
            labels = torch.cat([y for _, y in loader])
            assert torch.equal(labels, idx % 10)  # batches follow the shard
            assert len(idx) == loader.num_samples == n // world
            shards.append(set(idx.tolist()))
        union = set().union(*shards)
        assert sum(len(s) for s in shards) == len(union) == world * (n // world)  # disjoint
        full = _loader(images, seed=7)
        full.set_epoch(epoch)
        assert union == set(full.indices()[: world * (n // world)].tolist())  # same permutation

    # evaluation: disjoint shards that cover every image
    ev = [_loader(images, train=False, rank=r, world_size=world).indices() for r in range(world)]
    assert sorted(torch.cat(ev).tolist()) == list(range(n))
    assert max(map(len, ev)) - min(map(len, ev)) <= 1


@needs_mini
def test_make_loader_distributed(mini_cache: Path) -> None:
    idx = []
    for rank in range(3):
        loader = make_loader("cifar10-mini", "train", 64, train=True, device="cpu",
                             distributed=True, rank=rank, world_size=3, cache_dir=mini_cache)
        assert isinstance(loader, TensorLoader) and loader.num_samples == 666
        idx.append(set(loader.indices().tolist()))
    assert len(idx[0] | idx[1] | idx[2]) == 1998
    with pytest.raises(DataError, match="rank"):
        make_loader("cifar10-mini", "train", 64, train=True, device="cpu", distributed=True,
                    rank=3, world_size=3, cache_dir=mini_cache)


# --------------------------------------------------------------------------- imagefolder


def _make_folder(root: Path, splits=("train", "val"), per_class: int = 3) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for cls in ("cat", "dog"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (40 + i, 48, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")
    return root


def test_imagefolder_dataset(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "pets")
    name = f"imagefolder:{root}"
    spec = get_spec(name)
    assert spec.num_classes == 2 and not spec.small and spec.path == root
    ds = load_split(name, "test")
    assert len(ds) == 6 and ds.classes == ["cat", "dog"]  # type: ignore[attr-defined]
    assert len(load_split(name, "train", subset=4)) == 4

    loader = make_loader(name, "train", 4, train=True, device="cpu", num_workers=1, seed=0)
    assert isinstance(loader, FolderLoader) and len(loader) == 2
    loader.set_epoch(0)
    first = list(loader)
    x, y = first[0]
    assert x.shape == (4, 3, 224, 224) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last) and y.dtype == torch.int64
    again = list(loader)  # same epoch: same order and (worker-seeded) augmentation
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    loader.set_epoch(1)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, loader))

    ev = make_loader(name, "test", 4, train=False, device="cpu", num_workers=0)
    xs = torch.cat([x for x, _ in ev])
    assert xs.shape == (6, 3, 224, 224)

    dist = [make_loader(name, "train", 2, train=True, device="cpu", num_workers=0,
                        distributed=True, rank=r, world_size=2) for r in range(2)]
    assert [d.num_samples for d in dist] == [3, 3]


def test_imagefolder_test_dir_and_missing(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "f", splits=("train", "test"), per_class=1)
    assert len(load_split(f"imagefolder:{root}", "test")) == 2
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(DataError, match="train/") as e:
        load_split(f"imagefolder:{bare}", "train")
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="val/ or test/"):
        load_split(f"imagefolder:{_make_folder(tmp_path / 'g', splits=('train',))}", "test")
