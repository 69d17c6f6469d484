"""Long fuzz run of the ticket reader: the byte and the structure-aware fuzzer (the suite runs 2,000 cases).

    python bench/fuzz.py [--cases 100000] [--start 10000] [--workers 4] [--scale 10]

Every case (``tests/fuzzing.py``) must end in the project's format error or a successful load
of a valid ticket; anything else stops the run and prints the seed to reproduce it. Each
case's time and peak memory (growth of the process's peak RSS over the RSS it started at) are
measured; the run fails when the worst case exceeds the bound stated in ``docs/SPEC.md``
("Limits": work linear in the file): :data:`BOUND_SECONDS` and :data:`BOUND_MB`. Half the
cases are structure-aware, at ``--scale`` times the suite's sizes (strings up to 1 MB, lists
of 100,000 values, 10,000 added layers). Results: ``bench/results/fuzz.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import fuzzing  # noqa: E402

BOUND_SECONDS = 10.0
"""No case may take longer (the cases that motivated the limits took 20 s to minutes)."""
BOUND_MB = 256
"""No case may grow the peak RSS by more (they took 3 GB and more)."""


def originals(folder: Path) -> list[bytes]:
    from ticketfmt import Ticket, build_model, prune

    base = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    trained = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8",
                                trained=build_model("cifar_resnet8", seed=1))
    out = []
    for i, (ticket, encoding) in enumerate([(prune(base, 0.5), "packed"), (prune(base, 0.9), "dense"),
                                            (prune(trained, 0.7), "packed"), (base, "dense"),
                                            (prune(trained, 0.6), "dense")]):
        path = folder / f"{i}.ticket"
        ticket.save(path, encoding=encoding)
        out.append(path.read_bytes())
    return out


def run_range(args: tuple[int, int, int]) -> dict[str, object]:
    """Cases ``start .. start + count - 1`` in this process: outcomes and the worst time and memory, with seeds."""
    start, count, scale = args
    fuzzing.SCALE = scale
    outcomes: Counter[str] = Counter()
    worst = {"seconds": (0.0, -1), "memory": (0, -1)}
    peak = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        origs = originals(folder)
        for seed in range(start, start + count):
            try:
                outcome, seconds, memory = fuzzing.measure_case(seed, origs, folder / "case.ticket")
            except Exception as e:  # report the seed that reproduces it
                return {"crash": {"seed": seed, "error": f"{type(e).__name__}: {e}"[:500]}}
            kind = "structured" if fuzzing.is_structured(seed, origs) else "bytes"
            outcomes[f"{kind}:{outcome}"] += 1
            worst["seconds"] = max(worst["seconds"], (seconds, seed))
            worst["memory"] = max(worst["memory"], (memory, seed))
            peak = max(peak, fuzzing._peak_rss())
    return {"outcomes": dict(outcomes), "worst": worst, "peak_rss": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--start", type=int, default=10_000, help="first seed (the suite uses 0..1999)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--scale", type=int, default=10, help="size factor of the structure-aware values (suite: 1)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = ap.parse_args()
    per = -(-args.cases // args.workers)
    jobs = [(args.start + i * per, min(per, args.cases - i * per), args.scale) for i in range(args.workers)
            if args.cases - i * per > 0]
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        parts = pool.map(run_range, jobs)
    seconds = time.perf_counter() - t0
    crashes = [p["crash"] for p in parts if "crash" in p]
    if crashes:
        print(json.dumps(crashes, indent=1), file=sys.stderr)
        sys.exit(1)
    outcomes: Counter[str] = Counter()
    for p in parts:
        outcomes.update(p["outcomes"])  # type: ignore[arg-type]
    worst_s = max(p["worst"]["seconds"] for p in parts)  # type: ignore[index]
    worst_m = max(p["worst"]["memory"] for p in parts)  # type: ignore[index]
    result = {
        "cases": args.cases, "start_seed": args.start, "workers": len(jobs), "scale": args.scale,
        "outcomes": dict(sorted(outcomes.items())), "seconds": round(seconds, 1),
        "bound": {"seconds_per_case": BOUND_SECONDS, "peak_rss_growth_mb_per_case": BOUND_MB},
        "worst_case": {"seconds": round(worst_s[0], 3), "seconds_seed": worst_s[1],
                       "peak_rss_growth_mb": round(worst_m[0] / 2**20, 1) if worst_m[0] >= 0 else None,
                       "peak_rss_growth_seed": worst_m[1]},
        "peak_rss_mb": round(max(int(p["peak_rss"]) for p in parts) / 2**20, 1),  # type: ignore[call-overload]
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    if worst_s[0] > BOUND_SECONDS or worst_m[0] > BOUND_MB << 20:
        print(f"a case exceeded the bound: {result['worst_case']}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
