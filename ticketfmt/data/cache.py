"""The uint8 tensor cache: sources decoded once into ``[N, H, W, 3]`` tensors (MNIST: ``[N, H, W, 1]``), as safetensors.

A split of a small-image dataset (a JPEG tarball, torchvision's CIFAR, or an ImageFolder tree
served at a small network input) is decoded once, in worker processes, into an
:class:`ImageTensors` (uint8 images, int64 labels, class names in ImageFolder order) and saved
under the cache folder; later loads read that file. A cache file records a fingerprint of its
source (the archive's size and time, the ImageFolder tree's folder times): when the source is
present and has changed, the cache is rebuilt; when the source is gone, the cache still serves.

Settings (read at call time):

* ``TICKETFMT_DATA``: the data folder holding the archives
  (``cifar10-jpeg.tar.gz``, ``cifar10-mini-jpeg.tar.gz``) and torchvision's downloads;
  default ``~/.cache/ticketfmt/data``. ``data_dir=`` (``--data-dir``) overrides it.
* ``TICKETFMT_CACHE``: the decoded-tensor cache folder; default ``~/.cache/ticketfmt/data``.

Example:
    >>> from ticketfmt.data import load_split
    >>> train = load_split("cifar10-mini", "train", data_dir="tests/data")  # doctest: +SKIP
    >>> train.images.shape, train.images.dtype  # doctest: +SKIP
    (torch.Size([200, 32, 32, 3]), torch.uint8)
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ticketfmt.data.specs import DatasetSpec, get_spec
from ticketfmt.errors import DataError
from ticketfmt.format.atomic import atomic_write

__all__ = [
    "ImageTensors",
    "Progress",
    "Split",
    "default_data_dir",
    "default_cache_dir",
    "cache_path",
    "load_split",
    "subset_indices",
    "eval_split_name",
    "check_identity",
    "read_idx",
]

Progress = Callable[[str, int, int], None]
"""A progress callback: ``progress(description, done, total)``."""

Split = Literal["train", "test"]

_CACHE_FORMAT = "ticketfmt-data-v1"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
_CHUNK = 1000  # images per decoding task


# --------------------------------------------------------------------------- settings


def default_data_dir() -> Path:
    """The data folder: ``$TICKETFMT_DATA`` or ``~/.cache/ticketfmt/data``.

    Example:
        >>> import os
        >>> os.environ["TICKETFMT_DATA"] = "/srv/data"
        >>> default_data_dir().as_posix()
        '/srv/data'
        >>> del os.environ["TICKETFMT_DATA"]
    """
    env = os.environ.get("TICKETFMT_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ticketfmt" / "data"


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


def cache_path(name: str, split: Split, cache_dir: str | Path | None = None, size: int | None = None) -> Path:
    """Where the decoded tensors of a dataset's split live.

    ``size`` names a copy resized to ``size`` x ``size``; a ``kind:PATH`` name (an ImageFolder
    tree) is keyed by a hash of the resolved path.

    Example:
        >>> cache_path("cifar10-mini", "train", "/tmp/c").as_posix()
        '/tmp/c/cifar10-mini-train.safetensors'
        >>> cache_path("cifar10-mini", "train", "/tmp/c", size=64).name
        'cifar10-mini-train-64px.safetensors'
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    stem = name
    if ":" in name:
        kind, _, where = name.partition(":")
        digest = hashlib.sha256(str(Path(where).expanduser().resolve()).encode()).hexdigest()[:12]
        stem = f"{kind}-{digest}"
    suffix = f"-{size}px" if size else ""
    return root / f"{stem}-{split}{suffix}.safetensors"


# --------------------------------------------------------------------------- tensors


@dataclass(frozen=True, eq=False)
class ImageTensors(torch.utils.data.Dataset):
    """A decoded small-image split: uint8 ``images [N, H, W, 3]`` (``[N, H, W, 1]`` grayscale) and int64 ``labels [N]``.

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


# --------------------------------------------------------------------------- decoding


def fit_image(image: Any, size: int) -> Any:
    """Resize a PIL image's shorter side to ``size`` and center-crop ``size`` x ``size``.

    The same geometry as torchvision's ``Resize(size)`` + ``CenterCrop(size)``; PIL's
    bilinear filter averages over the footprint when shrinking (antialiased).

    Example:
        >>> from PIL import Image
        >>> fit_image(Image.new("RGB", (64, 48)), 32).size
        (32, 32)
    """
    from PIL import Image

    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def _decode_one(blob: bytes, size: int | None) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        if size is not None and rgb.size != (size, size):
            rgb = fit_image(rgb, size)
        return np.asarray(rgb, dtype=np.uint8)


def _decode_chunk(blobs: list[bytes], size: int | None = None) -> np.ndarray:
    """Decode encoded images (PIL) into one uint8 array ``[n, H, W, 3]``.

    With ``size`` every image comes out ``size`` x ``size`` (see :func:`fit_image`);
    without it the images must all have one size.
    """
    arrays = [_decode_one(b, size) for b in blobs]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"images of different sizes {sorted(shapes)} in a 32x32 dataset",
                        fix="use imagefolder:PATH for other image sizes")
    return np.stack(arrays)


class _Decoder:
    """Decodes chunks of encoded images in ``workers`` processes while the caller keeps reading.

    ``submit(key, blobs)`` queues a chunk; :meth:`results` yields ``(key, array)`` in
    submission order. Use it as a context manager: the pool is torn down on exit.
    """

    def __init__(self, workers: int, size: int | None) -> None:
        self.size = size
        self.pending: list[tuple[str, Any]] = []
        self.pool = None
        if workers > 1:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = ctx.Pool(workers)

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def submit(self, key: str, blobs: list[bytes]) -> None:
        if self.pool is not None:
            self.pending.append((key, self.pool.apply_async(_decode_chunk, (blobs, self.size))))
        else:
            self.pending.append((key, _decode_chunk(blobs, self.size)))

    def results(self, progress: Progress | None, description: str, total: int) -> Iterator[tuple[str, np.ndarray]]:
        done = 0
        for key, result in self.pending:
            arr = result.get() if self.pool is not None else result
            done += len(arr)
            if progress:
                progress(description, done, total)
            yield key, arr


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


def _scan_archive(spec: DatasetSpec, archive: Path, decoder: _Decoder,
                  progress: Progress | None) -> dict[str, list[tuple[str, str]]]:
    """Hand the archive's images to ``decoder`` in chunks; returns ``(class, file)`` keys per split."""
    root = f"{spec.archive_root}/"
    keys: dict[str, list[tuple[str, str]]] = {}
    chunk: dict[str, list[bytes]] = {}
    read = 0
    try:
        for name, blob in _iter_archive(archive):
            parts = name[len(root):].split("/") if name.startswith(root) else []
            if (len(parts) != 3 or parts[0] not in ("train", "test")
                    or not parts[2].lower().endswith(_IMAGE_SUFFIXES)):
                continue
            split = parts[0]
            keys.setdefault(split, []).append((parts[1], parts[2]))
            chunk.setdefault(split, []).append(blob)
            read += 1
            if len(chunk[split]) == _CHUNK:
                decoder.submit(split, chunk.pop(split))
                if progress:
                    progress(f"reading {archive.name}", read, 0)
    except (OSError, tarfile.TarError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {archive}: {e}", fix="the archive looks damaged; copy it again") from e
    for split, blobs in chunk.items():
        decoder.submit(split, blobs)
    if not keys:
        raise DataError(f"{archive} holds no images under {root}train/ or {root}test/",
                        fix=f"check that it is the {spec.name} archive")
    return keys


def _assemble(keys: list[tuple[str, str]], parts: list[np.ndarray], where: Path) -> ImageTensors:
    """One split's images in ImageFolder order (sorted class, then file name) with class labels."""
    shapes = {a.shape[1:] for a in parts}
    if len(shapes) != 1:
        raise DataError(f"{where}: images of different sizes {sorted(shapes)}",
                        fix="use imagefolder:PATH for other image sizes")
    images = np.concatenate(parts)
    order = sorted(range(len(keys)), key=keys.__getitem__)
    classes = tuple(sorted({c for c, _ in keys}))
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[keys[i][0]] for i in order], dtype=torch.int64)
    return ImageTensors(torch.from_numpy(images[np.asarray(order, dtype=np.int64)]), labels, classes)


def _decode_archive(spec: DatasetSpec, archive: Path, progress: Progress | None, workers: int = 2,
                    size: int | None = None) -> dict[str, ImageTensors]:
    """Decode every split of a tarball in ImageFolder layout in one pass, in sorted ImageFolder order.

    Encoded images go to a pool of ``workers`` processes in chunks while the archive is
    still being read, so reading and decoding overlap.
    """
    with _Decoder(workers, size) as decoder:
        keys = _scan_archive(spec, archive, decoder, progress)
        total = sum(map(len, keys.values()))
        parts: dict[str, list[np.ndarray]] = {}
        for split, arr in decoder.results(progress, f"decoding {spec.name}", total):
            parts.setdefault(split, []).append(arr)
    return {split: _assemble(k, parts[split], archive) for split, k in keys.items()}


def _decode_folder(name: str, root: Path, size: int, progress: Progress | None, workers: int) -> ImageTensors:
    """Decode an ImageFolder tree into ``size`` x ``size`` tensors (same classes and order as torchvision's)."""
    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(str(root))
        samples, classes = folder.samples, folder.classes
    except (FileNotFoundError, OSError) as e:
        raise DataError(f"{name}: cannot read {root} ({e})", fix="each class needs its own sub-folder of images") from e
    with _Decoder(workers, size) as decoder:
        for start in range(0, len(samples), _CHUNK):
            try:
                decoder.submit("x", [Path(p).read_bytes() for p, _ in samples[start:start + _CHUNK]])
            except OSError as e:
                raise DataError(f"{name}: cannot read an image under {root} ({e})", fix="check the files") from e
        parts = [arr for _, arr in decoder.results(progress, f"decoding {name}", len(samples))]
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return ImageTensors(torch.from_numpy(np.concatenate(parts)), labels, tuple(classes))


def _decode_torchvision(spec: DatasetSpec, split: Split, root: Path, progress: Progress | None) -> ImageTensors:
    """Read a split of torchvision's CIFAR-10/100 under ``root``, downloading it when it is not there."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if spec.name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        ds = cls(root=str(root), train=split == "train", download=False)
    except RuntimeError:
        if progress:
            progress(f"downloading {spec.name} to {root}", 0, 1)
        try:
            ds = cls(root=str(root), train=split == "train", download=True)
        except Exception as e:  # noqa: BLE001 - URLError, OSError, RuntimeError, ...
            raise DataError(f"{spec.name}: could not download to {root} ({type(e).__name__}: {e})",
                            fix="go online, put the torchvision archive in the data folder (--data-dir or "
                                "TICKETFMT_DATA), or use --dataset cifar10-jpeg") from e
    images = torch.from_numpy(np.ascontiguousarray(ds.data, dtype=np.uint8))
    labels = torch.tensor(list(ds.targets), dtype=torch.int64)
    return ImageTensors(images, labels, tuple(ds.classes))


def _resized(data: ImageTensors, size: int | None) -> ImageTensors:
    """``data`` with every image fitted to ``size`` x ``size`` (unchanged when it is already)."""
    if size is None or tuple(data.images.shape[1:3]) == (size, size):
        return data
    from PIL import Image

    gray = data.images.shape[-1] == 1  # PIL takes a grayscale image as [H, W]
    arrays = data.images.numpy()[..., 0] if gray else data.images.numpy()
    out = np.stack([np.asarray(fit_image(Image.fromarray(a), size)) for a in arrays])
    return ImageTensors(torch.from_numpy(out[..., None] if gray else out), data.labels, data.classes)


_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
"""The idx files of each MNIST split, as torchvision's ``MNIST`` names them (plain, or with ``.gz``)."""


def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (MNIST's format: big-endian dims, then unsigned bytes) as a uint8 array; ``.gz`` files too.

    Example:
        >>> read_idx("tests/data/mnist-mini/raw/t10k-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
        (20,)
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e}", fix="the file looks damaged; copy it again") from e
    ndim = data[3] if len(data) >= 4 and data[:3] == b"\0\0\x08" else 0
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]) if ndim and len(data) >= 4 + 4 * ndim else ()
    if not dims or len(data) - 4 - 4 * ndim != int(np.prod(dims)):
        raise DataError(f"{path} is not an idx file of unsigned bytes (MNIST's format)",
                        fix="use the MNIST files as torchvision downloads them")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


MNIST_CLASSES = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
                 "8 - eight", "9 - nine")
"""MNIST's class names as torchvision's ``MNIST.classes`` gives them."""


def _idx_paths(spec: DatasetSpec, split: Split, root: Path) -> list[Path] | None:
    raw = root / str(spec.archive_root) / "raw"
    found = [next((p for p in (raw / n, raw / f"{n}.gz") if p.is_file()), None) for n in _IDX_FILES[split]]
    return None if None in found else found  # type: ignore[return-value]


def _decode_idx(spec: DatasetSpec, split: Split, root: Path, progress: Progress | None) -> ImageTensors:
    """Read a split of an MNIST-format dataset under ``root``; ``mnist`` is downloaded by torchvision when missing."""
    paths = _idx_paths(spec, split, root)
    if paths is None and spec.name == "mnist":
        import torchvision

        if progress:
            progress(f"downloading {spec.name} to {root}", 0, 1)
        try:
            torchvision.datasets.MNIST(root=str(root), train=split == "train", download=True)
        except Exception as e:  # noqa: BLE001 - URLError, OSError, RuntimeError, ...
            raise DataError(f"{spec.name}: could not download to {root} ({type(e).__name__}: {e})",
                            fix="go online, or put torchvision's MNIST files in DATA/MNIST/raw (--data-dir or "
                                "TICKETFMT_DATA)") from e
        paths = _idx_paths(spec, split, root)
    if paths is None:
        raise DataError(f"{spec.name}: no {_IDX_FILES[split][0]}[.gz] in {root / str(spec.archive_root) / 'raw'}",
                        fix="pass --data-dir (or set TICKETFMT_DATA) to the folder holding "
                            f"{spec.archive_root}/raw/")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{spec.name} {split}: {paths[0].name} and {paths[1].name} do not hold images and their "
                        "labels", fix="use the MNIST files as torchvision downloads them")
    return ImageTensors(torch.from_numpy(images.copy())[..., None], torch.from_numpy(labels.astype(np.int64)),
                        MNIST_CLASSES)


# --------------------------------------------------------------------------- cache files


def _write_cache(path: Path, data: ImageTensors, spec: DatasetSpec, split: str, fingerprint: str | None) -> None:
    from safetensors.torch import save

    meta = {"format": _CACHE_FORMAT, "dataset": spec.name, "split": split,
            "classes": json.dumps(list(data.classes))}
    if fingerprint is not None:
        meta["source"] = fingerprint
    blob = save({"images": data.images.contiguous(), "labels": data.labels.contiguous()}, metadata=meta)
    atomic_write(path, [blob])  # concurrent ranks never see half a file


def _read_cache(path: Path, fingerprint: str | None = None, size: int | None = None) -> ImageTensors | None:
    """Read a cache file; None when it is absent, foreign, damaged or stale (it is then rebuilt).

    Stale: ``fingerprint`` (the source as it is now) differs from the one recorded.
    """
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != _CACHE_FORMAT:
                return None
            if fingerprint is not None and meta.get("source", fingerprint) != fingerprint:
                return None
            images = f.get_tensor("images")
            labels = f.get_tensor("labels")
        classes = tuple(json.loads(meta["classes"]))
    except Exception:  # noqa: BLE001 - any damage means "rebuild"
        return None
    if images.dtype != torch.uint8 or images.ndim != 4 or labels.shape != images.shape[:1]:
        return None
    if size is not None and tuple(images.shape[1:3]) != (size, size):
        return None
    return ImageTensors(images, labels.to(torch.int64), classes)


def _file_fingerprint(path: Path) -> str | None:
    if not path.is_file():
        return None
    st = path.stat()
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}"


def _folder_fingerprint(root: Path) -> str | None:
    """The times of ``root`` and its class folders: adding, removing or renaming an image changes them."""
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    for d in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        h.update(f"{d.name}:{d.stat().st_mtime_ns};".encode())
    return f"tree:{h.hexdigest()[:16]}"


# --------------------------------------------------------------------------- load_split


def _folder_base(spec: DatasetSpec, data_dir: Path | None) -> Path:
    if spec.path is not None:
        return spec.path
    if data_dir is not None:
        return data_dir
    raise DataError(f"{spec.name} needs a data folder",
                    fix="pass --data-dir pointing at a folder with train/ and val/ (or test/)")


def imagefolder_root(spec: DatasetSpec, split: Split, data_dir: Path | None) -> Path:
    base = _folder_base(spec, data_dir)
    names = ("train",) if split == "train" else spec.test_dirs
    for n in names:
        if (base / n).is_dir():
            _check_folder_identity(spec, split, base / n)
            return base / n
    want = " or ".join(f"{n}/" for n in names)
    raise DataError(f"{spec.name}: {base} has no {want}",
                    fix="point it at an ImageFolder tree with train/ and val/ (or test/)")


@functools.lru_cache(maxsize=16)
def _folder_counts(root: str, mtime_ns: int, want_classes: int) -> tuple[int, int | None]:
    """``(classes, images)`` of an ImageFolder split (names only, no stat; cached per folder time).

    images is None when the class count is not ``want_classes``: the identity fails on it already.
    """
    classes = [e.path for e in os.scandir(root) if e.is_dir()]
    if len(classes) != want_classes:
        return len(classes), None
    images = 0
    for c in classes:
        images += sum(1 for e in os.scandir(c) if e.name.lower().endswith(_IMAGE_SUFFIXES))
    return len(classes), images


def _check_folder_identity(spec: DatasetSpec, split: Split, root: Path) -> None:
    """A *named* dataset read from a folder (``imagenet``) must be that dataset: its class and image counts.

    A 10-class folder passed as ``imagenet`` would otherwise be trained, recorded and published as an
    ImageNet-1k result; ``imagefolder:PATH`` is how any other tree is used (and recorded).
    """
    if spec.path is not None or spec.split_sizes is None:
        return
    want = spec.split_sizes[0 if split == "train" else 1]
    try:
        classes, images = _folder_counts(str(root), root.stat().st_mtime_ns, spec.num_classes)
    except OSError as e:
        raise DataError(f"{spec.name}: cannot list {root} ({e})", fix="check the folder") from e
    if classes == spec.num_classes and images == want:
        return
    held = f"{classes:,} classes" + (f" and {images:,} images" if images is not None else "")
    raise DataError(f"{spec.name}: {root} holds {held}, but {spec.name} {split} has {spec.num_classes:,} classes "
                    f"and {want:,} images, so it is not {spec.name}",
                    fix=f"pass --dataset imagefolder:{root.parent} to use it (and record it) as a custom folder")


def check_identity(name: str, data_dir: str | Path | None = None) -> None:
    """Refuse a folder given as a *named* dataset (``imagenet``) whose class or image counts are not that dataset's.

    Checks the ``train/`` and evaluation folders that exist (missing ones are reported when
    loaded); nothing to check for ``imagefolder:PATH`` and archive datasets (checked when decoded).

    Raises:
        DataError: the folder is not the dataset its name says; the fix names ``imagefolder:PATH``.

    Example:
        >>> check_identity("imagenet", "/data/ten-classes")  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        ticketfmt.errors.DataError: imagenet: /data/ten-classes/train holds 10 classes, but imagenet train has 1,000 classes and 1,281,167 images, so it is not imagenet; pass --dataset imagefolder:/data/ten-classes to use it (and record it) as a custom folder
    """
    spec = get_spec(name)
    if spec.source != "imagefolder" or spec.path is not None or spec.split_sizes is None or data_dir is None:
        return
    base = Path(data_dir).expanduser()
    for split, names in (("train", ("train",)), ("test", spec.test_dirs)):
        found = next((base / n for n in names if (base / n).is_dir()), None)
        if found is not None:
            _check_folder_identity(spec, split, found)  # type: ignore[arg-type]


def _check_decoded_identity(spec: DatasetSpec, split: str, data: ImageTensors, where: Path) -> None:
    """A named dataset decoded from an archive must have its class count and (when known) image count."""
    if len(data.classes) != spec.num_classes:
        raise DataError(f"{spec.name} {split}: found {len(data.classes)} classes, expected {spec.num_classes}",
                        fix="check the data source")
    want = spec.split_sizes[0 if split == "train" else 1] if spec.split_sizes else None
    if want is not None and len(data) != want:
        raise DataError(f"{spec.name} {split}: {where} holds {len(data):,} images, but {spec.name} {split} has "
                        f"{want:,}, so it is not {spec.name}",
                        fix=f"put the complete {spec.archive or spec.name} in the data folder (--data-dir or "
                            "TICKETFMT_DATA), or extract it and pass --dataset imagefolder:PATH")


def eval_split_name(name: str, data_dir: str | Path | None = None) -> str:
    """The real name of the split a dataset is evaluated on, for results records.

    ``validation`` for ImageNet (its labelled evaluation images) and for ImageFolder trees
    evaluated on their ``val/`` folder; ``test`` otherwise.

    Example:
        >>> eval_split_name("imagenet"), eval_split_name("cifar10")
        ('validation', 'test')
    """
    spec = get_spec(name)
    if spec.source != "imagefolder" or spec.split_sizes is not None:
        return spec.eval_split
    base = spec.path if spec.path is not None else (Path(data_dir).expanduser() if data_dir is not None else None)
    found = next((n for n in spec.test_dirs if base is not None and (base / n).is_dir()), "test")
    return "validation" if found == "val" else found


@dataclass(frozen=True)
class _Source:
    """How a split is cached (``cache_path(key, split, cache_dir, size)``) and decoded."""

    key: str
    size: int | None
    fingerprint: str | None  # the source as it is now; None when it is absent or has none
    decode: Callable[[], dict[str, ImageTensors]]  # every split one pass yields


def _source(spec: DatasetSpec, split: Split, data_dir: Path | None, progress: Progress | None, workers: int,
            size: int | None) -> _Source:
    if spec.source == "imagefolder":
        root = imagefolder_root(spec, split, data_dir)
        side = int(size or spec.image_size)
        return _Source(f"{spec.name.split(':')[0]}:{root}", side, _folder_fingerprint(root),
                       lambda: {split: _decode_folder(spec.name, root, side, progress, workers)})
    base = data_dir if data_dir is not None else default_data_dir()
    resize = None if size == spec.image_size else size  # the cache file's name says when it is resized
    if spec.source == "idx":
        paths = _idx_paths(spec, split, base) or []
        fingerprint = ";".join(f or "" for f in map(_file_fingerprint, paths)) or None
        return _Source(spec.name, resize, fingerprint,
                       lambda: {split: _resized(_decode_idx(spec, split, base, progress), resize)})
    if spec.source == "archive":
        archive = base / str(spec.archive)

        def decode() -> dict[str, ImageTensors]:
            if not archive.is_file():
                raise DataError(f"{spec.name}: {archive} not found",
                                fix=f"pass --data-dir (or set TICKETFMT_DATA) to the folder holding {spec.archive}")
            return _decode_archive(spec, archive, progress, workers, resize)

        return _Source(spec.name, resize, _file_fingerprint(archive), decode)
    return _Source(spec.name, resize, None,
                   lambda: {split: _resized(_decode_torchvision(spec, split, base, progress), resize)})


def _cached_tensors(spec: DatasetSpec, split: Split, data_dir: Path | None, cache_dir: str | Path | None,
                    progress: Progress | None, workers: int, size: int | None) -> ImageTensors:
    src = _source(spec, split, data_dir, progress, workers, size)
    data = _read_cache(cache_path(src.key, split, cache_dir, src.size), src.fingerprint, size)
    if data is not None:
        return data
    decoded = src.decode()
    if split not in decoded:
        raise DataError(f"{spec.name}: no {split} images in the source", fix="check the data source")
    if spec.source == "archive":  # every split is checked before any is cached
        archive = (data_dir if data_dir is not None else default_data_dir()) / str(spec.archive)
        for s in sorted(decoded, key=("train", "test").index):
            _check_decoded_identity(spec, s, decoded[s], archive)
    elif spec.source in ("torchvision", "idx"):
        _check_decoded_identity(spec, split, decoded[split], data_dir or default_data_dir())
    for s, d in decoded.items():  # one pass of an archive caches every split
        _write_cache(cache_path(src.key, s, cache_dir, src.size), d, spec, s, src.fingerprint)  # type: ignore[arg-type]
    return decoded[split]


def _folder_dataset(spec: DatasetSpec, split: Split, data_dir: Path | None, transform: Callable[[Any], Any] | None,
                    subset: int | None, seed: int) -> torch.utils.data.Dataset:
    root = imagefolder_root(spec, split, data_dir)
    from torchvision.datasets import ImageFolder

    try:
        ds: torch.utils.data.Dataset = ImageFolder(str(root), transform=transform)
    except (FileNotFoundError, OSError) as e:
        raise DataError(f"{spec.name}: cannot read {root} ({e})",
                        fix="each class needs its own sub-folder of images") from e
    if subset is not None:
        ds = torch.utils.data.Subset(ds, subset_indices(ds.targets, subset, seed).tolist())
    return ds


def load_split(name: str, split: Split, data_dir: str | Path | None = None,
               cache_dir: str | Path | None = None, subset: int | None = None, seed: int = 0,
               progress: Progress | None = None, *, transform: Callable[[Any], Any] | None = None,
               workers: int = 2, size: int | None = None) -> ImageTensors | torch.utils.data.Dataset:
    """Load one split of a dataset.

    Small-image datasets, and ImageFolder datasets asked for with ``size``, come back as
    :class:`ImageTensors`, decoded once and cached under ``cache_dir``; later calls read
    the cache. Other ImageFolder datasets come back as a ``torchvision.datasets.ImageFolder``
    (with ``transform``), wrapped in a ``Subset`` when ``subset`` is given.

    Args:
        name: a key of :data:`DATASETS` or ``imagefolder:PATH``.
        split: ``"train"`` or ``"test"`` (``val/`` or ``test/`` for ImageFolder trees).
        data_dir: where the source lives: the archive folder, the torchvision root (default
            :func:`default_data_dir` for both) or the ImageFolder root of ``imagenet``.
        cache_dir: the cache folder; default ``$TICKETFMT_CACHE`` or ``~/.cache/ticketfmt/data``.
        subset: keep a seeded, class-balanced subset of this many images.
        seed: the seed of the subset.
        progress: called as ``progress(description, done, total)`` while decoding.
        transform: per-image transform of ImageFolder datasets (ignored for tensors).
        workers: decoding processes for the first load of a split.
        size: decode into ``size`` x ``size`` tensors, resizing images of another size
            (shorter side to ``size``, center crop); ``None`` keeps a small dataset's own size.

    Raises:
        DataError: unknown name, missing data, unreadable archive, bad subset.

    Example:
        >>> train = load_split("cifar10-mini", "train", data_dir="tests/data")  # doctest: +SKIP
        >>> train.images.shape, train.labels.bincount().tolist()  # doctest: +SKIP
        (torch.Size([200, 32, 32, 3]), [20, 20, 20, 20, 20, 20, 20, 20, 20, 20])
    """
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}", fix="use 'train' or 'test'")
    spec = get_spec(name)
    data_path = Path(data_dir).expanduser() if data_dir is not None else None
    if not spec.small and size is None:
        return _folder_dataset(spec, split, data_path, transform, subset, seed)
    data = _cached_tensors(spec, split, data_path, cache_dir, progress, workers, size)
    if subset is not None:
        idx = subset_indices(data.labels, subset, seed)
        data = ImageTensors(data.images[idx], data.labels[idx], data.classes)
    return data
