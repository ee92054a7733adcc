"""Headless-capture benchmark (recipe 4): CPU per captured 6 Mbit/s stream, and how many
concurrent captures one Python process sustains at the live edge.

Starts `target/release/clutchcall serve`, publishes one 720p30 6 Mbit/s + AAC broadcast with the
synthetic MoQT source (`rs/py/examples/cmaf_source.rs`, pre-encoded, so the source costs little
CPU), then in this one Python process opens N BroadcastViewers for each N (each writes its file
to /dev/null through Python) and measures, over a steady window:

- CPU of this process (user+sys, every thread: engine + callbacks) per capture;
- how far each capture is behind the live edge: the growth of (wall time - media time) from the
  start of the window; a capture "keeps up" when that stays under 1 s and it received at least
  95 % of the source's bytes.

Usage: bench/capture/run.sh [N ...]   (default 1 4 8 16 32 64)
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from clutchcall.streams import BroadcastViewer, Chunk, Streams

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Path(os.environ.get("CLUTCHCALL_ENGINE", ROOT / "target/release/clutchcall"))
SOURCE = Path(os.environ.get("CLUTCHCALL_SOURCE", ROOT / "target/release/examples/cmaf_source"))
BITRATE = 6_000_000


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Meter:
    def __init__(self) -> None:
        self.sink = open(os.devnull, "wb")
        self.bytes = 0
        self.first: tuple[float, float] | None = None  # (wall, media) at window start
        self.lag = 0.0
        self.closed: str | None = None
        self.window = False

    def on_chunk(self, is_init: bool, chunk: Chunk) -> None:
        self.sink.write(chunk.data)
        if is_init or chunk.track != "video":
            if self.window:
                self.bytes += len(chunk.data)
            return
        now = time.monotonic()
        if not self.window:
            return
        self.bytes += len(chunk.data)
        if self.first is None:
            self.first = (now, chunk.decode_time)
            return
        lag = (now - self.first[0]) - (chunk.decode_time - self.first[1])
        self.lag = max(self.lag, lag)

    def on_close(self, reason: str, detail: str) -> None:
        self.closed = reason
        self.sink.close()


def start_engine(data: Path) -> tuple[subprocess.Popen[str], str, str, str, str]:
    proc = subprocess.Popen(
        [
            str(ENGINE),
            "serve",
            "--data-dir",
            str(data),
            "--http",
            "127.0.0.1:0",
            "--relay",
            "127.0.0.1:0",
            "--rtmp",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout
    line = ""
    for line in proc.stdout:
        if line.startswith("clutchcall listening"):
            break
    m = re.search(r"http=(\S+) relay=(\S+)", line)
    if not m:
        raise SystemExit(f"engine did not start: {line!r}")
    threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
    creds = dict(
        ln.removeprefix("export ").split("=", 1)
        for ln in (data / "credentials").read_text().split()
        if "=" in ln
    )
    key = creds["CLUTCHCALL_CREDENTIALS"].strip("'\"")
    org = creds["CLUTCHCALL_ORG_ID"].strip("'\"")
    return proc, f"http://{m.group(1)}", m.group(2).split(",")[0], key, org


def encode(d: Path) -> tuple[Path, Path]:
    video, audio = d / "v.mp4", d / "a.mp4"
    frag = ["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1"]
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-t",
            "30",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "30",
            "-keyint_min",
            "30",
            "-sc_threshold",
            "0",
            "-bf",
            "0",
            "-b:v",
            "6M",
            "-minrate",
            "6M",
            "-maxrate",
            "6M",
            "-bufsize",
            "3M",
            "-x264-params",
            "nal-hrd=cbr",
            "-pix_fmt",
            "yuv420p",
            *frag,
            str(video),
        ],
        check=True,
    )
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "30",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            *frag,
            str(audio),
        ],
        check=True,
    )
    return video, audio


def stage(url: str, n: int, seconds: float, source_bps: float) -> dict[str, float]:
    meters = [Meter() for _ in range(n)]
    viewers = [BroadcastViewer.open(url, on_chunk=m.on_chunk, on_close=m.on_close) for m in meters]
    time.sleep(3.0)  # every capture past its start (catalog, joining fetch)
    for m in meters:
        m.window = True
    c0, t0 = cpu(), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu(), time.monotonic()
    for m in meters:
        m.window = False
    for v in viewers:
        v.close()
    wall = t1 - t0
    cores = (c1 - c0) / wall
    expected = source_bps / 8 * wall
    kept = sum(
        1 for m in meters if m.lag < 1.0 and m.bytes >= 0.95 * expected and m.closed in (None, "closed")
    )
    return {
        "n": n,
        "cpu_pct_total": 100 * cores,
        "cpu_pct_per_capture": 100 * cores / n,
        "max_lag_s": max(m.lag for m in meters),
        "mbit_per_capture": min(m.bytes for m in meters) * 8 / wall / 1e6,
        "kept_up": kept,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("counts", nargs="*", type=int, default=[1, 4, 8, 16, 32, 64])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        video, audio = encode(d)
        size = video.stat().st_size + audio.stat().st_size
        source_bps = size * 8 / 30.0
        (d / "data").mkdir()
        engine, http, relay, key, org = start_engine(d / "data")
        src = None
        try:
            streams = Streams(base_url=http, api_key=key, org_id=org)
            inp = streams.live_inputs.create(name="bench capture", ingest="rtmp")
            assert inp.stream_key
            src = subprocess.Popen(
                [
                    str(SOURCE),
                    "--http",
                    http,
                    "--relay",
                    f"moqt://{relay}/",
                    "--namespace",
                    inp.namespace,
                    "--key",
                    inp.stream_key,
                    "--video",
                    str(video),
                    "--audio",
                    str(audio),
                ],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(3)
            url = inp.signed_playback_url(ttl_seconds=3600).url
            print(
                f"source: {source_bps / 1e6:.2f} Mbit/s (video+audio); {os.cpu_count()} CPUs; "
                f"Python {sys.version.split()[0]}; window {args.seconds:.0f} s per stage\n"
            )
            print("| captures | process CPU | CPU per capture | received per capture | max lag | kept up |")
            print("|---:|---:|---:|---:|---:|---:|")
            for n in args.counts:
                r = stage(url, n, args.seconds, source_bps)
                print(
                    f"| {n} | {r['cpu_pct_total']:.0f} % | {r['cpu_pct_per_capture']:.1f} % of a core | "
                    f"{r['mbit_per_capture']:.2f} Mbit/s | {r['max_lag_s']:.2f} s | {r['kept_up']}/{n} |",
                    flush=True,
                )
                time.sleep(1)
        finally:
            if src and src.poll() is None:
                src.send_signal(signal.SIGTERM)
                src.wait(timeout=10)
            engine.send_signal(signal.SIGTERM)
            engine.wait(timeout=15)


if __name__ == "__main__":
    main()
