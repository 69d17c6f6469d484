"""Seeded mutation fuzzing of the reader: 2,000 cases, every one a format error or a valid load."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fuzzing import run_case
from ticketfmt import Ticket, build_model, prune

CASES = 2000


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


def test_fuzz_reader(originals: list[bytes], tmp_path: Path) -> None:
    outcomes = Counter(run_case(seed, originals, tmp_path / "case.ticket") for seed in range(CASES))
    assert sum(outcomes.values()) == CASES
    assert outcomes["error"] > CASES // 2  # the mutations do break files
