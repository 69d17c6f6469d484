"""The training recipes of the Elastic LTH paper as named, frozen, overridable records.

Three recipes (``docs``: the paper's Table "training set-up"):

========================  ==========  =====  ======  =============  =========  ========  ==========================
name                      optimizer   lr     batch   epochs         milestones warm-up   rewind
========================  ==========  =====  ======  =============  =========  ========  ==========================
``cifar_resnet``          SGD m0.9    0.1    128     160            80, 120    0         1000 iterations
``cifar_vgg``             SGD m0.9    0.1    128     160            80, 120    0         200 iterations
``imagenet_resnet``       SGD m0.9    0.4    1024    90             30, 60, 80 5 epochs  5 epochs
========================  ==========  =====  ======  =============  =========  ========  ==========================

All use weight decay 1e-4 and multiply the learning rate by 0.1 at each milestone. Beyond the
paper, the vision transformers train with DeiT's optimizer and schedule (stated in ``docs/CONVERT.md``,
"Staged families"):

========================  ==========  =====  ======  =============  =========  ========  ==========================
``cifar_vit``             AdamW       1e-3   128     200            cosine     5 epochs  1000 iterations
``imagenet_vit``          AdamW       1e-3   1024    300            cosine     5 epochs  5 epochs
========================  ==========  =====  ======  =============  =========  ========  ==========================

both with decoupled weight decay 0.05 (on every parameter, as the reference applies its decay);
``imagenet_vit`` also serves the ConvNeXts. The recipe is chosen from the architecture's family
(:func:`default_recipe`), every field can be overridden (:meth:`Recipe.override`), and
``Recipe.to_json()`` is what tickets record in their provenance. Shortening ``epochs`` without
giving new ``milestones`` (or ``warmup_epochs``) scales them with it, so a quick run keeps the
shape of the schedule.

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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ticketfmt.errors import TicketError

__all__ = ["Recipe", "RECIPES", "get_recipe", "recipe_for", "default_recipe_name", "parse_rewind", "AUGMENTATIONS",
           "PROTOCOLS", "protocol", "OPTIMIZERS", "SCHEDULES", "MAX_EPOCHS"]

MAX_EPOCHS = 10_000
"""The longest schedule a recipe may have (the paper's recipes train 90 to 160 epochs): a bound on the work a
recipe read from a file (a ticket's provenance) can ask for. Milestones and warm-up lie within it too."""
MAX_BATCH = 1 << 20
"""The largest batch (the paper's largest is 1024)."""
MAX_MILESTONES = 100

OPTIMIZERS = ("sgd", "adamw")
"""``sgd`` (the paper's and the reference's, with ``momentum``/``nesterov``) or ``adamw`` (torch's AdamW,
betas (0.9, 0.999), eps 1e-8, decoupled ``weight_decay``: the ViT recipes)."""

SCHEDULES = ("step", "cosine")
"""``step`` (the reference's: ×``gamma`` at each milestone) or ``cosine`` (after the warm-up, half a cosine from
``lr`` down to 0 at the last step; no milestones: the ViT recipes)."""

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
        optimizer: one of :data:`OPTIMIZERS` (``sgd``, the reference's, or ``adamw``).
        schedule: one of :data:`SCHEDULES` (``step``, the reference's, or ``cosine``).
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
    schedule: str = "step"
    overrides: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TicketError(f"optimizer {self.optimizer!r} is not supported",
                              fix="use sgd (the paper's optimizer) or adamw (the ViT recipes')")
        if self.schedule not in SCHEDULES:
            raise TicketError(f"learning-rate schedule {self.schedule!r} is not supported",
                              fix="use step (milestones, the paper's) or cosine")
        if self.schedule == "cosine" and self.milestones:
            raise TicketError(f"a cosine schedule takes no milestones, got {list(self.milestones)}",
                              fix="drop --milestones (or use a step-schedule recipe)")
        problem = _field_problem(self)  # types, finite values and bounds, field by field
        if problem is not None:
            name, expected = problem
            raise TicketError(f"recipe field '{name}' must be {expected}, got {_short(getattr(self, name))}",
                              fix=f"pass {_FLAGS[name]}" if name in _FLAGS else "use a named recipe (--recipe)")
        parse_rewind(self.rewind, 1)  # syntax check

    # -- schedule --------------------------------------------------------------------------------
    def total_steps(self, steps_per_epoch: int) -> int:
        return self.epochs * steps_per_epoch

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based): warm-up, then step decay (or cosine).

        As the reference's schedule: ``lr · min(1, (step + warmup_offset) / warm) · gamma^k``,
        ``k`` the milestones at or before ``step`` (so with warm-up step 0 trains at lr 0). The
        ``cosine`` schedule replaces ``gamma^k`` by ``(1 + cos(π · (step - warm) / (total - warm))) / 2``
        after the warm-up (``total`` = epochs × steps per epoch: 0 at the step after the last).
        """
        if self.schedule == "cosine":
            return self._cosine_lr(step, steps_per_epoch)
        # the reference's arithmetic, factor by factor (bit-identical LRs): lr · (1 · gamma^k · warm-up)
        factor = 1.0
        if self.milestones:
            factor *= self.gamma ** sum(step >= round(m * steps_per_epoch) for m in self.milestones)
        warm = round(self.warmup_epochs * steps_per_epoch)
        if warm > 0:
            factor *= min(1.0, (step + self.warmup_offset) / warm)
        return self.lr * factor

    def _cosine_lr(self, step: int, steps_per_epoch: int) -> float:
        warm = round(self.warmup_epochs * steps_per_epoch)
        if warm > 0 and step < warm:
            return self.lr * min(1.0, (step + self.warmup_offset) / warm)
        span = max(1, self.total_steps(steps_per_epoch) - warm)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / span)))

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
    def from_json(cls, data: Mapping[str, Any], source: str | None = None) -> Recipe:
        """Rebuild a recipe recorded by :meth:`to_json` (unknown keys are ignored), validated as CLI input is.

        A record is input from a file (a ticket's provenance): a field of the wrong type
        (``"lr": "0.1"``), a value that cannot be trained on (``NaN``, ``milestones: ["x"]``)
        or beyond the bounds (``epochs: 1e9``: over :data:`MAX_EPOCHS`) is a one-line
        ``TicketError`` naming the field and ``source`` (where the record was read).

        Example:
            >>> Recipe.from_json({"name": "cifar_resnet", "lr": "0.1"}, source="r.ticket")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ticketfmt.errors.TicketError: the recipe in r.ticket: recipe field 'lr' must be a finite number > 0, ...
        """
        where = f"the recipe in {source}" if source else "the recipe record"
        if not isinstance(data, Mapping):
            raise TicketError(f"{where} is not an object: {_short(data)}", fix="record a whole recipe")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for key in ("milestones", "overrides"):  # JSON arrays; their items are checked with the other fields
            if key in kwargs:
                if not isinstance(kwargs[key], (list, tuple)) or len(kwargs[key]) > MAX_MILESTONES:
                    raise TicketError(f"{where}: recipe field '{key}' must be a list of at most {MAX_MILESTONES} "
                                      f"values, got {_short(kwargs[key])}", fix="correct the record")
                kwargs[key] = tuple(kwargs[key])
        base = RECIPES.get(kwargs["name"]) if isinstance(kwargs.get("name"), str) else None
        try:
            return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
        except TypeError as e:
            raise TicketError(f"{where} is incomplete: {e}", fix="record a whole recipe") from None
        except TicketError as e:
            raise TicketError(f"{where}: {e.message}", fix="correct the record, or override the field "
                              f"({e.fix.removeprefix('pass ') if e.fix else 'see ticket verify --help'})") from None

    def describe(self) -> str:
        """One line, e.g. ``cifar_resnet: SGD lr 0.1 m0.9 wd 1e-4, batch 128, 160 ep (x0.1 at 80,120), rewind 1000it``."""
        ms = ",".join(f"{m:g}" for m in self.milestones) or "none"
        warm = f", warm-up {self.warmup_epochs:g} ep" if self.warmup_epochs else ""
        warm += f" (offset {self.warmup_offset})" if self.warmup_epochs and self.warmup_offset else ""
        extra = f" [overrides: {', '.join(self.overrides)}]" if self.overrides else ""
        opt = f"SGD lr {self.lr:g} m{self.momentum:g}" if self.optimizer == "sgd" else f"AdamW lr {self.lr:g}"
        sched = "cosine" if self.schedule == "cosine" else f"x{self.gamma:g} at {ms}"
        return (f"{self.name}: {opt} wd {self.weight_decay:g}, batch {self.batch_size}, "
                f"{self.epochs} ep ({sched}){warm}, rewind {self.rewind}, {self.augmentation}{extra}")


def _tidy(x: float) -> float:
    return float(round(x, 6))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_FLAGS = {"lr": "--lr 0.1", "batch_size": "--batch-size 128", "epochs": f"--epochs 1 to {MAX_EPOCHS}",
          "milestones": "--milestones 80,120", "warmup_epochs": "--warmup 0", "momentum": "--momentum 0.9",
          "warmup_offset": "--warmup-offset 0 (the reference's lr·step/warm) or 1", "weight_decay": "--weight-decay 1e-4"}
"""The CLI option that sets each field (the fix of an error)."""

_FIELD_RULES: list[tuple[str, Any, str]] = [
    ("name", lambda v: isinstance(v, str), "a string"),
    ("lr", lambda v: _number(v) and v > 0, "a finite number > 0"),
    ("batch_size", lambda v: _integer(v) and 1 <= v <= MAX_BATCH, f"an integer in [1, {MAX_BATCH}]"),
    ("epochs", lambda v: _integer(v) and 1 <= v <= MAX_EPOCHS,
     f"an integer in [1, {MAX_EPOCHS}] (the bound of a schedule; the paper's train 90 to 160 epochs)"),
    ("milestones", lambda v: isinstance(v, tuple) and len(v) <= MAX_MILESTONES
     and all(_number(m) and 0 < m <= MAX_EPOCHS for m in v) and list(v) == sorted(v),
     f"increasing epochs in (0, {MAX_EPOCHS}], at most {MAX_MILESTONES}"),
    ("gamma", lambda v: _number(v) and v > 0, "a finite number > 0"),
    ("warmup_epochs", lambda v: _number(v) and 0 <= v <= MAX_EPOCHS, f"a number of epochs in [0, {MAX_EPOCHS}]"),
    ("warmup_offset", lambda v: _integer(v) and v in (0, 1), "0 or 1"),
    ("momentum", lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("weight_decay", lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    ("nesterov", lambda v: isinstance(v, bool), "true or false"),
    ("rewind", lambda v: isinstance(v, str) or (_integer(v) and v >= 0), "a rewind point: 1000it, 5ep or 0"),
    ("augmentation", lambda v: isinstance(v, str) and _AUGMENTATION.fullmatch(v) is not None,
     f"one of {', '.join(AUGMENTATIONS)}"),
    ("overrides", lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v), "a list of field names"),
]
"""Each field's rule: what a recipe must hold to be trained on (CLI options and records read from files alike;
``optimizer`` and ``schedule`` are checked before)."""


def _field_problem(recipe: Recipe) -> tuple[str, str] | None:
    """The first field of ``recipe`` that cannot be trained on and what it must be; None when all can."""
    for name, ok, expected in _FIELD_RULES:
        if not ok(getattr(recipe, name)):
            return name, expected
    return None


RECIPES: dict[str, Recipe] = {
    "cifar_resnet": Recipe("cifar_resnet", lr=0.1, batch_size=128, epochs=160, milestones=(80.0, 120.0),
                           rewind="1000it", augmentation="crop32-pad4+flip"),
    "cifar_vgg": Recipe("cifar_vgg", lr=0.1, batch_size=128, epochs=160, milestones=(80.0, 120.0),
                        rewind="200it", augmentation="crop32-pad4+flip"),
    "imagenet_resnet": Recipe("imagenet_resnet", lr=0.4, batch_size=1024, epochs=90, milestones=(30.0, 60.0, 80.0),
                              warmup_epochs=5.0, rewind="5ep", augmentation="rrc224+flip"),
    # The appendix's networks, with their reference default hparams (ElasticLTH cifar_vggnfc / cifar_mobilenetv1,
    # open_lth mnist_lenet: plain SGD, no momentum, no weight decay, no schedule, no augmentation, rewind to init).
    "cifar_vggnfc": Recipe("cifar_vggnfc", lr=0.1, batch_size=128, epochs=160, milestones=(80.0, 120.0),
                           rewind="200it", augmentation="crop32-pad4+flip"),
    "cifar_mobilenetv1": Recipe("cifar_mobilenetv1", lr=0.1, batch_size=128, epochs=160, milestones=(80.0, 120.0),
                                rewind="1000it", augmentation="crop32-pad4+flip"),
    "mnist_lenet": Recipe("mnist_lenet", lr=0.1, batch_size=128, epochs=40, milestones=(), momentum=0.0,
                          weight_decay=0.0, rewind="0", augmentation="none"),
    # Not the paper's (it has no transformer): DeiT's optimizer and schedule (AdamW, wd 0.05, 5 warm-up epochs,
    # cosine; lr 5e-4 per 512 images), without its RandAugment/mixup/cutmix/label smoothing.
    "cifar_vit": Recipe("cifar_vit", lr=1e-3, batch_size=128, epochs=200, milestones=(), optimizer="adamw",
                        schedule="cosine", weight_decay=0.05, warmup_epochs=5.0, rewind="1000it",
                        augmentation="crop32-pad4+flip"),
    "imagenet_vit": Recipe("imagenet_vit", lr=1e-3, batch_size=1024, epochs=300, milestones=(), optimizer="adamw",
                           schedule="cosine", weight_decay=0.05, warmup_epochs=5.0, rewind="5ep",
                           augmentation="rrc224+flip"),
}
"""The paper's recipes by name."""

_FAMILY_RECIPE = {"cifar_resnet": "cifar_resnet", "cifar_vgg": "cifar_vgg", "resnet": "imagenet_resnet",
                  "vgg": "imagenet_resnet"}
_FAMILY_RECIPE.update({"cifar_vggnfc": "cifar_vggnfc", "cifar_mobilenetv1": "cifar_mobilenetv1",
                       "mnist_lenet": "mnist_lenet"})
_FAMILY_RECIPE.update({"cifar_vit": "cifar_vit", "vit": "imagenet_vit", "convnext": "imagenet_vit"})


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
