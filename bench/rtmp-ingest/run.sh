#!/usr/bin/env bash
# RTMP ingest benchmark (issue: recipe 2).
#   (a) passthrough: N concurrent ~3 Mbit/s RTMP publishers (pre-encoded file, -c copy) into the
#       engine's ingest and N more into nginx + libnginx-mod-rtmp, side by side on the same core
#       over the same window; CPU per stream (% of one core); then the
#       ingest-to-subscriber delay of one stream seen by a QUIC subscriber (rtmp_delay), with the
#       N publishers still running.
#   (b) transcode: realtime factor of the default ladder on 720p30 input, and the engine's
#       overhead (ingest process + its ffmpeg child) against the same ffmpeg command run bare.
# Usage: bench/rtmp-ingest/run.sh [N=4] [SECONDS=20]
# Env: WARMUP=<s> publishers run before the CPU windows (default 3; 30 reaches the relay
#      cache's steady state with its default 10 s window), WINDOWS=<k> consecutive CPU windows
#      of SECONDS each (default 1; the table gives each and their median ratio), TRANSCODE=0
#      skips (b), PRFT=1 stamps prft boxes during the engine's windows too, PIN=0 does not pin
#      the servers and encoders to cores.
# Needs: ffmpeg, nginx, libnginx-mod-rtmp (apt-get install -y ffmpeg nginx libnginx-mod-rtmp).
set -euo pipefail
N="${1:-4}"
SECS="${2:-20}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$ROOT"
DELAY_SECS="${DELAY_SECS:-10}"
# Seconds the publishers run before the CPU window (both servers). Long enough to fill the relay
# cache (64 MiB/track: ~170 s of 3 Mbit/s video) measures the steady state.
WARMUP="${WARMUP:-3}"
WINDOWS="${WINDOWS:-1}"
cargo build --release -q -p clutchcall-ingest --example rtmp_bench --example rtmp_delay
BENCH="$ROOT/target/release/examples/rtmp_bench"
DELAY="$ROOT/target/release/examples/rtmp_delay"

SRC="$WORK/src.flv"
echo "== encoding a 720p30 3 Mbit/s test file"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 20 -c:v libx264 -preset veryfast -b:v 3M -maxrate 3M -bufsize 6M -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$SRC"

# CPU time of a process in ms, summed over its threads: the scheduler's exact run time
# (/proc/<pid>/task/*/schedstat, ns). Not utime+stime from /proc/<pid>/stat: with tick-based
# accounting (CONFIG_HZ=250 here) those are samples, ~360 a minute for a server using 2.4 % of
# a core, i.e. ±5 % of noise on each figure. Falls back to them where schedstat is missing.
cpu_ms() {
  if [ -r "/proc/$1/schedstat" ]; then
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s / 1000000}'
  else
    awk '{print ($14 + $15) * 10}' "/proc/$1/stat"
  fi
}
# Steal time of the whole machine (ms): the hypervisor running someone else on our cores.
steal_ms() { awk '/^cpu /{printf "%d", $9 * 10}' /proc/stat; }
# Placement: both servers share the last core, the encoders get the others (PIN=0 leaves it to
# the scheduler). Unpinned, where the scheduler puts each server relative to its encoders
# (same core or not) moved either server's CPU by ±30 % from run to run on the 2-core VM.
CORES=$(nproc)
if [ "${PIN:-1}" = 1 ] && [ "$CORES" -ge 2 ]; then
  SERVER_CPU=(taskset -c $((CORES - 1)))
  ENCODER_CPU=(taskset -c 0-$((CORES - 2)))
else
  SERVER_CPU=()
  ENCODER_CPU=()
fi
publishers() { # $1 = url prefix, $2 = suffix after the stream id ("/<key>" for the engine)
  for i in $(seq 1 "$N"); do
    "${ENCODER_CPU[@]}" ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$SRC" -c copy -f flv "$1/lv_bench$i$2" &
  done
}

echo "== (a) passthrough, $N streams into the engine and $N into nginx-rtmp side by side, ${WARMUP}s warm-up, $WINDOWS window(s) of ${SECS}s"
# The engine: ingest + relay in process, like the engine binary (source objects without prft
# stamps unless PRFT=1; the relay's QUIC endpoint listens, with no session). Its own window is
# not used: both servers are read from /proc over the same seconds.
RTMP_BENCH_PRFT="${PRFT:-0}" "${SERVER_CPU[@]}" "$BENCH" 127.0.0.1:19350 "$WARMUP" "$((SECS * WINDOWS + 5))" none veryfast 127.0.0.1:19353 0 > "$WORK/engine.txt" &
ENGINE_PID=$!
cat > "$WORK/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:19351; application live { live on; } } }
CONF
"${SERVER_CPU[@]}" nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
sleep 1
publishers rtmp://127.0.0.1:19350/live /sk_bench
publishers rtmp://127.0.0.1:19351/live ""
sleep "$((WARMUP + 1))"
grep -q . "$WORK/nginx.err" && tail -3 "$WORK/nginx.err"
# One line per window: engine ms, nginx ms, steal ms.
: > "$WORK/windows.txt"
for _ in $(seq 1 "$WINDOWS"); do
  E0=$(cpu_ms "$ENGINE_PID"); N0=$(cpu_ms "$NGINX_PID"); S0=$(steal_ms)
  sleep "$SECS"
  E1=$(cpu_ms "$ENGINE_PID"); N1=$(cpu_ms "$NGINX_PID"); S1=$(steal_ms)
  echo "$((E1 - E0)) $((N1 - N0)) $((S1 - S0))" | tee -a "$WORK/windows.txt"
done
# Totals over all windows, and the median of the per-window ratios.
ENGINE_CPU=$(awk '{s += $1} END {printf "%.3f", s / 1000}' "$WORK/windows.txt")
NGINX_CPU=$(awk '{s += $2} END {printf "%.3f", s / 1000}' "$WORK/windows.txt")
RATIOS=$(awk '$2 > 0 {printf "%.2f\n", $1 / $2}' "$WORK/windows.txt" | sort -n)
MEDIAN_RATIO=$(echo "$RATIOS" | awk '{v[NR] = $1} END {if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2}')
STEAL_PCT=$(awk -v secs="$SECS" -v cores="$(nproc)" '{s += $3} END {printf "%.1f", 100 * s / 1000 / (secs * NR * cores)}' "$WORK/windows.txt")
wait "$ENGINE_PID" || true
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
pkill -P $$ ffmpeg 2>/dev/null || true
sleep 1
ENGINE_TRACKS=$(sed -n 's/.*tracks=\([0-9]*\).*/\1/p' "$WORK/engine.txt")

echo "== (a) ingest-to-subscriber delay, stream 1 of $N (video/source + audio/source), ${DELAY_SECS}s"
# A second engine with prft stamps on (the delay needs them), the same N publishers.
"$BENCH" 127.0.0.1:19354 3 1 none veryfast 127.0.0.1:19353 $((DELAY_SECS + 3)) > "$WORK/engine_delay.txt" &
DELAY_PID=$!
sleep 1
publishers rtmp://127.0.0.1:19354/live /sk_bench
until grep -q cpu_seconds "$WORK/engine_delay.txt" || ! kill -0 "$DELAY_PID" 2>/dev/null; do sleep 0.5; done
"$DELAY" 127.0.0.1:19353 stream/org_bench/lv_bench1 "$DELAY_SECS" video/source audio/source | tee "$WORK/delay.txt"
wait "$DELAY_PID" || true
pkill -P $$ ffmpeg 2>/dev/null || true
sleep 1
DELAY_LINE=$(sed -n 's/^delay_ms //p' "$WORK/delay.txt")

# The results table's head and passthrough rows (the transcode rows follow unless TRANSCODE=0).
passthrough_table() {
  echo
  echo "| measurement | value |"
  echo "|---|---|"
  echo "| passthrough streams | $N (tracks in relay: $ENGINE_TRACKS) |"
  local total=$((SECS * WINDOWS))
  echo "| engine CPU per stream (% of one core) | $(echo "scale=3; 100 * $ENGINE_CPU / $total / $N" | bc) |"
  echo "| nginx-rtmp CPU per stream (% of one core) | $(echo "scale=3; 100 * $NGINX_CPU / $total / $N" | bc) |"
  if [ "$(echo "$NGINX_CPU > 0" | bc)" = 1 ]; then
    echo "| engine / nginx, all windows | $(echo "scale=2; $ENGINE_CPU / $NGINX_CPU" | bc) |"
    echo "| engine / nginx, median of $WINDOWS window(s) (each: $(echo $RATIOS | tr ' ' '/')) | $MEDIAN_RATIO |"
  else
    echo "| engine / nginx | n/a (nginx used no measurable CPU) |"
  fi
  echo "| steal time during the windows (% of the machine) | $STEAL_PCT |"
  echo "| ingest-to-subscriber delay, ms (QUIC, loopback, $N streams running) | $DELAY_LINE |"
}

if [ "${TRANSCODE:-1}" = 0 ]; then # passthrough only
  passthrough_table
  exit 0
fi

echo "== (b) transcode: bare ffmpeg ladder (same arguments as the engine), as fast as possible"
LADDER='[0:v]split=3[i0][i1][i2];[i0]scale=-2:720[o0];[i1]scale=-2:480[o1];[i2]scale=-2:360[o2]'
X264=(-preset veryfast -tune zerolatency -bf 0 -g 600 -sc_threshold 0 -force_key_frames source -pix_fmt yuv420p -fps_mode passthrough)
MAPS=(-map '[o0]' -c:v:0 libx264 -b:v:0 3000k -maxrate:v:0 3000k -bufsize:v:0 6000k
      -map '[o1]' -c:v:1 libx264 -b:v:1 1500k -maxrate:v:1 1500k -bufsize:v:1 3000k
      -map '[o2]' -c:v:2 libx264 -b:v:2 800k -maxrate:v:2 800k -bufsize:v:2 1600k)
START=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$WORK/bare_fast.time" ffmpeg -hide_banner -nostdin -loglevel error -i "$SRC" -filter_complex "$LADDER" "${MAPS[@]}" "${X264[@]}" \
  -f mp4 -movflags empty_moov+default_base_moof+frag_every_frame -y /dev/null
END=$(date +%s.%N)
RTF=$(echo "scale=2; 20 / ($END - $START)" | bc)

echo "== (b) transcode: bare ffmpeg ladder, realtime input, ${SECS}s"
/usr/bin/time -f "%U %S" -o "$WORK/bare_rt.time" timeout "$SECS" ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$SRC" -an -filter_complex "$LADDER" "${MAPS[@]}" "${X264[@]}" \
  -f mp4 -movflags empty_moov+default_base_moof+frag_every_frame -y /dev/null || true
BARE_RT=$(tail -1 "$WORK/bare_rt.time" | awk '{print $1+$2}')

echo "== (b) transcode through the engine (1 RTMP publisher, default ladder), ${SECS}s"
"$BENCH" 127.0.0.1:19352 3 "$SECS" default > "$WORK/engine_tx.txt" &
sleep 1
ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$SRC" -c copy -f flv rtmp://127.0.0.1:19352/live/lv_tx/sk &
wait %1 2>/dev/null || wait "$(jobs -p | head -1)" || true
pkill -P $$ ffmpeg 2>/dev/null || true
ENGINE_TX=$(sed -n 's/.*cpu_seconds=\([0-9.]*\).*/\1/p' "$WORK/engine_tx.txt")

passthrough_table
echo "| ladder realtime factor (720p30 in, 720/480/360 out, veryfast) | ${RTF}x |"
echo "| bare ffmpeg ladder CPU, realtime (% of one core) | $(echo "scale=1; 100 * $BARE_RT / $SECS" | bc) |"
echo "| engine + its ffmpeg CPU, realtime (% of one core) | $(echo "scale=1; 100 * $ENGINE_TX / $SECS" | bc) |"
echo "| engine overhead vs bare ffmpeg | $(echo "scale=1; 100 * ($ENGINE_TX - $BARE_RT) / $BARE_RT" | bc) % |"
