#!/usr/bin/env bash
# Control-plane benchmark: signed-URL mints per second per core, and REST API p50/p99 latency
# at a fixed 1,000 requests/s. Prints Markdown tables to stdout.
#
#   bench/control-plane/run.sh                 # in-process engine router (SQLite), release build
#   bench/control-plane/run.sh --engine        # start target/release/clutchcall serve and load it
#   URL=http://127.0.0.1:8080 CLUTCHCALL_CREDENTIALS=… CLUTCHCALL_ORG_ID=… bench/control-plane/run.sh
#
# Env: RATE (default 1000), SECONDS_LOAD (10), MINT_SECONDS (2).
# The mint figure is one core by construction (current-thread runtime). Targets: >= 20,000
# tokens/s per core, API p99 <= 5 ms.
set -euo pipefail
cd "$(dirname "$0")/../.."

RATE=${RATE:-1000}
SECONDS_LOAD=${SECONDS_LOAD:-10}
MINT_SECONDS=${MINT_SECONDS:-2}

cargo build --release -q -p clutchcall-api --example bench_control_plane
BENCH=target/release/examples/bench_control_plane
args=(--rate "$RATE" --seconds "$SECONDS_LOAD" --mint-seconds "$MINT_SECONDS")

if [[ "${1:-}" == "--engine" ]]; then
  cargo build --release -q -p clutchcall
  data=$(mktemp -d)
  port=${PORT:-18080}
  target/release/clutchcall serve --data-dir "$data" --http "127.0.0.1:$port" >"$data/engine.log" 2>&1 &
  engine=$!
  trap 'kill "$engine" 2>/dev/null || true; rm -rf "$data"' EXIT
  for _ in $(seq 100); do [[ -f "$data/credentials" ]] && break; sleep 0.1; done
  set -a; . "$data/credentials"; set +a
  URL="http://127.0.0.1:$port"
fi

if [[ -n "${URL:-}" ]]; then
  args+=(--url "$URL")
fi
"$BENCH" "${args[@]}"
