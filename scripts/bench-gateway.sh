#!/usr/bin/env bash
# Load benchmark of the gateway's overhead: the same 1 KB chat prompt at a fixed request rate
# (hey, Debian package `hey`) against
#   (a) direct:     a fast fake OpenAI upstream (crates/parapet-gateway/examples/fake_upstream.rs),
#   (b) parapet:    the gateway in front of it (API key, default policy, every built-in
#                   detector on, audit log on),
#   (c) litellm:    LiteLLM proxy in front of it (LITELLM=/path/to/litellm): master key, routing
#                   to the same upstream as an OpenAI-compatible provider, no guardrails, no
#                   database, one uvicorn worker (one process, one event loop), logs at WARNING,
#   (d) tensorzero: TensorZero's Rust gateway from the PyPI `tensorzero` wheel in front of it
#                   (TENSORZERO=/path/to/python with `tensorzero` installed): routing only, no
#                   auth (TensorZero's API keys need Postgres), observability off (no ClickHouse),
# in one run, and prints p50/p99 per target and the overhead over (a).
#
#   apt-get install -y hey
#   scripts/bench-gateway.sh                 # RATE=100 DURATION=15s CONNS=2 by default
#   python3 -m venv /work/venv-litellm && /work/venv-litellm/bin/pip install 'litellm[proxy]==1.55.10'
#   LITELLM=/work/venv-litellm/bin/litellm scripts/bench-gateway.sh
#   python3 -m venv /tmp/tz-venv && /tmp/tz-venv/bin/pip install 'tensorzero==2026.6.0'
#   TENSORZERO=/tmp/tz-venv/bin/python scripts/bench-gateway.sh
#
# LiteLLM is pinned to 1.55.10: the `proxy` extra of newer releases depends on the separate
# `litellm-proxy` package, which the package index this project reaches does not carry (pip then
# backtracks through dozens of 40 MB wheels and times out). Both can be combined in one run.
#
# KEEP_WORK=1 keeps the temporary folder (configs, server logs, hey's full reports).
#
# Everything runs on loopback on the same machine; on a 2-core machine the load generator,
# the gateways and the upstream share the cores (say so next to the numbers).
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
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
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
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)   # after the build, before the servers start
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FAKE=$TARGET_DIR/release/examples/fake_upstream
if [ "$GATEWAY" = cli ]; then SERVE=("$TARGET_DIR/release/parapet" serve --config)
else SERVE=("$TARGET_DIR/release/examples/serve"); fi

port_free() { # port: fail if something (e.g. a server left from an earlier run) listens there
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "port $1 is already in use: stop what listens there or pick another port" >&2; return 1
  fi
}
wait_port() { # host:port [tries of 50 ms, default 200]
  for _ in $(seq 1 "${2:-200}"); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listening on $1" >&2; return 1
}

port_free "$UP_PORT"
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
port_free "$GW_PORT"
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
if [ -n "${LITELLM:-}" ]; then
  [ -x "$LITELLM" ] || { echo "LITELLM=$LITELLM is not an executable" >&2; exit 2; }
  # Same model name, same upstream as an OpenAI-compatible provider; the master key is the
  # bench key (LiteLLM checks it on every request; without a database it is the only key).
  port_free "$LL_PORT"
  cat >"$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$UP_PORT/v1
      api_key: unused
general_settings:
  master_key: $KEY
litellm_settings:
  set_verbose: false
EOF
  # uvicorn's access log (one line per request) and LiteLLM's INFO logs off: WARNING and up only
  cat >"$WORK/litellm-log.json" <<'EOF'
{"version": 1, "disable_existing_loggers": false,
 "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
 "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
 "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": false},
             "uvicorn.error": {"level": "WARNING"},
             "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": false}}}
EOF
  # LITELLM_LOCAL_MODEL_COST_MAP: use the bundled price list instead of fetching it at start.
  # No DATABASE_URL: no spend logs, no key table. --num_workers 1 is the default (one process).
  (cd "$WORK" && exec env -u DATABASE_URL LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
     "$LITELLM" --config litellm.yaml --host 127.0.0.1 --port "$LL_PORT" --num_workers 1 \
     --telemetry False --log_config litellm-log.json >litellm.log 2>&1) & PIDS+=($!)
  wait_port "127.0.0.1:$LL_PORT" 1200   # LiteLLM imports for 5-20 s on a loaded machine
  TARGETS+=("litellm http://127.0.0.1:$LL_PORT/v1/chat/completions")
fi
if [ -n "${TENSORZERO:-}" ]; then
  [ -x "$TENSORZERO" ] || { echo "TENSORZERO=$TENSORZERO is not an executable" >&2; exit 2; }
  cat >"$WORK/tensorzero.toml" <<EOF
[models.bench]
routing = ["fake"]

[models.bench.providers.fake]
type = "openai"
model_name = "bench"
api_base = "http://127.0.0.1:$UP_PORT/v1/"
api_key_location = "none"

[gateway.observability]
enabled = false
EOF
  RUST_LOG=warn "$TENSORZERO" "$ROOT/scripts/bench-gateway/tensorzero_gateway.py" \
    "$WORK/tensorzero.toml" "$WORK/tensorzero.url" >"$WORK/tensorzero.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 1 600); do [ -s "$WORK/tensorzero.url" ] && break; sleep 0.05; done
  [ -s "$WORK/tensorzero.url" ] || { cat "$WORK/tensorzero.log" >&2; exit 1; }
  TARGETS+=("tensorzero $(cat "$WORK/tensorzero.url")/chat/completions")
  # TensorZero's OpenAI-compatible route names models as tensorzero::model_name::NAME
  sed 's/"model": "bench"/"model": "tensorzero::model_name::bench"/' "$WORK/body.json" \
    >"$WORK/body.tensorzero.json"
fi

per_conn=$(( RATE / CONNS ))
run() { # name url round
  local name=$1 url=$2 out="$WORK/$1.$3.txt" body="$WORK/body.json"
  [ -f "$WORK/body.$1.json" ] && body="$WORK/body.$1.json"
  # warm up (connections, caches), then the measured run at the fixed rate
  hey -n 50 -c "$CONNS" -m POST -T application/json -H "Authorization: Bearer $KEY" \
      -D "$body" "$url" >/dev/null
  hey -z "$DURATION" -c "$CONNS" -q "$per_conn" -m POST -T application/json \
      -H "Authorization: Bearer $KEY" -D "$body" "$url" >"$out"
  local p50 p99 rps ok failed
  p50=$(awk '/ 50% in/ {print $3*1000}' "$out")
  p99=$(awk '/ 99% in/ {print $3*1000}' "$out")
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  ok=$(awk '/\[200\][[:space:]]+[0-9]+ responses/ {print $2}' "$out")
  # other status codes, plus transport errors (hey's "Error distribution": "[count]\t...")
  failed=$(awk '/^Error distribution/ {e=1} /\[[0-9]+\][[:space:]]+[0-9]+ responses/ && !/\[200\]/ {n+=$2}
                e && /^[[:space:]]+\[[0-9]+\]/ {gsub(/[][]/, "", $1); n+=$1} END {print n+0}' "$out")
  echo "$name $3 ${p50:-nan} ${p99:-nan} ${rps:-0} ${ok:-0} $failed" | tee -a "$WORK/results.txt"
}

echo "target round p50_ms p99_ms req_per_s responses_200 failed"
for r in $(seq 1 "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do run ${t% *} ${t#* } "$r"; done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rate ${RATE}/s over $CONNS connections, $DURATION per target, $ROUNDS rounds, 1 KB prompt"
python3 - "$WORK/results.txt" "$RATE" <<'EOF'
import math, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, _, p50, p99, rps, ok, failed in rows:
    r = by.setdefault(name, {"p50": [], "p99": [], "rps": [], "ok": 0, "failed": 0})
    r["p50"].append(float(p50)); r["p99"].append(float(p99)); r["rps"].append(float(rps))
    r["ok"] += int(ok); r["failed"] += int(failed)
med = {n: {k: statistics.median(v[k]) for k in ("p50", "p99", "rps")} | {"ok": v["ok"], "failed": v["failed"]}
       for n, v in by.items()}
d50, d99 = med["direct"]["p50"], med["direct"]["p99"]
print(f"{'target':10} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'p50 ratio':>9} {'p99 ratio':>9} {'req/s':>7} {'ok':>6} {'failed':>6}")
for n, m in med.items():
    p50, p99 = m["p50"], m["p99"]
    print(f"{n:10} {p50:8.3f} {p99:8.3f} {p50-d50:8.3f} {p99-d99:8.3f} {p50/d50:9.2f} {p99/d99:9.2f} "
          f"{m['rps']:7.1f} {m['ok']:6d} {m['failed']:6d}")
for n, m in med.items():
    if m["rps"] < 0.9 * float(sys.argv[2]):
        print(f"{n}: {m['rps']:.1f} req/s, below the {sys.argv[2]}/s asked: hey's workers wait for each "
              "answer (closed loop), so a slow target gets fewer requests, not a queue")
if "parapet" in med:
    g = med["parapet"]
    for other in ("litellm", "tensorzero"):
        if other in med and not math.isnan(med[other]["p50"]):
            o = med[other]
            def over(q, d):  # overhead ratio; n/a when parapet's own overhead is under 0.1 ms (noise)
                go, oo = g[q] - d, o[q] - d
                return f"{oo/go:.1f}x" if go >= 0.1 else "n/a (parapet +<0.1 ms)"
            print(f"{other}/parapet: latency p50 {o['p50']/g['p50']:.2f}x, p99 {o['p99']/g['p99']:.2f}x; "
                  f"overhead p50 {over('p50', d50)}, p99 {over('p99', d99)}")
EOF
