"""What a training run is about to do, said before it starts: sizes, the device, a timed estimate.

:func:`~ticketfmt.train.find` and :func:`~ticketfmt.train.verify` send a ``"plan"`` progress
event before their first step (see :data:`~ticketfmt.train.loop.ProgressFn`): the recipe, the
steps, the device and threads, the data sizes and an estimate of the time from timing a
couple of steps on a copy of the model (:func:`seconds_per_image`; the run's own model,
optimizer and random state are not touched, so the result does not depend on it).

Example:
    >>> loader_images(None) is None
    True
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn

from ticketfmt.train.dist import Dist, GroupBatchNorm2d, device_name
from ticketfmt.train.loop import Trainer
from ticketfmt.train.recipes import Recipe, protocol

__all__ = ["seconds_per_image", "loader_images", "machine_fields", "estimate_fields"]

_CPU_PIXELS = 32 * 32 * 32  # on a CPU, time a slice of the batch: 32 images of 32x32, 4 of 224x224 (linear cost)


def loader_images(loader: Any) -> int | None:
    """Images in a loader's dataset (the whole split, all processes), or None when it does not say."""
    if loader is None:
        return None
    n = getattr(loader, "dataset_size", None)
    if n is None and getattr(loader, "dataset", None) is not None:
        n = len(loader.dataset)
    return int(n) if n is not None else None


def _probe_batch(loader: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        x, y = next(iter(loader))
    except StopIteration:
        return None
    if device.type == "cpu":
        keep = max(2, _CPU_PIXELS // max(1, x.shape[-1] * x.shape[-2]))
        x, y = x[:keep], y[:keep]
    return x, y


def _local(model: nn.Module) -> nn.Module:
    """The copy with plain BatchNorm: the timing talks to no other process (only rank 0 times)."""
    for m in model.modules():
        if isinstance(m, (GroupBatchNorm2d, nn.SyncBatchNorm)):
            m.__class__ = nn.BatchNorm2d
    return model


def seconds_per_image(trainer: Trainer, loader: Any, *, steps: int = 2) -> float | None:
    """Training seconds per image on this device, timed over ``steps`` steps (after one warm-up step).

    The steps run on a copy of the model with its own optimizer (learning rate 0), inside a
    forked random state, so the run that follows is exactly the run without the timing. On a
    CPU only a slice of a batch is timed (the cost is linear in the images). BatchNorm of the
    copy is local, so one process can time alone. None: the loader is empty.

    Example:
        >>> spi = seconds_per_image(trainer, data.train)  # doctest: +SKIP
    """
    dev = trainer.device
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        batch = _probe_batch(loader, dev)
        if batch is None:
            return None
        x, y = batch
        probe = Trainer(_local(copy.deepcopy(trainer.module)), None, trainer.recipe, device=dev, dist=Dist())
        probe.step(x, y, 0.0)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            probe.step(x, y, 0.0)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return (time.perf_counter() - t0) / (steps * max(1, int(y.shape[0])))


def machine_fields(device: torch.device, dist: Dist, threads: int) -> dict[str, Any]:
    """The device part of a plan event and a results record."""
    return {"device": device_name(device), "device_type": device.type, "threads": threads,
            "world_size": dist.world_size}


def estimate_fields(recipe: Recipe, steps: int, dist: Dist, spi: float | None, train_images: int | None,
                    subset: int | None) -> dict[str, Any]:
    """The estimate part of a plan event: seconds a step, the ETA of ``steps`` steps, the protocol.

    ``seconds_per_image_epoch`` is one epoch of the training split at the measured speed,
    which is how the CLI works out what ``--epochs``/``--subset`` would save.
    """
    per_step = spi * (recipe.batch_size / dist.world_size) if spi is not None else None
    kind, why = protocol(recipe, subset)
    return {"seconds_per_step": per_step, "eta_s": per_step * steps if per_step is not None else None,
            "seconds_per_image": spi, "train_images": train_images, "batch_size": recipe.batch_size,
            "protocol": kind, "protocol_note": why}
