"""Interruption: `kill -9` at random points of `ticket find` and of a save never loses or corrupts work."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_train import ARCH, DATASET, _assert_same_masks, _env, mini  # noqa: F401  (mini is a fixture)
from ticketfmt import Ticket

# Three epochs a level, so a run logs a dozen events to kill between.
ARGS = [ARCH, "--dataset", DATASET, "--levels", "2", "--subset", "192", "--epochs", "3", "--batch-size", "64",
        "--rewind", "1it", "--lr", "0.01", "--seed", "0"]
KILLS = 5


def _events(out: Path) -> int:
    log = out / "metrics.jsonl"
    return sum(1 for line in log.read_text().splitlines() if line.strip()) if log.is_file() else 0


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_gives_the_same_masks(mini: Path, tmp_path: Path) -> None:  # noqa: F811
    ref = tmp_path / "ref"
    done = subprocess.run([sys.executable, "-m", "ticketfmt", "find", *ARGS, "-o", str(ref)], env=_env(),
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    total = _events(ref)
    rng = random.Random(1234)
    out = tmp_path / "killed"
    kills = 0
    while kills < KILLS:
        resume = ["--resume"] if out.exists() else []
        start = _events(out)
        wait_for = start + rng.randint(1, 2)
        proc = subprocess.Popen([sys.executable, "-m", "ticketfmt", "find", *ARGS, *resume, "-o", str(out)],
                                env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _events(out) < wait_for and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2))  # land anywhere: mid-step, mid-checkpoint, mid-save
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
            break  # the run finished before this kill: too few points left
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
        # A killed run never leaves a half-written ticket: every visible .ticket loads.
        for path in out.glob("*.ticket"):
            Ticket.load(path)
    assert kills == KILLS, f"only {kills} kills landed before the run ended ({total} events in a run)"
    final = subprocess.run([sys.executable, "-m", "ticketfmt", "find", *ARGS, "--resume", "-o", str(out)],
                           env=_env(), capture_output=True, timeout=300)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    _assert_same_masks(out, ref)


SAVER = """
import sys, itertools
from ticketfmt import Ticket, build_model, prune
base = Ticket.from_model(build_model("cifar_resnet56", seed=0), "cifar_resnet56")
tickets = [prune(base, s) for s in (0.5, 0.9)]
print("ready", flush=True)
for i in itertools.count():
    tickets[i % 2].save(sys.argv[1], encoding="dense")
"""


def test_kill_9_during_save_never_leaves_a_partial_ticket(tmp_path: Path) -> None:
    rng = random.Random(7)
    target = tmp_path / "t.ticket"
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], env=_env(), stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if target.exists():
            t = Ticket.load(target)  # complete and valid, whichever version won
            assert round(t.sparsity, 2) in (0.5, 0.9)
        # Only the target and hidden temporaries of interrupted writes may be in the folder.
        assert all(p == target or p.name.startswith(".t.ticket.") for p in tmp_path.iterdir())
    assert target.exists()
