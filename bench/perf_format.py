"""Format benchmarks: load time and file size, each against its baselines, side by side in one run.

    python bench/perf_format.py [--arch resnet50] [--repeat 3]

- load: `Ticket.load` (packed, dense; with and without the sha256 check) against
  `safetensors.torch.load_file` of the equivalent dense state dict + masks, and against
  `torch.load(weights_only=True)` of open_lth-style `mask.pth` + checkpoint;
- size: packed against dense against open_lth-style files at 50/80/90/95% sparsity.
Writes bench/results/format.json and prints markdown tables with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ticketfmt import Ticket, build_model, prune

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, str | int]:
    import os
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count() or 0, "torch": torch.__version__, "threads": torch.get_num_threads()}


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "format.json")
    args = ap.parse_args()
    base = Ticket.from_model(build_model(args.arch, seed=0), args.arch)
    results: dict[str, object] = {"machine": machine(), "arch": args.arch}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sizes = []
        for s in (0.5, 0.8, 0.9, 0.95):
            t = prune(base, s)
            packed = t.save(d / f"p{s}.ticket")
            dense = t.save(d / f"d{s}.ticket", encoding="dense")
            torch.save({k: v.float() for k, v in t.masks.items()}, d / f"mask{s}.pth")
            torch.save(t.init, d / f"model{s}.pth")
            open_lth = (d / f"mask{s}.pth").stat().st_size + (d / f"model{s}.pth").stat().st_size
            sizes.append({"sparsity": s, "packed_mb": packed / 1e6, "dense_mb": dense / 1e6, "open_lth_mb": open_lth / 1e6,
                          "packed_vs_dense": packed / dense, "packed_vs_open_lth": packed / open_lth})
        results["size"] = sizes
        s = 0.9
        t = prune(base, s)
        flat = {f"init/{k}": v for k, v in t.init.items()} | {f"mask/{k}": v for k, v in t.masks.items()}
        save_file(flat, d / "plain.safetensors")
        loads = {
            "Ticket.load packed": lambda: Ticket.load(d / f"p{s}.ticket"),
            "Ticket.load packed --no-verify": lambda: Ticket.load(d / f"p{s}.ticket", verify=False),
            "Ticket.load dense": lambda: Ticket.load(d / f"d{s}.ticket"),
            "safetensors load_file (dense state dict + masks)": lambda: load_file(d / "plain.safetensors"),
            "torch.load open_lth mask.pth + checkpoint": lambda: (torch.load(d / f"mask{s}.pth", weights_only=True),
                                                                  torch.load(d / f"model{s}.pth", weights_only=True)),
        }
        timing = {name: best_of(fn, args.repeat) for name, fn in loads.items()}
        floor = timing["safetensors load_file (dense state dict + masks)"]
        results["load"] = [{"what": k, "seconds": v, "vs_safetensors": v / floor} for k, v in timing.items()]
        results["verify_cost"] = timing["Ticket.load packed"] / timing["Ticket.load packed --no-verify"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    m = results["machine"]
    print(f"machine: {m['platform']}, {m['cpus']} CPUs, torch {m['torch']} ({m['threads']} threads); arch {args.arch}\n")
    print("| sparsity | packed MB | dense MB | open_lth MB | packed/dense | packed/open_lth |\n|---|---|---|---|---|---|")
    for r in sizes:
        print(f"| {r['sparsity']:.0%} | {r['packed_mb']:.1f} | {r['dense_mb']:.1f} | {r['open_lth_mb']:.1f} | "
              f"{r['packed_vs_dense']:.3f} | {r['packed_vs_open_lth']:.3f} |")
    print("\n| load (90% sparse) | seconds | × safetensors |\n|---|---|---|")
    for r in results["load"]:
        print(f"| {r['what']} | {r['seconds']:.3f} | {r['vs_safetensors']:.2f} |")
    print(f"\nsha256 check costs ×{results['verify_cost']:.2f} of a packed load without it")


if __name__ == "__main__":
    main()
