"""What a dataset is (:class:`DatasetSpec`) and the registry of datasets by name.

The registry is a leaf: it imports no dataset definitions. The built-in datasets register
themselves in :mod:`ticketfmt.data.catalog`, which the package imports, so
:data:`DATASETS` is complete as soon as ``ticketfmt.data`` is imported; registering a name
twice is an error.

Example:
    >>> from ticketfmt.data import DATASETS, get_spec
    >>> DATASETS["cifar10-mini"].num_classes
    10
    >>> get_spec("imagefolder:/data/pets").source
    'imagefolder'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from ticketfmt.errors import DataError
from ticketfmt.registry import Registry

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "NORMALIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "MNIST_MEAN",
    "MNIST_STD",
    "register_dataset",
    "unregister_dataset",
    "get_spec",
    "normalization",
]

Source = Literal["torchvision", "archive", "imagefolder", "idx"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)

NORMALIZE = ("reference", "cifar")
"""Input normalizations: ``reference`` (ImageNet's mean/std on every dataset, as open_lth's
CIFAR-10 and ImageNet datasets do) or ``cifar`` (each dataset's own statistics, ticketfmt's
former default: CIFAR-10's or CIFAR-100's; ImageNet-style data keeps ImageNet's)."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and how to read it.

    Attributes:
        name: the name it is selected by (``"imagefolder:/data/pets"`` once resolved).
        num_classes: number of classes (0 for the unresolved ``imagefolder`` template).
        image_size: side of the dataset's (square) images when they all have one, else the
            usual network input for it (224 for ImageNet-style folders).
        mean: per-channel mean of the dataset's [0, 1] pixel values, RGB (``normalize="cifar"``).
        std: per-channel standard deviation of the dataset's [0, 1] pixel values, RGB.
        channels: 3 (RGB) or 1 (grayscale: MNIST); ``mean`` and ``std`` have one value a channel.
        own_stats: the reference normalizes this dataset with its own ``mean``/``std``, not
            ImageNet's (open_lth's MNIST: 0.1307, 0.3081), so ``normalize="reference"`` does too.
        small: True when the source holds only ``image_size`` x ``image_size`` images that
            decode into the uint8 tensor cache (torchvision CIFAR, JPEG archives).
        source: ``"torchvision"``, ``"archive"`` (a tarball in the data folder), ``"imagefolder"``,
            or ``"idx"`` (MNIST-format idx files, as torchvision's ``MNIST`` keeps them).
        archive: the tarball's file name in the data folder (archives only).
        archive_root: the top folder inside the tarball (archives); the folder holding ``raw/``
            with the idx files (``MNIST``, torchvision's layout: ``DATA/MNIST/raw/``).
        path: the ImageFolder root of an ``imagefolder:PATH`` dataset.
        resize: the resize side before the center crop at evaluation (ImageFolder sources).
        test_dirs: folder names tried, in order, for the ``"test"`` split (ImageFolder sources).
        description: one line for ``--help`` texts and listings.
        split_sizes: ``(train, test)`` image counts of the real dataset; a source that holds
            other counts (or another class count) is refused as not being this dataset.
            None: not checked (ImageFolder trees, the tiny ``cifar10-mini``).
        eval_split: the real name of the split evaluated on (``"validation"`` for ImageNet,
            whose labelled evaluation images are its validation set), for results records.

    Example:
        >>> spec = DatasetSpec("toy", 2, 32, CIFAR10_MEAN, CIFAR10_STD, True, "archive",
        ...                    archive="toy.tar.gz", archive_root="toy")
        >>> spec.small, spec.archive
        (True, 'toy.tar.gz')
    """

    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    small: bool
    source: Source
    archive: str | None = None
    archive_root: str | None = None
    path: Path | None = None
    resize: int | None = None
    test_dirs: tuple[str, ...] = ()
    description: str = ""
    split_sizes: tuple[int, int] | None = None
    eval_split: str = "test"
    channels: int = 3
    own_stats: bool = False


_DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", error=DataError, fix=lambda: f"choose one of {_known_names()}",
    taken_error=DataError, taken="dataset {name!r} is registered already", taken_fix="give the new dataset another name")

DATASETS = _DATASETS.view
"""Dataset specs by name (read-only); ``imagefolder`` is the template of ``imagefolder:PATH``."""


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset to :data:`DATASETS`; returns ``spec``.

    Raises:
        DataError: the name is taken, or it holds a ``:`` (reserved for ``imagefolder:PATH``).

    Example:
        >>> register_dataset(DATASETS["cifar10"])
        Traceback (most recent call last):
        ...
        ticketfmt.errors.DataError: dataset 'cifar10' is registered already; give the new dataset another name
    """
    _DATASETS.check_free(spec.name)
    if ":" in spec.name or not spec.name:
        raise DataError(f"bad dataset name {spec.name!r}", fix="use a non-empty name without ':'")
    return _DATASETS.register(spec.name, spec)


def unregister_dataset(name: str) -> DatasetSpec:
    """Remove the dataset ``name`` from :data:`DATASETS`; returns its spec (tests remove their toy datasets)."""
    return _DATASETS.unregister(name)


def _known_names() -> str:
    return ", ".join(n for n in DATASETS if n != "imagefolder") + " or imagefolder:PATH"


def get_spec(name: str) -> DatasetSpec:
    """Return the spec of dataset ``name``; ``imagefolder:PATH`` gets its path filled in.

    The class count of an ``imagefolder:PATH`` dataset is read from ``PATH/train`` when
    that folder exists (0 otherwise; loading reports the missing folder).

    Raises:
        DataError: the name is unknown.

    Example:
        >>> get_spec("cifar100").num_classes
        100
        >>> get_spec("svhn")
        Traceback (most recent call last):
        ...
        ticketfmt.errors.DataError: unknown dataset 'svhn'; choose one of cifar10, cifar100, cifar10-jpeg, cifar10-mini, imagenet, mnist, mnist-mini or imagefolder:PATH
    """
    if name in _DATASETS and name != "imagefolder":  # "imagefolder" alone is only the template
        return _DATASETS.get(name)
    if name.startswith("imagefolder:") and len(name) > len("imagefolder:") and "imagefolder" in DATASETS:
        path = Path(name[len("imagefolder:"):]).expanduser()
        train = path / "train"
        classes = [d for d in train.iterdir() if d.is_dir()] if train.is_dir() else []
        return replace(DATASETS["imagefolder"], name=name, path=path, num_classes=len(classes))
    raise _DATASETS.unknown_error(name)


def normalization(spec: DatasetSpec, normalize: str = "reference") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The ``(mean, std)`` that batches of ``spec`` are normalized with.

    ``"reference"``: ImageNet's mean/std whatever the dataset (open_lth normalizes CIFAR-10
    that way too), except a dataset the reference normalizes with its own statistics
    (:attr:`DatasetSpec.own_stats`: MNIST); ``"cifar"``: the dataset's own statistics (:attr:`DatasetSpec.mean`).

    Raises:
        DataError: ``normalize`` is not one of :data:`NORMALIZE`.

    Example:
        >>> normalization(DATASETS["cifar10"])[0]
        (0.485, 0.456, 0.406)
        >>> normalization(DATASETS["cifar10"], "cifar")[0]
        (0.4914, 0.4822, 0.4465)
    """
    if normalize == "reference":
        return (spec.mean, spec.std) if spec.own_stats else (IMAGENET_MEAN, IMAGENET_STD)
    if normalize == "cifar":
        return spec.mean, spec.std
    raise DataError(f"unknown normalization {normalize!r}", fix=f"choose one of {', '.join(NORMALIZE)}")
