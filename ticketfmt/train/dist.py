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
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn

from ticketfmt.errors import TicketError

__all__ = ["Dist", "resolve_device", "init_distributed", "start_run", "barrier", "sync_batchnorm", "device_name", "cpu_threads",
           "shared_threads", "running_jobs", "jobs_dir", "JOBS_ENV"]


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


JOBS_ENV = "TICKETFMT_JOBS_DIR"
"""Overrides the folder where running training jobs leave a note (default ``~/.cache/ticketfmt/jobs``)."""


def jobs_dir() -> Path:
    """The folder of the notes of this machine's running training jobs: ``$TICKETFMT_JOBS_DIR`` or
    ``~/.cache/ticketfmt/jobs``."""
    return Path(os.environ.get(JOBS_ENV) or Path.home() / ".cache" / "ticketfmt" / "jobs")


def shared_threads(available: int, jobs: int) -> int:
    """The torch CPU threads of a run that does not choose: ``available`` threads shared by ``jobs`` running jobs.

    Two jobs that each take every core collapse (2 cores, 2 jobs of 2 threads: ~35 images/s each
    for ResNet-20, against ~180 each with 1 thread; issue 13), so each gets its share, at least 1.

    Example:
        >>> shared_threads(2, 1), shared_threads(2, 2), shared_threads(8, 3), shared_threads(2, 5)
        (2, 1, 2, 1)
    """
    return max(1, int(available) // max(1, int(jobs)))


def _started(pid: int) -> str:
    """The start time of process ``pid`` (Linux ``/proc``; ``""`` elsewhere): tells a reused pid from the job."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return not started or _started(pid) == started


def running_jobs(folder: Path | None = None) -> list[dict[str, Any]]:
    """The notes of the other training jobs running on this machine (a note whose process has ended is removed).

    Example:
        >>> running_jobs()  # doctest: +SKIP
        [{'pid': 4242, 'host': 'box', 'started': '981234', 'threads': 1}]
    """
    folder, host, jobs = folder or jobs_dir(), socket.gethostname(), []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            note = json.loads(path.read_text())
            pid, started = int(note["pid"]), str(note.get("started", ""))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not a note
        if note.get("host") != host or pid == os.getpid():
            continue  # another machine sharing the home folder; this process (nested runs)
        if _alive(pid, started):
            jobs.append(note)
        else:
            path.unlink(missing_ok=True)
    return jobs


@contextlib.contextmanager
def _job_note(threads: int | None, folder: Path) -> Iterator[int]:
    """Count the other jobs and leave this one's note, under a lock (two jobs starting at once see each other);
    yields the thread count. The notes are best effort: an unwritable cache counts no other job."""
    note: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a") as lock:
            with contextlib.suppress(ImportError, OSError):
                import fcntl  # POSIX; elsewhere the count is unlocked
                fcntl.flock(lock, fcntl.LOCK_EX)
            n = int(threads) if threads is not None else shared_threads(torch.get_num_threads(),
                                                                        1 + len(running_jobs(folder)))
            note = folder / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
            note.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                        "started": _started(os.getpid()), "threads": n}))
    except OSError:
        n = int(threads) if threads is not None else torch.get_num_threads()
    try:
        yield n
    finally:
        if note is not None:
            note.unlink(missing_ok=True)


@contextlib.contextmanager
def cpu_threads(threads: int | None, jobs_folder: Path | None = None) -> Iterator[int]:
    """Run the block with ``threads`` torch CPU threads; yields the count in use.

    ``threads=None`` (no ``--threads``): the threads as set (torch's default: the physical
    cores, or ``OMP_NUM_THREADS``) shared by the ticketfmt training jobs running on this
    machine, this one included (:func:`shared_threads`), at least 1. Each job leaves a note in
    :func:`jobs_dir` while it runs. A run keeps its count to the end (CPU results are
    bit-reproducible at a given thread count, which runs record and re-runs can ask for), so a
    job started alone keeps every thread when a second one starts: give it ``--threads``.

    Example:
        >>> with cpu_threads(1) as n:
        ...     n
        1
    """
    if threads is not None and threads < 1:
        raise TicketError(f"threads must be at least 1, got {threads}", fix="pass --threads 1 or more")
    old = torch.get_num_threads()
    with _job_note(threads, jobs_folder or jobs_dir()) as n:
        torch.set_num_threads(n)
        try:
            yield torch.get_num_threads()
        finally:
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
