#!/usr/bin/env bash
# `make demo`: a local profile with one engine per core, brought up, benchmarked, and stopped.
# Results land in demo-results/: the JSON document, the PNG plot (the table is printed).
set -euo pipefail

# Its own IPython dir: `--force` below must never replace a "demo" profile of the user's.
export IPYTHONDIR="${DEMO_IPYTHONDIR:-$PWD/demo-results/ipython}"
OUT="${DEMO_OUT:-$PWD/demo-results}"
export COLUMNS="${COLUMNS:-160}"  # the results table is wide; make and CI have no terminal to measure
PROFILE=demo
ENGINES="$(python -c 'import os; print(os.cpu_count() or 1)')"
mkdir -p "$OUT"

ipcluster-kit init "$PROFILE" --preset local --engines "$ENGINES" --force
trap 'ipcluster-kit down "$PROFILE"' EXIT
ipcluster-kit up "$PROFILE" --timeout 120
ipcluster-kit status "$PROFILE"
ipcluster-kit bench all --profile "$PROFILE" --repeat 3 --warmup 1 --json "$OUT/bench.json" --plot "$OUT/bench.png"
echo "demo results: $OUT/bench.json, $OUT/bench.png"
