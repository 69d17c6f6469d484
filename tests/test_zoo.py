"""The model zoo: ids, name grammar, builds, initialization, prunable parameters per format version, units."""

from __future__ import annotations

import pytest
import torch

from ticketfmt.errors import UnknownArchError
from ticketfmt.format.spec import FORMAT_VERSION
from ticketfmt.zoo import (FAMILIES, ArchSpec, Family, build_model, format_version_for, get_arch, iter_units,
                           list_archs, prunable_names, register_family, state_dict_shapes, unregister_family)

SMALL = ["cifar_resnet20", "cifar_resnet8", "cifar_vgg11", "timm/resnet_basic-1-1-1-1",
         "torchvision/resnet_bottleneck-1-1-1-1", "timm/vgg_bn-1-1-1-1-1", "torchvision/vgg-1-1-1-1-1"]


@pytest.mark.parametrize("spec", list_archs(), ids=lambda s: s.id)
def test_every_zoo_entry_has_consistent_layout(spec) -> None:
    shapes = state_dict_shapes(spec)
    prunable = prunable_names(spec)
    assert prunable and all(k in shapes and len(shapes[k]) in (2, 4) for k in prunable)
    assert get_arch(spec.id) == spec  # ids are stable and canonical
    covered: set[str] = set()
    for stage, index, prefixes in iter_units(spec):
        keys = {k for k in shapes if k.startswith(prefixes)}
        assert keys, (stage, index)
        assert not keys & covered
        assert {spec.stage_of(k) for k in keys} == {f"stage{stage + 1}"}
        covered |= keys
    # Everything outside the units is the stem or the head.
    assert {spec.stage_of(k) for k in shapes if k not in covered} <= {"stem", "head"}
    if spec.family == "cifar_vgg":
        assert all(k.startswith("features.") for k in prunable)  # its classifier is the output layer: dense
    elif spec.family == "vgg":  # the hidden classifier layers are pruned (format 1.1), the output layer is not
        hidden = ["pre_logits.fc1.weight", "pre_logits.fc2.weight"] if spec.library == "timm" else \
            ["classifier.0.weight", "classifier.3.weight"]
        assert prunable[-2:] == hidden and all(k.startswith("features.") for k in prunable[:-2])
        assert prunable_names(spec, version="1.0") == prunable[:-2]
    elif spec.family in ("vit", "cifar_vit", "convnext"):  # staged families: stem and head dense, blocks pruned
        assert all(spec.stage_of(k).startswith("stage") for k in prunable)
    elif spec.family in ("cifar_vggnfc", "mnist_lenet"):  # the reference ignores fc.weight: the output layer is dense
        assert "fc.weight" in shapes and "fc.weight" not in prunable
    else:
        assert prunable[-1] == "fc.weight"
    assert prunable_names(spec, version=FORMAT_VERSION) == prunable


@pytest.mark.parametrize("arch", SMALL)
def test_small_models_build_and_run(arch: str) -> None:
    spec = get_arch(arch, num_classes=7)
    model = build_model(spec, seed=0).eval()
    size = 32 if spec.input_size[1] == 32 else 64
    with torch.no_grad():
        assert model(torch.zeros(1, 3, size, size)).shape == (1, 7)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == state_dict_shapes(spec)


def test_builds_are_seeded() -> None:
    a, b = build_model("cifar_resnet8", seed=3), build_model("cifar_resnet8", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = build_model("cifar_resnet8", seed=4)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


@pytest.mark.parametrize("name, family, block, stages, library", [
    ("cifar_resnet56", "cifar_resnet", "basic", (9, 9, 9), "builtin"),
    ("cifar_resnet110", "cifar_resnet", "basic", (18, 18, 18), "builtin"),
    ("resnet50", "resnet", "bottleneck", (3, 4, 6, 3), "timm"),
    ("timm/resnet101", "resnet", "bottleneck", (3, 4, 23, 3), "timm"),
    ("torchvision/resnet18", "resnet", "basic", (2, 2, 2, 2), "torchvision"),
    ("resnet_basic-2-3-4-3", "resnet", "basic", (2, 3, 4, 3), "timm"),
    ("vgg16_bn", "vgg", "conv_bn", (2, 2, 3, 3, 3), "timm"),
    ("torchvision/vgg11", "vgg", "conv", (1, 1, 2, 2, 2), "torchvision"),
    ("cifar_vgg19", "cifar_vgg", "conv_bn", (2, 2, 4, 4, 4), "builtin"),
])
def test_name_grammar(name, family, block, stages, library) -> None:
    spec = get_arch(name)
    assert (spec.family, spec.block, spec.stages, spec.library) == (family, block, stages, library)


def test_named_depths_match_their_ids() -> None:
    assert get_arch("cifar_resnet-3-3-3").id == "cifar_resnet20"
    assert get_arch("resnet_bottleneck-3-4-6-3").id == "timm/resnet50"
    assert get_arch("torchvision/resnet_basic-2-2-2-2").id == "torchvision/resnet18"
    assert get_arch("resnet50").depth == 50 and get_arch("cifar_resnet56").depth == 56
    assert get_arch("vgg19").depth == 19


@pytest.mark.parametrize("bad, match", [
    ("cifar_resnet21", "6n\\+2.*cifar_resnet20"),
    ("resnet51", "unknown ResNet depth 51"),
    ("vgg12", "unknown VGG depth"),
    ("foo/resnet50", "unknown library"),
    ("torchvision/cifar_resnet20", "not available from torchvision"),
    ("mobilenet", "unknown architecture.*ticket models"),
    ("resnet_basic-2-2", "4 stages"),
])
def test_bad_ids_give_one_line_errors(bad: str, match: str) -> None:
    with pytest.raises(UnknownArchError, match=match) as info:
        get_arch(bad)
    assert "\n" not in str(info.value)


def test_list_archs_is_unchanged_by_the_split() -> None:
    ids = [s.id for s in list_archs() if s.family in ("cifar_resnet", "resnet", "vgg", "cifar_vgg")]
    assert ids[:5] == [f"cifar_resnet{d}" for d in (20, 32, 44, 56, 110)]
    assert ids[-4:] == [f"cifar_vgg{d}" for d in (11, 13, 16, 19)]
    assert len(ids) == 5 + 11 + 16 + 4 and len(set(ids)) == len(ids)


# -- initialization: the reference's (open_lth: kaiming_normal + uniform BatchNorm) -----------------------------

def _fan_in_std(w: torch.Tensor) -> float:
    return (2.0 / w[0].numel()) ** 0.5  # kaiming_normal_, fan_in, gain sqrt(2)


def _assert_reference_stats(model: torch.nn.Module) -> None:
    """Every Conv2d/Linear weight ~ N(0, 2/fan_in); every BatchNorm γ ~ U(0, 1), β = 0."""
    gammas = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear) and m.weight.numel() >= 2000:
            w = m.weight.detach().double()
            assert float(w.std()) == pytest.approx(_fan_in_std(w), rel=0.1), name
            assert abs(float(w.mean())) < 0.1 * _fan_in_std(w), name
        elif isinstance(m, torch.nn.BatchNorm2d):
            gamma = m.weight.detach()
            assert float(gamma.min()) >= 0 and float(gamma.max()) < 1, name
            assert bool((m.bias == 0).all()), name
            gammas.append(gamma.reshape(-1))
    g = torch.cat(gammas).double()
    assert float(g.mean()) == pytest.approx(0.5, abs=0.05) and float(g.std()) == pytest.approx(12 ** -0.5, abs=0.05)


@torch.no_grad()
def test_reference_init_cifar_resnet() -> None:
    model = build_model("cifar_resnet20", seed=0)
    _assert_reference_stats(model)
    # fc included (the reference applies kaiming_normal to every Linear); its bias is PyTorch's default.
    assert float(model.fc.weight.std()) == pytest.approx(_fan_in_std(model.fc.weight), rel=0.15)
    bound = 64 ** -0.5
    assert 0 < float(model.fc.bias.abs().max()) <= bound


@torch.no_grad()
def test_reference_init_cifar_vgg_keeps_default_conv_bias() -> None:
    model = build_model("cifar_vgg11", seed=0)
    _assert_reference_stats(model)
    for m in model.features:
        if isinstance(m, torch.nn.Conv2d):  # PyTorch's default bias, U(-1/sqrt(fan_in), 1/sqrt(fan_in)): not zero
            bound = m.weight[0].numel() ** -0.5
            assert bool((m.bias != 0).all()) and float(m.bias.abs().max()) <= bound
    w = model.classifier.weight
    assert float(w.std()) == pytest.approx(_fan_in_std(w), rel=0.1)  # fc: kaiming normal, not nn.Linear's default


# open_lth's own models, built after torch.manual_seed(0) (models.registry.get with model_init=kaiming_normal,
# batchnorm_init=uniform, run unmodified on torch 2.14): sums of a few tensors. build_model(seed=0) reproduces the
# whole state dict bit for bit (checked tensor by tensor, also for imagenet_resnet_18/50 = torchvision/resnet18/50).
REFERENCE_SUMS = {
    "cifar_resnet20": {"conv1.weight": -3.237235901528038, "bn1.weight": 7.923908710479736,
                       "layer3.2.conv2.weight": -4.871341859490599, "fc.weight": -0.17611574924376328,
                       "fc.bias": 0.14029836654663086},
    "cifar_vgg11": {"features.0.weight": 10.203466042759828, "features.0.bias": 0.22076681395992637,
                    "features.1.weight": 32.748767256736755, "classifier.weight": 1.8052020002633071,
                    "classifier.bias": -0.13144347333582118},
}


@pytest.mark.parametrize("arch", sorted(REFERENCE_SUMS))
def test_reference_init_reproduces_open_lth_models(arch: str) -> None:
    sd = build_model(arch, seed=0).state_dict()
    for key, want in REFERENCE_SUMS[arch].items():
        assert float(sd[key].double().sum()) == pytest.approx(want, rel=1e-9, abs=1e-9), key


@torch.no_grad()
def test_reference_init_over_timm_resnet_drops_zero_init_last() -> None:
    arch = "timm/resnet_basic-1-1-1-1"
    library = build_model(arch, seed=0, init="library")
    assert all(bool((getattr(library, f"layer{s}")[0].bn2.weight == 0).all()) for s in range(1, 5))  # timm's
    model = build_model(arch, seed=0)
    _assert_reference_stats(model)
    assert all(float(getattr(model, f"layer{s}")[0].bn2.weight.min()) > 0 for s in range(1, 5))
    assert float(model.fc.weight.std()) == pytest.approx(_fan_in_std(model.fc.weight), rel=0.1)


@torch.no_grad()
def test_reference_init_over_torchvision_vgg() -> None:
    model = build_model("torchvision/vgg_bn-1-1-1-1-1", num_classes=10, seed=0)
    _assert_reference_stats(model)
    for i in (0, 3, 6):  # hidden layers and the output layer: kaiming normal; biases keep torchvision's zeros
        layer = model.classifier[i]
        assert float(layer.weight.std()) == pytest.approx(_fan_in_std(layer.weight), rel=0.1), i
        assert bool((layer.bias == 0).all())


@torch.no_grad()
def test_library_init_is_the_historic_one() -> None:
    model = build_model("cifar_resnet20", seed=0, init="library")
    stem = model.conv1.weight  # fan_out init: N(0, 2 / (16 * 9)), not 2 / fan_in = 2 / 27
    assert float(stem.std()) == pytest.approx((2 / stem[:, 0].numel()) ** 0.5, rel=0.15)
    assert bool((model.bn1.weight == 1).all())  # nn.BatchNorm2d's default
    vgg = build_model("cifar_vgg11", seed=0, init="library")
    assert bool((vgg.features[0].bias == 0).all()) and bool((vgg.features[1].weight == 1).all())


def test_unknown_init_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown init 'torchvision'.*'reference'.*'library'"):
        build_model("cifar_resnet8", init="torchvision")


# -- prunable sets per format version ----------------------------------------------------------------------------

def test_format_version_for_masked_sets() -> None:
    r8, vgg = get_arch("cifar_resnet8"), get_arch("torchvision/vgg11_bn")
    assert format_version_for(r8, prunable_names(r8)) == "1.0"  # unchanged since 1.0: files stay readable by 1.0
    assert format_version_for(vgg, prunable_names(vgg)) == "1.1"
    assert format_version_for(vgg, prunable_names(vgg, version="1.0")) == "1.0"
    assert format_version_for(vgg, ["features.0.weight"]) == FORMAT_VERSION  # matches no version: the current one


# -- the registry: a leaf, filled on import, raises on duplicates; a toy family from a test -------------------------

class ToyFamily(Family):
    """One stage of ``n`` linear units: ``toy-N``."""

    name = "toy"
    libraries = ("builtin",)
    default_classes = 3
    input_size = (3, 2, 2)

    def parse(self, name: str, library: str) -> ArchSpec | None:
        return self.make(library, "linear", (int(name[4:]),)) if name.startswith("toy-") else None

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        return f"toy-{stages[0]}"

    def depth(self, spec: ArchSpec) -> int:
        return spec.stages[0] + 1

    def build(self, spec: ArchSpec) -> torch.nn.Module:
        units = [torch.nn.Linear(12, 12) for _ in range(spec.stages[0])]
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Sequential(*units), torch.nn.Linear(12, spec.num_classes))

    def constructor(self, spec: ArchSpec) -> dict[str, object]:
        return {"class": "test_zoo.ToyFamily", "units": spec.stages[0]}

    def unit_prefixes(self, spec: ArchSpec, stage: int, index: int) -> tuple[str, ...]:
        return (f"1.{index}.",)


def test_a_family_is_one_module_and_one_registration() -> None:
    family = register_family(ToyFamily())
    try:
        spec = get_arch("toy-2", num_classes=5)
        assert (spec.id, spec.depth, spec.family_obj) == ("toy-2", 3, family)
        assert prunable_names(spec) == ["1.0.weight", "1.1.weight", "2.weight"]
        model = build_model(spec, seed=0)
        assert model(torch.zeros(4, 3, 2, 2)).shape == (4, 5)
        assert float(model[2].weight.detach().std()) == pytest.approx(_fan_in_std(model[2].weight), rel=0.5)
        with pytest.raises(ValueError, match="'toy' is registered already"):
            register_family(ToyFamily())
    finally:
        unregister_family("toy")
    assert "toy" not in FAMILIES


def test_builtin_families_are_registered_on_import() -> None:
    assert list(FAMILIES)[:4] == ["cifar_resnet", "resnet", "vgg", "cifar_vgg"]
    assert {"vit", "cifar_vit", "convnext"} <= set(FAMILIES)  # the staged families (tests/test_vit.py)
    with pytest.raises(ValueError, match="registered already"):
        register_family(type(FAMILIES["vgg"])())
