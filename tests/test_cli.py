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
    # A packed timm resnet50 ticket: `ticket info` must not import torch nor numpy nor read the payload; nor
    # pydantic (typer >= 0.26 builds a pydantic adapter per option at start-up: pyproject pins typer < 0.26), nor
    # the other commands' modules (ticketfmt.cli.load_commands imports only the module of the command named).
    from ticketfmt import build_model, prune

    path = tmp_path / "r50.ticket"
    prune(Ticket.from_model(build_model("resnet50", seed=0), "resnet50"), 0.89).save(path)
    code = ("import sys; from ticketfmt.cli import main\n"
            "try:\n    main(['info', sys.argv[1], '--json'])\nexcept SystemExit as e:\n    rc = e.code\n"
            "heavy = ('torch', 'numpy', 'timm', 'pydantic', 'ticketfmt.cli.train', 'ticketfmt.cli.hub')\n"
            "print(rc, ','.join(m for m in heavy if m in sys.modules) or 'none', file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    rc, loaded = proc.stderr.split()[-2:]
    assert (rc, loaded) == ("0", "none"), proc.stderr  # its speed is a benchmark (bench/perf.py), not a test
    assert json.loads(proc.stdout)["sparsity"] == pytest.approx(0.89, abs=1e-5)


def test_command_modules_table_matches_the_app() -> None:
    # `ticket CMD` imports only COMMAND_MODULES[CMD] (a fast start): every command must be listed, under its module.
    from typer.main import get_command_name

    from ticketfmt.cli import COMMAND_MODULES, app, load_commands

    load_commands()
    found = {c.name or get_command_name(c.callback.__name__): c.callback.__module__ for c in app.registered_commands}
    found.update({g.name: g.typer_instance.registered_commands[0].callback.__module__ for g in app.registered_groups})
    assert {k: f"ticketfmt.cli.{v}" for k, v in COMMAND_MODULES.items()} == found


# -- output anywhere (issue 15): piped tables are tab-separated and never cut; --json on every report ------------
def test_piped_models_finds_every_id_in_full(tmp_path: Path) -> None:
    # `ticket models | grep resnet50`, literally: stdout is a pipe, and a narrow COLUMNS must not cut anything.
    env = dict(os.environ, COLUMNS="40")
    proc = subprocess.run(f"{sys.executable} -P -m ticketfmt models | grep resnet50", shell=True, cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert ["timm/resnet50", "timm", "resnet", "bottleneck", "3-4-6-3", "25.56M"] in rows
    assert any(r[0] == "torchvision/resnet50" for r in rows) and "…" not in proc.stdout
    assert "Any depth works too" in proc.stderr  # the hint stays off the data


def test_piped_tables_are_tsv_with_nothing_cut(cli, tmp_path: Path) -> None:
    res = cli("models")  # captured: not a terminal
    lines = res.stdout.splitlines()
    assert lines[0].split("\t") == ["id", "library", "family", "block", "units per stage", "params"]
    assert "timm/resnet50" in [line.split("\t")[0] for line in lines] and "━" not in res.stdout
    # `info`: long provenance values whole, per-stage and per-layer tables as tab-separated rows.
    long_command = "ticket find cifar_resnet8 " + " ".join(f"--option-{i} value-{i}" for i in range(30))
    path = tmp_path / "long.ticket"
    Ticket.load(GOLDEN / "cifar_resnet8-packed-v1.0.ticket").replace(provenance={"command": long_command}).save(path)
    res = cli("info", path)
    assert res.code == 0, res.stderr
    assert f"command\t{long_command}" in res.stdout.splitlines()
    assert "# per stage" in res.stdout and "stage\tkept\ttotal\tsparsity" in res.stdout
    assert any(line.startswith("layer1.0.conv1.weight\t") for line in res.stdout.splitlines())


def test_a_terminal_still_gets_drawn_tables(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from ticketfmt.cli.app import out

    monkeypatch.setattr(type(out), "is_terminal", property(lambda self: True))
    res = cli("models")
    assert res.code == 0 and "┏" in res.stdout and "Any depth works too" in res.stdout
    assert "\t" not in res.stdout


JSON_COMMANDS = ["new", "prune", "info", "models", "convert"]


def test_every_listing_and_report_command_has_json(cli, tmp_path: Path) -> None:
    from typer.main import get_command

    from ticketfmt.cli import app, load_commands

    load_commands()
    group = get_command(app)
    for name in JSON_COMMANDS:
        assert any("--json" in p.opts for p in group.commands[name].params), name  # type: ignore[attr-defined]
    t = tmp_path / "t.ticket"
    new = json.loads(cli("new", "cifar_resnet14", "-o", t, "--seed", "2", "--json").stdout)
    assert new == {"file": str(t), "arch": "cifar_resnet14", "num_classes": 10, "size": t.stat().st_size,
                   "encoding": "packed", "sparsity": 0.0, "seed": 2}
    p = tmp_path / "p.ticket"
    pruned = json.loads(cli("prune", t, "--sparsity", "0.5", "-o", p, "--json").stdout)
    assert pruned["file"] == str(p) and pruned["sparsity"] == pytest.approx(0.5, abs=1e-5)
    assert pruned["method"] == "magnitude" and pruned["source_sparsity"] == 0.0
    res = cli("convert", "--from", p, "--to", "cifar_resnet20", "--json")
    assert json.loads(res.stdout)["targets"][0]["file"] == str(tmp_path / "cifar_resnet20.ticket")


def test_version_and_flags_without_placeholders(cli) -> None:
    from ticketfmt import __version__

    res = cli("--version")
    assert res.code == 0 and res.stdout.strip() == f"ticketfmt {__version__}"
    res = cli("convert", "--help")
    assert res.code == 0 and "--force" in res.stdout and "<bool>" not in res.stdout.split("--help")[0]


def test_pruning_registry_is_full_on_import_and_refuses_duplicates() -> None:
    # A fresh process importing only the generic core still sees every method (no lazily filled registry).
    code = "import ticketfmt.pruning.core\nfrom ticketfmt.pruning.registry import PRUNERS\nprint(sorted(PRUNERS))"
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['grasp', 'magnitude', 'random', 'snip', 'synflow']"
    from ticketfmt.pruning import PRUNERS, register_pruner, unregister_pruner

    with pytest.raises(ValueError, match="'random' is already registered"):
        register_pruner("random")(lambda ticket, **_: {})
    assert PRUNERS["random"].__name__ == "random_scores"

    @register_pruner("toy-ones")
    def ones(ticket, **_):  # type: ignore[no-untyped-def]
        return {k: m.float() for k, m in ticket.masks.items()}

    try:
        assert PRUNERS["toy-ones"] is ones
    finally:
        assert unregister_pruner("toy-ones") is ones


# -- layer collapse (issue 14) -------------------------------------------------------------------------------------
@pytest.fixture
def small_head(tmp_path: Path) -> Path:
    """A cifar_resnet8 ticket whose classifier starts with the smallest weights (as timm's ResNet-50 does: its fc
    keeps torch's uniform init, far below the convolutions' Kaiming init), so global magnitude pruning empties it."""
    from ticketfmt import build_model

    model = build_model("cifar_resnet8", seed=0)
    model.fc.weight.data.mul_(1e-3)
    path = tmp_path / "small-head.ticket"
    Ticket.from_model(model, "cifar_resnet8", provenance={"method": "init", "seed": 0}).save(path)
    return path


def test_prune_refuses_to_empty_a_layer_and_offers_the_remedies(cli, small_head: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.ticket"
    res = cli("prune", small_head, "--sparsity", "0.6", "-o", out)
    assert res.code == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    for needle in ("'fc.weight'", "cut from the network", "--keep-dense fc", "--min-density", "--allow-empty-layers"):
        assert needle in res.stderr, needle
    assert not out.exists()

    assert cli("prune", small_head, "--sparsity", "0.6", "--keep-dense", "fc,conv1", "-o", out).code == 0
    kept = Ticket.load(out)
    assert kept.sparsity == pytest.approx(0.6, abs=1e-5)  # still exact: the other layers are pruned harder
    assert bool(kept.masks["fc.weight"].all()) and bool(kept.masks["conv1.weight"].all())
    assert kept.provenance["pruning"][-1]["keep_dense"] == ["conv1.weight", "fc.weight"]

    floor = tmp_path / "floor.ticket"
    assert cli("prune", small_head, "--sparsity", "0.6", "--min-density", "0.05", "-o", floor).code == 0
    t = Ticket.load(floor)
    assert t.sparsity == pytest.approx(0.6, abs=1e-5)
    assert min(k / n for k, n in t.layer_density().values()) >= 0.05
    assert t.layer_density()["fc.weight"][0] == 32  # ceil(5% of 640): the floor, its largest weights

    cut = tmp_path / "cut.ticket"
    res = cli("prune", small_head, "--sparsity", "0.6", "--allow-empty-layers", "-o", cut)
    assert res.code == 0 and "warning:" in res.stderr and "fc.weight" in res.stderr, res.stderr
    assert not bool(Ticket.load(cut).masks["fc.weight"].any())


@pytest.mark.parametrize(("args", "needle"), [
    (["--keep-dense", "fcc"], "did you mean 'fc'"),
    (["--min-density", "1.5"], "--min-density"),
    (["--min-density", "0.9"], "more than the"),
])
def test_prune_bad_remedies_are_one_line_errors(cli, small_head: Path, tmp_path: Path, args: list[str],
                                                needle: str) -> None:
    res = cli("prune", small_head, "--sparsity", "0.6", *args, "-o", tmp_path / "x.ticket")
    assert res.code == 2 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "x.ticket").exists()


def test_prune_library_keeps_the_old_masks_and_refuses_by_default(small_head: Path) -> None:
    from ticketfmt.errors import MaskError
    from ticketfmt.pruning import prune

    ticket = Ticket.load(small_head)
    with pytest.raises(MaskError, match="keep_dense=") as err:
        prune(ticket, 0.6)
    assert err.value.tensor == "fc.weight"
    first = prune(ticket, 0.5, keep_dense=["fc"])
    second = prune(first, 0.7, min_density=0.02, method="random", seed=3)
    assert second.sparsity == pytest.approx(0.7, abs=1e-5)
    assert all(bool((second.masks[k] <= first.masks[k]).all()) for k in first.masks)  # already pruned stays pruned
    with pytest.raises(Exception, match="--like"):
        prune(ticket, like=first, keep_dense=["fc"])


def test_new_init_option_selects_and_records_the_initializer(tmp_path: Path) -> None:
    from ticketfmt.cli import main as cli_main

    for init in ("reference", "library"):
        with pytest.raises(SystemExit) as e:
            cli_main(["new", "cifar_resnet8", "-o", str(tmp_path / f"{init}.ticket"), "--init", init])
        assert e.value.code in (0, None)
    ref, lib = (Ticket.load(tmp_path / f"{i}.ticket") for i in ("reference", "library"))
    assert ref.provenance["init"] == "reference" and lib.provenance["init"] == "library"
    # the reference init draws BatchNorm weights from U(0, 1); the library's are ones
    assert float(lib.init["bn1.weight"].min()) == 1.0 and float(ref.init["bn1.weight"].max()) < 1.0
    with pytest.raises(SystemExit) as e:
        cli_main(["new", "cifar_resnet8", "-o", str(tmp_path / "bad.ticket"), "--init", "bogus"])
    assert e.value.code == 2 and not (tmp_path / "bad.ticket").exists()


def test_convert_output_with_a_trailing_slash_is_a_folder(cli, tmp_path: Path) -> None:
    """`-o new/` makes the folder and writes <target>.ticket in it (not a file named `new`)."""
    src = tmp_path / "r14.ticket"
    assert cli("new", "cifar_resnet14", "-o", src).code == 0
    res = cli("convert", "--from", src, "--to", "cifar_resnet20", "-o", f"{tmp_path / 'new'}/")
    assert res.code == 0, res.stderr
    assert (tmp_path / "new").is_dir()
    assert Ticket.load(tmp_path / "new" / "cifar_resnet20.ticket").arch == "cifar_resnet20"
    res = cli("convert", "--from", src, "--to", "cifar_resnet32", "-o", tmp_path / "plain.ticket")
    assert res.code == 0 and (tmp_path / "plain.ticket").is_file()  # without the slash: a file


def test_help_paragraphs_wrap_at_the_terminal_not_at_the_docstring() -> None:
    """typer's rich help kept each docstring line break (``ticket prune --help`` broke mid-sentence)."""
    import inspect
    import sys as _sys

    from ticketfmt.cli import COMMAND_MODULES, load_commands

    load_commands()
    app_module = _sys.modules["ticketfmt.cli.app"]
    assert app_module.unwrap_paragraphs("A.\n\nb c\n  d\n\n\b\nx\n  y") == "A.\n\nb c d\n\n\b\nx\n  y"
    checked = 0
    for name in COMMAND_MODULES:
        command = app_module._command([name])
        for cmd in [command, *getattr(command, "commands", {}).values()]:
            raw = inspect.cleandoc(cmd.callback.__doc__ or "") if cmd.callback else ""
            for paragraph in (cmd.help or "").split("\n\n"):
                if not paragraph.startswith("\b"):
                    assert "\n" not in paragraph, (name, paragraph)
            if "\n" in raw.split("\n\n", 1)[-1].replace("\n\n", ""):
                checked += 1
    assert checked  # some docstrings do break their paragraphs over lines


def test_arguments_keep_their_help(cli) -> None:
    """An argument's help is shown (typer < 0.26 on click 8.5 lost it: pyproject pins click below 8.5)."""
    res = cli("info", "--help")
    assert res.code == 0 and "A .ticket file." in res.stdout
    res = cli("push", "--help")
    assert "The Hub repo" in res.stdout
