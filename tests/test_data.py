"""Tests of ticketfmt.data: registry, cached splits, TensorLoader augmentation, sharding, ImageFolder,
the reference's normalization and crop (issue 11), and the input pipeline chosen by the network's
input size and the data (issue 18).

Every test runs on the tiny data of ``tests/data/`` (written by ``tests/make_data.py``) or on
data it makes itself; none needs ``../shared/data``.
"""

from __future__ import annotations

import ast
import io
import tarfile
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from make_data import CIFAR10_CLASSES, DATA_DIR, write_archive, write_imagefolder

import ticketfmt
from ticketfmt import data as D
from ticketfmt.data import (
    DATASETS,
    DataNotice,
    DatasetSpec,
    FolderLoader,
    ImageTensors,
    TensorLoader,
    cache_path,
    check_identity,
    default_data_dir,
    eval_split_name,
    get_spec,
    input_pipeline,
    load_split,
    make_loader,
    register_dataset,
    subset_indices,
)
from ticketfmt.data.specs import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, IMAGENET_MEAN, IMAGENET_STD
from ticketfmt.errors import DataError
from ticketfmt.zoo import get_arch

MINI = "cifar10-mini-jpeg.tar.gz"
N_TRAIN, N_TEST = 200, 200  # the tiny archive: 20 train and 20 test images a class
R20 = get_arch("cifar_resnet20")  # a 32x32 network
R18 = get_arch("resnet18")  # a 224x224 network


@pytest.fixture(scope="module")
def mini_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder where the tiny cifar10-mini has been decoded once (both splits)."""
    cache = tmp_path_factory.mktemp("cache")
    load_split("cifar10-mini", "train", DATA_DIR, cache_dir=cache)
    return cache


@pytest.fixture(scope="module")
def mini_train(mini_cache: Path) -> ImageTensors:
    data = load_split("cifar10-mini", "train", DATA_DIR, cache_dir=mini_cache)
    assert isinstance(data, ImageTensors)
    return data


def _norm(images_u8: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Reference normalization: uint8 NHWC -> float NCHW."""
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (images_u8.permute(0, 3, 1, 2).float() / 255 - m) / s


def _pngs(root: Path) -> list[np.ndarray]:
    """The images of an ImageFolder split in ImageFolder order (sorted class, then file)."""
    from PIL import Image

    return [np.asarray(Image.open(p).convert("RGB")) for c in sorted(root.iterdir()) for p in sorted(c.iterdir())]


# --------------------------------------------------------------------------- specs, registry, errors


def test_specs() -> None:
    assert list(DATASETS) == ["cifar10", "cifar100", "cifar10-jpeg", "cifar10-mini", "imagenet", "imagefolder", "mnist",
                              "mnist-mini"]
    assert DATASETS["cifar100"].num_classes == 100 and DATASETS["cifar100"].small
    assert not DATASETS["imagenet"].small and DATASETS["imagenet"].image_size == 224
    with pytest.raises(Exception):
        DATASETS["cifar10"].num_classes = 3  # type: ignore[misc]  # frozen
    with pytest.raises(TypeError):
        DATASETS["toy"] = DATASETS["cifar10"]  # type: ignore[index]  # read-only view


def test_registry_raises_on_duplicates_and_bad_names() -> None:
    with pytest.raises(DataError, match="registered already"):
        register_dataset(DATASETS["cifar10-mini"])
    with pytest.raises(DataError, match="':'"):
        register_dataset(DatasetSpec("a:b", 2, 32, CIFAR10_MEAN, CIFAR10_STD, True, "archive"))
    assert DATASETS["cifar10-mini"].archive == MINI  # the original is untouched


def test_adding_a_dataset_is_one_registration(tmp_path: Path) -> None:
    """A new dataset of a known source kind: one DatasetSpec, then every API serves it."""
    name = f"toy-{uuid.uuid4().hex[:8]}"
    register_dataset(DatasetSpec(name, 3, 32, CIFAR10_MEAN, CIFAR10_STD, True, "archive",
                                 archive="toy.tar.gz", archive_root="toy", description="a test dataset"))
    write_archive(tmp_path / "toy.tar.gz", root="toy", per_class=(4, 2), classes=("a", "b", "c"))
    assert get_spec(name).num_classes == 3
    loader = make_loader(name, "train", 5, train=True, device="cpu", data_dir=tmp_path,
                         cache_dir=tmp_path / "cache", num_workers=1)
    assert isinstance(loader, TensorLoader) and loader.num_samples == 12
    assert loader.augmentation == "crop32-pad4+flip"
    assert load_split(name, "test", tmp_path, tmp_path / "cache").classes == ("a", "b", "c")


def test_unknown_dataset_error() -> None:
    with pytest.raises(DataError) as e:
        make_loader("svhn", "train", 8, train=True, device="cpu")
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert "\n" not in msg and "svhn" in msg
    assert "cifar10-mini" in msg and "imagefolder:PATH" in msg


def test_missing_data_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFMT_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("TICKETFMT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="TICKETFMT_DATA") as e:
        load_split("cifar10-mini", "train")
    assert "\n" not in str(e.value) and "nowhere" in str(e.value)
    with pytest.raises(DataError, match="data-dir"):
        load_split("imagenet", "train")
    with pytest.raises(DataError, match="train/"):
        load_split("imagenet", "train", data_dir=tmp_path)
    with pytest.raises(DataError, match="split"):
        load_split("cifar10-mini", "valid")  # type: ignore[arg-type]
    assert not (tmp_path / "cache").exists()  # nothing written


def test_default_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TICKETFMT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "ticketfmt" / "data"
    monkeypatch.setenv("TICKETFMT_DATA", str(tmp_path / "new"))
    assert default_data_dir() == tmp_path / "new"
    monkeypatch.setenv("TICKETFMT_CACHE", str(tmp_path))
    assert cache_path("cifar10-mini", "test") == tmp_path / "cifar10-mini-test.safetensors"
    a, b = cache_path("imagefolder:/x/a", "train"), cache_path("imagefolder:/x/b", "train")
    assert a != b and a.name.startswith("imagefolder-") and ":" not in a.name


def test_env_data_folder_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TICKETFMT_DATA", str(DATA_DIR))
    data = load_split("cifar10-mini", "test", cache_dir=tmp_path)
    assert len(data) == N_TEST


def test_package_never_names_the_shared_data_folder() -> None:
    root = Path(ticketfmt.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "shared/data" not in text and '"shared" / "data"' not in text, path


def test_data_layer_does_not_import_cli_libraries() -> None:
    for path in Path(D.__file__).parent.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
        assert not names & {"typer", "rich", "click"}, path


# --------------------------------------------------------------------------- test data


def test_tiny_data_is_what_the_script_writes(tmp_path: Path) -> None:
    """tests/data/ is reproducible from tests/make_data.py (same members, same pixels up to JPEG noise)."""
    from PIL import Image

    fresh = write_archive(tmp_path / MINI)

    def members(path: Path) -> dict[str, bytes]:
        with tarfile.open(path) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]

    old, new = members(DATA_DIR / MINI), members(fresh)
    assert sorted(old) == sorted(new) and len(old) == N_TRAIN + N_TEST
    assert {n.split("/")[2] for n in old} == set(CIFAR10_CLASSES)
    for name in list(old)[::37]:
        a, b = (np.asarray(Image.open(io.BytesIO(x[name])), dtype=np.float32) for x in (old, new))
        assert a.shape == (32, 32, 3) and np.abs(a - b).mean() < 1.0, name
    tree = write_imagefolder(tmp_path / "tree")
    for split in ("train", "test"):
        for a, b in zip(_pngs(DATA_DIR / "imagefolder32" / split), _pngs(tree / split), strict=True):
            assert np.array_equal(a, b)


# --------------------------------------------------------------------------- cache


def test_cache_written_once_and_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFMT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TICKETFMT_DATA", str(DATA_DIR))
    calls: list[tuple[str, int, int]] = []
    first = load_split("cifar10-mini", "test", progress=lambda *a: calls.append(a), workers=2)
    assert calls and all(isinstance(d, str) and isinstance(n, int) for d, n, _ in calls)
    assert calls[-1][1] == calls[-1][2] == N_TRAIN + N_TEST  # one pass decodes both splits
    for split in ("train", "test"):
        assert (tmp_path / "cache" / f"cifar10-mini-{split}.safetensors").is_file()

    # later loads neither decode nor need the source archive
    def no_decode(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(D.cache, "_decode_archive", no_decode)
    again = load_split("cifar10-mini", "test")
    monkeypatch.setenv("TICKETFMT_DATA", str(tmp_path / "gone"))
    gone = load_split("cifar10-mini", "test")
    for d in (again, gone):
        assert torch.equal(first.images, d.images) and torch.equal(first.labels, d.labels)
        assert d.classes == CIFAR10_CLASSES
    assert load_split("cifar10-mini", "train").images.shape[0] == N_TRAIN


def test_cache_is_rebuilt_when_the_source_changes(tmp_path: Path) -> None:
    """A cache records its source: another archive of the same name is decoded, not served stale."""
    cache = tmp_path / "cache"
    a = load_split("cifar10-mini", "train", DATA_DIR, cache, workers=1)
    other = write_archive(tmp_path / "other" / MINI, per_class=(3, 1), seed=1)
    b = load_split("cifar10-mini", "train", other.parent, cache, workers=1)
    assert len(a) == N_TRAIN and len(b) == 30
    assert len(load_split("cifar10-mini", "train", DATA_DIR, cache, workers=1)) == N_TRAIN


def test_damaged_cache_is_rebuilt(tmp_path: Path, mini_train: ImageTensors) -> None:
    path = cache_path("cifar10-mini", "train", tmp_path)
    path.write_bytes(b"not a safetensors file")
    data = load_split("cifar10-mini", "train", DATA_DIR, cache_dir=tmp_path, workers=1)
    assert torch.equal(data.images, mini_train.images)


def test_mini_shapes_labels_and_order(mini_cache: Path, mini_train: ImageTensors) -> None:
    assert mini_train.images.shape == (N_TRAIN, 32, 32, 3) and mini_train.images.dtype == torch.uint8
    assert mini_train.labels.dtype == torch.int64
    assert mini_train.labels.bincount().tolist() == [20] * 10
    assert torch.equal(mini_train.labels, torch.arange(10).repeat_interleave(20))  # sorted order
    assert mini_train.classes == CIFAR10_CLASSES
    test = load_split("cifar10-mini", "test", DATA_DIR, cache_dir=mini_cache)
    assert test.images.shape == (N_TEST, 32, 32, 3) and test.labels.bincount().tolist() == [20] * 10
    x, y = mini_train[25]
    assert x.shape == (32, 32, 3) and y.item() == 1

    # ImageFolder order: image 21 is automobile/<second file in sorted order>
    from PIL import Image

    with tarfile.open(DATA_DIR / MINI) as tar:
        names = sorted(n for n in tar.getnames() if n.startswith("cifar10-mini/train/automobile/")
                       and n.endswith(".jpg"))
        blob = tar.extractfile(names[1]).read()  # type: ignore[union-attr]
    expected = np.array(Image.open(io.BytesIO(blob)).convert("RGB"))
    assert torch.equal(mini_train.images[21], torch.from_numpy(expected))


def test_subset(mini_cache: Path, mini_train: ImageTensors) -> None:
    def sub(n: int, seed: int) -> ImageTensors:
        return load_split("cifar10-mini", "train", DATA_DIR, mini_cache, subset=n, seed=seed)

    a, b, c = sub(100, 1), sub(100, 1), sub(100, 2)
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
        sub(5000, 0)


# --------------------------------------------------------------------------- TensorLoader


def _loader(images: torch.Tensor, **kw) -> TensorLoader:
    kw.setdefault("train", True)
    return TensorLoader(images, torch.arange(len(images)) % 10, kw.pop("batch_size", 64),
                        mean=IMAGENET_MEAN, std=IMAGENET_STD, **kw)


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
        assert loader.augmentation == ("crop32-pad4+flip" if train else "none")
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


def _crop_flip_matches(out: torch.Tensor, images: torch.Tensor) -> list[tuple[int, int, bool]]:
    """For each output image, the (dy, dx, flip) of its zero-padded original it equals; fails if none does."""
    n = len(images)
    padded = torch.nn.functional.pad(images.permute(0, 3, 1, 2), (4, 4, 4, 4))  # uint8 zeros
    ref = _norm(padded.permute(0, 2, 3, 1))  # [n, 3, 40, 40], padding normalized from 0
    match = torch.full((n,), -1)
    cands = [(oy, ox, flip) for oy in range(9) for ox in range(9) for flip in (False, True)]
    for k, (oy, ox, flip) in enumerate(cands):
        crop = ref[:, :, oy:oy + 32, ox:ox + 32]
        crop = crop.flip(-1) if flip else crop
        hit = ((out - crop).abs().amax(dim=(1, 2, 3)) < 1e-5) & (match < 0)
        match[hit] = k
    assert (match >= 0).all(), "an image is not a crop/flip of its zero-padded original"
    return [cands[k] for k in match.tolist()]


def test_crops_and_flips_happen_and_are_exact() -> None:
    """Every augmented image is one of the 9x9x2 crops/flips of its zero-padded original."""
    images = _pattern_images(128, seed=3)
    loader = _loader(images, shuffle=False, batch_size=100, seed=5)
    out = torch.cat([x for x, _ in loader])
    found = _crop_flip_matches(out, images)
    assert {f for _, _, f in found} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in found}) > 20
    assert not torch.allclose(out, _norm(images), atol=1e-5)  # augmentation changed things


def test_padding_is_zero_before_normalization() -> None:
    white = torch.full((128, 32, 32, 3), 255, dtype=torch.uint8)
    x = torch.cat([b for b, _ in _loader(white, batch_size=64)])
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    pad_value = (-mean / std).view(1, 3, 1, 1)
    white_value = ((1 - mean) / std).view(1, 3, 1, 1)
    is_pad = torch.isclose(x, pad_value.expand_as(x), atol=1e-5).all(1)
    is_white = torch.isclose(x, white_value.expand_as(x), atol=1e-5).all(1)
    assert (is_pad | is_white).all()
    assert is_pad.any() and is_white.all(0).any()
    assert is_pad.float().mean() < 0.3  # at most 8 of 32 rows/cols are padding
    # evaluation never pads
    ev = torch.cat([b for b, _ in _loader(white, train=False)])
    assert torch.isclose(ev, white_value.expand_as(ev), atol=1e-5).all()


def test_tensor_loader_on_mini(mini_cache: Path) -> None:
    loader = make_loader("cifar10-mini", "train", 64, train=True, device="cpu", data_dir=DATA_DIR,
                         seed=0, cache_dir=mini_cache)
    assert isinstance(loader, TensorLoader) and len(loader) == 4
    loader.set_epoch(0)
    x, y = next(iter(loader))
    assert x.shape == (64, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)
    assert 0 <= y.min() and y.max() <= 9
    ev = make_loader("cifar10-mini", "test", 50, train=False, device=torch.device("cpu"),
                     data_dir=DATA_DIR, cache_dir=mini_cache)
    assert len(ev) == 4 and sum(b.shape[0] for b, _ in ev) == N_TEST
    plain = make_loader("cifar10-mini", "train", 64, train=True, device="cpu", data_dir=DATA_DIR,
                        cache_dir=mini_cache, augment=False)
    assert plain.augmentation == "none" and plain.shuffle


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


def test_make_loader_distributed(mini_cache: Path) -> None:
    idx = []
    for rank in range(3):
        loader = make_loader("cifar10-mini", "train", 64, train=True, device="cpu", data_dir=DATA_DIR,
                             distributed=True, rank=rank, world_size=3, cache_dir=mini_cache)
        assert isinstance(loader, TensorLoader) and loader.num_samples == N_TRAIN // 3
        idx.append(set(loader.indices().tolist()))
    assert len(idx[0] | idx[1] | idx[2]) == 3 * (N_TRAIN // 3)
    with pytest.raises(DataError, match="rank"):
        make_loader("cifar10-mini", "train", 64, train=True, device="cpu", distributed=True,
                    rank=3, world_size=3, data_dir=DATA_DIR, cache_dir=mini_cache)


# --------------------------------------------------------------------------- imagefolder


def _make_folder(root: Path, splits=("train", "val"), per_class: int = 3) -> Path:
    """Two classes of PNGs of slightly different, non-square sizes (an ImageNet-like tree)."""
    return write_imagefolder(root, size=[(40 + i, 48) for i in range(per_class)], splits=splits,
                             per_class=(per_class, per_class))


def test_imagefolder_dataset(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "pets")
    name = f"imagefolder:{root}"
    spec = get_spec(name)
    assert spec.num_classes == 2 and not spec.small and spec.path == root
    ds = load_split(name, "test")
    assert len(ds) == 6 and ds.classes == ["cat", "dog"]  # type: ignore[attr-defined]
    assert len(load_split(name, "train", subset=4)) == 4

    loader = make_loader(name, "train", 4, train=True, device="cpu", num_workers=1, seed=0)
    assert isinstance(loader, FolderLoader) and len(loader) == 2 and loader.augmentation == "rrc224+flip"
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
    assert xs.shape == (6, 3, 224, 224) and ev.augmentation == "none"

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


# --------------------------------------------------------------------------- fidelity (issue 11)


def test_normalization_is_the_reference_and_cifar_is_an_option(mini_cache: Path) -> None:
    """open_lth normalizes CIFAR-10 with ImageNet's mean/std; normalize="cifar" keeps CIFAR's."""
    images = load_split("cifar10-mini", "test", DATA_DIR, mini_cache).images

    def batches(**kw) -> torch.Tensor:
        ev = make_loader("cifar10-mini", "test", 50, train=False, device="cpu", data_dir=DATA_DIR,
                         cache_dir=mini_cache, **kw)
        return torch.cat([x for x, _ in ev])

    torch.testing.assert_close(batches(), _norm(images, IMAGENET_MEAN, IMAGENET_STD), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batches(normalize="cifar"), _norm(images, CIFAR10_MEAN, CIFAR10_STD),
                               rtol=1e-5, atol=1e-5)
    assert input_pipeline("cifar100", 32, normalize="cifar").mean == CIFAR100_MEAN
    assert input_pipeline("cifar100", 32).mean == IMAGENET_MEAN
    with pytest.raises(DataError, match="normalization"):
        make_loader("cifar10-mini", "test", 50, train=False, device="cpu", normalize="imagenet")


def test_imagenet_crop_is_the_reference_and_torchvision_is_an_option(tmp_path: Path) -> None:
    """open_lth: RandomResizedCrop(224, scale=(0.1, 1), ratio=(0.8, 1.25)), flip; test: Resize(256), CenterCrop(224)."""
    from torchvision import transforms as T

    root = _make_folder(tmp_path / "pets", splits=("train", "val"))

    def transforms(train: bool, **kw) -> list:
        loader = make_loader(f"imagefolder:{root}", "train", 2, train=train, device="cpu", num_workers=0,
                             input_size=R18, **kw)
        assert isinstance(loader, FolderLoader)
        return loader.dataset.transform.transforms  # type: ignore[attr-defined]

    ref = transforms(True)
    assert isinstance(ref[0], T.RandomResizedCrop) and ref[0].size == (224, 224)
    assert ref[0].scale == (0.1, 1.0) and ref[0].ratio == (0.8, 1.25)
    assert isinstance(ref[1], T.RandomHorizontalFlip)
    assert tuple(ref[3].mean) == IMAGENET_MEAN and tuple(ref[3].std) == IMAGENET_STD
    tv = transforms(True, crop="torchvision")[0]
    assert tv.scale == (0.08, 1.0) and tv.ratio == (3 / 4, 4 / 3)
    ev = transforms(False)
    assert isinstance(ev[0], T.Resize) and ev[0].size == 256 and ev[1].size == (224, 224)
    # the reference never crops below a tenth of the image; torchvision's default does
    img = torch.zeros(3, 100, 100)
    torch.manual_seed(0)
    areas = {k: [np.prod(T.RandomResizedCrop.get_params(img, t.scale, t.ratio)[2:]) / 1e4 for _ in range(400)]
             for k, t in (("ref", ref[0]), ("tv", tv))}
    assert min(areas["ref"]) >= 0.099 and min(areas["tv"]) < 0.1
    with pytest.raises(DataError, match="crop"):
        input_pipeline("imagenet", 224, crop="inception")


# --------------------------------------------------------------------------- input pipeline (issue 18)


def test_imagefolder_of_32px_images_gets_the_32px_pipeline(tmp_path: Path) -> None:
    """A 32x32 network on an ImageFolder tree of 32x32 images: tensor cache, crop with 4-pixel padding + flip."""
    root = write_imagefolder(tmp_path / "cifar-tree", size=32, per_class=(6, 3))
    name = f"imagefolder:{root}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataNotice)  # no resize, so no notice
        loader = make_loader(name, "train", 4, train=True, device="cpu", input_size=R20, seed=0,
                             cache_dir=tmp_path / "cache", num_workers=1)
        ev = make_loader(name, "test", 4, train=False, device="cpu", input_size=R20,
                         cache_dir=tmp_path / "cache", num_workers=1)
    assert isinstance(loader, TensorLoader) and loader.augmentation == "crop32-pad4+flip"
    assert input_pipeline(name, R20).augmentation == "crop32-pad4+flip"
    assert list((tmp_path / "cache").glob("imagefolder-*-train-32px.safetensors"))
    originals = torch.from_numpy(np.stack(_pngs(root / "train")))
    order = loader.indices()
    x = torch.cat([b for b, _ in loader])
    y = torch.cat([l for _, l in loader])
    assert torch.equal(y, order // 6)  # ImageFolder labels: 6 cats, then 6 dogs
    _crop_flip_matches(x, originals[order])  # the loader's batches are crops/flips of the PNGs
    assert isinstance(ev, TensorLoader) and ev.augmentation == "none"
    torch.testing.assert_close(torch.cat([b for b, _ in ev]), _norm(torch.from_numpy(np.stack(_pngs(root / "test")))))
    # without a network, the data decides the same
    assert input_pipeline(name).tensor and input_pipeline(f"imagefolder:{DATA_DIR / 'imagefolder32'}").size == 32


def test_images_of_another_size_are_resized_for_a_32px_network(tmp_path: Path) -> None:
    from PIL import Image

    root = write_imagefolder(tmp_path / "big", size=64, per_class=(2, 1))
    with pytest.warns(DataNotice, match="64x64 images are resized to 32x32"):
        loader = make_loader(f"imagefolder:{root}", "test", 2, train=False, device="cpu", input_size=32,
                             cache_dir=tmp_path / "cache", num_workers=1)
    x = torch.cat([b for b, _ in loader])
    fitted = np.stack([np.asarray(Image.fromarray(a).resize((32, 32), Image.BILINEAR)) for a in _pngs(root / "test")])
    torch.testing.assert_close(x, _norm(torch.from_numpy(fitted)))
    mixed = write_imagefolder(tmp_path / "mixed", size=[40, (30, 50)], per_class=(2, 1))
    pipe = input_pipeline(f"imagefolder:{mixed}", R20)
    assert pipe.tensor and pipe.decode_size == 32 and "other sizes" in str(pipe.notice)
    assert len(load_split(f"imagefolder:{mixed}", "train", cache_dir=tmp_path / "c2", size=32, workers=1)) == 4


def test_large_network_on_small_images_needs_resize(tmp_path: Path) -> None:
    root = write_imagefolder(tmp_path / "small", size=32, per_class=(2, 1))
    for name in (f"imagefolder:{root}", "cifar10-mini"):
        with pytest.raises(DataError, match="resize") as e:
            make_loader(name, "train", 2, train=True, device="cpu", input_size=R18, data_dir=DATA_DIR)
        assert "32x32 images" in str(e.value) and "224x224" in str(e.value) and "\n" not in str(e.value)
    with pytest.warns(DataNotice, match="upscaled to 224x224"):
        loader = make_loader("cifar10-mini", "train", 4, train=True, device="cpu", input_size=R18, resize=True,
                             data_dir=DATA_DIR, cache_dir=tmp_path / "cache", subset=8, num_workers=0)
    assert isinstance(loader, FolderLoader) and loader.augmentation == "rrc224+flip"
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 224, 224) and y.dtype == torch.int64


@pytest.mark.parametrize(("dataset", "arch", "expected"), [
    ("cifar10-mini", "cifar_resnet20", "crop32-pad4+flip"),
    ("cifar10", "cifar_vgg16", "crop32-pad4+flip"),
    ("imagefolder32", "cifar_resnet20", "crop32-pad4+flip"),
    ("imagefolder32", "resnet18", "error"),
    ("imagenet", "resnet18", "rrc224+flip"),
    ("imagenet", "cifar_resnet20", "crop32-pad4+flip"),  # ImageNet resized to 32x32 (with a notice)
])
def test_pipeline_per_architecture_and_data(dataset: str, arch: str, expected: str) -> None:
    name = f"imagefolder:{DATA_DIR / 'imagefolder32'}" if dataset == "imagefolder32" else dataset
    if expected == "error":
        with pytest.raises(DataError, match="resize"):
            input_pipeline(name, get_arch(arch))
        return
    pipe = input_pipeline(name, get_arch(arch))
    assert pipe.augmentation == expected and pipe.size == get_arch(arch).input_size[-1]
    assert pipe.tensor == expected.startswith("crop")
    assert (pipe.notice is not None) == (dataset == "imagenet" and pipe.tensor)


def test_input_size_forms() -> None:
    assert input_pipeline("cifar10", 32).size == input_pipeline("cifar10", (3, 32, 32)).size == 32
    assert input_pipeline("imagenet", (224, 224)).size == 224
    with pytest.raises(DataError, match="square"):
        input_pipeline("imagenet", (3, 224, 200))


# --------------------------------------------------------------------------- dataset identity (issue 14)


def _toy_named_folder(splits=("val", "test")) -> str:
    """A named ImageFolder dataset like ``imagenet`` (checked class and image counts), small enough to build."""
    name = f"toynet-{uuid.uuid4().hex[:8]}"
    register_dataset(DatasetSpec(name, 2, 224, IMAGENET_MEAN, IMAGENET_STD, False, "imagefolder", resize=256,
                                 test_dirs=splits, split_sizes=(6, 2), eval_split="validation"))
    return name


def test_a_folder_given_as_imagenet_must_be_imagenet(tmp_path: Path) -> None:
    """A 10-class folder passed as `imagenet` is refused (never trained, recorded or published as ImageNet-1k)."""
    root = write_imagefolder(tmp_path / "ten", size=[(240, 256), (256, 240)], per_class=(3, 1), splits=("train", "val"),
                             classes=tuple(f"c{i}" for i in range(10)))
    for call in (lambda: load_split("imagenet", "train", data_dir=root),
                 lambda: load_split("imagenet", "test", data_dir=root),
                 lambda: input_pipeline("imagenet", R18, data_dir=root),
                 lambda: make_loader("imagenet", "train", 4, train=True, device="cpu", data_dir=root, input_size=R18)):
        with pytest.raises(DataError, match="not imagenet") as e:
            call()
        msg = str(e.value)
        assert "10 classes" in msg and "1,000 classes" in msg and f"imagefolder:{root}" in msg and "\n" not in msg
    # the same tree as what it is: a custom folder, recorded under its own name
    assert input_pipeline(f"imagefolder:{root}", R18).augmentation == "rrc224+flip"
    # 1000 classes but not ImageNet's image counts: refused too (the images are only counted, never read)
    many = tmp_path / "thousand"
    for i in range(1000):
        (many / "train" / f"n{i:04d}").mkdir(parents=True)
        (many / "train" / f"n{i:04d}" / "0.JPEG").write_bytes(b"")
    with pytest.raises(DataError, match=r"1,000 classes and 1,000 images.*1,281,167"):
        check_identity("imagenet", many)


def test_named_folder_identity_passes_exactly_and_train_test_trees_are_accepted(tmp_path: Path) -> None:
    name = _toy_named_folder()
    good = write_imagefolder(tmp_path / "good", size=48, per_class=(3, 1), splits=("train", "test"))
    assert len(load_split(name, "train", data_dir=good)) == 6
    assert len(load_split(name, "test", data_dir=good)) == 2  # train/ + test/ is what the message offers
    assert eval_split_name(name, good) == "validation"
    bad = write_imagefolder(tmp_path / "bad", size=48, per_class=(4, 1), splits=("train", "test"))
    with pytest.raises(DataError, match="8 images"):
        load_split(name, "train", data_dir=bad)
    assert DATASETS["imagenet"].test_dirs == ("val", "test")  # ImageNet: train/ and val/ (or test/)
    with pytest.raises(DataError, match=r"train/ and val/ \(or test/\)"):
        load_split("imagenet", "test", data_dir=write_imagefolder(tmp_path / "only", splits=("train", "x")))


def test_split_names_are_the_real_ones(tmp_path: Path) -> None:
    assert eval_split_name("imagenet") == "validation" and eval_split_name("cifar10-mini") == "test"
    val = write_imagefolder(tmp_path / "v", per_class=(1, 1), splits=("train", "val"))
    test = write_imagefolder(tmp_path / "t", per_class=(1, 1), splits=("train", "test"))
    assert eval_split_name(f"imagefolder:{val}") == "validation" and eval_split_name(f"imagefolder:{test}") == "test"


def test_a_partial_archive_is_not_the_named_dataset(tmp_path: Path) -> None:
    """cifar10-jpeg must hold all of CIFAR-10 (50,000/10,000); a smaller archive under its name is refused."""
    write_archive(tmp_path / "cifar10-jpeg.tar.gz", root="cifar10", per_class=(2, 1))
    with pytest.raises(DataError, match="not cifar10-jpeg") as e:
        load_split("cifar10-jpeg", "train", tmp_path, tmp_path / "cache", workers=1)
    msg = str(e.value)
    assert "train" in msg and "20 images" in msg and "50,000" in msg and "imagefolder:PATH" in msg
    assert "cifar10-jpeg.tar.gz" in msg
    assert not list((tmp_path / "cache").glob("*.safetensors"))  # nothing cached
