"""The default torch thread count of a training run (issue 13, goal 4): the cores shared by the jobs running.

The rule is tested as a function and through the notes jobs leave in a folder; no timing.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ticketfmt.train.dist import _started, cpu_threads, running_jobs, shared_threads


@pytest.fixture()
def two_threads() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(2)  # "as set": what a run that does not choose shares
    yield
    torch.set_num_threads(old)


def _note(folder: Path, name: str, pid: int, host: str | None = None, started: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                "started": _started(pid) if started is None else started, "threads": 2}))
    return path


@pytest.mark.parametrize(("available", "jobs", "threads"), [
    (2, 1, 2), (2, 2, 1), (2, 3, 1), (8, 2, 4), (8, 3, 2), (1, 1, 1), (1, 4, 1), (4, 0, 4),
])
def test_shared_threads_is_the_share_of_each_job_and_at_least_one(available: int, jobs: int, threads: int) -> None:
    assert shared_threads(available, jobs) == threads


def test_running_jobs_counts_live_jobs_of_this_machine_and_drops_ended_ones(tmp_path: Path) -> None:
    live = _note(tmp_path, "live", os.getppid())  # pytest's parent: alive for the whole test
    ended = _note(tmp_path, "ended", 2 ** 22 + 12345, started="1")  # above Linux's largest pid: no such process
    reused = _note(tmp_path, "reused", os.getppid(), started="not-its-start-time") if _started(os.getppid()) else None
    _note(tmp_path, "elsewhere", os.getppid(), host="another-machine")  # a home folder shared over the network
    _note(tmp_path, "self", os.getpid())  # this process's own runs (nested) are not other jobs
    (tmp_path / "junk.json").write_text("{not json")
    jobs = running_jobs(tmp_path)
    assert [j["pid"] for j in jobs] == [os.getppid()] and live.exists()
    assert not ended.exists() and (reused is None or not reused.exists())


def test_a_run_that_does_not_choose_takes_its_share(tmp_path: Path, two_threads: None) -> None:
    with cpu_threads(None, tmp_path) as alone:
        assert alone == 2 == torch.get_num_threads()
        assert len(list(tmp_path.glob("*.json"))) == 1  # its note, for the jobs that start meanwhile
    assert not list(tmp_path.glob("*.json")) and torch.get_num_threads() == 2  # note removed, threads restored
    _note(tmp_path, "other", os.getppid())
    with cpu_threads(None, tmp_path) as shared:
        assert shared == 1 == torch.get_num_threads()
    with cpu_threads(2, tmp_path) as chosen:  # --threads wins
        assert chosen == 2
    assert torch.get_num_threads() == 2


def test_an_unwritable_jobs_folder_falls_back_to_the_threads_as_set(tmp_path: Path, two_threads: None) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with cpu_threads(None, blocked / "jobs") as n:
        assert n == 2
