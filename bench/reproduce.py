"""Reproduce the Elastic Lottery Ticket result (issue 6, "Reproduction"; issue 12) at several scales.

Protocol (same data, seeds and per-training budget for every arm):

1. IMP with rewinding on a source and a target network (the target first, so that its dense
   accuracy is known after the first training); three pruning levels are reported (``paper``:
   levels 4/7/10 at rate 0.2 = 59/79/89%; the CPU scales: levels 1/2/3 at a rate near 0.5,
   fewer levels with a larger rate because every level costs a full training).
2. At each level, train on the target: (a) the target's own IMP ticket, (b) the source ticket
   converted with ``interpolate``, (c) with ``append``, (d) random pruning of the dense level-0
   target ticket at the per-layer density of (b), (e) SNIP at the sparsity of (b), (g) one-shot
   global magnitude pruning of the trained dense target at the sparsity of (b), (h) reinit: (b)'s
   mask on a freshly initialized network (open_lth's ``randomly_reinitialize`` branch: same start
   step), (f) the dense target (level 0). Squeeze arm: the target's IMP ticket converted back to
   the source architecture with ``spread``, against the source's own IMP ticket. Where (c)'s mapping is
   (b)'s (one block added a stage, e.g. ResNet-14 -> 20: B0 B1 B1 either way) its ticket is (b)'s bit for
   bit and is not trained again: the arm is recorded from (b)'s, marked ``same_ticket_as`` (``TWIN_OF``).
3. Every retraining starts from the ticket's rewind weights at the rewind step (the schedule
   continues from there), exactly like the IMP levels >= 1. The IMP arms (a), (f) and the
   source's own ticket are not retrained for the IMP seed: their IMP level *is* that training
   (``verify`` with the same seed and budget reproduces it exactly).
4. Linear mode connectivity (the paper's Fig. 8; opt-in: the scale's ``lmc``, or ``--lmc``), after every
   other arm: the ETT interpolate ticket and the target's IMP ticket at the highest reported level,
   first seed, each trained twice from its rewind point on two data orders
   (``ticketfmt.train.lmc``); the error barrier along the linear path between the two copies is
   the ``lmc_interpolate`` / ``lmc_imp`` arm, in its own table of ``results.md`` and ``lmc.png``.

Every arm writes ``arms/<arm>.json`` as soon as it finishes; ``--resume`` skips finished arms
and resumes interrupted IMP runs from their checkpoints. ``--time-limit MINUTES`` makes a run a
*slice*: a run in progress (IMP, or a retraining: ``verify(checkpoint=...)``) stops at the limit
after writing a checkpoint in ``runs/`` and ``--resume`` continues it at that step, with the
weights and accuracy of an uninterrupted run (a retraining's wall and CPU seconds add up over its
slices, ``runs/<arm>.partial.json``); no retraining starts with under 5 minutes left, no linear
mode connectivity arm (not resumable) unless its estimated time fits; every slice is logged in
``slices.jsonl`` (wall and CPU seconds, threads, arms done). ``runs/`` (checkpoints) is not
committed: every IMP level ticket is also kept in ``tickets/<run>/`` (committed, ~1-2 MB each), so a
fresh checkout goes on with the arms that start from them. A record whose tickets were not kept is
*restored* when an arm needs them: the IMP run is made again on its recorded device and threads
(a CPU run repeats bit for bit) and must score the recorded correct count at every level, or the
run stops (exit 2) and says so; a run folder brought back from another machine (the device run's
archive) is adopted the same way, checked first. ``--only METHODS`` lets a slice train only some
methods (say, those that need only the source's tickets), ``--only-seeds SEEDS`` only some seeds (say, the
second while the first seed's tickets wait on a restore at another thread count); the plan and the report keep
every arm;
``--whole-arms`` starts only retrainings that fit in the slice (for a last slice, whose ``runs/`` is lost).
Or a session's last slice runs to its limit and the cut run's state is committed by hand (2-6 MB:
``git add -f runs/<arm>.state runs/<arm>.partial.json``, or an IMP run's whole ``runs/imp-<arch>-s<seed>/``),
so that the next checkout continues it; the commit that records the arm drops the state again
(``git rm -r --cached``).
Outputs: ``results.md`` (with "n of N arms done" while partial; the table of means, the differences paired
by seed against IMP on the target, ``Bench.gaps``, and the cost table), ``results.json``,
``accuracy_vs_sparsity.png`` (matplotlib, through ``ticketfmt.cards.plot``).

Scales:

- ``tiny``: cifar10-mini (the tests' copy), cifar_resnet14 -> cifar_resnet20, 64 images, 2
  steps a training; seconds (the GPU script's CPU smoke run).
- ``smoke``: cifar10-mini, cifar_resnet14 -> cifar_resnet20, two levels, a few steps; < 3 minutes.
- ``cpu``: cifar10-jpeg, 2,500 class-balanced training images x 2 epochs, a fixed
  class-balanced 1,000-image test subset, batch 32 at lr 0.05, rewind 4 it, two seeds; the
  first, small reproduction (its dense ResNet-32 stays near 25%: too short to rank methods).
- ``cpu-full``: the scale of issue 12 where the dense target converges enough to rank methods
  (>= 80% top-1 on the whole 10,000-image test split): cifar10-jpeg, all 50,000 training
  images, cifar_resnet14 -> cifar_resnet20, the reference recipe (batch 128, lr 0.1, momentum
  0.9, wd 1e-4) shortened to 16 epochs with its milestones scaled (x0.1 at epochs 8 and 12) and
  the rewind point scaled likewise (1000 of 62,560 iterations -> 100 of 6,256), IMP rate 0.54
  (levels 1/2/3 = 54.0/78.8/90.3%), seed 0 at the three levels and seed 1 at the two highest,
  one thread. (8 epochs, milestones 4/6, rewind 50 it, gave a dense ResNet-20 of 77.83%: too
  short.) 51 arms from 51 trainings (16 IMP levels, 31 retrainings, and the linear mode
  connectivity step last: two copies each of the ETT and IMP tickets at 90.3%; 38 of ResNet-20,
  13 of ResNet-14; the append arms are interpolate's tickets at this depth pair: append-L1-s0 was
  trained before that was noticed, the other four are recorded from interpolate's), 40.5M training
  images (800,768 a dense training, 787,968 a retraining): about 28 CPU hours at ~400 images/s
  (one quiet thread), about 47 at the ~240 images per CPU second measured here under contention,
  and wall time longer by the share of a core the run gets; run it in slices of <= 2 hours
  (``--time-limit 110 --resume``).
- ``paper``: the paper's schedule (160 epochs, full data, rewind 1000 it, 10 levels,
  2 seeds, full test split); for GPUs.

Run::

    .venv/bin/python bench/reproduce.py --scale smoke
    .venv/bin/python bench/reproduce.py --scale cpu-full --sanity      # the protocol end to end in minutes
    OMP_NUM_THREADS=1 nohup .venv/bin/python bench/reproduce.py --scale cpu-full --resume --time-limit 110 \\
        >> bench/results/reproduce-cpu-full/run.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# benchmarks read the real data beside the project unless TICKETFMT_DATA (or its alias) points elsewhere
if not os.environ.get("TICKETFMT_DATA"):
    os.environ["TICKETFMT_DATA"] = str(ROOT.parent / "shared" / "data")

SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(dataset="cifar10-mini", source="cifar_resnet14", target="cifar_resnet20", subset=64, epochs=1,
                 batch_size=32, levels=2, report=(1, 2), rate=0.5, rewind="1it", seeds=(0,), test_subset=100,
                 snip_batches=1, threads=None, data_dir=str(ROOT / "tests" / "data")),
    "smoke": dict(dataset="cifar10-mini", source="cifar_resnet14", target="cifar_resnet20", subset=128, epochs=1,
                  batch_size=64, levels=2, report=(1, 2), rate=0.52, rewind="1it", seeds=(0,), test_subset=200,
                  snip_batches=1, threads=1, lmc=True, lmc_points=11),
    "cpu": dict(dataset="cifar10-jpeg", source="cifar_resnet20", target="cifar_resnet32", subset=2500, epochs=2,
                batch_size=32, lr=0.05, levels=3, report=(1, 2, 3), rate=0.52, rewind="4it", seeds=(0,),
                test_subset=1000, snip_batches=2, threads=2,
                methods=("imp", "interpolate", "append", "random", "snip", "dense", "squeeze", "source_imp")),
    "cpu-full": dict(dataset="cifar10-jpeg", source="cifar_resnet14", target="cifar_resnet20", subset=None, epochs=16,
                     batch_size=128, levels=3, report=(1, 2, 3), rate=0.54, rewind="100it", seeds=(0, 1),
                     extra_seed_report=(2, 3), test_subset=None, snip_batches=10, threads=1, lmc=True),
    "paper": dict(dataset="cifar10-jpeg", source="cifar_resnet20", target="cifar_resnet32", subset=None, epochs=160,
                  batch_size=128, levels=10, report=(4, 7, 10), rate=0.2, rewind="1000it", seeds=(0, 1),
                  test_subset=None, snip_batches=10, threads=None, lmc=True),
}
"""Scale settings. ``report``: the levels retrained for the first seed; ``extra_seed_report``: those of
the other seeds (default all of ``report``); ``methods``: the rows (default all of :data:`METHODS`);
``lmc``: run the linear mode connectivity step (``--lmc`` turns it on for any scale), ``lmc_points``
its points on the path (default the reference's 21)."""

LMC_TICKETS = (("interpolate", "ETT interpolate (b)"), ("imp", "IMP on target (a)"))
"""The tickets of the linear mode connectivity step (arms ``lmc_<key>-L<highest level>-s<first seed>``)."""

METHODS = [  # (key, label) in table / plot order
    ("imp", "IMP on target (a)"),
    ("interpolate", "ETT interpolate (b)"),
    ("append", "ETT append (c)"),
    ("random", "random, per-layer like (b) (d)"),
    ("snip", "SNIP at (b)'s sparsity (e)"),
    ("magnitude", "one-shot magnitude at (b)'s sparsity (g)"),
    ("reinit", "reinit: (b)'s mask, fresh init (h)"),
    ("dense", "dense target (f)"),
    ("squeeze", "squeeze: target IMP -> source, spread"),
    ("source_imp", "IMP on source (squeeze reference)"),
]

RETRAINED = ("interpolate", "random", "snip", "magnitude", "reinit", "append", "squeeze")
"""The arms that cost one retraining each, in the order a run trains them (most important first)."""

TWIN_OF = {"append": "interpolate"}
"""Conversions that coincide with another where their mappings are the same: adding one block a stage (ResNet-14 ->
20) gives B0 B1 B1 whether the copy is interpolated or appended. Such an arm's ticket is its twin's bit for bit, so
its retraining would repeat the twin's (checked: append-L1-s0 of the cpu-full run, trained before this rule, scored
interpolate-L1-s0's 8,272 correct); it is recorded from the twin's arm, not trained again."""

REINIT_SEED_OFFSET = 10_000
"""The reinit arm's fresh initialization uses seed ``seed + REINIT_SEED_OFFSET`` (never an IMP run's)."""


MIN_START_S = 300.0
"""A resumable retraining starts only with this much of the slice left (loading the data costs a minute)."""


class SliceEnd(Exception):
    """The slice's time limit was reached; the run continues with ``--resume``."""


class RunError(Exception):
    """A run that cannot go on as asked; its message says why and what to do (exit 2)."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _write_json(path: Path, obj: Any) -> None:
    from ticketfmt.format.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, [json.dumps(obj, indent=2, sort_keys=False).encode()])


def _test_subset(n: int | None) -> Any:
    """Every arm evaluates on the same class-balanced ``n`` test images (None: the whole split): at CPU
    scale 10,000 test images would cost more than the training (``ticketfmt.train.test_subset_data``)."""
    if not n:
        return None
    from ticketfmt.train import test_subset_data

    return test_subset_data(n)


class Bench:
    """One reproduction folder: its arms, the order they train in, the slice's time limit, the report."""

    def __init__(self, scale: str, out: Path, resume: bool, cfg: dict[str, Any] | None = None,
                 device: str = "cpu", time_limit_s: float | None = None) -> None:
        self.scale = scale
        self.cfg = dict(cfg if cfg is not None else SCALES[scale])
        self.methods = tuple(self.cfg.get("methods") or [k for k, _ in METHODS])
        self.device = device
        self.data_factory = _test_subset(self.cfg["test_subset"])
        self.out = out
        self.resume = resume
        self.t_start = time.monotonic()
        self.cpu_start = time.process_time()
        self.deadline = None if time_limit_s is None else self.t_start + time_limit_s
        self.only: tuple[str, ...] | None = None  # --only: the retrained methods this slice may train
        self.only_seeds: tuple[int, ...] | None = None  # --only-seeds: the seeds this slice may train
        self.whole_arms = False  # --whole-arms: start only retrainings whose estimate fits in the slice
        self._twins: dict[str, str | None] = {}  # method -> its twin at this scale (TWIN_OF), worked out once
        self.finished_here: list[str] = []
        self._last_report = -math.inf
        from ticketfmt.train.recipes import recipe_for

        c = self.cfg
        self.recipe = recipe_for(c["target"]).override(epochs=c["epochs"], batch_size=c["batch_size"],
                                                       rewind=c["rewind"], lr=c.get("lr"))
        self.arms_dir = out / "arms"
        self.runs_dir = out / "runs"
        self.tickets_dir = out / "tickets"

    # -- the plan ----------------------------------------------------------------------------------
    def seed_levels(self, index: int) -> tuple[int, ...]:
        """The levels retrained for the ``index``-th seed (the first seed: ``report``)."""
        c = self.cfg
        return tuple(c["report"]) if index == 0 else tuple(c.get("extra_seed_report") or c["report"])

    def retrained(self) -> list[str]:
        return [m for m in RETRAINED if m in self.methods]

    def planned_arms(self) -> list[str]:
        """Every arm file a complete run writes (IMP runs not counted: they are the arms' trainings)."""
        c, names = self.cfg, []
        for i, seed in enumerate(c["seeds"]):
            if "dense" in self.methods:
                names.append(f"dense-s{seed}")
            for level in c["report"]:
                names += [f"{m}-L{level}-s{seed}" for m in ("imp", "source_imp") if m in self.methods]
            for level in self.seed_levels(i):
                names += [f"{m}-L{level}-s{seed}" for m in self.retrained()]
        return names + self.lmc_arms()

    def lmc_arms(self) -> list[str]:
        """The linear mode connectivity arms (none unless the scale or ``--lmc`` asks for them)."""
        c = self.cfg
        if not c.get("lmc"):
            return []
        return [f"lmc_{key}-L{max(c['report'])}-s{c['seeds'][0]}" for key, _ in LMC_TICKETS if key in self.methods]

    def planned_trainings(self, arms: list[dict[str, Any]] | None = None) -> tuple[int, int]:
        """(IMP levels, retrainings) of a complete run: a twin arm (:data:`TWIN_OF`) is no retraining, unless it
        was trained before the rule."""
        c = self.cfg
        imp = len(c["seeds"]) * 2 * (c["levels"] + 1)
        trained = [m for m in self.retrained() if self.twin(m) is None]
        arms = self.load_arms() if arms is None else arms
        twins_trained = sum(1 for a in arms if self.twin(a["method"]) and "same_ticket_as" not in a)
        return imp, sum(len(self.seed_levels(i)) for i in range(len(c["seeds"]))) * len(trained) + twins_trained

    def twin(self, method: str) -> str | None:
        """The method whose tickets ``method``'s are at this scale's source and target (same mappings), or None."""
        other = TWIN_OF.get(method)
        if other is None or other not in self.methods:
            return None
        if method not in self._twins:
            from ticketfmt.converters import plan_conversion

            c = self.cfg
            same = (plan_conversion(c["source"], c["target"], method).mappings
                    == plan_conversion(c["source"], c["target"], other).mappings)
            self._twins[method] = other if same else None
        return self._twins[method]

    def record_twin(self, name: str, method: str, level: int, seed: int, prep: ArmMaker) -> bool:
        """Record arm ``name`` from its twin's finished arm if their tickets are equal bit for bit; False: train it."""
        other = self.twin(method)
        twin = self.done(f"{other}-L{level}-s{seed}") if other else None
        if other is None or twin is None or "top1" not in twin:
            return False
        tk, extra = prep.make(method, level)
        if not _same_ticket(tk, prep.make(other, level)[0]):
            return False
        keep = ("arch", "seed", "level", "sparsity", "threads", "top1", "correct", "total", "steps", "epochs",
                "images")
        self.save_arm(name, {"method": method, **{k: twin[k] for k in keep if k in twin}, "same_ticket_as": twin["arm"],
                             "train_seconds": 0.0, "wall_seconds": 0.0, "cpu_seconds": 0.0, **extra,
                             "note": f"the {method} ticket is {twin['arm']}'s bit for bit (same mapping): its "
                                     f"retraining would repeat that arm's, so the result is that arm's, not a new one"})
        return True

    # -- arms --------------------------------------------------------------------------------------
    def arm_path(self, name: str) -> Path:
        return self.arms_dir / f"{name}.json"

    def done(self, name: str) -> dict[str, Any] | None:
        p = self.arm_path(name)
        if p.exists():
            return json.loads(p.read_text())
        return None

    def save_arm(self, name: str, rec: dict[str, Any], quiet: bool = False) -> dict[str, Any]:
        import torch

        # an IMP run records the threads its run.json says it trained with (a resumed run keeps them)
        rec = {"arm": name, "threads": torch.get_num_threads(), **rec, "device": self.device,
               "load_average_1min": _load_average(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        _write_json(self.arm_path(name), rec)
        if not quiet:
            self.finished_here.append(name)
            if rec["method"] == "imp-run":
                log(f"IMP run {name} complete: top1 by level {[lv['top1'] for lv in rec['levels']]}")
            elif rec["method"] == "lmc":
                log(f"arm {name}: error barrier {rec['barrier']} (ends {rec['endpoints']}) wall {rec['wall_seconds']} s")
            else:
                log(f"arm {name}: top1 {rec.get('top1')} sparsity {rec.get('sparsity')} wall {rec.get('wall_seconds')} s")
        return rec

    # -- the slice's time limit --------------------------------------------------------------------
    def deadline_passed(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def estimate_seconds(self, arch: str) -> float | None:
        """The expected wall time of one retraining of ``arch``: the median of those done, else of its IMP levels."""
        arms = self.load_arms()
        walls = [float(a["wall_seconds"]) for a in arms
                 if a.get("arch") == arch and a["method"] in RETRAINED and a.get("wall_seconds")]
        if walls:
            return statistics.median(walls)
        secs = [float(lv["train_seconds"]) for a in arms if a["method"] == "imp-run" and a["arch"] == arch
                for lv in a["levels"][1:] if lv.get("train_seconds")]
        return statistics.median(secs) * 1.1 if secs else None  # + the evaluation

    def check_fits(self, name: str, arch: str, trainings: float = 1.0, resumable: bool = False) -> None:
        """Raise :class:`SliceEnd` unless the arm's estimated time (``trainings`` retrainings) fits in the slice;
        a ``resumable`` arm (it checkpoints at the limit) only needs :data:`MIN_START_S` of it."""
        if self.deadline is None:
            return
        left = self.deadline - time.monotonic()
        est = self.estimate_seconds(arch)
        est = None if est is None else est * trainings
        need = min(est, MIN_START_S) if resumable and est is not None else est
        if left <= 0 or (need is not None and need > left):
            raise SliceEnd(f"{name} (~{est or 0:.0f} s) does not fit in the {max(left, 0):.0f} s left of the slice")

    def _progress(self, what: str, interrupt: bool, on_level: Any = None) -> Any:
        """A progress callback: one log line per epoch; IMP runs (``interrupt``) stop at the deadline."""
        state: dict[str, Any] = {"epoch": None, "signalled": False}

        def cb(ev: dict[str, Any]) -> None:
            phase = ev.get("phase")
            if phase == "train":
                key = (ev.get("level"), ev.get("copy"), ev.get("epoch"))
                if key != state["epoch"]:
                    state["epoch"] = key
                    where = (f"copy {ev['copy']} " if ev.get("copy")  # lmc: two copies
                             else f"level {ev['level']} " if ev.get("level") is not None else "")  # a retraining: none
                    log(f"{what}: {where}epoch {ev.get('epoch')}/{ev.get('epochs')} step "
                        f"{ev.get('step')}/{ev.get('steps')} loss {ev.get('loss', 0):.3f} acc {ev.get('acc', 0):.1f}% "
                        f"{ev.get('images_per_sec', 0):.0f} img/s")
                if interrupt and not state["signalled"] and self.deadline_passed():
                    state["signalled"] = True  # the run's own handler checkpoints and stops at the next step
                    log(f"{what}: time limit reached, stopping at the next step (checkpoint written)")
                    signal.raise_signal(signal.SIGINT)
            elif phase == "level":
                log(f"{what}: level {ev.get('level')} done: top1 {ev.get('top1'):.2f}% sparsity "
                    f"{ev.get('sparsity'):.4f}")
                if on_level is not None:
                    on_level()

        return cb

    # -- IMP ---------------------------------------------------------------------------------------
    def imp(self, arch: str, seed: int) -> dict[str, Any]:
        """The IMP run of ``arch``: its record is saved after every level, its free arms as they come."""
        name = f"imp-{arch}-s{seed}"
        prev = self.done(name)
        if prev is not None and prev.get("complete", True):
            return prev
        import torch

        c = self.cfg
        run_dir = self.runs_dir / name
        # an interrupted run whose folder is gone (a fresh checkout) starts over: the levels it had finished, and
        # the arms made from them, stand only if they come out the same
        redo = prev if prev is not None and prev["levels"] and not (run_dir / "run.json").is_file() else None
        if redo is not None:
            self._require_recorded_setting(redo, "its run folder is gone and it starts over")
        log(f"IMP {arch} seed {seed}: {c['levels']} levels at rate {c['rate']} -> {run_dir}")

        def level_done() -> None:
            rec = self.imp_record(arch, seed, run_dir, False)
            if redo is not None:
                self._compare_counts(redo, rec, "the run started over")
            self.free_arms(self.save_arm(name, self.keep_tickets(name, run_dir, rec), quiet=True))

        self._find(arch, seed, run_dir, torch.get_num_threads(), f"IMP {arch} s{seed}", level_done,
                   f"during IMP {arch} seed {seed}")
        rec = self.save_arm(name, self.keep_tickets(name, run_dir, self.imp_record(arch, seed, run_dir, True)))
        self.free_arms(rec)
        return rec

    def _find(self, arch: str, seed: int, run_dir: Path, threads: int, what: str, on_level: Any,
              when: str) -> None:
        """Run (or resume) the scale's IMP run of ``arch`` into ``run_dir``; the slice ends at its deadline with the
        run checkpointed (:class:`SliceEnd`, ``when`` says where)."""
        from ticketfmt.train import find

        c = self.cfg
        try:
            find(arch, c["dataset"], c["levels"], out_dir=run_dir, rate=c["rate"], recipe=self.recipe,
                 subset=c["subset"], seed=seed, resume=True, device=self.device, num_workers=1, threads=threads,
                 data_factory=self.data_factory, progress=self._progress(what, True, on_level))
        except KeyboardInterrupt:
            if self.deadline_passed():
                raise SliceEnd(f"time limit reached {when}; its checkpoint is written") from None
            raise

    # -- the IMP runs' level tickets ---------------------------------------------------------------
    # runs/ (checkpoints) is not committed; every level ticket is also kept in tickets/<run>/, which is,
    # so that a fresh checkout can go on with the arms that start from them.
    def keep_tickets(self, name: str, run_dir: Path, rec: dict[str, Any]) -> dict[str, Any]:
        """Copy the run's level tickets to ``tickets/<name>/``; the record's paths become relative to the folder."""
        from ticketfmt.format.atomic import atomic_write

        for lv in rec["levels"]:
            src = run_dir / Path(lv["path"]).name
            dst = self.tickets_dir / name / src.name
            if src.is_file():
                data = src.read_bytes()
                if not dst.is_file() or dst.read_bytes() != data:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(dst, [data])
            lv["path"] = dst.relative_to(self.out).as_posix()
        return rec

    def ticket_file(self, rec: dict[str, Any], level: int) -> Path | None:
        """Where level ``level`` of the IMP run ``rec`` is kept; None: not kept (a record from before they were)."""
        path = Path(next(x for x in rec["levels"] if x["level"] == level)["path"])
        kept = self.tickets_dir / rec["arm"] / path.name
        for cand in ((self.out / path,) if not path.is_absolute() else ()) + (kept,):
            if cand.is_file():
                return cand
        return None

    def level_ticket(self, rec: dict[str, Any], level: int) -> Any:
        """Level ``level``'s ticket of the IMP run ``rec``, restored first if it was lost (see :meth:`restore`)."""
        from ticketfmt.ticket import Ticket

        path = self.ticket_file(rec, level)
        if path is None:
            rec = self.restore(rec)
            path = self.ticket_file(rec, level)
        assert path is not None  # restore() keeps every level or raises
        return Ticket.load(path)

    def adopt_run_folders(self) -> None:
        """Keep the level tickets of IMP records that are not kept yet but whose run folder is here (a record
        written before tickets/ existed, or a run folder brought back from another machine), once checked."""
        for rec in self.load_arms():
            if rec["method"] != "imp-run" or all(self.ticket_file(rec, lv["level"]) for lv in rec["levels"]):
                continue
            run_dir = self.runs_dir / rec["arm"]
            if not ((run_dir / "metrics.jsonl").is_file() and (run_dir / "run.json").is_file()):
                continue
            again = self.imp_record(rec["arch"], rec["seed"], run_dir, False)
            if _missing_levels(rec, again):
                # a restore cut by a slice's end: the levels it has must already agree; it goes on (resume)
                # when an arm needs its tickets, and is checked whole then
                self._compare_counts(rec, again, "the restore under way")
                log(f"{rec['arm']}: a restore under way (levels {[lv['level'] for lv in again['levels']]} of "
                    f"{len(rec['levels'])} as recorded); it goes on when an arm needs its tickets")
                continue
            self._check_and_keep(rec, run_dir, again, "its run folder")

    def restore(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Run the IMP run ``rec`` again when its level tickets are lost (made before they were kept, and its run
        folder not committed). On the same device and threads a CPU run repeats bit for bit, so the new run must
        score exactly the recorded correct count at every level; otherwise the arms made from the lost tickets
        could not be continued with the same ones, and it stops and says so."""
        name, arch, seed = rec["arm"], rec["arch"], rec["seed"]
        threads = self._require_recorded_setting(rec, "its level tickets are lost and must be made again as "
                                                      "they were")
        log(f"{name}: its level tickets are lost; running it again ({threads} thread(s)) and checking every level")
        run_dir = self.runs_dir / name
        self._find(arch, seed, run_dir, threads, f"restore {name}", None, f"while restoring {name}")
        return self._check_and_keep(rec, run_dir, self.imp_record(arch, seed, run_dir, True), "the run made again")

    def _require_recorded_setting(self, rec: dict[str, Any], why: str) -> int:
        """The recorded thread count of the IMP run ``rec``; :class:`RunError` unless this run has its device and
        (on the CPU) its threads, the only setting at which it repeats bit for bit."""
        import torch

        threads = _threads(rec)
        if rec.get("device", "cpu") != self.device or (self.device == "cpu" and threads != torch.get_num_threads()):
            raise RunError(f"{self.out}: {rec['arm']}: {why}: rerun with --device {rec.get('device', 'cpu')} "
                           f"--threads {threads}")
        return threads

    def _compare_counts(self, rec: dict[str, Any], again: dict[str, Any], what: str) -> None:
        """:class:`RunError` unless every level of ``rec`` that ``again`` has scores the recorded correct count."""
        was = {lv["level"]: lv.get("correct") for lv in rec["levels"]}
        now = {lv["level"]: lv.get("correct") for lv in again["levels"]}
        bad = [lv for lv, n in was.items() if lv in now and now[lv] != n]
        if bad:
            diff = ", ".join(f"level {lv}: {now[lv]} vs {was[lv]} correct" for lv in bad)
            raise RunError(f"{self.out}: {rec['arm']}: {what} has other results than the record ({diff}): the arms "
                           f"made from its lost tickets cannot be continued with these; start a new --out")

    def _check_and_keep(self, rec: dict[str, Any], run_dir: Path, again: dict[str, Any],
                        what: str) -> dict[str, Any]:
        """Keep ``run_dir``'s level tickets for ``rec`` if each of the record's levels scores its correct count
        (``again``: the record :meth:`imp_record` makes of ``run_dir``)."""
        name = rec["arm"]
        missing = _missing_levels(rec, again)
        if missing:
            raise RunError(f"{self.out}: {name}: {what} lacks level(s) {missing} of the record; bring the whole run "
                           f"folder or remove runs/{name}")
        self._compare_counts(rec, again, what)
        was = [lv.get("correct") for lv in rec["levels"]]
        kept = {**rec, "levels": [dict(lv) for lv in rec["levels"]],
                "tickets_kept": {"from": what, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                 "check": "every level's correct count equals the record's",
                                 **({"train_seconds": again["train_seconds"]} if what == "the run made again" else {})}}
        self.keep_tickets(name, run_dir, kept)
        _write_json(self.arm_path(name), kept)
        log(f"{name}: level tickets kept from {what} (correct counts {was} as recorded)")
        return kept

    def imp_record(self, arch: str, seed: int, run_dir: Path, complete: bool) -> dict[str, Any]:
        """An IMP run's record from its folder: per level top-1, sparsity, steps, images, training seconds."""
        secs: dict[int, float] = {}
        finished: dict[int, dict[str, Any]] = {}
        cut: set[int] = set()
        for line in (run_dir / "metrics.jsonl").read_text().splitlines():
            ev = json.loads(line)
            if ev.get("event") == "epoch":
                secs[int(ev["level"])] = secs.get(int(ev["level"]), 0.0) + float(ev.get("seconds", 0.0))
            elif ev.get("event") == "level":
                finished[int(ev["level"])] = ev
            elif ev.get("event") == "interrupted":
                cut.add(int(ev["level"]))
        run = json.loads((run_dir / "run.json").read_text())
        spe, r = int(run["steps_per_epoch"]), int(run["rewind_step"])
        total = self.recipe.total_steps(spe)
        levels = []
        for lv in sorted(finished):
            ev, steps = finished[lv], (total if lv == 0 else total - r)
            images = steps * self.recipe.batch_size
            seconds = secs.get(lv, 0.0)
            if lv in cut:  # the epoch cut by a slice's end logged no seconds: from the level's images/s instead
                from ticketfmt.ticket import Ticket

                speed = Ticket.load(ev["path"]).results[0].get("images_per_sec")
                seconds = images / speed if speed else seconds
            levels.append({"level": lv, "path": str(ev["path"]), "top1": round(float(ev["test_acc"]), 2),
                           "correct": ev.get("correct"), "total": ev.get("total"),
                           "sparsity": round(float(ev["sparsity"]), 6), "steps": steps,
                           "epochs": round(steps / spe, 4), "images": images,
                           "train_seconds": round(seconds, 2), "train_seconds_estimated": lv in cut})
        return {"method": "imp-run", "arch": arch, "seed": seed, "complete": complete, "levels": levels,
                "steps_per_epoch": spe, "rewind_step": r, "train_seconds": round(sum(secs.values()), 2),
                **({"threads": int(run["threads"])} if run.get("threads") else {})}

    def free_arms(self, imp_rec: dict[str, Any]) -> None:
        """The arms an IMP run's levels are (dense, IMP on target, IMP on source), written once each level exists."""
        c = self.cfg
        have = {lv["level"] for lv in imp_rec["levels"]}
        seed = imp_rec["seed"]
        wanted: list[tuple[str, str, int]] = []
        if imp_rec["arch"] == c["target"]:
            wanted.append((f"dense-s{seed}", "dense", 0))
            wanted += [(f"imp-L{lv}-s{seed}", "imp", lv) for lv in c["report"]]
        if imp_rec["arch"] == c["source"]:
            wanted += [(f"source_imp-L{lv}-s{seed}", "source_imp", lv) for lv in c["report"]]
        for name, method, level in wanted:
            if method in self.methods and level in have:
                self.from_imp(name, method, imp_rec, level)

    def from_imp(self, name: str, method: str, imp_rec: dict[str, Any], level: int) -> dict[str, Any]:
        prev = self.done(name)
        if prev is not None:
            return prev
        lv = next(x for x in imp_rec["levels"] if x["level"] == level)
        return self.save_arm(name, {"method": method, "arch": imp_rec["arch"], "seed": imp_rec["seed"], "level": level,
                                    "sparsity": lv["sparsity"], "top1": lv["top1"], "correct": lv.get("correct"),
                                    "total": lv.get("total"), "steps": lv["steps"],
                                    "epochs": lv["epochs"], "images": lv["images"],
                                    "train_seconds": lv["train_seconds"], "wall_seconds": lv["train_seconds"],
                                    "note": "the IMP level's own training (same seed and budget as a retraining)"})

    # -- one retraining ----------------------------------------------------------------------------
    def retrain(self, name: str, method: str, ticket: Any, seed: int, level: int, extra: dict[str, Any],
                prep_seconds: float = 0.0) -> dict[str, Any]:
        import torch

        from ticketfmt.train import verify

        c = self.cfg
        state, partial = self.runs_dir / f"{name}.state", self.runs_dir / f"{name}.partial.json"
        before = json.loads(partial.read_text()) if partial.is_file() and state.is_file() else {}
        log(f"arm {name}: training {ticket.arch} at sparsity {ticket.sparsity:.4f}"
            + (f" (continuing: {before.get('slices', 1)} slice(s) so far)" if before else ""))
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        t0, cpu0 = time.perf_counter(), time.process_time()

        def spent() -> dict[str, Any]:
            return {"wall_seconds": before.get("wall_seconds", 0.0) + time.perf_counter() - t0 + prep_seconds,
                    "cpu_seconds": before.get("cpu_seconds", 0.0) + time.process_time() - cpu0,
                    "slices": before.get("slices", 0) + 1}

        try:
            _, rec = verify(ticket, c["dataset"], subset=c["subset"], seed=seed, recipe=self.recipe,
                            rewind=self.recipe.rewind, device=self.device, num_workers=1,
                            data_factory=self.data_factory, checkpoint=state, threads=torch.get_num_threads(),
                            progress=self._progress(f"arm {name}", True))
        except KeyboardInterrupt:
            if state.is_file():
                _write_json(partial, spent())  # the next slice adds its own seconds to these
            if self.deadline_passed():
                raise SliceEnd(f"time limit reached during {name}; its training state is in {state}") from None
            raise
        total = spent()
        partial.unlink(missing_ok=True)
        steps = int(rec["steps"])
        spe = self._spe(seed)
        return self.save_arm(name, {
            "method": method, "arch": ticket.arch, "seed": seed, "level": level, "sparsity": round(ticket.sparsity, 6),
            "threads": int(rec["threads"]), "top1": rec["value"], "correct": rec["correct"], "total": rec["total"],
            "steps": steps,
            "epochs": round(steps / spe, 4), "images": steps * self.recipe.batch_size,
            "train_seconds": round(steps * self.recipe.batch_size / rec["images_per_sec"], 2)
            if rec.get("images_per_sec") else None,
            "wall_seconds": round(total["wall_seconds"], 2), "prep_seconds": round(prep_seconds, 3),
            "cpu_seconds": round(total["cpu_seconds"], 1),
            **({"slices": total["slices"], "resumed_at_step": rec["resumed_at_step"]}
               if "resumed_at_step" in rec else {}), **extra})

    def _spe(self, seed: int) -> int:
        rec = self.done(f"imp-{self.cfg['target']}-s{seed}")  # its run folder may be gone (not committed)
        assert rec is not None  # the target's IMP run comes first
        return int(rec["steps_per_epoch"])

    def snip_data(self, seed: int) -> list[Any]:
        from ticketfmt import data as D

        c = self.cfg
        loader = D.make_loader(c["dataset"], "train", self.recipe.batch_size, True, "cpu", None, c["subset"], seed,
                               num_workers=1)
        loader.set_epoch(0)
        out = []
        for batch in loader:
            out.append(batch)
            if len(out) >= c["snip_batches"]:
                break
        return out

    # -- the whole protocol ------------------------------------------------------------------------
    def run(self) -> None:
        """IMP on the target (its dense level first) and the source, then the retrained arms method by method over
        the levels, in order of importance (interpolate, random, SNIP, magnitude, reinit, append, squeeze), so
        that a run cut short still has the core comparison at every sparsity; then the next seed."""
        c = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        self.adopt_run_folders()
        _write_json(self.out / "config.json", {"scale": self.scale, **{k: v for k, v in c.items()},
                                               "methods": list(self.methods), "recipe": self.recipe.to_json()})
        for i, seed in enumerate(c["seeds"]):
            if self.only_seeds is not None and seed not in self.only_seeds:
                continue  # its arms may wait on a restore at other threads; the plan keeps them
            tgt = self.imp(c["target"], seed)
            src = self.imp(c["source"], seed)
            self.refresh()
            prep = ArmMaker(self, seed, tgt, src)
            for method in self.retrained():
                for level in self.seed_levels(i):
                    name = f"{method}-L{level}-s{seed}"
                    if self.done(name) is not None:
                        continue
                    if self.record_twin(name, method, level, seed, prep):  # not a training: --only does not apply
                        self.refresh()
                        continue
                    if self.only is not None and method not in self.only:
                        continue
                    self.check_fits(name, c["source"] if method == "squeeze" else c["target"],
                                    resumable=not self.whole_arms)
                    t0 = time.perf_counter()
                    tk, extra = prep.make(method, level)
                    self.retrain(name, method, tk, seed, level, extra, prep_seconds=time.perf_counter() - t0)
                    self.refresh()
        if (self.only is None or "lmc" in self.only) and (self.only_seeds is None or c["seeds"][0] in self.only_seeds):
            self.run_lmc()  # the first seed's tickets
        self.report()

    def run_lmc(self) -> None:
        """The linear mode connectivity arms, after every other arm (so a running plan only grows at its end)."""
        c = self.cfg
        if not self.lmc_arms():
            return
        seed, level = c["seeds"][0], max(c["report"])
        prep = ArmMaker(self, seed, self.imp(c["target"], seed), self.imp(c["source"], seed))
        for key, _ in LMC_TICKETS:
            name = f"lmc_{key}-L{level}-s{seed}"
            if name not in self.lmc_arms() or self.done(name) is not None:
                continue
            self.check_fits(name, c["target"], trainings=2.5)  # two trainings and the path's evaluations
            ticket = prep.converted(level, "interpolate")[0] if key == "interpolate" else prep.level_ticket(prep.tgt,
                                                                                                           level)
            self.connectivity(name, key, ticket, seed, level)
            self.refresh()

    def connectivity(self, name: str, key: str, ticket: Any, seed: int, level: int) -> dict[str, Any]:
        """One lmc arm: two copies of ``ticket`` on two data orders (the retrainings' budget), the path between them."""
        import torch

        from ticketfmt.train import lmc

        c = self.cfg
        log(f"arm {name}: linear mode connectivity of {ticket.arch} at sparsity {ticket.sparsity:.4f}")
        t0, cpu0 = time.perf_counter(), time.process_time()
        res = lmc(ticket, c["dataset"], points=int(c.get("lmc_points") or 21), subset=c["subset"], seed=seed,
                  recipe=self.recipe, rewind=self.recipe.rewind, device=self.device, num_workers=1,
                  data_factory=self.data_factory, threads=torch.get_num_threads(),
                  progress=self._progress(f"arm {name}", False))
        r = res.record
        return self.save_arm(name, {
            "method": "lmc", "ticket": key, "arch": ticket.arch, "seed": seed, "level": level,
            **({"threads": int(r["threads"])} if r.get("threads") else {}),
            "sparsity": round(ticket.sparsity, 6), "barrier": r["value"], "endpoints": r["endpoints"],
            "max_error": r["max_error"], "points": r["points"], "alphas": r["alphas"], "errors": r["errors"],
            "data_orders": r["data_orders"], "steps": r["steps"], "total": r["total"],
            "wall_seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(time.process_time() - cpu0, 1)})

    def refresh(self, every_s: float = 30.0) -> None:
        """Rebuild the outputs after an arm, at most every ``every_s`` seconds (the tiny scales finish arms in
        seconds; the real ones take many minutes, so every arm shows at once)."""
        if time.monotonic() - self._last_report >= every_s:
            self.report()

    def log_slice(self, status: str) -> None:
        """Append this slice (wall and CPU seconds, threads, device, arms finished) to ``slices.jsonl``."""
        import torch

        rec = {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - (time.monotonic()
                                                                                              - self.t_start))),
               "wall_seconds": round(time.monotonic() - self.t_start, 1),
               "cpu_seconds": round(time.process_time() - self.cpu_start, 1), "threads": torch.get_num_threads(),
               "device": self.device, "machine": _machine(self.device), "arms_finished": list(self.finished_here),
               "status": status,
               "load_average_1min": _load_average()}
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "slices.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    def machine(self) -> dict[str, Any]:
        """The machine the trainings ran on: the last slice's (``--report-only`` runs anywhere, a device run's
        folder is reported here); this one's for a folder whose slices predate the record."""
        for sl in reversed(self.slices()):
            if sl.get("machine"):
                return sl["machine"]
        return _machine(self.device)

    def slices(self) -> list[dict[str, Any]]:
        p = self.out / "slices.jsonl"
        return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []

    # -- outputs -----------------------------------------------------------------------------------
    def load_arms(self) -> list[dict[str, Any]]:
        if not self.arms_dir.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.arms_dir.glob("*.json"))]

    def table(self, trainings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = {}
        for key, label in METHODS:
            if key not in self.methods:
                continue
            row: dict[str, Any] = {"label": label, "cells": {}}
            for level in self.cfg["report"] if key != "dense" else (0,):
                rs = [a for a in trainings if a["method"] == key and a["level"] == level]
                if not rs:
                    continue
                accs = [float(a["top1"]) for a in rs]
                trained = [a for a in rs if "same_ticket_as" not in a]
                twins = sorted({a["same_ticket_as"] for a in rs if "same_ticket_as" in a})
                row["cells"][str(level)] = {
                    "n": len(rs), "mean": round(statistics.fmean(accs), 2),
                    "std": round(statistics.stdev(accs), 2) if len(accs) > 1 else None,
                    "sparsity": round(statistics.fmean(float(a["sparsity"]) for a in rs), 4),
                    "epochs": rs[0]["epochs"], "images": rs[0]["images"],
                    # a twin took no time: its 0 s would pass for a fast training
                    "wall_seconds": (round(statistics.fmean(float(a["wall_seconds"] or 0) for a in trained), 1)
                                     if trained else None),
                    "threads": sorted({_threads(a) for a in rs}),
                    "seeds": [a["seed"] for a in rs],
                    **({"same_ticket_as": twins} if twins else {}),
                }
            table[key] = row
        return table

    def savings(self, imps: dict[str, dict[str, Any]], trainings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The saving: IMP on the target up to level L vs one conversion + one retraining."""
        c, savings = self.cfg, []
        for level in c["report"]:
            for seed in c["seeds"]:
                tgt = imps.get(f"{c['target']}-s{seed}")
                src = imps.get(f"{c['source']}-s{seed}")
                conv = next((a for a in trainings if a["method"] == "interpolate" and a["level"] == level
                             and a["seed"] == seed), None)
                if tgt is None or conv is None or len(tgt["levels"]) <= level:
                    continue
                lvls = tgt["levels"][: level + 1]
                imp_images = sum(lv["images"] for lv in lvls)
                imp_secs = sum(lv["train_seconds"] for lv in lvls)
                ett_secs = float(conv["wall_seconds"])
                s = {"level": level, "seed": seed, "imp_target_trainings": level + 1,
                     "imp_target_epochs": round(sum(lv["epochs"] for lv in lvls), 3), "imp_target_images": imp_images,
                     "imp_target_train_seconds": round(imp_secs, 1),
                     "ett_epochs": conv["epochs"], "ett_images": conv["images"], "ett_seconds": round(ett_secs, 1),
                     "convert_seconds": conv.get("convert_seconds"),
                     "image_ratio": round(imp_images / max(conv["images"], 1), 2),
                     "time_ratio": round(imp_secs / max(ett_secs, 1e-9), 2)}
                if self.device == "cpu":
                    # slices ran at different thread counts (and loads): wall seconds of a 1-thread and a
                    # 2-thread training do not compare, CPU seconds (wall x threads) do
                    imp_cpu = imp_secs * _threads(tgt)
                    ett_cpu = ett_secs * _threads(conv)
                    s.update({"imp_target_cpu_seconds": round(imp_cpu, 1), "ett_cpu_seconds": round(ett_cpu, 1),
                              "time_ratio": round(imp_cpu / max(ett_cpu, 1e-9), 2)})
                if src is not None:
                    s["source_imp_train_seconds"] = round(sum(lv["train_seconds"] for lv in src["levels"][: level + 1]), 1)
                savings.append(s)
        return savings

    def gaps(self, trainings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Each arm's top-1 minus its reference's at the same level and seed, in points: IMP on the target for the
        target's arms, the source's IMP for squeeze, and IMP minus dense for the dense row. Paired by seed, because
        one training's seed spread here is as large as the gaps; a twin arm (its twin's result) is left out."""
        top1 = {(a["method"], a["level"], a["seed"]): float(a["top1"]) for a in trainings
                if a["method"] != "lmc" and "same_ticket_as" not in a}
        out: dict[str, dict[str, Any]] = {}
        for key, _ in METHODS:
            if key not in self.methods or key in ("imp", "source_imp"):
                continue
            ref = "source_imp" if key == "squeeze" else "imp"
            cells: dict[str, Any] = {}
            for level in self.cfg["report"]:
                diffs, seeds = [], []
                for seed in self.cfg["seeds"]:
                    ours = top1.get((key, 0 if key == "dense" else level, seed))
                    theirs = top1.get((ref, level, seed))
                    if ours is None or theirs is None:
                        continue
                    diffs.append(theirs - ours if key == "dense" else ours - theirs)
                    seeds.append(seed)
                if diffs:
                    cells[str(level)] = {"n": len(diffs), "mean": round(statistics.fmean(diffs), 2),
                                         "std": round(statistics.stdev(diffs), 2) if len(diffs) > 1 else None,
                                         "each": [round(d, 2) for d in diffs], "seeds": seeds}
            if cells:
                out[key] = {"reference": ref, "cells": cells}
        return out

    def progress(self, arms: list[dict[str, Any]]) -> dict[str, Any]:
        """How far the run is: arms, trainings and images done of those planned; CPU hours spent and to come."""
        done = {a["arm"] for a in arms}
        planned = self.planned_arms()
        imp_total, re_total = self.planned_trainings(arms)  # the arms read once
        imp_levels = [lv for a in arms if a["method"] == "imp-run" for lv in a["levels"]]
        retrains = [a for a in arms if a["method"] in RETRAINED and "same_ticket_as" not in a]
        images = sum(int(lv["images"]) for lv in imp_levels) + sum(int(a["images"]) for a in retrains)
        # (training seconds, threads) per training: slices may run at different thread counts
        timed = [(float(lv["train_seconds"] or 0), _threads(a))
                 for a in arms if a["method"] == "imp-run" for lv in a["levels"]]
        timed += [(float(a.get("train_seconds") or 0), _threads(a)) for a in retrains]
        secs = sum(t for t, _ in timed)
        cpu_secs = sum(t * n for t, n in timed)
        threads = sorted({int(a["threads"]) for a in arms if a.get("threads")} |
                         {int(s["threads"]) for s in self.slices() if s.get("threads")})
        per_training = self.images_per_training()
        r_images = self.recipe.rewind_step(self.steps_per_epoch()) * self.recipe.batch_size
        planned_images = imp_total * per_training + re_total * (per_training - r_images)
        rate = images / secs if secs > 0 else None
        cpu_rate = images / cpu_secs if cpu_secs > 0 else None  # images per CPU second (wall x threads)
        slices = self.slices()
        return {"arms_done": sum(1 for n in planned if n in done), "arms_planned": len(planned),
                "imp_levels_done": len(imp_levels), "imp_levels_planned": imp_total,
                "retrainings_done": len(retrains), "retrainings_planned": re_total,
                "images_done": images, "images_planned": planned_images, "images_per_training": per_training,
                "train_hours_done": round(secs / 3600, 2), "threads": threads,
                "cpu_hours_done": round(cpu_secs / 3600, 2) if self.device == "cpu" else None,
                "images_per_sec": round(rate, 1) if rate else None,
                "cpu_hours_left_estimate": round((planned_images - images) / cpu_rate / 3600, 1)
                if cpu_rate and self.device == "cpu" else None,
                "slices": len(slices), "slice_wall_hours": round(sum(s["wall_seconds"] for s in slices) / 3600, 2),
                "slice_cpu_hours": round(sum(s["cpu_seconds"] for s in slices) / 3600, 2)}

    def steps_per_epoch(self) -> int:
        c = self.cfg
        for a in self.load_arms():
            if a["method"] == "imp-run":
                return int(a["steps_per_epoch"])
        from ticketfmt import data as D

        n = c["subset"] or (D.get_spec(c["dataset"]).split_sizes or (50000, 10000))[0]
        return math.ceil(n / c["batch_size"])

    def images_per_training(self) -> int:
        """Images of one dense training (a retraining from the rewind step sees a little fewer)."""
        return self.recipe.total_steps(self.steps_per_epoch()) * self.recipe.batch_size

    def report(self) -> dict[str, Any]:
        c = self.cfg
        arms = self.load_arms()
        imps = {a["arch"] + f"-s{a['seed']}": a for a in arms if a["method"] == "imp-run"}
        trainings = [a for a in arms if a["method"] != "imp-run"]
        self._last_report = time.monotonic()
        prog = self.progress(arms)
        results = {"scale": self.scale, "config": {k: v for k, v in c.items()}, "methods": list(self.methods),
                   "recipe": self.recipe.to_json(), "machine": self.machine(), "device": self.device,
                   "table": self.table(trainings), "savings": self.savings(imps, trainings), "progress": prog,
                   "gaps": self.gaps(trainings),
                   "arms": arms, "complete": prog["arms_done"] == prog["arms_planned"],
                   "lmc": [a for a in trainings if a["method"] == "lmc"]}
        _write_json(self.out / "results.json", results)
        from ticketfmt.format.atomic import atomic_write

        atomic_write(self.out / "results.md", [render_md(results).encode()])
        if any(row["cells"] for row in results["table"].values()):  # nothing to draw before the first arm
            plot(results, self.out / "accuracy_vs_sparsity.png")
        if results["lmc"]:
            lmc_plot(results, self.out / "lmc.png")
        return results


class ArmMaker:
    """The ticket each retrained arm trains, for one seed (conversions, baselines at the converted sparsity)."""

    def __init__(self, bench: Bench, seed: int, tgt: dict[str, Any], src: dict[str, Any]) -> None:
        self.bench, self.seed, self.tgt, self.src = bench, seed, tgt, src
        self.c = bench.cfg
        self._snip: list[Any] | None = None

    def level_ticket(self, imp_rec: dict[str, Any], level: int) -> Any:
        rec = self.bench.done(imp_rec["arm"]) or imp_rec  # a restore may have rewritten the record
        return self.bench.level_ticket(rec, level)

    def converted(self, level: int, strategy: str) -> tuple[Any, float]:
        from ticketfmt.converters import convert

        t0 = time.perf_counter()
        tk = convert(self.level_ticket(self.src, level), self.c["target"], strategy=strategy)
        return tk, time.perf_counter() - t0

    def make(self, method: str, level: int) -> tuple[Any, dict[str, Any]]:
        """``(ticket, extra record fields)`` of ``method`` at ``level``."""
        from ticketfmt.converters import convert
        from ticketfmt.pruning import prune

        seed = self.seed
        if method in ("interpolate", "append"):
            tk, secs = self.converted(level, method)
            return tk, {"mapping": tk.provenance.get("mapping"), "convert_seconds": round(secs, 3)}
        if method == "squeeze":
            tk = convert(self.level_ticket(self.tgt, level), self.c["source"], strategy="spread")
            return tk, {"mapping": tk.provenance.get("mapping")}
        like, _ = self.converted(level, "interpolate")
        if method == "reinit":  # the source's ticket alone: no target IMP level is loaded (or restored)
            return self.reinit(like), {"like": "interpolate", "init_seed": seed + REINIT_SEED_OFFSET}
        dense = self.level_ticket(self.tgt, 0)
        if method == "random":
            return prune(dense, method="random", like=like, seed=seed), {"like": "interpolate"}
        if method == "snip":
            self._snip = self._snip or self.bench.snip_data(seed)
            tk = prune(dense, like.sparsity, method="snip", data=self._snip, batches=len(self._snip), seed=seed)
            return tk, {"batches": len(self._snip), "like": "interpolate"}
        if method == "magnitude":  # one-shot: the trained dense weights' global magnitude, rewound to θ_r
            return prune(dense, like.sparsity, method="magnitude", seed=seed), {"like": "interpolate",
                                                                                "scores": "trained dense weights"}
        raise ValueError(f"unknown arm method {method!r}")

    def reinit(self, like: Any) -> Any:
        """``like``'s mask on a fresh network (the reference initializer, another seed), trained like the others:
        the library's reinit baseline (``ticket prune --method reinit --like``)."""
        from ticketfmt.pruning import reinit

        return reinit(like, self.seed + REINIT_SEED_OFFSET, init="reference")


def _same_ticket(a: Any, b: Any) -> bool:
    """Whether two tickets train alike: same architecture, masks and initial weights, bit for bit."""
    import torch

    return (a.arch == b.arch and a.masks.keys() == b.masks.keys() and a.init.keys() == b.init.keys()
            and all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
            and all(torch.equal(a.init[k], b.init[k]) for k in a.init))


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _threads(rec: dict[str, Any]) -> int:
    """The threads an arm or IMP run trained at (records written before threads were recorded: 1)."""
    return int(rec.get("threads") or 1)


def _machine(device: str = "cpu") -> dict[str, Any]:
    import torch

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _cell(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "–"
    s = f"{cell['mean']:.2f}"
    if cell["std"] is not None:
        s += f" ± {cell['std']:.2f}"
    s += f" (n={cell['n']}, sp {100 * cell['sparsity']:.1f}%)"
    if cell.get("same_ticket_as"):
        s += " = " + ", ".join(cell["same_ticket_as"]) + "*"
    return s


def _trainings_threads(res: dict[str, Any]) -> str:
    """The thread counts the trainings ran at (the arms' and slices'), not those of the process writing the report
    (``--report-only`` runs anywhere); a report without progress says the machine's."""
    counts = (res.get("progress") or {}).get("threads") or [res["machine"]["threads"]]
    return f"trainings at {', '.join(str(t) for t in counts)} thread(s)"


def _missing_levels(rec: dict[str, Any], again: dict[str, Any]) -> list[int]:
    """The levels of the IMP record ``rec`` that the record ``again`` (from a run folder) has not reached."""
    return sorted({lv["level"] for lv in rec["levels"]} - {lv["level"] for lv in again["levels"]})


def _progress_md(res: dict[str, Any]) -> list[str]:
    p = res.get("progress")
    if not p:
        return []
    head = "All" if res["complete"] else "**Partial run**:"
    lines = [f"{head} {p['arms_done']} of {p['arms_planned']} arms done; trainings: IMP levels "
             f"{p['imp_levels_done']} of {p['imp_levels_planned']}, retrainings {p['retrainings_done']} of "
             f"{p['retrainings_planned']}; training images {p['images_done'] / 1e6:.2f}M of "
             f"{p['images_planned'] / 1e6:.2f}M planned ({p['images_per_training']:,} per dense training)."]
    threads = ", ".join(str(t) for t in p["threads"]) or "?"
    if p.get("cpu_hours_done") is not None:
        s = (f"Compute so far: {p['train_hours_done']:.2f} h of training on {res['device']} with {threads} "
             f"thread(s) = {p['cpu_hours_done']:.2f} CPU hours (wall x threads)")
        if p.get("images_per_sec"):
            s += f", {p['images_per_sec']:.0f} images/s on average"
        if p.get("cpu_hours_left_estimate") is not None and not res["complete"]:
            s += f"; about {p['cpu_hours_left_estimate']:.1f} CPU hours left at that speed"
        lines.append(s + ".")
    else:
        lines.append(f"Compute so far: {p['train_hours_done']:.2f} h of training on {res['device']}.")
    if p["slices"]:
        lines.append(f"{p['slices']} slice(s) logged in slices.jsonl: {p['slice_wall_hours']:.2f} h wall, "
                     f"{p['slice_cpu_hours']:.2f} h process CPU time.")
    return [" ".join(lines), ""]


def render_md(res: dict[str, Any]) -> str:
    c = res["config"]
    levels = list(c["report"])
    imp_sp = {lv: 1 - (1 - c["rate"]) ** lv for lv in levels}
    methods = set(res.get("methods") or [k for k, _ in METHODS])
    lines = [f"# Elastic LTH reproduction, scale `{res['scale']}`", ""]
    lines += _progress_md(res)
    extra = c.get("extra_seed_report")
    seeds = f"seeds {list(c['seeds'])}" + (f" (seeds after the first at levels {list(extra)} only)" if extra else "")
    lines.append(f"Source `{c['source']}`, target `{c['target']}`, dataset `{c['dataset']}`"
                 f" (train subset: {c['subset'] or 'all'}, test: "
                 f"{'fixed class-balanced subset of ' + str(c['test_subset']) if c['test_subset'] else 'whole split'}),"
                 f" {seeds}. Recipe: {res['recipe']['name']} with {res['recipe']['epochs']} epochs,"
                 f" batch {res['recipe']['batch_size']}, lr {res['recipe']['lr']}, milestones "
                 f"{res['recipe']['milestones']}, rewind {res['recipe']['rewind']}. IMP rate {c['rate']},"
                 f" {c['levels']} levels. Machine: {res['machine']['processor']}, {res['machine']['cpus']} cpus, "
                 + (f"{res['machine']['gpu']}, " if res["machine"].get("gpu") else "") +
                 f"torch {res['machine']['torch']}, device {res.get('device', 'cpu')}, "
                 f"{_trainings_threads(res)}.")
    lines.append("")
    lines.append("Top-1 (%) on the test set, mean ± std over seeds (n), with each arm's actual sparsity. "
                 "Columns are the IMP levels; the converted tickets' sparsity follows from the copied blocks.")
    lines.append("")
    head = "| method | " + " | ".join(f"level {lv} (IMP {100 * imp_sp[lv]:.1f}%)" for lv in levels) + \
           " | epochs / images per training | wall s per training (threads) |"
    lines.append(head)
    lines.append("|" + "---|" * (len(levels) + 3))
    for key, label in METHODS:
        if key not in methods:
            continue
        row = res["table"].get(key, {"cells": {}})
        cells = row["cells"]
        anyc = next(iter(cells.values()), None)
        cost = f"{anyc['epochs']:g} / {anyc['images']}" if anyc else "–"
        walls = [v["wall_seconds"] for v in cells.values() if v["wall_seconds"] is not None]
        # slices ran at different thread counts: a wall time means little without them
        threads = sorted({t for v in cells.values() for t in v.get("threads", [])})
        wall = (f"{statistics.fmean(walls):.0f}" + (f" ({', '.join(map(str, threads))})" if threads else "")
                if walls else "–")
        if key == "dense":
            vals = [_cell(cells.get("0"))] * len(levels)
        else:
            vals = [_cell(cells.get(str(lv))) for lv in levels]
        lines.append(f"| {label} | " + " | ".join(vals) + f" | {cost} | {wall} |")
    lines.append("")
    lines.append("(a) and (f) and the source's own IMP ticket are the IMP levels' own trainings (from the rewind "
                 "step, same seed and budget as every retraining); the squeeze arm trains the source architecture.")
    lines.append("")
    twins = sorted({t for row in res["table"].values() for cell in row["cells"].values()
                    for t in cell.get("same_ticket_as", ())})
    if twins:
        lines.append("\\* Not trained: the arm's ticket is the named arm's bit for bit (the same mapping: with one "
                     "block added a stage, interpolating and appending both copy the last block), so its retraining "
                     "would repeat that arm's; the result shown is that arm's, not another sample.")
        lines.append("")
    lines += _gaps_md(res, levels)
    lines += _savings_md(res)
    lines += _lmc_md(res)
    if not res["complete"]:
        lines.append("**Incomplete run**: not every arm has finished (see `arms/`); rerun with `--resume`.")
        lines.append("")
    return "\n".join(lines)


def _gaps_md(res: dict[str, Any], levels: list[int]) -> list[str]:
    gaps = res.get("gaps") or {}
    if not gaps:
        return []
    labels = dict(METHODS)
    lines = ["## Paired differences (same seed)", "",
             "Points of top-1: each arm minus IMP on the target at the same level and seed (squeeze: minus the "
             "source's IMP; dense row: IMP minus dense), mean ± std over the seeds where both are done (n), each "
             "seed's after the n. Compare a difference with its spread and with the IMP row's own spread above.", "",
             "| method | " + " | ".join(f"level {lv}" for lv in levels) + " |", "|" + "---|" * (len(levels) + 1)]
    for key, row in gaps.items():
        vals = []
        for lv in levels:
            cell = row["cells"].get(str(lv))
            if cell is None:
                vals.append("–")
                continue
            v = f"{cell['mean']:+.2f}" + (f" ± {cell['std']:.2f}" if cell["std"] is not None else "")
            vals.append(v + f" (n={cell['n']}; " + ", ".join(f"{d:+.2f}" for d in cell["each"]) + ")")
        label = "IMP on target minus dense (f)" if key == "dense" else labels[key]
        lines.append(f"| {label} | " + " | ".join(vals) + " |")
    return lines + [""]


def _savings_md(res: dict[str, Any]) -> list[str]:
    if not res["savings"]:
        return []
    cpu = any("imp_target_cpu_seconds" in s for s in res["savings"])
    unit = " (CPU s)" if cpu else ""
    lines = ["## Cost: IMP on the target vs one conversion + one retraining", "",
             f"| level | seed | IMP on target: trainings / epochs / images / train s{unit} | ETT: epochs / images / "
             f"wall s{unit}; convert s | images ratio | time ratio{unit} |", "|---|---|---|---|---|---|"]
    for s in res["savings"]:
        imp_cpu = f" ({s['imp_target_cpu_seconds']:.0f})" if "imp_target_cpu_seconds" in s else ""
        ett_cpu = f" ({s['ett_cpu_seconds']:.0f})" if "ett_cpu_seconds" in s else ""
        lines.append(f"| {s['level']} | {s['seed']} | {s['imp_target_trainings']} / {s['imp_target_epochs']:g} / "
                     f"{s['imp_target_images']} / {s['imp_target_train_seconds']:.0f}{imp_cpu} | {s['ett_epochs']:g} / "
                     f"{s['ett_images']} / {s['ett_seconds']:.0f}{ett_cpu}; {s['convert_seconds']} | "
                     f"{s['image_ratio']:.2f}x | {s['time_ratio']:.2f}x |")
    lines += ["", "The source's IMP run is not counted against ETT: it is found once and reused for every "
              "target (its training seconds are in results.json, `source_imp_train_seconds`)."]
    if cpu:
        lines += ["On the CPU the time ratio is of CPU seconds (wall x the training's threads): the trainings ran in "
                  "slices at different thread counts, whose wall seconds do not compare."]
    return lines + [""]


def _lmc_md(res: dict[str, Any]) -> list[str]:
    arms = res.get("lmc") or []
    if not arms:
        return []
    labels = dict(LMC_TICKETS)
    order = [k for k, _ in LMC_TICKETS]
    arms = sorted(arms, key=lambda a: (a["seed"], a["level"], order.index(a["ticket"]) if a["ticket"] in order else 9))
    lines = ["## Linear mode connectivity (instability, the paper's Fig. 8)", "",
             "Each ticket trained twice from its rewind point with the retrainings' budget, on data orders "
             f"{' and '.join(map(str, arms[0]['data_orders']))} (same mask, init and data); the test error at "
             f"{arms[0]['points']} points of the straight line between the two trained networks (BatchNorm statistics "
             "interpolated, as the reference). Error barrier = the largest error on the line minus the mean of the "
             "two ends' errors; near 0: a stable (winning) ticket. The paper: 8.72 for ResNet-20 -> 32 "
             "(interpolate), 69.72 for ResNet-14 -> 32. Curves: `lmc.png`.", "",
             "| ticket | level | seed | sparsity | errors at the ends (%) | max error on the line (%) | error barrier "
             "(points) | wall s |", "|---|---|---|---|---|---|---|---|"]
    for a in arms:
        lines.append(f"| {labels.get(a['ticket'], a['ticket'])} | {a['level']} | {a['seed']} | "
                     f"{100 * a['sparsity']:.1f}% | {a['endpoints'][0]:.2f} / {a['endpoints'][1]:.2f} | "
                     f"{a['max_error']:.2f} | **{a['barrier']:.2f}** | {a['wall_seconds']:.0f} |")
    return lines + [""]


def lmc_plot(res: dict[str, Any], path: Path) -> None:
    """The lmc arms' error along the path (ticketfmt.cards.plot.lmc_plot), one curve per ticket."""
    from ticketfmt.cards.plot import lmc_plot as draw

    labels = dict(LMC_TICKETS)
    order = [k for k, _ in LMC_TICKETS]
    arms = sorted(res["lmc"], key=lambda a: order.index(a["ticket"]) if a["ticket"] in order else 9)
    arms = [a for a in arms if a["alphas"] == arms[0]["alphas"]]  # one α grid per figure
    c = res["config"]
    draw(arms[0]["alphas"], {f"{labels.get(a['ticket'], a['ticket'])}, {100 * a['sparsity']:.1f}% sparse":
                             a["errors"] for a in arms}, path, endpoints=("copy A", "copy B"),
         ylabel="test error (%)", title=f"Linear mode connectivity ({res['scale']}): {c['target']} on {c['dataset']}, "
                                        f"level {arms[0]['level']}, seed {arms[0]['seed']}")


SQUEEZE_ARMS = ("squeeze", "source_imp")  # trained on the source architecture: dotted lines


def plot(res: dict[str, Any], path: Path) -> None:
    """Accuracy against the weights remaining per method (ticketfmt.cards.plot.accuracy_plot, matplotlib).

    Every method of ``METHODS`` keeps its colour and marker whether or not it has results; the dense
    target (f) is a band (mean ± std) rather than a point.
    """
    from ticketfmt.cards.plot import Curve, accuracy_plot

    c = res["config"]
    curves, dense = [], None
    for key, label in METHODS:
        cells = res["table"].get(key, {}).get("cells", {})
        if key == "dense":
            d = cells.get("0")
            dense = (d["mean"], d["std"]) if d else None
            continue
        pts = tuple((v["sparsity"], v["mean"], v["std"]) for v in cells.values())
        curves.append(Curve(label, pts, ":" if key in SQUEEZE_ARMS else "-"))
    ns = sorted({int(v["n"]) for row in res["table"].values() for v in row.get("cells", {}).values()})
    over = "n/a" if not ns else f"{ns[0]}" if len(ns) == 1 else f"{ns[0]} to {ns[-1]}"
    p = res.get("progress") or {}
    partial = (f"; {p['arms_done']} of {p['arms_planned']} arms done"
               if p.get("arms_done") is not None and p["arms_done"] < p["arms_planned"] else "")
    title = (f"Elastic LTH reproduction ({res['scale']}): {c['target']} on {c['dataset']}\n"
             f"mean ± std over seeds (n = {over} per point{partial})\n"
             f"dotted: the squeeze arm and its reference, trained on {c['source']}")
    accuracy_plot(curves, path, dense=dense, dense_label=dict(METHODS)["dense"], title=title,
                  ylabel=f"test top-1 accuracy (%), {c['test_subset'] or 'all'} test images")


def _seed_list(flag: str, text: str) -> tuple[int, ...]:
    """``text``, comma-separated whole numbers, as seeds; a ValueError that names ``flag`` otherwise."""
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} {text}: not comma-separated whole numbers; e.g. {flag} 1") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="smoke")
    p.add_argument("--out", default=None, help="output folder (default bench/results/reproduce-<scale>/)")
    p.add_argument("--resume", action="store_true", help="skip finished arms, resume interrupted IMP runs")
    p.add_argument("--seeds", default=None, help="comma-separated seeds instead of the scale's (e.g. 0,1)")
    p.add_argument("--report-only", action="store_true", help="only rebuild results.md/json/png from arms/")
    p.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                   help="run one slice: stop the IMP run or retraining in progress at the limit (checkpointed), "
                        "start none with under 5 minutes left; continue later with --resume")
    p.add_argument("--only", default=None, metavar="METHODS",
                   help="comma-separated retrained methods (and lmc) this slice may train, e.g. append,reinit; the "
                        "plan and the report keep every arm (default: all, in the plan's order)")
    p.add_argument("--only-seeds", default=None, metavar="SEEDS",
                   help="comma-separated seeds of the scale's whose arms this slice may train, e.g. 1 (say, while "
                        "the first seed's IMP tickets wait to be restored at other threads); the plan and the "
                        "report keep every seed")
    p.add_argument("--whole-arms", action="store_true",
                   help="start a retraining only if its estimated time fits in --time-limit (for a slice whose "
                        "runs/ will not be kept, e.g. a session's last: a retraining cut at the limit would be lost)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the scale's)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset archives (default $TICKETFMT_DATA, "
                                                     "else ../shared/data)")
    p.add_argument("--lmc", action="store_true",
                   help="also run the linear mode connectivity step (the ETT and IMP tickets at the highest level, "
                        "first seed) after every other arm; on by default at the scales whose config says lmc")
    p.add_argument("--sanity", action="store_true",
                   help="the scale's whole protocol on 512 training images x 1 epoch (rewind 1 it) and 500 test "
                        "images, into bench/work/sanity-<scale>/: minutes, to check a scale before a long slice")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"reproduce-{args.scale}"
    if args.sanity:
        out = Path(args.out) if args.out else ROOT / "bench" / "work" / f"sanity-{args.scale}"
    if out.exists() and any((out / "arms").glob("*.json")) and not (args.resume or args.report_only):
        print(f"{out} holds results already; pass --resume to continue them (or choose another --out)",
              file=sys.stderr)
        return 2
    cfg = dict(SCALES[args.scale])
    if args.sanity:
        cfg.update(subset=512, epochs=1, rewind="1it", test_subset=500, snip_batches=1)
    try:
        seeds = _seed_list("--seeds", args.seeds) if args.seeds else None
        only_seeds = _seed_list("--only-seeds", args.only_seeds) if args.only_seeds else None
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    if seeds:
        cfg["seeds"] = seeds
    if args.lmc:
        cfg["lmc"] = True
    data_dir = args.data_dir or cfg.get("data_dir")
    if data_dir:
        os.environ["TICKETFMT_DATA"] = str(data_dir)
    import torch

    threads = args.threads or cfg["threads"]
    if threads:
        torch.set_num_threads(int(threads))
    limit = None if args.time_limit is None else 60.0 * args.time_limit
    bench = Bench(args.scale, out, args.resume, cfg=cfg, device=args.device, time_limit_s=limit)
    bench.whole_arms = args.whole_arms
    if args.only:
        bench.only = tuple(x.strip() for x in args.only.split(",") if x.strip())
        unknown = sorted(set(bench.only) - set(bench.retrained()) - {"lmc"})
        if unknown:
            print(f"--only {args.only}: unknown method(s) {unknown}; choose from {[*bench.retrained(), 'lmc']}",
                  file=sys.stderr)
            return 2
    if only_seeds:
        bench.only_seeds = only_seeds
        unknown_seeds = sorted(set(only_seeds) - set(cfg["seeds"]))
        if unknown_seeds:
            print(f"--only-seeds {args.only_seeds}: {unknown_seeds} not seeds of this run; choose from "
                  f"{list(cfg['seeds'])}", file=sys.stderr)
            return 2
    rc = 0
    if not args.report_only:
        log(f"scale {args.scale} on {args.device} with {torch.get_num_threads()} thread(s) -> {out}"
            + (f"; time limit {args.time_limit:g} min" if limit else ""))
        status = "finished"
        try:
            bench.run()
        except SliceEnd as e:
            status = f"time limit: {e}"
            log(f"slice ended: {e}; continue with --resume")
        except RunError as e:
            status, rc = f"stopped: {e}", 2
            print(f"error: {e}", file=sys.stderr)
        except KeyboardInterrupt:
            status, rc = "interrupted", 130
            log("interrupted; continue with --resume")
        except BaseException as e:  # the slice log must not say "finished" for a slice that failed
            status = f"error: {type(e).__name__}: {e}"
            raise
        finally:
            bench.log_slice(status)
        log(f"slice done in {time.monotonic() - bench.t_start:.0f} s ({status})")
    else:
        try:
            bench.adopt_run_folders()
        except RunError as e:
            print(f"error: {e}", file=sys.stderr)
            rc = 2
    bench.report()
    print((out / "results.md").read_text())
    return rc


if __name__ == "__main__":
    sys.exit(main())
