"""The foundation's commands: new, prune, info, models; one-line errors and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ticketfmt import Ticket

GOLDEN = Path(__file__).parent / "golden"


def test_new_prune_info(cli, tmp_path: Path) -> None:
    r20 = tmp_path / "r20.ticket"
    res = cli("new", "cifar_resnet20", "-o", r20, "--seed", "3")
    assert res.code == 0, res.stderr
    t = Ticket.load(r20)
    assert t.sparsity == 0.0 and t.provenance["seed"] == 3
    pruned = tmp_path / "p.ticket"
    res = cli("prune", r20, "--sparsity", "0.8", "--method", "magnitude", "-o", pruned)
    assert res.code == 0, res.stderr
    assert Ticket.load(pruned).sparsity == pytest.approx(0.8, abs=1e-5)
    res = cli("info", pruned, "--json")
    assert res.code == 0
    data = json.loads(res.stdout)
    assert data["arch"]["id"] == "cifar_resnet20" and data["encoding"] == "packed"
    assert data["sparsity"] == pytest.approx(0.8, abs=1e-5)
    assert set(data["stages"]) == {"stem", "stage1", "stage2", "stage3", "head"}
    assert len(data["layers"]) == 22
    plot = tmp_path / "density.png"
    res = cli("info", pruned, "--plot", plot)
    assert res.code == 0 and "per stage" in res.stdout and "layer1.0.conv1.weight" in res.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_random_like_matches_per_layer_density(cli, tmp_path: Path) -> None:
    base = tmp_path / "base.ticket"
    cli("new", "cifar_resnet8", "-o", base)
    mag = tmp_path / "mag.ticket"
    assert cli("prune", base, "--sparsity", "0.9", "-o", mag).code == 0
    rnd = tmp_path / "rnd.ticket"
    assert cli("prune", base, "--method", "random", "--like", mag, "--seed", "1", "-o", rnd).code == 0
    a, b = Ticket.load(mag), Ticket.load(rnd)
    assert a.layer_density() == b.layer_density()
    assert any(not (a.masks[k] == b.masks[k]).all() for k in a.masks)


def test_models_lists_the_zoo(cli) -> None:
    res = cli("models", "--json")
    rows = json.loads(res.stdout)
    ids = {r["id"] for r in rows}
    assert {"cifar_resnet56", "timm/resnet50", "torchvision/resnet50", "cifar_vgg16", "timm/vgg16_bn"} <= ids
    r20 = next(r for r in rows if r["id"] == "cifar_resnet20")
    assert r20["params"] == 272474 and r20["stages"] == [3, 3, 3]


@pytest.mark.parametrize("args", [
    ["info", "missing.ticket"],
    ["info", "NOT_A_TICKET"],
    ["new", "cifar_resnet21", "-o", "OUT"],
    ["new", "nonsense_net", "-o", "OUT"],
    ["new", "cifar_resnet20"],
    ["new", "cifar_resnet20", "-o", "OUT", "--num-classes", "0"],
    ["prune", "GOLDEN", "--sparsity", "1.5", "-o", "OUT"],
    ["prune", "GOLDEN", "-o", "OUT"],
    ["prune", "GOLDEN", "--sparsity", "0.9", "--method", "psychic", "-o", "OUT"],
    ["prune", "GOLDEN", "--sparsity", "0.1", "-o", "OUT"],
    ["info", "GOLDEN", "--bogus"],
    ["frobnicate"],
])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "NOT_A_TICKET").write_bytes(b"hello world, not a ticket at all")
    subs = {"OUT": str(tmp_path / "out.ticket"), "GOLDEN": str(GOLDEN / "cifar_resnet8-packed-v1.0.ticket"),
            "NOT_A_TICKET": str(tmp_path / "NOT_A_TICKET")}
    res = cli(*[subs.get(a, a) for a in args])
    assert res.code == 2, (res.stdout, res.stderr)
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out.ticket").exists()


def test_existing_output_needs_force(cli, tmp_path: Path) -> None:
    out = tmp_path / "t.ticket"
    assert cli("new", "cifar_resnet8", "-o", out).code == 0
    before = out.read_bytes()
    res = cli("new", "cifar_resnet8", "-o", out, "--seed", "1")
    assert res.code == 2 and "--force" in res.stderr
    assert out.read_bytes() == before
    assert cli("new", "cifar_resnet8", "-o", out, "--seed", "1", "--force").code == 0
    assert out.read_bytes() != before


def test_debug_env_shows_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, TICKETFMT_DEBUG="1")
    proc = subprocess.run([sys.executable, "-m", "ticketfmt", "info", str(tmp_path / "nope.ticket")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_info_reads_only_the_header_and_imports_no_torch(tmp_path: Path) -> None:
    # A packed timm resnet50 ticket: `ticket info` must not import torch nor read the payload.
    from ticketfmt import build_model, prune

    path = tmp_path / "r50.ticket"
    prune(Ticket.from_model(build_model("resnet50", seed=0), "resnet50"), 0.89).save(path)
    code = ("import sys, time; t = time.perf_counter(); from ticketfmt.cli import main\n"
            "try:\n    main(['info', sys.argv[1], '--json'])\nexcept SystemExit as e:\n    rc = e.code\n"
            "print(rc, 'torch' in sys.modules, time.perf_counter() - t, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    rc, torch_loaded, seconds = proc.stderr.split()[-3:]
    assert rc == "0" and torch_loaded == "False", proc.stderr
    assert float(seconds) < 1.0
    assert json.loads(proc.stdout)["sparsity"] == pytest.approx(0.89, abs=1e-5)
