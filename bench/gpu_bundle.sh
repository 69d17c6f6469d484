#!/usr/bin/env bash
# One device run that makes the real example tickets (issue 12, item 3):
#     bash bench/gpu_bundle.sh [more bench/bundle.py options]
#
# Runs bench/bundle.py on the GPU (device auto): CIFAR ResNet-20 IMP, the reference recipe at 40 epochs (x0.1 at
# 20/30, rewind 250 it), rate 0.2 x 7 levels, examples at levels 4 and 7 (59.0% / 79.0%), refused below 85% top-1,
# with --resume and a time limit of BUNDLE_MINUTES (default 8) under a hard timeout of BUNDLE_TIMEOUT_S (default 560).
# About 15.8M training images: ~22 GPU minutes at the 12,000 images/s an H200 trained at (2026-12-04), so expect
# three runs (the run folder continues from its checkpoint).
# Writes examples/cifar_resnet20-imp-{59,79}.ticket and bench/results/bundle/results.json; when the device runner
# sets $OUT, copies them to $OUT/examples and $OUT/bundle, and the IMP run folder (checkpoint, level tickets) to
# $OUT/bundle-work/work.tar.gz. Exit 3: the time limit stopped the run: unpack it at bench/work/bundle and run
# again carrying it (carry: bench/work/bundle, bench/work/data); it continues from the checkpoint. BUNDLE_EXAMPLES,
# BUNDLE_RESULTS, BUNDLE_WORK: other folders (a smoke run).
# Data: cifar10-jpeg.tar.gz in $TICKETFMT_DATA, ../shared/data or bench/work/data (a git-ignored folder that can
# travel to the device: mkdir -p bench/work/data && cp ../shared/data/cifar10-jpeg.tar.gz bench/work/data/).
set -u
source "$(dirname "$0")/gpu_env.sh"
DATA=""
for d in "${TICKETFMT_DATA:-}" ../shared/data bench/work/data; do
    if [ -n "$d" ] && [ -f "$d/cifar10-jpeg.tar.gz" ]; then DATA=$d; break; fi
done
[ -n "$DATA" ] || { echo "cifar10-jpeg.tar.gz not in TICKETFMT_DATA, ../shared/data or bench/work/data" >&2; exit 2; }
EX=${BUNDLE_EXAMPLES:-examples}; RES=${BUNDLE_RESULTS:-bench/results/bundle}; WORK=${BUNDLE_WORK:-bench/work/bundle}
timeout -s INT -k 20 "${BUNDLE_TIMEOUT_S:-560}" "$PY" bench/bundle.py --resume --time-limit "${BUNDLE_MINUTES:-8}" \
    --data-dir "$DATA" --work "$WORK" --examples "$EX" --results "$RES" "$@"
rc=$?
echo "bench/bundle.py exit $rc (0 examples written, 2 refused, 3 time limit: run again with the run folder)" >&2
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/examples"
    cp "$EX"/*-imp-*.ticket "$OUT/examples/" 2>/dev/null
    [ -d "$RES" ] && cp -r "$RES" "$OUT/bundle"
    # the run folder nests deeper than the 2 folders the device returns: one archive
    [ -d "$WORK" ] && mkdir -p "$OUT/bundle-work" && tar -czf "$OUT/bundle-work/work.tar.gz" -C "$WORK" .
fi
exit $rc
