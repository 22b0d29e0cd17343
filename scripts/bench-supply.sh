#!/usr/bin/env bash
# Benchmark: parapet (library scan, release build) vs picklescan vs modelscan (PyPI) on the
# same generated corpus in the same run. Results go to stdout (markdown); see
# BENCHMARKS.md ("Model scanner vs picklescan and modelscan") for a recorded run.
#   scripts/bench-supply.sh [RUNS] [BIG_MB]
# Env: VENV (default /tmp/parapet-bench-venv), CORPUS (default target/bench-supply-corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BIG_MB=${2:-100}
VENV=${VENV:-/tmp/parapet-bench-venv}
CORPUS=${CORPUS:-target/bench-supply-corpus}
if [ ! -x "$VENV/bin/modelscan" ] || [ ! -x "$VENV/bin/picklescan" ]; then
  python3 -m venv "$VENV"
  # numpy<2: modelscan 0.8.8 calls numpy.lib.format._check_version, gone in NumPy 2.x
  "$VENV/bin/pip" install -q picklescan "modelscan[h5py]" "numpy<2" joblib
fi
echo "picklescan $("$VENV/bin/pip" show picklescan | sed -n 's/^Version: //p'), modelscan $("$VENV/bin/pip" show modelscan | sed -n 's/^Version: //p')"
# The same library call as `parapet model scan --format json` (see the example's doc).
cargo build --release -q -p parapet-supply --example scan
BIN=target/release/examples/scan
rm -rf "$CORPUS" "$CORPUS-big"
"$VENV/bin/python" scripts/bench-supply/gen_corpus.py "$CORPUS"
"$VENV/bin/python" scripts/bench-supply/gen_corpus.py "$CORPUS-big" --big "$BIG_MB" >/dev/null
mkdir -p "$CORPUS-big-only"
mv "$CORPUS-big"/b_big* "$CORPUS-big-only"/ && rm -rf "$CORPUS-big"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$VENV/bin/python" scripts/bench-supply/run.py "$CORPUS" "$BIN" "$VENV/bin" "$RUNS" "$CORPUS-big-only"
