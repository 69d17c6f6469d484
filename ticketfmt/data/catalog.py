"""The built-in datasets, registered when ``ticketfmt.data`` is imported.

To add a dataset whose source is one of the known kinds (torchvision CIFAR, a JPEG tarball in
ImageFolder layout, an ImageFolder tree), register one more :class:`DatasetSpec` here (or in
a module of your own imported from ``ticketfmt/data/__init__.py``).

Example:
    >>> from ticketfmt.data import DATASETS
    >>> [n for n in DATASETS]
    ['cifar10', 'cifar100', 'cifar10-jpeg', 'cifar10-mini', 'imagenet', 'imagefolder', 'mnist', 'mnist-mini']
"""

from __future__ import annotations

from ticketfmt.data.specs import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MNIST_MEAN,
    MNIST_STD,
    DatasetSpec,
    register_dataset,
)

__all__: list[str] = []

register_dataset(DatasetSpec(
    "cifar10", 10, 32, CIFAR10_MEAN, CIFAR10_STD, True, "torchvision",
    description="CIFAR-10 via torchvision (downloaded into the data folder when online)",
    split_sizes=(50_000, 10_000),
))
register_dataset(DatasetSpec(
    "cifar100", 100, 32, CIFAR100_MEAN, CIFAR100_STD, True, "torchvision",
    description="CIFAR-100 via torchvision (downloaded into the data folder when online)",
    split_sizes=(50_000, 10_000),
))
register_dataset(DatasetSpec(
    "cifar10-jpeg", 10, 32, CIFAR10_MEAN, CIFAR10_STD, True, "archive",
    archive="cifar10-jpeg.tar.gz", archive_root="cifar10",
    description="all of CIFAR-10 as JPEG, cifar10-jpeg.tar.gz in the data folder (50,000/10,000)",
    split_sizes=(50_000, 10_000),
))
register_dataset(DatasetSpec(
    "cifar10-mini", 10, 32, CIFAR10_MEAN, CIFAR10_STD, True, "archive",
    archive="cifar10-mini-jpeg.tar.gz", archive_root="cifar10-mini",
    description="a fixed CIFAR-10 JPEG subset, cifar10-mini-jpeg.tar.gz in the data folder (2,000/500)",
))
register_dataset(DatasetSpec(
    "imagenet", 1000, 224, IMAGENET_MEAN, IMAGENET_STD, False, "imagefolder",
    resize=256, test_dirs=("val", "test"), split_sizes=(1_281_167, 50_000), eval_split="validation",
    description="ImageNet-1k as an ImageFolder tree with train/ and val/ (or test/) at --data-dir "
                "(1000 classes, 1,281,167/50,000 images; another tree: imagefolder:PATH)",
))
register_dataset(DatasetSpec(
    "imagefolder", 0, 224, IMAGENET_MEAN, IMAGENET_STD, False, "imagefolder",
    resize=256, test_dirs=("val", "test"),
    description="imagefolder:PATH, any ImageFolder tree with train/ and val/ or test/",
))
# MNIST as torchvision keeps it (DATA/MNIST/raw/*-ubyte, or the .gz files): read with numpy, downloaded with
# torchvision.datasets.MNIST only when the files are missing. Grayscale and normalized with its own statistics, as
# open_lth's MNIST (which never augments: the LeNet recipe, mnist_lenet, trains without augmentation).
register_dataset(DatasetSpec(
    "mnist", 10, 28, MNIST_MEAN, MNIST_STD, True, "idx", archive_root="MNIST", channels=1, own_stats=True,
    split_sizes=(60_000, 10_000),
    description="MNIST via torchvision's files (DATA/MNIST/raw, downloaded with torchvision when online)",
))
register_dataset(DatasetSpec(
    "mnist-mini", 10, 28, MNIST_MEAN, MNIST_STD, True, "idx", archive_root="mnist-mini", channels=1,
    own_stats=True, description="a tiny MNIST-format set, DATA/mnist-mini/raw/*-ubyte.gz (tests/data has one)",
))
