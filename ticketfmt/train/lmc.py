"""Linear mode connectivity (instability, the paper's Fig. 8): :func:`lmc`, :func:`interpolate`, :func:`error_barrier`.

Two copies of a ticket train from its rewind point with the same mask and the same budget; they
differ only in the order (and augmentation draws) of the training data. The test error is then
measured at ``points`` evenly spaced points of the linear path ``(1 - α) θ_A + α θ_B``, and the
*error barrier* is the largest error along the path minus the mean of the two endpoints' errors
(Frankle et al., 2020). A barrier near zero says the two trainings end in one linearly connected
basin: the ticket is stable, as a winning ticket is; the paper reports 8.72% for ResNet-20 → 32
and 69.72% for ResNet-14 → 32.

This follows the reference's ``change_depth_linear_connect`` branch (VITA-Group/ElasticLTH): both
copies start at the lottery's rewind step, their data-order seeds are the run's seed + 9999 and
+ 10001, the path has 21 points, every state-dict entry is interpolated (BatchNorm's running
statistics included, nothing re-estimated) and each point is evaluated on the test split as it
is. See docs/FIDELITY.md.

Example:
    >>> from ticketfmt import Ticket  # doctest: +SKIP
    >>> res = lmc(Ticket.load("r32.ticket"), "cifar10", epochs=2, subset=5000)  # doctest: +SKIP
    >>> res.barrier, len(res.errors), res.record["metric"]  # doctest: +SKIP
    (3.41, 21, 'error_barrier')
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ticketfmt.errors import TicketError
from ticketfmt.ticket import Ticket
from ticketfmt.train.dist import Dist, cpu_threads, start_run
from ticketfmt.train.loop import ProgressFn, Span, Trainer, evaluate
from ticketfmt.train.rundata import DataFactory, make_data, recipe_for_data
from ticketfmt.train.recipes import Recipe
from ticketfmt.train.runfiles import RunLog
from ticketfmt.train.retraining import (VerifyPlan, announce, data_options, make_plan, resolve_recipe,
                                        result_record, train_span, training_contract)

__all__ = ["Connectivity", "lmc", "interpolate", "error_barrier", "DATA_ORDERS", "POINTS"]

DATA_ORDERS = (9999, 10001)
"""The data streams of the two copies: the reference's data-order seeds are its seed + 9999 and + 10001."""

POINTS = 21
"""Points on the path, ends included: the reference's ``np.linspace(0, 1, 21)``."""


@dataclass(frozen=True)
class Connectivity:
    """What :func:`lmc` measured: the curve, the barrier, the two trained copies, and the ticket with the record.

    Attributes:
        ticket: the input ticket with ``record`` appended to its results.
        record: the result (``metric`` ``"error_barrier"``, ``value`` the barrier in points of error).
        alphas: the points of the path, 0 (copy A) to 1 (copy B).
        errors: the test error (%) at each point.
        barrier: ``max(errors) - (errors[0] + errors[-1]) / 2``.
        trained: the two copies' trained state dicts (CPU), A then B.
    """

    ticket: Ticket
    record: dict[str, Any]
    alphas: tuple[float, ...]
    errors: tuple[float, ...]
    barrier: float
    trained: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]

    @property
    def endpoints(self) -> tuple[float, float]:
        """The errors of the two trained copies (the path's ends)."""
        return self.errors[0], self.errors[-1]


def error_barrier(errors: Sequence[float]) -> float:
    """The largest error along the path minus the mean of the errors at its two ends.

    Example:
        >>> error_barrier([10.0, 30.0, 12.0])
        19.0
    """
    if len(errors) < 2:
        raise TicketError("an error barrier needs the errors of at least the two ends of the path",
                          fix="evaluate the path at 2 points or more")
    return max(errors) - (errors[0] + errors[-1]) / 2


def interpolate(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], alpha: float,
                masks: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """``(1 - alpha) a + alpha b`` for every floating-point entry, with ``masks`` re-applied.

    BatchNorm's running mean and variance are interpolated like the weights (the reference
    re-estimates nothing); integer entries (``num_batches_tracked``) are taken from ``a``.

    Example:
        >>> a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 4.0])}
        >>> interpolate(a, b, 0.5, {"w": torch.tensor([True, False])})["w"].tolist()
        [2.0, 0.0]
    """
    if set(a) != set(b):
        raise TicketError("the two networks have different state-dict entries", fix="interpolate copies of one ticket")
    out = {}
    for k, va in a.items():
        vb = b[k]
        v = torch.lerp(va, vb.to(va.dtype), float(alpha)) if va.is_floating_point() else va.clone()
        if masks is not None and k in masks:
            v = v * masks[k].to(v.dtype)  # pruned weights stay exactly zero at every point
        out[k] = v
    return out


def _announce_lmc(plan: VerifyPlan, trainer: Trainer, data: Any, dataset: str, ticket: Ticket,
                  subset: int | None, emit: ProgressFn, points: int, orders: Sequence[int]) -> None:
    """The plan event of verify, said as lmc's: two trainings and ``points`` evaluations."""

    def as_lmc(event: dict[str, Any]) -> None:
        eta = event.get("eta_s")
        emit({**event, "command": "lmc", "points": points, "data_orders": list(orders),
              "eta_s": None if eta is None else 2 * eta})

    announce(plan, trainer, data, dataset, ticket, subset, as_lmc)


def _copy(ticket: Ticket, rec: Recipe, plan: VerifyPlan, data: Any, index: int, order: int, dev: torch.device,
          dist: Dist, emit: ProgressFn | None, log: RunLog, compile: bool, sync_bn: bool
          ) -> tuple[dict[str, torch.Tensor], Span]:
    """Train copy ``index`` (0: A, 1: B) on data stream ``order``; returns its trained state and the span."""
    trainer = Trainer(ticket.build_model("init"), ticket.masks, rec, device=dev, dist=dist, compile=compile,
                      sync_bn=sync_bn)
    tag = "AB"[index]
    say = None if emit is None else (lambda ev: emit({**ev, "copy": tag, "copies": 2}))
    span = train_span(trainer, data, dataclasses.replace(plan, stream=order), None, say, log)
    return trainer.state_dict(), span


def _path(ticket: Ticket, states: Sequence[Mapping[str, torch.Tensor]], alphas: Sequence[float], data: Any,
          dev: torch.device, dist: Dist, emit: ProgressFn | None) -> list[tuple[int, int]]:
    """``(correct, total)`` on the test split at each point of the path."""
    model = ticket.build_model("init").to(dev)
    counts = []
    for i, alpha in enumerate(alphas):
        model.load_state_dict(interpolate(states[0], states[1], alpha, ticket.masks))
        correct, seen = evaluate(model, data.test, device=dev, dist=dist)
        counts.append((correct, seen))
        if emit is not None:
            emit({"phase": "point", "index": i + 1, "points": len(alphas), "alpha": alpha,
                  "error": 100.0 * (seen - correct) / max(seen, 1)})
    return counts


def _lmc_record(base: dict[str, Any], alphas: Sequence[float], counts: Sequence[tuple[int, int]],
                orders: Sequence[int], spans: Sequence[Span]) -> dict[str, Any]:
    errors = [round(100.0 * (n - c) / max(n, 1), 4) for c, n in counts]
    barrier = error_barrier(errors)
    record = {k: v for k, v in base.items() if k not in ("correct", "value", "images_per_sec")}
    seconds = sum(s.seconds for s in spans)
    record.update({
        "metric": "error_barrier", "value": round(barrier, 4), "source": "lmc", "points": len(alphas),
        "alphas": [round(a, 6) for a in alphas], "errors": errors, "endpoints": [errors[0], errors[-1]],
        "max_error": max(errors), "total": counts[0][1], "data_orders": list(orders),
        "copies": [{"copy": tag, "data_order": o, "top1": round(100.0 - e, 4)}
                   for tag, o, e in zip("AB", orders, (errors[0], errors[-1]))],
        "interpolation": "(1 - alpha) A + alpha B, every float state entry (BatchNorm running statistics "
                         "included, none re-estimated), masks re-applied",
        "images_per_sec": round(sum(s.images for s in spans) / seconds, 1) if seconds > 0 else None,
    })
    return record


def _check(points: int, orders: Sequence[int]) -> tuple[float, ...]:
    if points < 2:
        raise TicketError(f"the path needs at least 2 points, got {points}", fix="pass --points 21 (the reference's)")
    if len(orders) != 2 or int(orders[0]) == int(orders[1]):
        raise TicketError(f"two different data orders are needed, got {list(orders)}",
                          fix="pass --data-orders A,B with A != B (default 9999,10001)")
    return tuple(i / (points - 1) for i in range(points))


def lmc(ticket: Ticket, dataset: str, *, points: int = POINTS, data_orders: Sequence[int] = DATA_ORDERS,
        from_scratch: bool = False, recipe: str | Recipe | None = None, subset: int | None = None,
        seed: int | None = None, device: str | torch.device | None = "auto",
        data_dir: str | os.PathLike[str] | None = None, compile: bool = False, progress: ProgressFn | None = None,
        sync_bn: bool = True, num_workers: int = 2, normalize: str | None = None,
        data_factory: DataFactory | None = None, resize: bool | None = None, crop: str | None = None,
        threads: int | None = None, **overrides: Any) -> Connectivity:
    """Train two copies of ``ticket`` on two data orders, measure the test error along the path between them.

    Both copies start like :func:`~ticketfmt.train.verify` (the ticket's masked ``init`` at its
    rewind step, its training contract, ``overrides`` such as ``epochs``), on the same data and
    training subset (``seed``); copy A trains on data stream ``data_orders[0]``, copy B on
    ``data_orders[1]`` (epoch ``e`` of stream ``s`` draws its order from ``s * 100000 + e``). The
    path is evaluated at ``points`` evenly spaced values of α (α = 0 is copy A, 1 is copy B).

    The record (verify's fields, with ``metric`` ``"error_barrier"``, ``value`` the barrier in
    points of error, ``source`` ``"lmc"``, ``points``, ``alphas``, ``errors``, ``endpoints``,
    ``max_error``, ``data_orders``, ``copies`` (each copy's top-1)) is appended to the returned
    ticket's results. On the CPU a run is reproduced exactly with the same seeds and threads.

    Raises:
        TicketError: fewer than 2 points, data orders not two different numbers, or verify's errors.
        DataError: the dataset cannot be loaded or does not fit the ticket.
    """
    alphas, orders = _check(points, data_orders), [int(o) for o in data_orders]
    contract, origin = training_contract(ticket.provenance)
    options, augmentation = data_options(ticket, dataset, contract, data_dir,
                                          {"normalize": normalize, "resize": resize, "crop": crop})
    seed = int(contract.get("seed", 0)) if seed is None else int(seed)
    rec = recipe_for_data(resolve_recipe(ticket, contract, recipe, overrides), augmentation)
    dist, dev, emit = start_run(device, progress)
    log = RunLog(None, dist.is_main)
    with cpu_threads(threads):
        data = (data_factory or make_data)(dataset, rec, device=dev, dist=dist, data_dir=data_dir, subset=subset,
                                           seed=seed, progress=emit, num_workers=num_workers,
                                           input_size=ticket.spec, **options)
        plan = make_plan(ticket, rec, seed, len(data.train), origin, from_scratch, options)
        if emit:
            probe = Trainer(ticket.build_model("init"), ticket.masks, rec, device=dev, dist=dist, sync_bn=sync_bn)
            _announce_lmc(plan, probe, data, dataset, ticket, subset, emit, points, orders)
        runs = [_copy(ticket, rec, plan, data, i, o, dev, dist, emit, log, compile, sync_bn)
                for i, o in enumerate(orders)]
        counts = _path(ticket, [s for s, _ in runs], alphas, data, dev, dist, emit)
        base = result_record(ticket, dataset, plan, subset, counts[0][0], counts[0][1], runs[0][1], dev, dist, data.split)
    record = _lmc_record(base, alphas, counts, orders, [sp for _, sp in runs])
    return Connectivity(ticket.replace(results=[*ticket.results, record]), record, alphas,
                        tuple(record["errors"]), float(record["value"]), (runs[0][0], runs[1][0]))
