"""Shared fixtures: tiny tickets, an in-process CLI runner, and the shared-data setting."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `ticket ARGS...` in-process; returns exit code, stdout and stderr."""
    from ticketfmt.cli import main

    def run(*args: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def r8_ticket():
    """A cifar_resnet8 ticket at 50% magnitude sparsity (fresh init, seed 0)."""
    from ticketfmt import Ticket, build_model, prune

    ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    return prune(ticket, 0.5, method="magnitude")


@pytest.fixture(autouse=True, scope="session")
def _own_test_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's own data: tests/data (tiny, written by tests/make_data.py) and a private tensor cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TICKETFMT_DATA", str(ROOT / "tests" / "data"))
    mp.setenv("TICKETFMT_CACHE", str(tmp_path_factory.mktemp("data-cache")))
    yield
    mp.undo()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[object]:
    """A FakeHub on 127.0.0.1 with the huggingface_hub client pointed at it (and a private cache)."""
    from hubserver import FakeHub

    with FakeHub() as fake:
        fake.configure_client(monkeypatch, cache_dir=tmp_path / "hf-cache")
        yield fake
        assert fake.errors == []  # the fake server's own bugs fail the test
