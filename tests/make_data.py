"""The tiny test data of ``tests/data/``: run ``python tests/make_data.py`` to write it again.

* ``tests/data/cifar10-mini-jpeg.tar.gz``: a CIFAR-like JPEG tarball in the same layout as the
  real ``cifar10-mini-jpeg.tar.gz`` (``cifar10-mini/{train,test}/<class>/NNNN.jpg``, the ten
  CIFAR-10 class names, 32x32 RGB JPEG), but small: 20 train and 20 test images a class.
  Pass ``data_dir=tests/data`` (or ``TICKETFMT_DATA=tests/data``) to use it as ``cifar10-mini``.
* ``tests/data/imagefolder32/``: an ImageFolder tree (``train/``, ``test/``, two classes) of
  32x32 PNG images, for ``imagefolder:PATH``.
* ``tests/data/mnist-mini/raw/``: MNIST-format idx files, gzipped, named as torchvision's
  ``MNIST`` names them (``train-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``, ...):
  28x28 grayscale "digits" (a class-specific stroke on black), 3 train and 2 test images a
  class; ``mnist-mini`` with ``data_dir=tests/data``. :func:`write_mnist` writes variants.

The images are synthetic and learnable: each class has its own colour and stripe direction,
with seeded jitter and noise, so a few training steps already beat chance. Everything is
seeded; the tarball's headers carry fixed times and owners, so it is byte-stable for one
Pillow/libjpeg version. Tests also call :func:`write_archive` and :func:`write_imagefolder`
to build variants in temporary folders.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MTIME = 1577836800  # 2020-01-01, like the real archive


def make_image(rng: np.random.Generator, label: int, size: int | tuple[int, int] = 32) -> np.ndarray:
    """A ``[H, W, 3]`` uint8 image of class ``label``: class colour and stripe angle, seeded jitter."""
    h, w = (size, size) if isinstance(size, int) else size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    phase = label * 0.63
    colour = 0.5 + 0.5 * np.cos([phase, phase + 2.1, phase + 4.2])
    angle = label * np.pi / 10 + rng.normal(0, 0.15)
    freq = 2 + label % 3
    wave = np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    img = 0.25 + 0.5 * colour[None, None, :] * (0.6 + 0.4 * wave[..., None]) + rng.normal(0, 0.02, (h, w, 3))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _encode(array: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **({"quality": 75} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "", ""
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))


def write_archive(path: Path, root: str = "cifar10-mini", per_class: tuple[int, int] = (20, 20),
                  classes: Sequence[str] = CIFAR10_CLASSES, size: int = 32, seed: int = 0) -> Path:
    """Write a gzipped tarball ``root/{train,test}/<class>/NNNN.jpg`` (``per_class`` = train, test counts)."""
    rng = np.random.default_rng(seed)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, f"{root}/", None)
        for split, count in sorted(zip(("train", "test"), per_class)):  # test/ first, as in the real archive
            _add(tar, f"{root}/{split}/", None)
            for label, cls in enumerate(classes):
                _add(tar, f"{root}/{split}/{cls}/", None)
                for i in range(count):
                    _add(tar, f"{root}/{split}/{cls}/{i:04d}.jpg", _encode(make_image(rng, label, size), "JPEG"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return path


def write_imagefolder(root: Path, size: int | Sequence[int | tuple[int, int]] = 32,
                      classes: Sequence[str] = ("cat", "dog"), per_class: tuple[int, int] = (6, 3),
                      splits: tuple[str, str] = ("train", "test"), fmt: str = "PNG", seed: int = 0) -> Path:
    """Write an ImageFolder tree ``root/{train,test}/<class>/NNNN.png``.

    ``size``: one side for every image, or a list of sizes (ints or ``(h, w)``) used in turn.
    """
    rng = np.random.default_rng(seed)
    sizes = [size] if isinstance(size, int) else list(size)
    k = 0
    for split, count in zip(splits, per_class):
        for label, cls in enumerate(classes):
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = make_image(rng, label, sizes[k % len(sizes)])
                k += 1
                (d / f"{i:04d}.{fmt.lower()}").write_bytes(_encode(image, fmt))
    return root


def make_digit(rng: np.random.Generator, label: int) -> np.ndarray:
    """A ``[28, 28]`` uint8 image of class ``label``: a thick stroke at the class's angle, jittered, on black."""
    y, x = np.mgrid[0:28, 0:28] - 13.5 - rng.integers(-2, 3, size=2)[:, None, None]
    angle = label * np.pi / 10
    dist = np.abs(x * np.sin(angle) - y * np.cos(angle))  # distance to the line through the centre
    stroke = (dist < 1.6) & (np.hypot(x, y) < 10 + label % 3)
    return np.where(stroke, 255, 0).astype(np.uint8)


def _idx(array: np.ndarray) -> bytes:
    """An idx file of unsigned bytes: magic ``00 00 08 ndim``, big-endian dims, the data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_mnist(root: Path, per_class: tuple[int, int] = (3, 2), seed: int = 0, classes: int = 10) -> Path:
    """Write ``root/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` (torchvision's MNIST file names)."""
    rng = np.random.default_rng(seed)
    (root / "raw").mkdir(parents=True, exist_ok=True)
    for prefix, count in zip(("train", "t10k"), per_class):
        labels = np.repeat(np.arange(classes, dtype=np.uint8), count)
        images = np.stack([make_digit(rng, int(label)) for label in labels])
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            with open(root / "raw" / f"{prefix}-{kind}-ubyte.gz", "wb") as f, \
                    gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
                gz.write(_idx(array))
    return root


def main() -> None:
    """Write ``tests/data/`` (the tarball, the ImageFolder tree and the MNIST-format files)."""
    archive = write_archive(DATA_DIR / "cifar10-mini-jpeg.tar.gz")
    tree = write_imagefolder(DATA_DIR / "imagefolder32")
    mnist = write_mnist(DATA_DIR / "mnist-mini")
    print(f"wrote {archive} ({archive.stat().st_size:,} bytes), {tree}/ and {mnist}/")


if __name__ == "__main__":
    main()
