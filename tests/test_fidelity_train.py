"""`find` and `verify` follow the reference implementation (open_lth, Elastic LTH) row by row (issue 11).

Each test pins one row of docs/FIDELITY.md against the reference's own formula or procedure:
the learning rate at every warm-up step, the prune count per level (ties included, the
unpruned VGG classifier counted), the same data order at every level, the momentum restart
at the rewind step, and a converted ticket's verify starting at its source's rewind step.
Synthetic images through the ``data_factory`` seam keep every test to seconds, without data files.
"""

from __future__ import annotations

import bisect
import json
import math
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ticketfmt import Ticket, build_model
from ticketfmt.errors import TicketError
from ticketfmt.train import (LEGACY, REFERENCE, ImpOptions, Recipe, RunData, Trainer, find, recipe_for,
                             reference_prune, round_prune, train_steps, training_contract, verify)
from ticketfmt.train.fidelity import unpruned_layer_weights
from ticketfmt.train.verify import CONTRACT_FIELDS
from ticketfmt.zoo import get_arch, prunable_names

ARCH = "cifar_resnet8"
DATASET = "cifar10-mini"  # only its spec (10 classes) is used: the images are synthetic


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


class RecordingLoader:
    """A train loader that records, per ``set_epoch`` call, the key and the labels of every batch it yields."""

    def __init__(self, inner: Any, log: list[tuple[int, list[tuple[int, ...]]]]) -> None:
        self.inner, self.log = inner, log

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)
        self.log.append((epoch, []))

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Any:
        for x, y in self.inner:
            self.log[-1][1].append(tuple(y.tolist()))
            yield x, y


def synthetic(n: int = 48, size: int = 16, log: list | None = None) -> Any:
    """A ``data_factory``: ``n`` random ``size``×``size`` images, 10 classes, shuffled by the run's seed."""
    from ticketfmt.data import TensorLoader

    def factory(dataset: str, recipe: Recipe, *, device: torch.device, seed: int, **_: Any) -> RunData:
        gen = torch.Generator().manual_seed(1234)
        images = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=gen)
        labels = torch.arange(n) % 10
        norm = {"mean": (0.5,) * 3, "std": (0.25,) * 3, "device": device}
        train: Any = TensorLoader(images, labels, recipe.batch_size, train=True, augment=False, seed=seed, **norm)
        test = TensorLoader(images[:20], labels[:20], 20, train=False, **norm)
        if log is not None:
            train = RecordingLoader(train, log)
        return RunData(train, test, True, 10, True)

    return factory


# 48 images in batches of 16: 3 steps an epoch, 6 in all
CONFIG: dict[str, Any] = {"epochs": 2, "batch_size": 16, "lr": 0.05, "seed": 0, "device": "cpu", "num_workers": 0}


# ---------------------------------------------------------------------------------------------- learning rate


def reference_lr(lr: float, gamma: float, milestones: list[int], warm: int, it: int) -> float:
    """open_lth ``get_lr_schedule``: ``LambdaLR`` of the product of 1, ``gamma^bisect``, ``min(1, it / warm)``."""
    lambdas = [1.0]
    if milestones:
        lambdas.append(gamma ** bisect.bisect(milestones, it))
    if warm:
        lambdas.append(min(1.0, it / warm))
    return lr * float(np.prod(lambdas))


def test_lr_equals_the_reference_at_every_step() -> None:
    r = recipe_for("resnet50")  # the ImageNet recipe: 5 warm-up epochs, x0.1 at 30, 60, 80
    spe = 7
    want = [reference_lr(0.4, 0.1, [30 * spe, 60 * spe, 80 * spe], 5 * spe, s) for s in range(r.total_steps(spe))]
    assert [r.lr_at(s, spe) for s in range(r.total_steps(spe))] == want  # bit for bit
    assert want[0] == 0.0 and r.lr_at(1, spe) == 0.4 / 35
    legacy = r.override(warmup_offset=1)  # ticketfmt 1.0's schedule, kept as an option
    assert [legacy.lr_at(s, spe) for s in range(5 * spe)] == pytest.approx([0.4 * (s + 1) / 35 for s in range(5 * spe)])
    with pytest.raises(TicketError):
        r.override(warmup_offset=2)


def test_training_steps_use_the_reference_lr_during_warm_up() -> None:
    recipe = recipe_for(ARCH, epochs=2, batch_size=16, lr=0.3, warmup_epochs=1.0)  # warm-up over 3 steps
    data = synthetic()(DATASET, recipe, device=torch.device("cpu"), seed=0)
    trainer = Trainer(build_model(ARCH, seed=0), None, recipe, device=torch.device("cpu"))
    used: list[float] = []
    train_steps(trainer, data.train, recipe, start=0, end=6, steps_per_epoch=3,
                on_step=lambda s: used.append(trainer.opt.param_groups[0]["lr"]))
    assert used == [reference_lr(0.3, 0.1, [3, 4], 3, s) for s in range(6)]
    assert used[:3] == pytest.approx([0.0, 0.1, 0.2])


# ---------------------------------------------------------------------------------------------- prune count


def reference_masks(weights: dict[str, np.ndarray], masks: dict[str, np.ndarray], fraction: float,
                    unpruned: int = 0) -> dict[str, np.ndarray]:
    """open_lth ``sparse_global.Strategy.prune`` in numpy (``unpruned``: the ignored layers' mask entries)."""
    remaining = np.sum([np.sum(m) for m in masks.values()]) + unpruned
    n = np.ceil(fraction * remaining).astype(int)
    vector = np.concatenate([w[masks[k] == 1] for k, w in weights.items()])
    threshold = np.sort(np.abs(vector))[n]
    return {k: np.where(np.abs(w) > threshold, masks[k], np.zeros_like(w)) for k, w in weights.items()}


def test_prune_count_is_ceil_of_rate_times_remaining_with_ties_pruned() -> None:
    w = {"a": torch.tensor([0.5, 0.5, 1.0, 2.0, 3.0]), "b": torch.tensor([[0.5, 0.5], [4.0, 5.0]]).T.contiguous()}
    dense = {k: torch.ones_like(v, dtype=torch.bool) for k, v in w.items()}
    # ceil(0.2 * 9) = 2: the threshold is the 3rd smallest (0.5), and all four 0.5s go
    kept = reference_prune(w, dense, 0.2)
    assert sum(int(m.sum()) for m in kept.values()) == 5
    assert all(bool((w[k][m] > 0.5).all()) for k, m in kept.items())
    # the unpruned layers count as remaining: ceil(0.2 * (9 + 11)) = 4, threshold the 5th smallest (1.0)
    assert sum(int(m.sum()) for m in reference_prune(w, dense, 0.2, unpruned=11).values()) == 4
    # ticketfmt 1.0 kept round(0.8 * 9) = 7 (two tied weights survived): an option now
    assert sum(int(m.sum()) for m in round_prune(w, dense, 7).values()) == 7
    with pytest.raises(TicketError, match="only"):
        reference_prune(w, dense, 0.2, unpruned=100)


@pytest.mark.parametrize("unpruned", [0, 640])
def test_prune_masks_equal_the_reference_over_levels(unpruned: int) -> None:
    gen = torch.Generator().manual_seed(0)
    # coarse values: thousands of ties at every threshold
    w = {f"l{i}": (torch.randint(-40, 41, shape, generator=gen).float() / 8) for i, shape in
         enumerate([(16, 3, 3, 3), (32, 16, 3, 3), (10, 64)])}
    masks = {k: torch.ones_like(v, dtype=torch.bool) for k, v in w.items()}
    ref = {k: np.ones(v.shape, dtype=np.float32) for k, v in w.items()}
    for level in range(1, 9):
        alive = sum(int(m.sum()) for m in masks.values())
        masks = reference_prune(w, masks, 0.2, unpruned)
        ref = reference_masks({k: v.numpy() for k, v in w.items()}, ref, 0.2, unpruned)
        assert all(np.array_equal(masks[k].numpy(), ref[k] == 1) for k in w), f"level {level}"
        pruned = alive - sum(int(m.sum()) for m in masks.values())
        assert pruned >= math.ceil(0.2 * (alive + unpruned)) + 1  # the threshold's own value goes too


def test_vgg_classifier_counts_as_remaining() -> None:
    # the reference's CIFAR VGG leaves fc.weight unpruned but its mask covers it: it counts as remaining
    assert unpruned_layer_weights(build_model("cifar_vgg11"), prunable_names(get_arch("cifar_vgg11"))) == 512 * 10
    assert unpruned_layer_weights(build_model(ARCH), prunable_names(get_arch(ARCH))) == 0  # ResNets prune fc too


def test_find_prunes_by_the_reference_count(tmp_path: Path) -> None:
    run = find(ARCH, DATASET, 2, out_dir=tmp_path / "run", rewind="1it", data_factory=synthetic(), **CONFIG)
    tickets = [Ticket.load(p) for p in run.tickets]
    for prev, t in zip(tickets, tickets[1:]):
        want = reference_masks({k: prev.trained[k].numpy() for k in prev.masks},
                               {k: prev.masks[k].numpy().astype(np.float32) for k in prev.masks}, 0.2)
        assert all(np.array_equal(t.masks[k].numpy(), want[k] == 1) for k in t.masks)
        assert t.provenance["imp_options"] == REFERENCE.to_json()
        assert (t.provenance["init"], t.provenance["normalize"]) == ("reference", "reference")
        assert t.results[0]["sparsity"] == pytest.approx(t.sparsity, abs=1e-6)
    legacy = find(ARCH, DATASET, 1, out_dir=tmp_path / "legacy", rewind="1it", data_factory=synthetic(),
                  options=ImpOptions(prune_count="round"), **CONFIG)
    t = Ticket.load(legacy.tickets[1])
    total = sum(m.numel() for m in t.masks.values())
    assert sum(int(m.sum()) for m in t.masks.values()) == round(0.8 * total)
    assert t.provenance["imp_options"]["prune_count"] == "round"


# ---------------------------------------------------------------------------------------------- progress events


def test_find_reports_each_epoch_and_a_stops_part_of_one(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    find(ARCH, DATASET, 1, out_dir=tmp_path / "run", rewind="1it", data_factory=synthetic(),
         progress=events.append, **CONFIG)
    epochs = [e for e in events if e["phase"] == "epoch"]
    # 3 steps an epoch, 6 in all; level 1 trains from the rewind step 1, its first epoch is steps 1..3
    assert [(e["level"], e["epoch"], e["epochs"], e["step"], e["complete"]) for e in epochs] == \
        [(0, 1, 2, 3, True), (0, 2, 2, 6, True), (1, 1, 2, 3, True), (1, 2, 2, 6, True)]
    logged = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in logged if r.get("event") == "epoch"]
    assert [(r["level"], r["epoch"], r["loss"], r["train_acc"]) for r in logged] == \
        [(e["level"], e["epoch"], e["loss"], e["train_acc"]) for e in epochs]  # the run log's own numbers
    assert all(e["seconds"] > 0 and e["images_per_sec"] > 0 and 0 <= e["train_acc"] <= 100 for e in epochs)
    level_at = [e["phase"] for e in events].index("level")
    assert [e["phase"] for e in events].index("epoch") < level_at  # level 0's epochs come before its result

    # a stop asked at epoch 1's end is honoured after step 4: epoch 2's one step is reported as stopped
    stopped: list[dict[str, Any]] = []

    def stop_after_epoch_one(ev: dict[str, Any]) -> None:
        stopped.append(ev)
        if ev["phase"] == "epoch" and ev["epoch"] == 1:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        find(ARCH, DATASET, 1, out_dir=tmp_path / "stop", rewind="1it", data_factory=synthetic(),
             progress=stop_after_epoch_one, **CONFIG)
    tail = [e for e in stopped if e["phase"] in ("epoch", "interrupted")]
    assert [(e["phase"], e.get("epoch"), e["step"], e.get("complete")) for e in tail] == \
        [("epoch", 1, 3, True), ("epoch", 2, 4, False), ("interrupted", None, 4, None)]
    part = tail[1]
    assert part["loss"] > 0 and part["seconds"] > 0 and part["images_per_sec"] == pytest.approx(16 / part["seconds"])


# ---------------------------------------------------------------------------------------------- data order


def _epochs_by_level(log: list[tuple[int, list]], spe: int, total: int, rewind: int, levels: int) -> list[list]:
    """Split the loader's log into levels: level 0 has every epoch, the others start at the rewind epoch."""
    n0 = -(-total // spe)
    per = n0 - rewind // spe
    assert len(log) == n0 + levels * per
    return [log[:n0]] + [log[n0 + i * per: n0 + (i + 1) * per] for i in range(levels)]


def test_every_level_trains_on_the_same_data_order(tmp_path: Path) -> None:
    log: list[tuple[int, list]] = []
    find(ARCH, DATASET, 2, out_dir=tmp_path / "same", rewind="1it", data_factory=synthetic(log=log), **CONFIG)
    level0, level1, level2 = _epochs_by_level(log, 3, 6, 1, 2)
    assert level1 == level0 and level2 == level0  # the same keys and the same batches, epoch by epoch
    assert [key for key, _ in level0] == [0, 1] and level0[0][1] != level0[1][1]  # epochs differ from each other

    log = []
    find(ARCH, DATASET, 2, out_dir=tmp_path / "per", rewind="1it", data_factory=synthetic(log=log),
         options=ImpOptions(data_order="per-level"), **CONFIG)
    level0, level1, level2 = _epochs_by_level(log, 3, 6, 1, 2)
    assert [b for _, b in level1] != [b for _, b in level0] and [b for _, b in level2] != [b for _, b in level1]
    assert ImpOptions.from_provenance({}) == LEGACY  # tickets of ticketfmt 1.0 were found per level


# ---------------------------------------------------------------------------------------------- dense level 0


def _train(model_state: dict[str, torch.Tensor] | None, recipe: Recipe, data: RunData, start: int, end: int
           ) -> Trainer:
    trainer = Trainer(build_model(ARCH, seed=0), None, recipe, device=torch.device("cpu"))
    if model_state is not None:
        trainer.load(model_state)  # a fresh optimizer: no momentum
    train_steps(trainer, data.train, recipe, start=start, end=end, steps_per_epoch=3)
    return trainer


def test_dense_level_restarts_momentum_at_the_rewind_step(tmp_path: Path) -> None:
    run = find(ARCH, DATASET, 0, out_dir=tmp_path / "two", rewind="2it", data_factory=synthetic(), **CONFIG)
    level0 = Ticket.load(run.tickets[0])
    recipe = Recipe.from_json(level0.provenance["recipe"])
    data = synthetic()(DATASET, recipe, device=torch.device("cpu"), seed=0)
    # the reference: pre-train 0 -> 2, then a second run 2 -> 6 from those weights with a fresh optimizer
    pretrained = _train(None, recipe, data, 0, 2).state_dict()
    second = _train(pretrained, recipe, data, 2, 6).state_dict()
    assert all(torch.equal(level0.init[k], pretrained[k]) for k in pretrained)
    assert all(torch.equal(level0.trained[k], second[k]) for k in second)

    one = find(ARCH, DATASET, 0, out_dir=tmp_path / "one", rewind="2it", data_factory=synthetic(),
               options=ImpOptions(dense_level="one-run"), **CONFIG)
    single = _train(None, recipe, data, 0, 6).state_dict()
    trained_one = Ticket.load(one.tickets[0]).trained
    assert all(torch.equal(trained_one[k], single[k]) for k in single)
    assert not all(torch.equal(trained_one[k], second[k]) for k in second)  # momentum carried over: another result


def test_verify_of_a_dense_level_reproduces_its_second_run(tmp_path: Path) -> None:
    run = find(ARCH, DATASET, 0, out_dir=tmp_path / "run", rewind="2it", data_factory=synthetic(), **CONFIG)
    level0 = Ticket.load(run.tickets[0])
    _, record = verify(level0, DATASET, data_factory=synthetic(), device="cpu", num_workers=0)
    assert record["start_step"] == 2 and record["value"] == run.accuracies[0]


# ---------------------------------------------------------------------------------------------- converted tickets


def _source(rewind: str = "2it", seed: int = 5) -> Ticket:
    """A pruned ResNet-14 'found' with warm-up and rewind ``rewind`` (its provenance as `find` writes it)."""
    from ticketfmt.pruning import prune

    arch = "cifar_resnet14"
    recipe = recipe_for(arch, epochs=2, batch_size=16, lr=0.3, warmup_epochs=1.0, rewind=rewind)
    base = prune(Ticket.from_model(build_model(arch, seed=seed), arch), 0.5, method="random", seed=1)
    prov = {"method": "imp", "level": 3, "rewind": rewind, "rewind_step": None, "steps_per_epoch": 3,
            "dataset": DATASET, "subset": None, "seed": seed, "recipe": recipe.to_json(),
            "imp_options": REFERENCE.to_json()}
    return base.replace(provenance=prov)


def test_training_contract_prefers_the_ticket_then_its_source() -> None:
    src = {"method": "imp", "rewind": "20it", "seed": 3, "recipe": {"name": "cifar_resnet"}, "imp_options": {}}
    assert training_contract({"method": "elastic", "source_provenance": src}) == \
        ({"rewind": "20it", "seed": 3, "recipe": {"name": "cifar_resnet"}}, "source_provenance")
    # an IMP ticket of ticketfmt 1.0 (no imp_options) was trained on the data's own statistics
    assert training_contract({"method": "imp", "rewind": "1it"})[0]["normalize"] == "cifar"
    assert training_contract({"method": "elastic", "rewind": "5it", "source_provenance": src})[0]["rewind"] == "5it"
    nested = {"method": "elastic", "source_provenance": {"method": "elastic", "source_provenance": src}}
    assert training_contract(nested)[0]["rewind"] == "20it"
    assert training_contract({"method": "elastic", "source_provenance": {"method": "init"}})[0] == {"rewind": "0"}


@pytest.mark.parametrize("contract_at_top", [False, True])
def test_verify_of_a_converted_ticket_starts_at_the_source_rewind_step(contract_at_top: bool) -> None:
    from ticketfmt.converters import convert

    source = _source()
    converted = convert(source, "cifar_resnet20")  # stretch, as the README tour
    prov = {k: v for k, v in converted.provenance.items() if k not in CONTRACT_FIELDS}  # a 1.0 conversion
    if contract_at_top:  # converters now copy the contract up (and it wins over source_provenance)
        prov.update({k: source.provenance[k] for k in CONTRACT_FIELDS if source.provenance.get(k) is not None})
        prov["source_provenance"] = {**prov["source_provenance"], "rewind": "1it"}
    ticket = converted.replace(provenance=prov)
    before = [dict(r) for r in ticket.results]
    events: list[dict[str, Any]] = []
    verified, record = verify(ticket, DATASET, data_factory=synthetic(), device="cpu", num_workers=0,
                              progress=events.append, store_trained=True)
    # the reference's branch: train from the source lottery's rewind step, the schedule fast-forwarded
    assert record["start_step"] == 2 and record["steps"] == 4 and record["seed"] == 5
    assert record["start_lr"] == reference_lr(0.3, 0.1, [3, 4], 3, 2) == pytest.approx(0.2)
    assert record["contract"] == ("ticket" if contract_at_top else "source_provenance")
    plan = next(e for e in events if e["phase"] == "plan")
    assert (plan["start_step"], plan["steps"], plan["lr"], plan["rewind"]) == (2, 6, record["start_lr"], "2it")
    # step for step: a fresh trainer from the rewind weights, steps 2..5 of the schedule, the source's seed
    recipe = Recipe.from_json(record["recipe"])
    data = synthetic()(DATASET, recipe, device=torch.device("cpu"), seed=5)
    trainer = Trainer(ticket.build_model("init"), ticket.masks, recipe, device=torch.device("cpu"))
    train_steps(trainer, data.train, recipe, start=2, end=6, steps_per_epoch=3)
    manual = trainer.state_dict()
    assert verified.trained is not None and all(torch.equal(verified.trained[k], manual[k]) for k in manual)
    # the ticket given is unchanged; the answer is a new ticket with the record appended
    assert ticket.results == before and ticket.trained is None
    assert verified.results == [*before, record] and verified is not ticket


def test_verify_refuses_a_rewind_past_the_end_with_the_fix() -> None:
    ticket = _source(rewind="6it")
    with pytest.raises(TicketError, match="not before the end of training"):
        verify(ticket, DATASET, data_factory=synthetic(), device="cpu", num_workers=0)


def test_the_plan_and_its_timing_do_not_change_the_result() -> None:
    """verify times a couple of steps for its plan (on a copy, in a forked RNG): the run itself is untouched."""
    ticket = _source()
    quiet, _ = verify(ticket, DATASET, data_factory=synthetic(), device="cpu", num_workers=0, store_trained=True)
    events: list[dict[str, Any]] = []
    told, record = verify(ticket, DATASET, data_factory=synthetic(), device="cpu", num_workers=0, store_trained=True,
                          progress=events.append)
    assert quiet.trained is not None and told.trained is not None
    assert all(torch.equal(quiet.trained[k], told.trained[k]) for k in quiet.trained)
    plan = next(e for e in events if e["phase"] == "plan")
    assert plan["seconds_per_step"] > 0 and plan["eta_s"] == pytest.approx(plan["seconds_per_step"] * 4)
    assert (plan["train_images"], plan["batch_size"], plan["threads"], plan["device_type"]) == (48, 16, 1, "cpu")
    assert plan["protocol"] == record["protocol"] == "reduced" and "2 epochs instead of 160" in plan["protocol_note"]
    assert [e["phase"] for e in events].index("plan") < [e["phase"] for e in events].index("train")
