"""Long fuzz run of the ticket reader (the suite runs 2,000 cases; this runs 100,000 by default).

    python bench/fuzz.py --cases 100000 [--start 0]

Every case must end in the project's format error or a successful load of a valid ticket;
anything else stops the run and prints the seed to reproduce it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzzing import run_case  # noqa: E402

from ticketfmt import Ticket, build_model, prune  # noqa: E402


def originals(folder: Path) -> list[bytes]:
    base = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    trained = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8",
                                trained=build_model("cifar_resnet8", seed=1))
    out = []
    for i, (ticket, encoding) in enumerate([(prune(base, 0.5), "packed"), (prune(base, 0.9), "dense"),
                                            (prune(trained, 0.7), "packed"), (base, "dense")]):
        path = folder / f"{i}.ticket"
        ticket.save(path, encoding=encoding)
        out.append(path.read_bytes())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--start", type=int, default=10_000, help="first seed (the suite uses 0..1999)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        origs = originals(folder)
        outcomes: Counter[str] = Counter()
        t0 = time.perf_counter()
        for seed in range(args.start, args.start + args.cases):
            try:
                outcomes[run_case(seed, origs, folder / "case.ticket")] += 1
            except Exception as e:  # report the seed that reproduces it
                print(f"seed {seed}: {type(e).__name__}: {e}", file=sys.stderr)
                raise
            if (seed - args.start + 1) % 10_000 == 0:
                print(f"{seed - args.start + 1} cases, {dict(outcomes)}", file=sys.stderr)
        seconds = time.perf_counter() - t0
    result = {"cases": args.cases, "start_seed": args.start, "outcomes": dict(outcomes), "seconds": round(seconds, 1),
              "machine": {"platform": platform.platform(), "python": platform.python_version()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
