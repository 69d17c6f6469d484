# Sourced by bench/gpu.sh and bench/gpu_bundle.sh: the repository root as the working folder, $PY, ticketfmt
# importable, unbuffered output, and one line saying which torch and device the run has.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import ticketfmt.converters, ticketfmt.cards" 2>/dev/null; then
    # a bare machine (its python3 holds torch, safetensors, timm, matplotlib): install the checkout itself,
    # offline and without dependencies; where site-packages is read-only, into a folder on PYTHONPATH
    "$PY" -m pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null \
        || { "$PY" -m pip install --quiet --no-deps --no-build-isolation --target /tmp/ticketfmt-site . \
             && export PYTHONPATH=/tmp/ticketfmt-site${PYTHONPATH:+:$PYTHONPATH}; } \
        || echo "could not install ticketfmt" >&2
fi
export PYTHONUNBUFFERED=1
"$PY" -c "import torch; c = torch.cuda.is_available(); print('torch', torch.__version__, 'cuda', c,
torch.cuda.get_device_name(0) if c else '')"
