"""Seeded mutation fuzzing of the reader: 2,000 structure-aware cases and 1,000 byte cases, each a format error or a
valid load (``tests/fuzzing.py``; ``bench/fuzz.py`` runs 100,000 at 50 times the suite's sizes)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import fuzzing
from ticketfmt import Ticket, build_model, prune

STRUCTURED_CASES = 2000
BYTE_CASES = 1000
SUITE_SCALE = 0.2  # hostile values at a fifth of fuzzing.SCALE's 1: 20 KB strings, 200 added layers (seconds)


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("orig")
    base = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    trained = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8",
                                trained=build_model("cifar_resnet8", seed=1))
    out = []
    for i, (ticket, encoding) in enumerate([(prune(base, 0.5), "packed"), (prune(base, 0.9), "dense"),
                                            (prune(trained, 0.7), "packed")]):
        path = folder / f"{i}.ticket"
        ticket.save(path, encoding=encoding)
        out.append(path.read_bytes())
    return out


def test_structure_aware_fuzz(originals: list[bytes], tmp_path: Path, monkeypatch) -> None:
    """Metadata values, shapes, ids, nesting, duplicate keys, pruned values: the format error or a valid load."""
    monkeypatch.setattr(fuzzing, "SCALE", SUITE_SCALE)
    outcomes = Counter(fuzzing.run_case(seed, originals, tmp_path / "case.ticket", structured=True)
                       for seed in range(STRUCTURED_CASES))
    assert sum(outcomes.values()) == STRUCTURED_CASES
    assert outcomes["error"] > STRUCTURED_CASES // 2 and outcomes["loaded"] > 0, outcomes  # both paths exercised


def test_byte_fuzz(originals: list[bytes], tmp_path: Path) -> None:
    outcomes = Counter(fuzzing.run_case(seed, originals, tmp_path / "case.ticket", structured=False)
                       for seed in range(BYTE_CASES))
    assert sum(outcomes.values()) == BYTE_CASES
    assert outcomes["error"] > BYTE_CASES // 2  # the mutations do break files
