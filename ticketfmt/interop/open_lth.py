"""Tickets from runs of facebookresearch/open_lth and of ElasticLTH (built on it).

open_lth stores a lottery run as ``OPEN_LTH_DATA/lottery_<hash>/replicate_R/level_L/main``
(``level_pretrain/main`` for the pre-training to the rewind step), each level folder holding
``mask.pth`` and ``model_epE_itI.pth`` checkpoints at the training start and end steps;
``level_0/main`` also holds ``hparams.log`` and the weights at the training start step (the
rewind weights). An ElasticLTH ``change_depth`` branch writes
``level_L/lottery_branch_change_depth_<hash>/`` beside ``main``: the converted mask and the
target network's weights at the start and end steps (its target is named in no file, so
it is read off the checkpoint's keys).

:func:`import_open_lth` accepts the ``lottery_<hash>`` folder (``replicate``: which
``replicate_N``, default 1), a ``replicate_N`` folder, or a branch folder; every file is read
with ``torch.load(weights_only=True)`` (no pickled code runs). The ticket's provenance holds
the run's training recipe as a full recipe record (``ticket verify`` retrains with it), the
rewind step, the data-order seed, the original ``hparams.log`` text and the sha256 of every
file read.

Example:
    >>> ticket, notes = import_open_lth("open_lth_data/lottery_93bc65d6", level=8)  # doctest: +SKIP
    >>> ticket.provenance["recipe"]["epochs"], ticket.provenance["rewind"]  # doctest: +SKIP
    (160, '1000it')
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ticketfmt.errors import ConversionError, MaskError, TicketError
from ticketfmt.interop.open_lth_hparams import (DATASET, MODEL, PRETRAIN_TRAINING, iterations_per_epoch,
                                                open_lth_recipe, open_lth_seed, parse_open_lth_hparams, steps_of)
from ticketfmt.interop.open_lth_models import arch_from_open_lth, infer_open_lth_arch, open_lth_key_map
from ticketfmt.zoo import ArchSpec, get_arch, prunable_names

if TYPE_CHECKING:
    from ticketfmt.ticket import Ticket

__all__ = ["import_open_lth", "OpenLTHRun"]

_CHECKPOINT = re.compile(r"model_ep(\d+)_it(\d+)\.pth")
_BRANCH = re.compile(r"lottery_branch_(.+?)(?:_[0-9a-f]{32})?")
_WHICH = ("give an open_lth lottery_<hash> folder (--replicate N picks replicate_N, default 1), one of its "
          "replicate_N folders, or an ElasticLTH branch folder level_L/lottery_branch_*")


class OpenLTHRun:
    """The files of one open_lth lottery level (or ElasticLTH branch) that a ticket needs.

    Attributes:
        replicate_dir: the ``replicate_N`` folder.
        level: the pruning level; ``branch``: the branch's name (``change_depth``) or None.
        level_dir: the folder with the level's ``mask.pth`` and its checkpoints.
        zero_dir: ``level_0/main`` (the rewind weights and ``hparams.log``).
        mask_path, rewind_path, hparams_path: the files read (``hparams_path`` may be None).

    Example:
        >>> run = OpenLTHRun("open_lth_data/lottery_93bc65d6", 8)  # doctest: +SKIP
        >>> run.mask_path.name, run.rewind_path.name  # doctest: +SKIP
        ('mask.pth', 'model_ep2_it218.pth')
    """

    def __init__(self, run_dir: str | os.PathLike[str], level: int | None = None,
                 rewind_checkpoint: str | None = None, *, replicate: int = 1) -> None:
        path = Path(run_dir)
        if not path.is_dir():
            raise TicketError(f"{path}: no such folder", fix=_WHICH)
        m = _BRANCH.fullmatch(path.name) if re.fullmatch(r"level_\d+", path.parent.name) else None
        self.branch: str | None = m.group(1) if m else None
        if self.branch is not None:
            found = int(path.parent.name[len("level_"):])
            if level is not None and level != found:
                raise TicketError(f"{path} is a branch of level {found}, not {level}", fix=f"pass --level {found} "
                                  "or leave --level out")
            self.replicate_dir, self.level, self.level_dir = path.parent.parent, found, path
        else:
            self.replicate_dir = _replicate_dir(path, replicate)
            if level is None:
                raise TicketError(f"{self.replicate_dir}: which pruning level?",
                                  fix=f"pass --level L (levels found: {self._levels_text()})")
            self.level, self.level_dir = level, self._main(level)
        self.run_dir = self.replicate_dir
        self.mask_path = self.level_dir / "mask.pth"
        if not self.mask_path.is_file():
            raise TicketError(f"{self.mask_path}: no such file", fix=f"check --level (levels found: "
                                                                      f"{self._levels_text()})")
        self.zero_dir = self.replicate_dir / "level_0" / "main"
        if self.branch is None:
            self.zero_dir = self._main(0)
        self.rewind_path = self._rewind(rewind_checkpoint)
        self.hparams_path = next((p for p in (self.level_dir / "hparams.log", self.zero_dir / "hparams.log",
                                              self.replicate_dir / "hparams.log") if p.is_file()), None)

    def levels(self) -> list[int]:
        """The levels of the replicate that hold a ``mask.pth``."""
        found = []
        for p in self.replicate_dir.glob("level_*"):
            m = re.fullmatch(r"level_(\d+)", p.name)
            if m and ((p / "main" / "mask.pth").is_file() or (p / "mask.pth").is_file()):
                found.append(int(m.group(1)))
        return sorted(found)

    def _levels_text(self) -> str:
        return ", ".join(map(str, self.levels())) or "none"

    def _main(self, level: int) -> Path:
        d = self.replicate_dir / f"level_{level}"
        if (d / "main").is_dir():
            return d / "main"
        if not d.is_dir():
            raise TicketError(f"{self.replicate_dir}: no level_{level}/main folder",
                              fix=f"check --level (levels found: {self._levels_text()})")
        return d

    def _rewind(self, name: str | None) -> Path:
        # A branch trains from its own start-step checkpoint; a level from level 0's.
        home = self.level_dir if self.branch is not None else self.zero_dir
        if name is not None:
            path = Path(name) if os.sep in name else home / name
            if not path.is_file():
                raise TicketError(f"{path}: no such checkpoint", fix=f"name a model_epE_itI.pth of {home}")
            return path
        found = _checkpoints(home)
        if not found:
            raise TicketError(f"{home}: no model_epE_itI.pth checkpoint",
                              fix="the folder must hold the weights at the training start (rewind) step")
        # open_lth saves the weights at the training start step (0 or the rewind step) first;
        # the other checkpoints of the folder are later (the end of training).
        return found[0]

    def final_checkpoint(self) -> Path | None:
        """The level's weights at the end of training (open_lth saves the start and the end step)."""
        found = _checkpoints(self.level_dir)
        return found[-1] if found and _step(found[-1]) > _step(self.rewind_path) else None

    def relative(self, path: Path) -> str:
        """``path`` relative to the replicate folder (as recorded in the provenance)."""
        return Path(os.path.relpath(path, self.replicate_dir)).as_posix()


def _replicate_dir(path: Path, replicate: int) -> Path:
    if any(re.fullmatch(r"level_(\d+|pretrain)", p.name) for p in path.iterdir() if p.is_dir()):
        return path
    replicates = sorted(int(p.name.split("_")[1]) for p in path.iterdir()
                        if p.is_dir() and re.fullmatch(r"replicate_\d+", p.name))
    if not replicates:
        raise TicketError(f"{path}: not an open_lth run folder (no level_N/ or replicate_N/ folders in it)", fix=_WHICH)
    if replicate not in replicates:
        raise TicketError(f"{path}: no replicate_{replicate} folder (replicates found: "
                          f"{', '.join(map(str, replicates))})", fix="pick one with --replicate N")
    return path / f"replicate_{replicate}"


def _checkpoints(folder: Path) -> list[Path]:
    found = [p for p in folder.glob("model_ep*_it*.pth") if _CHECKPOINT.fullmatch(p.name)]
    return sorted(found, key=_step)


def _step(path: Path) -> tuple[int, int]:
    m = _CHECKPOINT.fullmatch(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything but tensors and containers
        why = " ".join(str(e).split())[:200]
        raise TicketError(f"{path}: cannot read it as a tensor dict ({type(e).__name__}: {why})",
                          fix="open_lth saves plain state dicts; pickled objects are never loaded") from None
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in obj.items()):
        raise TicketError(f"{path}: not a dict of tensors", fix="give open_lth's mask.pth / model_epE_itI.pth files")
    return dict(obj)


def _file(run: OpenLTHRun, path: Path) -> dict[str, str]:
    return {"file": run.relative(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _rename(tensors: Mapping[str, torch.Tensor], key_map: Mapping[str, str], what: str, path: Path,
            required: bool) -> dict[str, torch.Tensor]:
    unknown = [k for k in tensors if k not in key_map]
    if unknown:
        raise TicketError(f"{path}: {what} key {unknown[0]!r} is not an open_lth name of this architecture",
                          fix="check the architecture (hparams.log model_name, or --arch)")
    out = {key_map[k]: v for k, v in tensors.items()}
    if required:
        missing = [theirs for theirs, mine in key_map.items() if mine not in out]
        if missing:
            raise TicketError(f"{path}: {what} lacks {len(missing)} key(s), first {missing[0]!r}",
                              fix="check the architecture (hparams.log model_name, or --arch)")
    return out


def _spec(run: OpenLTHRun, hparams: Mapping[str, Mapping[str, str]], arch: str | None,
          state: Mapping[str, torch.Tensor], notes: list[str]) -> ArchSpec:
    if arch is None:
        model_name = hparams.get(MODEL, {}).get("model_name")
        if run.branch is None and model_name is not None:
            arch = arch_from_open_lth(model_name)
        else:  # a branch's target network is named in no file
            arch = infer_open_lth_arch(state)
            notes.append(f"architecture {arch} read off the checkpoint's keys"
                         + (f" (hparams.log names the source network, {model_name})" if model_name else ""))
    fc = state.get("fc.weight", state.get("model.fc.weight"))
    return get_arch(arch, fc.shape[0] if isinstance(fc, torch.Tensor) and fc.dim() == 2 else None)


def _masks(spec: ArchSpec, named: Mapping[str, torch.Tensor], init: Mapping[str, torch.Tensor], path: Path,
           notes: list[str]) -> dict[str, torch.Tensor]:
    prunable = prunable_names(spec)
    masks: dict[str, torch.Tensor] = {}
    for name, m in named.items():
        if not bool(((m == 0) | (m == 1)).all()):
            raise TicketError(f"{path}: mask of {name!r} is not binary", fix="the run's mask.pth is damaged")
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
    return masks


def _rewind_label(path: Path, hparams: Mapping[str, Mapping[str, str]]) -> str:
    """A checkpoint's step as ``1000it`` / ``5ep`` / ``0`` (the pre-training's own words when they agree)."""
    ep, it = _step(path)
    ipe = iterations_per_epoch(hparams)
    pre = hparams.get(PRETRAIN_TRAINING, {}).get("training_steps", "")
    simple = re.fullmatch(r"\d+(ep|it)", pre) is not None
    if ipe is not None:
        total = ep * ipe + it  # open_lth names a checkpoint by step // ipe and step % ipe
        if simple:
            pre_ep, pre_it = steps_of(pre)
            if pre_ep * ipe + pre_it == total:
                return pre
        return f"{total}it" if total else "0"
    if not (ep and it):
        return f"{ep}ep" if ep else (f"{it}it" if it else "0")
    if simple:
        return pre
    raise ConversionError(f"{path.name}: cannot tell its step, the run's dataset (epoch length) is unknown",
                          fix="name a rewind checkpoint at a whole epoch with --rewind-checkpoint")


def _provenance(run: OpenLTHRun, text: str, spec: ArchSpec, final: Path | None, notes: list[str]) -> dict[str, Any]:
    hparams = parse_open_lth_hparams(text)
    rewind = _rewind_label(run.rewind_path, hparams)
    recipe, why = open_lth_recipe(hparams, rewind) if hparams else (None, "the run has no hparams.log")
    if recipe is None:
        notes.append(f"no training recipe recorded ({why}): `ticket verify` needs --epochs, --lr, ... or uses "
                     f"the {spec.family} default recipe")
    model_name = hparams.get(MODEL, {}).get("model_name")
    rate = next((v["pruning_fraction"] for v in hparams.values() if "pruning_fraction" in v), None)
    elastic = run.branch is not None and run.branch.startswith("change_depth")
    provenance: dict[str, Any] = {
        "method": "elastic" if elastic else "imp", "level": run.level, "rate": _number(rate), "rewind": rewind,
        "dataset": hparams.get(DATASET, {}).get("dataset_name"), "recipe": recipe, "seed": open_lth_seed(hparams),
        "source": {"arch": _source_arch(model_name), "model_name": model_name, "level": run.level} if elastic else None,
        "open_lth_hparams": text or None,
        "imported_from": {
            "tool": "ElasticLTH" if elastic else "open_lth",
            "run": f"{run.replicate_dir.parent.name}/{run.replicate_dir.name}",
            "branch": run.level_dir.name if run.branch is not None else None,
            "model_name": model_name,
            "mask": _file(run, run.mask_path), "init": _file(run, run.rewind_path),
            "trained": _file(run, final) if final is not None else None,
            "hparams": _file(run, run.hparams_path) if run.hparams_path is not None else None,
        },
    }
    provenance["imported_from"] = {k: v for k, v in provenance["imported_from"].items() if v is not None}
    return {k: v for k, v in provenance.items() if v is not None}


def _source_arch(model_name: str | None) -> str | None:
    try:
        return arch_from_open_lth(model_name) if model_name else None
    except ConversionError:  # a source network ticketfmt has no id for: its open_lth name is recorded beside
        return None


def import_open_lth(run_dir: str | os.PathLike[str], level: int | None = None, arch: str | None = None, *,
                    replicate: int = 1, rewind_checkpoint: str | None = None,
                    with_trained: bool = False) -> tuple[Ticket, list[str]]:
    """A ticket from an open_lth (or ElasticLTH) lottery run; returns ``(ticket, notes)``.

    ``run_dir`` is a ``lottery_<hash>`` folder (``replicate`` picks ``replicate_N``), a
    ``replicate_N`` folder (``level`` required) or an ElasticLTH branch folder
    ``level_L/lottery_branch_change_depth_<hash>`` (the level is its parent's). Masks come
    from the level's ``mask.pth``, the weights from the checkpoint at the training start
    step (level 0's ``model_ep0_it0.pth`` or rewind step; a branch's own first checkpoint),
    the architecture from ``hparams.log`` (``model_name``; a branch's from its keys) unless
    ``arch`` is given. Layers open_lth did not mask are kept dense. The provenance records
    the level, prune rate, rewind point, dataset, a full recipe record, the data-order seed,
    the ``hparams.log`` text and the files' sha256. ``with_trained`` also imports the final
    weights.

    Example:
        >>> ticket, notes = import_open_lth("open_lth_data/lottery_abc/replicate_1", level=8)  # doctest: +SKIP
    """
    from ticketfmt.ticket import Ticket

    run = OpenLTHRun(run_dir, level, rewind_checkpoint, replicate=replicate)
    text = run.hparams_path.read_text(encoding="utf-8", errors="replace") if run.hparams_path else ""
    notes: list[str] = []
    init_raw = _load_tensors(run.rewind_path)
    spec = _spec(run, parse_open_lth_hparams(text), arch, init_raw, notes)
    key_map = open_lth_key_map(spec)
    init = _rename(init_raw, key_map, "checkpoint", run.rewind_path, required=True)
    masks = _masks(spec, _rename(_load_tensors(run.mask_path), key_map, "mask", run.mask_path, required=False), init,
                   run.mask_path, notes)
    final = run.final_checkpoint() if with_trained else None
    if with_trained and final is None:
        raise TicketError(f"{run.level_dir}: no trained checkpoint", fix="leave out --with-trained")
    trained = _rename(_load_tensors(final), key_map, "checkpoint", final, required=True) if final else None
    provenance = _provenance(run, text, spec, final, notes)
    try:
        ticket = Ticket(spec, masks, init, trained, provenance, [])
    except MaskError as e:
        raise TicketError(f"{run.level_dir}: {e.message}", fix=e.fix or "check the architecture (--arch)") from None
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
