#!/usr/bin/env bash
# The GPU check in one go on a lent GPU host (docs/benchmarks.md, GPU section), from the repository root:
#
#   bash bench/gpu_check.sh                   # every section; lines in $OUT/gpu_check.jsonl (var/ without $OUT)
#   bash bench/gpu_check.sh --sections b,c    # any of bench/gpu_check.py's options
#
# The host's image has torch, transformers, peft and accelerate but not trl or datasets, and an older transformers
# than training/scripts needs: the wheels in .whl/ (downloaded here beforehand, the list in docs/benchmarks.md) are
# installed into /tmp/site and put first on PYTHONPATH, which the training processes inherit.
set -u
cd "$(dirname "$0")/.." || exit 1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || { echo "gpu_check.sh: installing the wheels in .whl/ failed (above)" >&2; exit 1; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "gpu_check.sh: no wheels in .whl/; section a needs trl and datasets (docs/benchmarks.md lists the wheels)" >&2
fi
out="${OUT:-var}"
mkdir -p "$out"
PYTHONUNBUFFERED=1 exec python3 bench/gpu_check.py --out "$out/gpu_check.jsonl" "$@"
