"""Level-0 tickets from weights people already have: a state dict file, or a library's pretrained weights.

- :func:`ticket_from_weights`: a timm / torchvision ``state_dict`` saved as safetensors (or
  ``torch.nn.utils.prune``'s form of one, ``weight_orig`` + ``weight_mask``, whose masks it keeps),
  checked key by key and shape by shape against the architecture, the number of classes read
  off the output layer;
- :func:`ticket_from_pretrained`: the weights of timm's own pretrained loader
  (``timm.create_model(name, pretrained=True)``, which downloads from the Hugging Face Hub;
  ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` apply) or of torchvision's (``weights="DEFAULT"``,
  downloaded to ``TORCH_HOME``).

The ticket's ``init`` is those weights with all-ones masks (method ``init``, level 0); the
provenance's ``source`` records where they came from (a Hub repo id becomes the card's
``base_model``).

Example:
    >>> ticket = ticket_from_weights("torchvision/resnet50", "resnet50.safetensors")  # doctest: +SKIP
    >>> ticket = ticket_from_pretrained("timm/resnet50")  # doctest: +SKIP
    >>> ticket.provenance["source"]["repo_id"]  # doctest: +SKIP
    'timm/resnet50.a1_in1k'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ticketfmt.errors import HubError, TicketError, TicketFormatError, UnknownArchError
from ticketfmt.format.tensors import sha256_file
from ticketfmt.interop.export import prepare_torch_prune
from ticketfmt.ticket import Ticket
from ticketfmt.zoo import ArchSpec, build_model, get_arch, list_archs, state_dict_shapes
from ticketfmt.zoo.infer import check_state_shapes, split_pruned

__all__ = ["ticket_from_weights", "ticket_from_pretrained", "read_weights"]


def read_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors state dict; a missing file, a pickle or anything else raises one line.

    Example:
        >>> state = read_weights("resnet50.safetensors")  # doctest: +SKIP
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise TicketError(f"{p}: no such file", fix="give a state dict saved with safetensors.torch.save_file")
    try:
        return load_file(p)
    except (SafetensorError, OSError, ValueError) as e:
        raise TicketFormatError(f"not a safetensors state dict ({type(e).__name__}: {str(e).splitlines()[0][:100]})",
                                path=p, fix="save it with safetensors.torch.save_file(model.state_dict(), PATH) "
                                            "(pickled .pth files are not read)") from None


def ticket_from_weights(arch: str | ArchSpec, path: str | os.PathLike[str], *, masks: str | None = None,
                        num_classes: int | None = None, seed: int = 0) -> Ticket:
    """A level-0 ticket whose ``init`` is the state dict in ``path`` (safetensors).

    ``num_classes`` defaults to the width of the file's output layer. A file in
    ``torch.nn.utils.prune``'s form keeps its masks; ``masks="nonzero"`` keeps the non-zero
    weights. A file of another architecture raises :class:`UnknownArchError` naming the first
    differing tensor (and the architecture it does fit, when it is the other library's).

    Example:
        >>> ticket = ticket_from_weights("timm/resnet18", "r18.safetensors")  # doctest: +SKIP
    """
    raw = read_weights(path)
    plain = split_pruned(raw)
    shapes = {k: tuple(v.shape) for k, v in plain.state.items()}
    spec = get_arch(arch)
    spec = get_arch(spec, num_classes if num_classes is not None else _classes_in(spec, shapes))
    try:
        check_state_shapes(spec, shapes, what=str(path))
    except UnknownArchError as e:
        fits = _fitting_archs(shapes)
        fix = (f"it holds {' or '.join(s.id for s in fits)} weights: use `ticket new {fits[0].id} --weights {path}`"
               if fits else "give the architecture the state dict was saved from (`ticket models` lists the zoo)")
        raise UnknownArchError(e.message, fix=fix) from None
    model = build_model(spec, seed=seed)
    prepare_torch_prune(model, raw)
    model.load_state_dict(raw, strict=True)
    source = {"file": Path(path).name, "sha256": sha256_file(path)}
    return Ticket.from_model(model, spec, masks, provenance={"method": "init", "level": 0, "seed": seed,
                                                              "source": source})


def _classes_in(spec: ArchSpec, shapes: dict[str, tuple[int, ...]]) -> int | None:
    """The number of classes of a state dict: the output width of the architecture's last weight."""
    last = [k for k, s in state_dict_shapes(spec).items() if k.endswith(".weight") and len(s) >= 2][-1]
    return shapes[last][0] if last in shapes and shapes[last] else None


def _fitting_archs(shapes: dict[str, tuple[int, ...]]) -> list[ArchSpec]:
    """The named architectures of the zoo whose state dict ``shapes`` is (timm's and torchvision's ResNets share one)."""
    fits = []
    for spec in list_archs():
        spec = spec.with_num_classes(_classes_in(spec, shapes) or spec.num_classes)
        try:
            check_state_shapes(spec, shapes, what="")
        except UnknownArchError:
            continue
        fits.append(spec)
    return fits


def ticket_from_pretrained(arch: str | ArchSpec, *, masks: str | None = None, num_classes: int | None = None,
                           seed: int = 0) -> Ticket:
    """A level-0 ticket whose ``init`` is the library's pretrained weights of ``arch``.

    timm (``timm/...`` ids): ``timm.create_model(name, pretrained=True, num_classes=...)``, its
    default pretrained tag, from the Hugging Face Hub (``HF_ENDPOINT``, the Hub cache and
    ``HF_HUB_OFFLINE`` apply); with other than 1000 classes timm leaves a fresh classifier,
    seeded with ``seed``. torchvision: ``weights="DEFAULT"`` (1000 classes only). Any failure
    to fetch raises :class:`HubError` in one line. ``masks="nonzero"`` keeps the non-zero weights.

    Example:
        >>> ticket_from_pretrained("timm/resnet50").provenance["source"]["repo_id"]  # doctest: +SKIP
        'timm/resnet50.a1_in1k'
    """
    spec = get_arch(arch, num_classes)
    if spec.library not in ("timm", "torchvision") or "-" in spec.name:
        raise TicketError(f"{spec.id} has no pretrained weights in any library",
                          fix="pick a named timm or torchvision architecture (e.g. timm/resnet50, "
                              "torchvision/vgg16_bn), or give the weights with --weights FILE")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, source = _timm_pretrained(spec) if spec.library == "timm" else _torchvision_pretrained(spec)
    return Ticket.from_model(model, spec, masks, provenance={"method": "init", "level": 0, "seed": seed,
                                                              "source": source})


def _timm_pretrained(spec: ArchSpec) -> tuple[torch.nn.Module, dict[str, Any]]:
    import timm

    cfg = timm.models.get_pretrained_cfg(spec.name)
    where = cfg.hf_hub_id if cfg is not None and cfg.hf_hub_id else spec.name
    try:
        model = timm.create_model(spec.name, pretrained=True, num_classes=spec.num_classes)
    except Exception as e:  # the Hub client's and timm's failures alike, as one line
        raise HubError(f"timm could not load the pretrained weights of {spec.name} ({where}): {type(e).__name__}: "
                       f"{str(e).splitlines()[0][:160] if str(e) else ''}",
                       fix="check the network (HF_ENDPOINT, HF_HUB_OFFLINE, the Hub cache), or download the "
                           "weights and pass --weights FILE") from None
    used = getattr(model, "pretrained_cfg", {}) or {}
    source = {"library": "timm", "model": spec.name, "repo_id": used.get("hf_hub_id") or where,
              "tag": used.get("tag"), "pretrained_classes": used.get("num_classes")}
    return model, {k: v for k, v in source.items() if v is not None}


def _torchvision_pretrained(spec: ArchSpec) -> tuple[torch.nn.Module, dict[str, Any]]:
    import torchvision

    if spec.num_classes != 1000:
        raise TicketError(f"torchvision's pretrained {spec.name} has 1000 classes, not {spec.num_classes}",
                          fix="drop --num-classes, or use the timm architecture (timm replaces the classifier)")
    weights = torchvision.models.get_model_weights(spec.name).DEFAULT
    try:
        model = torchvision.models.get_model(spec.name, weights=weights)
    except Exception as e:  # download and cache failures, as one line
        raise HubError(f"torchvision could not load {weights} ({weights.url}): {type(e).__name__}: "
                       f"{str(e).splitlines()[0][:160] if str(e) else ''}",
                       fix="check the network or TORCH_HOME, or download the weights and pass --weights FILE") from None
    return model, {"library": "torchvision", "model": spec.name, "weights": str(weights), "url": weights.url}
