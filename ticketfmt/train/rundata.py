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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ticketfmt.errors import DataError
from ticketfmt.train.dist import Dist
from ticketfmt.train.loop import ProgressFn
from ticketfmt.train.recipes import Recipe

__all__ = ["RunData", "DataFactory", "make_data", "recipe_for_data"]


@dataclass(frozen=True)
class RunData:
    """A run's loaders: ``train`` and ``test`` have ``set_epoch``, ``len()`` and ``(images, labels)`` batches.

    Attributes:
        whole_batches: every process sees the whole global batch and trains on its slice (32×32 data).
        num_classes: the dataset's class count.
        small: a 32×32 dataset.
    """

    train: Any
    test: Any
    whole_batches: bool
    num_classes: int
    small: bool


class DataFactory(Protocol):
    """``factory(dataset, recipe, *, device, dist, data_dir, subset, seed, progress, num_workers, normalize)``."""

    def __call__(self, dataset: str, recipe: Recipe, *, device: torch.device, dist: Dist,
                 data_dir: str | os.PathLike[str] | None, subset: int | None, seed: int,
                 progress: ProgressFn | None, num_workers: int, normalize: str) -> RunData: ...


def _data_progress(progress: ProgressFn | None) -> Callable[[str, int, int], None] | None:
    if progress is None:
        return None

    def cb(description: str, done: int, total: int) -> None:
        progress({"phase": "data", "description": description, "done": done, "total": total})

    return cb


def make_data(dataset: str, recipe: Recipe, *, device: torch.device, dist: Dist,
              data_dir: str | os.PathLike[str] | None, subset: int | None, seed: int, progress: ProgressFn | None,
              num_workers: int, normalize: str = "reference", eval_batch: int | None = None) -> RunData:
    """The training and test loaders of ``dataset`` for ``recipe`` (batch, augmentation), seeded with ``seed``.

    ``normalize``: ``"reference"`` (ImageNet mean/std, as open_lth normalizes every dataset) or
    ``"cifar"`` (the dataset's own statistics); see :data:`ticketfmt.data.NORMALIZE`.

    32×32 datasets: one loader of whole global batches per process (each process trains on its
    slice, so the batches are those of one process whatever the number of processes);
    ImageFolder datasets: a per-process loader over a ``DistributedSampler``.

    Raises:
        DataError: the dataset cannot be loaded or yields no training batch.
    """
    from ticketfmt import data as D

    spec = D.get_spec(dataset)
    cb = _data_progress(progress)
    common: dict[str, Any] = {"num_workers": num_workers, "progress": cb, "normalize": normalize}
    augment = recipe.augmentation != "none"
    if spec.small:
        train = D.make_loader(dataset, "train", recipe.batch_size, True, device, data_dir, subset, seed,
                              augment=augment, **common)
    else:
        per_rank = max(1, recipe.batch_size // dist.world_size)
        train = D.make_loader(dataset, "train", per_rank, True, device, data_dir, subset, seed,
                              distributed=dist.enabled, rank=dist.rank, world_size=dist.world_size, augment=augment,
                              **common)
    eb = eval_batch or (1000 if spec.small else max(1, recipe.batch_size // dist.world_size))
    test = D.make_loader(dataset, "test", eb, False, device, data_dir, None, seed, distributed=dist.enabled,
                         rank=dist.rank, world_size=dist.world_size, **common)
    if len(train) == 0:
        raise DataError(f"{dataset}: no training batches", fix="use a larger --subset or a smaller --batch-size")
    return RunData(train, test, spec.small, spec.num_classes, spec.small)


def recipe_for_data(recipe: Recipe, small: bool) -> Recipe:
    """The recipe with the augmentation the data layer really applies (recorded in provenance)."""
    if recipe.augmentation == "none":
        return recipe
    return recipe.override(augmentation="crop32-pad4+flip" if small else "rrc224+flip")
