"""Every picture ticketfmt writes (issue 19): valid PNGs of a sane size that say what they should.

What a picture says is read from its PNG text metadata (``Title``, ``Description``: every title,
axis title, legend entry and note of the figure), never from pixels, so the tests do not depend
on matplotlib's rendering version.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ticketfmt.cards.plot import (PALETTE, BlockDensities, ConversionView, Curve, accuracy_plot, conversion_plot,
                                  density_plot, lmc_plot, stage_color)
from ticketfmt.errors import TicketError
from ticketfmt.format.spec import read_header
from ticketfmt.zoo import get_arch, prunable_names, spec_from_json, state_dict_shapes

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cifar_resnet20-imp-59.ticket"
RESULTS = ROOT / "bench" / "results" / "reproduce-cpu" / "results.json"


def _png(path: Path, max_w: int = 2400, max_h: int = 3000) -> tuple[str, str]:
    """Check ``path`` is a complete PNG of a sane size; return its Title and Description metadata."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        w, h = img.size
        text = dict(img.text)
    assert 400 <= w <= max_w and 250 <= h <= max_h, (w, h)
    assert text["Software"].startswith("ticketfmt")
    return text["Title"], text["Description"]


def _layers(path: Path = EXAMPLE) -> dict[str, tuple[int, int]]:
    return {n: (info.kept, info.numel) for n, info in read_header(path).layers.items()}


def _synthetic(arch: str, seed: int = 0) -> tuple[object, dict[str, tuple[int, int]]]:
    """A spec and made-up (kept, total) per prunable layer, from the shape table alone."""
    import random

    spec, rng = get_arch(arch), random.Random(seed)
    shapes = state_dict_shapes(spec)
    layers = {}
    for n in prunable_names(spec):
        total = math.prod(shapes[n])
        layers[n] = (int(total * rng.uniform(0.05, 0.6)), total)
    return spec, layers


# -- density per layer ---------------------------------------------------------------------------------
def test_density_plot_of_the_bundled_ticket(tmp_path: Path) -> None:
    header = read_header(EXAMPLE)
    out = tmp_path / "density.png"
    density_plot(_layers(), out, spec_from_json(header.arch))
    title, desc = _png(out)
    assert title == "cifar_resnet20: 59.04% sparse (110,955 of 270,896 prunable weights kept)"
    lines = desc.splitlines()
    for stage in ("stem", "stage1", "stage2", "stage3", "head"):  # the legend lists every stage
        assert stage in lines
    assert "stage" in lines  # the legend's title
    assert "fraction of weights kept (density)" in lines and "prunable layer (state-dict order)" in lines
    assert "layer3.0.downsample.0.weight" in lines and "overall: 41.0% kept" in lines  # one bar per layer


def test_density_plot_of_a_deep_network_is_per_block(tmp_path: Path) -> None:
    spec, layers = _synthetic("resnet152")
    assert len(layers) > 150
    out = tmp_path / "r152.png"
    density_plot(layers, out, spec)
    title, desc = _png(out)
    assert title.startswith("timm/resnet152: ") and "sparse" in title
    lines = desc.splitlines()
    assert f"{len(layers)} prunable layers shown as 52 bars: one per block (all its layers together); " \
           "`ticket info` lists every layer" in lines
    assert "layer3.35" in lines and "layer3.35.conv1.weight" not in lines and "block (state-dict order)" in lines
    assert {"stem", "stage1", "stage2", "stage3", "stage4", "head"} <= set(lines)
    # per layer when asked, even for 150+ layers
    density_plot(layers, tmp_path / "all.png", spec, max_bars=1000)
    assert "layer3.35.conv1.weight" in _png(tmp_path / "all.png", max_h=4000)[1].splitlines()


def test_density_plot_without_a_spec_and_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "d.png"
    density_plot({"a.weight": (1, 4), "b.weight": (3, 4)}, out, stages={"a.weight": "stem", "b.weight": "head"})
    title, desc = _png(out)
    assert title == "50.00% sparse (4 of 8 prunable weights kept)" and {"stem", "head"} <= set(desc.splitlines())
    with pytest.raises(TicketError, match="no prunable layers"):
        density_plot({}, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_plots_are_deterministic(tmp_path: Path) -> None:
    spec = get_arch("cifar_resnet20")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    density_plot(_layers(), a, spec)
    density_plot(_layers(), b, spec)
    assert a.read_bytes() == b.read_bytes()


def test_stage_colours_are_stable() -> None:
    assert stage_color("stage1") == PALETTE[0] and stage_color("stage3") == PALETTE[2]
    assert stage_color("stem") != stage_color("head") and stage_color("stem") not in PALETTE


# -- conversion ----------------------------------------------------------------------------------------
def test_block_densities_sum_every_layer_of_a_block() -> None:
    spec = get_arch("cifar_resnet20")
    layers = _layers()
    b = BlockDensities.of(spec, layers)
    assert [len(u) for u in b.units] == [3, 3, 3]
    keys = [k for k in layers if k.startswith("layer2.0.")]  # conv1, conv2 and the downsample
    assert len(keys) == 3
    assert b.units[1][0] == pytest.approx(sum(layers[k][0] for k in keys) / sum(layers[k][1] for k in keys))
    assert b.stem == pytest.approx(layers["conv1.weight"][0] / layers["conv1.weight"][1])
    assert b.sparsity == pytest.approx(read_header(EXAMPLE).sparsity, abs=1e-4)


def test_conversion_plot_links_each_target_block_to_its_source(tmp_path: Path) -> None:
    from ticketfmt.converters import plan_conversion

    src_spec, layers = get_arch("cifar_resnet20"), _layers()
    views = []
    for target in ("cifar_resnet32", "cifar_resnet14"):
        plan = plan_conversion(src_spec, target)
        tl = {t: layers[s] for t, s, _ in plan.key_map if s in layers}
        views.append(ConversionView(BlockDensities.of(plan.target, tl), plan.stage_maps, f"{target}: {plan.direction}"))
    out = tmp_path / "convert.png"
    conversion_plot(BlockDensities.of(src_spec, layers), views, out)
    title, desc = _png(out)
    assert title == "cifar_resnet20 → cifar_resnet32, cifar_resnet14: where each block comes from"
    lines = desc.splitlines()
    assert "cifar_resnet32: stretch" in lines and "cifar_resnet14: squeeze" in lines
    assert "cifar_resnet20 (source)" in lines and "59.04% sparse" in lines and "density (fraction kept)" in lines
    assert {"stem", "stage1", "stage2", "stage3", "head", "B0", "B1", "B2"} <= set(lines)
    bad = ConversionView(views[0].target, views[1].stage_maps)
    with pytest.raises(TicketError, match="stage maps"):
        conversion_plot(BlockDensities.of(src_spec, layers), [bad], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_conversion_plot_of_imagenet_resnets(tmp_path: Path) -> None:
    from ticketfmt.converters import plan_conversion

    spec, layers = _synthetic("resnet50")
    plan = plan_conversion(spec, "resnet152")
    tl = {t: layers[s] for t, s, _ in plan.key_map if s in layers}
    out = tmp_path / "r50-r152.png"
    conversion_plot(BlockDensities.of(spec, layers), [ConversionView(BlockDensities.of(plan.target, tl),
                                                                     plan.stage_maps)], out)
    title, desc = _png(out, max_w=2400)
    assert title.startswith("timm/resnet50 → timm/resnet152") and "stage4" in desc.splitlines()


# -- accuracy vs sparsity, linear mode connectivity ----------------------------------------------------------
def test_accuracy_plot(tmp_path: Path) -> None:
    curves = [Curve("IMP (a)", ((0.52, 29.4, 1.8), (0.77, 33.8, 0.7), (0.89, 34.7, None))),
              Curve("not run yet"),  # keeps its colour slot, not in the legend
              Curve("ETT (b)", ((0.522, 32.0, 0.9), (0.772, 35.8, 3.0)), ":")]
    out = tmp_path / "acc.png"
    accuracy_plot(curves, out, dense=(45.2, 1.1), dense_label="dense (f)", title="demo")
    title, desc = _png(out)
    lines = desc.splitlines()
    assert title == "demo" and "IMP (a)" in lines and "ETT (b)" in lines and "not run yet" not in lines
    assert "dense (f): 45.20 ± 1.10" in lines and "test top-1 accuracy (%)" in lines
    assert any(line.startswith("weights remaining (log scale") for line in lines)
    # one tick per group of nearby sparsities, labelled with the group's range (not a sparsity no point has)
    assert "47.8-48%" in lines and "(52-52.2% sparse)" in lines and "47.9%" not in lines
    assert "11%" in lines and "(89% sparse)" in lines  # a group of one: its own value
    from ticketfmt.cards.plot import _tick_groups  # IMP's levels and the stretched tickets' (a little sparser)

    labels = [label for _, label in _tick_groups([46.0, 44.2, 21.2, 19.6, 9.73, 8.79])]
    assert labels == ["44.2-46%\n(54-55.8% sparse)", "19.6-21.2%\n(78.8-80.4% sparse)",
                      "8.79-9.73%\n(90.3-91.2% sparse)"]
    with pytest.raises(TicketError, match="no accuracy"):
        accuracy_plot([Curve("empty")], tmp_path / "none.png")


def test_lmc_plot(tmp_path: Path) -> None:
    alphas = [i / 10 for i in range(11)]
    errors = {"train": [5 + 8 * math.sin(math.pi * a) for a in alphas], "test": [10 + 9 * math.sin(math.pi * a)
                                                                                 for a in alphas]}
    out = tmp_path / "lmc.png"
    lmc_plot(alphas, errors, out, endpoints=("seed 0", "seed 1"))
    title, desc = _png(out)
    lines = desc.splitlines()
    assert title == "linear mode connectivity"
    assert "train (instability +8.00)" in lines and "test (instability +9.00)" in lines
    assert "interpolation α (0: seed 0, 1: seed 1)" in lines and "error (%)" in lines
    with pytest.raises(TicketError, match="3 values for 11"):
        lmc_plot(alphas, {"train": [1, 2, 3]}, tmp_path / "bad.png")


def test_reproduction_plot_from_the_committed_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFMT_DATA", str(tmp_path))  # the bench module sets a default data folder otherwise
    spec = importlib.util.spec_from_file_location("_reproduce", ROOT / "bench" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    res = json.loads(RESULTS.read_text())
    out = tmp_path / "accuracy_vs_sparsity.png"
    module.plot(res, out)
    title, desc = _png(out)
    lines = desc.splitlines()
    assert title.startswith("Elastic LTH reproduction (cpu): cifar_resnet32")
    ns = sorted({v["n"] for row in res["table"].values() for v in row["cells"].values()})
    assert f"(n = {ns[0]}" in title and ("arms done" in title) == (not res["complete"])
    # a partial run says so in the title, with the n of its points
    partial = {**res, "complete": False, "progress": {"arms_done": 3, "arms_planned": 51},
               "table": {k: {**row, "cells": {lv: {**v, "n": 1} for lv, v in row["cells"].items()}}
                         for k, row in res["table"].items()}}
    module.plot(partial, out)
    assert "(n = 1 per point; 3 of 51 arms done)" in _png(out)[0]
    for key, label in module.METHODS:
        if key != "dense" and res["table"].get(key, {}).get("cells"):
            assert label in lines
    dense = res["table"]["dense"]["cells"]["0"]
    assert f"dense target (f): {dense['mean']:.2f} ± {dense['std']:.2f}" in lines


# -- the command line ------------------------------------------------------------------------------------
def test_convert_plot_cli(cli, tmp_path: Path) -> None:
    out, png = tmp_path / "r32.ticket", tmp_path / "convert.png"
    res = cli("convert", "--from", EXAMPLE, "--to", "cifar_resnet32", "-o", out, "--plot", png)
    assert res.code == 0, res.stderr
    assert f"wrote {png}" in res.stderr and out.exists()
    title, desc = _png(png)
    assert title == "cifar_resnet20 → cifar_resnet32: where each block comes from"
    assert "cifar_resnet32: stretch, strategy interpolate, --mapping '0:0;1:1,2;2:3,4'" in desc.splitlines()
    # an existing picture is replaced only with --force, and nothing is written before that is known
    out2 = tmp_path / "r32b.ticket"
    res = cli("convert", "--from", EXAMPLE, "--to", "cifar_resnet32", "-o", out2, "--plot", png)
    assert res.code == 2 and "--force" in res.stderr and not out2.exists()
    assert cli("convert", "--from", EXAMPLE, "--to", "cifar_resnet32", "-o", out2, "--plot", png,
               "--force").code == 0


def test_info_plot_cli_lists_the_stages(cli, tmp_path: Path) -> None:
    png = tmp_path / "density.png"
    res = cli("info", EXAMPLE, "--plot", png, "--no-layers")
    assert res.code == 0 and f"wrote {png}" in res.stderr
    title, desc = _png(png)
    assert title.startswith("cifar_resnet20: 59.04% sparse")
    assert {"stem", "stage1", "stage2", "stage3", "head"} <= set(desc.splitlines())


def test_matplotlib_only_with_plot(tmp_path: Path) -> None:
    # `ticket info` and `ticket convert` import matplotlib only for --plot; `info --plot` still imports no torch.
    code = ("import sys; from ticketfmt.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "print(rc, 'matplotlib' in sys.modules, 'torch' in sys.modules, file=sys.stderr)")

    def run(*args: str) -> list[str]:
        proc = subprocess.run([sys.executable, "-P", "-c", code, *args], capture_output=True, text=True)
        return proc.stderr.split()[-3:]

    assert run("info", str(EXAMPLE), "--json") == ["0", "False", "False"]
    assert run("info", str(EXAMPLE), "--json", "--plot", str(tmp_path / "d.png")) == ["0", "True", "False"]
    rc, mpl, _ = run("convert", "--from", str(EXAMPLE), "--to", "cifar_resnet32", "-o", str(tmp_path / "r32.ticket"))
    assert (rc, mpl) == ("0", "False")


def test_info_lists_stages_and_layers_in_the_models_order(cli) -> None:
    # the bundled ticket's file lists its tensors alphabetically (conv1, fc, layer1...): info follows the model
    res = cli("info", EXAMPLE, "--json")
    assert res.code == 0, res.stderr
    info = json.loads(res.stdout)
    assert list(info["stages"]) == ["stem", "stage1", "stage2", "stage3", "head"]
    assert [layer["name"] for layer in info["layers"]] == prunable_names(get_arch("cifar_resnet20"))
