#!/usr/bin/env bash
# One tus upload over loopback with curl (the cheaper client): POST (creation, Upload-Length),
# then one curl process sends every PATCH on one kept-alive connection, each streamed from its
# chunk file (`-T`: read() + send(), 64 KiB at a time; the chunk files are in the page cache).
# Prints {"mbps": MB/s, "seconds", "bytes"}; the clock runs from the first PATCH to the last
# answer, as in upload.mjs.
# Usage: upload-curl.sh <creation endpoint> <chunk dir (files sorted by name)> [authorization]
set -euo pipefail
endpoint=$1; dir=$2; auth=${3:-}
hdrs=(-H 'tus-resumable: 1.0.0' -H 'expect:')
[ -n "$auth" ] && hdrs+=(-H "authorization: $auth")
chunks=("$dir"/*)
size=0
for c in "${chunks[@]}"; do size=$((size + $(stat -c %s "$c"))); done
loc=$(curl -sS -o /dev/null -w '%{http_code} %header{location}' -X POST "${hdrs[@]}" \
  -H "upload-length: $size" -H 'content-length: 0' "$endpoint")
[ "${loc%% *}" = 201 ] || { echo "creation: HTTP ${loc%% *}" >&2; exit 1; }
url=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urljoin(sys.argv[1], sys.argv[2]))' "$endpoint" "${loc#* }")
args=(); off=0
for c in "${chunks[@]}"; do
  [ "$off" -gt 0 ] && args+=(--next)
  args+=(-sS -o /dev/null -w '%{http_code}\n' -X PATCH "${hdrs[@]}" -H "upload-offset: $off"
    -H 'content-type: application/offset+octet-stream' -T "$c" "$url")
  off=$((off + $(stat -c %s "$c")))
done
t0=$(date +%s%N)
codes=$(curl "${args[@]}")
t1=$(date +%s%N)
bad=$(echo "$codes" | grep -vc '^204$' || true)
[ "$bad" = 0 ] || { echo "PATCH answers: $(echo $codes)" >&2; exit 1; }
awk -v b="$size" -v ns="$((t1 - t0))" 'BEGIN {s = ns / 1e9; printf "{\"mbps\":%.1f,\"seconds\":%.3f,\"bytes\":%d}\n", b / 1e6 / s, s, b}'
