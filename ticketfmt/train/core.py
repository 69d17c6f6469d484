"""Masked training, evaluation, IMP with rewinding (:func:`find`) and the evaluator (:func:`verify`).

Library code: no UI. Progress goes to a callback (``progress(event)``, a dict, see
:data:`ProgressFn`), metrics to a JSONL log, files are written atomically.

Masked training holds a ticket's mask fixed: the gradients of pruned weights are zeroed
after every backward pass *and* the weights are multiplied by the mask after every
optimizer step, so pruned weights are exactly zero at every step (weight decay and
momentum cannot revive them). Models run in ``channels_last``, under bf16 autocast on
CUDA, optionally through ``torch.compile``.

IMP (:func:`find`), as the paper and its reference code (open_lth):

1. build ``θ_0`` (seeded), train densely with the recipe; keep ``θ_r`` at step ``r``;
   the dense run is level 0 (``level-00.ticket``: dense mask, ``θ_r``, its test top-1);
2. prune ``rate`` of the remaining weights with the smallest magnitude of the trained
   weights, ranked globally over all prunable tensors (level ``L`` keeps exactly
   ``round((1 - rate)^L · N)`` weights);
3. reset the survivors to ``θ_r`` and train with the mask fixed from step ``r`` (the
   learning-rate schedule continues from there, the optimizer starts fresh); write
   ``level-LL.ticket`` (mask, ``θ_r ⊙ m``, trained weights, provenance, its test top-1);
   repeat from 2.

Runs survive: a checkpoint (safetensors tensors + JSON metadata, no pickle, optimizer
momentum included) is written atomically after every epoch and at every level, and Ctrl-C
(or SIGTERM) stops at the next step boundary after writing one; ``resume=True`` continues
to the same result. Every random choice derives from ``(seed, level, epoch)`` (the
initialization from ``seed``, the data order and augmentation from the data layer's
generator seeded with ``seed`` and ``(level, epoch)``), so on the CPU a resumed run gives
bit-identical masks and weights.

Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) the process group is initialized (NCCL on
CUDA, gloo on the CPU), the model is wrapped in ``DistributedDataParallel``, each process
trains on its slice of every global batch (32×32 datasets: the same batches as one
process; ImageFolder datasets: a ``DistributedSampler``), BatchNorm statistics are
synchronized over the processes (``sync_bn``, default on: the same arithmetic as one
process) and rank 0 writes the files.

Example:
    >>> from ticketfmt.train import find, verify  # doctest: +SKIP
    >>> run = find("cifar_resnet20", "cifar10", levels=5, out_dir="runs/r20", epochs=20)  # doctest: +SKIP
    >>> run.tickets[-1].name, run.accuracies[-1]  # doctest: +SKIP
    ('level-05.ticket', 90.1)
    >>> record = verify(Ticket.load("runs/r20/level-05.ticket"), "cifar10")  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import nn

from ticketfmt._version import __version__
from ticketfmt.format.atomic import atomic_write
from ticketfmt.errors import DataError, OutputExistsError, TicketError
from ticketfmt.pruning import keep_top
from ticketfmt.train.recipes import Recipe, get_recipe, parse_rewind, recipe_for
from ticketfmt.ticket import Ticket
from ticketfmt.zoo import ArchSpec, build_model, get_arch, prunable_names, state_dict_shapes

__all__ = [
    "ProgressFn", "Dist", "FindResult", "Trainer", "Masker", "resolve_device", "init_distributed",
    "train_steps", "evaluate", "find", "verify", "level_name", "imp_keep", "CHECKPOINT", "METRICS", "RUN_CONFIG",
]

ProgressFn = Callable[[dict[str, Any]], None]
"""``progress(event)``; ``event["phase"]`` is one of

- ``"data"``: ``description``, ``done``, ``total`` (decoding a dataset the first time);
- ``"train"``: ``level``, ``levels``, ``epoch``, ``epochs``, ``step``, ``steps`` (the level's last
  step), ``start_step``, ``loss``, ``acc`` (running training top-1, %), ``lr``, ``images_per_sec``,
  ``eta_s`` (whole run);
- ``"eval"``: ``level``, ``done``, ``total`` (images);
- ``"level"``: ``level``, ``levels``, ``sparsity``, ``top1``, ``path`` (a level finished);
- ``"resume"``: ``level``, ``step``; ``"interrupted"``: ``level``, ``step``, ``checkpoint``.
"""

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
RUN_CONFIG = "run.json"
_RUN_FORMAT = "ticketfmt-run-v1"
_STREAM_STRIDE = 100_000  # data-order key = level * stride + epoch


def level_name(level: int) -> str:
    """The file name of a level's ticket: ``level-03.ticket``."""
    return f"level-{level:02d}.ticket"


def imp_keep(total: int, level: int, rate: float) -> int:
    """Weights IMP keeps at ``level``: ``round((1 - rate)^level · total)`` (sparsity ``1 - (1 - rate)^level``)."""
    return round(((1.0 - rate) ** level) * total)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------
# devices and processes


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


def _destroy_group() -> None:
    with contextlib.suppress(Exception):
        if tdist.is_initialized():
            tdist.destroy_process_group()


def _barrier(dist: Dist) -> None:
    if dist.enabled:
        tdist.barrier()


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


class _GroupBatchNorm2d(nn.BatchNorm2d):
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
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                nf = float(n)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (nf / max(nf - 1, 1.0)), alpha=m)
        y = xc * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y


def _sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = _GroupBatchNorm2d
    return model


# --------------------------------------------------------------------------------------------------
# masked training


class Masker:
    """Holds masks fixed on a model: :meth:`mask_grads` after backward, :meth:`mask_params` after the step.

    Layers whose mask keeps everything are skipped (a dense model costs nothing).
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor] | None) -> None:
        params = dict(model.named_parameters())
        self.params: list[torch.Tensor] = []
        self.masks: list[torch.Tensor] = []
        for name, m in (masks or {}).items():
            if name not in params:
                raise TicketError(f"mask {name!r} names no parameter of the model", fix="check the architecture")
            if bool(m.all()):
                continue
            p = params[name]
            self.params.append(p)
            self.masks.append(torch.empty_like(p).copy_(m.to(p.dtype)))  # same device, dtype and strides

    def __bool__(self) -> bool:
        return bool(self.params)

    def mask_grads(self) -> None:
        grads = [p.grad for p in self.params]
        if grads and all(g is not None for g in grads):
            torch._foreach_mul_(grads, self.masks)  # type: ignore[arg-type]
        else:
            for g, m in zip(grads, self.masks):
                if g is not None:
                    g.mul_(m)

    @torch.no_grad()
    def mask_params(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.masks)


def _to_cpu_state(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in sd.items()}


class Trainer:
    """One model, its masks and its SGD optimizer, ready to take masked steps.

    Args:
        model: the network (moved to ``device``, made ``channels_last``).
        masks: ``{param name: bool mask}`` held fixed, or ``None`` for dense training.
        recipe: optimizer settings (the learning rate is set per step by the caller).
        device: where to train.
        dist: the process group position (DDP when ``dist.enabled``).
        compile: run the forward pass through ``torch.compile``.
        sync_bn: under DDP, BatchNorm statistics over the whole global batch.
        channels_last: use the channels-last memory format.

    Example:
        >>> model = build_model("cifar_resnet8", seed=0)  # doctest: +SKIP
        >>> trainer = Trainer(model, masks, get_recipe("cifar_resnet"), device=torch.device("cpu"))  # doctest: +SKIP
        >>> loss_sum, correct = trainer.step(x, y, lr=0.1)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor] | None, recipe: Recipe, *,
                 device: torch.device, dist: Dist | None = None, compile: bool = False, sync_bn: bool = True,
                 channels_last: bool = True) -> None:
        self.device = device
        self.dist = dist or Dist()
        self.recipe = recipe
        model = model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.dist.enabled and sync_bn:
            model = _sync_batchnorm(model, device)
        self.module = model
        self.masker = Masker(model, masks)
        self.masker.mask_params()
        net: nn.Module = model
        if self.dist.enabled:
            import inspect

            from torch.nn.parallel import DistributedDataParallel as DDP
            # with synchronized BN the buffers agree already (newer torch renamed the flag)
            flag = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters
                    else "broadcast_buffers")
            net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                      gradient_as_bucket_view=True, **{flag: not sync_bn})
        if compile:
            net = torch.compile(net)  # type: ignore[assignment]
        self.net = net
        self.autocast = device.type == "cuda"
        self.opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                   weight_decay=recipe.weight_decay, nesterov=recipe.nesterov,
                                   foreach=True)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, global_batch: int | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One masked SGD step on ``(x, y)``; returns this process's loss sum and correct count (tensors).

        ``global_batch`` is the size of the whole batch over all processes (the loss is
        scaled so that the averaged gradient is the whole batch's mean).
        """
        self.module.train()
        for g in self.opt.param_groups:
            g["lr"] = lr
        n = int(y.shape[0])
        total = global_batch if global_batch is not None else n * self.dist.world_size
        with self._autocast():
            logits = self.net(x)
        loss_sum = F.cross_entropy(logits.float(), y, reduction="sum")
        self.opt.zero_grad(set_to_none=True)
        (loss_sum * (self.dist.world_size / total)).backward()
        self.masker.mask_grads()
        self.opt.step()
        self.masker.mask_params()
        with torch.no_grad():
            correct = (logits.argmax(1) == y).sum()
        return loss_sum.detach(), correct

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return _to_cpu_state(self.module.state_dict())

    def momentum(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, p in self.module.named_parameters():
            buf = self.opt.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                out[name] = buf.detach().to("cpu", copy=True).contiguous()
        return out

    def load(self, state: Mapping[str, torch.Tensor], momentum: Mapping[str, torch.Tensor] | None = None) -> None:
        self.module.load_state_dict(dict(state), strict=True)
        self.masker.mask_params()
        self.opt.state.clear()
        if momentum:
            for name, p in self.module.named_parameters():
                if name in momentum:
                    self.opt.state[p]["momentum_buffer"] = torch.empty_like(p).copy_(momentum[name])


# --------------------------------------------------------------------------------------------------
# data


def _data_progress(progress: ProgressFn | None) -> Callable[[str, int, int], None] | None:
    if progress is None:
        return None

    def cb(description: str, done: int, total: int) -> None:
        progress({"phase": "data", "description": description, "done": done, "total": total})

    return cb


@dataclass
class _Data:
    train: Any
    test: Any
    whole_batches: bool  # every process sees the whole global batch and takes its slice
    num_classes: int
    small: bool


def _make_data(dataset: str, recipe: Recipe, *, device: torch.device, dist: Dist, data_dir: str | Path | None,
               subset: int | None, seed: int, progress: ProgressFn | None, num_workers: int,
               eval_batch: int | None = None) -> _Data:
    from ticketfmt import data as D

    spec = D.get_spec(dataset)
    cb = _data_progress(progress)
    if spec.small:
        # One loader of whole global batches per process; each process trains on its slice,
        # so the batches are those of a single process whatever the number of processes.
        if recipe.augmentation == "none":
            split = D.load_split(dataset, "train", data_dir, subset=subset, seed=seed, progress=cb,
                                 workers=max(1, num_workers))
            train = D.TensorLoader(split.images, split.labels, recipe.batch_size, mean=spec.mean, std=spec.std,
                                   device=device, train=True, augment=False, seed=seed)
        else:
            train = D.make_loader(dataset, "train", recipe.batch_size, True, device, data_dir, subset, seed,
                                  num_workers=num_workers, progress=cb)
        whole = True
    else:
        per_rank = max(1, recipe.batch_size // dist.world_size)
        train = D.make_loader(dataset, "train", per_rank, True, device, data_dir, subset, seed,
                              distributed=dist.enabled, rank=dist.rank, world_size=dist.world_size,
                              num_workers=num_workers, progress=cb)
        whole = False
    eb = eval_batch or (1000 if spec.small else max(1, recipe.batch_size // dist.world_size))
    test = D.make_loader(dataset, "test", eb, False, device, data_dir, None, seed, distributed=dist.enabled,
                         rank=dist.rank, world_size=dist.world_size, num_workers=num_workers, progress=cb)
    if len(train) == 0:
        raise DataError(f"{dataset}: no training batches", fix="use a larger --subset or a smaller --batch-size")
    return _Data(train, test, whole, spec.num_classes, spec.small)


def _recipe_for_data(recipe: Recipe, small: bool) -> Recipe:
    """Record the augmentation the data layer really applies."""
    if recipe.augmentation == "none":
        return recipe
    return recipe.override(augmentation="crop32-pad4+flip" if small else "rrc224+flip")


# --------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, *, device: torch.device | None = None, dist: Dist | None = None,
             progress: ProgressFn | None = None, level: int | None = None) -> tuple[int, int]:
    """Top-1 of ``model`` over ``loader``: ``(correct, total)``, summed over all processes under DDP."""
    dist = dist or Dist()
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    auto = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    loader.set_epoch(0)
    n_all = getattr(loader, "dataset_size", None) or getattr(loader, "num_samples", 0) * dist.world_size
    with auto:
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum()
            total += int(y.shape[0])
            if progress is not None:
                progress({"phase": "eval", "level": level, "done": total * dist.world_size, "total": n_all})
    model.train(was_training)
    counts = torch.tensor([int(correct), total], dtype=torch.int64)
    if dist.enabled:
        if device.type == "cuda":
            counts = counts.to(device)
        tdist.all_reduce(counts)
    return int(counts[0]), int(counts[1])


# --------------------------------------------------------------------------------------------------
# interruption


class _Stop:
    """Turns SIGINT/SIGTERM into a request honoured at the next step boundary (a second one is immediate)."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Stop]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                for s, h in old.items():
                    signal.signal(s, h)
                raise KeyboardInterrupt
            self.requested = True

        for s in old:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def check(self, dist: Dist, device: torch.device, step: int, every: int = 10) -> bool:
        if not dist.enabled:
            return self.requested
        if step % every:
            return False
        flag = torch.tensor([1 if self.requested else 0], dtype=torch.int32,
                            device=device if device.type == "cuda" else "cpu")
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        self.requested = bool(flag.item())
        return self.requested


# --------------------------------------------------------------------------------------------------
# the training loop


@dataclass
class _Span:
    """What a call of :func:`train_steps` measured."""

    steps: int = 0
    images: int = 0
    seconds: float = 0.0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0

    @property
    def images_per_sec(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def _slice(x: torch.Tensor, y: torch.Tensor, dist: Dist) -> tuple[torch.Tensor, torch.Tensor]:
    n = int(y.shape[0])
    lo, hi = n * dist.rank // dist.world_size, n * (dist.rank + 1) // dist.world_size
    return x[lo:hi], y[lo:hi]


def train_steps(trainer: Trainer, loader: Any, recipe: Recipe, *, start: int, end: int, steps_per_epoch: int,
                stream: int = 0, whole_batches: bool = True, on_step: Callable[[int], None] | None = None,
                on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
                report: Callable[[int, dict[str, float]], None] | None = None, report_every: int = 10,
                stop: _Stop | None = None, on_stop: Callable[[int], None] | None = None) -> _Span:
    """Train optimizer steps ``start .. end - 1`` of the recipe's schedule.

    Step ``s`` is batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``, whose order
    and augmentation come from ``loader.set_epoch(stream * 100000 + epoch)``; so any span can
    start anywhere (a rewind point, a checkpoint) and see the batches an uninterrupted run
    would. ``on_step(step)`` runs after each step, ``on_epoch(epoch, step, stats)`` at the
    end of each epoch, ``report(step, stats)`` every ``report_every`` steps. When ``stop`` is
    requested, ``on_stop(step)`` runs at the next step boundary and ``KeyboardInterrupt`` is raised.
    """
    dist = trainer.dist
    span = _Span()
    step = start
    dev = trainer.device
    sync = dev.type == "cuda"
    while step < end:
        epoch = step // steps_per_epoch
        skip = step - epoch * steps_per_epoch
        loader.set_epoch(stream * _STREAM_STRIDE + epoch)
        ep_loss = torch.zeros((), device=dev)
        ep_correct = torch.zeros((), dtype=torch.int64, device=dev)
        ep_seen = 0
        rep_loss = torch.zeros((), device=dev)
        rep_correct = torch.zeros((), dtype=torch.int64, device=dev)
        rep_seen = 0
        t_epoch = time.perf_counter()
        t_rep = t_epoch
        ep_images = 0
        for i, (x, y) in enumerate(loader):
            if i < skip:
                continue
            if step >= end or i >= steps_per_epoch:
                break
            n_global = int(y.shape[0]) if whole_batches else int(y.shape[0]) * dist.world_size
            if whole_batches and dist.enabled:
                if n_global < dist.world_size:  # a tail too small to split: every process skips it
                    step += 1
                    continue
                x, y = _slice(x, y, dist)
            loss_sum, correct = trainer.step(x, y, recipe.lr_at(step, steps_per_epoch), n_global)
            step += 1
            n = int(y.shape[0])
            ep_loss += loss_sum
            ep_correct += correct
            rep_loss += loss_sum
            rep_correct += correct
            ep_seen += n
            rep_seen += n
            ep_images += n_global
            span.steps += 1
            span.images += n_global
            if on_step is not None:
                on_step(step)
            if report is not None and (step % report_every == 0 or step == end):
                if sync:
                    torch.cuda.synchronize(dev)
                now = time.perf_counter()
                report(step, {"loss": float(rep_loss) / max(rep_seen, 1),
                              "acc": 100.0 * int(rep_correct) / max(rep_seen, 1),
                              "lr": recipe.lr_at(step - 1, steps_per_epoch),
                              "images_per_sec": rep_seen * dist.world_size / max(now - t_rep, 1e-9)})
                rep_loss.zero_()
                rep_correct.zero_()
                rep_seen = 0
                t_rep = now
            if stop is not None and stop.check(dist, dev, step):
                if on_stop is not None:
                    on_stop(step)
                raise KeyboardInterrupt
        if sync:
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t_epoch
        span.seconds += seconds
        totals = torch.tensor([float(ep_loss), float(int(ep_correct)), float(ep_seen)], dtype=torch.float64)
        if dist.enabled:
            if dev.type == "cuda":
                totals = totals.to(dev)
            tdist.all_reduce(totals)
            totals = totals.cpu()
        span.loss_sum += float(totals[0])
        span.correct += int(totals[1])
        span.seen += int(totals[2])
        if step % steps_per_epoch == 0 or step >= end:
            if on_epoch is not None:
                seen = max(float(totals[2]), 1.0)
                on_epoch(epoch, step, {"loss": float(totals[0]) / seen, "train_acc": 100.0 * float(totals[1]) / seen,
                                       "lr": recipe.lr_at(step - 1, steps_per_epoch), "seconds": seconds,
                                       "images_per_sec": ep_images / max(seconds, 1e-9)})
    return span


# --------------------------------------------------------------------------------------------------
# checkpoints (safetensors + JSON metadata: no pickle)


def _save_checkpoint(path: Path, meta: Mapping[str, Any], groups: Mapping[str, Mapping[str, torch.Tensor] | None]) -> None:
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for group, tens in groups.items():
        for k, v in (tens or {}).items():
            tensors[f"{group}/{k}"] = v.detach().to("cpu").contiguous()
    blob = save(tensors, metadata={"format": _RUN_FORMAT, "state": json.dumps(meta, sort_keys=True)})
    atomic_write(path, [blob])


def _load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
            if md.get("format") != _RUN_FORMAT:
                raise TicketError(f"{path} is not a ticketfmt run checkpoint", fix="point -o at a `ticket find` run")
            meta = json.loads(md["state"])
            groups: dict[str, dict[str, torch.Tensor]] = {}
            for key in f.keys():
                group, _, name = key.partition("/")
                groups.setdefault(group, {})[name] = f.get_tensor(key)
    except TicketError:
        raise
    except Exception as e:  # noqa: BLE001
        raise TicketError(f"cannot read checkpoint {path}: {e}",
                          fix="the run folder is damaged; start again without --resume in a new folder") from None
    return meta, groups


class _Log:
    """The JSONL metrics log of a run (rank 0 only); every record gets a timestamp."""

    def __init__(self, path: Path | None, enabled: bool = True) -> None:
        self.path = path if enabled else None

    def write(self, record: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": _now(), **record}, sort_keys=False) + "\n")


# --------------------------------------------------------------------------------------------------
# IMP


@dataclass
class FindResult:
    """What :func:`find` produced: one ticket per level (level 0 is the dense rewind point)."""

    out_dir: Path
    tickets: list[Path] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    sparsities: list[float] = field(default_factory=list)


def _config(spec: ArchSpec, dataset: str, rate: float, recipe: Recipe, subset: int | None, seed: int) -> dict[str, Any]:
    rec = recipe.to_json()
    rec.pop("overrides", None)
    return {"arch": spec.id, "num_classes": spec.num_classes, "dataset": dataset, "rate": rate, "recipe": rec,
            "subset": subset, "seed": seed}


def _diff_config(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    for k in sorted(set(old) | set(new)):
        if k == "recipe":
            for rk in sorted(set(old.get(k, {})) | set(new.get(k, {}))):
                a, b = old.get(k, {}).get(rk), new.get(k, {}).get(rk)
                if a != b:
                    return f"recipe {rk} {a!r} (this run asks for {b!r})"
        elif old.get(k) != new.get(k):
            return f"{k} {old.get(k)!r} (this run asks for {new.get(k)!r})"
    return None


def find(arch: str | ArchSpec, dataset: str, levels: int, *, out_dir: str | os.PathLike[str], rate: float = 0.2,
         rewind: str | None = None, recipe: str | Recipe | None = None, subset: int | None = None, seed: int = 0,
         resume: bool = False, device: str | torch.device | None = "auto", compile: bool = False,
         data_dir: str | os.PathLike[str] | None = None, num_classes: int | None = None,
         progress: ProgressFn | None = None, sync_bn: bool = True, eval_every: int = 0, num_workers: int = 2,
         command: str | None = None, **overrides: Any) -> FindResult:
    """Find tickets by iterative magnitude pruning with rewinding; one ticket file per level in ``out_dir``.

    Args:
        arch: architecture id (``cifar_resnet20``) or spec.
        dataset: ``cifar10``, ``cifar100``, ``cifar10-jpeg``, ``cifar10-mini``, ``imagenet`` or ``imagefolder:PATH``.
        levels: pruning levels after the dense level 0 (level ``L`` is ``1 - (1-rate)^L`` sparse).
        out_dir: the run folder (``level-LL.ticket``, ``checkpoint.safetensors``, ``metrics.jsonl``, ``run.json``).
        rate: fraction of the remaining weights pruned per level.
        rewind: rewind point (``1000it``, ``5ep``, ``0``); default the recipe's.
        recipe: recipe name or object; default by architecture family.
        subset: train on a seeded class-balanced subset of this many images.
        seed: seeds the initialization, the subset, the data order and augmentation.
        resume: continue the run in ``out_dir`` (a fresh start when it holds no checkpoint). Without it
            a folder holding a run is refused. ``levels`` may be raised on resume.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        compile: ``torch.compile`` the model.
        data_dir: where the dataset lives (see :mod:`ticketfmt.data`).
        num_classes: classes of the head (default: the dataset's).
        progress: callback, see :data:`ProgressFn`.
        sync_bn: under DDP, BatchNorm over the whole global batch (the same masks as one process).
        eval_every: also evaluate on the test split every this many epochs (0: only at the end of each level).
        num_workers: data workers / decoding processes.
        command: the command line to record in the provenance.
        **overrides: recipe fields: ``epochs``, ``lr``, ``batch_size``, ``milestones``, ``warmup_epochs``,
            ``momentum``, ``weight_decay``, ``gamma``, ``nesterov``, ``augmentation``.

    Returns:
        a :class:`FindResult` (paths, top-1 per level in %, sparsity per level).

    Raises:
        TicketError: bad arguments, an occupied run folder, a run folder of another configuration.
        DataError: the dataset cannot be loaded.
        KeyboardInterrupt: interrupted; the checkpoint was written and ``resume=True`` continues.
    """
    from ticketfmt import data as D

    if levels < 0:
        raise TicketError(f"levels must be 0 or more, got {levels}", fix="pass --levels 5")
    if not 0.0 < rate < 1.0:
        raise TicketError(f"rate must be in (0, 1), got {rate}", fix="pass --rate 0.2 (20% of the remaining weights)")
    dspec = D.get_spec(dataset)
    classes = num_classes if num_classes is not None else (dspec.num_classes or None)
    spec = get_arch(arch, classes)
    if isinstance(recipe, Recipe):
        rec = recipe.override(rewind=rewind, **overrides)
    else:
        rec = recipe_for(spec, recipe, rewind=rewind, **overrides)
    rec = _recipe_for_data(rec, dspec.small)
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT
    config = _config(spec, dataset, rate, rec, subset, seed)

    meta: dict[str, Any] | None = None
    groups: dict[str, dict[str, torch.Tensor]] = {}
    if ckpt_path.exists():
        if not resume:
            raise OutputExistsError(f"{out} holds a run already", fix="pass --resume to continue it, or choose another -o")
        meta, groups = _load_checkpoint(ckpt_path)
        why = _diff_config(meta["config"], config)
        if why is not None:
            raise TicketError(f"{out} was started with {why}",
                              fix=f"resume with the options of the original run (see {out / RUN_CONFIG})")
    elif out.exists() and any(out.glob("level-*.ticket")):
        raise OutputExistsError(f"{out} holds tickets but no checkpoint", fix="choose another -o")

    dist, dev = init_distributed(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    main = dist.is_main
    log = _Log(out / METRICS, main)
    emit = progress if (progress is not None and main) else None
    data = _make_data(dataset, rec, device=dev, dist=dist, data_dir=data_dir, subset=subset, seed=seed,
                      progress=emit, num_workers=num_workers)
    if spec.num_classes != data.num_classes:
        raise DataError(f"{dataset} has {data.num_classes} classes but the {spec.id} head has {spec.num_classes}",
                        fix="leave num_classes to the dataset")
    spe = len(data.train)
    total_steps = rec.total_steps(spe)
    r = rec.rewind_step(spe)
    if r >= total_steps:
        raise TicketError(f"rewind point {rec.rewind} (step {r}) is not before the end of training (step {total_steps})",
                          fix="rewind earlier, or train longer with --epochs")
    names = prunable_names(spec)

    shapes = state_dict_shapes(spec)
    total_prunable = sum(math.prod(shapes[n]) for n in names)

    # run state
    level = 0
    step = 0
    masks: dict[str, torch.Tensor] | None = None
    rewind_state: dict[str, torch.Tensor] | None = None
    results: dict[str, dict[str, Any]] = {}
    speeds: dict[str, float] = {}
    if meta is not None:
        level, step = int(meta["level"]), int(meta["step"])
        results = dict(meta.get("results", {}))
        speeds = dict(meta.get("speeds", {}))
        masks = {k: v.to(torch.bool) for k, v in groups.get("mask", {}).items()} or None
        rewind_state = groups.get("rewind") or None
    trainer = Trainer(build_model(spec, seed=seed), masks, rec, device=dev, dist=dist, compile=compile,
                      sync_bn=sync_bn)
    if meta is not None:
        trainer.load(groups["model"], groups.get("momentum"))
        if emit:
            emit({"phase": "resume", "level": level, "step": step})
        log.write({"event": "resume", "level": level, "step": step})
    elif main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / RUN_CONFIG, [json.dumps({**config, "levels": levels, "rewind_step": r,
                                                    "steps_per_epoch": spe, "world_size": dist.world_size,
                                                    "created": _now(), "ticketfmt": __version__,
                                                    "command": command}, indent=2).encode()])
    if r == 0 and rewind_state is None:
        rewind_state = trainer.state_dict()

    def checkpoint(level_: int, step_: int) -> None:
        if main:
            state = {"config": config, "level": level_, "step": step_, "levels": levels, "rewind_step": r,
                     "steps_per_epoch": spe, "results": results, "speeds": speeds, "saved": _now()}
            _save_checkpoint(ckpt_path, state, {"model": trainer.state_dict(), "momentum": trainer.momentum(),
                                                "mask": masks, "rewind": rewind_state})
        _barrier(dist)

    start_wall = time.perf_counter()
    steps_done_here = 0

    def steps_left(level_: int, step_: int) -> int:
        return (total_steps - step_) + max(0, levels - level_) * (total_steps - r)

    result = FindResult(out)
    stop = _Stop()
    with stop.installed():
        if meta is None:
            checkpoint(0, 0)
        while True:
            # -- train this level ---------------------------------------------------------------
            if step < total_steps:
                lvl = level

                def on_step(s: int) -> None:
                    nonlocal rewind_state, steps_done_here
                    steps_done_here += 1
                    if lvl == 0 and s == r and rewind_state is None:
                        rewind_state = trainer.state_dict()

                def on_epoch(epoch: int, s: int, stats: dict[str, float]) -> None:
                    rec_ = {"event": "epoch", "level": lvl, "epoch": epoch + 1, "step": s, **stats}
                    if eval_every and (epoch + 1) % eval_every == 0 and s < total_steps:
                        c, t = evaluate(trainer.module, data.test, device=dev, dist=dist)
                        rec_["test_acc"] = 100.0 * c / max(t, 1)
                    log.write(rec_)
                    checkpoint(lvl, s)

                def report(s: int, stats: dict[str, float]) -> None:
                    if emit is None:
                        return
                    elapsed = time.perf_counter() - start_wall
                    rate_ = steps_done_here / elapsed if elapsed > 0 else 0.0
                    eta = steps_left(lvl, s) / rate_ if rate_ > 0 else None
                    emit({"phase": "train", "level": lvl, "levels": levels, "epoch": (s - 1) // spe + 1,
                          "epochs": rec.epochs, "step": s, "steps": total_steps,
                          "start_step": 0 if lvl == 0 else r, "eta_s": eta, **stats})

                def on_stop(s: int) -> None:
                    checkpoint(lvl, s)
                    log.write({"event": "interrupted", "level": lvl, "step": s})
                    if emit:
                        emit({"phase": "interrupted", "level": lvl, "step": s, "checkpoint": str(ckpt_path)})

                span = train_steps(trainer, data.train, rec, start=step, end=total_steps, steps_per_epoch=spe,
                                   stream=level, whole_batches=data.whole_batches, on_step=on_step,
                                   on_epoch=on_epoch, report=report, stop=stop, on_stop=on_stop)
                step = total_steps
                if span.seconds > 0:
                    speeds[str(level)] = span.images_per_sec
            # -- evaluate, write the level's ticket ----------------------------------------------
            key = str(level)
            if key not in results:
                correct, seen = evaluate(trainer.module, data.test, device=dev, dist=dist, progress=emit, level=level)
                top1 = 100.0 * correct / max(seen, 1)
                speed = speeds.get(key)
                record = {"dataset": dataset, "split": "test", "metric": "top1", "value": round(top1, 2),
                          "correct": correct, "total": seen, "epochs": rec.epochs, "subset": subset, "seed": seed,
                          "recipe": rec.to_json(), "date": _now(), "device": _device_name(dev),
                          "world_size": dist.world_size, "images_per_sec": round(speed, 1) if speed else None,
                          "source": "imp", "start_step": 0 if level == 0 else r}
                results[key] = record
                assert rewind_state is not None
                ticket = _level_ticket(spec, names, masks, rewind_state, trainer.state_dict(), level, levels, rate,
                                       rec, r, spe, dataset, subset, seed, dist, dev, results, record, command)
                path = out / level_name(level)
                if main:
                    ticket.save(path)
                log.write({"event": "level", "level": level, "sparsity": ticket.sparsity, "test_acc": top1,
                           "correct": correct, "total": seen, "path": str(path)})
                checkpoint(level, step)
                if emit:
                    emit({"phase": "level", "level": level, "levels": levels, "sparsity": ticket.sparsity,
                          "top1": top1, "path": str(path)})
            if level >= levels:
                break
            if stop.check(dist, dev, 0, every=1):
                checkpoint(level, step)
                raise KeyboardInterrupt
            # -- prune, rewind --------------------------------------------------------------------
            assert rewind_state is not None
            trained = trainer.state_dict()
            current = masks or {n: torch.ones(trained[n].shape, dtype=torch.bool) for n in names}
            keep = imp_keep(total_prunable, level + 1, rate)
            scores = {n: trained[n].abs().float() for n in names}
            masks = keep_top(scores, current, keep)
            if dist.enabled:  # every process holds rank 0's masks
                for n in names:
                    buf = masks[n].to(torch.uint8)
                    buf = buf.to(dev) if dev.type == "cuda" else buf
                    tdist.broadcast(buf, 0)
                    masks[n] = buf.cpu().to(torch.bool)
            level += 1
            step = r
            trainer = Trainer(build_model(spec, seed=seed), masks, rec, device=dev, dist=dist, compile=compile,
                              sync_bn=sync_bn)
            trainer.load(rewind_state)
            checkpoint(level, step)

    for lv in range(levels + 1):
        rec_ = results.get(str(lv))
        if rec_ is None:
            continue
        result.tickets.append(out / level_name(lv))
        result.accuracies.append(float(rec_["value"]))
        result.sparsities.append(1.0 - imp_keep(total_prunable, lv, rate) / total_prunable)
    return result


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    import platform
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _reference(record: Mapping[str, Any] | None, sparsity: float | None = None) -> dict[str, Any] | None:
    if not record:
        return None
    ref = {"value": record["value"], "dataset": record["dataset"], "epochs": record["epochs"],
           "subset": record.get("subset"), "seed": record.get("seed")}
    if sparsity is not None:
        ref["sparsity"] = round(sparsity, 6)
    return ref


def _level_ticket(spec: ArchSpec, names: list[str], masks: Mapping[str, torch.Tensor] | None,
                  rewind_state: Mapping[str, torch.Tensor], trained: Mapping[str, torch.Tensor], level: int, levels: int,
                  rate: float, rec: Recipe, r: int, spe: int, dataset: str, subset: int | None, seed: int, dist: Dist,
                  dev: torch.device, results: Mapping[str, Any], record: Mapping[str, Any], command: str | None
                  ) -> Ticket:
    full = masks or {n: torch.ones(trained[n].shape, dtype=torch.bool) for n in names}
    provenance: dict[str, Any] = {
        "method": "imp", "level": level, "levels": levels, "rate": rate,
        "target_sparsity": round(1.0 - (1.0 - rate) ** level, 6),
        "selection": "global magnitude of the trained weights over all prunable tensors",
        "rewind": rec.rewind, "rewind_step": r, "steps_per_epoch": spe,
        "dataset": dataset, "subset": subset, "seed": seed, "epochs": rec.epochs, "batch_size": rec.batch_size,
        "recipe": rec.to_json(), "device": _device_name(dev), "world_size": dist.world_size,
        "ticketfmt": __version__, "torch": torch.__version__, "date": _now(),
    }
    if command:
        provenance["command"] = command
    dense = _reference(results.get("0"), 0.0)
    if dense is not None:
        provenance["dense_reference"] = dense
    if level > 0:
        provenance["imp_reference"] = _reference(record, 1.0 - (1.0 - rate) ** level)
    return Ticket(spec, full, dict(rewind_state), dict(trained), provenance, [dict(record)])


# --------------------------------------------------------------------------------------------------
# the evaluator


def _ticket_recipe(ticket: Ticket, recipe: str | Recipe | None, overrides: Mapping[str, Any]) -> Recipe:
    if isinstance(recipe, Recipe):
        base = recipe
    elif recipe is not None:
        base = get_recipe(recipe)
    elif isinstance(ticket.provenance.get("recipe"), Mapping):
        base = Recipe.from_json(ticket.provenance["recipe"])
    else:
        base = recipe_for(ticket.spec)
    rewind = overrides.get("rewind")
    if rewind is None:
        prov = ticket.provenance
        if prov.get("rewind") is not None:
            rewind = str(prov["rewind"])
        elif prov.get("method") == "init":
            rewind = "0"
    return base.override(**{**overrides, "rewind": rewind})


def verify(ticket: Ticket, dataset: str, *, from_scratch: bool = False, recipe: str | Recipe | None = None,
           subset: int | None = None, seed: int | None = None, device: str | torch.device | None = "auto",
           data_dir: str | os.PathLike[str] | None = None, compile: bool = False, progress: ProgressFn | None = None,
           sync_bn: bool = True, store_trained: bool = False, log_path: str | os.PathLike[str] | None = None,
           num_workers: int = 2, **overrides: Any) -> dict[str, Any]:
    """Retrain a ticket with its mask fixed and record its test top-1; returns the result record.

    Training starts from the ticket's ``init`` weights (``θ_r ⊙ m``) at its rewind step, the
    learning-rate schedule continuing from there (``from_scratch``: at step 0). The recipe
    is the one recorded in the ticket's provenance (else the family default), with
    ``overrides`` (``epochs``, ``lr``, ``batch_size``, ``rewind``, ...); ``seed`` defaults to the
    provenance's. An IMP ticket verified with the budget it was found with (same seed,
    subset, epochs) retrains on the very batches of its IMP level, so on the CPU it
    reproduces the recorded accuracy exactly.

    The record (``dataset``, ``split``, ``metric``, ``value`` (top-1, %), ``correct``, ``total``,
    ``epochs``, ``subset``, ``seed``, ``recipe``, ``date``, ``device``, ``images_per_sec``,
    ``start_step``, ``from_scratch``, ``dense_reference``/``imp_reference`` when the provenance
    knows them) is appended to ``ticket.results``; with ``store_trained`` the trained
    weights replace ``ticket.trained``.

    Raises:
        DataError: the dataset cannot be loaded or its class count does not fit the ticket.
        TicketError: bad recipe values.
    """
    from ticketfmt import data as D

    dspec = D.get_spec(dataset)
    if dspec.num_classes and dspec.num_classes != ticket.num_classes:
        raise DataError(f"{dataset} has {dspec.num_classes} classes but the ticket's {ticket.arch} head has "
                        f"{ticket.num_classes}", fix="verify on the dataset the ticket was made for")
    prov = ticket.provenance
    seed = int(prov.get("seed", 0)) if seed is None else int(seed)
    rec = _recipe_for_data(_ticket_recipe(ticket, recipe, overrides), dspec.small)
    dist, dev = init_distributed(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    emit = progress if (progress is not None and dist.is_main) else None
    data = _make_data(dataset, rec, device=dev, dist=dist, data_dir=data_dir, subset=subset, seed=seed,
                      progress=emit, num_workers=num_workers)
    spe = len(data.train)
    total_steps = rec.total_steps(spe)
    start = 0 if from_scratch else rec.rewind_step(spe)
    if start >= total_steps:
        raise TicketError(f"the ticket's rewind point {rec.rewind} (step {start}) is not before the end of training "
                          f"({total_steps} steps of {spe} a epoch)",
                          fix="train longer (--epochs), rewind earlier (--rewind), or pass --from-scratch")
    stream = int(prov.get("level", 0)) if prov.get("method") == "imp" else 0
    trainer = Trainer(ticket.build_model("init"), ticket.masks, rec, device=dev, dist=dist, compile=compile,
                      sync_bn=sync_bn)
    log = _Log(Path(log_path) if log_path else None, dist.is_main)
    t0 = time.perf_counter()

    def report(s: int, stats: dict[str, float]) -> None:
        if emit is None:
            return
        done = s - start
        elapsed = time.perf_counter() - t0
        eta = (total_steps - s) * elapsed / done if done > 0 else None
        emit({"phase": "train", "level": prov.get("level"), "levels": None, "epoch": (s - 1) // spe + 1,
              "epochs": rec.epochs, "step": s, "steps": total_steps, "start_step": start, "eta_s": eta, **stats})

    def on_epoch(epoch: int, s: int, stats: dict[str, float]) -> None:
        log.write({"event": "epoch", "epoch": epoch + 1, "step": s, **stats})

    stop = _Stop()
    with stop.installed():
        span = train_steps(trainer, data.train, rec, start=start, end=total_steps, steps_per_epoch=spe, stream=stream,
                           whole_batches=data.whole_batches, report=report, on_epoch=on_epoch, stop=stop)
    correct, seen = evaluate(trainer.module, data.test, device=dev, dist=dist, progress=emit)
    top1 = 100.0 * correct / max(seen, 1)
    record: dict[str, Any] = {
        "dataset": dataset, "split": "test", "metric": "top1", "value": round(top1, 2), "correct": correct,
        "total": seen, "epochs": rec.epochs, "subset": subset, "seed": seed, "recipe": rec.to_json(),
        "date": _now(), "device": _device_name(dev), "world_size": dist.world_size,
        "images_per_sec": round(span.images_per_sec, 1) if span.seconds > 0 else None,
        "source": "verify", "start_step": start, "steps": total_steps - start, "from_scratch": from_scratch,
        "sparsity": round(ticket.sparsity, 6),
    }
    for key in ("dense_reference", "imp_reference"):
        if isinstance(prov.get(key), Mapping):
            record[key] = dict(prov[key])
    log.write({"event": "verify", **{k: v for k, v in record.items() if k != "recipe"}})
    ticket.results.append(record)
    if store_trained:
        trained = trainer.state_dict()
        for n, m in ticket.masks.items():
            trained[n] = torch.where(m, trained[n], torch.zeros((), dtype=trained[n].dtype))
        ticket.trained = trained
    return record


def parse_milestones(text: str) -> tuple[float, ...]:
    """``"80,120"`` → ``(80.0, 120.0)``; an empty string gives no milestones."""
    text = text.strip()
    if not text:
        return ()
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise TicketError(f"cannot read milestones {text!r}", fix="write epochs separated by commas, e.g. 80,120") from None


__all__ += ["parse_milestones", "parse_rewind"]
