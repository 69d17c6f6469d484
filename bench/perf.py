"""All performance benchmarks of issue 6, each a ratio measured side by side in one run.

    python bench/perf.py --quick      # `make bench`: about 5 minutes on 2 cores
    python bench/perf.py              # more repeats

Runs, one after the other, each in its own process (so imports and peak memory do not mix):
- bench/bench_convert.py: timm resnet50 → resnet152 and vgg13 → vgg19, time and peak memory
  against the floor of reading the source and writing a file of the target's size;
- bench/perf_format.py: load (packed, dense, against safetensors and open_lth-style torch.load)
  and size (packed, dense, open_lth-style at 50/80/90/95% sparsity);
- bench/bench_train.py: masked against dense training images/s, data pipeline against the step.
Each writes its JSON under bench/results/; this script gathers their tables into
bench/results/perf.md together with the machine's description.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
        ("Format: load and size", ["bench/perf_format.py", "--repeat", "2" if args.quick else "5"]),
        ("Training throughput", ["bench/bench_train.py", "--steps", "6" if args.quick else "10",
                                 "--rounds", "2" if args.quick else "3"]),
    ]
    sections = []
    for title, cmd in runs:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        print(f"{title}: {seconds:.0f} s (exit {proc.returncode})", file=sys.stderr)
        body = proc.stdout.strip() if proc.returncode == 0 else f"FAILED (exit {proc.returncode}):\n\n```\n{proc.stderr[-3000:]}\n```"
        sections.append(f"## {title}\n\n`python {' '.join(cmd)}` ({seconds:.0f} s)\n\n{body}\n")
    head = (f"# Performance benchmarks\n\nRun {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.platform()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average at the end "
            f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}. Rerun with `make bench`.\n")
    text = head + "\n" + "\n".join(sections)
    out = ROOT / "bench" / "results" / "perf.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    if any("FAILED (exit" in s for s in sections):
        sys.exit(1)


if __name__ == "__main__":
    main()
