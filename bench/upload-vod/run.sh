#!/usr/bin/env bash
# Upload throughput (clutchcall's tus endpoint vs @tus/server, same clients, same run, loopback,
# local disk) and packaging time (10-minute 1080p H.264/AAC remux; transcode realtime factor).
# Usage: bench/upload-vod/run.sh [upload MiB, default 1024] [repeats, default 3]
# Env: UPLOAD_ONLY=1 (skip packaging), PERF=<file> (perf record -g the engine during uploads),
# CLIENTS="curl node" (upload clients, each used against both servers).
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
root=$(cd ../.. && pwd)
mib=${1:-1024}
reps=${2:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
npm ci --silent --no-audit --no-fund
(cd "$root" && cargo build --release -q -p clutchcall --bin clutchcall -p clutchcall-vod --example package)
bin="$root/target/release/clutchcall"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

head -c "$((mib << 20))" /dev/urandom > "$work/blob"

# Both servers: loopback, the same client, the same 64 MiB PATCHes of the same bytes, the same
# disk ($work), runs interleaved. Two clients (CLIENTS="curl node" by default; each server is
# measured with both): `curl` (upload-curl.sh: one curl process, all PATCHes on one
# connection, each streamed from a 64 MiB chunk file of the blob with -T; the cheapest client
# at hand, ~0.1 CPU-s per 512 MiB) and `node` (upload.mjs: Node's http client piping
# createReadStream ranges of the blob; ~0.3 CPU-s per 512 MiB). Before each run: `sync`, so
# neither server inherits the other's dirty pages as writeback (@tus/server's FileStore never
# fsyncs; clutchcall fsyncs each PATCH before acknowledging it). After each clutchcall run the
# engine's packaging job (ffprobe rejects the random bytes: not_media) is waited for, so it
# never runs during the next upload.
# PERF=<file>: `perf record -g` the engine during its uploads (report: perf report -i <file>).
clients=${CLIENTS:-sendfile curl node}
mkdir -p "$work/chunks"
(cd "$work/chunks" && split -b 64M -d -a 4 "$work/blob" c)
port=$(free_port); rport=$(free_port)
CLUTCHCALL_LOG=warn CLUTCHCALL_RTMP=127.0.0.1:0 "$bin" serve --data-dir "$work/cc" --http "127.0.0.1:$port" --relay "127.0.0.1:$rport" > "$work/cc.log" 2>&1 &
ccpid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
key=$(sed -n 's/^CLUTCHCALL_CREDENTIALS=//p' "$work/cc/credentials")
org=$(sed -n 's/^CLUTCHCALL_ORG_ID=//p' "$work/cc/credentials")
# @tus/server
tport=$(free_port)
mkdir -p "$work/tusd"
node "$here/tus-server.mjs" "$tport" "$work/tusd" > "$work/tus.log" 2>&1 &
tuspid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$tport/files" && break; sleep 0.1; done
if [ -n "${PERF:-}" ]; then
  perf record -g -F 999 -p "$ccpid" -o "$PERF" 2>"$work/perf.log" & perfpid=$!
  sleep 1
fi
settle() { # wait (≤ 60 s) until no asset is uploading/processing
  for _ in $(seq 600); do
    curl -sf -H "authorization: Bearer $key" "http://127.0.0.1:$port/v1/orgs/$org/assets?limit=100" \
      | grep -q '"status":"\(processing\|uploading\)"' || return 0
    sleep 0.1
  done
}
mbps() { sed -n 's/.*"mbps":\([0-9.]*\).*/\1/p'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
upload() { # <client> <creation endpoint> [authorization]
  case $1 in
    sendfile) python3 "$here/upload-sendfile.py" "$2" "$work/blob" 64 ${3:+"$3"} ;;
    curl) "$here/upload-curl.sh" "$2" "$work/chunks" ${3:+"$3"} ;;
    node) node "$here/upload.mjs" "$2" "$work/blob" 64 ${3:+"$3"} ;;
  esac
}
tck=$(getconf CLK_TCK)

echo "== upload ${mib} MiB, 64 MiB PATCHes, ${reps} runs per client and server (interleaved; clients: $clients)"
for c in $clients; do : > "$work/cc.$c"; : > "$work/tus.$c"; done
for i in $(seq "$reps"); do
  for c in $clients; do
    sync
    c0=$(cpu "$ccpid")
    r=$(upload "$c" "http://127.0.0.1:$port/v1/uploads" "Bearer $key")
    c1=$(cpu "$ccpid")
    echo "$c -> clutchcall $r server_cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$tck" 'BEGIN {printf "%.2f", (b-a)/t}')"
    echo "$r" | mbps >> "$work/cc.$c"
    settle
    rm -rf "$work/cc/uploads/"* "$work/cc/objects/uploads" 2>/dev/null || true
    sync
    c0=$(cpu "$tuspid")
    r=$(upload "$c" "http://127.0.0.1:$tport/files")
    c1=$(cpu "$tuspid")
    echo "$c -> tus-server $r server_cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$tck" 'BEGIN {printf "%.2f", (b-a)/t}')"
    echo "$r" | mbps >> "$work/tus.$c"
    rm -rf "$work/tusd/"* 2>/dev/null || true
  done
done
if [ -n "${PERF:-}" ]; then kill -INT "$perfpid"; wait "$perfpid" || true; fi
for c in $clients; do
  cc_med=$(median < "$work/cc.$c"); tus_med=$(median < "$work/tus.$c")
  echo "$c client: median MB/s clutchcall $cc_med, tus-server $tus_med, ratio $(awk -v a="$cc_med" -v b="$tus_med" 'BEGIN {printf "%.2f", a/b}')x"
done
rm -rf "$work/chunks"
rm -f "$work/blob"
[ -n "${UPLOAD_ONLY:-}" ] && exit 0

echo "== packaging: 10-minute 1080p25 H.264/AAC (1-minute clip encoded once, concatenated x10)"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=25:duration=60 \
  -f lavfi -i sine=frequency=440:sample_rate=48000:duration=60 -c:v libx264 -preset ultrafast -g 50 \
  -b:v 6M -pix_fmt yuv420p -c:a aac -b:a 128k "$work/clip.mp4"
for _ in $(seq 10); do echo "file '$work/clip.mp4'"; done > "$work/list.txt"
ffmpeg -hide_banner -loglevel error -y -f concat -safe 0 -i "$work/list.txt" -c copy "$work/ten.mp4"
for i in $(seq "$reps"); do
  rm -rf "$work/pkg"; echo "remux $("$root/target/release/examples/package" "$work/ten.mp4" "$work/pkg")"
done
echo "== transcode path: 60 s 1080p25 MPEG-4 Part 2 + MP2 → H.264/AAC (veryfast)"
ffmpeg -hide_banner -loglevel error -y -i "$work/clip.mp4" -c:v mpeg4 -q:v 4 -c:a mp2 "$work/clip.mkv"
rm -rf "$work/pkg"; echo "transcode $("$root/target/release/examples/package" "$work/clip.mkv" "$work/pkg")"
