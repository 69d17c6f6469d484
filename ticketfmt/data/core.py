"""The data layer: dataset specs, cached 32x32 splits and fast batch loaders.

Two kinds of dataset are supported:

* **small** (32x32: ``cifar10``, ``cifar100``, ``cifar10-jpeg``, ``cifar10-mini``): a
  split is decoded once into a uint8 tensor ``[N, 32, 32, 3]`` plus int64 labels and
  saved as a safetensors file under the cache folder; later loads read that file. A
  :class:`TensorLoader` keeps the whole split on the training device and does the
  training augmentation (random crop with 4-pixel zero padding, random horizontal
  flip) in batch on that device.
* **large** (``imagenet``, ``imagefolder:PATH``): a standard torchvision pipeline
  (``RandomResizedCrop(224)`` + flip for training, resize 256 + center crop 224 for
  evaluation) behind a :class:`FolderLoader`, with worker processes and an optional
  ``DistributedSampler``.

Both loaders yield ``(images, labels)`` with ``images`` float32, NCHW, normalized and
in ``channels_last`` memory format, and both have ``set_epoch(epoch)`` and ``len()``.
:func:`make_loader` picks the right one.

Settings (read at call time):

* ``TICKETFMT_SHARED_DATA``: folder holding ``cifar10-jpeg.tar.gz`` and
  ``cifar10-mini-jpeg.tar.gz``; default ``../shared/data`` next to the project root.
* ``TICKETFMT_CACHE``: the decoded-tensor cache folder; default
  ``~/.cache/ticketfmt/data``.

Example:
    >>> from ticketfmt.data import make_loader
    >>> loader = make_loader("cifar10-mini", "train", 128, train=True, device="cpu")  # doctest: +SKIP
    >>> loader.set_epoch(0)  # doctest: +SKIP
    >>> images, labels = next(iter(loader))  # doctest: +SKIP
    >>> images.shape, images.is_contiguous(memory_format=torch.channels_last)  # doctest: +SKIP
    (torch.Size([128, 3, 32, 32]), True)
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import tarfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol

import numpy as np
import torch

from ticketfmt.format.atomic import atomic_write
from ticketfmt.errors import DataError

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "ImageTensors",
    "BatchLoader",
    "TensorLoader",
    "FolderLoader",
    "Progress",
    "get_spec",
    "shared_data_dir",
    "default_cache_dir",
    "cache_path",
    "load_split",
    "subset_indices",
    "make_loader",
]

Progress = Callable[[str, int, int], None]
"""A progress callback: ``progress(description, done, total)``."""

Split = Literal["train", "test"]

_CACHE_FORMAT = "ticketfmt-data-v1"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR10_STD = (0.2470, 0.2435, 0.2616)
_CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
_CIFAR100_STD = (0.2673, 0.2564, 0.2762)


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and how to read it.

    Attributes:
        name: the name it is selected by (``"imagefolder:/data/pets"`` once resolved).
        num_classes: number of classes (0 for the unresolved ``imagefolder`` template).
        image_size: side of the (square) network input, 32 or 224.
        mean: per-channel mean of the [0, 1] pixel values, RGB.
        std: per-channel standard deviation of the [0, 1] pixel values, RGB.
        small: True for 32x32 datasets served by :class:`TensorLoader`.
        source: ``"torchvision"``, ``"archive"`` (a shared tarball) or ``"imagefolder"``.
        archive: the tarball's file name in the shared data folder (archives only).
        archive_root: the top folder inside the tarball (archives only).
        path: the ImageFolder root of an ``imagefolder:PATH`` dataset.
        resize: the resize side before the center crop at evaluation (large only).
        test_dirs: folder names tried, in order, for the ``"test"`` split (large only).
        description: one line for ``--help`` texts and listings.

    Example:
        >>> DATASETS["cifar10-mini"].num_classes, DATASETS["cifar10-mini"].small
        (10, True)
        >>> get_spec("imagefolder:/nonexistent").source
        'imagefolder'
    """

    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    small: bool
    source: Literal["torchvision", "archive", "imagefolder"]
    archive: str | None = None
    archive_root: str | None = None
    path: Path | None = None
    resize: int | None = None
    test_dirs: tuple[str, ...] = ()
    description: str = ""


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "cifar10": DatasetSpec(
            "cifar10", 10, 32, _CIFAR10_MEAN, _CIFAR10_STD, True, "torchvision",
            description="CIFAR-10 via torchvision (downloaded into --data-dir when online)",
        ),
        "cifar100": DatasetSpec(
            "cifar100", 100, 32, _CIFAR100_MEAN, _CIFAR100_STD, True, "torchvision",
            description="CIFAR-100 via torchvision (downloaded into --data-dir when online)",
        ),
        "cifar10-jpeg": DatasetSpec(
            "cifar10-jpeg", 10, 32, _CIFAR10_MEAN, _CIFAR10_STD, True, "archive",
            archive="cifar10-jpeg.tar.gz", archive_root="cifar10",
            description="all of CIFAR-10 as JPEG from the shared data folder (50,000/10,000)",
        ),
        "cifar10-mini": DatasetSpec(
            "cifar10-mini", 10, 32, _CIFAR10_MEAN, _CIFAR10_STD, True, "archive",
            archive="cifar10-mini-jpeg.tar.gz", archive_root="cifar10-mini",
            description="a fixed CIFAR-10 JPEG subset from the shared data folder (2,000/500)",
        ),
        "imagenet": DatasetSpec(
            "imagenet", 1000, 224, _IMAGENET_MEAN, _IMAGENET_STD, False, "imagefolder",
            resize=256, test_dirs=("val",),
            description="ImageNet as an ImageFolder tree with train/ and val/ at --data-dir",
        ),
        "imagefolder": DatasetSpec(
            "imagefolder", 0, 224, _IMAGENET_MEAN, _IMAGENET_STD, False, "imagefolder",
            resize=256, test_dirs=("val", "test"),
            description="imagefolder:PATH, any ImageFolder tree with train/ and val/ or test/",
        ),
    }
)
"""Dataset specs by name; ``imagefolder`` is the template of ``imagefolder:PATH``."""


def _known_names() -> str:
    return ", ".join(n for n in DATASETS if n != "imagefolder") + " or imagefolder:PATH"


def get_spec(name: str) -> DatasetSpec:
    """Return the spec of dataset ``name``; ``imagefolder:PATH`` gets its path filled in.

    The class count of an ``imagefolder:PATH`` dataset is read from ``PATH/train`` when
    that folder exists (0 otherwise; :func:`load_split` reports the missing folder).

    Raises:
        DataError: the name is unknown.

    Example:
        >>> get_spec("cifar100").num_classes
        100
        >>> get_spec("mnist")
        Traceback (most recent call last):
        ...
        ticketfmt.errors.DataError: unknown dataset 'mnist'; choose one of cifar10, cifar100, cifar10-jpeg, cifar10-mini, imagenet or imagefolder:PATH
    """
    if name in DATASETS and name != "imagefolder":
        return DATASETS[name]
    if name.startswith("imagefolder:") and len(name) > len("imagefolder:"):
        path = Path(name[len("imagefolder:"):]).expanduser()
        train = path / "train"
        classes = [d for d in train.iterdir() if d.is_dir()] if train.is_dir() else []
        return replace(DATASETS["imagefolder"], name=name, path=path, num_classes=len(classes))
    raise DataError(f"unknown dataset {name!r}", fix=f"choose one of {_known_names()}")


# --------------------------------------------------------------------------- settings


def shared_data_dir() -> Path:
    """The shared data folder: ``$TICKETFMT_SHARED_DATA`` or ``../shared/data`` next to the project.

    Example:
        >>> shared_data_dir().name
        'data'
    """
    env = os.environ.get("TICKETFMT_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def default_cache_dir() -> Path:
    """The decoded-tensor cache folder: ``$TICKETFMT_CACHE`` or ``~/.cache/ticketfmt/data``.

    Example:
        >>> default_cache_dir().name in ("data", os.path.basename(os.environ.get("TICKETFMT_CACHE", "")))
        True
    """
    env = os.environ.get("TICKETFMT_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ticketfmt" / "data"


def cache_path(name: str, split: Split, cache_dir: str | Path | None = None) -> Path:
    """Where the decoded tensors of a small dataset's split live.

    Example:
        >>> cache_path("cifar10-mini", "train", "/tmp/c").as_posix()
        '/tmp/c/cifar10-mini-train.safetensors'
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / f"{name}-{split}.safetensors"


# --------------------------------------------------------------------------- tensors


@dataclass(frozen=True, eq=False)
class ImageTensors(torch.utils.data.Dataset):
    """A decoded small-image split: uint8 ``images [N, H, W, 3]`` and int64 ``labels [N]``.

    Indexing gives ``(image, label)`` like a ``TensorDataset``.

    Example:
        >>> data = ImageTensors(torch.zeros(4, 32, 32, 3, dtype=torch.uint8),
        ...                     torch.tensor([0, 1, 0, 1]), ("a", "b"))
        >>> len(data), data[1][1].item()
        (4, 1)
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


def subset_indices(labels: torch.Tensor | Sequence[int], n: int, seed: int = 0) -> torch.Tensor:
    """Pick ``n`` indices, class-balanced and seeded, returned in ascending order.

    The classes take turns (round robin over a seeded shuffle of each class), so every
    class gets ``n // C`` or one more image while it has images left.

    Raises:
        DataError: ``n`` is not in ``1..len(labels)``.

    Example:
        >>> idx = subset_indices(torch.tensor([0, 0, 0, 1, 1, 1]), 4, seed=0)
        >>> len(idx), torch.tensor([0, 0, 0, 1, 1, 1])[idx].bincount().tolist()
        (4, [2, 2])
    """
    labels = torch.as_tensor(labels, dtype=torch.int64)
    total = int(labels.numel())
    if not 1 <= n <= total:
        raise DataError(f"subset of {n} images asked from a split of {total}",
                        fix=f"pass a subset between 1 and {total}")
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(total, generator=gen)
    shuffled = labels[perm]
    # rank of each element among the elements of its class, in permutation order
    order = torch.argsort(shuffled, stable=True)
    counts = torch.bincount(shuffled)
    starts = torch.cumsum(counts, 0) - counts
    rank_sorted = torch.arange(total) - starts[shuffled[order]]
    rank = torch.empty(total, dtype=torch.int64)
    rank[order] = rank_sorted
    # turn r of the round robin comes before turn r + 1; ties keep permutation order
    chosen = perm[torch.argsort(rank, stable=True)[:n]]
    return torch.sort(chosen).values


def _decode_one(blob: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        if im.mode != "RGB":
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
        return np.asarray(im, dtype=np.uint8)


def _decode_chunk(blobs: list[bytes]) -> np.ndarray:
    """Decode encoded images (PIL) into one uint8 array ``[n, H, W, 3]``; sizes must agree."""
    arrays = [_decode_one(b) for b in blobs]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"images of different sizes {sorted(shapes)} in a 32x32 dataset",
                        fix="use imagefolder:PATH for other image sizes")
    return np.stack(arrays)


def _iter_archive(archive: Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, bytes)`` of the regular files of a tarball, in archive order."""
    if archive.name.endswith((".gz", ".tgz")):
        import gzip

        # gunzip in one go: tarfile parses an in-memory stream much faster
        tar = tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive.read_bytes())), mode="r:")
    else:
        tar = tarfile.open(archive, "r:*")
    with tar:
        for member in tar:
            if member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                yield member.name, f.read()


def _decode_archive(spec: DatasetSpec, archive: Path, progress: Progress | None,
                    workers: int = 2) -> dict[str, ImageTensors]:
    """Decode every split of a shared tarball in one pass, in sorted ImageFolder order.

    Encoded images are handed to a pool of ``workers`` processes in chunks while the
    archive is still being read, so reading and decoding overlap.
    """
    root = f"{spec.archive_root}/"
    keys: dict[str, list[tuple[str, str]]] = {}
    pending: list[tuple[str, Any]] = []  # (split, AsyncResult or array), in read order
    chunk: dict[str, list[bytes]] = {}
    chunk_size = 1000
    read = 0
    pool = None
    if workers > 1:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        pool = ctx.Pool(workers)

    def submit(split: str, blobs: list[bytes]) -> None:
        if pool is not None:
            pending.append((split, pool.apply_async(_decode_chunk, (blobs,))))
        else:
            pending.append((split, _decode_chunk(blobs)))

    try:
        try:
            for name, blob in _iter_archive(archive):
                if not name.startswith(root):
                    continue
                parts = name[len(root):].split("/")
                if (len(parts) != 3 or parts[0] not in ("train", "test")
                        or not parts[2].lower().endswith(_IMAGE_SUFFIXES)):
                    continue
                split = parts[0]
                keys.setdefault(split, []).append((parts[1], parts[2]))
                chunk.setdefault(split, []).append(blob)
                read += 1
                if len(chunk[split]) == chunk_size:
                    submit(split, chunk.pop(split))
                    if progress:
                        progress(f"reading {archive.name}", read, 0)
        except (OSError, tarfile.TarError, EOFError, zlib.error) as e:
            raise DataError(f"cannot read {archive}: {e}",
                            fix="the archive looks damaged; copy it again") from e
        for split, blobs in chunk.items():
            submit(split, blobs)
        parts_by_split: dict[str, list[np.ndarray]] = {}
        done = 0
        for split, result in pending:
            arr = result.get() if pool is not None else result
            parts_by_split.setdefault(split, []).append(arr)
            done += len(arr)
            if progress:
                progress(f"decoding {spec.name}", done, read)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if not keys:
        raise DataError(f"{archive} holds no images under {root}train/ or {root}test/",
                        fix=f"check that it is the {spec.name} archive")
    out: dict[str, ImageTensors] = {}
    for split, split_keys in keys.items():
        shapes = {a.shape[1:] for a in parts_by_split[split]}
        if len(shapes) != 1:
            raise DataError(f"{archive}: images of different sizes {sorted(shapes)}",
                            fix="use imagefolder:PATH for other image sizes")
        images = np.concatenate(parts_by_split[split])
        order = sorted(range(len(split_keys)), key=split_keys.__getitem__)
        classes = tuple(sorted({c for c, _ in split_keys}))
        index = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([index[split_keys[i][0]] for i in order], dtype=torch.int64)
        images_t = torch.from_numpy(images[np.asarray(order, dtype=np.int64)])
        out[split] = ImageTensors(images_t, labels, classes)
    return out


def _decode_torchvision(spec: DatasetSpec, split: Split, data_dir: Path | None,
                        progress: Progress | None) -> ImageTensors:
    """Read a split of torchvision's CIFAR-10/100, downloading it when it is not there."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if spec.name == "cifar10" else torchvision.datasets.CIFAR100
    root = data_dir if data_dir is not None else default_cache_dir() / "downloads"
    try:
        ds = cls(root=str(root), train=split == "train", download=False)
    except RuntimeError:
        if progress:
            progress(f"downloading {spec.name} to {root}", 0, 1)
        try:
            ds = cls(root=str(root), train=split == "train", download=True)
        except Exception as e:  # noqa: BLE001 - URLError, OSError, RuntimeError, ...
            raise DataError(f"{spec.name}: could not download to {root} ({type(e).__name__}: {e})",
                            fix="go online, put the torchvision archive in --data-dir, "
                                "or use --dataset cifar10-jpeg") from e
    images = torch.from_numpy(np.ascontiguousarray(ds.data, dtype=np.uint8))
    labels = torch.tensor(list(ds.targets), dtype=torch.int64)
    return ImageTensors(images, labels, tuple(ds.classes))


def _write_cache(path: Path, data: ImageTensors, spec: DatasetSpec, split: str) -> None:
    from safetensors.torch import save

    meta = {"format": _CACHE_FORMAT, "dataset": spec.name, "split": split,
            "classes": json.dumps(list(data.classes))}
    blob = save({"images": data.images.contiguous(), "labels": data.labels.contiguous()},
                metadata=meta)
    atomic_write(path, [blob])  # concurrent ranks never see half a file


def _read_cache(path: Path) -> ImageTensors | None:
    """Read a cache file; None when it is absent, foreign or damaged (it is then rebuilt)."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != _CACHE_FORMAT:
                return None
            images = f.get_tensor("images")
            labels = f.get_tensor("labels")
        classes = tuple(json.loads(meta["classes"]))
    except Exception:  # noqa: BLE001 - any damage means "rebuild"
        return None
    if images.dtype != torch.uint8 or images.ndim != 4 or labels.shape != images.shape[:1]:
        return None
    return ImageTensors(images, labels.to(torch.int64), classes)


def _imagefolder_root(spec: DatasetSpec, split: Split, data_dir: str | Path | None) -> Path:
    if spec.path is not None:
        base = spec.path
    elif data_dir is not None:
        base = Path(data_dir).expanduser()
    else:
        raise DataError(f"{spec.name} needs a data folder",
                        fix="pass --data-dir pointing at a folder with train/ and val/")
    names = ("train",) if split == "train" else spec.test_dirs
    for n in names:
        if (base / n).is_dir():
            return base / n
    want = " or ".join(f"{n}/" for n in names)
    raise DataError(f"{spec.name}: {base} has no {want}",
                    fix="point it at an ImageFolder tree with train/ and val/ (or test/)")


def load_split(name: str, split: Split, data_dir: str | Path | None = None,
               cache_dir: str | Path | None = None, subset: int | None = None, seed: int = 0,
               progress: Progress | None = None, *, transform: Callable[[Any], Any] | None = None,
               workers: int = 2) -> ImageTensors | torch.utils.data.Dataset:
    """Load one split of a dataset.

    Small (32x32) datasets come back as :class:`ImageTensors`, decoded once and cached in
    ``cache_path(name, split, cache_dir)``; later calls read the cache. Large datasets come
    back as a ``torchvision.datasets.ImageFolder`` (with ``transform``), wrapped in a
    ``Subset`` when ``subset`` is given.

    Args:
        name: a key of :data:`DATASETS` or ``imagefolder:PATH``.
        split: ``"train"`` or ``"test"`` (``val/`` for ImageFolder trees).
        data_dir: where the source lives: the shared-archive folder (default
            ``$TICKETFMT_SHARED_DATA``), the torchvision root (default
            ``<cache>/downloads``) or the ImageFolder root of ``imagenet``.
        cache_dir: the cache folder; default ``$TICKETFMT_CACHE`` or ``~/.cache/ticketfmt/data``.
        subset: keep a seeded, class-balanced subset of this many images.
        seed: the seed of the subset.
        progress: called as ``progress(description, done, total)`` while decoding.
        transform: per-image transform of large datasets (ignored for small ones).
        workers: decoding processes for the first load of a small dataset.

    Raises:
        DataError: unknown name, missing data, unreadable archive, bad subset.

    Example:
        >>> train = load_split("cifar10-mini", "train")  # doctest: +SKIP
        >>> train.images.shape, train.labels.bincount().tolist()  # doctest: +SKIP
        (torch.Size([2000, 32, 32, 3]), [200, 200, 200, 200, 200, 200, 200, 200, 200, 200])
    """
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}", fix="use 'train' or 'test'")
    spec = get_spec(name)
    data_path = Path(data_dir).expanduser() if data_dir is not None else None
    if not spec.small:
        root = _imagefolder_root(spec, split, data_path)
        from torchvision.datasets import ImageFolder

        try:
            ds: torch.utils.data.Dataset = ImageFolder(str(root), transform=transform)
        except (FileNotFoundError, OSError) as e:
            raise DataError(f"{spec.name}: cannot read {root} ({e})",
                            fix="each class needs its own sub-folder of images") from e
        if subset is not None:
            ds = torch.utils.data.Subset(ds, subset_indices(ds.targets, subset, seed).tolist())
        return ds

    path = cache_path(spec.name, split, cache_dir)
    data = _read_cache(path)
    if data is None:
        if spec.source == "archive":
            base = data_path if data_path is not None else shared_data_dir()
            archive = base / str(spec.archive)
            if not archive.is_file():
                raise DataError(f"{spec.name}: {archive} not found",
                                fix="set TICKETFMT_SHARED_DATA (or --data-dir) to the folder "
                                    f"holding {spec.archive}")
            decoded = _decode_archive(spec, archive, progress, workers)
        else:
            decoded = {split: _decode_torchvision(spec, split, data_path, progress)}
        if split not in decoded:
            raise DataError(f"{spec.name}: no {split} images in the source",
                            fix="check the data source")
        for s, d in decoded.items():  # one pass of an archive caches every split
            if len(d.classes) != spec.num_classes:
                raise DataError(f"{spec.name} {s}: found {len(d.classes)} classes, "
                                f"expected {spec.num_classes}", fix="check the data source")
            _write_cache(cache_path(spec.name, s, cache_dir), d, spec, s)  # type: ignore[arg-type]
        data = decoded[split]
    if subset is not None:
        idx = subset_indices(data.labels, subset, seed)
        data = ImageTensors(data.images[idx], data.labels[idx], data.classes)
    return data


# --------------------------------------------------------------------------- loaders


class BatchLoader(Protocol):
    """What every loader offers: ``set_epoch``, ``len()`` (batches) and ``(images, labels)`` batches."""

    num_samples: int

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 0x5DEECE66D) % (2**63 - 1)


class TensorLoader:
    """Batches of a uint8 NHWC image tensor held on the training device.

    Every batch is ``(images, labels)``: ``images`` float, NCHW, normalized with
    ``mean``/``std`` and in ``channels_last`` memory format; ``labels`` int64. With
    ``augment`` each image is randomly cropped from its 4-pixel zero-padded version
    (the padding is 0 before normalization) and flipped horizontally with probability
    one half, all in one gather on the device (no per-image Python loop).

    The order and the augmentation are drawn on the CPU from a ``torch.Generator``
    seeded with ``(seed, epoch)``, so they are the same on every device and every rank;
    call :meth:`set_epoch` before each epoch. With ``world_size > 1`` each rank gets a
    disjoint shard of that permutation: in shuffled mode all shards have the same size
    (a tail of fewer than ``world_size`` images is left out, a different one each
    epoch); in unshuffled mode (evaluation) the shards cover the whole split and
    differ in size by at most one image.

    Example:
        >>> images = torch.randint(0, 256, (10, 32, 32, 3), dtype=torch.uint8)
        >>> loader = TensorLoader(images, torch.arange(10), 4, mean=(0.5,) * 3,
        ...                       std=(0.25,) * 3, train=True, seed=0)
        >>> loader.set_epoch(1)
        >>> [tuple(x.shape) for x, _ in loader]
        [(4, 3, 32, 32), (4, 3, 32, 32), (2, 3, 32, 32)]
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *,
                 mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu",
                 train: bool = False, shuffle: bool | None = None, augment: bool | None = None,
                 drop_last: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1,
                 pad: int = 4, dtype: torch.dtype = torch.float32) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise DataError(f"TensorLoader needs uint8 images [N, H, W, 3], got "
                            f"{images.dtype} {tuple(images.shape)}", fix="pass ImageTensors.images")
        if labels.shape != images.shape[:1]:
            raise DataError(f"{labels.shape[0]} labels for {images.shape[0]} images",
                            fix="pass labels of the same length")
        if batch_size < 1:
            raise DataError(f"batch size {batch_size} is not positive", fix="pass 1 or more")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world size {world_size}",
                            fix="pass 0 <= rank < world_size")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.shuffle = train if shuffle is None else bool(shuffle)
        self.augment = train if augment is None else bool(augment)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.pad = int(pad)
        self.dtype = dtype
        self.epoch = 0
        n, h, w, c = images.shape
        self.dataset_size = int(n)
        self.image_shape = (int(h), int(w), int(c))
        std_t = torch.tensor([float(s) for s in std], dtype=torch.float32)
        mean_t = torch.tensor([float(m) for m in mean], dtype=torch.float32)
        self._scale = (1.0 / (255.0 * std_t)).to(self.device, dtype)
        self._shift = (mean_t / std_t).to(self.device, dtype)
        self.labels = labels.to(self.device, torch.int64)
        if self.augment:
            # pad once, with a 4th zero byte per pixel: a pixel is then one int32 word and a
            # random crop (with its flip) is a single int32 index_select per batch
            p = self.pad
            padded = torch.zeros((n, h + 2 * p, w + 2 * p, 4), dtype=torch.uint8, device=self.device)
            padded[:, p:p + h, p:p + w, :c] = images.to(self.device)
            self._words = padded.view(torch.int32).view(-1)
            self.images = None
        else:
            self.images = images.to(self.device).contiguous()
        if self.shuffle:
            self.num_samples = n // self.world_size
        else:
            self.num_samples = len(range(self.rank, n, self.world_size))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def indices(self) -> torch.Tensor:
        """This rank's image indices for the current epoch, in batch order (CPU int64)."""
        return self._draw()[0]

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        n = self.dataset_size
        gen = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        if self.shuffle:
            perm = torch.randperm(n, generator=gen)
            m = self.num_samples
            order = perm[self.rank * m:(self.rank + 1) * m]
        else:
            order = torch.arange(self.rank, n, self.world_size)
        if not self.augment:
            return order, None, None
        # draw for all n images, then take this rank's, so ranks stay in step
        offsets = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5
        if self.shuffle:
            m = self.num_samples
            sl = slice(self.rank * m, (self.rank + 1) * m)
            return order, offsets[sl], flips[sl]
        return order, offsets[order], flips[order]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, offsets, flips = self._draw()
        dev = self.device
        order_d = order.to(dev)
        h, w, c = self.image_shape
        total = len(self) * self.batch_size if self.drop_last else self.num_samples
        contiguous = not self.shuffle and self.world_size == 1 and not self.augment
        if self.augment:
            assert offsets is not None and flips is not None
            pw = w + 2 * self.pad
            plane = (h + 2 * self.pad) * pw
            # word offset of each crop's top-left corner and per-image column order
            corner = (order * plane + offsets[:, 0] * pw + offsets[:, 1]).to(dev)
            fl = flips.to(dev)
            rows = torch.arange(h, device=dev) * pw
            cols = torch.arange(w, device=dev)
            cols_rev = cols.flip(0)
        for start in range(0, total, self.batch_size):
            stop = min(start + self.batch_size, total)
            if contiguous:
                x = self.images[start:stop]
                y = self.labels[start:stop]
            else:
                idx = order_d[start:stop]
                y = self.labels.index_select(0, idx)
                if self.augment:
                    col = torch.where(fl[start:stop, None], cols_rev, cols)  # [B, W]
                    start_rows = corner[start:stop, None] + rows  # [B, H]
                    where = (start_rows[:, :, None] + col[:, None, :]).view(-1)
                    words = self._words.index_select(0, where)
                    x = words.view(torch.uint8).view(-1, h, w, 4)[..., :c]
                else:
                    x = self.images.index_select(0, idx)
            out = torch.empty(x.shape, dtype=self.dtype, device=dev)
            torch.mul(x, self._scale, out=out).sub_(self._shift)
            yield out.permute(0, 3, 1, 2), y  # NHWC storage == channels_last NCHW


class FolderLoader:
    """Batches of a large-image ImageFolder through a torchvision pipeline.

    Training: ``RandomResizedCrop(size)``, random horizontal flip, normalize;
    evaluation: resize ``resize``, center crop ``size``, normalize. Batches are moved
    to ``device`` as float NCHW in ``channels_last`` format, like :class:`TensorLoader`.
    With ``distributed`` a ``DistributedSampler(rank, world_size)`` shards the data.
    The order is seeded by ``(seed, epoch)``; the augmentation is too when
    ``num_workers > 0`` (workers are seeded from the loader's generator), while with
    ``num_workers=0`` it draws from the global torch RNG.

    Example:
        >>> loader = make_loader("imagefolder:/data/pets", "train", 64, train=True,
        ...                      device="cuda", num_workers=8)  # doctest: +SKIP
        >>> loader.set_epoch(0)  # doctest: +SKIP
    """

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, *, train: bool,
                 device: torch.device | str = "cpu", num_workers: int = 2, seed: int = 0,
                 distributed: bool = False, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False) -> None:
        from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

        self.device = torch.device(device)
        self.dataset = dataset
        self.seed = int(seed)
        self.rank = int(rank)
        self.epoch = 0
        self._gen = torch.Generator()
        self._distributed = bool(distributed)
        sampler: torch.utils.data.Sampler
        if distributed:
            sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                         shuffle=train, seed=seed, drop_last=drop_last)
        elif train:
            sampler = RandomSampler(dataset, generator=self._gen)
        else:
            sampler = SequentialSampler(dataset)
        self.sampler = sampler
        self.num_samples = len(sampler)  # type: ignore[arg-type]
        self._loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                                  num_workers=num_workers, drop_last=drop_last,
                                  pin_memory=self.device.type == "cuda",
                                  generator=self._gen, persistent_workers=False)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration uses."""
        self.epoch = int(epoch)
        if isinstance(self.sampler, torch.utils.data.DistributedSampler):
            self.sampler.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # worker seeds come from this generator: different per rank and per epoch
        self._gen.manual_seed(_epoch_seed(self.seed, self.epoch) + 104729 * self.rank)
        nb = self.device.type == "cuda"
        for images, labels in self._loader:
            images = images.to(self.device, non_blocking=nb).contiguous(
                memory_format=torch.channels_last)
            yield images, labels.to(self.device, non_blocking=nb)


def _folder_transform(spec: DatasetSpec, train: bool) -> Callable[[Any], Any]:
    from torchvision import transforms as T

    norm = T.Normalize(spec.mean, spec.std)
    if train:
        return T.Compose([T.RandomResizedCrop(spec.image_size), T.RandomHorizontalFlip(),
                          T.ToTensor(), norm])
    return T.Compose([T.Resize(spec.resize or spec.image_size), T.CenterCrop(spec.image_size),
                      T.ToTensor(), norm])


def make_loader(name: str, split: Split, batch_size: int, train: bool,
                device: torch.device | str, data_dir: str | Path | None = None,
                subset: int | None = None, seed: int = 0, distributed: bool = False,
                rank: int = 0, world_size: int = 1, num_workers: int = 2,
                progress: Progress | None = None, *, cache_dir: str | Path | None = None,
                drop_last: bool = False) -> TensorLoader | FolderLoader:
    """Build the loader of a dataset split: :class:`TensorLoader` (32x32) or :class:`FolderLoader`.

    ``train`` turns on shuffling and augmentation. ``seed`` seeds the subset, the
    order and the augmentation. Without ``distributed``, ``rank``/``world_size`` are
    ignored. ``num_workers`` is the DataLoader workers of large datasets and the
    decoding processes of a first small-dataset load.

    Raises:
        DataError: unknown dataset, missing data, bad rank.

    Example:
        >>> loader = make_loader("cifar10-mini", "test", 100, train=False, device="cpu")  # doctest: +SKIP
        >>> len(loader)  # doctest: +SKIP
        5
    """
    spec = get_spec(name)
    if not distributed:
        rank, world_size = 0, 1
    elif not 0 <= rank < world_size:
        raise DataError(f"rank {rank} is outside world size {world_size}",
                        fix="pass 0 <= rank < world_size")
    if spec.small:
        data = load_split(name, split, data_dir, cache_dir, subset, seed, progress,
                          workers=max(1, num_workers))
        assert isinstance(data, ImageTensors)
        return TensorLoader(data.images, data.labels, batch_size, mean=spec.mean, std=spec.std,
                            device=device, train=train, drop_last=drop_last, seed=seed,
                            rank=rank, world_size=world_size)
    ds = load_split(name, split, data_dir, cache_dir, subset, seed, progress,
                    transform=_folder_transform(spec, train))
    return FolderLoader(ds, batch_size, train=train, device=device, num_workers=num_workers,
                        seed=seed, distributed=distributed, rank=rank, world_size=world_size,
                        drop_last=drop_last)
