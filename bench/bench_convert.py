"""Elastic conversion benchmark: time and peak memory of `ticket convert`, each against its floor.

    python bench/bench_convert.py [--repeat 5]

First, end to end as a user runs it (issue 13): ``ticket convert --from resnet50.ticket --to resnet101``
(timm, magnitude-pruned to 90%, packed, 14 MB) as a new process, against its floor measured in the same run,
the runs alternating: a new Python process that reads the source and atomically writes a file of the
target's size (tmp file, fsync, rename, as ``ticket convert`` writes), i.e. python start + read source + write
target. Goals: at most 1.0 s and at most 3x the floor. The same for two targets in one call
(``--to resnet101,resnet152``: the source is read once), against the floor that writes both. And the
modules the command imported (``-X importtime``): neither torch nor timm (nor numpy: a packed file is
converted as bytes).

Cases (sources: a fresh timm init, magnitude-pruned once to 89.26%, IMP level 10, saved packed):
- timm resnet50 → resnet152 (the issue's goal: at most 2 s, and at most 2× the floor);
- timm vgg13 → vgg19. (vgg11 → vgg19 does not exist: vgg11's first two stages hold only
  their width-changing conv, which cannot be replicated; the bench records the error.)

For each, three ways of doing the work, all load + convert + save:
- ``cli``: what `ticket convert` runs for a packed file (``ticketfmt.converters.files``: the packed
  tensors are re-indexed, nothing is unpacked);
- ``ticket``: ``Ticket.load`` + ``ticketfmt.converters.convert`` + ``Ticket.save`` (the Python API);
- ``floor``: read the source file + atomically write (fsync, rename, as ``Ticket.save``) a file of
  the target's size;
- ``format``: the ticket format's own I/O and nothing else: ``ticketfmt.format.tensors.read_file`` of the
  source (header checks, file and payload sha256) + ``write_tensors`` of the target's tensors
  (payload sha256, atomic write), i.e. the part of ``cli`` that is not conversion.
Times are in-process after a warm-up (imports and the meta-device shapes cached), min and median
of ``--repeat`` runs; the end-to-end `ticket convert` wall time (interpreter start and imports
included) is measured once. Peak memory: a fresh subprocess per measurement does the imports and
the warm-up, resets its peak resident size (``/proc/self/clear_refs``; ``ru_maxrss`` where that is
refused), does the work once and reports the peak minus its resident size just before; this is
compared with the target ticket's dense size (every tensor at full size, masks as bytes). Writes bench/results/convert.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPARSITY = 1 - 0.8 ** 10  # IMP level 10: 89.26%
CASES = [("timm/resnet50", "timm/resnet152"), ("timm/vgg13", "timm/vgg19")]
IMPOSSIBLE = [("timm/vgg11", "timm/vgg19")]
MODES = ("floor", "format", "cli", "ticket")


def machine() -> dict[str, object]:
    import torch
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count() or 0, "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def make_source(arch: str, path: Path) -> None:
    from ticketfmt import Ticket, build_model, prune
    ticket = Ticket.from_model(build_model(arch, seed=0), arch, provenance={"method": "init", "seed": 0, "level": 0})
    prune(ticket, SPARSITY, method="magnitude").save(path)


def run_once(mode: str, src: str, target: str, out: str) -> None:
    if mode == "cli":
        from ticketfmt.converters import plan_conversion
        from ticketfmt.converters.files import PackedSource, write_converted
        source = PackedSource.open(src)
        write_converted(source, plan_conversion(source.spec, target), out)
    elif mode == "ticket":
        from ticketfmt.converters import convert
        from ticketfmt import Ticket
        convert(Ticket.load(src), target).save(out)
    elif mode == "format":
        from ticketfmt.format.tensors import read_file, write_tensors
        tensors, meta = _target_payload(src, target)  # read once, outside the timing
        read_file(src)
        write_tensors(out, tensors, meta)
    else:
        from ticketfmt.format.atomic import atomic_write
        payload = _zeros(_target_size(src, target))  # allocated once, outside the timing
        with open(src, "rb") as f:
            f.read()
        atomic_write(out, [payload])


_SIZES: dict[tuple[str, str], int] = {}
_ZEROS: dict[int, bytes] = {}


_PAYLOADS: dict[tuple[str, str], tuple[dict, dict]] = {}


def _target_payload(src: str, target: str) -> tuple[dict, dict]:
    # The converted file's tensors and metadata, for the format floor (its own read + write).
    key = (src, target)
    if key not in _PAYLOADS:
        from ticketfmt.format.tensors import read_file
        out = src + ".payload-probe"
        run_once("cli", src, target, out)
        header, tensors, _ = read_file(out)
        os.unlink(out)
        meta = {k: v for k, v in header.metadata.items() if k != "payload_sha256"}
        _PAYLOADS.clear()
        _PAYLOADS[key] = ({k: v.clone() for k, v in tensors.items()}, meta)
    return _PAYLOADS[key]


def _zeros(n: int) -> bytes:
    if n not in _ZEROS:
        _ZEROS.clear()
        _ZEROS[n] = bytes(n)
    return _ZEROS[n]


def _target_size(src: str, target: str) -> int:
    # The size of the converted packed file (measured once with the cli path).
    key = (src, target)
    if key not in _SIZES:
        out = src + ".size-probe"
        run_once("cli", src, target, out)
        _SIZES[key] = os.path.getsize(out)
        os.unlink(out)
    return _SIZES[key]


def warm(src: str, target: str, size: int | None = None) -> None:
    from ticketfmt.format.spec import read_header
    from ticketfmt.zoo import get_arch, spec_from_json, state_dict_shapes
    state_dict_shapes(spec_from_json(read_header(src).arch))
    state_dict_shapes(get_arch(target))
    if size is None:
        _target_size(src, target)
    else:
        _SIZES[(src, target)] = size


def dense_size(target: str, num_classes: int) -> int:
    import math

    from ticketfmt.format.spec import DTYPE_SIZES
    from ticketfmt.zoo import get_arch, prunable_names, state_dict_dtypes, state_dict_shapes
    spec = get_arch(target, num_classes)
    shapes, dtypes = state_dict_shapes(spec), state_dict_dtypes(spec)
    size = sum(math.prod(shape) * DTYPE_SIZES[dtypes[k]] for k, shape in shapes.items())
    return size + sum(math.prod(shapes[k]) for k in prunable_names(spec))  # a BOOL mask each


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def memory_child(mode: str, src: str, target: str, out: str, size: str) -> None:
    warm(src, target, int(size))
    if mode == "floor":
        _zeros(int(size))  # the floor's payload exists before the work starts
    if mode == "format":
        _target_payload(src, target)
    # The modules a path imports are not part of its peak (the packed path needs neither numpy nor torch, the
    # others both).
    import ticketfmt.converters.files  # noqa: F401
    if mode in ("ticket", "format"):
        import ticketfmt.format.tensors  # noqa: F401
        import ticketfmt.ticket  # noqa: F401
    import gc
    gc.collect()
    # Reset the peak (VmHWM) so the imports and the warm-up do not count; fall back to ru_maxrss.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    base = _status("VmRSS")
    run_once(mode, src, target, out)
    peak = _status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"base": base, "peak": peak, "peak_reset": reset}))


def measure_memory(mode: str, src: str, target: str, out: str) -> dict[str, int]:
    size = str(_target_size(src, target))
    res = subprocess.run([sys.executable, __file__, "--memory-child", mode, src, target, out, size],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    data = json.loads(res.stdout.strip().splitlines()[-1])
    data["increment"] = max(0, data["peak"] - data["base"])
    return data


def time_mode(mode: str, src: str, target: str, out: str, repeat: int) -> dict[str, float]:
    run_once(mode, src, target, out)  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run_once(mode, src, target, out)
        times.append(time.perf_counter() - t)
    return {"min": min(times), "median": statistics.median(times), "runs": times}


def time_cli(src: str, target: str, out: str) -> float:
    exe = Path(sys.executable).with_name("ticket")
    t = time.perf_counter()
    subprocess.run([str(exe), "convert", "--from", src, "--to", target, "-o", out, "--force", "--json"],
                   capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - t


_FLOOR = """
import os, sys, tempfile
src, outs = sys.argv[1], sys.argv[2:]
with open(src, "rb") as f:
    f.read()
for spec in outs:
    path, size = spec.rsplit("=", 1)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
    with os.fdopen(fd, "wb") as f:
        f.write(bytes(int(size)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
"""


def end_to_end(tmp: str, repeat: int) -> dict[str, object]:
    """`ticket convert` as a new process against python start + read + write, alternating runs (min, median)."""
    src = os.path.join(tmp, "resnet50.ticket")
    from ticketfmt import Ticket, build_model, prune
    ticket = Ticket.from_model(build_model("timm/resnet50", seed=0), "timm/resnet50", provenance={"method": "init"})
    prune(ticket, 0.9, method="magnitude").save(src)
    exe = str(Path(sys.executable).with_name("ticket"))
    out: dict[str, object] = {"source_bytes": os.path.getsize(src), "runs": {}}
    for label, targets in (("resnet101", ["timm/resnet101"]), ("resnet101,resnet152", ["timm/resnet101",
                                                                                        "timm/resnet152"])):
        folder = os.path.join(tmp, label.replace(",", "+"))
        os.makedirs(folder, exist_ok=True)
        cmd = [exe, "convert", "--from", src, "--to", ",".join(targets), "-o", folder + "/", "--force"]
        subprocess.run(cmd, capture_output=True, check=True)
        written = [os.path.join(folder, f"{t.split('/')[1]}.ticket") for t in targets]
        floor = [sys.executable, "-c", _FLOOR, src, *(f"{w}.floor={os.path.getsize(w)}" for w in written)]
        times: dict[str, list[float]] = {"ticket convert": [], "floor": [], "python -c pass": []}
        cpu: dict[str, list[float]] = {k: [] for k in times}  # user + system: less inflated by other work than wall
        for _ in range(repeat):
            for key, c in (("ticket convert", cmd), ("floor", floor), ("python -c pass", [sys.executable, "-c", "pass"])):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run(c, capture_output=True, check=True)
                times[key].append(time.perf_counter() - t)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[key].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        imported = subprocess.run([sys.executable, "-X", "importtime", "-c",
                                   "import sys; from ticketfmt.cli import main; main(sys.argv[1:])", *cmd[1:]],
                                  capture_output=True, text=True)
        mods = {line.split("|")[-1].strip() for line in imported.stderr.splitlines() if line.startswith("import time:")}
        out["runs"][label] = {k: {"min": min(v), "median": statistics.median(v), "cpu_min": min(cpu[k])}  # type: ignore[index]
                              for k, v in times.items()}
        out["runs"][label]["heavy_imports"] = sorted(m for m in mods if m in ("torch", "timm", "torchvision"))  # type: ignore[index]
        out["runs"][label]["numpy_imported"] = "numpy" in mods  # type: ignore[index]  # the packed path is bytes
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--end-to-end-only", action="store_true", help="only the new-process figures (issue 13)")
    parser.add_argument("--memory-child", nargs=5, metavar=("MODE", "SRC", "TARGET", "OUT", "SIZE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    from ticketfmt.converters import plan_conversion
    from ticketfmt.errors import ConversionError
    from ticketfmt.format.spec import read_header

    results: dict[str, object] = {"machine": machine(), "sparsity": SPARSITY, "repeat": args.repeat, "cases": [],
                                  "impossible": []}
    with tempfile.TemporaryDirectory(prefix="bench_convert.") as tmp:
        e2e = os.path.join(tmp, "end-to-end")
        os.makedirs(e2e)
        results["end_to_end"] = end_to_end(e2e, max(args.repeat, 3))
        shutil.rmtree(e2e)
        for src_arch, target in ([] if args.end_to_end_only else CASES):
            src = os.path.join(tmp, src_arch.replace("/", "_") + ".ticket")
            out = os.path.join(tmp, target.replace("/", "_") + ".ticket")
            t = time.perf_counter()
            make_source(src_arch, Path(src))
            print(f"made {src_arch} source in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            warm(src, target)
            header = read_header(src)
            case: dict[str, object] = {"source": src_arch, "target": target, "source_bytes": os.path.getsize(src),
                                       "target_bytes": _target_size(src, target),
                                       "target_dense_bytes": dense_size(target, int(header.arch["num_classes"])),
                                       "source_sparsity": header.sparsity, "modes": {}}
            for mode in MODES:
                dest = out if mode in ("cli", "ticket") else f"{out}.{mode}"
                timing = time_mode(mode, src, target, dest, args.repeat)
                mem = measure_memory(mode, src, target, dest)
                case["modes"][mode] = {"time": timing, "memory": mem}  # type: ignore[index]
                print(f"{target} {mode}: {timing['min']:.3f}s min, {timing['median']:.3f}s median, "
                      f"+{mem['increment'] / 1e6:.0f} MB", file=sys.stderr)
            case["cli_end_to_end_s"] = time_cli(src, target, out)
            case["target_sparsity"] = read_header(out).sparsity
            results["cases"].append(case)  # type: ignore[union-attr]
            for p in Path(tmp).glob("*"):
                p.unlink()
        for src_arch, target in IMPOSSIBLE:
            try:
                plan_conversion(src_arch, target)
                msg = "converted (unexpected)"
            except ConversionError as e:
                msg = str(e)
            results["impossible"].append({"source": src_arch, "target": target, "error": msg})  # type: ignore[union-attr]
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "convert.json").write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))


def report_end_to_end(e2e: dict) -> list[str]:
    lines = ["`ticket convert --from resnet50.ticket --to ...` as a new process (timm resnet50 at 90%, packed, "
             f"{e2e['source_bytes'] / 1e6:.1f} MB), against python start + read source + write target(s) "
             "(a new process), alternating runs:", "",
             "| --to | ticket convert (min / median) | floor (min / median) | python -c pass | ratio (min) | "
             "CPU seconds: convert / floor (ratio) | goal | torch/timm imported | numpy imported |", "|---|---|---|---|---|---|---|---|---|"]
    for label, r in e2e["runs"].items():
        c, f, p = r["ticket convert"], r["floor"], r["python -c pass"]
        cpu = (f"{c['cpu_min']:.3f} / {f['cpu_min']:.3f} s ({c['cpu_min'] / f['cpu_min']:.2f}x)"
               if "cpu_min" in c else "")
        lines.append(f"| {label} | {c['min']:.3f} / {c['median']:.3f} s | {f['min']:.3f} / {f['median']:.3f} s | "
                     f"{p['min']:.3f} s | {c['min'] / f['min']:.2f}x | {cpu} | <= 1.0 s and <= 3x | "
                     f"{', '.join(r['heavy_imports']) or 'neither'} | "
                     f"{({True: 'yes', False: 'no'}).get(r.get('numpy_imported'), '')} |")
    return lines + ["", "CPU seconds (user + system, min of the runs) wait for no other process: on cores shared "
                    "with other work they show the cost of each command better than the wall time does.", ""]


def report(results: dict) -> str:
    m = results["machine"]
    lines = [f"Machine: {m['platform']}, {m['processor']}, {m['cpus']} CPUs, Python {m['python']}, torch {m['torch']} "
             f"({m['threads']} threads), load average at start {m['load_average']}", ""]
    lines += report_end_to_end(results["end_to_end"])
    lines += ["| conversion | path | time (min / median) | × floor (min) | peak memory added | × target dense size |",
              "|---|---|---|---|---|---|"]
    for c in results["cases"]:
        floor = c["modes"]["floor"]["time"]["min"]
        dense = c["target_dense_bytes"]
        for mode in MODES:
            r = c["modes"][mode]
            t, mem = r["time"], r["memory"]["increment"]
            lines.append(f"| {c['source']} → {c['target']} | {mode} | {t['min']:.3f} s / {t['median']:.3f} s | "
                         f"{t['min'] / floor:.2f} | {mem / 1e6:.0f} MB | {mem / dense:.2f} |")
        lines.append(f"| | `ticket convert` end to end (interpreter + imports) | {c['cli_end_to_end_s']:.2f} s | | | |")
    lines.append("")
    for c in results["cases"]:
        lines.append(f"- {c['source']} → {c['target']}: source {c['source_bytes'] / 1e6:.1f} MB packed at "
                     f"{c['source_sparsity']:.2%}, target {c['target_bytes'] / 1e6:.1f} MB packed at "
                     f"{c['target_sparsity']:.2%}, target dense size {c['target_dense_bytes'] / 1e6:.0f} MB")
    for i in results["impossible"]:
        lines.append(f"- {i['source']} → {i['target']}: refused: {i['error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
