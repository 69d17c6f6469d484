"""Masked training: :class:`Masker`, :class:`Trainer`, the step loop :func:`train_steps`, :func:`evaluate`.

Masked training holds a ticket's mask fixed: the gradients of pruned weights are zeroed
after every backward pass *and* the weights are multiplied by the mask after every
optimizer step, so pruned weights are exactly zero at every step (weight decay and
momentum cannot revive them). Models run in ``channels_last``, under bf16 autocast on
CUDA, optionally through ``torch.compile``.

Steps are optimizer steps of a recipe's schedule: step ``s`` uses ``recipe.lr_at(s)`` and
batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``, so a span of training can
start anywhere (a rewind point, a checkpoint) and see what an uninterrupted run would, as
the reference code's ``train(start_step=...)`` does.

Example:
    >>> from ticketfmt.zoo import build_model  # doctest: +SKIP
    >>> trainer = Trainer(build_model("cifar_resnet8", seed=0), None, recipe, device=torch.device("cpu"))  # doctest: +SKIP
    >>> span = train_steps(trainer, loader, recipe, start=0, end=len(loader), steps_per_epoch=len(loader))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import nn

from ticketfmt.errors import TicketError
from ticketfmt.train.dist import Dist, sync_batchnorm
from ticketfmt.train.recipes import Recipe

__all__ = ["ProgressFn", "Masker", "Trainer", "Stop", "Span", "train_steps", "evaluate", "data_stream", "STREAM_STRIDE"]

ProgressFn = Callable[[dict[str, Any]], None]
"""``progress(event)``; ``event["phase"]`` is one of

- ``"data"``: ``description``, ``done``, ``total`` (what the data layer is doing: loading, a first decode);
- ``"notice"``: ``message`` (the data was adapted to the network, e.g. its images resized);
- ``"plan"`` (before the first step of :func:`~ticketfmt.train.find` and :func:`~ticketfmt.train.verify`):
  ``command``, ``arch``, ``dataset``, ``split``, ``recipe`` (one line), ``epochs``, ``steps_per_epoch``,
  ``start_step``, ``steps`` (the last step), ``steps_left``, ``lr``, ``rewind``, ``augmentation``,
  ``train_images``, ``test_images``, ``batch_size``, ``device``, ``device_type``, ``threads``, ``world_size``,
  ``seconds_per_step``/``seconds_per_image``/``eta_s`` (timed on a copy of the model), ``protocol``,
  ``protocol_note``; verify adds ``contract``, ``from_scratch``, ``sparsity``; find adds ``levels``, ``level``,
  ``rewind_step``;
- ``"train"``: ``level``, ``levels``, ``epoch``, ``epochs``, ``step``, ``steps`` (the level's last
  step), ``start_step``, ``loss``, ``acc`` (running training top-1, %), ``lr``, ``images_per_sec``,
  ``eta_s`` (whole run);
- ``"epoch"`` (an epoch's end, or its part trained before a stop): ``level``, ``levels``, ``epoch``, ``epochs``,
  ``step``, ``complete`` (false for the part before a stop; the ``"interrupted"`` event follows), ``loss``,
  ``train_acc`` (%), ``lr``, ``seconds``, ``images_per_sec`` (all over this call's steps of the epoch: a resumed
  epoch counts from the resume), ``test_acc`` when ``eval_every`` evaluated it;
- ``"eval"``: ``level``, ``done``, ``total`` (images);
- ``"level"``: ``level``, ``levels``, ``sparsity``, ``top1``, ``path`` (a level finished);
- ``"resume"``: ``level``, ``step``; ``"interrupted"``: ``level``, ``step``, ``checkpoint``.
"""

STREAM_STRIDE = 100_000
"""A data stream's epochs are ``loader.set_epoch(stream * STREAM_STRIDE + epoch)``."""


def data_stream(level: int, data_order: str) -> int:
    """The data stream of an IMP level: 0 for every level (``same``, the reference's), ``level`` for ``per-level``."""
    return level if data_order == "per-level" else 0


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


def _wrap(model: nn.Module, device: torch.device, dist: Dist, sync_bn: bool, compile: bool) -> nn.Module:
    net: nn.Module = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP
        # with synchronized BN the buffers agree already (newer torch renamed the flag)
        flag = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters
                else "broadcast_buffers")
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                  gradient_as_bucket_view=True, **{flag: not sync_bn})
    if compile:
        net = torch.compile(net)  # type: ignore[assignment]
    return net


class Trainer:
    """One model, its masks and its optimizer (the recipe's: SGD or AdamW), ready to take masked steps.

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
            model = sync_batchnorm(model, device)
        self.module = model
        self.masker = Masker(model, masks)
        self.masker.mask_params()
        self.net = _wrap(model, device, self.dist, sync_bn, compile)
        self.autocast = device.type == "cuda"
        self.opt = make_optimizer(model, recipe)

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

    def restart_optimizer(self) -> None:
        """Forget the optimizer's state (momentum, AdamW's moments): the next step is that of a fresh optimizer."""
        self.opt.state.clear()

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return _to_cpu_state(self.module.state_dict())

    def momentum(self) -> dict[str, torch.Tensor]:
        """The optimizer's state by parameter name (what a checkpoint stores).

        SGD's momentum buffer as ``name``; AdamW's moments and step count as ``name:exp_avg``,
        ``name:exp_avg_sq`` and ``name:step``.
        """
        out = {}
        for name, p in self.module.named_parameters():
            for key, buf in self.opt.state.get(p, {}).items():
                if isinstance(buf, torch.Tensor) and buf.numel():
                    out[name if key == "momentum_buffer" else f"{name}:{key}"] = (
                        buf.detach().to("cpu", copy=True).contiguous())
        return out

    def load(self, state: Mapping[str, torch.Tensor], momentum: Mapping[str, torch.Tensor] | None = None) -> None:
        """Load weights (masked) and the momentum buffers (none: a fresh optimizer)."""
        self.module.load_state_dict(dict(state), strict=True)
        self.masker.mask_params()
        self.opt.state.clear()
        if momentum:
            for name, p in self.module.named_parameters():
                if name in momentum:
                    self.opt.state[p]["momentum_buffer"] = torch.empty_like(p).copy_(momentum[name])
                for key in ("exp_avg", "exp_avg_sq"):
                    if f"{name}:{key}" in momentum:
                        self.opt.state[p][key] = torch.empty_like(p).copy_(momentum[f"{name}:{key}"])
                if f"{name}:step" in momentum:  # AdamW keeps its step count on the CPU
                    self.opt.state[p]["step"] = momentum[f"{name}:step"].detach().clone().to(torch.float32)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer over every parameter: SGD (the reference's) or AdamW (the ViT recipes).

    Weight decay applies to every parameter in both, as the reference applies it (AdamW's is decoupled).
    """
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.999), eps=1e-8,
                                 weight_decay=recipe.weight_decay, foreach=True)
    return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                           weight_decay=recipe.weight_decay, nesterov=recipe.nesterov, foreach=True)


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


class Stop:
    """Turns SIGINT/SIGTERM into a request honoured at the next step boundary (a second one is immediate)."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[Stop]:
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
        """Whether a stop was asked for (under DDP: by any process, agreed every ``every`` steps)."""
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
class Span:
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


@dataclass
class _Meter:
    """Running loss and top-1 of a stretch of steps, kept on the device (no sync per step)."""

    device: torch.device
    loss: torch.Tensor = field(init=False)
    correct: torch.Tensor = field(init=False)
    steps: int = 0
    seen: int = 0
    images: int = 0  # over all processes
    since: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.loss = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)

    def add(self, loss_sum: torch.Tensor, correct: torch.Tensor, n: int, n_global: int) -> None:
        self.loss += loss_sum
        self.correct += correct
        self.steps += 1
        self.seen += n
        self.images += n_global


class _FiniteLoss:
    """The first step whose loss was NaN or infinite: tracked on the device, checked every ``every`` steps.

    On a CPU every step is checked (reading the loss costs nothing); on a GPU every ``every`` steps (a sync),
    and under DDP the processes agree (the smallest bad step of any), so all stop together. The error names the
    first bad step either way: training on would only spread the NaN into every weight, which the
    ticket's checks would then blame on the init.
    """

    NONE = 2**62

    def __init__(self, trainer: Trainer, recipe: Recipe, spe: int, label: str, every: int = 10) -> None:
        self.dist, self.recipe, self.spe, self.label = trainer.dist, recipe, spe, label
        self.device = trainer.device
        self.every = 1 if self.device.type == "cpu" and not self.dist.enabled else every
        self.first = torch.full((), self.NONE, dtype=torch.int64, device=self.device)

    def add(self, loss_sum: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(loss_sum)
        self.first = torch.where(bad, torch.minimum(self.first, torch.full_like(self.first, step)), self.first)

    def check(self, step: int, always: bool = False) -> None:
        if not always and step % self.every:
            return
        first = self.first
        if self.dist.enabled:
            first = first.clone() if self.device.type == "cuda" else first.cpu()
            tdist.all_reduce(first, op=tdist.ReduceOp.MIN)
        bad = int(first)
        if bad < self.NONE:
            where = f"{self.label}, " if self.label else ""
            raise TicketError(f"training stopped: the loss became NaN or infinite at step {bad} ({where}epoch "
                              f"{bad // self.spe + 1}, lr {self.recipe.lr_at(bad, self.spe):g}); nothing trained "
                              "after it was saved",
                              fix="lower the learning rate (--lr) or add a warm-up (--warmup); the init is not at "
                                  "fault")


@dataclass
class _Hooks:
    """What :func:`train_steps` calls back (all optional)."""

    on_step: Callable[[int], None] | None = None
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None
    report: Callable[[int, dict[str, float]], None] | None = None
    report_every: int = 10
    stop: Stop | None = None
    on_stop: Callable[[int, int, dict[str, float]], None] | None = None
    report_seconds: float = 5.0  # also report when a stretch of steps took this long (slow steps, a CPU)
    finite: _FiniteLoss | None = None


def _slice(x: torch.Tensor, y: torch.Tensor, dist: Dist) -> tuple[torch.Tensor, torch.Tensor]:
    n = int(y.shape[0])
    lo, hi = n * dist.rank // dist.world_size, n * (dist.rank + 1) // dist.world_size
    return x[lo:hi], y[lo:hi]


def train_steps(trainer: Trainer, loader: Any, recipe: Recipe, *, start: int, end: int, steps_per_epoch: int,
                stream: int = 0, whole_batches: bool = True, on_step: Callable[[int], None] | None = None,
                on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
                report: Callable[[int, dict[str, float]], None] | None = None, report_every: int = 10,
                stop: Stop | None = None, on_stop: Callable[[int, int, dict[str, float]], None] | None = None, label: str = "") -> Span:
    """Train optimizer steps ``start .. end - 1`` of the recipe's schedule.

    Step ``s`` is batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``, whose order
    and augmentation come from ``loader.set_epoch(stream * 100000 + epoch)``; so any span can
    start anywhere (a rewind point, a checkpoint) and see the batches an uninterrupted run
    would. ``on_step(step)`` runs after each step, ``on_epoch(epoch, step, stats)`` at the
    end of each epoch, ``report(step, stats)`` every ``report_every`` steps (or sooner when those
    steps take over 5 s, so slow devices still report steadily). When ``stop`` is
    requested, ``on_stop(epoch, step, stats)`` runs at the next step boundary (as ``on_epoch``'s, for the
    part of the epoch trained in this call) and ``KeyboardInterrupt`` is raised.
    A NaN or infinite loss stops training with a ``TicketError`` naming the first such step (and
    ``label``, e.g. ``"level 2"``), before any later ``on_epoch`` (no checkpoint of diverged weights).
    """
    hooks = _Hooks(on_step, on_epoch, report, report_every, stop, on_stop)
    hooks.finite = _FiniteLoss(trainer, recipe, steps_per_epoch, label)
    span = Span()
    step = start
    while step < end:
        epoch = step // steps_per_epoch
        loader.set_epoch(stream * STREAM_STRIDE + epoch)
        meter = _Meter(trainer.device)
        step = _epoch(trainer, loader, recipe, step, end, steps_per_epoch, whole_batches, hooks, meter)
        _end_epoch(trainer, recipe, epoch, step, end, steps_per_epoch, meter, span, hooks)
    return span


def _epoch(trainer: Trainer, loader: Any, recipe: Recipe, step: int, end: int, spe: int, whole_batches: bool,
           hooks: _Hooks, meter: _Meter) -> int:
    """Steps from ``step`` to the end of its epoch (or ``end``); returns the step reached."""
    dist, dev = trainer.dist, trainer.device
    epoch = step // spe
    skip = step - epoch * spe
    rep = _Meter(dev)
    for i, (x, y) in enumerate(loader):
        if i < skip:
            continue
        if step >= end or i >= spe:
            break
        n_global = int(y.shape[0]) if whole_batches else int(y.shape[0]) * dist.world_size
        if whole_batches and dist.enabled:
            if n_global < dist.world_size:  # a tail too small to split: every process skips it
                step += 1
                continue
            x, y = _slice(x, y, dist)
        loss_sum, correct = trainer.step(x, y, recipe.lr_at(step, spe), n_global)
        if hooks.finite is not None:
            hooks.finite.add(loss_sum, step)
            hooks.finite.check(step + 1)
        step += 1
        meter.add(loss_sum, correct, int(y.shape[0]), n_global)
        rep.add(loss_sum, correct, int(y.shape[0]), n_global)
        if hooks.on_step is not None:
            hooks.on_step(step)
        if hooks.report is not None and (step % hooks.report_every == 0 or step == end
                                         or time.perf_counter() - rep.since >= hooks.report_seconds):
            _report(trainer, recipe, step, spe, rep, hooks.report)
            rep = _Meter(dev)
        if hooks.stop is not None and hooks.stop.check(dist, dev, step):
            if hooks.on_stop is not None:
                # every process agreed on the stop at this step, so the all-reduce of the epoch's part is safe
                seconds, totals = _totals(trainer, meter)
                hooks.on_stop(epoch, step, _epoch_stats(recipe, step, spe, meter, seconds, totals))
            raise KeyboardInterrupt
    return step


def _report(trainer: Trainer, recipe: Recipe, step: int, spe: int, rep: _Meter,
            report: Callable[[int, dict[str, float]], None]) -> None:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    seconds = max(time.perf_counter() - rep.since, 1e-9)
    report(step, {"loss": float(rep.loss) / max(rep.seen, 1), "acc": 100.0 * int(rep.correct) / max(rep.seen, 1),
                  "lr": recipe.lr_at(step - 1, spe), "images_per_sec": rep.seen * trainer.dist.world_size / seconds})


def _end_epoch(trainer: Trainer, recipe: Recipe, epoch: int, step: int, end: int, spe: int, meter: _Meter,
               span: Span, hooks: _Hooks) -> None:
    """Add an epoch's totals (over all processes) to ``span``; call ``on_epoch`` when the epoch is complete."""
    if hooks.finite is not None:
        hooks.finite.check(step, always=True)  # every process reaches the epoch's end: they agree here
    seconds, totals = _totals(trainer, meter)
    span.steps += meter.steps
    span.seconds += seconds
    span.images += meter.images
    span.loss_sum += float(totals[0])
    span.correct += int(totals[1])
    span.seen += int(totals[2])
    if (step % spe == 0 or step >= end) and hooks.on_epoch is not None:
        hooks.on_epoch(epoch, step, _epoch_stats(recipe, step, spe, meter, seconds, totals))


def _totals(trainer: Trainer, meter: _Meter) -> tuple[float, torch.Tensor]:
    """Seconds since the meter started (its steps finished) and its (loss sum, correct, seen), summed over all
    processes."""
    dev = trainer.device
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - meter.since
    totals = torch.tensor([float(meter.loss), float(int(meter.correct)), float(meter.seen)], dtype=torch.float64)
    if trainer.dist.enabled:
        totals = totals.to(dev) if dev.type == "cuda" else totals
        tdist.all_reduce(totals)
        totals = totals.cpu()
    return seconds, totals


def _epoch_stats(recipe: Recipe, step: int, spe: int, meter: _Meter, seconds: float,
                 totals: torch.Tensor) -> dict[str, float]:
    seen = max(float(totals[2]), 1.0)
    return {"loss": float(totals[0]) / seen, "train_acc": 100.0 * float(totals[1]) / seen,
            "lr": recipe.lr_at(step - 1, spe), "seconds": seconds, "images_per_sec": meter.images / max(seconds, 1e-9)}
