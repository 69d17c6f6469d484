"""Input pipelines side by side: ``imagefolder:`` (a tree of 32x32 JPEGs) against ``cifar10-jpeg`` (issue 18).

    python bench/bench_data.py [--images 5000] [--test-images 1000] [--steps 4] [--rounds 2] [--batch-size 64] [--threads 1]

The same images two ways: the first ``--images`` training images of ``cifar10-jpeg.tar.gz``
(the real archive, found through ``TICKETFMT_DATA`` or ``../shared/data``; class-balanced, in
archive order) are extracted once into an ImageFolder tree under ``bench/work/``, and read back
as ``imagefolder:bench/work/cifar10-tree``; ``cifar10-jpeg`` is read from the archive with
``--subset`` of the same size. Both go through what ``ticket find cifar_resnet20`` builds
(:func:`ticketfmt.train.make_data` with the network's input size), so the numbers compare the
pipelines a user gets, measured in the same run, interleaved round by round, median over rounds:

- ``pipeline``: the augmentation each gets (both must be ``crop32-pad4+flip``);
- ``first load``: decoding into the uint8 tensor cache (a fresh cache folder each run; the archive
  decodes all of its 60,000 images, the tree only its own), in seconds and decoded images/s;
- ``loader``: training batches/s of the loader alone (crop with padding + flip, normalize), in
  images/s, the best of 3 epochs a round;
- ``train``: images/s of dense training steps of cifar_resnet20 (``Trainer`` + ``train_steps``): the
  median over rounds and the best round (on a shared machine the best round is the least disturbed).

Writes ``bench/results/data.json`` (with the machine and its load average) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tarfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work"
TREE = WORK / "cifar10-tree"
ARCH = "cifar_resnet20"


def data_dir() -> Path:
    env = os.environ.get("TICKETFMT_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info: dict[str, Any] = {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count() or 0,
                            "torch": torch.__version__, "threads": torch.get_num_threads(),
                            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    return info


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def extract(archive: Path, train: int, test: int) -> Path:
    """The first ``train``/``test`` images a class of the archive as ``TREE/{train,test}/<class>/NNNN.jpg`` (once)."""
    want = {"train": train // 10, "test": test // 10}
    stamp = TREE / ".extracted"
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return TREE
    shutil.rmtree(TREE, ignore_errors=True)
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] not in want:
                continue
            key = (parts[1], parts[2])
            if taken.get(key, 0) >= want[parts[1]]:
                continue
            dest = TREE / parts[1] / parts[2] / parts[3]
            dest.parent.mkdir(parents=True, exist_ok=True)
            f = tar.extractfile(member)
            assert f is not None
            dest.write_bytes(f.read())
            taken[key] = taken.get(key, 0) + 1
    stamp.write_text(json.dumps(want))
    return TREE


def build(name: str, subset: int | None, batch: int, device: torch.device, cache: Path) -> tuple[Any, float]:
    """``ticket find``'s data for cifar_resnet20 (seconds to build it: a first decode when ``cache`` is fresh)."""
    from ticketfmt.train import Dist, make_data, recipe_for
    from ticketfmt.zoo import get_arch

    os.environ["TICKETFMT_CACHE"] = str(cache)
    recipe = recipe_for(ARCH, batch_size=batch)
    t0 = time.perf_counter()
    data = make_data(name, recipe, device=device, dist=Dist(), data_dir=data_dir(), subset=subset, seed=0,
                     progress=None, num_workers=2, input_size=get_arch(ARCH))
    return data, time.perf_counter() - t0


def loader_speed(loader: Any, device: torch.device, passes: int = 3) -> float:
    """Images/s of whole epochs of the loader alone: the best of ``passes`` (the loader is cheap, load is not)."""
    best = 0.0
    for epoch in range(passes):
        loader.set_epoch(epoch)
        t0 = time.perf_counter()
        n = 0
        for x, _ in loader:
            n += int(x.shape[0])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def train_speed(loader: Any, steps: int, device: torch.device, batch: int) -> float:
    from ticketfmt import build_model
    from ticketfmt.train import Trainer, recipe_for, train_steps

    recipe = recipe_for(ARCH, batch_size=batch)
    trainer = Trainer(build_model(ARCH, seed=0), None, recipe, device=device)
    train_steps(trainer, loader, recipe, start=0, end=1, steps_per_epoch=len(loader))  # warm-up
    span = train_steps(trainer, loader, recipe, start=1, end=1 + steps, steps_per_epoch=len(loader))
    return span.images_per_sec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=5000, help="training images (both datasets)")
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=4, help="timed training steps a round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a shared machine)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "data.json")
    args = ap.parse_args()
    from ticketfmt.train import resolve_device

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    archive = data_dir() / "cifar10-jpeg.tar.gz"
    load_before = load_average()
    tree = extract(archive, args.images, args.test_images)
    names = {"imagefolder (32x32 tree)": (f"imagefolder:{tree}", None),
             "cifar10-jpeg": ("cifar10-jpeg", args.images)}
    shutil.rmtree(WORK / "cache", ignore_errors=True)
    built = {label: build(name, subset, args.batch_size, device, WORK / "cache") for label, (name, subset) in names.items()}
    decoded = {"imagefolder (32x32 tree)": sum(1 for _ in tree.glob("*/*/*.jpg")), "cifar10-jpeg": 60_000}
    shown = {label: name.replace(str(ROOT) + os.sep, "") for label, (name, _) in names.items()}  # repo-relative
    rows: dict[str, dict[str, Any]] = {label: {"dataset": shown[label], "first_load_s": round(t, 2),
                                               "first_load_images": decoded[label],
                                               "first_load_images_per_sec": round(decoded[label] / t, 1),
                                               "train_images": built[label][0].train.dataset_size,
                                               "pipeline": built[label][0].augmentation, "loader": [], "train": []}
                                       for label, (_, t) in built.items()}
    for _ in range(args.rounds):  # interleaved: load from other processes hits both alike
        for label, (data, _) in built.items():
            rows[label]["loader"].append(round(loader_speed(data.train, device), 1))
            rows[label]["train"].append(round(train_speed(data.train, args.steps, device, args.batch_size), 1))
    for r in rows.values():  # median over rounds, and the best round (least disturbed by other processes)
        r["loader_images_per_sec"] = statistics.median(r["loader"])
        r["train_images_per_sec"] = statistics.median(r["train"])
        r["train_images_per_sec_best"] = max(r["train"])
    a, b = rows["imagefolder (32x32 tree)"], rows["cifar10-jpeg"]
    result = {"machine": {**machine(), "device": str(device), "load_average_before": load_before,
                          "load_average_after": load_average()},
              "arch": ARCH, "batch_size": args.batch_size, "steps_per_round": args.steps, "rounds": args.rounds,
              "datasets": rows, "same_pipeline": a["pipeline"] == b["pipeline"],
              "train_ratio_imagefolder_over_cifar10_jpeg": round(a["train_images_per_sec"] / b["train_images_per_sec"], 3),
              "train_ratio_best_rounds": round(a["train_images_per_sec_best"] / b["train_images_per_sec_best"], 3),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    print(f"**Machine**: {m['cpu']} ({m['cpus']} CPUs, {m['threads']} torch threads), {m['gpu'] or 'no GPU'}, "
          f"torch {m['torch']}; load average {m['load_average_before']} (before), {m['load_average_after']} (after)\n")
    print("| data | pipeline | train images | first load (s; decoded img/s) | loader img/s | "
          "cifar_resnet20 train img/s (median; best) |")
    print("|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['pipeline']} | {r['train_images']:,} | {r['first_load_s']} "
              f"({r['first_load_images']:,} at {r['first_load_images_per_sec']:,.0f}/s) | "
              f"{r['loader_images_per_sec']:,.0f} | {r['train_images_per_sec']:,.1f}; "
              f"{r['train_images_per_sec_best']:,.1f} |")
    print(f"\ntraining speed ratio imagefolder / cifar10-jpeg: {result['train_ratio_imagefolder_over_cifar10_jpeg']} "
          f"(medians), {result['train_ratio_best_rounds']} (best rounds)")


if __name__ == "__main__":
    main()
