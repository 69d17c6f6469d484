"""`ticket export`: a ticket out to timm, torchvision and torch.nn.utils.prune, round-tripped through each library.

Every export is loaded by the real library the way its users load weights: ``load_state_dict(...,
strict=True)`` into ``timm.create_model(...)`` / ``torchvision.models.*()``, timm's own pretrained
loader (``pretrained_cfg_overlay=dict(file=...)``), and ``torch.nn.utils.prune``'s reparametrization
set up with ``prune.identity`` before loading.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch.nn.utils import prune as torch_prune

from ticketfmt import Ticket, build_model, prune
from ticketfmt.errors import TicketError
from ticketfmt.interop import export_state_dict, loader_code, prepare_torch_prune
from ticketfmt.zoo import get_arch

from clierrors import one_line_error

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def timm_ticket(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ticket, Path]:
    """A timm ResNet-18 (10 classes) pruned to 80% by magnitude, with distinct trained weights, saved."""
    import timm

    torch.manual_seed(0)
    ticket = prune(Ticket.from_model(timm.create_model("resnet18", num_classes=10)), 0.8)
    trained = {k: v * 1.5 if v.is_floating_point() else v for k, v in ticket.init.items()}
    ticket = ticket.replace(trained=trained)
    path = tmp_path_factory.mktemp("export") / "r18.ticket"
    ticket.save(path)
    return Ticket.load(path), path


def _outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


def _assert_pruned_zero(state: dict[str, torch.Tensor], ticket: Ticket) -> None:
    for name, mask in ticket.masks.items():
        assert bool((state[name][~mask] == 0).all()), name


def test_export_to_timm_loads_strictly_and_through_timms_own_loader(cli, timm_ticket, tmp_path: Path) -> None:
    import timm

    ticket, path = timm_ticket
    out = tmp_path / "model.safetensors"
    res = cli("export", path, "--to", "timm", "-o", out)
    assert res.code == 0, res.stderr
    assert 'timm.create_model("resnet18", num_classes=10)' in res.stderr and "strict=True" in res.stderr
    state = load_file(out)
    model = timm.create_model("resnet18", num_classes=10)
    model.load_state_dict(state, strict=True)
    _assert_pruned_zero(state, ticket)
    assert torch.allclose(_outputs(model), _outputs(ticket.build_model()), atol=1e-5)
    with safe_open(out, "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["ticketfmt.target"] == "timm" and meta["ticketfmt.weights"] == "init"
    assert meta["ticketfmt.load"] == 'timm.create_model("resnet18", num_classes=10)'
    assert meta["ticketfmt.source_sha256"] == ticket.file_sha256

    # timm's pretrained loader reads the file itself (as it would a Hub download).
    loaded = timm.create_model("resnet18", pretrained=True, num_classes=10,
                               pretrained_cfg_overlay={"file": str(out), "num_classes": 10})
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())

    # --weights trained exports the trained weights, masked.
    trained = tmp_path / "trained.safetensors"
    res = cli("export", path, "--to", "timm", "--weights", "trained", "-o", trained, "--json")
    assert res.code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["weights"] == "trained" and report["arch"] == "timm/resnet18" and report["target"] == "timm"
    t_state = load_file(trained)
    assert torch.equal(t_state["layer1.0.conv1.weight"], ticket.trained["layer1.0.conv1.weight"])
    assert not torch.equal(t_state["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])


def test_export_to_torchvision_and_across_libraries(cli, timm_ticket, tmp_path: Path) -> None:
    import timm
    import torchvision

    # A torchvision ticket, exported to torchvision.
    tv_ticket = prune(Ticket.from_model(torchvision.models.resnet18(num_classes=10)), 0.7)
    tv_path = tmp_path / "tv.ticket"
    tv_ticket.save(tv_path)
    out = tmp_path / "tv.safetensors"
    assert cli("export", tv_path, "--to", "torchvision", "-o", out).code == 0
    model = torchvision.models.resnet18(num_classes=10)
    model.load_state_dict(load_file(out), strict=True)
    assert torch.allclose(_outputs(model), _outputs(tv_ticket.build_model()), atol=1e-5)

    # The timm ticket into torchvision, and the torchvision ticket into timm: the same function.
    ticket, path = timm_ticket
    cross = tmp_path / "cross.safetensors"
    res = cli("export", path, "--to", "torchvision", "-o", cross)
    assert res.code == 0 and "torchvision.models.resnet18(num_classes=10)" in res.stderr
    into_tv = torchvision.models.resnet18(num_classes=10)
    into_tv.load_state_dict(load_file(cross), strict=True)
    assert torch.allclose(_outputs(into_tv), _outputs(ticket.build_model()), atol=1e-5)
    into_timm = timm.create_model("resnet18", num_classes=10)
    into_timm.load_state_dict(export_state_dict(tv_ticket, "timm").tensors, strict=True)
    assert torch.allclose(_outputs(into_timm), _outputs(model), atol=1e-5)


def test_vgg_exports_across_libraries_compute_the_same_function() -> None:
    # timm's VGG classifier is two convolutions (7×7, then 1×1), torchvision's three linear layers; the export
    # reshapes one into the other. Models on the meta device take the real tensors (assign=True): no init cost.
    import timm
    import torchvision

    gen = torch.Generator().manual_seed(0)
    spec = get_arch("timm/vgg11", 10)
    shapes = {k: tuple(v.shape) for k, v in _meta(lambda: timm.create_model("vgg11", num_classes=10)).state_dict().items()}
    init = {k: (torch.randn(s, generator=gen) * 0.02 if len(s) > 1 else torch.rand(s, generator=gen))
            if not k.endswith("num_batches_tracked") else torch.tensor(0) for k, s in shapes.items()}
    ticket = Ticket.from_model(_assigned(lambda: timm.create_model("vgg11", num_classes=10), init))
    assert ticket.spec == spec
    x = torch.randn(1, 3, 224, 224, generator=gen)
    exported = export_state_dict(ticket, "torchvision")
    assert exported.code == "torchvision.models.vgg11(num_classes=10)"
    assert exported.tensors["classifier.0.weight"].shape == (4096, 512 * 7 * 7)
    tv = _assigned(lambda: torchvision.models.vgg11(num_classes=10), exported.tensors)
    with torch.no_grad():
        reference = _assigned(lambda: timm.create_model("vgg11", num_classes=10), ticket.init).eval()(x)
        assert torch.allclose(tv.eval()(x), reference, rtol=1e-4, atol=1e-6)
    back = export_state_dict(Ticket.from_model(tv), "timm")  # and back: the very same tensors
    assert all(torch.equal(back.tensors[k], v) for k, v in ticket.init.items())


def _meta(build):
    with torch.device("meta"):
        return build()


def _assigned(build, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = _meta(build)
    model.load_state_dict(state, strict=True, assign=True)
    return model


def test_export_to_torch_prune_for_continued_masked_training(cli, timm_ticket, tmp_path: Path) -> None:
    import timm

    ticket, path = timm_ticket
    out = tmp_path / "pruned.safetensors"
    res = cli("export", path, "--to", "torch-prune", "-o", out)
    assert res.code == 0 and "prepare_torch_prune" in res.stderr, res.stderr
    state = load_file(out)
    assert "layer1.0.conv1.weight" not in state and state["layer1.0.conv1.weight_mask"].dtype == torch.float32
    assert torch.equal(state["layer1.0.conv1.weight_mask"].bool(), ticket.masks["layer1.0.conv1.weight"])

    # PyTorch's own API: reparametrize the masked weights, then a strict load.
    model = timm.create_model("resnet18", num_classes=10)
    for name in ticket.masks:
        torch_prune.identity(model.get_submodule(name.rsplit(".", 1)[0]), "weight")
    model.load_state_dict(state, strict=True)
    assert torch.allclose(_outputs(model), _outputs(ticket.build_model()), atol=1e-5)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(X).sum().backward()
    opt.step()
    _assert_pruned_zero({k: model.get_submodule(k.rsplit(".", 1)[0]).weight for k in ticket.masks}, ticket)

    # Back in: Ticket.from_model reads the masks of the pruned model, and `ticket new --weights` those of the file.
    again = Ticket.from_model(model)
    assert again.arch == "timm/resnet18" and all(torch.equal(again.masks[k], m) for k, m in ticket.masks.items())
    helper = prepare_torch_prune(timm.create_model("resnet18", num_classes=10), state)
    helper.load_state_dict(state, strict=True)
    assert torch_prune.is_pruned(helper)
    res = cli("new", "timm/resnet18", "--weights", out, "-o", tmp_path / "back.ticket")
    assert res.code == 0, res.stderr
    back = Ticket.load(tmp_path / "back.ticket")
    assert back.sparsity == pytest.approx(ticket.sparsity)
    assert all(torch.equal(back.masks[k], m) and torch.equal(back.init[k], ticket.init[k])
               for k, m in ticket.masks.items())


def test_export_loader_code_builds_the_model_for_any_depth() -> None:
    import timm
    import torchvision

    import ticketfmt
    from ticketfmt.zoo import state_dict_shapes

    names = {"timm": timm, "torchvision": torchvision, "torch": torch, "ticketfmt": ticketfmt}

    def run(code: str) -> torch.nn.Module:
        return eval(code, dict(names))  # noqa: S307 - our own generated code

    small = Ticket.from_model(build_model("timm/resnet_basic-1-1-1-1", num_classes=3, seed=0))
    exported = export_state_dict(small, "torchvision")
    assert exported.code == ("torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], "
                             "num_classes=3)")
    run(exported.code).load_state_dict(exported.tensors, strict=True)
    timm_code = loader_code(small.spec)
    assert timm_code.startswith("timm.models.resnet.ResNet(block=timm.models.resnet.BasicBlock")
    run(timm_code).load_state_dict(export_state_dict(small, "timm").tensors, strict=True)
    for arch in ("timm/vgg_bn-1-1-2-2-2", "torchvision/vgg-1-1-2-2-2", "torchvision/resnet200", "timm/vgg13_bn",
                 "cifar_vgg11"):
        spec = get_arch(arch, 10)
        model = _meta(lambda: run(loader_code(spec)))
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == state_dict_shapes(spec), arch
    assert loader_code(get_arch("cifar_resnet20")) == 'ticketfmt.build_model("cifar_resnet20", num_classes=10)'


def test_export_refuses_what_it_cannot_write_in_one_line(cli, r8_ticket: Ticket, timm_ticket, tmp_path: Path) -> None:
    r8 = tmp_path / "r8.ticket"
    r8_ticket.save(r8)
    out = tmp_path / "model.safetensors"
    one_line_error(cli("export", r8, "--to", "timm", "-o", out), "cifar_resnet8 is ticketfmt's own", "--to torch-prune")
    one_line_error(cli("export", r8, "--to", "torch-prune", "--weights", "trained", "-o", out),
                   "holds no trained weights", "--weights init")
    one_line_error(cli("export", r8, "--to", "onnx", "-o", out), "'onnx' is not one of timm, torchvision, torch-prune")
    one_line_error(cli("export", r8, "--to", "timm", "--weights", "best", "-o", out), "--weights")
    assert not out.exists()
    assert cli("export", r8, "--to", "torch-prune", "-o", out).code == 0
    model = build_model("cifar_resnet8")
    state = load_file(out)
    prepare_torch_prune(model, state).load_state_dict(state, strict=True)  # the CIFAR models go to torch-prune
    one_line_error(cli("export", r8, "--to", "torch-prune", "-o", out), "already exists", "--force")
    assert cli("export", r8, "--to", "torch-prune", "-o", out, "--force").code == 0
    with pytest.raises(TicketError, match="cannot export to 'jax'"):
        export_state_dict(r8_ticket, "jax")
