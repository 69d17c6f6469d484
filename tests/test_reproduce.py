"""`bench/reproduce.py --scale smoke` runs end to end and writes every output (issue 6)."""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reproduce(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/reproduce.py as a module (it is a script, not part of the package), reading the suite's tiny data."""
    monkeypatch.setenv("TICKETFMT_DATA", str(ROOT / "tests" / "data"))
    spec = importlib.util.spec_from_file_location("_reproduce", ROOT / "bench" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reproduce_smoke(tmp_path: Path) -> None:
    out = tmp_path / "reproduce-smoke"
    # the suite's own tiny cifar10-mini (tests/data, made by tests/make_data.py): self-contained
    env = {**os.environ, "TICKETFMT_DATA": str(ROOT / "tests" / "data")}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "reproduce.py"), "--scale", "smoke", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("results.md", "results.json", "accuracy_vs_sparsity.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "accuracy_vs_sparsity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from reproduce import METHODS
    finally:
        sys.path.remove(str(ROOT / "bench"))
    table = (out / "results.md").read_text()
    for _, label in METHODS:  # every arm has a row with numbers in it
        row = next((line for line in table.splitlines() if line.startswith(f"| {label} |")), None)
        assert row is not None, label
        assert "n=1" in row, row
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] is True
    assert {k for k, _ in METHODS} <= set(res["table"])
    assert all(res["table"][k]["cells"] for k, _ in METHODS)
    assert res["savings"] and all(s["image_ratio"] > 1 for s in res["savings"])
    # the lmc step (issue 16): the ETT and IMP tickets at the highest level, a barrier each, in the report
    lmc = {a["ticket"]: a for a in res["lmc"]}
    assert set(lmc) == {"interpolate", "imp"} and all(a["level"] == 2 and len(a["errors"]) == 11 for a in lmc.values())
    assert all(a["barrier"] == round(max(a["errors"]) - (a["errors"][0] + a["errors"][-1]) / 2, 4) for a in lmc.values())
    assert "## Linear mode connectivity" in table and (out / "lmc.png").read_bytes()[:4] == b"\x89PNG"

    # a rerun with --resume skips every finished arm (nothing retrains) and rebuilds the outputs
    arms = sorted(p.name for p in (out / "arms").glob("*.json"))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "reproduce.py"), "--scale", "smoke", "--out", str(out),
                           "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ": training " not in proc.stdout
    assert sorted(p.name for p in (out / "arms").glob("*.json")) == arms


def test_cpu_hours_count_each_training_at_its_own_threads(tmp_path: Path, reproduce: ModuleType) -> None:
    """Slices may run at different thread counts: CPU hours are the sum of each training's seconds x threads."""
    bench = reproduce.Bench("smoke", tmp_path, resume=False)
    bench.arms_dir.mkdir(parents=True)
    levels = [{"level": lv, "images": 1000, "train_seconds": 3600.0} for lv in (0, 1)]
    arms = [{"arm": "imp-cifar_resnet20-s0", "method": "imp-run", "levels": levels, "threads": 1},
            {"arm": "interpolate-L1-s0", "method": "interpolate", "images": 1000, "train_seconds": 1800.0,
             "threads": 2}]
    p = bench.progress(arms)
    assert p["train_hours_done"] == 2.5  # wall: 1 + 1 + 0.5
    assert p["cpu_hours_done"] == 3.0  # 1 x 1 + 1 x 1 + 0.5 x 2, not 2.5 x the largest thread count
    assert p["threads"] == [1, 2]


def test_report_states_the_trainings_threads_not_the_reporters(reproduce: ModuleType) -> None:
    """``--report-only`` may run at another thread count: the machine line names the trainings' threads."""
    res = {"machine": {"threads": 1}, "progress": {"threads": [1, 2]}}
    assert reproduce._trainings_threads(res) == "trainings at 1, 2 thread(s)"
    assert reproduce._trainings_threads({"machine": {"threads": 4}}) == "trainings at 4 thread(s)"


def test_cost_ratio_on_the_cpu_is_of_cpu_seconds(tmp_path: Path, reproduce: ModuleType) -> None:
    """IMP at 1 thread vs a retraining at 2: the time ratio weighs each by its threads, and the table says so."""
    bench = reproduce.Bench("smoke", tmp_path, resume=False)
    c = bench.cfg
    level = c["report"][0]
    levels = [{"level": lv, "images": 1000, "epochs": 1.0, "train_seconds": 100.0} for lv in range(level + 1)]
    imps = {f"{c['target']}-s{c['seeds'][0]}": {"levels": levels, "threads": 1}}
    conv = {"method": "interpolate", "level": level, "seed": c["seeds"][0], "wall_seconds": 50.0, "epochs": 1.0,
            "images": 900, "threads": 2, "convert_seconds": 0.01}
    (s,) = bench.savings(imps, [conv])
    assert s["imp_target_cpu_seconds"] == 100.0 * (level + 1) and s["ett_cpu_seconds"] == 100.0
    assert s["time_ratio"] == level + 1  # not 2 x (level + 1), the ratio of wall seconds
    md = "\n".join(reproduce._savings_md({"savings": [s]}))
    assert "time ratio (CPU s)" in md and f"{100 * (level + 1)} ({100 * (level + 1)})" in md


def test_table_states_the_threads_of_its_wall_times(tmp_path: Path, reproduce: ModuleType) -> None:
    """A 1-thread IMP training and a 2-thread retraining: the wall-seconds column says which is which."""
    bench = reproduce.Bench("smoke", tmp_path, resume=False)
    level = bench.cfg["report"][0]
    arm = {"level": level, "seed": 0, "top1": 50.0, "sparsity": 0.5, "epochs": 1.0, "images": 100}
    trainings = [{**arm, "method": "imp", "wall_seconds": 300.0, "threads": 1},
                 {**arm, "method": "interpolate", "wall_seconds": 100.0, "threads": 2}]
    table = bench.table(trainings)
    assert table["imp"]["cells"][str(level)]["threads"] == [1]
    assert table["interpolate"]["cells"][str(level)]["threads"] == [2]
    res = {"scale": "smoke", "config": bench.cfg, "methods": list(bench.methods), "recipe": bench.recipe.to_json(),
           "machine": reproduce._machine(), "device": "cpu", "table": table, "savings": [], "progress": None,
           "complete": False, "lmc": []}
    md = reproduce.render_md(res)
    assert "| 300 (1) |" in md and "| 100 (2) |" in md


def test_the_report_names_the_machine_the_slices_trained_on(tmp_path: Path, reproduce: ModuleType) -> None:
    """A device run's folder reported on this machine (``--report-only``) names the device's machine, not this."""
    bench = reproduce.Bench("smoke", tmp_path, resume=False)
    assert bench.machine()["cpus"] == os.cpu_count() and "gpu" not in bench.machine()  # no slice yet: this one
    bench.log_slice("finished")
    assert json.loads((tmp_path / "slices.jsonl").read_text())["machine"]["torch"] == reproduce._machine()["torch"]
    gpu = {**reproduce._machine(), "cpus": 16, "gpu": "NVIDIA H200", "torch": "2.11.0+cu130"}
    with open(tmp_path / "slices.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"wall_seconds": 1.0, "cpu_seconds": 1.0, "machine": gpu}) + "\n")
    assert bench.machine() == gpu
    res = {"scale": "smoke", "config": bench.cfg, "methods": list(bench.methods), "recipe": bench.recipe.to_json(),
           "machine": bench.machine(), "device": "cuda", "table": bench.table([]), "savings": [], "progress": None,
           "complete": False, "lmc": []}
    assert "16 cpus, NVIDIA H200, torch 2.11.0+cu130, device cuda" in reproduce.render_md(res)


@pytest.fixture
def two_threads() -> Any:
    """torch at 2 threads for the test (bit-exact comparisons need every training at one count)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def test_a_retraining_cut_by_the_slice_limit_continues_in_the_next(tmp_path: Path, reproduce: ModuleType,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   two_threads: None) -> None:
    """A retraining stopped at a slice's limit keeps its state; the next slice ends it as if it had never been
    cut (same top-1), its wall and CPU seconds summed over the two slices. Every training runs at the bench's
    thread count, not at the share a run that does not choose would take beside other jobs."""
    import shutil
    import socket
    import time

    from ticketfmt.train import dist
    from ticketfmt.train.runfiles import load_checkpoint

    # another ticketfmt job is running (pid 1's note): a run that does not choose would take 1 of the 2 threads
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "other.json").write_text(json.dumps({"pid": 1, "host": socket.gethostname(), "started": dist._started(1),
                                                 "threads": 1}))
    monkeypatch.setenv("TICKETFMT_JOBS_DIR", str(jobs))
    cfg = {**reproduce.SCALES["tiny"], "epochs": 6, "levels": 1, "report": (1,), "methods": ("imp", "interpolate")}
    whole = reproduce.Bench("tiny", tmp_path / "whole", False, cfg=cfg)
    whole.run()
    ref = whole.done("interpolate-L1-s0")
    assert ref is not None and "slices" not in ref and ref["threads"] == 2
    assert whole.done("imp-cifar_resnet20-s0")["threads"] == 2

    shutil.copytree(whole.out, tmp_path / "cut")
    (tmp_path / "cut" / "arms" / "interpolate-L1-s0.json").unlink()
    cut = reproduce.Bench("tiny", tmp_path / "cut", True, cfg=cfg)
    # passed: the retraining (steps 1..11) stops at its first report, step 10 (sooner when steps take over 5 s)
    cut.deadline = time.monotonic() - 1.0
    monkeypatch.setattr(cut, "check_fits", lambda *a, **k: None)  # and starts all the same
    with pytest.raises(reproduce.SliceEnd, match="training state is in"):
        cut.run()
    state, partial = cut.runs_dir / "interpolate-L1-s0.state", cut.runs_dir / "interpolate-L1-s0.partial.json"
    first = json.loads(partial.read_text())
    assert state.is_file() and first["slices"] == 1 and first["wall_seconds"] > 0
    assert cut.done("interpolate-L1-s0") is None
    stopped = int(load_checkpoint(state)[0]["step"])
    assert 1 <= stopped <= 10

    nxt = reproduce.Bench("tiny", tmp_path / "cut", True, cfg=cfg)  # the next slice
    nxt.run()
    arm = nxt.done("interpolate-L1-s0")
    assert arm is not None and (arm["slices"], arm["resumed_at_step"], arm["threads"]) == (2, stopped, 2)
    assert (arm["top1"], arm["correct"], arm["steps"]) == (ref["top1"], ref["correct"], ref["steps"])
    assert arm["wall_seconds"] > first["wall_seconds"] and arm["cpu_seconds"] >= first["cpu_seconds"]
    assert not state.exists() and not partial.exists()

    # a slice with under MIN_START_S left starts no retraining (a resumable one needs only that much)
    late = reproduce.Bench("tiny", tmp_path / "late", False, cfg=cfg, time_limit_s=reproduce.MIN_START_S - 60)
    monkeypatch.setattr(late, "estimate_seconds", lambda arch: 10 * reproduce.MIN_START_S)
    with pytest.raises(reproduce.SliceEnd, match="does not fit"):
        late.check_fits("interpolate-L1-s0", "cifar_resnet20", resumable=True)
    roomy = reproduce.Bench("tiny", tmp_path / "late", False, cfg=cfg, time_limit_s=reproduce.MIN_START_S + 60)
    monkeypatch.setattr(roomy, "estimate_seconds", lambda arch: 10 * reproduce.MIN_START_S)
    roomy.check_fits("interpolate-L1-s0", "cifar_resnet20", resumable=True)  # starts: it checkpoints at the limit
    with pytest.raises(reproduce.SliceEnd, match="does not fit"):
        roomy.check_fits("lmc_interpolate-L1-s0", "cifar_resnet20", trainings=2.5)  # not resumable: must fit


def test_a_fresh_checkout_goes_on_from_the_kept_tickets_and_restores_lost_ones_exactly(
        tmp_path: Path, reproduce: ModuleType, two_threads: None) -> None:
    """runs/ is not committed: the IMP runs' level tickets are kept in tickets/ (committed), so a checkout without
    runs/ retrains an arm as before; a record whose tickets are gone (older runs) is run again on its device and
    threads and must score the recorded correct count at every level, else the run stops and says why."""
    import shutil

    cfg = {**reproduce.SCALES["tiny"], "epochs": 2, "levels": 1, "report": (1,), "methods": ("imp", "interpolate")}
    whole = reproduce.Bench("tiny", tmp_path / "whole", False, cfg=cfg)
    whole.run()
    ref = whole.done("interpolate-L1-s0")
    src = whole.done("imp-cifar_resnet14-s0")
    assert ref is not None and src is not None
    assert [lv["path"] for lv in src["levels"]] == [f"tickets/imp-cifar_resnet14-s0/level-0{i}.ticket" for i in (0, 1)]
    assert all((whole.out / lv["path"]).is_file() for lv in src["levels"])

    def copy(name: str, lose_tickets: bool, **change: Any) -> Any:
        out = tmp_path / name
        shutil.copytree(whole.out, out)
        shutil.rmtree(out / "runs")  # a fresh checkout
        (out / "arms" / "interpolate-L1-s0.json").unlink()
        if lose_tickets:  # a record from before tickets/ was kept: absolute paths into a run folder now gone
            shutil.rmtree(out / "tickets" / "imp-cifar_resnet14-s0")
            rec = json.loads((out / "arms" / "imp-cifar_resnet14-s0.json").read_text())
            for lv in rec["levels"]:
                lv["path"] = str(tmp_path / "gone" / Path(lv["path"]).name)
                lv["correct"] += change.get("correct", 0)
            rec["threads"] = change.get("threads", rec["threads"])
            (out / "arms" / "imp-cifar_resnet14-s0.json").write_text(json.dumps(rec))
        return reproduce.Bench("tiny", out, True, cfg=cfg)

    fresh = copy("fresh", False)
    fresh.run()
    arm = fresh.done("interpolate-L1-s0")
    assert (arm["top1"], arm["correct"]) == (ref["top1"], ref["correct"])

    lost = copy("lost", True)
    lost.run()
    rec = lost.done("imp-cifar_resnet14-s0")
    assert rec["tickets_kept"]["from"] == "the run made again"
    assert all((lost.out / lv["path"]).is_file() for lv in rec["levels"])
    arm = lost.done("interpolate-L1-s0")
    assert (arm["top1"], arm["correct"]) == (ref["top1"], ref["correct"])

    # a restore cut by a slice's end (here in level 1) goes on in the next slice from its checkpoint
    cut = copy("cut", True)
    restoring = cut.runs_dir / "imp-cifar_resnet14-s0"
    cut.deadline_passed = lambda: (restoring / "level-00.ticket").is_file()  # type: ignore[method-assign]
    with pytest.raises(reproduce.SliceEnd, match="while restoring imp-cifar_resnet14-s0"):
        cut.run()
    assert (restoring / "level-00.ticket").is_file() and not (restoring / "level-01.ticket").is_file()
    shutil.copytree(cut.out, tmp_path / "cut-other")
    nxt = reproduce.Bench("tiny", cut.out, True, cfg=cfg)
    nxt.run()
    rec = nxt.done("imp-cifar_resnet14-s0")
    assert rec["tickets_kept"]["from"] == "the run made again"
    arm = nxt.done("interpolate-L1-s0")
    assert (arm["top1"], arm["correct"]) == (ref["top1"], ref["correct"])
    # its levels so far must already agree with the record, else it stops before going on
    rec = json.loads((tmp_path / "cut-other" / "arms" / "imp-cifar_resnet14-s0.json").read_text())
    rec["levels"][0]["correct"] += 1
    (tmp_path / "cut-other" / "arms" / "imp-cifar_resnet14-s0.json").write_text(json.dumps(rec))
    with pytest.raises(reproduce.RunError, match=r"the restore under way has other results than the record \(level 0"):
        reproduce.Bench("tiny", tmp_path / "cut-other", True, cfg=cfg).run()

    other = copy("other", True, correct=1)  # the record says one more image was right at each level
    with pytest.raises(reproduce.RunError,
                       match=r"the run made again has other results than the record \(level 0: \d+ vs \d+ correct"):
        other.run()
    assert other.done("interpolate-L1-s0") is None

    # a run folder brought back from another machine (or kept from before tickets/): checked, then kept
    back = tmp_path / "back"
    shutil.copytree(whole.out, back)
    shutil.rmtree(back / "tickets")
    for arm in ("imp-cifar_resnet14-s0", "imp-cifar_resnet20-s0"):
        rec = json.loads((back / "arms" / f"{arm}.json").read_text())
        for lv in rec["levels"]:
            lv["path"] = str(tmp_path / "elsewhere" / Path(lv["path"]).name)
        (back / "arms" / f"{arm}.json").write_text(json.dumps(rec))
    assert reproduce.main(["--scale", "tiny", "--out", str(back), "--report-only"]) == 0
    for arm in ("imp-cifar_resnet14-s0", "imp-cifar_resnet20-s0"):
        rec = json.loads((back / "arms" / f"{arm}.json").read_text())
        assert rec["tickets_kept"]["from"] == "its run folder" and all((back / lv["path"]).is_file()
                                                                          for lv in rec["levels"])

    # an interrupted run (level 0 recorded) whose folder is gone starts over; level 0 must come out the same
    for name, extra, ok in (("over", 0, True), ("over-other", 1, False)):
        out = tmp_path / name
        shutil.copytree(whole.out, out)
        shutil.rmtree(out / "runs")
        (out / "arms" / "interpolate-L1-s0.json").unlink()
        rec = json.loads((out / "arms" / "imp-cifar_resnet14-s0.json").read_text())
        rec.update(complete=False, levels=rec["levels"][:1])
        rec["levels"][0]["correct"] += extra
        (out / "arms" / "imp-cifar_resnet14-s0.json").write_text(json.dumps(rec))
        bench = reproduce.Bench("tiny", out, True, cfg=cfg)
        if ok:
            bench.run()
            assert bench.done("imp-cifar_resnet14-s0")["complete"] is True
            assert bench.done("interpolate-L1-s0")["correct"] == ref["correct"]
        else:
            with pytest.raises(reproduce.RunError, match="the run started over has other results than the record"):
                bench.run()

    threads = copy("threads", True, threads=3)
    with pytest.raises(reproduce.RunError,
                       match="must be made again as they were: rerun with --device cpu --threads 3"):
        threads.run()


def test_only_trains_the_methods_named_and_refuses_unknown_ones(tmp_path: Path, reproduce: ModuleType,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {**reproduce.SCALES["tiny"], "epochs": 1, "levels": 1, "report": (1,),
           "methods": ("imp", "interpolate", "random", "dense")}
    bench = reproduce.Bench("tiny", tmp_path / "only", False, cfg=cfg)
    bench.only = ("random",)
    bench.run()
    assert bench.done("random-L1-s0") is not None and bench.done("interpolate-L1-s0") is None
    assert "random-L1-s0" in bench.planned_arms() and "interpolate-L1-s0" in bench.planned_arms()
    # --whole-arms: a slice too short for the arm's estimate starts none (a cut retraining's state would be lost)
    late = reproduce.Bench("tiny", tmp_path / "only", True, cfg=cfg, time_limit_s=reproduce.MIN_START_S + 60)
    late.only, late.whole_arms = ("interpolate",), True
    late.estimate_seconds = lambda arch: 10 * reproduce.MIN_START_S  # type: ignore[method-assign]
    with pytest.raises(reproduce.SliceEnd, match="interpolate-L1-s0 .* does not fit"):
        late.run()
    assert late.done("interpolate-L1-s0") is None
    rc = reproduce.main(["--scale", "tiny", "--out", str(tmp_path / "x"), "--only", "random,psychic"])
    assert rc == 2 and "unknown method(s) ['psychic']" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_arm_whose_ticket_is_another_arms_is_recorded_from_it_not_trained(
        tmp_path: Path, reproduce: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """ResNet-14 -> 20 adds one block a stage: append's mapping is interpolate's, so its ticket is the same and
    its retraining would repeat interpolate's bit for bit; the run records it from that arm and says so."""
    cfg = {**reproduce.SCALES["tiny"], "epochs": 1, "levels": 1, "report": (1,),
           "methods": ("imp", "interpolate", "append", "dense")}
    far = reproduce.Bench("tiny", tmp_path / "far", False, cfg={**cfg, "source": "cifar_resnet20",
                                                                  "target": "cifar_resnet32"})
    assert far.twin("append") is None  # 3 -> 5 blocks: B0 B1 B1 B2 B2 vs B0 B1 B2 B1 B2
    bench = reproduce.Bench("tiny", tmp_path / "twin", False, cfg=cfg)
    assert bench.twin("append") == "interpolate" and bench.twin("random") is None
    assert bench.planned_trainings()[1] == 1  # interpolate alone
    bench.run()
    ours, twin = bench.done("append-L1-s0"), bench.done("interpolate-L1-s0")
    assert ours["same_ticket_as"] == "interpolate-L1-s0" and ours["method"] == "append"
    assert (ours["top1"], ours["correct"], ours["sparsity"]) == (twin["top1"], twin["correct"], twin["sparsity"])
    assert ours["wall_seconds"] == 0.0 and ours["mapping"] == twin["mapping"]
    prog = bench.report()["progress"]
    assert (prog["retrainings_done"], prog["retrainings_planned"]) == (1, 1)
    assert prog["arms_done"] == prog["arms_planned"]
    table = bench.report()["table"]
    assert table["append"]["cells"]["1"]["wall_seconds"] is None  # no training of its own: no time to average
    assert table["interpolate"]["cells"]["1"]["wall_seconds"] > 0
    md = (bench.out / "results.md").read_text()
    assert "= interpolate-L1-s0*" in md and "Not trained: the arm's ticket is the named arm's" in md

    # when the tickets differ after all, the arm is trained like any other; trained, the same ticket scores the
    # same, which is what the rule leans on
    monkeypatch.setattr(reproduce, "_same_ticket", lambda a, b: False)
    other = reproduce.Bench("tiny", tmp_path / "guard", False, cfg=cfg)
    other.run()
    trained = other.done("append-L1-s0")
    assert "same_ticket_as" not in trained and trained["wall_seconds"] > 0
    assert trained["correct"] == other.done("interpolate-L1-s0")["correct"]
    assert other.planned_trainings()[1] == 2  # the twin trained before the rule counts as a retraining


def test_gaps_pair_each_arm_with_its_reference_at_the_same_seed(tmp_path: Path, reproduce: ModuleType) -> None:
    """The seed spread is as large as the gaps, so the gap is taken seed by seed: interpolate and IMP at seed 0 and
    1, squeeze against the source's IMP, dense as IMP minus dense; a twin arm and an unpaired arm count for nothing."""
    cfg = {**reproduce.SCALES["smoke"], "seeds": (0, 1), "report": (1, 2),
           "methods": ("imp", "interpolate", "append", "random", "dense", "squeeze", "source_imp")}
    bench = reproduce.Bench("smoke", tmp_path, resume=False, cfg=cfg)

    def arm(method: str, level: int, seed: int, top1: float, **kw: Any) -> dict[str, Any]:
        return {"method": method, "level": level, "seed": seed, "top1": top1, **kw}

    trainings = [arm("imp", 1, 0, 80.0), arm("imp", 1, 1, 82.0), arm("interpolate", 1, 0, 79.0),
                 arm("interpolate", 1, 1, 81.5), arm("append", 1, 0, 79.0, same_ticket_as="interpolate-L1-s0"),
                 arm("random", 1, 1, 70.0), arm("random", 2, 0, 60.0),  # level 2 has no IMP: unpaired
                 arm("dense", 0, 0, 78.0), arm("dense", 0, 1, 79.0),
                 arm("squeeze", 1, 0, 75.0), arm("source_imp", 1, 0, 76.5), arm("imp", 2, 1, 81.0)]
    gaps = bench.gaps(trainings)
    interp = gaps["interpolate"]["cells"]["1"]
    assert interp["each"] == [-1.0, -0.5] and interp["mean"] == -0.75 and interp["n"] == 2
    assert interp["std"] == round(statistics.stdev([-1.0, -0.5]), 2)
    assert "append" not in gaps  # its one arm is interpolate's result, not a sample of its own
    assert gaps["random"]["cells"] == {"1": {"n": 1, "mean": -12.0, "std": None, "each": [-12.0], "seeds": [1]}}
    assert gaps["squeeze"]["reference"] == "source_imp" and gaps["squeeze"]["cells"]["1"]["each"] == [-1.5]
    assert gaps["dense"]["cells"]["1"]["each"] == [2.0, 3.0]  # IMP above dense: positive
    assert gaps["dense"]["cells"]["2"]["each"] == [2.0] and gaps["dense"]["cells"]["2"]["seeds"] == [1]
    md = "\n".join(reproduce._gaps_md({"gaps": gaps}, [1, 2]))
    assert "| ETT interpolate (b) | -0.75 ± 0.35 (n=2; -1.00, -0.50) | – |" in md
    assert "| IMP on target minus dense (f) | +2.50 ± 0.71 (n=2; +2.00, +3.00) | +2.00 (n=1; +2.00) |" in md


def test_only_seeds_trains_the_seeds_named_and_refuses_others(tmp_path: Path, reproduce: ModuleType,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A slice may leave a seed for later (its IMP tickets wait on a restore at other threads): the seed named
    is trained, the other is neither trained nor dropped from the plan."""
    cfg = {**reproduce.SCALES["tiny"], "epochs": 1, "levels": 1, "report": (1,), "seeds": (0, 1),
           "methods": ("imp", "random", "dense")}
    bench = reproduce.Bench("tiny", tmp_path / "seeds", False, cfg=cfg)
    bench.only_seeds = (1,)
    bench.run()
    assert bench.done("random-L1-s1") is not None and bench.done("imp-L1-s1") is not None
    assert bench.done("random-L1-s0") is None and bench.done("imp-L1-s0") is None
    assert {"random-L1-s0", "imp-L1-s0"} <= set(bench.planned_arms())
    assert bench.report()["progress"]["arms_done"] < bench.report()["progress"]["arms_planned"]
    for bad, why in (("7", "[7] not seeds of this run; choose from [0]"), ("0,x", "not comma-separated whole")):
        rc = reproduce.main(["--scale", "tiny", "--out", str(tmp_path / "x"), "--only-seeds", bad])
        assert rc == 2 and why in capsys.readouterr().err
    rc = reproduce.main(["--scale", "tiny", "--out", str(tmp_path / "x"), "--seeds", "1;2"])  # the same parser
    assert rc == 2 and "--seeds 1;2: not comma-separated whole numbers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
