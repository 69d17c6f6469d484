"""open_lth's ``hparams.log``, and the training recipe record it amounts to.

open_lth writes ``hparams.log`` (in ``level_0/main``) as one block per hyperparameter group,
sorted by the group's field name in the lottery description::

    Dataset Hyperparameters
        * dataset_name => cifar10
        * batch_size => 128
    Model Hyperparameters
        * model_name => cifar_resnet_20
    ...
    Training Hyperparameters
        * optimizer_name => sgd
        * lr => 0.1
        * training_steps => 160ep

A field is written only when it has no default or its value is truthy: ``momentum``,
``weight_decay``, ``warmup_steps``, ``data_order_seed`` ... are absent when 0/None, and
this module defaults them as open_lth does (``momentum or nesterov_momentum or 0``,
``weight_decay or 0``, no warm-up, no milestones). Steps are ``160ep``, ``50000it`` or
``2ep100it``; an epoch is ``ceil(train examples × subsample_fraction / batch_size)``
iterations (open_lth's ``iterations_per_epoch``).

:func:`open_lth_recipe` turns the main training group into a recipe record with exactly the
keys of ``ticketfmt.train.recipes.Recipe.to_json()`` (built here as plain data: this layer
may not import ``ticketfmt.train``; a test holds the two together through ``Recipe.from_json``).

Example:
    >>> hp = parse_open_lth_hparams("Training Hyperparameters\\n    * lr => 0.1\\n")
    >>> hp["Training Hyperparameters"]["lr"]
    '0.1'
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ticketfmt.errors import ConversionError

__all__ = ["read_open_lth_hparams", "parse_open_lth_hparams", "open_lth_recipe", "open_lth_seed",
           "iterations_per_epoch", "steps_of", "DATASET", "MODEL", "TRAINING", "PRETRAIN_TRAINING", "TRAIN_EXAMPLES"]

DATASET = "Dataset Hyperparameters"
MODEL = "Model Hyperparameters"
TRAINING = "Training Hyperparameters"
PRETRAIN_DATASET = "Pretraining Dataset Hyperparameters"
PRETRAIN_TRAINING = "Pretraining Training Hyperparameters"

TRAIN_EXAMPLES = {"cifar10": 50000, "imagenet": 1281167, "mnist": 60000, "svhn": 73257}
"""Training-set sizes of open_lth's (and ElasticLTH's) datasets (``Dataset.num_train_examples()``)."""

_STEP = re.compile(r"(?:(\d+)ep)?(?:(\d+)it)?")


def parse_open_lth_hparams(text: str) -> dict[str, dict[str, str]]:
    """``hparams.log`` text as ``{group: {key: value}}`` (values as written)."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for line in text.splitlines():
        if not line.strip():
            continue
        m = re.match(r"\s*\*\s*([^=]+?)\s*=>\s*(.*?)\s*$", line)
        if m:
            current[m.group(1)] = m.group(2)
        elif not line[:1].isspace():
            current = sections.setdefault(line.strip(), {})
    return {k: v for k, v in sections.items() if v}


def read_open_lth_hparams(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """``hparams.log`` as ``{group: {key: value}}`` (``Model Hyperparameters`` -> ``model_name`` -> ...)."""
    return parse_open_lth_hparams(Path(path).read_text(encoding="utf-8", errors="replace"))


def steps_of(text: str) -> tuple[int, int]:
    """``(epochs, iterations)`` of an open_lth step string (``160ep``, ``1000it``, ``2ep100it``).

    Example:
        >>> steps_of("2ep100it")
        (2, 100)
    """
    m = _STEP.fullmatch(text.strip())
    if not m or not (m.group(1) or m.group(2)):
        raise ConversionError(f"cannot read open_lth step {text!r}", fix="open_lth writes steps as 160ep, 1000it or "
                                                                          "2ep100it; check hparams.log")
    return int(m.group(1) or 0), int(m.group(2) or 0)


def _epochs(text: str, ipe: int | None) -> float | None:
    """Epochs (maybe fractional) of a step string; None when it needs an unknown epoch length."""
    ep, it = steps_of(text)
    if not it:
        return float(ep)
    return None if ipe is None else ep + it / ipe


def iterations_per_epoch(hparams: Mapping[str, Mapping[str, str]], pretrain: bool = False) -> int | None:
    """open_lth's iterations per epoch of the run's dataset (None for a dataset it does not know)."""
    data = hparams.get(PRETRAIN_DATASET if pretrain else DATASET) or hparams.get(DATASET) or {}
    n = TRAIN_EXAMPLES.get(str(data.get("dataset_name")))
    if n is None or "batch_size" not in data:
        return None
    fraction = float(data["subsample_fraction"]) if data.get("subsample_fraction") else 1.0
    return math.ceil(n * fraction / int(data["batch_size"]))


def open_lth_seed(hparams: Mapping[str, Mapping[str, str]]) -> int:
    """The run's data-order seed; 0 when the log omits it (open_lth writes no falsy value: 0 and None alike)."""
    value = hparams.get(TRAINING, {}).get("data_order_seed")
    return int(value) if value else 0


def open_lth_recipe(hparams: Mapping[str, Mapping[str, str]], rewind: str) -> tuple[dict[str, Any] | None, str]:
    """The main training group as a ``Recipe.to_json()`` record, or ``(None, why not)``.

    ``rewind`` is the rewind point the record carries (``1000it``, ``0``). A run ticketfmt's
    recipe cannot express (an optimizer other than SGD, training that ends inside an epoch,
    an unknown dataset with steps in iterations) gets no record, and the reason.

    Example:
        >>> hp = {"Dataset Hyperparameters": {"dataset_name": "cifar10", "batch_size": "128"},
        ...       "Training Hyperparameters": {"optimizer_name": "sgd", "lr": "0.1", "training_steps": "2ep"}}
        >>> open_lth_recipe(hp, "0")[0]["epochs"]
        2
    """
    train, data = hparams.get(TRAINING, {}), hparams.get(DATASET, {})
    missing = [k for k in ("optimizer_name", "lr", "training_steps") if k not in train]
    if missing or "batch_size" not in data:
        return None, f"hparams.log lacks {(missing or ['batch_size'])[0]}"
    if train["optimizer_name"] != "sgd":
        return None, f"the run trained with {train['optimizer_name']!r}; ticketfmt's recipes are SGD only"
    ipe = iterations_per_epoch(hparams)
    total = _epochs(train["training_steps"], ipe)
    if total is None or total != int(total) or total < 1:
        return None, (f"training_steps {train['training_steps']} is not a whole number of epochs "
                      f"({ipe or 'unknown'} iterations each)")
    milestones = [_epochs(s, ipe) for s in train.get("milestone_steps", "").split(",") if s.strip()]
    warmup = _epochs(train["warmup_steps"], ipe) if train.get("warmup_steps") else 0.0
    if None in milestones or warmup is None:
        return None, (f"the run's milestones or warm-up are in iterations of an unknown dataset "
                      f"{data.get('dataset_name')!r}")
    nesterov = float(train.get("nesterov_momentum") or 0)
    return {
        "name": "open_lth", "lr": float(train["lr"]), "batch_size": int(data["batch_size"]), "epochs": int(total),
        "milestones": sorted(milestones), "gamma": float(train.get("gamma") or 0.1), "warmup_epochs": warmup,
        "warmup_offset": 0,  # open_lth's warm-up: lr · step / warm (lr 0 at step 0)
        # open_lth: SGD(momentum=momentum or nesterov_momentum or 0, nesterov=nesterov_momentum > 0)
        "momentum": float(train.get("momentum") or nesterov or 0.0),
        "weight_decay": float(train.get("weight_decay") or 0),
        "nesterov": nesterov > 0, "optimizer": "sgd", "schedule": "step", "rewind": rewind,
        "augmentation": _augmentation(data),
        "overrides": [],
    }, ""


def _augmentation(data: Mapping[str, str]) -> str:
    if data.get("do_not_augment") == "True" or data.get("dataset_name") == "mnist":
        return "none"  # open_lth's MNIST has no augmentation
    return "rrc224+flip" if data.get("dataset_name") == "imagenet" else "crop32-pad4+flip"
