"""Load and start-up benchmarks (issue 13): each figure against its floor, measured side by side in one run.

    python bench/bench_load.py [--repeat 5]

Sources: timm resnet50, fresh init, magnitude-pruned once to 90%, saved packed (14 MB) and dense (128 MB).
In-process figures (after a warm-up; the runs of a figure and of its floor alternate, min over ``--repeat``):
- ``Ticket.load`` packed against its floor: read the file + sha256 + ``numpy.unpackbits`` of every mask +
  scatter of the surviving values into zeros (goal: at most 2x);
- ``Ticket.load`` dense against its floor: read the file + sha256 (goal: at most 1.5x);
- ``Ticket.from_pretrained`` from the local Hub cache (``HF_HUB_OFFLINE=1``, a local fake Hub filled the cache)
  against ``Ticket.load`` of the same file (goal: at most 50 ms more);
- ``Ticket.open`` (lazy) + one mask, against ``Ticket.load`` (no goal: what lazy access saves).
New processes (min and median of ``--repeat``, runs alternating; the goals read the min): ``python -c pass``, ``ticket info`` of both files (goal: under 0.3 s),
``ticket models`` and ``ticket [COMMAND] --help`` for every command (goal: under 0.5 s; the training commands
``find`` and ``verify`` start as fast, their goal is the same). Writes bench/results/load.json and prints a
markdown table with the machine's description and load average.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable)
TICKET = EXE.with_name("ticket")


def machine() -> dict[str, object]:
    import torch
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count() or 0, "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def make_sources(d: Path) -> tuple[Path, Path]:
    from ticketfmt import Ticket, build_model, prune
    t = Ticket.from_model(build_model("timm/resnet50", seed=0), "timm/resnet50", provenance={"method": "init"})
    t = prune(t, 0.9, method="magnitude")
    packed, dense = d / "resnet50-packed.ticket", d / "resnet50-dense.ticket"
    t.save(packed)
    t.save(dense, encoding="dense")
    return packed, dense


def packed_floor(path: Path) -> Callable[[], None]:
    """Read + sha256 + unpackbits + scatter into zeros, with the offsets parsed beforehand (a lower bound)."""
    from ticketfmt.format.spec import read_header
    header = read_header(path)
    base = header.data_offset
    plan = []
    for name, layer in header.layers.items():
        m, v = header.tensors[f"mask/{name}"], header.tensors[f"init/{name}"]
        plan.append((layer.numel, base + m.start, m.end - m.start, base + v.start, v.numel))

    def run() -> None:
        with open(path, "rb") as f:
            buf = f.read()
        hashlib.sha256(buf).hexdigest()
        for n, m_off, m_len, v_off, kept in plan:
            mask = np.unpackbits(np.frombuffer(buf, np.uint8, m_len, m_off), count=n).view(np.bool_)
            out = np.zeros(n, np.float32)
            out[mask] = np.frombuffer(buf, np.float32, kept, v_off)
    return run


def dense_floor(path: Path) -> Callable[[], None]:
    def run() -> None:
        with open(path, "rb") as f:
            hashlib.sha256(f.read()).hexdigest()
    return run


def side_by_side(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, dict[str, float]]:
    """Each function once as a warm-up, then ``repeat`` rounds of all of them in turn: min and median each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: {"min": min(v), "median": statistics.median(v)} for k, v in times.items()}


def local_hub_cache(packed: Path, cache: Path) -> Callable[[], object]:
    """Fill a Hub cache from a local fake Hub (tests/hubserver.py), then read it offline: from_pretrained's path."""
    sys.path.insert(0, str(ROOT / "tests"))
    import huggingface_hub.constants as constants
    import pytest
    from hubserver import FakeHub

    from ticketfmt import Ticket

    hub = FakeHub().__enter__()
    mp = pytest.MonkeyPatch()
    hub.configure_client(mp, cache_dir=cache)
    hub.put_files("bench/resnet50-ticket", {"ticket.safetensors": packed.read_bytes()})
    Ticket.from_pretrained("bench/resnet50-ticket", cache_dir=cache)  # downloads into the cache
    mp.setattr(constants, "HF_HUB_OFFLINE", True)
    mp.setenv("HF_HUB_OFFLINE", "1")
    return lambda: Ticket.from_pretrained("bench/resnet50-ticket", cache_dir=cache)


def lazy_one_mask(packed: Path) -> Callable[[], object] | None:
    from ticketfmt import Ticket
    if not hasattr(Ticket, "open"):
        return None

    def run() -> object:
        with Ticket.open(packed) as f:
            return f.masks["layer3.0.conv1.weight"]
    return run


def in_process(packed: Path, dense: Path, repeat: int, tmp: Path) -> dict[str, dict[str, float]]:
    import torch

    from ticketfmt import Ticket
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    fns: dict[str, Callable[[], object]] = {
        "packed floor": packed_floor(packed), "Ticket.load packed": lambda: Ticket.load(packed),
        "dense floor": dense_floor(dense), "Ticket.load dense": lambda: Ticket.load(dense),
    }
    try:
        fns["Ticket.from_pretrained (local cache)"] = local_hub_cache(packed, tmp / "hf-cache")
    except Exception as e:  # noqa: BLE001 - reported, the other figures still stand
        print(f"from_pretrained: not measured ({type(e).__name__}: {e})", file=sys.stderr)
    lazy = lazy_one_mask(packed)
    if lazy is not None:
        fns["Ticket.open + one mask (lazy)"] = lazy
    return side_by_side(fns, repeat)


def processes(packed: Path, dense: Path, repeat: int) -> dict[str, dict[str, float]]:
    from ticketfmt.cli import app, load_commands
    load_commands()
    names = [c.name or c.callback.__name__ for c in app.registered_commands] + [g.name for g in app.registered_groups]
    runs: dict[str, list[str]] = {"python -c pass": [str(EXE), "-c", "pass"],
                                  "ticket info (packed)": [str(TICKET), "info", str(packed)],
                                  "ticket info (dense)": [str(TICKET), "info", str(dense)],
                                  "ticket models": [str(TICKET), "models"], "ticket --help": [str(TICKET), "--help"]}
    runs.update({f"ticket {n} --help": [str(TICKET), str(n), "--help"] for n in names})
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}  # user + system: less inflated by other work than wall
    for _ in range(repeat):
        for k, cmd in runs.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT, env={**os.environ, "COLUMNS": "100"})
            times[k].append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[k].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    # min: what the command costs when nothing else competes for the cores (the goals' figure); median beside it
    return {k: {"min": min(v), "median": statistics.median(v), "cpu_min": min(cpu[k])} for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    results: dict[str, object] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench_load.") as tmp:
        packed, dense = make_sources(Path(tmp))
        results["sizes"] = {"packed": packed.stat().st_size, "dense": dense.stat().st_size}
        results["in_process"] = in_process(packed, dense, args.repeat, Path(tmp))
        results["processes"] = processes(packed, dense, args.repeat)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    out = ROOT / "bench" / "results" / "load.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))


def report(r: dict) -> str:
    m, ip, pr = r["machine"], r["in_process"], r["processes"]
    lines = [f"Machine: {m['platform']}, {m['processor']}, {m['cpus']} CPUs, Python {m['python']}, torch {m['torch']} "
             f"({m['threads']} threads); load average at start {m['load_average']}, at the end {r['load_average_end']}",
             "", "| figure | seconds (min / median) | floor | ratio | goal |", "|---|---|---|---|---|"]

    def row(name: str, floor: str | None, goal: str) -> None:
        t = ip[name]
        ratio = f"{t['min'] / ip[floor]['min']:.2f}x" if floor else ""
        lines.append(f"| {name} | {t['min']:.3f} / {t['median']:.3f} | {floor or ''} | {ratio} | {goal} |")

    for name, floor, goal in [("packed floor", None, "read + sha256 + unpackbits + scatter"),
                              ("Ticket.load packed", "packed floor", "<= 2x"),
                              ("dense floor", None, "read + sha256"), ("Ticket.load dense", "dense floor", "<= 1.5x")]:
        row(name, floor, goal)
    if "Ticket.from_pretrained (local cache)" in ip:
        extra = ip["Ticket.from_pretrained (local cache)"]["min"] - ip["Ticket.load packed"]["min"]
        row("Ticket.from_pretrained (local cache)", "Ticket.load packed", f"<= +0.050 s (here {extra:+.3f} s)")
    if "Ticket.open + one mask (lazy)" in ip:
        row("Ticket.open + one mask (lazy)", "Ticket.load packed", "")
    lines += ["", "| new process | seconds (min / median) | × python -c pass (min) | CPU seconds (min) | goal |",
              "|---|---|---|---|---|"]
    start = pr["python -c pass"]["min"]
    for k, v in pr.items():
        goal = "" if k == "python -c pass" else "< 0.3 s" if k.startswith("ticket info (") else "< 0.5 s"
        lines.append(f"| `{k}` | {v['min']:.3f} / {v['median']:.3f} | {v['min'] / start:.1f} | {v['cpu_min']:.3f} | "
                     f"{goal} |")
    lines.append("")
    lines.append(f"- sources: timm/resnet50 at 90% sparsity, packed {r['sizes']['packed'] / 1e6:.1f} MB, "
                 f"dense {r['sizes']['dense'] / 1e6:.1f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
