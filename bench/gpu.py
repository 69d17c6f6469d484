"""One short device run (issue 12): training throughput of CIFAR ResNets, then the largest reproduction slice that fits.

    bash bench/gpu.sh                            # on one GPU: 9 minutes; results in bench/results/gpu/ (and $OUT)
    python bench/gpu.py --budget-s 540 [--data-dir DIR] [--out bench/results/gpu]
    python bench/gpu.py --budget-s 20 --tiny     # the CPU smoke run of the test suite

Phase 1, throughput: ResNet-20 and ResNet-56 (``--tiny``: ResNet-8 and ResNet-14, batch 32, a few
steps) through ticketfmt's ``Trainer`` (channels_last, bf16 autocast on CUDA), dense and masked (an
80% global-magnitude mask: gradient and weight masking every step), eager and ``torch.compile``'d.
Each variant: warm-up steps (the compilation, timed apart), then ``--rounds`` x ``--steps`` timed
steps; images/s is the median over rounds and the epoch time is 50,000 images at that speed; on
CUDA with real data one whole epoch of each network is also timed with its fastest eager variant. The
batches are real CIFAR-10 training batches when the dataset is found (``--data-dir``,
``$TICKETFMT_DATA``, ``../shared/data``, ``bench/work/data``), else synthetic CIFAR-shaped batches
(noise images, random labels): the output says which. Variants that would overrun the phase's
share of the budget are skipped and listed as skipped.

Phase 2, the reproduction: ``bench/reproduce.py --scale cpu-full --device cuda --resume
--time-limit <what is left>`` (``--tiny``: scale ``tiny`` on the CPU) in this process, into
``<out>/reproduce-<scale>/``, its log in ``<out>/reproduce.log``. It needs the real dataset: without
it the phase is skipped and says so.

Writes ``<out>/gpu.json`` and ``<out>/summary.md``; prints one table.

The real example tickets (issue 12, item 3: ResNet-20 IMP at 59% and 79%, >= 85% top-1) are a
separate device run: ``bash bench/gpu_bundle.sh`` (``bench/bundle.py``, resumable).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
T0 = time.monotonic()

FULL = dict(archs=("cifar_resnet20", "cifar_resnet56"), batch_size=128, steps=30, rounds=3, warmup=3,
            dataset="cifar10-jpeg", scale="cpu-full", phase1_share=0.45, margin_s=25.0, compile_backend="inductor")
TINY = dict(archs=("cifar_resnet8", "cifar_resnet14"), batch_size=32, steps=2, rounds=2, warmup=1,
            dataset="cifar10-mini", scale="tiny", phase1_share=0.45, margin_s=4.0, compile_backend="eager")
TRAIN_IMAGES = 50_000  # one CIFAR-10 epoch


def elapsed() -> float:
    return time.monotonic() - T0


def say(msg: str) -> None:
    print(f"[{elapsed():6.1f} s] {msg}", file=sys.stderr, flush=True)


def find_data_dir(arg: str | None, archive: str) -> Path | None:
    """The first folder holding ``archive``: ``--data-dir``, ``$TICKETFMT_DATA``, ``../shared/data``, ``bench/work/data``."""
    cands = [arg] if arg else [os.environ.get("TICKETFMT_DATA"),
                                str(ROOT.parent / "shared" / "data"), str(ROOT / "bench" / "work" / "data")]
    for c in cands:
        if c and (Path(c) / archive).is_file():
            return Path(c)
    return None


# -- phase 1 -----------------------------------------------------------------------------------------


def batches(cfg: dict[str, Any], device: Any, data_dir: Path | None) -> tuple[list[Any], Any, str]:
    """A pool of training batches, the loader (None when synthetic) and where they came from."""
    import torch

    n = cfg["steps"] + cfg["warmup"]
    if data_dir is not None:
        try:
            from ticketfmt.data import make_loader

            loader = make_loader(cfg["dataset"], "train", cfg["batch_size"], True, device, data_dir, num_workers=4)
            loader.set_epoch(0)
            pool = []
            for x, y in loader:
                pool.append((x, y))
                if len(pool) == n:
                    break
            return pool, loader, f"real: {cfg['dataset']} from {data_dir}"
        except Exception as e:  # noqa: BLE001 - any failure to read the data falls back to synthetic batches
            say(f"could not load {cfg['dataset']} from {data_dir} ({e}); using synthetic batches")
    g = torch.Generator().manual_seed(0)
    pool = [(torch.rand(cfg["batch_size"], 3, 32, 32, generator=g).to(device).to(memory_format=torch.channels_last),
             torch.randint(0, 10, (cfg["batch_size"],), generator=g).to(device)) for _ in range(n)]
    return pool, None, "synthetic CIFAR-shaped batches (no dataset found)"


def make_trainer(arch: str, masked: bool, compiled: bool, cfg: dict[str, Any], device: Any) -> Any:
    import torch

    from ticketfmt import Ticket, build_model, prune
    from ticketfmt.train import Trainer
    from ticketfmt.train.recipes import recipe_for

    ticket = Ticket.from_model(build_model(arch, seed=0), arch)
    if masked:
        ticket = prune(ticket, 0.8, method="magnitude")
    tr = Trainer(ticket.build_model(), ticket.masks if masked else None, recipe_for(arch), device=device)
    if compiled:  # the Trainer's own compile uses the default backend; the tiny CPU run asks for a cheap one
        tr.net = torch.compile(tr.net, backend=cfg["compile_backend"])
    return tr


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variant(arch: str, masked: bool, compiled: bool, pool: list[Any], cfg: dict[str, Any],
                 device: Any) -> dict[str, Any]:
    """Warm up (compile) then time ``rounds`` x ``steps`` steps; images/s is the median over rounds."""
    tr = make_trainer(arch, masked, compiled, cfg, device)
    warm, timed = pool[: cfg["warmup"]], pool[cfg["warmup"]:]
    t = time.perf_counter()
    for x, y in warm:
        tr.step(x, y, 0.1)
    sync(device)
    warm_s = time.perf_counter() - t
    rounds = []
    for _ in range(cfg["rounds"]):
        sync(device)
        t = time.perf_counter()
        for x, y in timed:
            tr.step(x, y, 0.1)
        sync(device)
        rounds.append(len(timed) * cfg["batch_size"] / (time.perf_counter() - t))
    ips = statistics.median(rounds)
    return {"arch": arch, "masked": masked, "compiled": compiled, "images_per_sec": round(ips, 1),
            "images_per_sec_rounds": [round(r, 1) for r in rounds], "warmup_seconds": round(warm_s, 2),
            "epoch_seconds_est": round(TRAIN_IMAGES / ips, 2), "trainer": tr}


def real_epoch(tr: Any, loader: Any, device: Any) -> dict[str, Any]:
    """One whole training epoch of ``loader`` with trainer ``tr`` (data pipeline included)."""
    loader.set_epoch(1)
    sync(device)
    t, n = time.perf_counter(), 0
    for x, y in loader:
        tr.step(x, y, 0.1)
        n += int(y.shape[0])
    sync(device)
    s = time.perf_counter() - t
    return {"epoch_seconds": round(s, 2), "epoch_images": n, "images_per_sec": round(n / s, 1)}


def throughput(cfg: dict[str, Any], device: Any, data_dir: Path | None, deadline: float) -> dict[str, Any]:
    """Phase 1: every (arch, compiled, masked) variant that fits before ``deadline`` (compiled ones last)."""
    pool, loader, source = batches(cfg, device, data_dir)
    say(f"phase 1 on {device}: {source}")
    rows, skipped = [], []
    # the plain variant of each network first, then the first network masked and compiled (both code paths
    # in one), then the rest
    order = [(a, False, False) for a in cfg["archs"]] + [(cfg["archs"][0], True, True)]
    order += [(a, m, c) for c in (False, True) for a in cfg["archs"] for m in (False, True) if (a, m, c) not in order]
    for arch, masked, compiled in order:
        name = f"{arch} {'masked' if masked else 'dense'} {'compiled' if compiled else 'eager'}"
        first = not masked and not compiled  # each network's plain variant always runs: the table is never empty
        if elapsed() >= deadline and not first:
            skipped.append(name)
            continue
        try:
            rows.append(time_variant(arch, masked, compiled, pool, cfg, device))
            say(f"{name}: {rows[-1]['images_per_sec']:,.0f} images/s (warm-up {rows[-1]['warmup_seconds']} s)")
        except Exception as e:  # noqa: BLE001 - a failing variant (e.g. compile) is reported, the others still run
            skipped.append(f"{name} (failed: {type(e).__name__}: {str(e)[:120]})")
    epochs = {}
    if loader is not None and device.type == "cuda":
        for arch in cfg["archs"]:
            # eager only: the epoch's last, smaller batch (50,000 = 390 x 128 + 80) makes a compiled model
            # recompile, which the first device run's "real epoch" measured instead (27 s against 4 s steps)
            mine = [r for r in rows if r["arch"] == arch and r["masked"] and not r["compiled"]]
            if mine and elapsed() + 3 * max(r["epoch_seconds_est"] for r in mine) < deadline:
                best = max(mine, key=lambda r: r["images_per_sec"])
                epochs[arch] = {**real_epoch(best["trainer"], loader, device), "compiled": best["compiled"],
                                "masked": True}
    for r in rows:
        r.pop("trainer")
    return {"data": source, "synthetic": loader is None, "rows": rows, "skipped": skipped, "real_epochs": epochs}


# -- phase 2 -----------------------------------------------------------------------------------------


def reproduction(cfg: dict[str, Any], device: Any, data_dir: Path | None, out: Path, budget_end: float,
                 seeds: str | None) -> dict[str, Any]:
    """Phase 2: a ``--time-limit`` slice of ``bench/reproduce.py`` in this process (no second start-up).

    Its log goes to ``<out>/reproduce.log``. Should an arm overrun its estimate, an alarm at the end of
    the budget interrupts it the graceful way (an IMP run checkpoints; a retraining is dropped).
    """
    scale = cfg["scale"]
    if data_dir is None:
        return {"status": f"skipped: the {cfg['dataset']} dataset was not found (pass --data-dir)"}
    left = budget_end - elapsed() - cfg["margin_s"]
    if left < 3:
        return {"status": f"skipped: {left:.0f} s left of the budget"}
    rdir = out / f"reproduce-{scale}"
    argv = ["--scale", scale, "--out", str(rdir), "--resume", "--time-limit", f"{left / 60:.4f}",
            "--data-dir", str(data_dir), "--device", "cuda" if device.type == "cuda" else "cpu"]
    if device.type == "cuda":
        argv += ["--threads", str(min(8, os.cpu_count() or 1))]
    if seeds:
        argv += ["--seeds", seeds]
    say(f"phase 2: {scale} slice of {left:.0f} s -> {rdir}")
    sys.path.insert(0, str(ROOT / "bench"))
    import reproduce

    old = signal.signal(signal.SIGALRM, lambda *_: signal.raise_signal(signal.SIGINT))
    signal.setitimer(signal.ITIMER_REAL, left + cfg["margin_s"])  # at the end of the budget: a safety net only
    try:
        with open(out / "reproduce.log", "a", encoding="utf-8") as logf, contextlib.redirect_stdout(logf):
            rc = reproduce.main(argv)
    except KeyboardInterrupt:
        rc = 130
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    res: dict[str, Any] = {"status": f"exit {rc}", "out": str(rdir), "command": "bench/reproduce.py " + " ".join(argv)}
    if (rdir / "results.json").is_file():
        r = json.loads((rdir / "results.json").read_text())
        dense = r["table"].get("dense", {}).get("cells", {}).get("0")
        res.update(progress=r.get("progress"), complete=r.get("complete"),
                   dense_top1=dense["mean"] if dense else None)
    return res


# -- output ------------------------------------------------------------------------------------------


def machine(device: Any) -> dict[str, Any]:
    import torch

    info = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def table(res: dict[str, Any]) -> str:
    t = res["throughput"]
    lines = ["| network | variant | images/s | epoch s (50k images) | warm-up / compile s |", "|---|---|---:|---:|---:|"]
    for r in t["rows"]:
        var = f"{'masked 80%' if r['masked'] else 'dense'}, {'compiled' if r['compiled'] else 'eager'}"
        lines.append(f"| {r['arch']} | {var} | {r['images_per_sec']:,.0f} | {r['epoch_seconds_est']:.1f} | "
                     f"{r['warmup_seconds']:.1f} |")
    return "\n".join(lines)


def summary(res: dict[str, Any]) -> str:
    t, m, rep = res["throughput"], res["machine"], res["reproduction"]
    out = [f"# Device run ({'tiny CPU smoke' if res['tiny'] else 'GPU'}), {res['date']}", "",
           f"Machine: {m.get('gpu', 'no GPU')}, device {m['device']}, torch {m['torch']}, {m['cpus']} CPUs. "
           f"Batch {res['config']['batch_size']}; data: {t['data']}; compile backend "
           f"{res['config']['compile_backend']}; bf16 autocast and channels_last on CUDA.", "", table(res), ""]
    for arch, e in t["real_epochs"].items():
        out.append(f"One real epoch of {arch} ({e['epoch_images']:,} images, masked, "
                   f"{'compiled' if e['compiled'] else 'eager'}): {e['epoch_seconds']} s.")
    if t["skipped"]:
        out.append(f"Skipped (phase budget or failure): {'; '.join(t['skipped'])}.")
    out.append(f"\nReproduction slice: {rep['status']}")
    p = rep.get("progress")
    if p:
        out.append(f"{p['arms_done']} of {p['arms_planned']} arms done; dense target top-1 {rep.get('dense_top1')}; "
                   f"{p['train_hours_done'] * 60:.1f} min of training ({rep['out']}).")
    out.append(f"\nTotal wall: {res['wall_seconds']:.0f} s of a {res['budget_s']:.0f} s budget.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget of the whole run (seconds)")
    ap.add_argument("--tiny", action="store_true", help="tiny networks, batches and scale: the CPU smoke run")
    ap.add_argument("--data-dir", default=None, help="folder holding cifar10-jpeg.tar.gz (tiny: cifar10-mini)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", default=None, help="the reproduction's seeds (default: the scale's)")
    ap.add_argument("--no-reproduce", action="store_true", help="phase 1 only")
    args = ap.parse_args(argv)
    cfg = dict(TINY if args.tiny else FULL)
    archive = f"{cfg['dataset']}-jpeg.tar.gz" if cfg["dataset"] == "cifar10-mini" else f"{cfg['dataset']}.tar.gz"
    default_dir = str(ROOT / "tests" / "data") if args.tiny and not args.data_dir else args.data_dir
    data_dir = find_data_dir(default_dir, archive)
    if data_dir is not None:
        os.environ["TICKETFMT_DATA"] = str(data_dir)
    import torch

    import torch._dynamo  # noqa: F401 - the first optimizer imports it (seconds): counted as start-up, not phase 1
    import ticketfmt.pruning  # noqa: F401 - likewise
    from ticketfmt.train import resolve_device

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    args.out.mkdir(parents=True, exist_ok=True)
    startup = elapsed()  # interpreter, torch and ticketfmt imports: what a loaded machine stretches most
    say(f"device {device}; data {data_dir or 'not found: synthetic batches, no reproduction slice'}")
    t = throughput(cfg, device, data_dir, cfg["phase1_share"] * args.budget_s)
    rep = ({"status": "skipped: --no-reproduce"} if args.no_reproduce
           else reproduction(cfg, device, data_dir, args.out, args.budget_s, args.seeds))
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "tiny": args.tiny, "budget_s": args.budget_s,
           "config": cfg, "machine": machine(device), "throughput": t, "reproduction": rep,
           "startup_seconds": round(startup, 1), "wall_seconds": round(elapsed(), 1)}
    (args.out / "gpu.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "summary.md").write_text(summary(res))
    print(summary(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
