"""The checkpoint of a retraining in progress (``verify(..., checkpoint=PATH)``, ``ticket verify --checkpoint``).

A retraining that is stopped (Ctrl-C, SIGTERM, a time limit) keeps its state (weights,
momentum, the step reached, the training time so far) in one safetensors file; the same call
continues from it and, on the CPU at the same thread count, ends with the weights and the
accuracy of an uninterrupted run, because step ``s`` always sees the batches of step ``s``
(:func:`~ticketfmt.train.loop.train_steps`). A checkpoint made by another retraining (another
ticket, recipe, seed, subset, data or thread count) is refused, not mixed in. The file is
removed once the result is recorded.

Example:
    >>> ckpt = VerifyCheckpoint(Path("r20.verify.safetensors"), {"ticket": "ab12", "seed": 0})  # doctest: +SKIP
    >>> ckpt.restore(trainer)  # doctest: +SKIP
    Progress(step=1564, seconds=811.2, images=175104)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ticketfmt.errors import TicketError
from ticketfmt.ticket import Ticket
from ticketfmt.train.dist import Dist, barrier
from ticketfmt.train.loop import Trainer
from ticketfmt.train.runfiles import diff_config, load_checkpoint, now, save_checkpoint

__all__ = ["Progress", "VerifyCheckpoint", "ticket_digest", "saved_threads"]

_KIND = "verify"


def ticket_digest(ticket: Ticket) -> str:
    """The sha256 of what a retraining starts from: the architecture, the masks and the ``init`` weights.

    Two tickets with the same digest train alike, whatever their provenance or results say.

    Example:
        >>> ticket_digest(Ticket.load("r20.ticket"))[:12]  # doctest: +SKIP
        '3f9a0c1d2e4b'
    """
    h = hashlib.sha256(ticket.arch.encode())
    for group in (ticket.masks, ticket.init):
        for name in sorted(group):
            t = group[name].detach().to("cpu").contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def saved_threads(path: str | os.PathLike[str] | None) -> int | None:
    """The CPU thread count a retraining's checkpoint was written at (None: no file, or none recorded).

    A continued retraining keeps it unless told otherwise, as a resumed ``ticket find`` does:
    CPU results are bit-reproducible only at one thread count.
    """
    if path is None or not Path(path).is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            n = json.loads((f.metadata() or {}).get("state", "{}")).get("config", {}).get("threads")
    except Exception:  # noqa: BLE001 - a damaged file is reported by restore(), with its fix
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else None


@dataclass(frozen=True)
class Progress:
    """How far a stopped retraining got: the next step to train, and the training seconds and images so far."""

    step: int
    seconds: float = 0.0
    images: int = 0


class VerifyCheckpoint:
    """One retraining's checkpoint file: :meth:`restore` it (if there), :meth:`save` it, :meth:`remove` it at the end.

    ``config`` is what a resume must agree with; a file holding another config is refused
    with the first setting that differs. With ``path`` None the retraining keeps no state
    (nothing is read, saved or removed).
    """

    def __init__(self, path: Path | None, config: Mapping[str, Any], dist: Dist | None = None) -> None:
        self.path, self.config, self.dist = (None if path is None else Path(path)), dict(config), dist
        self.resumed: Progress | None = None

    @property
    def _main(self) -> bool:
        return self.path is not None and (self.dist is None or self.dist.is_main)

    def restore(self, trainer: Trainer) -> Progress | None:
        """Load the saved state into ``trainer``; None (and ``trainer`` untouched) when there is no file.

        Raises:
            TicketError: the file is not a retraining's checkpoint, or another retraining's.
        """
        if self.path is None or not self.path.exists():
            return None
        meta, groups = load_checkpoint(self.path)
        fix = f"delete {self.path} to start over, or pass the options of the run that wrote it"
        if meta.get("kind") != _KIND or not isinstance(meta.get("config"), Mapping):
            raise TicketError(f"{self.path} is not the checkpoint of a retraining (ticket verify)", fix=fix)
        why = diff_config(meta["config"], self.config)
        if why is not None:
            raise TicketError(f"{self.path} belongs to another retraining: {why}", fix=fix)
        trainer.load(groups["model"], groups.get("momentum"))
        self.resumed = Progress(int(meta["step"]), float(meta.get("seconds", 0.0)), int(meta.get("images", 0)))
        return self.resumed

    def save(self, trainer: Trainer, progress: Progress) -> None:
        """Write the state atomically (the main process), then wait for every process."""
        if self._main and self.path is not None:
            meta = {"kind": _KIND, "config": self.config, "step": progress.step,
                    "seconds": round(progress.seconds, 3), "images": progress.images, "saved": now()}
            save_checkpoint(self.path, meta, {"model": trainer.state_dict(), "momentum": trainer.momentum()})
        if self.path is not None and self.dist is not None:
            barrier(self.dist)

    def remove(self) -> None:
        """Delete the file (the retraining's result is recorded; a new call starts afresh)."""
        if self._main and self.path is not None:
            self.path.unlink(missing_ok=True)
