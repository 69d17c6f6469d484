"""The files of a run folder: checkpoints (safetensors + JSON, no pickle), the JSONL metrics log, the run config.

A ``ticket find`` folder holds ``level-LL.ticket`` per level, :data:`CHECKPOINT` (weights,
momentum, masks, rewind weights and the run's state, written atomically), :data:`METRICS`
(one JSON record per line) and :data:`RUN_CONFIG` (what the run was started with; a resume
with other settings is refused, :func:`diff_config` says which).

Example:
    >>> level_name(3)
    'level-03.ticket'
    >>> diff_config({"seed": 0, "recipe": {"lr": 0.1}}, {"seed": 0, "recipe": {"lr": 0.2}})
    'recipe lr 0.1 (this run asks for 0.2)'
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ticketfmt.errors import TicketError
from ticketfmt.format.atomic import atomic_write

__all__ = ["CHECKPOINT", "METRICS", "RUN_CONFIG", "level_name", "now", "save_checkpoint", "load_checkpoint",
           "RunLog", "diff_config"]

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
RUN_CONFIG = "run.json"
_RUN_FORMAT = "ticketfmt-run-v1"


def level_name(level: int) -> str:
    """The file name of a level's ticket: ``level-03.ticket``."""
    return f"level-{level:02d}.ticket"


def now() -> str:
    """UTC time to the second, ``2026-11-26T00:04:54Z``."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def save_checkpoint(path: Path, meta: Mapping[str, Any], groups: Mapping[str, Mapping[str, torch.Tensor] | None]) -> None:
    """Write ``{group/name: tensor}`` and ``meta`` (JSON) atomically."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for group, tens in groups.items():
        for k, v in (tens or {}).items():
            tensors[f"{group}/{k}"] = v.detach().to("cpu").contiguous()
    blob = save(tensors, metadata={"format": _RUN_FORMAT, "state": json.dumps(meta, sort_keys=True)})
    atomic_write(path, [blob])


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """Read a checkpoint: ``(meta, {group: {name: tensor}})``.

    Raises:
        TicketError: not a run checkpoint, or damaged.
    """
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


class RunLog:
    """The JSONL metrics log of a run (rank 0 only); every record gets a timestamp."""

    def __init__(self, path: Path | None, enabled: bool = True) -> None:
        self.path = path if enabled else None

    def write(self, record: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": now(), **record}, sort_keys=False) + "\n")


def diff_config(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The first setting in which two run configs differ, as ``name OLD (this run asks for NEW)``; None if equal."""
    for k in sorted(set(old) | set(new)):
        if isinstance(old.get(k), Mapping) and isinstance(new.get(k), Mapping):
            for rk in sorted(set(old[k]) | set(new[k])):
                a, b = old[k].get(rk), new[k].get(rk)
                if a != b:
                    return f"{k} {rk} {a!r} (this run asks for {b!r})"
        elif old.get(k) != new.get(k):
            return f"{k} {old.get(k)!r} (this run asks for {new.get(k)!r})"
    return None
