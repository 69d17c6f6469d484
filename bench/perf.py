"""All performance benchmarks (issues 6 and 13), each a ratio measured side by side in one run.

    python bench/perf.py --quick      # `make bench`: about 8 minutes on 2 cores
    python bench/perf.py              # more repeats

Runs, one after the other, each in its own process (so imports and peak memory do not mix):
- bench/bench_convert.py: `ticket convert` of a packed resnet50 end to end as a new process against
  python start + read + write; timm resnet50 → resnet152 and vgg13 → vgg19, time and peak memory
  against the floor of reading the source and writing a file of the target's size;
- bench/bench_load.py: Ticket.load (packed, dense) against read + sha256 (+ unpack and scatter),
  Ticket.from_pretrained from the local cache, lazy Ticket.open, start-up of every command;
- bench/perf_format.py: load (packed, dense, against safetensors and open_lth-style torch.load)
  and size (packed, dense, open_lth-style at 50/80/90/95% sparsity);
- bench/bench_train.py: masked against dense training images/s, data pipeline against the step.
Each writes its JSON under bench/results/; this script gathers their tables into
bench/results/perf.md together with the machine's description and load average, and prints the
issue-13 figures next to their goals first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats: the `make bench` set")
    args = ap.parse_args()
    runs = [
        ("Elastic conversion", ["bench/bench_convert.py", "--repeat", "2" if args.quick else "5"]),
        ("Load and start-up", ["bench/bench_load.py", "--repeat", "3" if args.quick else "7"]),
        ("Format: load and size", ["bench/perf_format.py", "--repeat", "2" if args.quick else "5"]),
        ("Training throughput", ["bench/bench_train.py", "--steps", "6" if args.quick else "10",
                                 "--rounds", "2" if args.quick else "3"]),
    ]
    sections = []
    load_start = os.getloadavg()
    started = time.time()
    for title, cmd in runs:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        print(f"{title}: {seconds:.0f} s (exit {proc.returncode})", file=sys.stderr)
        body = proc.stdout.strip() if proc.returncode == 0 else f"FAILED (exit {proc.returncode}):\n\n```\n{proc.stderr[-3000:]}\n```"
        sections.append(f"## {title}\n\n`python {' '.join(cmd)}` ({seconds:.0f} s)\n\n{body}\n")
    head = (f"# Performance benchmarks\n\nRun {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.platform()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average at the start "
            f"{', '.join(f'{x:.1f}' for x in load_start)}, at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
            f" (1, 5, 15 min; above 1 other work shared the cores). Rerun with `make bench`.\n")
    text = head + "\n" + goals_table(started) + "\n" + "\n".join(sections)
    out = ROOT / "bench" / "results" / "perf.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    if any("FAILED (exit" in s for s in sections):
        sys.exit(1)


def _read(name: str, since: float) -> dict:
    """A result written by this run (a benchmark that failed leaves an older file: not shown)."""
    path = ROOT / "bench" / "results" / name
    return json.loads(path.read_text()) if path.exists() and path.stat().st_mtime >= since else {}


def goals_table(since: float) -> str:
    """Issue 13's figures next to their goals, from this run's convert.json and load.json."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for label, r in _read("convert.json", since).get("end_to_end", {}).get("runs", {}).items():
        c, f = r["ticket convert"]["min"], r["floor"]["min"]
        rows.append((f"`ticket convert --to {label}` (new process)", f"{c:.2f} s", "<= 1.0 s", c <= 1.0))
        rows.append((f"  vs python start + read + write ({f:.2f} s)", f"{c / f:.2f}x", "<= 3x", c / f <= 3))
        rows.append(("  torch or timm imported", ", ".join(r["heavy_imports"]) or "neither", "neither",
                     not r["heavy_imports"]))
    load = _read("load.json", since)
    ip, pr = load.get("in_process", {}), load.get("processes", {})
    for name, floor, goal in (("Ticket.load packed", "packed floor", 2.0), ("Ticket.load dense", "dense floor", 1.5)):
        if name in ip:
            ratio = ip[name]["min"] / ip[floor]["min"]
            rows.append((f"{name} ({ip[name]['min']:.3f} s) vs {floor} ({ip[floor]['min']:.3f} s)", f"{ratio:.2f}x",
                         f"<= {goal}x", ratio <= goal))
    if "Ticket.from_pretrained (local cache)" in ip:
        extra = ip["Ticket.from_pretrained (local cache)"]["min"] - ip["Ticket.load packed"]["min"]
        rows.append(("Ticket.from_pretrained (local cache) - Ticket.load", f"{extra * 1000:+.0f} ms", "<= +50 ms",
                     extra <= 0.05))
    info = [v for k, v in pr.items() if k.startswith("ticket info (")]
    if info:
        rows.append(("`ticket info` (new process, slowest file)", f"{max(info):.2f} s", "< 0.3 s", max(info) < 0.3))
    starts = {k: v for k, v in pr.items() if k.startswith("ticket ") and not k.startswith("ticket info (")}
    if starts:
        worst = max(starts, key=starts.__getitem__)
        rows.append((f"slowest start, `{worst}`", f"{starts[worst]:.2f} s", "< 0.5 s", starts[worst] < 0.5))
    lines = ["## Issue 13: figures and goals", "", "| figure | measured | goal | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else 'no' if ok is not None else ''} |" for a, b, c, ok in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
