"""Fixtures: the engine (`clutchcall serve` on free ports), live sources, helpers.

The live source is ffmpeg over RTMP when the engine has an RTMP listener (its `listening` line
names `rtmp=`), else the synthetic MoQT publisher `rs/py/examples/cmaf_source.rs` fed with
ffmpeg-made fragmented MP4 (set CLUTCHCALL_TEST_SOURCE=synthetic to force it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from clutchcall.streams import LiveInput, SignedUrl, Streams

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
ENGINE = TARGET / "debug" / "clutchcall"
SOURCE = TARGET / "debug" / "examples" / "cmaf_source"
GOP_SECONDS = 1.0


def _build() -> None:
    if os.environ.get("CLUTCHCALL_SKIP_BUILD") == "1" and ENGINE.exists() and SOURCE.exists():
        return
    for args in (
        ["-p", "clutchcall", "--bin", "clutchcall"],
        ["-p", "clutchcall-py", "--example", "cmaf_source"],
    ):
        subprocess.run(["cargo", "build", *args], cwd=ROOT, check=True)


@dataclass
class Engine:
    http: str
    relay: str
    rtmp: str | None
    api_key: str
    org_id: str
    data_dir: Path
    proc: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_engine(data_dir: Path, extra: list[str] | None = None, env: dict[str, str] | None = None) -> Engine:
    """`clutchcall serve` on free loopback ports; `extra` flags and `env` vars on top."""
    args = [
        str(ENGINE),
        "serve",
        "--data-dir",
        str(data_dir),
        "--http",
        "127.0.0.1:0",
        "--relay",
        "127.0.0.1:0",
    ]
    help_text = subprocess.run([str(ENGINE), "serve", "--help"], capture_output=True, text=True).stdout
    if "--rtmp" in help_text:
        args += ["--rtmp", "127.0.0.1:0"]
    args += extra or []
    env = {**os.environ, "CLUTCHCALL_LOG": os.environ.get("CLUTCHCALL_LOG", "warn"), **(env or {})}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("clutchcall listening"):
            break
    m = re.search(r"http=(\S+) relay=(\S+)(?: rtmp=(\S+))?", line)
    if not m:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"engine did not start: {line!r}\n{err[-4000:]}")
    log: list[str] = []

    def drain(stream: Any) -> None:
        for text in stream:
            log.append(text)
            del log[:-200]

    threading.Thread(target=drain, args=(proc.stdout,), daemon=True).start()
    threading.Thread(target=drain, args=(proc.stderr,), daemon=True).start()
    creds: dict[str, str] = {}
    # A node joining a database that already has an org writes no credentials (mesh edges).
    cred_file = data_dir / "credentials"
    for raw in (cred_file.read_text() if cred_file.exists() else "").splitlines():
        k, sep, v = raw.strip().removeprefix("export ").partition("=")
        if sep:
            creds[k.strip()] = v.strip().strip("'\"")
    return Engine(
        http=f"http://{m.group(1)}",
        relay=m.group(2).split(",")[0],
        rtmp=m.group(3),
        api_key=creds.get("CLUTCHCALL_CREDENTIALS", ""),
        org_id=creds.get("CLUTCHCALL_ORG_ID", ""),
        data_dir=data_dir,
        proc=proc,
        log=log,
    )


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.fail("ffmpeg and ffprobe are required (apt-get install ffmpeg)")
    _build()
    e = start_engine(tmp_path_factory.mktemp("engine"))
    yield e
    e.stop()


@pytest.fixture(scope="session")
def streams(engine: Engine) -> Streams:
    return Streams(base_url=engine.http, api_key=engine.api_key, org_id=engine.org_id)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """20 s of 720p30 H.264 (1 s GOPs) and AAC, fragmented one frame per fragment."""
    d = tmp_path_factory.mktemp("media")
    video, audio = d / "video.mp4", d / "audio.mp4"
    frag = ["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1"]
    common = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run(
        [
            *common,
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-t",
            "20",
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
            "-maxrate",
            "6M",
            "-bufsize",
            "6M",
            "-pix_fmt",
            "yuv420p",
            *frag,
            str(video),
        ],
        check=True,
    )
    subprocess.run(
        [
            *common,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "20",
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


@dataclass
class Broadcast:
    input: LiveInput
    proc: subprocess.Popen[bytes]
    kind: str
    early: SignedUrl | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if self.kind == "synthetic" else signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def source_kind(engine: Engine) -> str:
    forced = os.environ.get("CLUTCHCALL_TEST_SOURCE")
    if forced:
        return forced
    return "rtmp" if engine.rtmp else "synthetic"


def wait_live(engine: Engine, inp: LiveInput, timeout: float = 30.0) -> None:
    """Until the catalog is published (a viewer can start)."""
    from clutchcall.streams import BroadcastViewer

    deadline = time.monotonic() + timeout
    streams = Streams(base_url=engine.http, api_key=engine.api_key, org_id=engine.org_id)
    ticket = streams.live_inputs.get(id=inp.id).signed_playback_url(ttl_seconds=300)
    while time.monotonic() < deadline:
        got = threading.Event()
        closed: list[str] = []
        v = BroadcastViewer.open(
            ticket.url,
            on_chunk=lambda is_init, _c, got=got: got.set() if not is_init else None,
            on_close=lambda r, _d, got=got, closed=closed: (closed.append(r), got.set()),
        )
        got.wait(10)
        v.close()
        if not closed or closed[0] == "closed":
            return
        time.sleep(0.5)
    raise AssertionError("the broadcast did not go live")


def start_broadcast(
    engine: Engine,
    streams: Streams,
    media: tuple[Path, Path],
    seconds: float = 0,
    name: str = "pytest",
) -> Broadcast:
    inp = streams.live_inputs.create(name=name, ingest="rtmp")
    assert inp.stream_key
    kind = source_kind(engine)
    if kind == "rtmp":
        assert engine.rtmp
        cmd = [
            "ffmpeg",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ]
        if seconds:
            cmd += ["-t", str(seconds)]
        cmd += [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-keyint_min",
            "30",
            "-b:v",
            "6M",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-f",
            "flv",
            f"rtmp://{engine.rtmp}/live/{inp.external_input_id}/{inp.stream_key}",
        ]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    else:
        video, audio = media
        cmd = [
            str(SOURCE),
            "--http",
            engine.http,
            "--relay",
            f"moqt://{engine.relay}/",
            "--namespace",
            inp.namespace,
            "--key",
            inp.stream_key,
            "--video",
            str(video),
            "--audio",
            str(audio),
            "--gop",
            str(GOP_SECONDS),
        ]
        if seconds:
            cmd += ["--seconds", str(seconds)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    b = Broadcast(input=inp, proc=proc, kind=kind)
    try:
        wait_live(engine, inp)
    except BaseException:
        b.stop()
        raise
    return b


@pytest.fixture(scope="session")
def broadcast(engine: Engine, streams: Streams, media: tuple[Path, Path]) -> Iterator[Broadcast]:
    """One endless live broadcast for the whole session."""
    b = start_broadcast(engine, streams, media, name="session broadcast")
    # Expires during the session: the last test checks what an expired ticket does.
    b.early = b.input.signed_playback_url(ttl_seconds=60)
    yield b
    b.stop()


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def decode_errors(path: Path) -> str:
    r = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    return (r.stderr + ("" if r.returncode == 0 else f"\nexit {r.returncode}")).strip()
