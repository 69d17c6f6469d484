"""The training recipes of the Elastic LTH paper as named, frozen, overridable records.

Three recipes (``docs``: the paper's Table "training set-up"):

========================  ==========  =====  ======  =============  =========  ========  ==========================
name                      optimizer   lr     batch   epochs         milestones warm-up   rewind
========================  ==========  =====  ======  =============  =========  ========  ==========================
``cifar_resnet``          SGD m0.9    0.1    128     160            80, 120    0         1000 iterations
``cifar_vgg``             SGD m0.9    0.1    128     160            80, 120    0         200 iterations
``imagenet_resnet``       SGD m0.9    0.4    1024    90             30, 60, 80 5 epochs  5 epochs
========================  ==========  =====  ======  =============  =========  ========  ==========================

All use weight decay 1e-4 and multiply the learning rate by 0.1 at each milestone. The
recipe is chosen from the architecture's family (:func:`default_recipe`), every field can
be overridden (:meth:`Recipe.override`), and ``Recipe.to_json()`` is what tickets record
in their provenance. Shortening ``epochs`` without giving new ``milestones`` (or
``warmup_epochs``) scales them with it, so a quick run keeps the shape of the schedule.

Steps ("iterations") are optimizer steps; the learning rate is a function of the step
(:meth:`Recipe.lr_at`), which is how training resumes from a rewind point with the
schedule continuing from there. Rewind points are written ``"1000it"``, ``"5ep"`` or
``"0"`` (:func:`parse_rewind`).

This module imports no torch.

Example:
    >>> r = recipe_for("cifar_resnet20")
    >>> r.name, r.lr, r.batch_size, r.epochs, r.rewind
    ('cifar_resnet', 0.1, 128, 160, '1000it')
    >>> quick = r.override(epochs=8)
    >>> quick.milestones
    (4.0, 6.0)
    >>> quick.lr_at(0, steps_per_epoch=10), quick.lr_at(45, steps_per_epoch=10)
    (0.1, 0.010000000000000002)
    >>> parse_rewind("5ep", steps_per_epoch=391)
    1955
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ticketfmt.errors import TicketError

__all__ = ["Recipe", "RECIPES", "get_recipe", "recipe_for", "default_recipe_name", "parse_rewind", "AUGMENTATIONS",
           "PROTOCOLS", "protocol"]

AUGMENTATIONS = ("crop32-pad4+flip", "rrc224+flip", "none")
"""Training augmentations: the 32×32 one (random crop with 4-pixel padding and flip, on the
device), ImageNet's random resized crop 224 and flip (test: resize 256, center crop 224),
or none. The data layer applies the one that fits the network's input and the data
(:func:`ticketfmt.data.input_pipeline`, at the network's own side: ``crop{N}-pad4+flip``,
``rrc{N}+flip``); ``none`` turns it off."""

_AUGMENTATION = re.compile(r"crop\d+-pad\d+\+flip|rrc\d+\+flip|none")

PROTOCOLS = ("full", "reduced")
"""How a result was trained: ``full`` (the whole training split, at least the named recipe's
epochs) or ``reduced`` (a training subset or a shortened schedule: never a benchmark result)."""


_REWIND = re.compile(r"\s*(\d+)\s*(it|iter|iters|iterations|steps?|ep|epochs?)?\s*")


def parse_rewind(text: str | int, steps_per_epoch: int) -> int:
    """The optimizer step of a rewind point: ``"1000it"`` → 1000, ``"5ep"`` → 5 × steps per epoch, ``"0"`` → 0.

    Example:
        >>> parse_rewind("200it", 391), parse_rewind(0, 391)
        (200, 0)
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise TicketError(f"rewind point {text} is negative", fix="write it as 1000it, 5ep or 0")
        return text
    m = _REWIND.fullmatch(str(text))
    if not m:
        raise TicketError(f"cannot read rewind point {text!r}", fix="write it as 1000it (iterations), 5ep (epochs) or 0")
    n, unit = int(m.group(1)), (m.group(2) or "it")
    if n and unit.startswith("ep"):
        return n * steps_per_epoch
    if n and m.group(2) is None:
        raise TicketError(f"rewind point {text!r} has no unit", fix=f"write {n}it (iterations) or {n}ep (epochs)")
    return n


@dataclass(frozen=True)
class Recipe:
    """How to train: optimizer, learning-rate schedule, batch, epochs, rewind point, augmentation.

    Attributes:
        name: the recipe it started from (``cifar_resnet``, ``cifar_vgg``, ``imagenet_resnet``).
        lr: peak learning rate (for the whole batch, over all processes).
        batch_size: global batch size (split over the processes under DDP).
        epochs: training length in epochs.
        milestones: epochs (may be fractional) at which the learning rate is multiplied by ``gamma``.
        gamma: the learning-rate factor at each milestone.
        warmup_epochs: linear warm-up from 0 to ``lr`` over this many epochs.
        warmup_offset: step ``s`` of the warm-up uses ``lr · (s + warmup_offset) / warm``: 0 is the
            reference's (open_lth: ``lr · s / warm``, lr 0 at step 0), 1 is ticketfmt 1.0's.
        momentum: SGD momentum.
        weight_decay: L2 weight decay (applied to every parameter, as the reference code does).
        nesterov: Nesterov momentum.
        optimizer: only ``sgd``.
        rewind: the rewind point, ``"1000it"``, ``"5ep"`` or ``"0"``.
        augmentation: one of :data:`AUGMENTATIONS`.
        overrides: the fields changed from the named recipe (recorded, not compared).
    """

    name: str
    lr: float
    batch_size: int
    epochs: int
    milestones: tuple[float, ...]
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    optimizer: str = "sgd"
    rewind: str = "0"
    augmentation: str = "crop32-pad4+flip"
    warmup_offset: int = 0
    overrides: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.optimizer != "sgd":
            raise TicketError(f"optimizer {self.optimizer!r} is not supported", fix="use sgd (the paper's optimizer)")
        if not self.lr > 0:
            raise TicketError(f"learning rate must be positive, got {self.lr}", fix="pass --lr 0.1")
        if self.batch_size < 1:
            raise TicketError(f"batch size must be at least 1, got {self.batch_size}", fix="pass --batch-size 128")
        if self.epochs < 1:
            raise TicketError(f"epochs must be at least 1, got {self.epochs}", fix="pass --epochs 1 or more")
        if any(not 0 < m for m in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise TicketError(f"milestones {list(self.milestones)} must be positive and increasing",
                              fix="pass --milestones 80,120")
        if self.warmup_epochs < 0:
            raise TicketError(f"warm-up must not be negative, got {self.warmup_epochs}", fix="pass --warmup 0")
        if self.warmup_offset not in (0, 1):
            raise TicketError(f"warm-up offset must be 0 or 1, got {self.warmup_offset}",
                              fix="pass --warmup-offset 0 (the reference's lr·step/warm) or 1")
        if not 0 <= self.momentum < 1:
            raise TicketError(f"momentum must be in [0, 1), got {self.momentum}", fix="pass --momentum 0.9")
        if self.weight_decay < 0:
            raise TicketError(f"weight decay must not be negative, got {self.weight_decay}",
                              fix="pass --weight-decay 1e-4")
        if not _AUGMENTATION.fullmatch(self.augmentation):
            raise TicketError(f"unknown augmentation {self.augmentation!r}", fix=f"use one of {', '.join(AUGMENTATIONS)}")
        parse_rewind(self.rewind, 1)  # syntax check

    # -- schedule --------------------------------------------------------------------------------
    def total_steps(self, steps_per_epoch: int) -> int:
        return self.epochs * steps_per_epoch

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based): warm-up, then step decay.

        As the reference's schedule: ``lr · min(1, (step + warmup_offset) / warm) · gamma^k``,
        ``k`` the milestones at or before ``step`` (so with warm-up step 0 trains at lr 0).
        """
        # the reference's arithmetic, factor by factor (bit-identical LRs): lr · (1 · gamma^k · warm-up)
        factor = 1.0
        if self.milestones:
            factor *= self.gamma ** sum(step >= round(m * steps_per_epoch) for m in self.milestones)
        warm = round(self.warmup_epochs * steps_per_epoch)
        if warm > 0:
            factor *= min(1.0, (step + self.warmup_offset) / warm)
        return self.lr * factor

    def rewind_step(self, steps_per_epoch: int) -> int:
        return parse_rewind(self.rewind, steps_per_epoch)

    # -- changes ---------------------------------------------------------------------------------
    def override(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (``None`` values are ignored).

        Changing ``epochs`` alone scales ``milestones`` and ``warmup_epochs`` by the same
        factor (the schedule keeps its shape); give them too to set them exactly.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        names = {f.name for f in dataclasses.fields(self)} - {"name", "overrides"}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TicketError(f"unknown recipe field(s) {', '.join(unknown)}", fix=f"use {', '.join(sorted(names))}")
        if "milestones" in changes:
            changes["milestones"] = tuple(float(m) for m in changes["milestones"])
        if "epochs" in changes and changes["epochs"] != self.epochs and self.epochs > 0:
            factor = int(changes["epochs"]) / self.epochs
            if "milestones" not in changes:
                changes["milestones"] = tuple(_tidy(m * factor) for m in self.milestones)
            if "warmup_epochs" not in changes:
                changes["warmup_epochs"] = _tidy(self.warmup_epochs * factor)
        changed = [k for k, v in changes.items() if getattr(self, k) != v]
        if not changed:
            return self
        overrides = tuple(sorted(set(self.overrides) | set(changed)))
        return dataclasses.replace(self, **changes, overrides=overrides)

    # -- records ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The recipe as recorded in a ticket's provenance."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        d["overrides"] = list(self.overrides)
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recipe:
        """Rebuild a recipe recorded by :meth:`to_json` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "milestones" in kwargs:
            kwargs["milestones"] = tuple(float(m) for m in kwargs["milestones"])
        if "overrides" in kwargs:
            kwargs["overrides"] = tuple(kwargs["overrides"])
        base = RECIPES.get(str(kwargs.get("name", "")))
        if base is not None:
            return dataclasses.replace(base, **kwargs)
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise TicketError(f"incomplete recipe record: {e}", fix="record a whole recipe") from None

    def describe(self) -> str:
        """One line, e.g. ``cifar_resnet: SGD lr 0.1 m0.9 wd 1e-4, batch 128, 160 ep (x0.1 at 80,120), rewind 1000it``."""
        ms = ",".join(f"{m:g}" for m in self.milestones) or "none"
        warm = f", warm-up {self.warmup_epochs:g} ep" if self.warmup_epochs else ""
        warm += f" (offset {self.warmup_offset})" if self.warmup_epochs and self.warmup_offset else ""
        extra = f" [overrides: {', '.join(self.overrides)}]" if self.overrides else ""
        return (f"{self.name}: SGD lr {self.lr:g} m{self.momentum:g} wd {self.weight_decay:g}, batch {self.batch_size}, "
                f"{self.epochs} ep (x{self.gamma:g} at {ms}){warm}, rewind {self.rewind}, {self.augmentation}{extra}")


def _tidy(x: float) -> float:
    return float(round(x, 6))


RECIPES: dict[str, Recipe] = {
    "cifar_resnet": Recipe("cifar_resnet", lr=0.1, batch_size=128, epochs=160, milestones=(80.0, 120.0),
                           rewind="1000it", augmentation="crop32-pad4+flip"),
    "cifar_vgg": Recipe("cifar_vgg", lr=0.1, batch_size=128, epochs=160, milestones=(80.0, 120.0),
                        rewind="200it", augmentation="crop32-pad4+flip"),
    "imagenet_resnet": Recipe("imagenet_resnet", lr=0.4, batch_size=1024, epochs=90, milestones=(30.0, 60.0, 80.0),
                              warmup_epochs=5.0, rewind="5ep", augmentation="rrc224+flip"),
}
"""The paper's recipes by name."""

_FAMILY_RECIPE = {"cifar_resnet": "cifar_resnet", "cifar_vgg": "cifar_vgg", "resnet": "imagenet_resnet",
                  "vgg": "imagenet_resnet"}


def get_recipe(name: str) -> Recipe:
    """A named recipe.

    Example:
        >>> get_recipe("cifar_vgg").rewind
        '200it'
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise TicketError(f"unknown recipe {name!r}", fix=f"use one of {', '.join(RECIPES)}") from None


def default_recipe_name(family: str) -> str:
    """The recipe of an architecture family (ImageNet VGGs borrow the ImageNet ResNet recipe)."""
    return _FAMILY_RECIPE.get(family, "imagenet_resnet")


def recipe_for(arch: Any, name: str | None = None, **overrides: Any) -> Recipe:
    """The recipe for an architecture (id or ``ArchSpec``), by family unless ``name`` is given, with overrides.

    Example:
        >>> recipe_for("cifar_vgg16", epochs=2).milestones
        (1.0, 1.5)
    """
    if name is None:
        from ticketfmt.zoo import get_arch
        name = default_recipe_name(get_arch(arch).family)
    return get_recipe(name).override(**overrides)


def protocol(recipe: Recipe, subset: int | None) -> tuple[str, str | None]:
    """Whether a result was trained by its recipe's full protocol: ``("full", None)`` or ``("reduced", why)``.

    Reduced: a training subset, or fewer epochs than the named recipe's (``cifar_resnet``: 160).
    Results records carry it (``protocol``), so a short CPU check is never published as the
    dataset's benchmark result.

    Example:
        >>> protocol(RECIPES["cifar_resnet"], None)
        ('full', None)
        >>> protocol(RECIPES["cifar_resnet"].override(epochs=2), 8000)
        ('reduced', 'a training subset of 8000 images; 2 epochs instead of 160')
    """
    why = []
    if subset is not None:
        why.append(f"a training subset of {subset} images")
    base = RECIPES.get(recipe.name)
    if base is not None and recipe.epochs < base.epochs:
        why.append(f"{recipe.epochs} epoch{'s' if recipe.epochs != 1 else ''} instead of {base.epochs}")
    return ("reduced", "; ".join(why)) if why else ("full", None)
