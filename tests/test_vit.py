"""Vision transformers (timm ViT/DeiT, the 32x32 ViTs) and ConvNeXts: staged families, their conversion and recipe."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import timm
import torch

from ticketfmt import Ticket, build_model, prune
from ticketfmt.converters import convert, convert_file, get_converter, invert, plan_conversion
from ticketfmt.errors import ConversionError, UnknownArchError
from ticketfmt.train.loop import Trainer
from ticketfmt.train.recipes import RECIPES, recipe_for
from ticketfmt.zoo import get_arch, prunable_names, state_dict_shapes
from ticketfmt.zoo.convnext import ConvNeXtFamily
from ticketfmt.zoo.infer import infer_arch

DATASET = "cifar10-mini"


def _meta_shapes(model_fn) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in model_fn().state_dict().items()}


@pytest.fixture(scope="module")
def vit6() -> Ticket:
    """A cifar_vit_tiny-6 ticket at 50% magnitude sparsity (fresh reference init, seed 0)."""
    torch.manual_seed(0)
    return prune(Ticket.from_model(build_model("cifar_vit_tiny-6", seed=0), "cifar_vit_tiny-6"), 0.5)


def test_ids_shapes_and_prunable_set() -> None:
    spec = get_arch("vit_tiny_patch16_224")
    assert (spec.id, spec.family, spec.stages, spec.num_classes, spec.input_size) == \
        ("timm/vit_tiny_patch16_224", "vit", (12,), 1000, (3, 224, 224))
    # The torch-free layout is timm's own registered model (depth and classes overridden), key for key.
    assert list(state_dict_shapes(get_arch("vit_tiny_patch16_224-3", num_classes=7)).items()) == list(_meta_shapes(
        lambda: timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=3, num_classes=7)).items())
    assert state_dict_shapes(get_arch("deit_small_patch16_224-2")) == _meta_shapes(
        lambda: timm.create_model("deit_small_patch16_224", pretrained=False, depth=2))
    assert get_arch("deit_tiny_patch16_224").id == "timm/deit_tiny_patch16_224"
    # Prunable: the attention and MLP Linear weights of the blocks; stem, norm and head dense.
    names = prunable_names(get_arch("cifar_vit_tiny-2"))
    layers = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")
    assert names == [f"blocks.{j}.{m}.weight" for j in range(2) for m in layers]
    spec = get_arch("cifar_vit_tiny-2")
    assert [spec.stage_of(k) for k in ("pos_embed", "blocks.1.norm1.weight", "norm.bias", "head.weight")] == \
        ["stem", "stage1", "head", "head"]
    # Hostile or malformed ids are refused before anything is built.
    for bad in ("cifar_vit_tiny-0", "cifar_vit_tiny-65", "cifar_vit_tiny-99999999", "cifar_vit_tiny",
                "convnext_atto-1-2-3", "convnext_atto-1-0-1-1"):
        with pytest.raises(UnknownArchError):
            get_arch(bad)


def test_stretch_6_to_8_and_back(vit6: Ticket, tmp_path: Path) -> None:
    r8 = convert(vit6, "cifar_vit_tiny-8")  # interpolate: the default stretch
    assert r8.arch == "timm/cifar_vit_tiny-8" and r8.provenance["mapping"] == "0:0;1:1,2;2:3,4;3:5;4:6;5:7"
    source_of = (0, 1, 1, 2, 2, 3, 4, 5)
    for k in state_dict_shapes(r8.spec):
        if k.startswith("blocks."):
            j, rest = k.split(".", 2)[1:]
            sk = f"blocks.{source_of[int(j)]}.{rest}"
        else:  # stem (patch_embed, cls_token, pos_embed), norm and head: one to one
            sk = k
        assert torch.equal(r8.init[k], vit6.init[sk]), k
        if k in r8.masks:
            assert torch.equal(r8.masks[k], vit6.masks[sk]), k
    # The converted ticket loads into timm's own module, strictly, and runs.
    model = timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=4, embed_dim=192, depth=8,
                                                             num_heads=3, num_classes=10)
    model.load_state_dict(r8.build_model().state_dict(), strict=True)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert infer_arch(model).id == "timm/cifar_vit_tiny-8"  # and timm's module is recognised as the zoo id
    # Back to 6 blocks by the inverse mapping: the source ticket, exactly.
    back = convert(r8, "cifar_vit_tiny-6", mapping=";".join(f"{i}:{t}" for t, i in
                                                               enumerate(invert([source_of])[0])))
    assert all(torch.equal(back.masks[k], vit6.masks[k]) for k in vit6.masks)
    assert all(torch.equal(back.init[k], vit6.init[k]) for k in vit6.init)
    assert plan_conversion(r8, "cifar_vit_tiny-6").mapping == "0:0;1:1;2:2;3:3;5:4;6:5"  # spread
    # File to file (packed, no torch model) is the in-memory conversion.
    vit6.save(tmp_path / "v6.ticket")
    convert_file(tmp_path / "v6.ticket", "cifar_vit_tiny-8", tmp_path / "v8.ticket")
    again = Ticket.load(tmp_path / "v8.ticket")
    assert all(torch.equal(again.masks[k], r8.masks[k]) for k in r8.masks)
    # Widths and families do not mix; a new class count re-draws the head as timm does.
    with pytest.raises(ConversionError, match="cifar_vit_tiny blocks"):
        plan_conversion(vit6, "cifar_vit_small-8")
    with pytest.raises(ConversionError, match="cannot convert"):
        plan_conversion(vit6, "vit_tiny_patch16_224")
    r100 = convert(vit6, "cifar_vit_tiny-8", num_classes=100)
    assert r100.init["head.weight"].shape == (100, 192) and bool((r100.init["head.bias"] == 0).all())
    assert 0.015 < float(r100.init["head.weight"].std()) < 0.025


def test_convnext_is_one_file_of_description() -> None:
    assert get_converter("convnext").families == ("convnext",)  # no converter module: the staged one
    spec = get_arch("convnext_atto-1-2-2-1")
    assert ConvNeXtFamily.prunable.startswith("stages")
    assert state_dict_shapes(spec) == _meta_shapes(
        lambda: timm.create_model("convnext_atto", pretrained=False, depths=(1, 2, 2, 1)))
    src = prune(Ticket.from_model(build_model(spec, seed=0), spec), 0.5)
    out = convert(src, "convnext_atto-1-2-3-1")
    assert out.provenance["mapping"] == "0:0|0:0;1:1|0:0;1:1,2|0:0"
    assert torch.equal(out.masks["stages.2.blocks.2.conv_dw.weight"], src.masks["stages.2.blocks.1.conv_dw.weight"])
    assert torch.equal(out.init["stages.2.downsample.1.weight"], src.init["stages.2.downsample.1.weight"])
    model = timm.create_model("convnext_atto", pretrained=False, depths=(1, 2, 3, 1))
    model.load_state_dict(out.build_model().state_dict(), strict=True)
    assert infer_arch(model).id == "timm/convnext_atto-1-2-3-1"
    assert "stem.0.weight" not in out.masks and "head.fc.weight" not in out.masks


def test_recipe_adamw_cosine_and_its_checkpointed_state() -> None:
    rec = recipe_for("cifar_vit_tiny-6")
    assert (rec.name, rec.optimizer, rec.schedule, rec.weight_decay, rec.warmup_epochs) == \
        ("cifar_vit", "adamw", "cosine", 0.05, 5.0)
    assert recipe_for("cifar_resnet20").optimizer == "sgd" and recipe_for("vit_base_patch16_224").name == "imagenet_vit"
    quick = rec.override(epochs=2, warmup_epochs=0.5)  # 10 steps an epoch: warm-up 5 steps, cosine over 15
    assert quick.lr_at(0, 10) == 0 and quick.lr_at(5, 10) == pytest.approx(1e-3)
    assert quick.lr_at(10, 10) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 5 / 15)))
    assert quick.lr_at(20, 10) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(Exception, match="cosine schedule takes no milestones"):
        rec.override(milestones=(1.0,))
    assert RECIPES["cifar_resnet"].schedule == "step"
    # AdamW's state (moments and step count) goes through a checkpoint: a resumed step is the uninterrupted one.
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])

    def trainer() -> Trainer:
        return Trainer(build_model("cifar_vit_tiny-1", seed=0), None, quick, device=torch.device("cpu"))

    a = trainer()
    assert isinstance(a.opt, torch.optim.AdamW)
    a.step(x, y, 1e-3)
    state, moments = a.state_dict(), a.momentum()
    assert "blocks.0.attn.qkv.weight:exp_avg_sq" in moments and "blocks.0.attn.qkv.weight:step" in moments
    a.step(x, y, 1e-3)
    b = trainer()
    b.load(state, moments)
    b.step(x, y, 1e-3)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_find_verify_and_cli_convert(tmp_path: Path, cli) -> None:
    from ticketfmt.train import find, verify

    budget = {"subset": 32, "epochs": 1, "batch_size": 16, "seed": 0, "num_workers": 0, "device": "cpu"}
    run = find("cifar_vit_tiny-2", DATASET, 1, out_dir=tmp_path / "run", rewind="1it", **budget)
    ticket = Ticket.load(run.tickets[-1])
    assert 0.19 < ticket.sparsity < 0.21 and len(run.accuracies) == 2  # one level at rate 0.2
    recorded = ticket.provenance["recipe"]
    assert (recorded["name"], recorded["optimizer"], recorded["schedule"]) == ("cifar_vit", "adamw", "cosine")
    # Stretched by one block and verified from the source's rewind step with the source's recipe.
    res = cli("convert", "--from", run.tickets[-1], "--to", "cifar_vit_tiny-3", "-o", tmp_path / "v3.ticket")
    assert res.code == 0, res.stderr
    info = json.loads(cli("info", tmp_path / "v3.ticket", "--json").stdout)
    assert info["arch"]["id"] == "timm/cifar_vit_tiny-3"
    converted = Ticket.load(tmp_path / "v3.ticket")
    _, record = verify(converted, DATASET, subset=32, num_workers=0, device="cpu")
    assert record["start_step"] == 1 and record["recipe"]["optimizer"] == "adamw" and 0 <= record["value"] <= 100
    assert "cifar_vit_tiny-8" in cli("models", "cifar_vit*").stdout
