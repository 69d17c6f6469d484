"""Sparsity figures from a ``name -> (kept, total)`` table (tickets, packed headers, converted plans alike)."""

from __future__ import annotations

from collections.abc import Mapping

from ticketfmt.zoo import ArchSpec

__all__ = ["sparsity_of", "stage_sparsity", "SparsityFigures"]


def sparsity_of(density: Mapping[str, tuple[int, int]]) -> float:
    """Overall sparsity from ``name -> (kept, total)``."""
    kept = sum(k for k, _ in density.values())
    total = sum(n for _, n in density.values())
    return 1.0 - kept / total if total else 0.0


def stage_sparsity(spec: ArchSpec, density: Mapping[str, tuple[int, int]]) -> dict[str, float]:
    """Sparsity per stage from ``name -> (kept, total)``."""
    acc: dict[str, list[int]] = {}
    for name, (kept, total) in density.items():
        a = acc.setdefault(spec.stage_of(name), [0, 0])
        a[0] += kept
        a[1] += total
    order = ["stem"] + [f"stage{i + 1}" for i in range(len(spec.stages))] + ["head"]
    return {s: 1.0 - acc[s][0] / acc[s][1] for s in order if s in acc and acc[s][1]}


class SparsityFigures:
    """``sparsity`` and ``stage_sparsity()`` for anything with a ``spec`` and a ``layer_density()``
    (a :class:`~ticketfmt.ticket.Ticket`, a packed source file being converted)."""

    spec: ArchSpec

    def layer_density(self) -> dict[str, tuple[int, int]]:
        raise NotImplementedError

    @property
    def sparsity(self) -> float:
        """Fraction of the prunable weights that the mask removes."""
        return sparsity_of(self.layer_density())

    def stage_sparsity(self) -> dict[str, float]:
        """Sparsity per stage (``stem``, ``stage1``.., ``head``) over the prunable weights."""
        return stage_sparsity(self.spec, self.layer_density())
