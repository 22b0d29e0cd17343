#!/usr/bin/env bash
# Load benchmark of the gateway's overhead: the same 1 KB chat prompt at a fixed request rate
# (hey, Debian package `hey`) against
#   (a) a fast fake OpenAI upstream directly (crates/parapet-gateway/examples/fake_upstream.rs),
#   (b) `parapet serve` in front of it (API key, default policy, every built-in detector on,
#       audit log on),
#   (c) LiteLLM proxy in front of it, when `litellm` is installed (LITELLM=/path/to/litellm),
# in one run, and prints p50/p99 per target and the overhead over (a).
#
#   apt-get install -y hey
#   scripts/bench-gateway.sh                 # RATE=100 DURATION=15s CONNS=2 by default
#   LITELLM=/tmp/litellm-venv/bin/litellm scripts/bench-gateway.sh
#
# Everything runs on loopback on the same machine; on a 2-core machine the load generator,
# the gateway and the upstream share the cores (say so next to the numbers).
set -euo pipefail

RATE=${RATE:-100}          # requests per second in total
DURATION=${DURATION:-15s}  # per target
CONNS=${CONNS:-2}          # concurrent connections (hey workers); each gets RATE/CONNS per s
ROUNDS=${ROUNDS:-2}        # direct/gateway alternate this many times (medians over rounds)
UP_PORT=${UP_PORT:-18081}
GW_PORT=${GW_PORT:-18080}
LL_PORT=${LL_PORT:-18082}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/parapet-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v hey >/dev/null || { echo "hey not found: apt-get install -y hey" >&2; exit 2; }
cd "$ROOT"
# GATEWAY=cli: `parapet serve` (logs one line per request); GATEWAY=example (default): the
# same library path from crates/parapet-gateway/examples/serve.rs, which builds without the
# CLI's other crates and logs nothing per request.
GATEWAY=${GATEWAY:-example}
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release -q -p parapet-gateway --example fake_upstream --example serve
  if [ "$GATEWAY" = cli ]; then cargo build --release -q -p parapet-cli --bin parapet; fi
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FAKE=$TARGET_DIR/release/examples/fake_upstream
if [ "$GATEWAY" = cli ]; then SERVE=("$TARGET_DIR/release/parapet" serve --config)
else SERVE=("$TARGET_DIR/release/examples/serve"); fi

wait_port() { # host:port
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listening on $1" >&2; return 1
}

"$FAKE" "127.0.0.1:$UP_PORT" 2>"$WORK/fake.log" & PIDS+=($!)
wait_port "127.0.0.1:$UP_PORT"

KEY="sk-bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
HASH="sha256:$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)"   # = parapet serve --hash-key
cat >"$WORK/gateway.toml" <<EOF
listen = "127.0.0.1:$GW_PORT"
[auth]
[[auth.keys]]
id = "bench"
hash = "$HASH"
[[upstreams]]
name = "fake"
base_url = "http://127.0.0.1:$UP_PORT/v1"
[[models]]
name = "bench"
upstream = "fake"
[audit]
path = "audit.db"
EOF
"${SERVE[@]}" "$WORK/gateway.toml" 2>"$WORK/gateway.log" & PIDS+=($!)
wait_port "127.0.0.1:$GW_PORT"

# 1 KB of ordinary English as one user message
python3 - "$WORK/body.json" <<'EOF'
import json, sys
s = ("Please summarise the quarterly report for the operations team, focusing on delivery "
     "times, staffing and the open questions from last week's review meeting. ")
prompt = (s * (1024 // len(s) + 1))[:1024]
json.dump({"model": "bench", "messages": [{"role": "user", "content": prompt}]}, open(sys.argv[1], "w"))
EOF

TARGETS=("direct http://127.0.0.1:$UP_PORT/v1/chat/completions"
         "parapet http://127.0.0.1:$GW_PORT/v1/chat/completions")
if [ -n "${LITELLM:-}" ] && [ -x "$LITELLM" ]; then
  cat >"$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$UP_PORT/v1
      api_key: unused
EOF
  (cd "$WORK" && "$LITELLM" --config litellm.yaml --host 127.0.0.1 --port "$LL_PORT" >litellm.log 2>&1) & PIDS+=($!)
  wait_port "127.0.0.1:$LL_PORT" || true
  sleep 3
  TARGETS+=("litellm http://127.0.0.1:$LL_PORT/v1/chat/completions")
fi

per_conn=$(( RATE / CONNS ))
run() { # name url round
  local name=$1 url=$2 out="$WORK/$1.$3.txt"
  # warm up (connections, caches), then the measured run at the fixed rate
  hey -n 50 -c "$CONNS" -m POST -T application/json -H "Authorization: Bearer $KEY" \
      -D "$WORK/body.json" "$url" >/dev/null
  hey -z "$DURATION" -c "$CONNS" -q "$per_conn" -m POST -T application/json \
      -H "Authorization: Bearer $KEY" -D "$WORK/body.json" "$url" >"$out"
  local p50 p99 rps ok
  p50=$(awk '/ 50% in/ {print $3*1000}' "$out")
  p99=$(awk '/ 99% in/ {print $3*1000}' "$out")
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  ok=$(awk '/\[200\]/ {print $2}' "$out")
  echo "$name $3 $p50 $p99 $rps ${ok:-0}" | tee -a "$WORK/results.txt"
}

echo "target round p50_ms p99_ms req_per_s responses_200"
for r in $(seq 1 "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do run ${t% *} ${t#* } "$r"; done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rate ${RATE}/s over $CONNS connections, $DURATION per target, $ROUNDS rounds, 1 KB prompt"
python3 - "$WORK/results.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, _, p50, p99, *_ in rows:
    by.setdefault(name, ([], []))
    by[name][0].append(float(p50)); by[name][1].append(float(p99))
med = {n: (statistics.median(a), statistics.median(b)) for n, (a, b) in by.items()}
d50, d99 = med["direct"]
print(f"{'target':8} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'p50 ratio':>9}")
for n, (p50, p99) in med.items():
    print(f"{n:8} {p50:8.3f} {p99:8.3f} {p50-d50:8.3f} {p99-d99:8.3f} {p50/d50:9.2f}")
if "litellm" in med and "parapet" in med:
    g, l = med["parapet"], med["litellm"]
    print(f"overhead ratio litellm/parapet: p50 {(l[0]-d50)/max(g[0]-d50,1e-3):.1f}x, p99 {(l[1]-d99)/max(g[1]-d99,1e-3):.1f}x")
EOF
