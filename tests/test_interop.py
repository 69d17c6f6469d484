"""Interop: tickets on torch models (torch.nn.utils.prune), tickets from open_lth / ElasticLTH runs, and tickets
from the models people already have (timm, torchvision, pruned or not; state dict files; pretrained loaders).

The open_lth runs are real run-folder layouts built in a tmp dir with open_lth's own file names
(foundations/paths.py), its ``hparams.log`` format (foundations/hparams.py ``display``, groups
in the order of foundations/desc.py ``save``) and its step arithmetic (an epoch of CIFAR-10 at
batch 128 is ceil(50000 / 128) = 391 iterations, so the rewind step 1000it is ``model_ep2_it218``).
The state dicts are saved with ``torch.save``, as open_lth writes them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch.nn.utils import prune as torch_prune

from ticketfmt import Ticket, apply_masks, build_model, prune
from ticketfmt.errors import ConversionError, MaskError, TicketError, UnknownArchError
from ticketfmt.interop import (arch_from_open_lth, import_open_lth, infer_open_lth_arch, open_lth_key_map,
                               open_lth_recipe, open_lth_seed, parse_open_lth_hparams)
from ticketfmt.train.recipes import Recipe
from ticketfmt.zoo import get_arch, prunable_names

from clierrors import one_line_error


@pytest.fixture(scope="module")
def base_ticket() -> Ticket:
    ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8", provenance={"seed": 0})
    return prune(ticket, 0.5, method="magnitude")


# -- apply_masks ------------------------------------------------------------------------------------------
def test_apply_masks_with_torch_prune(base_ticket: Ticket) -> None:
    model = apply_masks(base_ticket.build_model(), base_ticket)
    assert torch_prune.is_pruned(model)
    conv = model.layer2[0].conv1
    assert torch.equal(conv.weight_mask.bool(), base_ticket.masks["layer2.0.conv1.weight"])
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    opt.step()
    for name, mask in base_ticket.masks.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        assert bool((module.weight[~mask] == 0).all()), name  # pruned weights stay zero after a step
    fresh = apply_masks(build_model("cifar_resnet8", seed=5), base_ticket)
    assert bool((fresh.fc.weight[~base_ticket.masks["fc.weight"]] == 0).all())
    torch_prune.remove(fresh.fc, "weight")
    assert not hasattr(fresh.fc, "weight_mask")
    with pytest.raises(MaskError, match="already has a pruning mask"):
        apply_masks(model, base_ticket)
    with pytest.raises(MaskError, match="has shape"):
        apply_masks(build_model("cifar_resnet8", num_classes=100), base_ticket)
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.Linear(4, 4))
    other.conv1 = torch.nn.Conv2d(3, 16, 3, bias=False)  # matches the first mask, not the others
    with pytest.raises(MaskError, match="has no parameter"):
        apply_masks(other, base_ticket)
    assert not torch_prune.is_pruned(other)  # all or nothing


def test_apply_masks_loads_the_tickets_init_unless_asked_not_to(base_ticket: Ticket) -> None:
    model = build_model("cifar_resnet8", seed=7)  # random weights, not the ticket's
    own = {k: v.clone() for k, v in model.state_dict().items()}
    apply_masks(model, base_ticket)
    state = model.state_dict()
    for name, value in base_ticket.init.items():
        key = f"{name[:-len('weight')]}weight_orig" if name in base_ticket.masks else name
        assert torch.equal(state[key], value), name  # θ_r ⊙ m, BatchNorm buffers included
    kept = apply_masks(build_model("cifar_resnet8", seed=7), base_ticket, load_init=False)
    assert torch.equal(kept.layer1[0].conv1.weight_orig, own["layer1.0.conv1.weight"])
    mask = base_ticket.masks["layer1.0.conv1.weight"]
    assert torch.equal(kept.layer1[0].conv1.weight, own["layer1.0.conv1.weight"] * mask)
    assert torch.equal(kept.bn1.running_var, own["bn1.running_var"])


def test_apply_masks_checks_the_architecture_both_ways(base_ticket: Ticket) -> None:
    deeper = build_model("cifar_resnet14", seed=0)  # every layer of the r8 ticket is in it, and more
    before = {k: v.clone() for k, v in deeper.state_dict().items()}
    for load_init in (True, False):
        with pytest.raises(MaskError, match="prunable weight.*does not mask, first 'layer1.1.conv1.weight'") as e:
            apply_masks(deeper, base_ticket, load_init=load_init)
        assert "\n" not in str(e.value) and "cifar_resnet8" in str(e.value)
    assert not torch_prune.is_pruned(deeper)
    assert all(torch.equal(v, before[k]) for k, v in deeper.state_dict().items())  # nothing changed
    r14 = Ticket.from_model(deeper, "cifar_resnet14")
    with pytest.raises(MaskError, match="has no parameter 'layer1.1.conv1.weight'"):
        apply_masks(build_model("cifar_resnet8"), r14)  # and the other way


# -- open_lth run layouts ---------------------------------------------------------------------------------
def _open_lth_names(spec_id: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our names -> open_lth's (written independently of the importer's map)."""
    spec = get_arch(spec_id)
    if spec.family == "resnet":
        return {f"model.{k}": v.clone() for k, v in state.items()}
    flat, n = {}, 0
    for s, count in enumerate(spec.stages):
        for j in range(count):
            flat[f"layer{s + 1}.{j}."] = f"blocks.{n}."
            n += 1
    out = {}
    for key, value in state.items():
        new = key
        if key.startswith("conv1."):
            new = "conv." + key[len("conv1."):]
        elif key.startswith("bn1."):
            new = "bn." + key[len("bn1."):]
        else:
            for ours, theirs in flat.items():
                if key.startswith(ours):
                    new = theirs + key[len(ours):].replace("downsample.", "shortcut.")
        out[new] = value.clone()
    return out


def _hparams(dataset: str, batch: int, model_name: str, training: list[str], rewinding: str | None) -> str:
    """hparams.log as open_lth's Desc.save writes it: groups sorted by field name, '\\n'-joined, no final newline.

    ``training`` lists the TrainingHparams fields that ``display`` shows (no default, or truthy).
    """
    dataset_group = [f"    * dataset_name => {dataset}", f"    * batch_size => {batch}", "    * subset_stride => 1"]
    groups = ["Dataset Hyperparameters\n" + "\n".join(dataset_group),
              "Model Hyperparameters\n" + "\n".join([f"    * model_name => {model_name}",
                                                    "    * model_init => kaiming_normal",
                                                    "    * batchnorm_init => uniform"])]
    if rewinding:  # --rewinding_steps: the pre-training copies the main groups, with training_steps replaced
        pre = [f"    * training_steps => {rewinding}" if t.startswith("    * training_steps") else t for t in training]
        groups += ["Pretraining Dataset Hyperparameters\n" + "\n".join(dataset_group),
                   "Pretraining Training Hyperparameters\n" + "\n".join(pre)]
    groups += ["Hyperparameters for Sparse Global Pruning\n    * pruning_strategy => sparse_global\n"
               "    * pruning_fraction => 0.2",
               "Training Hyperparameters\n" + "\n".join(training)]
    return "\n".join(groups)


# cifar_resnet_20's default_hparams (models/cifar_resnet.py); data_order_seed, warm-up, nesterov unset.
CIFAR_TRAINING = ["    * optimizer_name => sgd", "    * lr => 0.1", "    * training_steps => 160ep",
                  "    * momentum => 0.9", "    * milestone_steps => 80ep,120ep", "    * gamma => 0.1",
                  "    * weight_decay => 0.0001"]
# imagenet_resnet_50's default_hparams (models/imagenet_resnet.py).
IMAGENET_TRAINING = ["    * optimizer_name => sgd", "    * lr => 0.4", "    * training_steps => 90ep",
                     "    * momentum => 0.9", "    * milestone_steps => 30ep,60ep,80ep", "    * gamma => 0.1",
                     "    * warmup_steps => 5ep", "    * weight_decay => 0.0001"]


def _masks_like(spec_id: str, state: dict[str, torch.Tensor], keep: float, seed: int) -> dict[str, torch.Tensor]:
    """Masks as open_lth's Mask.save writes them (int tensors), on every Conv2d/Linear weight."""
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.rand(state[k].shape, generator=gen) < keep).int() for k in prunable_names(get_arch(spec_id))}


def _trained(state: dict[str, torch.Tensor], shift: float) -> dict[str, torch.Tensor]:
    """Stand-in weights at the end of training (distinct from the start, cheap to make)."""
    return {k: v + shift if v.is_floating_point() else v for k, v in state.items()}


def _write_level(folder: Path, spec_id: str, mask: dict[str, torch.Tensor], start: dict[str, torch.Tensor],
                 start_name: str, end_name: str, shift: float) -> None:
    """A level folder as open_lth leaves it: mask.pth, the (masked) start and end checkpoints, logger, report."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(_open_lth_names(spec_id, mask), folder / "mask.pth")
    masked = {k: v * mask[k] if k in mask else v for k, v in start.items()}
    torch.save(_open_lth_names(spec_id, masked), folder / start_name)
    torch.save(_open_lth_names(spec_id, _trained(masked, shift)), folder / end_name)
    (folder / "logger").write_text("test_accuracy,0,0.1\ntest_accuracy,62560,0.5")
    kept = int(sum(int(m.sum()) for m in mask.values()))
    (folder / "sparsity_report.json").write_text(f'{{"total": {sum(m.numel() for m in mask.values())}, '
                                                 f'"unpruned": {kept}}}')


def make_run(root: Path, spec_id: str, model_name: str, hparams: str, *, levels: int, start: str, end: str,
             replicate: int = 1, seed: int = 0) -> tuple[Path, dict[str, torch.Tensor], dict[int, dict]]:
    """``root/lottery_<hash>/replicate_R/level_{pretrain,0..levels}/main``.

    Returns the lottery folder, the rewind weights (our names) and the masks of each level.
    """
    lottery = root / "lottery_0123456789abcdef0123456789abcdef"
    rep = lottery / f"replicate_{replicate}"
    rewind = build_model(spec_id, seed=seed + 100).state_dict()
    pre = rep / "level_pretrain" / "main"
    pre.mkdir(parents=True)
    torch.save(_open_lth_names(spec_id, build_model(spec_id, seed=seed).state_dict()), pre / "model_ep0_it0.pth")
    torch.save(_open_lth_names(spec_id, rewind), pre / start)
    masks: dict[int, dict] = {}
    for level in range(levels + 1):
        keep = 0.8 ** level
        masks[level] = _masks_like(spec_id, rewind, keep, seed + level) if level else \
            {k: torch.ones_like(rewind[k], dtype=torch.int32) for k in prunable_names(get_arch(spec_id))}
        _write_level(rep / f"level_{level}" / "main", spec_id, masks[level], rewind, start, end, level + 1.0)
    (rep / "level_0" / "main" / "hparams.log").write_text(hparams)
    return lottery, rewind, masks


R8_HPARAMS = _hparams("cifar10", 128, "cifar_resnet_8", CIFAR_TRAINING, "1000it")


def test_import_open_lth_lottery_folder_recipe_seed_and_replicates(cli, tmp_path: Path) -> None:
    lottery, rewind, masks = make_run(tmp_path, "cifar_resnet8", "cifar_resnet_8", R8_HPARAMS, levels=2,
                                      start="model_ep2_it218.pth", end="model_ep160_it0.pth")
    out = tmp_path / "imported.ticket"
    res = cli("import", "open-lth", lottery, "--level", "2", "-o", out)  # the lottery_<hash> folder itself
    assert res.code == 0, res.stderr
    assert "rewind 1000it" in res.stderr and "160 epochs" in res.stderr and "seed 0" in res.stderr
    ticket = Ticket.load(out)
    assert ticket.arch == "cifar_resnet8" and ticket.trained is None
    assert all(torch.equal(ticket.masks[k], masks[2][k].bool()) for k in ticket.masks)
    for key, value in rewind.items():
        mask = ticket.masks.get(key)
        assert torch.equal(ticket.init[key], value * mask if mask is not None else value), key
    prov = ticket.provenance
    assert prov["method"] == "imp" and prov["level"] == 2 and prov["rate"] == 0.2 and prov["rewind"] == "1000it"
    assert prov["dataset"] == "cifar10" and prov["seed"] == 0  # data_order_seed is absent from the log: 0
    assert prov["open_lth_hparams"] == R8_HPARAMS
    assert prov["imported_from"]["init"]["file"] == "level_0/main/model_ep2_it218.pth"
    assert prov["imported_from"]["hparams"]["file"] == "level_0/main/hparams.log"
    assert prov["imported_from"]["run"] == f"{lottery.name}/replicate_1"

    # The record is a whole recipe that `ticket verify` resolves (Recipe.from_json), equal to the run's.
    recipe = Recipe.from_json(prov["recipe"])
    assert set(prov["recipe"]) == set(recipe.to_json())
    assert dataclasses.replace(recipe, overrides=()) == Recipe(
        "open_lth", lr=0.1, batch_size=128, epochs=160, milestones=(80.0, 120.0), gamma=0.1, warmup_epochs=0.0,
        momentum=0.9, weight_decay=1e-4, nesterov=False, optimizer="sgd", rewind="1000it",
        augmentation="crop32-pad4+flip")
    assert recipe.rewind_step(391) == 1000 and recipe.lr_at(80 * 391, 391) == pytest.approx(0.01)

    # Another replicate, picked with --replicate; a missing one names the fix.
    make_run(tmp_path, "cifar_resnet8", "cifar_resnet_8", R8_HPARAMS.replace("0.0001", "0.0005"), levels=1,
             start="model_ep2_it218.pth", end="model_ep160_it0.pth", replicate=2, seed=50)
    rep2, notes = import_open_lth(lottery, 1, replicate=2)
    assert rep2.provenance["recipe"]["weight_decay"] == 0.0005 and notes == []
    assert rep2.provenance["imported_from"]["run"].endswith("replicate_2")
    one_line_error(cli("import", "open-lth", lottery, "--level", "1", "--replicate", "3", "-o", tmp_path / "x.ticket"),
                   "no replicate_3", "replicates found: 1, 2", "--replicate")
    one_line_error(cli("import", "open-lth", lottery, "-o", tmp_path / "x.ticket"), "--level", "levels found: 0, 1, 2")
    one_line_error(cli("import", "open-lth", lottery / "replicate_1", "--level", "5", "-o", tmp_path / "x.ticket"),
                   "level_5", "levels found: 0, 1, 2")
    one_line_error(cli("import", "open-lth", tmp_path, "--level", "1", "-o", tmp_path / "x.ticket"),
                   "not an open_lth run folder", "lottery_<hash>", "--replicate")
    one_line_error(cli("import", "open-lth", lottery, "--level", "2", "-o", tmp_path / "y.ticket", "--arch",
                       "cifar_resnet20"), "not an open_lth name", "--arch")
    assert not (tmp_path / "x.ticket").exists() and not (tmp_path / "y.ticket").exists()

    with_trained, _ = import_open_lth(lottery / "replicate_1", 2, with_trained=True)
    assert torch.equal(with_trained.trained["fc.bias"], rewind["fc.bias"] + 3.0)  # level 2's end checkpoint
    assert with_trained.provenance["imported_from"]["trained"]["file"] == "level_2/main/model_ep160_it0.pth"


def test_import_open_lth_imagenet_resnet(tmp_path: Path) -> None:
    # imagenet_resnet_50's recipe with rewinding to 5 epochs: ceil(1281167 / 1024) = 1252 iterations an
    # epoch, so the rewind step 6260 is model_ep5_it0 and the end (90ep) model_ep90_it0.
    text = _hparams("imagenet", 1024, "imagenet_resnet_18", IMAGENET_TRAINING, "5ep")
    lottery, rewind, masks = make_run(tmp_path, "torchvision/resnet18", "imagenet_resnet_18", text, levels=1,
                                      start="model_ep5_it0.pth", end="model_ep90_it0.pth")
    ticket, notes = import_open_lth(lottery, 1)
    assert notes == [] and ticket.arch == "torchvision/resnet18" and ticket.num_classes == 1000
    assert torch.equal(ticket.masks["layer4.1.conv2.weight"], masks[1]["layer4.1.conv2.weight"].bool())
    assert torch.equal(ticket.masks["fc.weight"], masks[1]["fc.weight"].bool())  # open_lth prunes the fc too
    assert torch.equal(ticket.init["layer1.0.bn1.running_var"], rewind["layer1.0.bn1.running_var"])
    prov = ticket.provenance
    assert prov["rewind"] == "5ep" and prov["dataset"] == "imagenet"
    recipe = Recipe.from_json(prov["recipe"])
    assert (recipe.lr, recipe.batch_size, recipe.epochs, recipe.milestones, recipe.warmup_epochs, recipe.rewind,
            recipe.augmentation) == (0.4, 1024, 90, (30.0, 60.0, 80.0), 5.0, "5ep", "rrc224+flip")
    assert recipe.rewind_step(1252) == 6260

    # ElasticLTH's imagenet_resnet_26 is BasicBlock [2, 3, 4, 3] (not timm's bottleneck resnet26).
    r26 = get_arch(arch_from_open_lth("imagenet_resnet_26"))
    assert (r26.id, r26.library, r26.block, r26.stages) == ("torchvision/resnet_basic-2-3-4-3", "torchvision",
                                                           "basic", (2, 3, 4, 3))
    key_map = open_lth_key_map(r26)
    assert key_map["model.layer3.3.conv2.weight"] == "layer3.3.conv2.weight" and "model.layer3.4.conv1.weight" \
        not in key_map
    assert arch_from_open_lth("imagenet_resnet_50_64") == "torchvision/resnet50"
    with pytest.raises(ConversionError, match="width 32"):
        arch_from_open_lth("imagenet_resnet_50_32")


def test_import_elastic_lth_change_depth_branch(cli, tmp_path: Path) -> None:
    lottery, rewind, _ = make_run(tmp_path, "cifar_resnet8", "cifar_resnet_8", R8_HPARAMS, levels=1,
                                  start="model_ep2_it218.pth", end="model_ep160_it0.pth")
    # lottery/branch/change_depth.py: the target's mask and its weights at the start and end steps,
    # in level_L/<BranchDesc hashname>; no hparams.log there.
    branch = lottery / "replicate_1" / "level_1" / "lottery_branch_change_depth_fedcba9876543210fedcba9876543210"
    target = build_model("cifar_resnet14", seed=9).state_dict()
    mask = _masks_like("cifar_resnet14", target, 0.8, 3)
    _write_level(branch, "cifar_resnet14", mask, target, "model_ep2_it218.pth", "model_ep160_it0.pth", 5.0)
    torch.save({"ep": torch.tensor(160)}, branch / "checkpoint.pth")

    out = tmp_path / "r14.ticket"
    res = cli("import", "open-lth", branch, "-o", out)
    assert res.code == 0, res.stderr
    assert "cifar_resnet14 read off the checkpoint's keys" in res.stderr and "cifar_resnet_8" in res.stderr
    ticket = Ticket.load(out)
    assert ticket.arch == "cifar_resnet14"
    assert all(torch.equal(ticket.masks[k], mask[k].bool()) for k in ticket.masks)
    assert torch.equal(ticket.init["layer2.1.conv1.weight"], target["layer2.1.conv1.weight"] * mask[
        "layer2.1.conv1.weight"])
    prov = ticket.provenance
    assert prov["method"] == "elastic" and prov["source"]["arch"] == "cifar_resnet8" and prov["level"] == 1
    assert prov["rewind"] == "1000it" and prov["seed"] == 0
    assert Recipe.from_json(prov["recipe"]).epochs == 160
    assert prov["imported_from"]["tool"] == "ElasticLTH" and prov["imported_from"]["branch"] == branch.name
    assert prov["imported_from"]["init"]["file"] == f"level_1/{branch.name}/model_ep2_it218.pth"
    one_line_error(cli("import", "open-lth", branch, "--level", "2", "-o", tmp_path / "x.ticket"),
                   "a branch of level 1", "--level 1")


def test_open_lth_recipe_defaults_and_what_it_cannot_express() -> None:
    base = _hparams("cifar10", 128, "cifar_resnet_20", CIFAR_TRAINING, None)
    hp = parse_open_lth_hparams(base)
    assert open_lth_seed(hp) == 0
    assert open_lth_seed(parse_open_lth_hparams(base + "\n    * data_order_seed => 7")) == 7
    record, why = open_lth_recipe(hp, "0")
    assert why == "" and record["rewind"] == "0" and record["momentum"] == 0.9
    # Falsy fields are absent from the log: open_lth's defaults (no momentum, no weight decay, no schedule).
    bare = parse_open_lth_hparams(_hparams("cifar10", 128, "cifar_resnet_20", [
        "    * optimizer_name => sgd", "    * lr => 0.05", "    * training_steps => 3910it",
        "    * nesterov_momentum => 0.9", "    * warmup_steps => 782it"], None))
    record, _ = open_lth_recipe(bare, "0")
    recipe = Recipe.from_json(record)
    assert (recipe.epochs, recipe.milestones, recipe.momentum, recipe.nesterov, recipe.weight_decay,
            recipe.warmup_epochs) == (10, (), 0.9, True, 0.0, 2.0)
    inside = parse_open_lth_hparams(base.replace("training_steps => 160ep", "training_steps => 30000it"))
    assert open_lth_recipe(inside, "0") == (None, "training_steps 30000it is not a whole number of epochs "
                                                  "(391 iterations each)")
    adam = parse_open_lth_hparams(base.replace("optimizer_name => sgd", "optimizer_name => adam"))
    assert open_lth_recipe(adam, "0")[0] is None


def test_open_lth_names_and_inferred_architectures() -> None:
    # open_lth's CIFAR VGG numbers its layers with the max-pools; the classifier is dense for us.
    vgg = open_lth_key_map(get_arch("cifar_vgg11"))
    assert vgg["layers.0.conv.weight"] == "features.0.weight"
    assert vgg["layers.2.conv.weight"] == "features.4.weight"
    assert vgg["layers.11.bn.running_mean"] == "features.26.running_mean"
    assert vgg["fc.weight"] == "classifier.weight"
    assert infer_open_lth_arch({k: torch.zeros(1) for k in vgg}) == "cifar_vgg11"
    for arch in ("cifar_resnet20", "cifar_resnet-2-3-4", "torchvision/resnet_basic-2-3-4-3", "torchvision/resnet50"):
        spec = get_arch(arch)
        state = {k: torch.zeros(shape) for k, shape in
                 ((k, (64 if spec.family == "resnet" else 16, 3, 3, 3)) for k in open_lth_key_map(spec))}
        assert infer_open_lth_arch(state) == spec.id, arch
    with pytest.raises(ConversionError, match="32 filters"):
        infer_open_lth_arch({"conv.weight": torch.zeros(32, 3, 3, 3), "blocks.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(TicketError, match="--arch"):
        infer_open_lth_arch({"features.0.weight": torch.zeros(1)})


# -- in: from the models people already have (issue 14) ----------------------------------------------------
def _meta(build):
    """A model built on the meta device: its classes and shapes, no memory and no init (inference needs no more)."""
    with torch.device("meta"):
        return build()


def test_from_model_reads_the_architecture_and_the_library_off_the_model() -> None:
    import timm
    import torchvision

    from ticketfmt.zoo.infer import infer_arch

    # The library that built the model names it: torchvision's ResNet-50 is not timm's.
    cases = [(lambda: torchvision.models.resnet50(), "torchvision/resnet50", 1000),
             (lambda: timm.create_model("resnet50", num_classes=10), "timm/resnet50", 10),
             (lambda: torchvision.models.vgg16_bn(num_classes=5), "torchvision/vgg16_bn", 5),
             (lambda: timm.create_model("vgg11"), "timm/vgg11", 1000),
             (lambda: torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [2, 3, 4, 3]),
              "torchvision/resnet_basic-2-3-4-3", 1000)]
    for build, arch, classes in cases:
        spec = infer_arch(_meta(build))
        assert (spec.id, spec.num_classes) == (arch, classes)
    for arch in ("cifar_resnet-1-2-1", "cifar_vgg11"):
        assert infer_arch(build_model(arch, num_classes=7)).id == arch

    # Real models, real tickets: the init is the model's state dict, in its order.
    tv = torchvision.models.resnet18(num_classes=10)
    ticket = Ticket.from_model(tv)
    assert (ticket.arch, ticket.num_classes, ticket.sparsity) == ("torchvision/resnet18", 10, 0.0)
    assert list(ticket.init) == list(tv.state_dict())
    assert all(torch.equal(ticket.init[k], v) for k, v in tv.state_dict().items())
    assert Ticket.from_model(timm.create_model("resnet18", num_classes=10)).arch == "timm/resnet18"

    # Look-alikes the zoo does not hold are refused by name, not mislabelled.
    for name, needle in (("resnet50d", "lacks 'conv1.weight'"), ("wide_resnet50_2", "'layer1.0.conv1.weight' has "
                                                                                    "shape [128, 64, 1, 1]"),
                         ("seresnet50", "'layer1.0.se.fc1.weight'")):
        with pytest.raises(UnknownArchError, match="is not a timm/resnet50") as e:
            infer_arch(_meta(lambda: timm.create_model(name)))
        assert needle in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UnknownArchError, match="cannot tell the architecture of a .*EfficientNet model.*arch="):
        infer_arch(_meta(lambda: timm.create_model("efficientnet_b0")))


def test_from_model_reads_torch_nn_utils_prune_masks() -> None:
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    fresh_order = list(model.state_dict())
    convs = [(m, "weight") for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    torch_prune.global_unstructured(convs, pruning_method=torch_prune.L1Unstructured, amount=0.7)
    ticket = Ticket.from_model(model)
    assert ticket.arch == "torchvision/resnet18" and list(ticket.init) == fresh_order  # prune's reordering undone
    for name, mask in ticket.masks.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        if isinstance(module, torch.nn.Conv2d):  # weight_mask read, weight = weight_orig ⊙ weight_mask
            assert torch.equal(mask, module.weight_mask.bool()), name
            assert torch.equal(ticket.init[name], module.weight_orig.detach() * module.weight_mask), name
        else:
            assert bool(mask.all()), name  # the unpruned fc: all ones
    convs_total = sum(m.weight.numel() for m, _ in convs)
    assert sum(int((~m).sum()) for m in ticket.masks.values()) == round(0.7 * convs_total)
    assert Ticket.from_model(model, masks="nonzero").masks.keys() == ticket.masks.keys()

    with pytest.raises(MaskError, match="pruned with torch.nn.utils.prune and masks were given"):
        Ticket.from_model(model, masks=dict(ticket.masks))
    biased = build_model("cifar_resnet8", seed=0)
    torch_prune.random_unstructured(biased.fc, "bias", 0.5)
    with pytest.raises(MaskError, match="'fc.bias' is pruned.*tickets mask weights only"):
        Ticket.from_model(biased)
    half = build_model("cifar_resnet8", seed=0)
    torch_prune.custom_from_mask(half.fc, "weight", torch.full_like(half.fc.weight, 0.5))
    with pytest.raises(MaskError, match="not a binary mask"):
        Ticket.from_model(half)
    vgg = build_model("cifar_vgg11", seed=0)
    torch_prune.l1_unstructured(vgg.classifier, "weight", 0.5)  # the output layer, which the reference keeps dense
    with pytest.raises(MaskError, match="'classifier.weight' is pruned.*cifar_vgg11 tickets leave it dense"):
        Ticket.from_model(vgg)


def test_from_model_with_zeros_in_its_weights() -> None:
    model = build_model("cifar_resnet8", seed=3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() > 1:
                p.mul_((torch.rand(p.shape, generator=torch.Generator().manual_seed(1)) > 0.6).float())
    ticket = Ticket.from_model(model, masks="nonzero")
    for name, mask in ticket.masks.items():
        assert torch.equal(mask, model.state_dict()[name] != 0), name
    assert ticket.sparsity == pytest.approx(0.6, abs=0.02)
    assert Ticket.from_model(model).sparsity == 0.0  # zeros are weights unless asked: all-ones masks
    with pytest.raises(ValueError, match="'nonzero'"):
        Ticket.from_model(model, masks="nonzeros")


def test_architecture_aliases_typos_and_globs(cli) -> None:
    import timm

    for alias, arch in (("ResNet50", "timm/resnet50"), ("resnet-50", "timm/resnet50"), ("resnet_50", "timm/resnet50"),
                        ("torchvision/ResNet-50", "torchvision/resnet50"), ("VGG16-BN", "timm/vgg16_bn"),
                        ("vgg16bn", "timm/vgg16_bn"), ("CIFAR-ResNet-20", "cifar_resnet20"),
                        ("cifar_resnet-3-3-3", "cifar_resnet20"), ("Timm/resnet_basic-2-3-4-3",
                                                                   "timm/resnet_basic-2-3-4-3")):
        assert get_arch(alias).id == arch, alias
    with pytest.raises(UnknownArchError, match=r"unknown architecture 'resnt50'; did you mean resnet50\?"):
        get_arch("resnt50")
    with pytest.raises(UnknownArchError, match=r"did you mean torchvision/vgg16_bn\?"):
        get_arch("torchvision/vgg16_bm")
    with pytest.raises(UnknownArchError, match=r"unknown library 'tim'.*did you mean timm/resnet50\?"):
        get_arch("tim/resnet50")
    one_line_error(cli("new", "resnt50", "-o", "never-written.ticket"), "did you mean resnet50?")
    assert not Path("never-written.ticket").exists()

    # `ticket models PATTERN` filters like timm.list_models: with or without the library prefix.
    def ids(pattern: str) -> list[str]:
        res = cli("models", pattern, "--json")
        assert res.code == 0, res.stderr
        return [r["id"] for r in json.loads(res.stdout)]

    resnets = ids("resnet*")
    assert "timm/resnet50" in resnets and "torchvision/resnet50" in resnets
    assert all(i.split("/", 1)[1].startswith("resnet") for i in resnets)  # no cifar_resnet, no vgg
    assert {i.split("/")[1] for i in resnets if i.startswith("timm/") and "-" not in i} <= set(timm.list_models("resnet*"))
    assert ids("torchvision/*") and all(i.startswith("torchvision/") for i in ids("torchvision/*"))
    assert set(ids("*_bn")) == {i for i in ids("*") if i.endswith("_bn")} and ids("ResNet-50") == ["timm/resnet50",
                                                                                               "torchvision/resnet50"]
    res = cli("models", "resnt50")
    assert res.code == 0 and "no architecture of the zoo matches 'resnt50'; did you mean resnet50" in res.stderr


# -- in: `ticket new --weights FILE` / `--pretrained` --------------------------------------------------------
def test_new_from_a_state_dict_file(cli, tmp_path: Path) -> None:
    import torchvision
    from safetensors.torch import save_file

    model = torchvision.models.resnet18(num_classes=10)
    weights = tmp_path / "resnet18.safetensors"
    save_file(model.state_dict(), weights)
    out = tmp_path / "r18.ticket"
    res = cli("new", "torchvision/resnet18", "--weights", weights, "-o", out)
    assert res.code == 0, res.stderr
    ticket = Ticket.load(out)
    assert (ticket.arch, ticket.num_classes, ticket.sparsity) == ("torchvision/resnet18", 10, 0.0)  # classes: the file's
    assert all(torch.equal(ticket.init[k], v) for k, v in model.state_dict().items())
    from ticketfmt.format.tensors import sha256_file
    assert ticket.provenance["source"] == {"file": "resnet18.safetensors", "sha256": sha256_file(weights)}
    assert ticket.provenance["method"] == "init" and ticket.provenance["level"] == 0

    # A state dict of another architecture: one line naming the tensor and the architecture it does fit.
    one_line_error(cli("new", "cifar_resnet20", "--weights", weights, "-o", tmp_path / "x.ticket"),
                   "is not a cifar_resnet20", "timm/resnet18 or torchvision/resnet18", "ticket new timm/resnet18")
    one_line_error(cli("new", "torchvision/resnet18", "--weights", weights, "--num-classes", "100", "-o",
                       tmp_path / "x.ticket"), "'fc.weight' has shape [10, 512]")
    pickle = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), pickle)
    one_line_error(cli("new", "torchvision/resnet18", "--weights", pickle, "-o", tmp_path / "x.ticket"),
                   "not a safetensors state dict", "safetensors.torch.save_file")
    one_line_error(cli("new", "torchvision/resnet18", "--masks", "nonzero", "-o", tmp_path / "x.ticket"),
                   "--weights or --pretrained")
    assert not (tmp_path / "x.ticket").exists()

    # Zeros in the file's weights become masks on request.
    with torch.no_grad():
        model.fc.weight[:, :256] = 0
    save_file(model.state_dict(), weights)
    res = cli("new", "torchvision/resnet18", "--weights", weights, "--masks", "nonzero", "-o", tmp_path / "nz.ticket")
    assert res.code == 0, res.stderr
    assert Ticket.load(tmp_path / "nz.ticket").masks["fc.weight"].float().mean() == 0.5


def _serve_timm_weights(hub, arch: str, num_classes: int = 1000, seed: int = 0) -> tuple[str, dict]:
    """Put random weights of a timm model where timm's pretrained loader looks: <hf_hub_id>/model.safetensors."""
    import timm
    from safetensors.torch import save

    repo = timm.models.get_pretrained_cfg(arch).hf_hub_id
    torch.manual_seed(seed)
    state = timm.create_model(arch, num_classes=num_classes).state_dict()
    state = {k: v + 0.5 if v.is_floating_point() else v for k, v in state.items()}  # not what a fresh init gives
    hub.put_files(repo, {"model.safetensors": save({k: v.contiguous() for k, v in state.items()})})
    return repo, state


def test_new_pretrained_through_timms_own_loader(hub, cli, tmp_path: Path) -> None:
    from ticketfmt.cards import base_model_of

    repo, state = _serve_timm_weights(hub, "resnet18")
    assert repo == "timm/resnet18.a1_in1k"
    out = tmp_path / "r18.ticket"
    res = cli("new", "ResNet-18", "--pretrained", "-o", out)
    assert res.code == 0, res.stderr
    assert f"from {repo}" in res.stderr
    ticket = Ticket.load(out)
    assert ticket.arch == "timm/resnet18" and ticket.num_classes == 1000
    assert all(torch.equal(ticket.init[k], v) for k, v in state.items())  # what the (test) Hub served
    source = ticket.provenance["source"]
    assert source == {"library": "timm", "model": "resnet18", "repo_id": repo, "tag": "a1_in1k",
                      "pretrained_classes": 1000}
    assert base_model_of(ticket) == repo

    # Another number of classes: timm keeps the body and leaves a fresh (seeded) classifier.
    small = tmp_path / "r18-10.ticket"
    assert cli("new", "resnet18", "--pretrained", "--num-classes", "10", "--seed", "4", "-o", small).code == 0
    t10 = Ticket.load(small)
    assert t10.num_classes == 10 and torch.equal(t10.init["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    assert not torch.equal(t10.init["fc.weight"], state["fc.weight"][:10])

    # Nothing served for resnet34: one line, nothing written; an id without pretrained weights too.
    one_line_error(cli("new", "resnet34", "--pretrained", "-o", tmp_path / "x.ticket"),
                   "timm could not load the pretrained weights of resnet34", "--weights FILE")
    one_line_error(cli("new", "resnet_basic-2-3-4-3", "--pretrained", "-o", tmp_path / "x.ticket"),
                   "has no pretrained weights")
    one_line_error(cli("new", "resnet18", "--pretrained", "--weights", out, "-o", tmp_path / "x.ticket"),
                   "--weights or --pretrained, not both")
    assert not (tmp_path / "x.ticket").exists()


def test_new_pretrained_through_torchvisions_own_loader(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    # torchvision looks in $TORCH_HOME/hub/checkpoints before downloading: a local file stands in for the download.
    weights = torchvision.models.get_model_weights("resnet18").DEFAULT
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    cache = tmp_path / "torch-home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(5)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, cache / weights.url.rsplit("/", 1)[1])
    out = tmp_path / "tv.ticket"
    res = cli("new", "torchvision/resnet18", "--pretrained", "-o", out)
    assert res.code == 0, res.stderr
    ticket = Ticket.load(out)
    assert ticket.arch == "torchvision/resnet18"
    assert all(torch.equal(ticket.init[k], v) for k, v in state.items())
    assert ticket.provenance["source"] == {"library": "torchvision", "model": "resnet18", "weights": str(weights),
                                           "url": weights.url}
    one_line_error(cli("new", "torchvision/resnet18", "--pretrained", "--num-classes", "10", "-o", tmp_path / "x"),
                   "1000 classes")
