"""The loaders of a training run (:func:`make_data`) and the seam to replace them (:data:`DataFactory`).

:func:`~ticketfmt.train.find` and :func:`~ticketfmt.train.verify` build their data with
``data_factory`` (default :func:`make_data`); a caller can wrap it, for example to evaluate
on a fixed part of the test split or to feed synthetic images to a test:

Example:
    >>> import dataclasses
    >>> def small_test(dataset, recipe, **kw):  # doctest: +SKIP
    ...     data = make_data(dataset, recipe, **kw)
    ...     return dataclasses.replace(data, test=my_loader)
    >>> find("cifar_resnet20", "cifar10", 3, out_dir="runs/r20", data_factory=small_test)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ticketfmt.data.pipeline import DataNotice
from ticketfmt.errors import DataError
from ticketfmt.train.dist import Dist
from ticketfmt.train.loop import ProgressFn
from ticketfmt.train.recipes import Recipe

__all__ = ["RunData", "DataFactory", "make_data", "test_subset_data", "recipe_for_data"]


@dataclass(frozen=True)
class RunData:
    """A run's loaders: ``train`` and ``test`` have ``set_epoch``, ``len()`` and ``(images, labels)`` batches.

    Attributes:
        whole_batches: every process sees the whole global batch and trains on its slice (tensor pipelines).
        num_classes: the dataset's class count.
        small: served from the uint8 tensor cache (a small network input).
        augmentation: what the training loader does to images (``crop32-pad4+flip``, ``rrc224+flip``,
            ``none``); None when a custom factory does not say.
        split: the real name of the evaluation split (``validation`` for ImageNet).
        notice: one line saying how the data was adapted to the network (resized), or None.
    """

    train: Any
    test: Any
    whole_batches: bool
    num_classes: int
    small: bool
    augmentation: str | None = None
    split: str = "test"
    notice: str | None = None


class DataFactory(Protocol):
    """``factory(dataset, recipe, *, device, dist, data_dir, subset, seed, progress, num_workers, normalize,
    input_size, resize, crop)``; a factory may ignore what it does not use (``**kwargs``)."""

    def __call__(self, dataset: str, recipe: Recipe, *, device: torch.device, dist: Dist,
                 data_dir: str | os.PathLike[str] | None, subset: int | None, seed: int,
                 progress: ProgressFn | None, num_workers: int, normalize: str, input_size: Any,
                 resize: bool, crop: str) -> RunData: ...


def _data_progress(progress: ProgressFn | None) -> Callable[[str, int, int], None] | None:
    if progress is None:
        return None

    def cb(description: str, done: int, total: int) -> None:
        progress({"phase": "data", "description": description, "done": done, "total": total})

    return cb


def _announce(progress: ProgressFn | None, dataset: str, pipe: Any) -> None:
    """Say what the data phase does (before a first decode, which can take a while) and how data was adapted."""
    if pipe.notice:
        if progress is not None:
            progress({"phase": "notice", "message": pipe.notice})
        else:
            warnings.warn(pipe.notice, DataNotice, stacklevel=3)
    if progress is not None:
        how = ("uint8 tensor cache: decoded once, then read back" if pipe.tensor
               else "ImageFolder, decoded per batch")
        progress({"phase": "data", "description": f"loading {dataset} ({how})", "done": 0, "total": 0})


def make_data(dataset: str, recipe: Recipe, *, device: torch.device, dist: Dist,
              data_dir: str | os.PathLike[str] | None, subset: int | None, seed: int, progress: ProgressFn | None,
              num_workers: int, normalize: str = "reference", eval_batch: int | None = None,
              input_size: Any = None, resize: bool = False, crop: str = "reference",
              test_subset: int | None = None) -> RunData:
    """The training and test loaders of ``dataset`` for a network of ``input_size`` and ``recipe``, seeded with ``seed``.

    The input pipeline follows the network's input and the data, not the dataset's name
    (:func:`ticketfmt.data.input_pipeline`): a 32×32 network gets the 32×32 pipeline (the uint8
    tensor cache, random crop with 4-pixel padding + flip) from any source of 32×32 images,
    ``imagefolder:PATH`` included; an ImageNet-size network gets RandomResizedCrop at its input.
    ``resize`` allows upscaling images smaller than a large network's input, ``normalize`` is
    ``"reference"`` (ImageNet mean/std, as open_lth) or ``"cifar"``, ``crop`` the RandomResizedCrop
    (``"reference"`` or ``"torchvision"``). ``recipe.augmentation == "none"`` turns augmentation off.
    ``test_subset``: evaluate on a fixed class-balanced subset of that many test images, the same
    for every ``seed`` (:func:`test_subset_data`).

    Tensor pipelines: one loader of whole global batches per process (each process trains on its
    slice, so the batches are those of one process whatever the number of processes); folder
    pipelines: a per-process loader over a ``DistributedSampler``.

    Raises:
        DataError: the dataset cannot be loaded, does not fit the network, or yields no training batch.
    """
    from ticketfmt import data as D

    pipe = D.input_pipeline(dataset, input_size, data_dir=data_dir, resize=resize, normalize=normalize, crop=crop)
    _announce(progress, dataset, pipe)
    common: dict[str, Any] = {"num_workers": num_workers, "progress": _data_progress(progress),
                              "normalize": normalize, "input_size": input_size, "resize": resize, "crop": crop}
    augment = recipe.augmentation != "none"
    per_rank = recipe.batch_size if pipe.tensor else max(1, recipe.batch_size // dist.world_size)
    shard = {} if pipe.tensor else {"distributed": dist.enabled, "rank": dist.rank, "world_size": dist.world_size}
    eb = eval_batch or (1000 if pipe.tensor else per_rank)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNotice)  # said once above
        train = D.make_loader(dataset, "train", per_rank, True, device, data_dir, subset, seed, augment=augment,
                              **shard, **common)
        test = D.make_loader(dataset, "test", eb, False, device, data_dir, test_subset,
                             seed if test_subset is None else 0, distributed=dist.enabled, rank=dist.rank,
                             world_size=dist.world_size, **common)
    if len(train) == 0:
        raise DataError(f"{dataset}: no training batches", fix="use a larger --subset or a smaller --batch-size")
    return RunData(train, test, pipe.tensor, D.get_spec(dataset).num_classes, pipe.tensor,
                   pipe.augmentation if augment else "none", D.eval_split_name(dataset, data_dir), pipe.notice)


def test_subset_data(n: int, *, batch_size: int = 500) -> DataFactory:
    """A ``data_factory`` whose runs evaluate on a fixed class-balanced subset of ``n`` test images.

    :func:`make_data` evaluates on the whole test split; at CPU scale 10,000 test images can cost
    more than the training, so a benchmark evaluates every arm on the same ``n`` images (the same
    for every seed), with the run's input pipeline, in batches of ``batch_size``.

    Example:
        >>> find("cifar_resnet20", "cifar10", 2, out_dir="runs/quick", subset=2500,
        ...      data_factory=test_subset_data(1000))  # doctest: +SKIP
    """
    if n < 1:
        raise ValueError(f"a test subset of {n} images is empty; pass a positive number")

    def factory(dataset: str, recipe: Recipe, **kw: Any) -> RunData:
        return make_data(dataset, recipe, **kw, test_subset=n, eval_batch=batch_size)

    return factory


def recipe_for_data(recipe: Recipe, augmentation: str) -> Recipe:
    """The recipe with the augmentation the data layer really applies (recorded in provenance and ``run.json``)."""
    if recipe.augmentation == "none":
        return recipe
    return recipe.override(augmentation=augmentation)
