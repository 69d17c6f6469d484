"""`bench/bundle.py` (issue 12, item 3) at a tiny scale: a time-limited slice, resume, examples, refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# two levels at rate 0.55 (55.0% and 79.75%: the default schedule's 8 trainings would cost seconds more) on 64
# images of the suite's cifar10-mini
TINY = ["--dataset", "cifar10-mini", "--epochs", "1", "--subset", "64", "--batch-size", "32", "--rewind", "1it",
        "--rate", "0.55", "--levels", "2", "--export", "1,2",
        "--device", "cpu", "--threads", "1", "--num-workers", "0", "--data-dir", str(ROOT / "tests" / "data")]


def _paths(tmp_path: Path, name: str) -> list[str]:
    return ["--work", str(tmp_path / "work"), "--examples", str(tmp_path / name / "examples"),
            "--results", str(tmp_path / name / "results")]


@pytest.fixture
def bundle(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    monkeypatch.setenv("TICKETFMT_DATA", str(ROOT / "tests" / "data"))  # main sets it from --data-dir: restored
    import bundle

    return bundle


def test_bundle_slices_resumes_writes_examples_and_refuses_below_min_top1(tmp_path: Path, bundle,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from ticketfmt import Ticket

    # a slice whose time limit has passed at the first step: checkpoint, exit 3, nothing published
    assert bundle.main([*TINY, *_paths(tmp_path, "slice"), "--time-limit", "0"]) == 3
    run = tmp_path / "work" / "cifar_resnet20-cifar10-mini-e1-r0.55-L2-s0-n64"
    assert (run / "checkpoint.safetensors").is_file()
    assert not (tmp_path / "slice").exists()

    # it resumes to the end and writes the examples (a tiny run: no top-1 floor); in-process, as `python
    # bench/bundle.py ...` runs it (its command line is what the provenance records)
    assert bundle.main([*TINY, *_paths(tmp_path, "ok"), "--resume", "--min-top1", "0"]) == 0
    out, err = capsys.readouterr()
    assert out.count("| level | sparsity |") == 1
    # one line per finished epoch (its mean loss and accuracy), before its level's result; level 0's one epoch
    # was trained by the first slice, stopped at its last step
    lines = [ln.split("] ", 1)[1] for ln in err.splitlines() if ln.startswith("[")]
    assert lines[1].startswith("level 0 epoch 1/1 stopped: loss "), lines
    for level in range(1, 3):
        done = [i for i, ln in enumerate(lines) if ln.startswith(f"level {level} epoch 1/1 done: loss ")]
        assert len(done) == 1 and lines[done[0] + 1].startswith(f"level {level} done: top1 "), lines
    examples = tmp_path / "ok" / "examples"
    files = sorted(p.name for p in examples.iterdir())
    assert files == ["cifar_resnet20-imp-55.ticket", "cifar_resnet20-imp-80.ticket"]
    for name, level, sparsity in zip(files, (1, 2), (0.55, 0.7975)):
        t = Ticket.load(examples / name, verify=True)
        assert t.sparsity == pytest.approx(sparsity, abs=0.002)
        assert t.provenance["level"] == level and t.provenance["rate"] == 0.55
        assert t.provenance["command"].startswith("python bench/bundle.py --dataset cifar10-mini")
        assert "--min-top1 0" in t.provenance["command"]
        r = t.results[0]  # the level's own training from the rewind point, on the whole test split
        assert r["split"] == "test" and r["total"] == 200 and r["start_step"] == t.provenance["rewind_step"] == 1
        assert (examples / name).stat().st_size <= 2_000_000
        assert t.trained is not None and t.init is not None
    res = json.loads((tmp_path / "ok" / "results" / "results.json").read_text())
    assert [e["level"] for e in res["examples"]] == [1, 2] and len(res["imp_levels"]) == 3
    assert res["examples"][1]["top1"] == Ticket.load(examples / files[1]).results[0]["value"]

    # the default floor (85% top-1) refuses these tickets: exit 2, nothing written
    assert bundle.main([*TINY, *_paths(tmp_path, "refused"), "--resume"]) == 2
    assert not (tmp_path / "refused").exists()
    assert not list((tmp_path / "work").glob("*.staged"))


def test_bundle_rejects_levels_outside_the_run(tmp_path: Path, bundle) -> None:
    assert bundle.main([*TINY, *_paths(tmp_path, "x"), "--levels", "2", "--export", "4"]) == 2
    assert not (tmp_path / "work").exists() and not (tmp_path / "x").exists()


def test_scaled_rewind_is_the_reference_fraction(bundle) -> None:
    assert bundle.scaled_rewind(160) == "1000it"  # open_lth's cifar_resnet rewind point
    assert bundle.scaled_rewind(40) == "250it" and bundle.scaled_rewind(16) == "100it"  # reproduce.py cpu-full


def test_default_schedule_is_the_reference_rate_at_59_and_79_percent(bundle) -> None:
    a = bundle.parse_args([])
    assert (a.arch, a.dataset, a.epochs, a.rate, a.levels, a.export, a.min_top1) == \
        ("cifar_resnet20", "cifar10-jpeg", 40, 0.2, 7, "4,7", 85.0)
    assert [bundle.example_name(a.arch, 1 - (1 - a.rate) ** lv) for lv in (4, 7)] == \
        ["cifar_resnet20-imp-59.ticket", "cifar_resnet20-imp-79.ticket"]


def test_bundle_at_the_recipes_batch_size_logs_each_epoch(tmp_path: Path, bundle,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # no --batch-size: the recipe's 128 (the default run's; the log's images/s come from it)
    args = [a for a in TINY if a not in ("--batch-size", "32", "--subset", "64")]
    args = [*args, "--levels", "1", "--export", "1", "--min-top1", "0", *_paths(tmp_path, "b128")]
    assert bundle.main(args) == 0
    lines = capsys.readouterr().err.splitlines()
    assert any("level 1 epoch 1/1 done: loss " in ln and ln.endswith(" img/s") for ln in lines), lines
    assert [p.name for p in (tmp_path / "b128" / "examples").iterdir()] == ["cifar_resnet20-imp-55.ticket"]
