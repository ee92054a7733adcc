#!/usr/bin/env bash
# Relay fan-out benchmark: one publisher, N subscribers over raw QUIC on loopback against the
# engine (`clutchcall serve`), for N = 100, 500, 1000 (override with SUBSCRIBERS="..."). Prints a
# markdown table: egress Gbit/s, engine CPU seconds per Gbit delivered, per-object delay
# percentiles and lost objects.
#
# Env: SECONDS_PER_RUN (10), BITRATE (3000000), GROUP_MS (1000), FPS (30), SUBSCRIBERS,
# MAX_UDP_PAYLOAD (1452: internet-safe packets; e.g. 8952 for jumbo-frame networks).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
seconds="${SECONDS_PER_RUN:-10}"
bitrate="${BITRATE:-3000000}"
group_ms="${GROUP_MS:-1000}"
fps="${FPS:-30}"
subscribers="${SUBSCRIBERS:-100 500 1000}"
mtu="${MAX_UDP_PAYLOAD:-1452}"

cargo build --release -p clutchcall -p clutchcall-client >&2

data="$(mktemp -d)"
out="$data/engine.out"
target/release/clutchcall serve --public-prefix "" --data-dir "$data" --http 127.0.0.1:0 --relay 127.0.0.1:0 \
    --relay-max-udp-payload "$mtu" \
    >"$out" 2>"$data/engine.err" &
engine=$!
cleanup() { kill "$engine" 2>/dev/null || true; wait "$engine" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

# `clutchcall listening http=ADDR relay=ADDR[,ADDR...]`
for _ in $(seq 1 100); do
    grep -q '^clutchcall listening' "$out" 2>/dev/null && break
    kill -0 "$engine" 2>/dev/null || { cat "$data/engine.err" >&2; exit 1; }
    sleep 0.1
done
line="$(grep -m1 '^clutchcall listening' "$out")" || { echo "engine did not start" >&2; cat "$data/engine.err" >&2; exit 1; }
http="$(sed -E 's/.*http=([^ ]+).*/\1/' <<<"$line")"
relay="$(sed -E 's/.*relay=([^ ,]+).*/\1/' <<<"$line")"
echo "engine pid $engine http=$http relay=$relay" >&2

ticks="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$engine/stat"; }

echo "| subscribers | egress Gbit/s | relay CPU s per Gbit | p50 ms | p99 ms | lost |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in $subscribers; do
    before="$(cpu_ticks)"
    json="$(target/release/relay-fanout --relay "moqt://$relay" --http "http://$http" \
        --subscribers "$n" --seconds "$seconds" --bitrate "$bitrate" --group-ms "$group_ms" --fps "$fps" --max-udp-payload "$mtu")"
    after="$(cpu_ticks)"
    echo "$json" >&2
    python3 - "$json" "$before" "$after" "$ticks" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
gbit = r["bytes_received"] * 8 / 1e9
per = cpu / gbit if gbit > 0 else float("nan")
print(f'| {r["subscribers"]} | {r["egress_gbps"]:.3f} | {per:.2f} | {r["p50_ms"]:.1f} | {r["p99_ms"]:.1f} | {r["lost"]} |')
PY
done
