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
- bench/bench_train.py: masked against dense training images/s, data pipeline against the step, with
  2 torch threads (train.json) and again, shorter, with 1 (train-1thread.json): issue 13's thread default.
Each writes its JSON under bench/results/; this script gathers their tables into
bench/results/perf.md together with the machine's description and load average (before and after
each benchmark: other work on the same cores inflates every time, and the ratios are what to read),
and prints every figure next to its goal and its ratio to its floor first.
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
    ap.add_argument("--note", default="", help="a sentence for the report's head (e.g. what else ran meanwhile)")
    args = ap.parse_args()
    args.note = args.note.strip() + " " if args.note.strip() else ""
    runs = [
        ("Elastic conversion", ["bench/bench_convert.py", "--repeat", "2" if args.quick else "5"]),
        ("Load and start-up", ["bench/bench_load.py", "--repeat", "3" if args.quick else "7"]),
        ("Format: load and size", ["bench/perf_format.py", "--repeat", "2" if args.quick else "5"]),
        ("Training throughput (2 threads)", ["bench/bench_train.py", "--threads", "2", "--steps",
                                             "6" if args.quick else "10", "--rounds", "2" if args.quick else "3"]),
        ("Training throughput (1 thread)", ["bench/bench_train.py", "--threads", "1", "--steps", "4", "--rounds", "2",
                                            "--out", "bench/results/train-1thread.json"]),
    ]
    sections = []
    load_start = os.getloadavg()
    started = time.time()
    for title, cmd in runs:
        sections.append(run_one(title, cmd))
    head = (f"# Performance benchmarks\n\nRun {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.platform()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average (1, 5, 15 min) at the start "
            f"{_load(load_start)}, at the end {_load(os.getloadavg())}. {args.note}Rerun with `make bench`.\n")
    text = head + "\n" + goals_table(started) + "\n" + threads_table(started) + "\n" + "\n".join(sections)
    out = ROOT / "bench" / "results" / "perf.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    if any("FAILED (exit" in s for s in sections):
        sys.exit(1)


def _load(avg: tuple[float, ...] | list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in avg)


def run_one(title: str, cmd: list[str]) -> str:
    """Run one benchmark in its own process; its section of the report (the load average around it included)."""
    before = os.getloadavg()
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    after = os.getloadavg()
    print(f"{title}: {seconds:.0f} s (exit {proc.returncode}), load average {_load(before)} -> {_load(after)}",
          file=sys.stderr)
    body = (proc.stdout.strip() if proc.returncode == 0
            else f"FAILED (exit {proc.returncode}):\n\n```\n{proc.stderr[-3000:]}\n```")
    return (f"## {title}\n\n`python {' '.join(cmd)}` ({seconds:.0f} s; load average before {_load(before)}, "
            f"after {_load(after)})\n\n{body}\n")


def _read(name: str, since: float) -> dict:
    """A result written by this run (a benchmark that failed leaves an older file: not shown)."""
    path = ROOT / "bench" / "results" / name
    return json.loads(path.read_text()) if path.exists() and path.stat().st_mtime >= since else {}


Row = tuple[str, str, str, str, str, "bool | None"]  # figure, measured, floor, x floor, goal, met


def _convert_rows(since: float) -> list[Row]:
    rows: list[Row] = []
    data = _read("convert.json", since)
    for label, r in data.get("end_to_end", {}).get("runs", {}).items():
        c, f = r["ticket convert"]["min"], r["floor"]["min"]
        cc, cf = r["ticket convert"].get("cpu_min"), r["floor"].get("cpu_min")
        cpu = (f" (CPU {cc:.2f} s)", f" (CPU {cf:.2f} s)", f" (CPU {cc / cf:.2f}x)") if cc and cf else ("", "", "")
        rows.append((f"`ticket convert --to {label}` (new process)", f"{c:.2f} s{cpu[0]}",
                     f"{f:.2f} s{cpu[1]} (python start + read + write)", f"{c / f:.2f}x{cpu[2]}",
                     "<= 1.0 s and <= 3x", c <= 1.0 and c / f <= 3))
        rows.append(("  torch or timm imported", ", ".join(r["heavy_imports"]) or "neither", "", "", "neither",
                     not r["heavy_imports"]))
    for case in data.get("cases", []):
        modes = case.get("modes", {})
        if "cli" in modes and "floor" in modes:
            c, f = modes["cli"]["time"]["min"], modes["floor"]["time"]["min"]
            mem = modes["cli"]["memory"]["increment"] / case["target_dense_bytes"]
            rows.append((f"convert {case['source']} -> {case['target']} in-process (issue 6)", f"{c:.3f} s",
                         f"{f:.3f} s (read + write)", f"{c / f:.2f}x", "<= 2 s", c <= 2.0))
            rows.append(("  peak memory added / target's dense size", f"{mem:.2f}x", "", "", "<= 2x", mem <= 2))
    return rows


def _cpu(seconds: float | None) -> str:
    return f" (CPU {seconds:.2f} s)" if seconds else ""


def _load_rows(since: float) -> list[Row]:
    load = _read("load.json", since)
    ip = load.get("in_process", {})
    pr = {k: v["min"] if isinstance(v, dict) else v for k, v in load.get("processes", {}).items()}  # min of runs
    cpu = {k: v.get("cpu_min") for k, v in load.get("processes", {}).items() if isinstance(v, dict)}
    rows: list[Row] = []
    for name, floor, goal, what in (("Ticket.load packed", "packed floor", 2.0, "read + sha256 + unpack + scatter"),
                                    ("Ticket.load dense", "dense floor", 1.5, "read + sha256")):
        if name in ip:
            t, f = ip[name]["min"], ip[floor]["min"]
            rows.append((f"{name} (ResNet-50, 90%)", f"{t:.3f} s", f"{f:.3f} s ({what})", f"{t / f:.2f}x",
                         f"<= {goal}x", t / f <= goal))
    if "Ticket.from_pretrained (local cache)" in ip:
        t, f = ip["Ticket.from_pretrained (local cache)"]["min"], ip["Ticket.load packed"]["min"]
        rows.append(("Ticket.from_pretrained (local cache)", f"{t:.3f} s", f"{f:.3f} s (Ticket.load)",
                     f"{(t - f) * 1000:+.0f} ms", "<= +50 ms", t - f <= 0.05))
    start = pr.get("python -c pass")
    base = f"{start:.3f} s{_cpu(cpu.get('python -c pass'))} (python -c pass)" if start else ""
    info = {k: v for k, v in pr.items() if k.startswith("ticket info (")}
    if info:
        worst = max(info, key=info.__getitem__)
        rows.append((f"`{worst}` (new process, slowest file)", f"{info[worst]:.2f} s{_cpu(cpu.get(worst))}", base,
                     f"{info[worst] / start:.1f}x" if start else "", "< 0.3 s", info[worst] < 0.3))
    starts = {k: v for k, v in pr.items() if k.startswith("ticket ") and k not in info}
    if starts:
        worst = max(starts, key=starts.__getitem__)
        rows.append((f"slowest start, `{worst}`", f"{starts[worst]:.2f} s{_cpu(cpu.get(worst))}", base,
                     f"{starts[worst] / start:.1f}x" if start else "", "< 0.5 s", starts[worst] < 0.5))
    return rows


def _train_rows(since: float) -> list[Row]:
    train = _read("train.json", since)
    if not train:
        return []
    speeds, masked = train["images_per_sec"], next(k for k in train["images_per_sec"] if k.startswith("Trainer masked"))
    ratio = train["masked_over_plain_dense"]
    return [(f"masked training, {train['arch']} ({train['machine']['threads']} threads)",
             f"{speeds[masked]:,.1f} images/s", f"{speeds['plain dense']:,.1f} images/s (plain dense loop)",
             f"{ratio:.3f}x", ">= 0.95x", ratio >= 0.95)]


def goals_table(since: float) -> str:
    """Every figure with a goal (issues 6 and 13) next to its floor and its ratio to it, from this run's JSON."""
    rows = _convert_rows(since) + _load_rows(since) + _train_rows(since)
    lines = ["## Figures and goals (issues 6 and 13)", "",
             "| figure | measured | floor | x floor | goal | met |", "|---|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} | {'yes' if ok else 'no' if ok is not None else ''} |"
              for a, b, c, d, e, ok in rows]
    return "\n".join(lines) + "\n"


def threads_table(since: float) -> str:
    """Training images/s at 1 and 2 torch threads (issue 13, goal 4), each with the load average around it."""
    runs = [r for r in (_read("train-1thread.json", since), _read("train.json", since)) if r]
    if not runs:
        return ""
    lines = ["## Training threads (issue 13, goal 4)", "",
             "| threads | plain dense images/s | masked images/s | load average before | after |",
             "|---:|---:|---:|---|---|"]
    for r in runs:
        speeds = r["images_per_sec"]
        masked = next(v for k, v in speeds.items() if k.startswith("Trainer masked"))
        lines.append(f"| {r['machine']['threads']} | {speeds['plain dense']:,.1f} | {masked:,.1f} | "
                     f"{_load(r.get('load_average_start', []))} | {_load(r.get('load_average_end', []))} |")
    lines += ["", "Without `--threads`, `ticket find`/`ticket verify` (and `find`, `verify`, `lmc` in Python) take "
              "the threads as set (torch's default: the physical cores) shared by the ticketfmt training jobs "
              "running on this machine, at least 1 (`ticketfmt.train.dist.cpu_threads`; docs/PERF.md)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
