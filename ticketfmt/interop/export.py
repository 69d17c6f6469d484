"""A ticket out to the libraries people run: a plain state dict for timm or torchvision, or prune's form.

:func:`export_state_dict` turns a ticket's masked weights (``init``, the rewind point, or
``trained``) into

- ``to="timm"`` / ``to="torchvision"``: the plain state dict of that library's model, which
  ``timm.create_model(...)`` / ``torchvision.models.*()`` load with ``strict=True`` (pruned
  weights are zeros; BatchNorm buffers included). A timm ticket exports to torchvision and back
  where both libraries have the architecture: the ResNets share their keys, and the VGGs differ
  only in the classifier (timm's ``pre_logits`` convolutions are torchvision's ``classifier``
  linear layers, reshaped; the two compute the same function at 224×224 and above);
- ``to="torch-prune"``: ``torch.nn.utils.prune``'s form of the ticket's own architecture
  (``X.weight_orig`` and ``X.weight_mask`` for every masked weight), for continued masked
  training: :func:`prepare_torch_prune` gets a fresh model ready to load it with ``strict=True``,
  and ``Ticket.from_model`` reads such a model back.

:func:`save_export` writes the result as a safetensors file (``__metadata__`` ``format=pt``, as
timm and transformers write, plus where it came from); :func:`loader_code` is the Python that
builds the model to load it into.

Example:
    >>> from ticketfmt import Ticket, build_model
    >>> ticket = Ticket.from_model(build_model("timm/resnet18", num_classes=10, seed=0))  # doctest: +SKIP
    >>> exported = export_state_dict(ticket, "torchvision")  # doctest: +SKIP
    >>> exported.code  # doctest: +SKIP
    'torchvision.models.resnet18(num_classes=10)'
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ticketfmt.errors import MaskError, TicketError
from ticketfmt.format.atomic import atomic_write
from ticketfmt.zoo import ArchSpec, get_family, state_dict_shapes

if TYPE_CHECKING:
    from ticketfmt.ticket import Ticket

__all__ = ["TARGETS", "Exported", "export_state_dict", "save_export", "loader_code", "prepare_torch_prune"]

TARGETS = ("timm", "torchvision", "torch-prune")
"""What ``ticket export --to`` writes: a library's plain state dict, or torch.nn.utils.prune's form."""


@dataclass(frozen=True)
class Exported:
    """An exported state dict: its tensors, the architecture they load into, and how to build it.

    ``target`` is one of :data:`TARGETS`; ``spec`` the architecture (of the target library for
    ``timm`` / ``torchvision``, the ticket's own for ``torch-prune``); ``weights`` ``init`` or
    ``trained``; ``code`` the Python that builds the model to load the tensors into.
    """

    tensors: dict[str, torch.Tensor]
    target: str
    spec: ArchSpec
    weights: str

    @property
    def code(self) -> str:
        return loader_code(self.spec)


def export_state_dict(ticket: Ticket, to: str, *, weights: str = "init") -> Exported:
    """The ticket's masked ``weights`` as a state dict for ``to`` (``timm``, ``torchvision``, ``torch-prune``).

    Example:
        >>> exported = export_state_dict(ticket, "torch-prune")  # doctest: +SKIP
        >>> sorted(exported.tensors)[:2]  # doctest: +SKIP
        ['bn1.bias', 'bn1.num_batches_tracked']
    """
    if to not in TARGETS:
        raise TicketError(f"cannot export to {to!r}", fix=f"use one of {', '.join(TARGETS)}")
    if weights not in ("init", "trained"):
        raise TicketError(f"weights must be 'init' or 'trained', not {weights!r}", fix="pass --weights init|trained")
    state = ticket.init if weights == "init" else ticket.trained
    if state is None:
        raise TicketError(f"the {ticket.arch} ticket holds no trained weights",
                          fix="export --weights init (the rewind point), or train it with `ticket verify` first")
    # Pruned positions are zeros already (a ticket is θ ⊙ m); multiplying again costs little and makes it certain.
    masked = {k: (v * ticket.masks[k].to(v.dtype)) if k in ticket.masks else v.clone() for k, v in state.items()}
    if to == "torch-prune":
        return Exported(_prune_form(masked, ticket.masks), to, ticket.spec, weights)
    target = _library_spec(ticket.spec, to)
    return Exported(_translate(masked, ticket.spec, target), to, target, weights)


def _prune_form(state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``X.weight`` → ``X.weight_orig`` + ``X.weight_mask`` (in the weight's dtype, as prune stores it)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in masks:
            out[f"{key}_orig"] = value
            out[f"{key}_mask"] = masks[key].to(value.dtype)
        else:
            out[key] = value
    return out


def _library_spec(spec: ArchSpec, library: str) -> ArchSpec:
    """The same architecture as built by ``library`` (a timm ResNet-50 → ``torchvision/resnet50``)."""
    if spec.library == library:
        return spec
    family = get_family(spec.family)
    if library not in family.libraries:
        raise TicketError(f"{spec.id} is ticketfmt's own {family.name} model: {library} has no such architecture",
                          fix=f"export --to torch-prune (it loads into ticketfmt.build_model({spec.id!r}) after "
                              "ticketfmt.interop.prepare_torch_prune), or use ticket.build_model()")
    return family.make(library, spec.block, spec.stages, spec.num_classes)


def _translate(state: dict[str, torch.Tensor], source: ArchSpec, target: ArchSpec) -> dict[str, torch.Tensor]:
    """Rename and reshape a state dict of ``source`` into one of ``target`` (the same network, another library).

    Keys present in both carry over; the others (the VGG classifiers: timm's ``pre_logits.fc1``
    7×7 convolution is torchvision's ``classifier.0`` linear layer over the C×H×W-flattened
    features) are paired in order and reshaped, their sizes checked one by one.
    """
    src, dst = state_dict_shapes(source), state_dict_shapes(target)
    only_src = [k for k in src if k not in dst]
    only_dst = [k for k in dst if k not in src]
    pairs = dict(zip(only_dst, only_src, strict=False))
    if len(only_src) != len(only_dst) or any(_numel(dst[d]) != _numel(src[s]) for d, s in pairs.items()):
        raise TicketError(f"cannot map {source.id}'s tensors onto {target.id}'s", fix="export --to "
                          f"{source.library if source.library != 'builtin' else 'torch-prune'} instead")
    out: dict[str, torch.Tensor] = {}
    for key, shape in dst.items():
        value = state[pairs.get(key, key)]
        out[key] = value if tuple(value.shape) == tuple(shape) else value.reshape(shape).clone()
    return out


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def loader_code(spec: ArchSpec) -> str:
    """The Python that builds an empty model of ``spec`` in its own library (to load an export into).

    Example:
        >>> from ticketfmt.zoo import get_arch
        >>> loader_code(get_arch("torchvision/vgg16_bn", 10))
        'torchvision.models.vgg16_bn(num_classes=10)'
        >>> loader_code(get_arch("resnet_basic-2-3-4-3"))
        'timm.models.resnet.ResNet(block=timm.models.resnet.BasicBlock, layers=[2, 3, 4, 3], num_classes=1000)'
    """
    ctor = get_family(spec.family).constructor(spec)
    n = spec.num_classes
    named = "-" not in spec.name  # ids with counts per stage (resnet_basic-2-3-4-3) have no builder of their own
    if spec.library == "timm" and named:
        return f'timm.create_model("{spec.name}", num_classes={n})'
    if spec.library == "torchvision" and named and spec.name not in ("resnet26", "resnet200"):  # not in torchvision
        return f"torchvision.models.{spec.name}(num_classes={n})"
    if spec.library == "builtin":
        return f'ticketfmt.build_model("{spec.id}", num_classes={n})'
    module = ctor["class"].rpartition(".")[0]
    if spec.family == "resnet" and spec.library == "timm":
        return f"{ctor['class']}(block={module}.{ctor['block']}, layers={ctor['layers']}, num_classes={n})"
    if spec.family == "resnet":
        return f"{ctor['class']}({module}.{ctor['block']}, {ctor['layers']}, num_classes={n})"
    if spec.library == "timm":
        norm = ", norm_layer=torch.nn.BatchNorm2d" if ctor["batch_norm"] else ""
        return f"{ctor['class']}({json.dumps(ctor['cfg'])}, num_classes={n}{norm})"
    return f"{ctor['class']}({module}.make_layers({json.dumps(ctor['cfg'])}, batch_norm={ctor['batch_norm']}), " \
           f"num_classes={n})"


def save_export(exported: Exported, path: str | os.PathLike[str], *, source: Ticket | None = None) -> int:
    """Write ``exported`` atomically as a safetensors file; returns its size in bytes.

    The ``__metadata__`` holds ``format=pt`` (timm's and transformers' convention) and, under
    ``ticketfmt.*`` keys, the target, the architecture, the Python that builds it, which weights,
    the sparsity and, when known, the sha256 of the source ticket file.

    Example:
        >>> save_export(export_state_dict(ticket, "timm"), "model.safetensors", source=ticket)  # doctest: +SKIP
    """
    from safetensors.torch import save

    meta = {"format": "pt", "ticketfmt.target": exported.target, "ticketfmt.arch": exported.spec.id,
            "ticketfmt.num_classes": str(exported.spec.num_classes), "ticketfmt.weights": exported.weights,
            "ticketfmt.load": exported.code}
    if source is not None:
        meta["ticketfmt.source_arch"] = source.arch
        meta["ticketfmt.sparsity"] = f"{source.sparsity:.6f}"
        if source.file_sha256:
            meta["ticketfmt.source_sha256"] = source.file_sha256
    data = save({k: v.detach().cpu().contiguous() for k, v in exported.tensors.items()}, metadata=meta)
    atomic_write(path, [data])
    return len(data)


def prepare_torch_prune(model: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """Register ``prune.identity`` on every weight that ``tensors`` (prune's form) masks; returns the model.

    Then ``model.load_state_dict(tensors, strict=True)`` loads both ``weight_orig`` and
    ``weight_mask``, and training keeps the pruned weights at zero.

    Example:
        >>> model = prepare_torch_prune(timm.create_model("resnet18", num_classes=10), tensors)  # doctest: +SKIP
        >>> model.load_state_dict(tensors, strict=True)  # doctest: +SKIP
    """
    from torch.nn.utils import prune

    modules = dict(model.named_modules())
    plan = []
    for key in tensors:
        if not key.endswith("_mask") or f"{key[:-len('_mask')]}_orig" not in tensors:
            continue
        module_name, _, param = key[:-len("_mask")].rpartition(".")
        module = modules.get(module_name)
        if module is None or not isinstance(getattr(module, param, None), nn.Parameter):
            raise MaskError(f"the model has no parameter {key[:-len('_mask')]!r} to prune", tensor=key,
                            fix="build the model the export was made for (its ticketfmt.load metadata)")
        plan.append((module, param))
    for module, param in plan:  # all checked first: nothing changes on a mismatch
        prune.identity(module, param)
    return model
