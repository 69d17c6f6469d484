#!/usr/bin/env bash
# The five-minute tour on the bundled tickets: inspect a real IMP ticket of CIFAR ResNet-20 (59% sparse,
# 86.6% top-1), stretch it to ResNet-56, inspect the result, make the matched-sparsity random baseline,
# and render the model card a push would write for the 79% ticket.
set -euo pipefail
cd "$(dirname "$0")/.."
ticket=".venv/bin/ticket"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== ticket info (header only) =="
$ticket info examples/cifar_resnet20-imp-59.ticket --no-layers

echo "== ticket convert: ResNet-20 -> ResNet-56 (interpolate) =="
$ticket convert --from examples/cifar_resnet20-imp-59.ticket --to cifar_resnet56 -o "$out/r56.ticket"

echo "== the converted ticket =="
$ticket info "$out/r56.ticket" --no-layers

echo "== baseline: random masks with the converted ticket's per-layer density =="
$ticket new cifar_resnet56 -o "$out/r56-dense.ticket" --seed 1
$ticket prune "$out/r56-dense.ticket" --method random --like "$out/r56.ticket" -o "$out/r56-random.ticket"
$ticket info "$out/r56-random.ticket" --json | .venv/bin/python -c "import json,sys; d=json.load(sys.stdin); print(f\"random baseline: {d['arch']['id']} at {d['sparsity']:.2%} sparsity\")"

echo "== the model card of the 79% ticket (its results section) =="
$ticket card examples/cifar_resnet20-imp-79.ticket --repo-id you/cifar_resnet20-imp-79 | sed -n '/^## Results/,/^## [^R]/p' | sed '$d'
