"""Training throughput: masked against dense training of CIFAR ResNet-20, and the data pipeline against the step.

    python bench/bench_train.py [--dataset cifar10-jpeg] [--steps 10] [--rounds 3] [--sparsity 0.8] [--epoch]
                                [--threads N] [--out FILE]

Measured in the same run, interleaved round by round (so load from other processes hits
every variant alike), median over rounds:

- ``plain dense``: a plain PyTorch loop (zero_grad, forward, cross-entropy, backward, SGD step)
  of the same model, same memory format, same batches;
- ``Trainer dense``: ticketfmt's trainer without masks;
- ``Trainer masked``: ticketfmt's trainer holding an IMP-like mask (global magnitude,
  ``--sparsity``): gradient masking after backward and weight masking after the step.
  Goal: >= 0.95x the plain dense loop's images/s;
- ``data pipeline``: batches/s of the on-device loader alone (uint8 cache, random crop with
  4-pixel padding + flip, normalize, channels_last), in images/s.

``--epoch`` (default on CUDA) also times one whole training epoch of the dataset with the
masked trainer (the goal on one H100: CIFAR-10 in at most 2 s). Writes
bench/results/train.json and prints a markdown table with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ticketfmt import Ticket, build_model, prune
from ticketfmt.train.recipes import recipe_for
from ticketfmt.train import Trainer, resolve_device

ROOT = Path(__file__).resolve().parents[1]
# benchmarks read the real data beside the project unless TICKETFMT_DATA (or its alias) points elsewhere
if not os.environ.get("TICKETFMT_DATA"):
    os.environ["TICKETFMT_DATA"] = str(ROOT.parent / "shared" / "data")


def machine(device: torch.device) -> dict[str, str | int]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, str | int] = {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count() or 0,
                                  "torch": torch.__version__, "threads": torch.get_num_threads(),
                                  "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load_average_1min"] = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        pass
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="cifar_resnet20")
    ap.add_argument("--dataset", default="cifar10-jpeg")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="steps per variant and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sparsity", type=float, default=0.8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epoch", action=argparse.BooleanOptionalAction, default=None,
                    help="also time one whole epoch (default: on CUDA)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train.json")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: as set, i.e. torch's default or OMP_NUM_THREADS)")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()

    from ticketfmt.data import make_loader

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    loader = make_loader(args.dataset, "train", args.batch_size, True, device)
    recipe = recipe_for(args.arch)
    dense_ticket = Ticket.from_model(build_model(args.arch, seed=0), args.arch)
    masked_ticket = prune(dense_ticket, args.sparsity, method="magnitude")

    # the plain loop: what a user writes without ticketfmt
    plain = build_model(args.arch, seed=0).to(device).to(memory_format=torch.channels_last)
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, foreach=True)

    def plain_step(x: torch.Tensor, y: torch.Tensor) -> None:
        plain_opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = plain(x)
        else:
            out = plain(x)
        F.cross_entropy(out.float(), y).backward()
        plain_opt.step()

    trainers = {
        "Trainer dense": Trainer(dense_ticket.build_model(), None, recipe, device=device, compile=args.compile),
        f"Trainer masked ({args.sparsity:.0%} sparse)": Trainer(masked_ticket.build_model(), masked_ticket.masks,
                                                                 recipe, device=device, compile=args.compile),
    }
    variants = {"plain dense": plain_step}
    for name, tr in trainers.items():
        variants[name] = (lambda t: (lambda x, y: t.step(x, y, 0.1)))(tr)

    # a fixed pool of batches, reused by every variant
    loader.set_epoch(0)
    pool = []
    for x, y in loader:
        pool.append((x, y))
        if len(pool) == args.steps:
            break
    for fn in variants.values():  # warm-up (and compilation)
        for x, y in pool[:3]:
            fn(x, y)
    sync(device)

    per_round: dict[str, list[float]] = {k: [] for k in variants}
    data_rounds: list[float] = []
    for _ in range(args.rounds):
        for name, fn in variants.items():
            sync(device)
            t = time.perf_counter()
            for x, y in pool:
                fn(x, y)
            sync(device)
            per_round[name].append(len(pool) * args.batch_size / (time.perf_counter() - t))
        # data pipeline alone: the same number of fresh batches
        sync(device)
        t = time.perf_counter()
        n = 0
        loader.set_epoch(1)
        for x, _y in loader:
            n += x.shape[0]
            if n >= args.steps * args.batch_size * 4:
                break
        sync(device)
        data_rounds.append(n / (time.perf_counter() - t))

    speeds = {k: statistics.median(v) for k, v in per_round.items()}
    base = speeds["plain dense"]
    masked_name = next(k for k in speeds if k.startswith("Trainer masked"))
    result: dict[str, object] = {
        "machine": machine(device), "arch": args.arch, "dataset": args.dataset, "batch_size": args.batch_size,
        "steps_per_round": args.steps, "rounds": args.rounds, "sparsity": args.sparsity, "compile": args.compile,
        "images_per_sec": {k: round(v, 1) for k, v in speeds.items()},
        "images_per_sec_rounds": {k: [round(x, 1) for x in v] for k, v in per_round.items()},
        "masked_over_plain_dense": round(speeds[masked_name] / base, 3),
        "trainer_dense_over_plain_dense": round(speeds["Trainer dense"] / base, 3),
        "data_pipeline_images_per_sec": round(statistics.median(data_rounds), 1),
        "data_over_step": round(statistics.median(data_rounds) / speeds[masked_name], 1),
        "goal": "masked >= 0.95x plain dense",
        # other processes on the same cores change every figure: the load average brackets the run
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    do_epoch = args.epoch if args.epoch is not None else device.type == "cuda"
    if do_epoch:
        tr = trainers[masked_name]
        loader.set_epoch(2)
        sync(device)
        t = time.perf_counter()
        n = 0
        for x, y in loader:
            tr.step(x, y, 0.1)
            n += x.shape[0]
        sync(device)
        result["epoch_seconds"] = round(time.perf_counter() - t, 2)
        result["epoch_images"] = n
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    m = result["machine"]
    print(f"**Machine**: {m['cpu']} ({m['cpus']} CPUs, {m['threads']} thread{'s' if m['threads'] != 1 else ''}), {m.get('gpu', 'no GPU')}, "
          f"device {m['device']}, torch {m['torch']}, {m['platform']}; load average (1, 5, 15 min) at the start "
          f"{result['load_average_start']}, at the end {result['load_average_end']}")
    print(f"\n{args.arch}, batch {args.batch_size}, {args.dataset}, median of {args.rounds} rounds x {args.steps} steps\n")
    print("| variant | images/s | vs plain dense |")
    print("|---|---:|---:|")
    for k, v in speeds.items():
        print(f"| {k} | {v:,.1f} | {v / base:.3f}x |")
    print(f"| data pipeline alone | {result['data_pipeline_images_per_sec']:,.1f} | "
          f"{result['data_over_step']}x the masked step |")
    if "epoch_seconds" in result:
        print(f"\nOne epoch ({result['epoch_images']:,} images, masked): {result['epoch_seconds']} s")
    print(f"\nmasked / plain dense = {result['masked_over_plain_dense']} (goal >= 0.95); wrote {args.out}")


if __name__ == "__main__":
    main()
