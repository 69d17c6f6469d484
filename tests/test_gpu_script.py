"""`bench/gpu.py --tiny` (issue 12): the device run's CPU smoke: a throughput table, JSON, a reproduction slice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "gpu"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # TICKETFMT_DATA / TICKETFMT_CACHE: the suite's own (conftest)
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--tiny", "--device", "cpu",
                           "--out", str(out), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads((out / "gpu.json").read_text())


def test_gpu_script_tiny_budget(tmp_path: Path) -> None:
    budget = 25.0
    proc, res = _run(tmp_path, "--budget-s", str(budget), "--data-dir", str(ROOT / "tests" / "data"))
    # one table, with a row for each network at least (their plain variant always runs)
    assert proc.stdout.count("| network | variant | images/s |") == 1, proc.stdout
    t = res["throughput"]
    assert t["synthetic"] is False and t["data"].startswith("real: cifar10-mini")
    assert {r["arch"] for r in t["rows"]} == {"cifar_resnet8", "cifar_resnet14"}
    assert all(r["images_per_sec"] > 0 and r["epoch_seconds_est"] > 0 for r in t["rows"])
    for r in t["rows"]:
        assert f"| {r['arch']} |" in proc.stdout
    # every variant is either measured or listed as skipped
    assert len(t["rows"]) + len(t["skipped"]) == 8
    # the budget holds once the interpreter is up (a loaded machine stretches the imports, not the phases)
    assert res["wall_seconds"] <= budget + res["startup_seconds"] + 8, res["wall_seconds"]
    rep = res["reproduction"]
    if rep["status"].startswith("skipped"):  # only when start-up ate the budget
        assert "left of the budget" in rep["status"], rep
        assert res["startup_seconds"] + 5 > budget * 0.45
    else:
        assert rep["status"] in ("exit 0", "exit 130"), rep
        slice_dir = Path(rep["out"])
        assert (slice_dir / "slices.jsonl").is_file() and (slice_dir / "config.json").is_file()
        assert json.loads((slice_dir / "config.json").read_text())["scale"] == "tiny"
        assert rep["progress"]["arms_planned"] == 19
    assert (tmp_path / "gpu" / "summary.md").read_text().count("| network |") == 1


def test_gpu_script_without_data_uses_synthetic_batches(tmp_path: Path) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    proc, res = _run(tmp_path, "--budget-s", "4", "--data-dir", str(empty))
    assert res["throughput"]["synthetic"] is True
    assert "synthetic" in proc.stdout
    assert res["reproduction"]["status"].startswith("skipped: the cifar10-mini dataset was not found")
    assert {r["arch"] for r in res["throughput"]["rows"]} == {"cifar_resnet8", "cifar_resnet14"}


def test_gpu_reproduction_phase_runs_a_time_limited_slice(tmp_path: Path, monkeypatch) -> None:
    """Phase 2 in-process (no start-up to pay): a slice that stops at its limit and says how far it got."""
    monkeypatch.setenv("TICKETFMT_DATA", str(ROOT / "tests" / "data"))  # reproduce.main sets it: restored after
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import gpu
    import torch

    out = tmp_path / "gpu"
    out.mkdir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads beside another busy process collapse to a few images/s
    try:
        rep = gpu.reproduction(dict(gpu.TINY, margin_s=1.0), torch.device("cpu"), ROOT / "tests" / "data", out,
                               gpu.elapsed() + 12.0, None)
    finally:
        torch.set_num_threads(threads)
    assert rep["status"] == "exit 0", rep
    p = rep["progress"]
    assert p["arms_planned"] == 19 and p["imp_levels_done"] >= 1
    slices = [json.loads(x) for x in (out / "reproduce-tiny" / "slices.jsonl").read_text().splitlines()]
    assert len(slices) == 1 and slices[0]["wall_seconds"] < 11 + 5
    if p["arms_done"] < p["arms_planned"]:  # cut short: the slice says so and a rerun resumes it
        assert slices[0]["status"].startswith("time limit"), slices
        assert "Partial run" in (out / "reproduce-tiny" / "results.md").read_text()
    assert "--resume" in rep["command"] and "--time-limit" in rep["command"]


def test_gpu_sh_wrapper_runs_and_copies_to_out(tmp_path: Path) -> None:
    """`bash bench/gpu.sh` (what a device run calls): the shared set-up (bench/gpu_env.sh), the budget, $OUT."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GPU_BUDGET_S": "4", "GPU_OUT": str(tmp_path / "results"),
           "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--tiny", "--device", "cpu", "--data-dir",
                           str(empty)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("torch ") and " cuda " in proc.stdout.splitlines()[0]
    res = json.loads((tmp_path / "out" / "gpu" / "gpu.json").read_text())
    assert res["throughput"]["synthetic"] is True
    assert (tmp_path / "results" / "gpu.json").read_text() == (tmp_path / "out" / "gpu" / "gpu.json").read_text()
    with tarfile.open(tmp_path / "out" / "gpu" / "results.tar.gz") as tar:  # the whole folder, as one file
        names = {n.removeprefix("./") for n in tar.getnames()}
    assert {"gpu.json", "summary.md"} <= names
