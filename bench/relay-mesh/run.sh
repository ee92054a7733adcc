#!/usr/bin/env bash
# Relay mesh benchmark: what an origin pays when viewers watch at edges instead of at the
# origin itself. Starts three release engines on loopback: an origin and two edges
# (`serve --origin`). For each N (SUBSCRIBERS, default "100 300"), one publisher at the origin
# and N subscribers over raw QUIC, run twice:
#   single: all N subscribers at the origin;
#   mesh:   the N subscribers spread over the two edges (each edge subscribes upstream once).
# Prints a markdown table: egress to subscribers, CPU seconds of the origin and of the edges,
# upstream subscriptions the origin served, per-object delay (publisher send → subscriber
# receive) and lost objects. The load generator is `relay-fanout` (rs/client/src/bin).
#
# Env: SECONDS_PER_RUN (10), BITRATE (3000000), GROUP_MS (1000), FPS (30), SUBSCRIBERS.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
seconds="${SECONDS_PER_RUN:-10}"
bitrate="${BITRATE:-3000000}"
group_ms="${GROUP_MS:-1000}"
fps="${FPS:-30}"
subscribers="${SUBSCRIBERS:-100 300}"

cargo build --release -p clutchcall -p clutchcall-client >&2

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: run an engine, wait for its `clutchcall listening` line; sets
# ${NAME}_pid, ${NAME}_http, ${NAME}_relay.
start() {
    local name="$1"; shift
    mkdir -p "$work/$name"
    target/release/clutchcall serve --data-dir "$work/$name" --http 127.0.0.1:0 --relay 127.0.0.1:0 \
        --rtmp 127.0.0.1:0 --public-prefix "" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 100); do
        grep -q '^clutchcall listening' "$work/$name.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; exit 1; }
        sleep 0.1
    done
    local line
    line="$(grep -m1 '^clutchcall listening' "$work/$name.out")" || { echo "$name did not start" >&2; exit 1; }
    printf -v "${name}_pid" '%s' "$pid"
    printf -v "${name}_http" '%s' "$(sed -E 's/.*http=([^ ]+).*/\1/' <<<"$line")"
    printf -v "${name}_relay" '%s' "$(sed -E 's/.*relay=([^ ,]+).*/\1/' <<<"$line")"
}

start origin
start edge1 --origin "moqt://$origin_relay" --origin-http "http://$origin_http" --origin-prefix bench
start edge2 --origin "moqt://$origin_relay" --origin-http "http://$origin_http" --origin-prefix bench
echo "origin http=$origin_http relay=$origin_relay; edges $edge1_relay $edge2_relay" >&2

ticks="$(getconf CLK_TCK)"
cpu() { awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
subscribes() {
    curl -s "http://$origin_http/metrics" | awk '/^relay_requests_total\{type="SUBSCRIBE"\}/ { print $2; f=1 } END { if (!f) print 0 }'
}

echo "| subscribers | layout | egress Gbit/s | origin CPU s | edges CPU s | upstream subscriptions at origin | p50 ms | p99 ms | lost |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
for n in $subscribers; do
    for layout in single mesh; do
        if [ "$layout" = single ]; then
            at=()
        else
            at=(--subscribe-at "moqt://$edge1_relay" --subscribe-at "moqt://$edge2_relay"
                --pin-http "http://$edge1_http" --pin-http "http://$edge2_http")
        fi
        o0="$(cpu "$origin_pid")"; e10="$(cpu "$edge1_pid")"; e20="$(cpu "$edge2_pid")"; s0="$(subscribes)"
        json="$(target/release/relay-fanout --relay "moqt://$origin_relay" --http "http://$origin_http" "${at[@]}" \
            --subscribers "$n" --seconds "$seconds" --bitrate "$bitrate" --group-ms "$group_ms" --fps "$fps")"
        o1="$(cpu "$origin_pid")"; e11="$(cpu "$edge1_pid")"; e21="$(cpu "$edge2_pid")"; s1="$(subscribes)"
        echo "$json" >&2
        python3 - "$json" "$n" "$layout" "$o0" "$o1" "$e10" "$e11" "$e20" "$e21" "$s0" "$s1" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
n, layout = sys.argv[2], sys.argv[3]
o0, o1, e10, e11, e20, e21, s0, s1 = map(float, sys.argv[4:12])
origin = o1 - o0
edges = (e11 - e10) + (e21 - e20)
subs = int(s1 - s0)
print(f'| {n} | {layout} | {r["egress_gbps"]:.3f} | {origin:.2f} | {edges:.2f} | {subs} | {r["p50_ms"]:.1f} | {r["p99_ms"]:.1f} | {r["lost"]} |')
PY
    done
done
