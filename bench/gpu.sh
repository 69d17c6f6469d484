#!/usr/bin/env bash
# One short device run (issue 12): bash bench/gpu.sh [more bench/gpu.py options]
#
# Runs bench/gpu.py with a 530 s budget (GPU_BUDGET_S) under a 570 s hard timeout, writes
# bench/results/gpu/ (GPU_OUT); when the device runner sets $OUT, copies gpu.json and summary.md to $OUT/gpu with
# the whole folder as $OUT/gpu/results.tar.gz (unpack it over bench/results/gpu).
# The dataset is looked for in --data-dir, $TICKETFMT_DATA, ../shared/data and bench/work/data
# (a git-ignored folder that can travel to the device: cp ../shared/data/cifar10-jpeg.tar.gz
# bench/work/data/ and carry bench/work/data). Without it the throughput phase uses synthetic
# batches and the reproduction slice is skipped; both say so.
# The real example tickets (issue 12, item 3) have their own device run: bash bench/gpu_bundle.sh.
set -u
source "$(dirname "$0")/gpu_env.sh"
RESULTS=${GPU_OUT:-bench/results/gpu}
timeout -s INT -k 20 570 "$PY" bench/gpu.py --budget-s "${GPU_BUDGET_S:-530}" --out "$RESULTS" "$@"
rc=$?
if [ -n "${OUT:-}" ]; then
    # the device returns at most 8 files, 2 folders down: the summary, and everything (arms, IMP runs) as one archive
    mkdir -p "$OUT/gpu" && cp "$RESULTS"/gpu.json "$RESULTS"/summary.md "$OUT/gpu/" 2>/dev/null
    tar -czf "$OUT/gpu/results.tar.gz" -C "$RESULTS" .
fi
exit $rc
