"""Which input pipeline a network gets: from its input size and the data, not from the dataset's name.

=====================================  ===============================================================
network input, data                    pipeline
=====================================  ===============================================================
<= 64 px (CIFAR nets), images of       uint8 tensor cache + :class:`TensorLoader`: random crop with
that size (cifar10*, cifar100,         4-pixel zero padding + horizontal flip (``crop32-pad4+flip``);
``imagefolder:PATH`` of 32x32)         test: the images as they are
<= 64 px, images of another size       the same, after resizing every image once, at decode time, to
(``imagefolder:PATH``, ``imagenet``)   the network's input (shorter side, center crop); one
                                       :class:`DataNotice` says so
> 64 px (ImageNet nets), images of     RandomResizedCrop at the network's input + flip
that size or larger, or of mixed       (``rrc224+flip``; scale (0.1, 1), ratio (0.8, 1.25) as the
sizes (``imagenet``, ImageFolder)      reference, ``crop="torchvision"`` for torchvision's); test:
                                       resize ``size / 0.875`` (256), center crop ``size``
> 64 px, smaller images (cifar10*,     an error saying what to pass, unless ``resize=True``: then
``imagefolder:PATH`` of 32x32)         the ImageNet pipeline above upscales them
=====================================  ===============================================================

Without a network (``input_size=None``) the data decides: 32x32 data (and ImageFolder trees of
one size up to 64 px) gets the small pipeline at its own size, everything else 224.

Example:
    >>> from ticketfmt.data import input_pipeline
    >>> input_pipeline("cifar10-mini", 32).augmentation
    'crop32-pad4+flip'
    >>> input_pipeline("imagenet", (3, 224, 224), data_dir="/data/imagenet").augmentation
    'rrc224+flip'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketfmt.data.cache import check_identity, imagefolder_root
from ticketfmt.data.specs import DatasetSpec, get_spec, normalization
from ticketfmt.errors import DataError

__all__ = ["InputPipeline", "DataNotice", "input_pipeline", "image_side", "SMALL_INPUT", "CROPS"]

SMALL_INPUT = 64
"""Networks whose input side is at most this get the CIFAR protocol through the tensor cache."""

CROPS = {"reference": ((0.1, 1.0), (0.8, 1.25)), "torchvision": ((0.08, 1.0), (3 / 4, 4 / 3))}
"""RandomResizedCrop ``(scale, ratio)`` by name: open_lth's ImageNet crop, or torchvision's defaults."""

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
_PROBE_CLASSES = 8  # class folders whose images are measured


class DataNotice(UserWarning):
    """The data layer adapted the data to the network (for example resized its images)."""


@dataclass(frozen=True)
class InputPipeline:
    """How batches of a dataset are made for a network of a given input size.

    Attributes:
        dataset: the dataset name.
        size: the network's input side (batches are ``[B, 3, size, size]``).
        tensor: served from the uint8 tensor cache by a :class:`TensorLoader` (small inputs).
        decode_size: the ``size=`` to pass to :func:`load_split` for the tensor cache (None:
            the dataset's own images as they are).
        image_side: side of the data's images when they all have one and it is known.
        mean: normalization mean, RGB.
        std: normalization standard deviation, RGB.
        normalize: the normalization's name (see :data:`~ticketfmt.data.specs.NORMALIZE`).
        crop: the RandomResizedCrop's name (see :data:`CROPS`); used by ImageNet-size inputs.
        notice: one line saying how the data was adapted (resized), or None.

    Example:
        >>> p = input_pipeline("cifar10", 32, normalize="cifar")
        >>> p.tensor, p.augmentation, p.mean
        (True, 'crop32-pad4+flip', (0.4914, 0.4822, 0.4465))
    """

    dataset: str
    size: int
    tensor: bool
    decode_size: int | None
    image_side: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalize: str = "reference"
    crop: str = "reference"
    notice: str | None = None

    @property
    def augmentation(self) -> str:
        """The training augmentation's name: ``crop32-pad4+flip`` or ``rrc224+flip`` (at ``size``)."""
        return f"crop{self.size}-pad4+flip" if self.tensor else f"rrc{self.size}+flip"

    @property
    def scale(self) -> tuple[float, float]:
        """RandomResizedCrop's area range."""
        return CROPS[self.crop][0]

    @property
    def ratio(self) -> tuple[float, float]:
        """RandomResizedCrop's aspect-ratio range."""
        return CROPS[self.crop][1]

    @property
    def eval_resize(self) -> int:
        """The resize side before the evaluation center crop (256 for 224)."""
        return int(round(self.size / 0.875))


def _network_side(input_size: Any) -> int | None:
    """The square input side of an int, a ``(C, H, W)``/``(H, W)`` tuple or an object with ``input_size``."""
    if input_size is None:
        return None
    if hasattr(input_size, "input_size"):
        return _network_side(input_size.input_size)
    if isinstance(input_size, int):
        side = (input_size, input_size)
    else:
        side = tuple(int(v) for v in input_size)[-2:]
    if len(side) != 2 or side[0] != side[1] or side[0] < 1:
        raise DataError(f"input size {input_size!r} is not a square image size",
                        fix="pass an int side or (3, H, W) with H == W, e.g. an ArchSpec's input_size")
    return int(side[0])


def _check_channels(dataset: str, spec: DatasetSpec, input_size: Any) -> None:
    """A grayscale dataset (MNIST) feeds only a one-channel network, an RGB one only a three-channel one."""
    shape = getattr(input_size, "input_size", input_size)
    if isinstance(shape, tuple | list) and len(shape) == 3 and int(shape[0]) != spec.channels:
        what = {1: "grayscale", 3: "RGB"}.get(spec.channels, f"{spec.channels}-channel")
        raise DataError(f"{dataset} holds {what} images but the network takes {int(shape[0])} input channels",
                        fix="pick a dataset and an architecture that match (mnist for mnist_lenet_*, cifar10 for the "
                            "CIFAR networks)")


def _probe_images(folder: Path) -> list[Path]:
    """The first, middle and last image of a class folder (sorted names)."""
    try:
        names = sorted(e.name for e in folder.iterdir() if e.name.lower().endswith(_IMAGE_SUFFIXES))
    except OSError:
        return []
    picks = sorted({0, len(names) // 2, len(names) - 1}) if names else []
    return [folder / names[i] for i in picks]


def image_side(spec: DatasetSpec, data_dir: str | Path | None = None) -> int | None:
    """The side of the dataset's images when they are square and all the same, as far as known.

    Small datasets: their ``image_size``. ImageFolder sources: the first, middle and last
    image of up to 8 class folders of ``train/`` (headers only); None when they differ, are
    not square, or the folder is missing.

    Example:
        >>> from ticketfmt.data import DATASETS
        >>> image_side(DATASETS["cifar10"])
        32
        >>> image_side(DATASETS["imagenet"]) is None  # no --data-dir
        True
    """
    if spec.small:
        return spec.image_size
    base = spec.path if spec.path is not None else (Path(data_dir).expanduser() if data_dir is not None else None)
    if base is None or not (base / "train").is_dir():
        return None
    from PIL import Image

    classes = sorted(d for d in (base / "train").iterdir() if d.is_dir())[:_PROBE_CLASSES]
    sizes = set()
    for path in (p for d in classes for p in _probe_images(d)):
        try:
            with Image.open(path) as im:
                sizes.add(im.size)
        except OSError:
            return None
    if len(sizes) != 1:
        return None
    w, h = sizes.pop()
    return w if w == h else None


def _small(dataset: str, spec: DatasetSpec, size: int, side: int | None) -> tuple[bool, int | None, str | None]:
    """The tensor pipeline at ``size``: (tensor, decode_size, notice)."""
    if side == size:
        return True, (None if spec.small else size), None
    what = f"{side}x{side} images" if side is not None else "images of other sizes"
    return True, size, f"{dataset}: {what} are resized to {size}x{size}, the network's input"


def _large(dataset: str, size: int, side: int | None, resize: bool) -> tuple[bool, int | None, str | None]:
    """The RandomResizedCrop pipeline at ``size``: (tensor, decode_size, notice)."""
    if side is None or side >= size:
        return False, None, None
    if not resize:
        raise DataError(f"{dataset} holds {side}x{side} images but the network's input is {size}x{size}",
                        fix=f"pass resize=True (--resize) to upscale them to {size}x{size}, "
                            f"or pick an architecture with {side}x{side} input")
    return False, None, f"{dataset}: {side}x{side} images are upscaled to {size}x{size}, the network's input"


def input_pipeline(dataset: str, input_size: Any = None, *, data_dir: str | Path | None = None,
                   resize: bool = False, normalize: str = "reference", crop: str = "reference") -> InputPipeline:
    """Choose the input pipeline of ``dataset`` for a network of ``input_size`` (see the module's table).

    Args:
        dataset: a dataset name (``cifar10-mini``, ``imagefolder:PATH``, ...).
        input_size: the network's input: an int side, ``(3, H, W)``, or an ``ArchSpec``
            (its ``input_size``); None lets the data decide.
        data_dir: where the dataset lives (to measure an ``imagenet`` tree's images).
        resize: allow upscaling images smaller than an ImageNet-size network's input.
        normalize: ``"reference"`` (ImageNet mean/std, open_lth) or ``"cifar"`` (the dataset's own).
        crop: ``"reference"`` (scale (0.1, 1), ratio (0.8, 1.25), open_lth) or ``"torchvision"``.

    Raises:
        DataError: unknown dataset, normalization or crop; a non-square input; images
            smaller than a large network's input without ``resize``; a folder given as a
            named dataset (``imagenet``) that is not that dataset (see :func:`check_identity`).

    Example:
        >>> input_pipeline("cifar10-mini", (3, 224, 224))
        Traceback (most recent call last):
        ...
        ticketfmt.errors.DataError: cifar10-mini holds 32x32 images but the network's input is 224x224; pass resize=True (--resize) to upscale them to 224x224, or pick an architecture with 32x32 input
    """
    spec = get_spec(dataset)
    _check_channels(dataset, spec, input_size)
    mean, std = normalization(spec, normalize)
    if crop not in CROPS:
        raise DataError(f"unknown crop {crop!r}", fix=f"choose one of {', '.join(CROPS)}")
    check_identity(dataset, data_dir)  # a 10-class tree passed as "imagenet" is refused before anything else
    if not spec.small and (spec.path is not None or data_dir is not None):
        # a missing tree is the error to report, not a notice about resizing images it does not have
        imagefolder_root(spec, "train", Path(data_dir).expanduser() if data_dir is not None else None)
    side = image_side(spec, data_dir)
    size = _network_side(input_size)
    if size is None:  # no network: the data decides, and there is no input to mismatch
        size = side if side is not None and side <= SMALL_INPUT else spec.image_size
        resize = True
    if size <= SMALL_INPUT:
        tensor, decode_size, notice = _small(dataset, spec, size, side)
    else:
        tensor, decode_size, notice = _large(dataset, size, side, resize)
    return InputPipeline(dataset, size, tensor, decode_size, side, tuple(mean), tuple(std), normalize, crop, notice)
