"""Elastic conversion (`converters`, `ticket convert`): the doc's mappings reproduced exactly, round trips,
forward passes in timm/torchvision/builtin models, cross-library copies, every error case, the controls.

Tickets are made from state-dict shapes with random tensors (no model building), so even
ImageNet ResNets are cheap; BatchNorm parameters and buffers are random too, so a unit
copied from the wrong place is caught.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from ticketfmt.converters import (DEPTH_GAP_RATIO, STRETCH_STRATEGIES, apply_plan, convert, format_stage, invert,
                        parse_stage, plan_conversion)
from ticketfmt.converters.files import PackedSource, write_converted
from ticketfmt.converters.mapping import strategy_stage, validate_stage
from ticketfmt import Ticket
from ticketfmt.errors import ConversionError, TicketError, TicketFormatError
from ticketfmt.pruning import prune
from ticketfmt.zoo import get_arch, prunable_names, state_dict_shapes


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These tests run many small tensor ops: one intra-op thread avoids OpenMP overhead on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- helpers ---------------------------------------------------------------------------------------
def random_ticket(arch: str, density: float = 0.3, seed: int = 0, num_classes: int | None = None,
                  trained: bool = False) -> Ticket:
    """A ticket with random masks, weights, BN parameters and buffers (no model is built)."""
    spec = get_arch(arch, num_classes)
    g = torch.Generator().manual_seed(seed)
    init: dict[str, torch.Tensor] = {}
    for k, shape in state_dict_shapes(spec).items():
        if k.endswith("num_batches_tracked"):
            init[k] = torch.randint(0, 10_000, shape, generator=g)
        elif k.endswith("running_var"):
            init[k] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) >= 2:
            bound = math.sqrt(3 / math.prod(shape[1:]))
            init[k] = torch.empty(shape).uniform_(-bound, bound, generator=g)
        else:
            init[k] = torch.empty(shape).uniform_(0.5 if k.endswith("weight") else -0.1, 1.0, generator=g)
    masks = {k: torch.empty(init[k].shape).uniform_(generator=g) < density for k in prunable_names(spec)}
    tr = {k: v * 2 if v.is_floating_point() else v.clone() for k, v in init.items()} if trained else None
    return Ticket(spec, masks, init, tr, provenance={"method": "random-test", "seed": seed})


def tgt_to_src(stage: str) -> list[int]:
    """An independent reading of a reference-code stage string: the source unit of each target unit."""
    d: dict[int, int] = {}
    for entry in stage.split(";"):
        s, ts = entry.split(":")
        for t in ts.split(","):
            assert int(t) not in d
            d[int(t)] = int(s)
    assert sorted(d) == list(range(len(d)))
    return [d[j] for j in range(len(d))]


def assert_copied(src: Ticket, tgt: Ticket, stages: list[str]) -> set[str]:
    """Every target unit holds exactly the mask and init of its source unit; everything else one to one."""
    covered: set[str] = set()
    for s, text in enumerate(stages):
        m = tgt_to_src(text)
        assert len(m) == tgt.spec.stages[s]
        for j, i in enumerate(m):
            for tp, sp in zip(tgt.spec.unit_prefixes(s, j), src.spec.unit_prefixes(s, i), strict=True):
                keys = [k for k in tgt.init if k.startswith(tp)]
                assert keys, tp
                for k in keys:
                    sk = sp + k[len(tp):]
                    assert torch.equal(tgt.init[k], src.init[sk]), (k, sk)
                    if k in tgt.masks:
                        assert torch.equal(tgt.masks[k], src.masks[sk]), (k, sk)
                    covered.add(k)
    rest = [k for k in tgt.init if k not in covered]
    assert rest, "stem/classifier keys exist"
    for k in rest:  # stem and classifier: one to one
        assert torch.equal(tgt.init[k], src.init[k]), k
        if k in tgt.masks:
            assert torch.equal(tgt.masks[k], src.masks[k]), k
    for suffix in ("running_mean", "running_var", "num_batches_tracked"):
        assert any(k.endswith(suffix) for k in covered), suffix
    return covered


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the doc's table, reproduced exactly ---------------------------------------------------------------
DOC_TABLE = [
    ("cifar_resnet20", "cifar_resnet32", "0:0;1:1,2;2:3,4", "interpolate"),
    ("cifar_resnet20", "cifar_resnet32", "0:0;1:1,3;2:2,4", "append"),
    ("cifar_resnet20", "cifar_resnet56", "0:0;1:1,2,3,4;2:5,6,7,8", "interpolate"),
    ("cifar_resnet32", "cifar_resnet56", "0:0;1:1,2;2:3,4;3:5,6;4:7,8", "interpolate"),
    ("cifar_resnet56", "cifar_resnet32", "0:0;1:1;3:2;5:3;7:4", "spread"),
    ("cifar_resnet32", "cifar_resnet20", "0:0;1:1;3:2", "spread"),
    ("timm/resnet18", "resnet34", "0:0;1:1,2|0:0;1:1,2,3|0:0;1:1,2,3,4,5|0:0;1:1,2", "interpolate"),
    ("timm/resnet34", "resnet18", "0:0;1:1|0:0;1:1|0:0;1:1|0:0;1:1", "spread"),
    ("cifar_vgg16", "cifar_vgg19", "0:0;1:1|0:0;1:1|0:0;1:1,2;2:3|0:0;1:1,2;2:3|0:0;1:1,2;2:3", "interpolate"),
    # The paper's harmful squeeze (drops ResNet-56's first four blocks) is the `last` strategy.
    ("cifar_resnet56", "cifar_resnet32", "0:0;5:1;6:2;7:3;8:4", "last"),
]


@pytest.fixture(scope="module")
def sources() -> dict[str, Ticket]:
    return {a: random_ticket(a, seed=i) for i, a in enumerate(sorted({row[0] for row in DOC_TABLE}))}


@pytest.mark.parametrize("src_arch,tgt_arch,mapping,strategy", DOC_TABLE,
                         ids=[f"{r[0]}->{r[1]}-{r[3]}" for r in DOC_TABLE])
def test_doc_table_mapping_reproduced(sources, src_arch, tgt_arch, mapping, strategy) -> None:
    src = sources[src_arch]
    stages = mapping.split("|") * (3 if "|" not in mapping else 1)
    # The strategy generates exactly the published string ...
    plan = plan_conversion(src, tgt_arch, strategy=strategy)
    assert plan.mappings == stages
    assert plan.mapping == mapping
    # ... and the string, given verbatim, copies every unit from where it says.
    out = convert(src, tgt_arch, mapping=mapping)
    assert out.arch == get_arch(tgt_arch).id
    assert out.provenance["mappings"] == stages and out.provenance["strategy"] == "mapping"
    assert_copied(src, out, stages)
    assert torch.equal(out.masks[prunable_names(out.spec)[0]], src.masks[prunable_names(src.spec)[0]])
    # The strategy's plan copies every tensor from the same place as the verbatim mapping.
    assert plan_conversion(src, tgt_arch, mapping=mapping).key_map == plan.key_map


def test_default_strategies_are_interpolate_and_spread(sources) -> None:
    assert plan_conversion("cifar_resnet20", "cifar_resnet32").mappings[0] == "0:0;1:1,2;2:3,4"
    assert plan_conversion("cifar_resnet56", "cifar_resnet32").mappings[0] == "0:0;1:1;3:2;5:3;7:4"
    assert plan_conversion("cifar_resnet20", "cifar_resnet32").strategy == "interpolate"
    assert plan_conversion("cifar_resnet56", "cifar_resnet32").strategy == "spread"
    # Same depth: an identity copy.
    same = convert(sources["cifar_resnet20"], "cifar_resnet20")
    assert all(torch.equal(same.init[k], v) for k, v in sources["cifar_resnet20"].init.items())
    assert same.provenance["strategy"] == "identity"


def test_strategy_tables() -> None:
    f = lambda s, a, b: format_stage(strategy_stage(s, a, b))  # noqa: E731
    assert f("interpolate", 3, 4) == "0:0;1:1,2;2:3"  # extra copies go to the earliest block
    assert f("append", 3, 6) == "0:0;1:1,3,5;2:2,4"
    assert f("first", 3, 5) == "0:0;1:1,2,3;2:4"
    assert f("last", 3, 5) == "0:0;1:1;2:2,3,4"
    assert f("first", 9, 5) == "0:0;1:1;2:2;3:3;4:4"
    assert f("spread", 9, 4) == "0:0;1:1;3:2;6:3"
    assert f("spread", 9, 1) == "0:0"
    assert f("interpolate", 1, 1) == "0:0"
    for text, n_src, n_tgt in (("0:0;1:1,2;2:3,4", 3, 5), ("0:0;1:1,3;2:2,4", 3, 5), ("0:0;5:1;6:2;7:3;8:4", 9, 5)):
        assert format_stage(validate_stage(parse_stage(text), n_src, n_tgt)) == text
    assert parse_stage(" 0 : 0 ; 1 : 1 , 2 ") == {0: [0], 1: [1, 2]}  # int() in the reference tolerates spaces


def test_stem_classifier_and_block0_one_to_one(sources) -> None:
    src = sources["timm/resnet18"]
    out = convert(src, "resnet34")
    for k in ("conv1.weight", "bn1.running_var", "fc.weight", "fc.bias", "layer2.0.downsample.0.weight",
              "layer3.0.downsample.1.num_batches_tracked", "layer4.0.conv1.weight"):
        assert torch.equal(out.init[k], src.init[k]), k
    assert torch.equal(out.masks["fc.weight"], src.masks["fc.weight"])
    assert out.stage_sparsity()["stem"] == src.stage_sparsity()["stem"]
    assert out.stage_sparsity()["head"] == src.stage_sparsity()["head"]


def test_imagenet_bottleneck_resnet50_to_101() -> None:
    plan = plan_conversion("timm/resnet50", "resnet101")
    assert plan.target.id == "timm/resnet101" and plan.target.stages == (3, 4, 23, 3)
    assert plan.mappings[2] == "0:0;1:1,2,3,4,5;2:6,7,8,9,10;3:11,12,13,14;4:15,16,17,18;5:19,20,21,22"
    pairs = {t: s for t, s, _ in plan.key_map}
    assert pairs["layer3.22.bn3.running_var"] == "layer3.5.bn3.running_var"
    assert pairs["layer3.0.downsample.0.weight"] == "layer3.0.downsample.0.weight"
    assert pairs["fc.weight"] == "fc.weight" and pairs["conv1.weight"] == "conv1.weight"
    assert len(pairs) == len(state_dict_shapes(plan.target))
    cross = plan_conversion("timm/resnet50", "torchvision/resnet101")
    assert cross.target.id == "torchvision/resnet101" and cross.mappings == plan.mappings
    # The tensors, on a smaller Bottleneck ResNet (the same code path).
    src = random_ticket("timm/resnet_bottleneck-1-2-3-1", density=0.11, num_classes=10)
    out = convert(src, "resnet_bottleneck-1-3-6-1")
    assert out.arch == "timm/resnet_bottleneck-1-3-6-1"
    assert_copied(src, out, out.provenance["mappings"])


# -- round trips ---------------------------------------------------------------------------------------
@st.composite
def stretch_case(draw):
    src = tuple(draw(st.integers(1, 4)) for _ in range(3))
    tgt = tuple(a if a == 1 else a + draw(st.integers(0, 4)) for a in src)
    maps = []
    for a, b in zip(src, tgt):
        if draw(st.booleans()):
            rest = list(range(1, a)) + [draw(st.integers(1, a - 1)) for _ in range(b - a)] if a > 1 else []
            maps.append((0,) + tuple(draw(st.permutations(rest))))
        else:
            maps.append(strategy_stage(draw(st.sampled_from(STRETCH_STRATEGIES)), a, b))
    return src, tgt, maps, draw(st.integers(0, 2**16))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stretch_case())
def test_stretch_then_inverse_squeeze_is_identity(case) -> None:
    src_stages, tgt_stages, maps, seed = case
    arch = "cifar_resnet-" + "-".join(map(str, src_stages))
    src = random_ticket(arch, seed=seed)
    stretched = convert(src, "cifar_resnet-" + "-".join(map(str, tgt_stages)),
                        mapping="|".join(format_stage(m) for m in maps))
    assert_copied(src, stretched, [format_stage(m) for m in maps])
    back = convert(stretched, arch, mapping="|".join(format_stage(m) for m in invert(maps)))
    assert back.arch == src.arch
    assert back.init.keys() == src.init.keys() and back.masks.keys() == src.masks.keys()
    for k, v in src.init.items():
        assert v.dtype == back.init[k].dtype and torch.equal(v, back.init[k]), k
    for k, m in src.masks.items():
        assert torch.equal(m, back.masks[k]), k


def test_imagenet_round_trip_mixed_stage_counts() -> None:
    src = random_ticket("torchvision/resnet_basic-2-3-4-1", seed=5, num_classes=10)
    up = convert(src, "resnet_basic-3-4-6-1")
    assert up.arch == "torchvision/resnet_basic-3-4-6-1"  # the library follows the source
    back = convert(up, src.spec.name, mapping="|".join(format_stage(m) for m in invert(
        [tuple(tgt_to_src(s)) for s in up.provenance["mappings"]])))
    assert back.arch == src.arch
    assert all(torch.equal(v, back.init[k]) for k, v in src.init.items())
    assert all(torch.equal(v, back.masks[k]) for k, v in src.masks.items())


# -- forward passes ------------------------------------------------------------------------------------
def _forward(ticket: Ticket, size: int) -> torch.Tensor:
    model = ticket.build_model().eval()
    assert type(model).__module__.split(".")[0] == {"timm": "timm", "torchvision": "torchvision"}.get(
        ticket.spec.library, "ticketfmt")
    with torch.no_grad():
        y = model(torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (2, ticket.num_classes) and torch.isfinite(y).all()
    return y


def test_forward_cifar_resnet_and_cifar_vgg(sources) -> None:
    _forward(convert(sources["cifar_resnet20"], "cifar_resnet32"), 32)
    _forward(convert(sources["cifar_resnet56"], "cifar_resnet20"), 32)
    _forward(convert(random_ticket("cifar_vgg13", seed=3), "cifar_vgg-2-2-3-2-1"), 32)  # mixed: some stages grow


def test_forward_imagenet_resnets_both_libraries_and_cross_library_equal() -> None:
    src = random_ticket("timm/resnet_bottleneck-1-1-3-1", seed=1, num_classes=10)
    timm_out = convert(src, "timm/resnet_bottleneck-1-1-2-1")
    tv_out = convert(src, "torchvision/resnet_bottleneck-1-1-2-1")
    # Same keys in both libraries: the same tensors, and the same function.
    assert all(torch.equal(timm_out.init[k], tv_out.init[k]) for k in timm_out.init)
    y_timm, y_tv = _forward(timm_out, 64), _forward(tv_out, 64)
    torch.testing.assert_close(y_timm, y_tv, rtol=1e-4, atol=1e-5)
    basic = convert(random_ticket("torchvision/resnet_basic-2-1-2-1", seed=2, num_classes=10), "resnet_basic-3-1-3-1")
    assert basic.arch == "torchvision/resnet_basic-3-1-3-1"
    _forward(basic, 64)


def test_imagenet_vgg_timm_to_torchvision_same_function() -> None:
    """vgg11 once (its classifier alone is 120M parameters): the models are built on the meta device and
    the tickets' tensors assigned, which skips two slow random initializations."""
    from ticketfmt.zoo import build_model

    def forward(ticket: Ticket) -> torch.Tensor:
        with torch.device("meta"):
            model = build_model(ticket.spec)
        model.load_state_dict(ticket.init, strict=True, assign=True)
        with torch.no_grad():
            y = model.eval()(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
        assert y.shape == (2, ticket.num_classes) and torch.isfinite(y).all()
        return y

    src = random_ticket("timm/vgg11", seed=4, num_classes=10)
    out = convert(src, "torchvision/vgg11")
    assert out.init["classifier.0.weight"].shape == (4096, 25088)
    assert torch.equal(out.init["classifier.0.weight"], src.init["pre_logits.fc1.weight"].reshape(4096, -1))
    assert torch.equal(out.init["classifier.3.weight"], src.init["pre_logits.fc2.weight"].reshape(4096, 4096))
    assert torch.equal(out.init["classifier.6.bias"], src.init["head.fc.bias"])
    # The hidden classifier layers are pruned (their masks reshaped with them), the output layer stays dense.
    assert [k for k in out.masks if not k.startswith("features.")] == ["classifier.0.weight", "classifier.3.weight"]
    assert torch.equal(out.masks["classifier.0.weight"], src.masks["pre_logits.fc1.weight"].reshape(4096, -1))
    torch.testing.assert_close(forward(src), forward(out), rtol=1e-4, atol=1e-5)
    back = plan_conversion(out, "timm/vgg11")
    assert {t: s for t, s, _ in back.key_map}["pre_logits.fc1.weight"] == "classifier.0.weight"


def test_imagenet_vgg_bn_stretch_plan() -> None:
    plan = plan_conversion("timm/vgg16_bn", "torchvision/vgg19_bn")
    assert plan.mapping == "0:0;1:1|0:0;1:1|0:0;1:1,2;2:3|0:0;1:1,2;2:3|0:0;1:1,2;2:3"
    pairs = {t: s for t, s, _ in plan.key_map}
    assert pairs["classifier.0.weight"] == "pre_logits.fc1.weight"
    # Stage 4 (convs at features 24, 27, 30 → 27, 30, 33, 36): unit 0 one to one, unit 1 copied twice.
    assert pairs["features.28.running_var"] == "features.25.running_var"
    assert pairs["features.31.running_var"] == pairs["features.34.running_var"] == "features.28.running_var"
    assert pairs["features.36.weight"] == "features.30.weight"


# -- errors: raised before anything is written ----------------------------------------------------------
ERRORS = [
    ("incomplete", "cifar_resnet20", "cifar_resnet32", {"mapping": "0:0;1:1,2"}, "target units 3, 4 are not written"),
    ("out of range", "cifar_resnet20", "cifar_resnet32", {"mapping": "0:0;1:1,2;2:3,5"}, "target unit 5 does not exist"),
    ("source out of range", "cifar_resnet20", "cifar_resnet32", {"mapping": "0:0;1:1,2;3:3,4"},
     "source unit 3 does not exist"),
    ("stage strings", "cifar_resnet20", "cifar_resnet32", {"mapping": "0:0;1:1,2;2:3,4|0:0;1:1,2;2:3,4"},
     "has 2 stage strings but cifar_resnet32 needs 3"),
    ("syntax", "cifar_resnet20", "cifar_resnet32", {"mapping": "0:0;1-1,2;2:3,4"}, "entry 2"),
    ("unit 0", "cifar_resnet20", "cifar_resnet32", {"mapping": "0:0,1;1:2;2:3,4"}, "unit 0"),
    ("twice", "cifar_resnet20", "cifar_resnet32", {"mapping": "0:0;1:1,2;2:2,3,4"}, "target unit 2 is written by"),
    ("basic-bottleneck", "timm/resnet_basic-1-1-1-1", "resnet_bottleneck-1-1-1-1", {}, "Bottleneck"),
    ("resnet-vgg", "cifar_resnet20", "cifar_vgg16", {}, "cannot convert"),
    ("bn", "cifar_vgg16", "timm/vgg19", {}, "cannot convert"),
    ("strategy direction", "cifar_resnet20", "cifar_resnet32", {"strategy": "spread"}, "only stretches"),
    ("single unit stage", "cifar_vgg11", "cifar_vgg19", {}, "only unit 0"),
]


@pytest.mark.parametrize("name,src,tgt,kw,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_python(name, src, tgt, kw, match) -> None:
    with pytest.raises(ConversionError, match=match) as info:
        plan_conversion(src, tgt, **kw)
    assert "\n" not in str(info.value) and "; " in str(info.value)  # one line, with a fix


def test_imagenet_needs_four_stage_strings() -> None:
    with pytest.raises(ConversionError, match="needs 4"):
        plan_conversion("resnet18", "resnet34", mapping="0:0;1:1,2")


def test_num_classes_mismatch_needs_num_classes() -> None:
    src = random_ticket("cifar_resnet20", seed=7)
    target = get_arch("cifar_resnet32", 100)
    with pytest.raises(ConversionError, match="100 classes"):
        convert(src, target)
    out = convert(src, target, num_classes=100)
    assert out.num_classes == 100 and out.masks["fc.weight"].all()
    assert out.init["fc.weight"].shape == (100, 64) and out.provenance["num_classes_reinit"] is True
    again = convert(src, "cifar_resnet32", num_classes=100)
    assert torch.equal(again.init["fc.weight"], out.init["fc.weight"])  # seeded
    assert torch.equal(again.init["layer1.2.conv1.weight"], src.init["layer1.1.conv1.weight"])
    bound = 1 / math.sqrt(64)
    assert out.init["fc.weight"].abs().max() <= bound and out.init["fc.weight"].std() > bound / 4
    same = convert(src, "cifar_resnet32", num_classes=10)  # same count: the classifier is kept
    assert same.provenance["num_classes_reinit"] is False and torch.equal(same.init["fc.weight"], src.init["fc.weight"])
    vgg = convert(random_ticket("cifar_vgg16", seed=1), "cifar_vgg19", num_classes=100)
    assert vgg.init["classifier.weight"].shape == (100, 512) and "classifier.weight" not in vgg.masks


@pytest.fixture(scope="module")
def ticket_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tickets")
    files = {}
    for arch in ("cifar_resnet20", "timm/resnet_basic-1-1-1-1"):
        p = d / f"{arch.replace('/', '_')}.ticket"
        random_ticket(arch, seed=11, trained=arch == "cifar_resnet20").save(p)
        files[arch] = p
    return files


CLI_ERRORS = [
    (["--to", "cifar_resnet32", "--mapping", "0:0;1:1,2"], "cifar_resnet20"),
    (["--to", "cifar_resnet32", "--mapping", "0:0;1:1,2;2:3,9"], "cifar_resnet20"),
    (["--to", "cifar_resnet32", "--mapping", "0:0;1:1,2;2:3,4|0:0;1:1,2;2:3,4"], "cifar_resnet20"),
    (["--to", "resnet_bottleneck-1-1-1-1"], "timm/resnet_basic-1-1-1-1"),
    (["--to", "cifar_vgg16"], "cifar_resnet20"),
    (["--to", "cifar_resnet32", "--num-classes", "0"], "cifar_resnet20"),
    (["--to", "cifar_resnet32", "--strategy", "spread"], "cifar_resnet20"),
    (["--to", "cifar_resnet32", "--strategy", "append", "--mapping", "0:0;1:1,3;2:2,4"], "cifar_resnet20"),
    # The first target is fine, the second impossible: nothing is written at all.
    (["--to", "cifar_resnet32,cifar_vgg16"], "cifar_resnet20"),
    (["--to", "cifar_resnet32,nosuch_arch"], "cifar_resnet20"),
]


@pytest.mark.parametrize("args,src", CLI_ERRORS, ids=[" ".join(a[1:]) for a, _ in CLI_ERRORS])
def test_errors_cli_exit_2_one_line_nothing_written(cli, ticket_files, tmp_path, args, src) -> None:
    out = tmp_path / "out"
    res = cli("convert", "--from", ticket_files[src], *args, "-o", out / "x.ticket" if "," not in args[1] else out)
    assert res.code == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert res.stdout == ""
    assert not out.exists()


def test_cli_refuses_existing_output_without_force(cli, ticket_files, tmp_path) -> None:
    dest = tmp_path / "r32.ticket"
    assert cli("convert", "--from", ticket_files["cifar_resnet20"], "--to", "cifar_resnet32", "-o", dest).code == 0
    before = dest.read_bytes()
    res = cli("convert", "--from", ticket_files["cifar_resnet20"], "--to", "cifar_resnet32", "-o", dest,
              "--strategy", "append")
    assert res.code == 2 and "--force" in res.stderr and dest.read_bytes() == before
    res = cli("convert", "--from", ticket_files["cifar_resnet20"], "--to", "cifar_resnet32", "-o", dest,
              "--strategy", "append", "--force")
    assert res.code == 0 and Ticket.load(dest).provenance["strategy"] == "append"


# -- CLI -----------------------------------------------------------------------------------------------
def test_cli_multi_target_folder_table_and_warnings(cli, ticket_files, tmp_path) -> None:
    src_file = ticket_files["cifar_resnet20"]
    out = tmp_path / "out"
    res = cli("convert", "--from", src_file, "--to", "cifar_resnet32,cifar_resnet44,cifar_resnet56", "-o", out)
    assert res.code == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cifar_resnet32.ticket", "cifar_resnet44.ticket",
                                                     "cifar_resnet56.ticket"]
    for line in ("stage1", "stage3", "overall", "cifar_resnet20", "(source)", "cifar_resnet56"):
        assert line in res.stdout
    assert "0:0;1:1,2,3,4;2:5,6,7,8" in res.stdout  # the mapping that reproduces each target
    assert "large depth gap" in res.stderr  # 9 → 27 blocks
    assert "trained weights" in res.stderr and "dropped" in res.stderr
    src = Ticket.load(src_file)
    for p in out.iterdir():
        t = Ticket.load(p)
        assert t.trained is None and t.results == []
        assert_copied(src, t, t.provenance["mappings"])


def test_cli_json_single_target_in_folder_and_reinit(cli, ticket_files, tmp_path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    res = cli("convert", "--from", ticket_files["cifar_resnet20"], "--to", "cifar_resnet32", "-o", folder,
              "--num-classes", "100", "--json", "--encoding", "dense")
    assert res.code == 0, res.stderr
    data = json.loads(res.stdout)
    (row,) = data["targets"]
    assert row["file"] == str(folder / "cifar_resnet32.ticket") and row["num_classes"] == 100
    assert row["num_classes_reinit"] is True and data["trained_dropped"] is True
    assert row["mapping"] == "0:0;1:1,2;2:3,4" and row["stage_sparsity"]["head"] == 0.0
    assert data["source"]["sparsity"] == pytest.approx(Ticket.load(ticket_files["cifar_resnet20"]).sparsity)
    assert "re-initialized for 100 classes" in res.stderr
    t = Ticket.load(folder / "cifar_resnet32.ticket")
    assert t.encoding == "dense" and t.num_classes == 100


def test_provenance(ticket_files, tmp_path) -> None:
    path = ticket_files["cifar_resnet20"]
    src = Ticket.load(path)
    out = convert(src, "cifar_resnet32", strategy="append", permute_copies=3)
    p = out.provenance
    assert p["method"] == "elastic"
    assert p["source"] == {"arch": "cifar_resnet20", "num_classes": 10, "sha256": file_sha(path), "sha256_of": "file",
                           "sparsity": round(src.sparsity, 6), "path": path.name}
    assert p["strategy"] == "append" and p["mappings"] == ["0:0;1:1,3;2:2,4"] * 3 and p["mapping"] == "0:0;1:1,3;2:2,4"
    assert p["permute_copies"] == 3 and p["copies_permuted"] == 3 * 2 * 2  # 2 copies × 2 convs × 3 stages
    assert p["num_classes_reinit"] is False and p["trained_dropped"] is True
    assert p["source_provenance"] == src.provenance and p["direction"] == "stretch"
    assert out.results == [] and out.trained is None
    # Survives a save/load, and an in-memory source is identified by a hash of its tensors.
    out.save(tmp_path / "o.ticket")
    assert Ticket.load(tmp_path / "o.ticket").provenance == p
    mem = random_ticket("cifar_resnet20", seed=11)
    q = convert(mem, "cifar_resnet32").provenance["source"]
    assert q["sha256_of"] == "tensors" and q["path"] is None
    assert q["sha256"] == convert(random_ticket("cifar_resnet20", seed=11), "cifar_resnet32").provenance["source"]["sha256"]
    assert q["sha256"] != convert(random_ticket("cifar_resnet20", seed=12), "cifar_resnet32").provenance["source"]["sha256"]


# -- the packed file path of `ticket convert` ------------------------------------------------------------
PACKED_CASES = [
    ("cifar_resnet20", "cifar_resnet56", {"num_classes": 100}, {"permute_copies": 3}),
    ("cifar_vgg-2-2-2-1-1", "cifar_vgg-2-2-3-1-1", {"num_classes": 5}, {}),
    ("timm/resnet_basic-2-2-2-1", "torchvision/resnet_basic-3-1-4-1", {}, {"permute_copies": 1}),
]


@pytest.mark.parametrize("src_arch,tgt,kw,ak", PACKED_CASES, ids=[c[1] for c in PACKED_CASES])
def test_packed_file_path_is_byte_identical_to_ticket_path(tmp_path, src_arch, tgt, kw, ak) -> None:
    path = tmp_path / "src.ticket"
    random_ticket(src_arch, seed=3, num_classes=10, trained=src_arch == "cifar_resnet20").save(path)
    loaded = Ticket.load(path)
    plan = plan_conversion(loaded, tgt, **kw)
    apply_plan(loaded, plan, **ak).save(tmp_path / "a.ticket")
    res = write_converted(PackedSource.open(path), plan, tmp_path / "b.ticket", **ak)
    assert (tmp_path / "a.ticket").read_bytes() == (tmp_path / "b.ticket").read_bytes()
    back = Ticket.load(tmp_path / "b.ticket")
    assert res.sparsity == back.sparsity and res.stage_sparsity() == back.stage_sparsity()
    assert res.provenance == back.provenance and res.size == (tmp_path / "b.ticket").stat().st_size


def test_packed_file_path_keeps_bfloat16_bytes(tmp_path) -> None:
    # numpy has no bfloat16: the packed path moves its raw bytes (format.raw.RawTensor), the same file comes out.
    t = random_ticket("cifar_resnet14", seed=4)
    t = t.replace(init={k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in t.init.items()})
    path = tmp_path / "bf16.ticket"
    t.save(path)
    loaded = Ticket.load(path)
    for kw, ak in (({"num_classes": 7}, {"permute_copies": 2}), ({}, {})):
        plan = plan_conversion(loaded, "cifar_resnet20", **kw)
        apply_plan(loaded, plan, **ak).save(tmp_path / "a.ticket")
        write_converted(PackedSource.open(path), plan, tmp_path / "b.ticket", **ak)
        assert (tmp_path / "a.ticket").read_bytes() == (tmp_path / "b.ticket").read_bytes()
        assert Ticket.load(tmp_path / "b.ticket").init["fc.weight"].dtype == torch.bfloat16


def test_packed_convert_imports_neither_torch_nor_timm(tmp_path, ticket_files) -> None:
    import subprocess
    import sys

    vgg = tmp_path / "cifar_vgg11.ticket"
    random_ticket("cifar_vgg11", seed=2).save(vgg)
    runs = [(ticket_files["timm/resnet_basic-1-1-1-1"], "torchvision/resnet_basic-1-1-1-1"),
            (ticket_files["cifar_resnet20"], "cifar_resnet32,cifar_resnet14"), (vgg, "cifar_vgg-1-1-3-3-2")]
    code = ("import sys\n"
            "from ticketfmt.cli import main\n"
            "try:\n"
            "    main(sys.argv[1:])\n"
            "except SystemExit as e:\n"
            "    print(e.code, sorted(m for m in ('torch', 'timm', 'torchvision', 'numpy') if m in sys.modules),\n"
            "          file=sys.stderr)\n")
    for i, (src, targets) in enumerate(runs):
        out = tmp_path / f"out{i}"
        out.mkdir()
        proc = subprocess.run([sys.executable, "-P", "-c", code, "convert", "--from", str(src), "--to", targets,
                               "-o", str(out), "--json"], capture_output=True, text=True)
        assert proc.stderr.strip().splitlines()[-1] == "0 []", proc.stderr
        for name in targets.split(","):  # the same files as the Ticket path writes
            written = out / f"{get_arch(name).name}.ticket"
            convert(Ticket.load(src), name).save(tmp_path / "ref.ticket")
            assert written.read_bytes() == (tmp_path / "ref.ticket").read_bytes()


def test_packed_convert_to_its_own_arch_rewrites_the_golden_payload(tmp_path) -> None:
    # Issue 13: the packed path moves bytes (no numpy); converting the golden file to its own architecture must write
    # its payload back bit for bit (the same payload_sha256 as the golden file, written by ticketfmt 0.1's first
    # writer), in a process that imported neither numpy nor torch.
    import subprocess
    import sys

    from ticketfmt.format.spec import read_header
    golden = Path(__file__).parent / "golden" / "cifar_resnet8-packed-v1.0.ticket"
    code = ("import sys\n"
            "from ticketfmt.cli import main\n"
            "try:\n"
            "    main(sys.argv[1:])\n"
            "except SystemExit as e:\n"
            "    print(e.code, sorted(m for m in ('numpy', 'torch') if m in sys.modules), file=sys.stderr)\n")
    out = tmp_path / "again.ticket"
    proc = subprocess.run([sys.executable, "-P", "-c", code, "convert", "--from", str(golden), "--to", "cifar_resnet8",
                           "-o", str(out), "--json"], capture_output=True, text=True)
    assert proc.stderr.strip().splitlines()[-1] == "0 []", proc.stderr
    old, new = read_header(golden), read_header(out)
    assert new.metadata["payload_sha256"] == old.metadata["payload_sha256"] == (
        "7d6744f15eea7bf0b206e98a6ec74aef447377287b5301993f207bc0996b1f71")
    assert out.read_bytes()[new.data_offset:] == golden.read_bytes()[old.data_offset:]
    layout = [{k: (v.dtype, v.shape) for k, v in h.tensors.items()} for h in (new, old)]
    assert layout[0] == layout[1]


def test_packed_source_checks_like_ticket_load(tmp_path, ticket_files, cli) -> None:
    bad = tmp_path / "bad.ticket"
    data = bytearray(ticket_files["cifar_resnet20"].read_bytes())
    data[-5] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(TicketFormatError, match="sha256"):
        PackedSource.open(bad)
    res = cli("convert", "--from", bad, "--to", "cifar_resnet32", "-o", tmp_path / "o.ticket")
    assert res.code == 2 and len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.ticket").exists()
    dense = tmp_path / "dense.ticket"
    Ticket.load(ticket_files["cifar_resnet20"]).save(dense, encoding="dense")
    with pytest.raises(TicketFormatError, match="not packed"):
        PackedSource.open(dense)
    # A dense source takes the Ticket path: the same ticket comes out.
    assert cli("convert", "--from", dense, "--to", "cifar_resnet32", "-o", tmp_path / "d.ticket").code == 0
    assert cli("convert", "--from", ticket_files["cifar_resnet20"], "--to", "cifar_resnet32",
               "-o", tmp_path / "p.ticket").code == 0
    a, b = Ticket.load(tmp_path / "d.ticket"), Ticket.load(tmp_path / "p.ticket")
    assert all(torch.equal(a.init[k], b.init[k]) for k in a.init)
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)


# -- controls -------------------------------------------------------------------------------------------
def test_permute_copies_changes_copies_keeps_density(sources) -> None:
    src = sources["cifar_resnet20"]
    plain = convert(src, "cifar_resnet56")
    perm = convert(src, "cifar_resnet56", permute_copies=7)
    assert convert(src, "cifar_resnet56", permute_copies=7).masks.keys() == perm.masks.keys()
    again = convert(src, "cifar_resnet56", permute_copies=7)
    other = convert(src, "cifar_resnet56", permute_copies=8)
    m = tgt_to_src(plain.provenance["mappings"][0])
    copies = {j for j in range(len(m)) if m[j] in m[:j]}
    assert copies == {2, 3, 4, 6, 7, 8}
    changed = 0
    for k in plain.masks:
        a, b = plain.masks[k], perm.masks[k]
        assert int(a.sum()) == int(b.sum()), k  # per-tensor density kept
        # The kept values move with their positions: the same multiset of init values.
        assert torch.equal(plain.init[k][a].sort().values, perm.init[k][b].sort().values), k
        assert not perm.init[k][~b].any()
        assert torch.equal(again.masks[k], b)
        unit = k.split(".")[1] if k.startswith("layer") else None
        if unit is not None and int(unit) in copies:
            assert not torch.equal(a, b), k
            assert not torch.equal(b, other.masks[k]), k
            changed += 1
        else:
            assert torch.equal(a, b), k  # originals, stem, block 0 and classifier untouched
    assert changed == 3 * 6 * 2
    for k in plain.init:
        if k not in plain.masks:
            assert torch.equal(plain.init[k], perm.init[k]), k  # BN copied unchanged


def test_random_like_matches_converted_per_layer_density(sources) -> None:
    converted = convert(sources["cifar_resnet20"], "cifar_resnet44")
    fresh = random_ticket("cifar_resnet44", density=1.0, seed=99)
    baseline = prune(fresh, method="random", like=converted, seed=1)
    assert baseline.layer_density() == converted.layer_density()
    assert baseline.stage_sparsity() == converted.stage_sparsity()
    assert any(not torch.equal(baseline.masks[k], converted.masks[k]) for k in converted.masks)


def test_warnings_depth_gap_and_early_blocks() -> None:
    assert any("large depth gap" in w for w in plan_conversion("cifar_resnet14", "cifar_resnet44").warnings)
    assert not plan_conversion("resnet18", "resnet34").warnings  # 2x: the paper's Table 1 transfers
    assert not plan_conversion("cifar_resnet20", "cifar_resnet44").warnings
    assert DEPTH_GAP_RATIO == 2.5
    late = plan_conversion("cifar_resnet56", "cifar_resnet32", strategy="last").warnings
    assert any("block 1 is dropped" in w for w in late)
    assert not plan_conversion("cifar_resnet56", "cifar_resnet32").warnings


def test_apply_plan_checks_the_ticket(sources) -> None:
    plan = plan_conversion("cifar_resnet32", "cifar_resnet56")
    with pytest.raises(ConversionError, match="plan converts"):
        apply_plan(sources["cifar_resnet20"], plan)
    with pytest.raises(TicketError):
        plan_conversion("cifar_resnet20", "cifar_resnet33")


# -- one conversion: convert_file, the one walk, one validation, one metadata builder ---------------------------
def test_convert_file_is_the_command_from_python(ticket_files, tmp_path, cli) -> None:
    from ticketfmt.converters import ConvertedFile, SourceFile, convert_file

    src = ticket_files["cifar_resnet20"]
    res = convert_file(src, "cifar_resnet32", tmp_path / "py.ticket", strategy="append", permute_copies=2)
    assert isinstance(res, ConvertedFile) and res.arch == "cifar_resnet32" and res.encoding == "packed"
    assert cli("convert", "--from", src, "--to", "cifar_resnet32", "--strategy", "append", "--permute-copies", "2",
               "-o", tmp_path / "cli.ticket").code == 0
    assert (tmp_path / "py.ticket").read_bytes() == (tmp_path / "cli.ticket").read_bytes()
    # A plan made beforehand, an opened source reused, the dense encoding: the same ticket, reported alike.
    opened = SourceFile.open(src, encoding="dense")
    plan = plan_conversion(Ticket.load(src), "cifar_resnet32", strategy="append")
    dense = convert_file(opened, plan, tmp_path / "d.ticket", permute_copies=2)
    assert dense.encoding == "dense" and Ticket.load(tmp_path / "d.ticket").encoding == "dense"
    assert dense.density == res.density and dense.provenance == res.provenance
    with pytest.raises(ConversionError, match="Plan already"):
        convert_file(opened, plan, tmp_path / "x.ticket", strategy="append")
    assert not (tmp_path / "x.ticket").exists()


def _nan_ticket_file(path: Path) -> None:
    """A packed file whose header and masks are fine but one BatchNorm weight holds a NaN."""
    from ticketfmt.format.tensors import pack_bits, write_tensors

    t = random_ticket("cifar_resnet8", seed=5)
    tensors = {f"mask/{k}": pack_bits(m) for k, m in t.masks.items()}
    tensors.update({f"init/{k}": v[t.masks[k]] if k in t.masks else v.clone() for k, v in t.init.items()})
    tensors["init/bn1.weight"][1] = float("nan")
    write_tensors(path, tensors, t._metadata("packed"))


def test_one_validation_the_packed_path_reports_as_ticket_load(tmp_path) -> None:
    from ticketfmt.converters import PackedSource

    path = tmp_path / "nan.ticket"
    _nan_ticket_file(path)
    with pytest.raises(TicketFormatError) as via_ticket:
        Ticket.load(path)
    with pytest.raises(TicketFormatError) as via_packed:
        PackedSource.open(path)
    assert str(via_packed.value) == str(via_ticket.value)
    assert "bn1.weight" in str(via_ticket.value) and "NaN" in str(via_ticket.value)


def test_one_metadata_builder(ticket_files) -> None:
    from ticketfmt.ticket import file_metadata

    t = Ticket.load(ticket_files["cifar_resnet20"])
    layers = {k: (tuple(m.shape), int(m.sum())) for k, m in t.masks.items()}
    assert file_metadata(t.spec, t.provenance, t.results, layers, "packed") == t._metadata("packed")


def test_registries_are_full_on_import_and_refuse_duplicates() -> None:
    import subprocess
    import sys

    from ticketfmt.converters import get_converter, register, registered_families, unregister
    from ticketfmt.converters.base import FamilyConverter

    # A fresh process that imports only the leaf registry module still sees every built-in family.
    code = ("from ticketfmt.converters.registry import registered_families; print(','.join(registered_families()))")
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr
    builtin = ["cifar_mobilenetv1", "cifar_resnet", "cifar_vgg", "cifar_vggnfc", "cifar_vit", "convnext", "mnist_lenet",
               "resnet", "vgg", "vit"]  # the last two and convnext through the staged fallback
    assert proc.stdout.split() == [",".join(builtin)]
    assert registered_families() == builtin

    class Again(FamilyConverter):
        families = ("toy_family", "vgg")

    with pytest.raises(ValueError, match="'vgg' family already has a converter"):
        register(Again())
    assert "toy_family" not in registered_families()  # nothing half-registered

    class Toy(FamilyConverter):
        families = ("toy_family",)

    toy = register(Toy())
    try:
        assert get_converter("toy_family") is toy
        with pytest.raises(ValueError):
            register(Toy())
    finally:
        assert unregister("toy_family") is toy
    with pytest.raises(ConversionError, match="no elastic converter"):
        get_converter("toy_family")


# -- a converted ticket carries its own training contract (issue 11) --------------------------------------------
CONTRACT = {"recipe": {"name": "cifar_resnet", "lr": 0.1, "epochs": 160, "milestones": [80, 120]},
            "rewind": "20it", "rewind_step": 20, "steps_per_epoch": 391, "dataset": "cifar10", "subset": 8000,
            "seed": 3}


@pytest.mark.parametrize("missing", [(), ("subset", "steps_per_epoch")], ids=["all", "some"])
def test_the_training_contract_is_copied_to_the_top_level(tmp_path, missing) -> None:
    from ticketfmt.converters import TRAINING_CONTRACT, convert_file

    contract = {k: v for k, v in CONTRACT.items() if k not in missing}
    src_prov = {"method": "imp", "level": 4, "rate": 0.2, **contract}
    src = random_ticket("cifar_resnet20", seed=7, trained=True).replace(provenance=src_prov)
    path = tmp_path / "src.ticket"
    src.save(path)
    assert set(TRAINING_CONTRACT) == set(CONTRACT)
    # Both paths (the Ticket in memory and the packed file) write it, the same bytes.
    in_memory = convert(Ticket.load(path), "cifar_resnet32")
    in_memory.save(tmp_path / "a.ticket")
    convert_file(path, "cifar_resnet32", tmp_path / "b.ticket")
    assert (tmp_path / "a.ticket").read_bytes() == (tmp_path / "b.ticket").read_bytes()
    prov = Ticket.load(tmp_path / "b.ticket").provenance
    assert {k: prov[k] for k in TRAINING_CONTRACT if k in prov} == contract  # present ones, none invented
    assert prov["method"] == "elastic" and "level" not in prov and "rate" not in prov
    assert prov["source_provenance"] == src_prov  # kept as it was
    # Converted again, the contract travels on.
    again = convert(Ticket.load(tmp_path / "b.ticket"), "cifar_resnet44").provenance
    assert {k: again[k] for k in TRAINING_CONTRACT if k in again} == contract


# -- `ticket convert` without -o (issue 15): <target>.ticket beside the source, never overwriting ------------------
def test_cli_default_output_is_beside_the_source_one_file_per_target(cli, ticket_files, tmp_path,
                                                                     monkeypatch) -> None:
    import ticketfmt.converters.files as files

    folder = tmp_path / "tickets"
    folder.mkdir()
    src = folder / "resnet20.ticket"
    src.write_bytes(ticket_files["cifar_resnet20"].read_bytes())
    monkeypatch.chdir(tmp_path)  # not the source's folder: outputs go beside the source, not here
    reads = []
    real_read = files.read_raw
    monkeypatch.setattr(files, "read_raw", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    res = cli("convert", "--from", src, "--to", "cifar_resnet32,cifar_resnet56")
    assert res.code == 0, res.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["cifar_resnet32.ticket", "cifar_resnet56.ticket",
                                                        "resnet20.ticket"]
    assert list(tmp_path.iterdir()) == [folder]
    assert reads == [str(src)]  # the source is read once for both targets
    assert Ticket.load(folder / "cifar_resnet56.ticket").arch == "cifar_resnet56"
    assert f"wrote {folder / 'cifar_resnet32.ticket'}" in res.stderr

    # Never overwriting without --force: one target exists, so nothing at all is written.
    (folder / "cifar_resnet56.ticket").unlink()
    before = (folder / "cifar_resnet32.ticket").read_bytes()
    res = cli("convert", "--from", src, "--to", "cifar_resnet56,cifar_resnet32", "--strategy", "append")
    assert res.code == 2 and "already exists" in res.stderr and "--force" in res.stderr
    assert not (folder / "cifar_resnet56.ticket").exists() and (folder / "cifar_resnet32.ticket").read_bytes() == before
    res = cli("convert", "--from", src, "--to", "cifar_resnet56,cifar_resnet32", "--strategy", "append", "--force")
    assert res.code == 0 and Ticket.load(folder / "cifar_resnet32.ticket").provenance["strategy"] == "append"


def test_cli_never_replaces_its_source(cli, ticket_files, tmp_path) -> None:
    src = tmp_path / "cifar_resnet20.ticket"
    src.write_bytes(ticket_files["cifar_resnet20"].read_bytes())
    before = src.read_bytes()
    for extra in ([], ["--force"], ["-o", src, "--force"]):
        res = cli("convert", "--from", src, "--to", "cifar_resnet20", *extra)
        assert res.code == 2 and "would replace the source" in res.stderr, res.stderr
    assert src.read_bytes() == before and list(tmp_path.iterdir()) == [src]
