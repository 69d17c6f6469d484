"""Devices and training processes: device names, the torchrun process group, BatchNorm over the global batch.

Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) :func:`init_distributed` joins the process
group (NCCL on CUDA, gloo on the CPU); without it a run is one process (rank 0 of 1).

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> Dist().is_main, Dist().enabled
    (True, False)
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn

from ticketfmt.errors import TicketError

__all__ = ["Dist", "resolve_device", "init_distributed", "start_run", "barrier", "sync_batchnorm", "device_name", "cpu_threads"]


@dataclass(frozen=True)
class Dist:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(device: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; a bare ``cuda`` gets this process's local rank.

    Raises:
        TicketError: CUDA was asked for but is not available, or the name is not a device.
    """
    name = "auto" if device is None else str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise TicketError(f"unknown device {name!r}", fix="use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TicketError("CUDA was asked for but is not available", fix="pass --device cpu (or auto)")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return dev


def init_distributed(device: str | torch.device | None = "auto") -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun (``RANK`` and ``WORLD_SIZE`` > 1 in the environment).

    NCCL on CUDA, gloo on the CPU. Without torchrun this is one process on ``device``.
    """
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1 or "RANK" not in env:
        return Dist(), resolve_device(device)
    rank = int(env["RANK"])
    local = int(env.get("LOCAL_RANK", rank))
    dev = resolve_device(device, local)
    if not tdist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        tdist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
        atexit.register(_destroy_group)
    return Dist(tdist.get_rank(), tdist.get_world_size(), local), dev


def start_run(device: str | torch.device | None, progress: Callable[..., Any] | None
              ) -> tuple[Dist, torch.device, Callable[..., Any] | None]:
    """What every training run (``find``, ``verify``) starts with: the process group, the device, and the
    progress callback (only the main process reports)."""
    dist, dev = init_distributed(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels once
    return dist, dev, (progress if (progress is not None and dist.is_main) else None)


def _destroy_group() -> None:
    with contextlib.suppress(Exception):
        if tdist.is_initialized():
            tdist.destroy_process_group()


def barrier(dist: Dist) -> None:
    """Wait for every process (nothing to wait for in one process)."""
    if dist.enabled:
        tdist.barrier()


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` torch CPU threads (None: as they are); yields the count in use.

    CPU results are bit-reproducible at a given thread count (the reductions of a convolution
    are split by thread), so runs record the count and re-runs can ask for it.

    Example:
        >>> with cpu_threads(1) as n:
        ...     n
        1
    """
    if threads is not None and threads < 1:
        raise TicketError(f"threads must be at least 1, got {threads}", fix="pass --threads 1 or more")
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield torch.get_num_threads()
    finally:
        if threads is not None:
            torch.set_num_threads(old)


def device_name(dev: torch.device) -> str:
    """What results records say about the machine: ``cuda (NVIDIA H100)``, ``cpu (x86_64, 8 threads)``."""
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    import platform
    n = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'s' if n != 1 else ''})"


# --------------------------------------------------------------------------------------------------
# BatchNorm synchronized over gloo (torch's SyncBatchNorm needs a GPU)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone(memory_format=torch.contiguous_format)
        tdist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)
        tdist.all_reduce(grad)
        return grad


class GroupBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the whole global batch (any backend).

    Same parameters, buffers and state-dict keys as ``nn.BatchNorm2d`` (models are converted
    by swapping the class); outside training or without a process group it is plain BN.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        dims = (0, 2, 3)
        count = torch.tensor([x.numel() // c], dtype=x.dtype, device=x.device)
        sums = _AllReduceSum.apply(torch.cat([x.sum(dims), count]))
        n = sums[c]
        mean = sums[:c] / n
        xc = x - mean.view(1, c, 1, 1)
        var = _AllReduceSum.apply(xc.square().sum(dims)) / n
        if self.track_running_stats:
            self._track(mean, var, float(n))
        y = xc * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        self.num_batches_tracked.add_(1)
        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
        # the running variance is the unbiased one, as nn.BatchNorm2d keeps it
        self.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1.0)), alpha=m)


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm over the global batch: ``nn.SyncBatchNorm`` on CUDA, :class:`GroupBatchNorm2d` elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = GroupBatchNorm2d
    return model
