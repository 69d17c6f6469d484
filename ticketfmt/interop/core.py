"""Interoperability with other lottery-ticket tools.

- :func:`apply_masks` registers a ticket's masks on any ``nn.Module`` with
  ``torch.nn.utils.prune.custom_from_mask``, so code written for PyTorch's pruning
  utilities (``weight_orig`` + ``weight_mask``, ``prune.remove``) trains the ticket as is.
- :func:`import_open_lth` turns a run of facebookresearch/open_lth (and of ElasticLTH, built
  on it) into a ticket: the level's ``mask.pth``, the level-0 rewind checkpoint and
  ``hparams.log``, all read with ``torch.load(weights_only=True)`` (no pickled code runs).

Example:
    >>> from ticketfmt import Ticket, apply_masks, build_model
    >>> ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    >>> model = apply_masks(ticket.build_model(), ticket)
    >>> hasattr(model.conv1, "weight_mask")
    True
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ticketfmt.errors import ConversionError, MaskError, TicketError
from ticketfmt.zoo import ArchSpec, get_arch, prunable_names, state_dict_shapes

if TYPE_CHECKING:
    from ticketfmt.ticket import Ticket

__all__ = ["apply_masks", "import_open_lth", "open_lth_key_map", "read_open_lth_hparams", "OpenLTHRun"]


# -- torch.nn.utils.prune ---------------------------------------------------------------------------
def apply_masks(model: nn.Module, ticket: Ticket) -> nn.Module:
    """Register every mask of ``ticket`` on ``model`` with ``prune.custom_from_mask``; returns ``model``.

    Each pruned module gets ``weight_orig`` (a parameter) and ``weight_mask`` (a buffer), and
    ``weight`` is recomputed as their product before every forward pass, so the pruned weights
    stay zero during training. ``prune.remove(module, "weight")`` makes it permanent. The model
    must have the ticket's architecture (e.g. ``ticket.build_model()`` or the same timm /
    torchvision model); masks move to the device of each weight.

    Example:
        >>> import torch.nn.utils.prune as prune  # doctest: +SKIP
        >>> model = apply_masks(ticket.build_model(), ticket)  # doctest: +SKIP
        >>> prune.is_pruned(model)  # doctest: +SKIP
        True
    """
    from torch.nn.utils import prune

    modules = dict(model.named_modules())
    plan: list[tuple[nn.Module, str, torch.Tensor]] = []
    for name, mask in ticket.masks.items():
        module_name, _, param = name.rpartition(".")
        module = modules.get(module_name)
        if module is None or not isinstance(getattr(module, param, None), torch.Tensor):
            raise MaskError(f"the model has no parameter {name!r} of the {ticket.arch} ticket", tensor=name,
                            fix="apply the masks to a model of the ticket's architecture (ticket.build_model())")
        weight = getattr(module, param)
        if tuple(weight.shape) != tuple(mask.shape):
            raise MaskError(f"{name!r} has shape {list(weight.shape)} in the model but {list(mask.shape)} in the "
                            "ticket", tensor=name, fix="check the architecture and num_classes")
        if prune.is_pruned(module) and hasattr(module, f"{param}_mask"):
            raise MaskError(f"{name!r} already has a pruning mask", tensor=name,
                            fix="apply the masks to a fresh model, or prune.remove() the old ones first")
        plan.append((module, param, mask))
    for module, param, mask in plan:  # checked everything first: all or nothing
        weight = getattr(module, param)
        prune.custom_from_mask(module, param, mask.to(device=weight.device, dtype=weight.dtype))
    return model


# -- open_lth ---------------------------------------------------------------------------------------
_MODEL_NAME = re.compile(r"cifar_(resnet|vgg)_(\d+)(?:_(\d+))?")
_CHECKPOINT = re.compile(r"model_ep(\d+)_it(\d+)\.pth")


def read_open_lth_hparams(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """``hparams.log`` as ``{section: {key: value}}`` (``Model Hyperparameters`` -> ``model_name`` -> ...)."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        m = re.match(r"\s*\*\s*([^=]+?)\s*=>\s*(.*?)\s*$", line)
        if m:
            current[m.group(1)] = m.group(2)
        elif not line[:1].isspace():
            current = sections.setdefault(line.strip(), {})
    return {k: v for k, v in sections.items() if v}


def _hparam(hparams: Mapping[str, Mapping[str, str]], key: str, section_word: str | None = None) -> str | None:
    for section, values in hparams.items():
        if section_word is not None and section_word.lower() not in section.lower():
            continue
        if key in values:
            return values[key]
    return None


def arch_from_open_lth(model_name: str) -> str:
    """Our architecture id of an open_lth ``model_name`` (``cifar_resnet_20`` -> ``cifar_resnet20``)."""
    m = _MODEL_NAME.fullmatch(model_name.strip())
    if not m:
        raise ConversionError(f"open_lth model {model_name!r} is not supported",
                              fix="ticketfmt imports cifar_resnet_N and cifar_vgg_N runs; give --arch for others")
    if m.group(3) and not (m.group(1) == "resnet" and int(m.group(3)) == 16):
        raise ConversionError(f"open_lth model {model_name!r} has width {m.group(3)}, but ticketfmt's CIFAR ResNets "
                              "are 16 wide", fix="only the standard width (cifar_resnet_N) can be imported")
    return f"cifar_{m.group(1)}{m.group(2)}"


def open_lth_key_map(spec: ArchSpec) -> dict[str, str]:
    """``open_lth name -> our name`` for every state-dict key of a CIFAR ResNet or CIFAR VGG.

    open_lth's CIFAR ResNet: ``conv``, ``bn``, ``blocks.N.{conv1,bn1,conv2,bn2}``,
    ``blocks.N.shortcut.{0,1}`` (blocks numbered across stages), ``fc``. Its CIFAR VGG:
    ``layers.N.{conv,bn}`` (N counts the max-pools too), ``fc``. Ours follow torchvision.
    """
    ours = list(state_dict_shapes(spec))
    mapping: dict[str, str] = {}
    if spec.family == "cifar_resnet":
        flat = 0
        prefixes: dict[str, str] = {"conv1.": "conv.", "bn1.": "bn.", "fc.": "fc."}
        for s, n in enumerate(spec.stages):
            for j in range(n):
                base_ours, base_theirs = f"layer{s + 1}.{j}.", f"blocks.{flat}."
                for part in ("conv1.", "bn1.", "conv2.", "bn2."):
                    prefixes[base_ours + part] = base_theirs + part
                prefixes[base_ours + "downsample.0."] = base_theirs + "shortcut.0."
                prefixes[base_ours + "downsample.1."] = base_theirs + "shortcut.1."
                flat += 1
    elif spec.family == "cifar_vgg":
        prefixes = {"classifier.": "fc."}
        family = spec.family_obj
        layer = 0
        for s, idxs in enumerate(family.feature_indices(spec)):  # type: ignore[attr-defined]
            for i in idxs:
                prefixes[f"features.{i}."] = f"layers.{layer}.conv."
                prefixes[f"features.{i + 1}."] = f"layers.{layer}.bn."
                layer += 1
            if s < len(spec.stages) - 1:
                layer += 1  # open_lth's plan holds the max-pool ('M') as a layer
    else:
        raise ConversionError(f"{spec.id}: only CIFAR ResNets and CIFAR VGGs can be imported from open_lth",
                              fix="give --arch cifar_resnetN or cifar_vggN")
    for key in ours:
        for mine, theirs in prefixes.items():
            if key.startswith(mine):
                mapping[theirs + key[len(mine):]] = key
                break
        else:  # pragma: no cover - every key of these families has a prefix above
            raise ConversionError(f"no open_lth name for {key!r}")
    return mapping


class OpenLTHRun:
    """The files of one open_lth lottery run that a ticket needs (level folder, rewind checkpoint, hparams)."""

    def __init__(self, run_dir: str | os.PathLike[str], level: int, rewind_checkpoint: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.level = level
        if not self.run_dir.is_dir():
            raise TicketError(f"{self.run_dir}: no such folder", fix="give the open_lth run folder (it holds level_0/, "
                              "level_1/, ...)")
        self.level_dir = self._main(level)
        self.mask_path = self.level_dir / "mask.pth"
        if not self.mask_path.is_file():
            raise TicketError(f"{self.mask_path}: no such file",
                              fix=f"check --level (levels found: {', '.join(map(str, self.levels())) or 'none'})")
        self.zero_dir = self._main(0)
        self.rewind_path = self._rewind(rewind_checkpoint)
        self.hparams_path = next((p for p in (self.level_dir / "hparams.log", self.zero_dir / "hparams.log",
                                              self.run_dir / "hparams.log") if p.is_file()), None)

    def levels(self) -> list[int]:
        found = []
        for p in self.run_dir.glob("level_*"):
            m = re.fullmatch(r"level_(\d+)", p.name)
            if m and (p / "main" / "mask.pth").is_file():
                found.append(int(m.group(1)))
        return sorted(found)

    def _main(self, level: int) -> Path:
        d = self.run_dir / f"level_{level}" / "main"
        if not d.is_dir():
            d2 = self.run_dir / f"level_{level}"
            if not d2.is_dir():
                raise TicketError(f"{self.run_dir}: no level_{level}/main folder",
                                  fix=f"check --level (levels found: {', '.join(map(str, self.levels())) or 'none'})")
            return d2
        return d

    def _rewind(self, name: str | None) -> Path:
        if name is not None:
            path = Path(name) if os.sep in name else self.zero_dir / name
            if not path.is_file():
                raise TicketError(f"{path}: no such checkpoint", fix="name a model_epE_itI.pth of level_0/main")
            return path
        found = sorted((_step(p), p) for p in self.zero_dir.glob("model_ep*_it*.pth") if _CHECKPOINT.fullmatch(p.name))
        if not found:
            raise TicketError(f"{self.zero_dir}: no model_epE_itI.pth checkpoint",
                              fix="the level-0 folder must hold the rewind (or initial) weights")
        # open_lth writes the weights at the training start step (0 or the rewind step) first; the
        # other checkpoints of level 0 are later (the end of training).
        return found[0][1]

    def final_checkpoint(self) -> Path | None:
        """The level's weights at the end of training (open_lth saves the start and the end step)."""
        start = _step(self.rewind_path)
        found = sorted((_step(p), p) for p in self.level_dir.glob("model_ep*_it*.pth") if _CHECKPOINT.fullmatch(p.name))
        return found[-1][1] if found and found[-1][0] > start else None


def _step(path: Path) -> tuple[int, int]:
    m = _CHECKPOINT.fullmatch(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything but tensors and containers
        raise TicketError(f"{path}: cannot read it as a tensor dict ({type(e).__name__}: {' '.join(str(e).split())[:200]})",
                          fix="open_lth saves plain state dicts; pickled objects are never loaded") from None
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in obj.items()):
        raise TicketError(f"{path}: not a dict of tensors", fix="give open_lth's mask.pth / model_epE_itI.pth files")
    return dict(obj)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rename(tensors: Mapping[str, torch.Tensor], key_map: Mapping[str, str], what: str, path: Path,
            required: bool) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    unknown = [k for k in tensors if k not in key_map]
    if unknown:
        raise TicketError(f"{path}: {what} key {unknown[0]!r} is not an open_lth name of this architecture",
                          fix="check the architecture (hparams.log model_name, or --arch)")
    for k, v in tensors.items():
        out[key_map[k]] = v
    if required:
        missing = [theirs for theirs, mine in key_map.items() if mine not in out]
        if missing:
            raise TicketError(f"{path}: {what} lacks {len(missing)} key(s), first {missing[0]!r}",
                              fix="check the architecture (hparams.log model_name, or --arch)")
    return out


def _rewind_label(path: Path, hparams: Mapping[str, Mapping[str, str]]) -> str:
    ep, it = _step(path)
    if (ep, it) == (0, 0):
        return "0"
    steps = _hparam(hparams, "training_steps", "pretrain")
    if steps:
        return steps
    if it == 0:
        return f"{ep}ep"
    if ep == 0:
        return f"{it}it"
    return f"{ep}ep{it}it"


def import_open_lth(run_dir: str | os.PathLike[str], level: int, arch: str | None = None, *,
                    rewind_checkpoint: str | None = None, with_trained: bool = False) -> tuple[Ticket, list[str]]:
    """A ticket from an open_lth (or ElasticLTH) lottery run; returns ``(ticket, notes)``.

    Masks come from ``RUN_DIR/level_L/main/mask.pth``, the weights from the level-0 checkpoint
    at the training start step (``model_ep0_it0.pth``, or the rewind step), the architecture
    from ``hparams.log`` (``model_name``) unless ``arch`` is given. Layers open_lth did not mask
    are kept dense; open_lth's VGG classifier (never pruned) is left out of the masks. The
    provenance records the level, prune rate, rewind point, dataset, the hparams and the
    files' sha256. ``with_trained`` also imports the level's final weights.

    Example:
        >>> ticket, notes = import_open_lth("open_lth_data/lottery_abc/replicate_1", level=8)  # doctest: +SKIP
    """
    from ticketfmt.ticket import Ticket

    run = OpenLTHRun(run_dir, level, rewind_checkpoint)
    hparams = read_open_lth_hparams(run.hparams_path) if run.hparams_path else {}
    notes: list[str] = []
    if arch is None:
        model_name = _hparam(hparams, "model_name")
        if model_name is None:
            raise TicketError(f"{run.run_dir}: no hparams.log with a model_name",
                              fix="give the architecture with --arch (e.g. cifar_resnet20)")
        arch = arch_from_open_lth(model_name)
    masks_raw = _load_tensors(run.mask_path)
    init_raw = _load_tensors(run.rewind_path)
    fc = init_raw.get("fc.weight")
    spec = get_arch(arch, fc.shape[0] if isinstance(fc, torch.Tensor) and fc.dim() == 2 else None)
    key_map = open_lth_key_map(spec)
    init = _rename(init_raw, key_map, "checkpoint", run.rewind_path, required=True)
    prunable = prunable_names(spec)
    masks_named = _rename(masks_raw, key_map, "mask", run.mask_path, required=False)
    masks: dict[str, torch.Tensor] = {}
    for name, m in masks_named.items():
        if not bool(((m == 0) | (m == 1)).all()):
            raise TicketError(f"{run.mask_path}: mask of {name!r} is not binary", fix="the run's mask.pth is damaged")
        m = m.to(torch.bool)
        if name not in prunable:
            if not bool(m.all()):
                raise ConversionError(f"open_lth pruned {name!r}, which {spec.id} keeps dense in ticketfmt "
                                      f"({int((~m).sum())} weights removed)",
                                      fix="only runs that leave this layer unpruned can be imported "
                                          "(open_lth's pruning_layers_to_ignore)")
            notes.append(f"{name} is dense in ticketfmt's {spec.id}: its all-ones mask was dropped")
            continue
        masks[name] = m
    for name in prunable:
        if name not in masks:
            masks[name] = torch.ones(init[name].shape, dtype=torch.bool)
            notes.append(f"{name} has no mask in the run: kept dense")
    trained = None
    final = run.final_checkpoint() if with_trained else None
    if with_trained:
        if final is None:
            raise TicketError(f"{run.level_dir}: no trained checkpoint", fix="leave out --with-trained")
        trained = _rename(_load_tensors(final), key_map, "checkpoint", final, required=True)
    rate = _hparam(hparams, "pruning_fraction")
    provenance: dict[str, Any] = {
        "method": "imp",
        "level": level,
        "rate": _number(rate),
        "rewind": _rewind_label(run.rewind_path, hparams),
        "dataset": _hparam(hparams, "dataset_name"),
        "recipe": {"source": "open_lth", **{k: v for section, values in hparams.items()
                                            if "train" in section.lower() and "pretrain" not in section.lower()
                                            for k, v in values.items()}},
        "seed": _number(_hparam(hparams, "data_order_seed") or _hparam(hparams, "transformation_seed")),
        "imported_from": {
            "tool": "open_lth",
            "run": run.run_dir.name,
            "model_name": _hparam(hparams, "model_name"),
            "mask": {"file": f"level_{level}/main/mask.pth", "sha256": _sha256(run.mask_path)},
            "init": {"file": os.path.relpath(run.rewind_path, run.run_dir), "sha256": _sha256(run.rewind_path)},
            "trained": ({"file": os.path.relpath(final, run.run_dir), "sha256": _sha256(final)}
                        if final is not None else None),
            "hparams": hparams,
        },
    }
    provenance = {k: v for k, v in provenance.items() if v is not None}
    try:
        ticket = Ticket(spec, masks, init, trained, provenance, [])
    except MaskError as e:
        raise TicketError(f"{run.run_dir}: {e.message}", fix=e.fix or "check the architecture (--arch)") from None
    return ticket, notes


def _number(text: str | None) -> int | float | str | None:
    if text is None:
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
