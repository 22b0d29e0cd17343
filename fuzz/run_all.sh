#!/usr/bin/env bash
# Runs every cargo-fuzz target in turn for SECS seconds each (default 90) and prints one
# summary line per target: seconds, executions, corpus entries, exit status.
# Usage (repository root): fuzz/run_all.sh [SECS] [TARGET...]
# Needs cargo-fuzz; on a stable toolchain set RUSTC_BOOTSTRAP=1 (sanitizer flags are nightly-only).
set -u
secs=${1:-90}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  start=$(date +%s)
  cargo fuzz run "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -report_slow_units=2 \
    -print_final_stats=1 >"fuzz/logs/$t.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "fuzz/logs/$t.log" | tail -1 | awk '{print $2}')
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  echo "$t secs=$took execs=${execs:-?} corpus=$corpus rc=$rc"
done
