"""Reproduce the Elastic Lottery Ticket result (issue 6, "Reproduction") at three scales.

Protocol (same data, seeds and per-training budget for every arm):

1. IMP with rewinding on a source (``cifar_resnet20``) and a target (``cifar_resnet32``);
   three pruning levels are reported (``paper``: levels 4/7/10 at rate 0.2 = 59/79/89%;
   ``cpu``/``smoke``: levels 1/2/3 at rate 0.52 = 52/77/89%, fewer levels with a larger
   rate because every level costs a full training).
2. At each level, train on the target: (a) the target's own IMP ticket, (b) the source
   ticket converted with ``interpolate``, (c) with ``append``, (d) random pruning of the
   dense level-0 target ticket at the per-layer density of (b), (e) SNIP at the sparsity
   of (b), (f) the dense target (level 0). Squeeze arm: the target's IMP ticket converted
   back to the source architecture with ``spread``, against the source's own IMP ticket.
3. Every retraining starts from the ticket's rewind weights at the rewind step (the
   schedule continues from there), exactly like the IMP levels >= 1. The IMP arms (a),
   (f) and the source's own ticket are not retrained for the IMP seed: their IMP level
   *is* that training (``verify`` with the same seed and budget reproduces it exactly).

Every arm writes ``arms/<arm>.json`` as soon as it finishes; ``--resume`` skips finished
arms and resumes interrupted IMP runs from their checkpoints. Outputs: ``results.md``,
``results.json``, ``accuracy_vs_sparsity.png`` (Pillow, no matplotlib).

Scales:

- ``smoke``: cifar10-mini, cifar_resnet14 -> cifar_resnet20, a few steps; < 3 minutes.
- ``cpu``: cifar10-jpeg, 1,500 class-balanced training images x 2 epochs, a fixed
  class-balanced 1,000-image test subset, batch 32 at lr 0.05 (twice the optimizer steps of
  batch 64 for the same images: with 1,500 x 2 at batch 64 the dense ResNet-32 stayed near
  chance), rewind 4 it, one seed (``--seeds 0,1`` adds seed 1 to a finished run with
  ``--resume``); ~40 minutes on 2 shared CPU cores.
- ``paper``: the paper's schedule (160 epochs, full data, rewind 1000 it, 10 levels,
  2 seeds, full test split); for GPUs.

Run::

    .venv/bin/python bench/reproduce.py --scale smoke
    nohup .venv/bin/python bench/reproduce.py --scale cpu --resume > bench/results/reproduce-cpu/run.log 2>&1 &
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# benchmarks read the real data beside the project unless TICKETFMT_DATA (or its alias) points elsewhere
if not (os.environ.get("TICKETFMT_DATA") or os.environ.get("TICKETFMT_SHARED_DATA")):
    os.environ["TICKETFMT_DATA"] = str(ROOT.parent / "shared" / "data")

SCALES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="cifar10-mini", source="cifar_resnet14", target="cifar_resnet20", subset=128, epochs=1,
                  batch_size=64, levels=3, report=(1, 2, 3), rate=0.52, rewind="1it", seeds=(0,), test_subset=200,
                  snip_batches=1, threads=2),
    "cpu": dict(dataset="cifar10-jpeg", source="cifar_resnet20", target="cifar_resnet32", subset=2500, epochs=2,
                batch_size=32, lr=0.05, levels=3, report=(1, 2, 3), rate=0.52, rewind="4it", seeds=(0,),
                test_subset=1000,
                snip_batches=2, threads=2),
    "paper": dict(dataset="cifar10-jpeg", source="cifar_resnet20", target="cifar_resnet32", subset=None, epochs=160,
                  batch_size=128, levels=10, report=(4, 7, 10), rate=0.2, rewind="1000it", seeds=(0, 1),
                  test_subset=None, snip_batches=10, threads=None),
}

METHODS = [  # (key, label) in table / plot order
    ("imp", "IMP on target (a)"),
    ("interpolate", "ETT interpolate (b)"),
    ("append", "ETT append (c)"),
    ("random", "random, per-layer like (b) (d)"),
    ("snip", "SNIP at (b)'s sparsity (e)"),
    ("dense", "dense target (f)"),
    ("squeeze", "squeeze: target IMP -> source, spread"),
    ("source_imp", "IMP on source (squeeze reference)"),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _write_json(path: Path, obj: Any) -> None:
    from ticketfmt.format.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, [json.dumps(obj, indent=2, sort_keys=False).encode()])


def _test_subset_factory(n: int | None) -> Any:
    """A ``data_factory`` that evaluates on a fixed class-balanced subset of the test split (seed 0).

    ``train.find``/``train.verify`` evaluate on the whole test split by default; at CPU scale the
    10,000-image evaluation would cost more than the training, so the bench gives them loaders
    whose test split is a fixed subset (the same images for every arm and seed).
    """
    if not n:
        return None
    import dataclasses

    from ticketfmt import data as D
    from ticketfmt.train import make_data

    def factory(dataset: str, recipe: Any, **kw: Any) -> Any:
        d = make_data(dataset, recipe, **kw)
        test = D.make_loader(dataset, "test", 500, False, kw["device"], kw.get("data_dir"), n, seed=0,
                             num_workers=kw.get("num_workers", 1))
        return dataclasses.replace(d, test=test)

    return factory


class Bench:
    def __init__(self, scale: str, out: Path, resume: bool) -> None:
        self.scale = scale
        self.cfg = dict(SCALES[scale])
        self.data_factory = _test_subset_factory(self.cfg["test_subset"])
        self.out = out
        self.resume = resume
        from ticketfmt.train.recipes import recipe_for

        c = self.cfg
        self.recipe = recipe_for(c["target"]).override(epochs=c["epochs"], batch_size=c["batch_size"],
                                                       rewind=c["rewind"], lr=c.get("lr"))
        self.arms_dir = out / "arms"
        self.runs_dir = out / "runs"
        self.tickets_dir = out / "tickets"

    # -- arms --------------------------------------------------------------------------------------
    def arm_path(self, name: str) -> Path:
        return self.arms_dir / f"{name}.json"

    def done(self, name: str) -> dict[str, Any] | None:
        p = self.arm_path(name)
        if p.exists():
            return json.loads(p.read_text())
        return None

    def save_arm(self, name: str, rec: dict[str, Any]) -> dict[str, Any]:
        rec = {"arm": name, **rec}
        _write_json(self.arm_path(name), rec)
        top1 = rec.get("top1")
        log(f"arm {name}: top1 {top1} sparsity {rec.get('sparsity')} wall {rec.get('wall_seconds')} s")
        return rec

    # -- IMP ---------------------------------------------------------------------------------------
    def imp(self, arch: str, seed: int) -> dict[str, Any]:
        name = f"imp-{arch}-s{seed}"
        prev = self.done(name)
        if prev is not None:
            return prev
        from ticketfmt.train import find

        c = self.cfg
        run_dir = self.runs_dir / name
        log(f"IMP {arch} seed {seed}: {c['levels']} levels at rate {c['rate']} -> {run_dir}")
        t0 = time.perf_counter()
        res = find(arch, c["dataset"], c["levels"], out_dir=run_dir, rate=c["rate"], recipe=self.recipe,
                   subset=c["subset"], seed=seed, resume=True, device="cpu", num_workers=1,
                   data_factory=self.data_factory)
        wall = time.perf_counter() - t0
        # per-level training seconds and images from the metrics log (survives resumes)
        secs: dict[int, float] = {}
        for line in (run_dir / "metrics.jsonl").read_text().splitlines():
            ev = json.loads(line)
            if ev.get("event") == "epoch":
                secs[int(ev["level"])] = secs.get(int(ev["level"]), 0.0) + float(ev.get("seconds", 0.0))
        run = json.loads((run_dir / "run.json").read_text())
        spe, r = int(run["steps_per_epoch"]), int(run["rewind_step"])
        total = self.recipe.total_steps(spe)
        levels = []
        for lv, (path, acc, sp) in enumerate(zip(res.tickets, res.accuracies, res.sparsities)):
            steps = total if lv == 0 else total - r
            levels.append({"level": lv, "path": str(path), "top1": acc, "sparsity": round(sp, 6),
                           "steps": steps, "epochs": round(steps / spe, 4), "images": steps * self.recipe.batch_size,
                           "train_seconds": round(secs.get(lv, 0.0), 2)})
        return self.save_arm(name, {"method": "imp-run", "arch": arch, "seed": seed, "levels": levels,
                                    "steps_per_epoch": spe, "rewind_step": r,
                                    "wall_seconds_this_session": round(wall, 2),
                                    "train_seconds": round(sum(secs.values()), 2)})

    # -- one retraining ----------------------------------------------------------------------------
    def retrain(self, name: str, method: str, ticket: Any, seed: int, level: int, extra: dict[str, Any],
                prep_seconds: float = 0.0) -> dict[str, Any]:
        from ticketfmt.train import verify

        c = self.cfg
        log(f"arm {name}: training {ticket.arch} at sparsity {ticket.sparsity:.4f}")
        t0 = time.perf_counter()
        _, rec = verify(ticket, c["dataset"], subset=c["subset"], seed=seed, recipe=self.recipe,
                        rewind=self.recipe.rewind, device="cpu", num_workers=1, data_factory=self.data_factory)
        wall = time.perf_counter() - t0
        steps = int(rec["steps"])
        spe = self._spe(seed)
        return self.save_arm(name, {
            "method": method, "arch": ticket.arch, "seed": seed, "level": level, "sparsity": round(ticket.sparsity, 6),
            "top1": rec["value"], "correct": rec["correct"], "total": rec["total"], "steps": steps,
            "epochs": round(steps / spe, 4), "images": steps * self.recipe.batch_size,
            "train_seconds": round(steps * self.recipe.batch_size / rec["images_per_sec"], 2)
            if rec.get("images_per_sec") else None,
            "wall_seconds": round(wall + prep_seconds, 2), "prep_seconds": round(prep_seconds, 3), **extra})

    def _spe(self, seed: int) -> int:
        run = json.loads((self.runs_dir / f"imp-{self.cfg['target']}-s{seed}" / "run.json").read_text())
        return int(run["steps_per_epoch"])

    def from_imp(self, name: str, method: str, imp_rec: dict[str, Any], level: int) -> dict[str, Any]:
        prev = self.done(name)
        if prev is not None:
            return prev
        lv = imp_rec["levels"][level]
        return self.save_arm(name, {"method": method, "arch": imp_rec["arch"], "seed": imp_rec["seed"], "level": level,
                                    "sparsity": lv["sparsity"], "top1": lv["top1"], "steps": lv["steps"],
                                    "epochs": lv["epochs"], "images": lv["images"],
                                    "train_seconds": lv["train_seconds"], "wall_seconds": lv["train_seconds"],
                                    "note": "the IMP level's own training (same seed and budget as a retraining)"})

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
        """IMP on both networks first, then the arms method by method over all levels, in order of
        importance (interpolate, random, SNIP, append, squeeze), so that a run cut short still has
        the core comparison at every sparsity."""
        from ticketfmt.converters import convert
        from ticketfmt.pruning import prune
        from ticketfmt.ticket import Ticket

        c = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        _write_json(self.out / "config.json", {"scale": self.scale, **{k: v for k, v in c.items()},
                                               "recipe": self.recipe.to_json()})
        for seed in c["seeds"]:
            src = self.imp(c["source"], seed)
            tgt = self.imp(c["target"], seed)
            self.from_imp(f"dense-s{seed}", "dense", tgt, 0)
            for level in c["report"]:
                self.from_imp(f"imp-L{level}-s{seed}", "imp", tgt, level)
                self.from_imp(f"source_imp-L{level}-s{seed}", "source_imp", src, level)
            self.report()
            dense_ticket = Ticket.load(tgt["levels"][0]["path"])
            snip_batches: list[Any] | None = None

            def converted(level: int, strategy: str) -> tuple[Any, float]:
                t0 = time.perf_counter()
                tk = convert(Ticket.load(src["levels"][level]["path"]), c["target"], strategy=strategy)
                return tk, time.perf_counter() - t0

            for method in ("interpolate", "random", "snip", "append", "squeeze"):
                for level in c["report"]:
                    name = f"{method}-L{level}-s{seed}"
                    if self.done(name) is not None:
                        continue
                    if method in ("interpolate", "append"):
                        tk, secs = converted(level, method)
                        self.retrain(name, method, tk, seed, level,
                                     {"mapping": tk.provenance.get("mapping"), "convert_seconds": round(secs, 3)},
                                     prep_seconds=secs)
                    elif method == "random":
                        like, _ = converted(level, "interpolate")
                        t0 = time.perf_counter()
                        tk = prune(dense_ticket, method="random", like=like, seed=seed)
                        self.retrain(name, "random", tk, seed, level, {"like": "interpolate"},
                                     prep_seconds=time.perf_counter() - t0)
                    elif method == "snip":
                        like, _ = converted(level, "interpolate")
                        snip_batches = snip_batches or self.snip_data(seed)
                        t0 = time.perf_counter()
                        tk = prune(dense_ticket, like.sparsity, method="snip", data=snip_batches,
                                   batches=len(snip_batches), seed=seed)
                        self.retrain(name, "snip", tk, seed, level, {"batches": len(snip_batches)},
                                     prep_seconds=time.perf_counter() - t0)
                    else:
                        t0 = time.perf_counter()
                        tk = convert(Ticket.load(tgt["levels"][level]["path"]), c["source"], strategy="spread")
                        self.retrain(name, "squeeze", tk, seed, level, {"mapping": tk.provenance.get("mapping")},
                                     prep_seconds=time.perf_counter() - t0)
                    self.report()  # refresh the outputs after every arm
        self.report()

    # -- outputs -----------------------------------------------------------------------------------
    def load_arms(self) -> list[dict[str, Any]]:
        if not self.arms_dir.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.arms_dir.glob("*.json"))]

    def report(self) -> dict[str, Any]:
        c = self.cfg
        arms = self.load_arms()
        imps = {a["arch"] + f"-s{a['seed']}": a for a in arms if a["method"] == "imp-run"}
        trainings = [a for a in arms if a["method"] != "imp-run"]
        table: dict[str, dict[str, Any]] = {}
        for key, label in METHODS:
            row: dict[str, Any] = {"label": label, "cells": {}}
            for level in c["report"] if key != "dense" else (0,):
                rs = [a for a in trainings if a["method"] == key and a["level"] == level]
                if not rs:
                    continue
                accs = [float(a["top1"]) for a in rs]
                row["cells"][str(level)] = {
                    "n": len(rs), "mean": round(statistics.fmean(accs), 2),
                    "std": round(statistics.stdev(accs), 2) if len(accs) > 1 else None,
                    "sparsity": round(statistics.fmean(float(a["sparsity"]) for a in rs), 4),
                    "epochs": rs[0]["epochs"], "images": rs[0]["images"],
                    "wall_seconds": round(statistics.fmean(float(a["wall_seconds"] or 0) for a in rs), 1),
                    "seeds": [a["seed"] for a in rs],
                }
            table[key] = row
        # the saving: IMP on the target up to level L vs one conversion + one retraining
        savings = []
        for level in c["report"]:
            for seed in c["seeds"]:
                tgt = imps.get(f"{c['target']}-s{seed}")
                src = imps.get(f"{c['source']}-s{seed}")
                conv = next((a for a in trainings if a["method"] == "interpolate" and a["level"] == level
                             and a["seed"] == seed), None)
                if tgt is None or conv is None:
                    continue
                lvls = tgt["levels"][: level + 1]
                imp_images = sum(lv["images"] for lv in lvls)
                imp_secs = sum(lv["train_seconds"] for lv in lvls)
                imp_epochs = sum(lv["epochs"] for lv in lvls)
                ett_secs = float(conv["wall_seconds"])
                s = {"level": level, "seed": seed, "imp_target_trainings": level + 1,
                     "imp_target_epochs": round(imp_epochs, 3), "imp_target_images": imp_images,
                     "imp_target_train_seconds": round(imp_secs, 1),
                     "ett_epochs": conv["epochs"], "ett_images": conv["images"], "ett_seconds": round(ett_secs, 1),
                     "convert_seconds": conv.get("convert_seconds"),
                     "image_ratio": round(imp_images / max(conv["images"], 1), 2),
                     "time_ratio": round(imp_secs / max(ett_secs, 1e-9), 2)}
                if src is not None:
                    s["source_imp_train_seconds"] = round(sum(lv["train_seconds"] for lv in src["levels"][: level + 1]), 1)
                savings.append(s)
        results = {"scale": self.scale, "config": {k: v for k, v in c.items()}, "recipe": self.recipe.to_json(),
                   "machine": _machine(), "table": table, "savings": savings, "arms": arms,
                   "complete": self._complete(trainings)}
        _write_json(self.out / "results.json", results)
        from ticketfmt.format.atomic import atomic_write

        atomic_write(self.out / "results.md", [render_md(results).encode()])
        plot(results, self.out / "accuracy_vs_sparsity.png")
        return results

    def _complete(self, trainings: list[dict[str, Any]]) -> bool:
        c = self.cfg
        want = len(c["seeds"]) * (1 + len(c["report"]) * (len(METHODS) - 1))
        return len(trainings) >= want


def _machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}


def _cell(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "–"
    s = f"{cell['mean']:.2f}"
    if cell["std"] is not None:
        s += f" ± {cell['std']:.2f}"
    s += f" (n={cell['n']}, sp {100 * cell['sparsity']:.1f}%)"
    return s


def render_md(res: dict[str, Any]) -> str:
    c = res["config"]
    levels = list(c["report"])
    imp_sp = {lv: 1 - (1 - c["rate"]) ** lv for lv in levels}
    lines = [f"# Elastic LTH reproduction, scale `{res['scale']}`", ""]
    lines.append(f"Source `{c['source']}`, target `{c['target']}`, dataset `{c['dataset']}`"
                 f" (train subset: {c['subset'] or 'all'}, test: "
                 f"{'fixed class-balanced subset of ' + str(c['test_subset']) if c['test_subset'] else 'whole split'}),"
                 f" seeds {list(c['seeds'])}. Recipe: {res['recipe']['name']} with {res['recipe']['epochs']} epochs,"
                 f" batch {res['recipe']['batch_size']}, lr {res['recipe']['lr']}, milestones "
                 f"{res['recipe']['milestones']}, rewind {res['recipe']['rewind']}. IMP rate {c['rate']},"
                 f" {c['levels']} levels. Machine: {res['machine']['processor']}, {res['machine']['cpus']} cpus, "
                 f"torch {res['machine']['torch']}, {res['machine']['threads']} threads.")
    lines.append("")
    lines.append("Top-1 (%) on the test set, mean ± std over seeds (n), with each arm's actual sparsity. "
                 "Columns are the IMP levels; the converted tickets' sparsity follows from the copied blocks.")
    lines.append("")
    head = "| method | " + " | ".join(f"level {lv} (IMP {100 * imp_sp[lv]:.1f}%)" for lv in levels) + \
           " | epochs / images per training | wall s per training |"
    lines.append(head)
    lines.append("|" + "---|" * (len(levels) + 3))
    for key, label in METHODS:
        row = res["table"].get(key, {"cells": {}})
        cells = row["cells"]
        anyc = next(iter(cells.values()), None)
        cost = f"{anyc['epochs']:g} / {anyc['images']}" if anyc else "–"
        walls = [v["wall_seconds"] for v in cells.values()]
        wall = f"{statistics.fmean(walls):.0f}" if walls else "–"
        if key == "dense":
            vals = [_cell(cells.get("0"))] * len(levels)
        else:
            vals = [_cell(cells.get(str(lv))) for lv in levels]
        lines.append(f"| {label} | " + " | ".join(vals) + f" | {cost} | {wall} |")
    lines.append("")
    lines.append("(a) and (f) and the source's own IMP ticket are the IMP levels' own trainings (from the rewind "
                 "step, same seed and budget as every retraining); the squeeze arm trains the source architecture.")
    lines.append("")
    if res["savings"]:
        lines.append("## Cost: IMP on the target vs one conversion + one retraining")
        lines.append("")
        lines.append("| level | seed | IMP on target: trainings / epochs / images / train s | ETT: epochs / images / "
                     "wall s (convert s) | images ratio | time ratio |")
        lines.append("|---|---|---|---|---|---|")
        for s in res["savings"]:
            lines.append(f"| {s['level']} | {s['seed']} | {s['imp_target_trainings']} / {s['imp_target_epochs']:g} / "
                         f"{s['imp_target_images']} / {s['imp_target_train_seconds']:.0f} | {s['ett_epochs']:g} / "
                         f"{s['ett_images']} / {s['ett_seconds']:.0f} ({s['convert_seconds']}) | "
                         f"{s['image_ratio']:.2f}x | {s['time_ratio']:.2f}x |")
        lines.append("")
        lines.append("The source's IMP run is not counted against ETT: it is found once and reused for every "
                     "target (its training seconds are in results.json, `source_imp_train_seconds`).")
        lines.append("")
    if not res["complete"]:
        lines.append("**Incomplete run**: not every arm has finished (see `arms/`); rerun with `--resume`.")
        lines.append("")
    return "\n".join(lines)


COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def plot(res: dict[str, Any], path: Path) -> None:
    """Accuracy against sparsity per method (lines + markers, axes, legend), drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    from ticketfmt.format.atomic import atomic_write

    series = []
    for i, (key, label) in enumerate(METHODS):
        cells = res["table"].get(key, {}).get("cells", {})
        pts = sorted((100 * v["sparsity"], v["mean"], v["std"] or 0.0) for v in cells.values())
        if pts:
            series.append((label, COLORS[i % len(COLORS)], pts, key))
    W, H = 900, 560
    left, right, top, bottom = 70, 300, 40, 60
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    d.text((left, 12), f"Elastic LTH reproduction ({res['scale']}): test top-1 vs sparsity", fill="black", font=font)
    xs = [p[0] for s in series for p in s[2]] or [0.0, 100.0]
    ys = [p[1] + p[2] for s in series for p in s[2]] + [p[1] - p[2] for s in series for p in s[2]] or [0.0, 100.0]
    x0, x1 = 0.0, 100.0
    y0 = max(0.0, math.floor(min(ys) / 5) * 5 - 5)
    y1 = min(100.0, math.ceil(max(ys) / 5) * 5 + 5)
    if y1 - y0 < 10:
        y1 = y0 + 10
    pw, ph = W - left - right, H - top - bottom

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * pw, top + (1 - (y - y0) / (y1 - y0)) * ph

    d.rectangle([left, top, left + pw, top + ph], outline="black")
    for xt in range(0, 101, 10):
        X, _ = px(xt, y0)
        d.line([X, top + ph, X, top + ph + 4], fill="black")
        d.line([X, top, X, top + ph], fill="#eeeeee")
        d.text((X - 8, top + ph + 8), f"{xt}", fill="black", font=font)
    step = 5 if y1 - y0 <= 50 else 10
    yt = y0
    while yt <= y1 + 1e-9:
        _, Y = px(x0, yt)
        d.line([left - 4, Y, left, Y], fill="black")
        d.line([left, Y, left + pw, Y], fill="#eeeeee")
        d.text((left - 30, Y - 6), f"{yt:g}", fill="black", font=font)
        yt += step
    d.rectangle([left, top, left + pw, top + ph], outline="black")
    d.text((left + pw // 2 - 50, H - 25), "sparsity (%)", fill="black", font=font)
    d.text((8, top + ph // 2), "top-1 (%)", fill="black", font=font)
    markers = ["o", "s", "^", "d", "x", "o", "s", "^"]

    def marker(m: str, X: float, Y: float, color: str, r: int = 4) -> None:
        if m == "o":
            d.ellipse([X - r, Y - r, X + r, Y + r], fill=color)
        elif m == "s":
            d.rectangle([X - r, Y - r, X + r, Y + r], fill=color)
        elif m == "^":
            d.polygon([(X, Y - r), (X - r, Y + r), (X + r, Y + r)], fill=color)
        elif m == "d":
            d.polygon([(X, Y - r - 1), (X - r - 1, Y), (X, Y + r + 1), (X + r + 1, Y)], fill=color)
        else:
            d.line([X - r, Y - r, X + r, Y + r], fill=color, width=2)
            d.line([X - r, Y + r, X + r, Y - r], fill=color, width=2)

    for i, (label, color, pts, key) in enumerate(series):
        m = markers[METHODS.index(next(mm for mm in METHODS if mm[0] == key)) % len(markers)]
        coords = [px(x, y) for x, y, _ in pts]
        if len(coords) > 1:
            d.line(coords, fill=color, width=2)
        for (X, Y), (_, y, e) in zip(coords, pts):
            if e:  # error bar: ± one std over seeds
                _, ylo = px(0, y - e)
                _, yhi = px(0, y + e)
                d.line([X, ylo, X, yhi], fill=color, width=1)
                d.line([X - 3, ylo, X + 3, ylo], fill=color, width=1)
                d.line([X - 3, yhi, X + 3, yhi], fill=color, width=1)
            marker(m, X, Y, color)
        ly = top + 10 + i * 20
        lx = left + pw + 15
        d.line([lx, ly + 6, lx + 22, ly + 6], fill=color, width=2)
        marker(m, lx + 11, ly + 6, color)
        d.text((lx + 28, ly), label, fill="black", font=font)
    d.text((left + pw + 15, top + 10 + len(series) * 20 + 10), "error bars: ± 1 std over seeds", fill="#555555",
           font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write(path, [buf.getvalue()])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="smoke")
    p.add_argument("--out", default=None, help="output folder (default bench/results/reproduce-<scale>/)")
    p.add_argument("--resume", action="store_true", help="skip finished arms, resume interrupted IMP runs")
    p.add_argument("--seeds", default=None, help="comma-separated seeds instead of the scale's (e.g. 0,1)")
    p.add_argument("--report-only", action="store_true", help="only rebuild results.md/json/png from arms/")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"reproduce-{args.scale}"
    if out.exists() and any((out / "arms").glob("*.json")) and not (args.resume or args.report_only):
        print(f"{out} holds results already; pass --resume to continue them (or choose another --out)",
              file=sys.stderr)
        return 2
    cfg = SCALES[args.scale]
    if args.seeds:
        cfg["seeds"] = tuple(int(x) for x in args.seeds.split(","))
    import torch

    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    bench = Bench(args.scale, out, args.resume)
    if not args.report_only:
        t0 = time.perf_counter()
        bench.run()
        log(f"done in {time.perf_counter() - t0:.0f} s")
    bench.report()
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
