"""VOD on S3-compatible storage, for real: moto's S3 server (`python -m moto.server`, pinned in
requirements.txt) on a loopback port, and an engine started with

    --object-store-url 's3://<bucket>/engine?endpoint=http://127.0.0.1:<port>&region=us-east-1&allow_http=true'

(keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; path-style requests). A 17 MB H.264/AAC file
goes up through the recipe's HEAD/PATCH loop in 8 MiB chunks, with one PATCH cut off mid-body
and resumed via HEAD; the completed upload moves into the bucket as a multipart upload (8 MiB
parts: moto refuses parts under 5 MiB but the last), the stored object hashes equal to the
source, the packaged catalog and every segment are served from the bucket (with Range) and
decode, and deleting the asset empties its prefixes.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from conftest import Engine, _build, decode_errors, start_engine

BUCKET = "clutchcall-test"
PREFIX = "engine"
CHUNK = 8 << 20
PART = 8 << 20  # vod::storage::PART_BYTES
CREDS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    """moto's S3 server on loopback with one bucket: (endpoint, boto3 client)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"moto server exited: {proc.stderr.read() if proc.stderr else ''}"
        try:
            with urllib.request.urlopen(endpoint, timeout=2):
                break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.2)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def s3_engine(s3: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    endpoint, _ = s3
    _build()
    url = f"s3://{BUCKET}/{PREFIX}?endpoint={endpoint}&region=us-east-1&allow_http=true"
    e = start_engine(tmp_path_factory.mktemp("engine-s3"), ["--object-store-url", url], CREDS)
    yield e
    e.stop()


def _request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _api(engine: Engine, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {engine.api_key}"}
    data = None
    if body is not None:
        headers["content-type"] = "application/json"
        data = json.dumps(body).encode()
    status, _, raw = _request(f"{engine.http}/v1/orgs/{engine.org_id}{path}", method, headers, data)
    return status, json.loads(raw) if raw else None


def _head_offset(url: str) -> int:
    status, h, _ = _request(url, "HEAD", {"tus-resumable": "2.0.0"})
    assert status == 200, status
    return int(h["upload-offset"])


def _cut_patch(url: str, offset: int, chunk: bytes, send: int) -> None:
    """A PATCH announcing all of `chunk` whose connection is closed after `send` bytes."""
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port)) as s:
        head = (
            f"PATCH {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\ntus-resumable: 2.0.0\r\n"
            f"upload-offset: {offset}\r\ncontent-type: application/offset+octet-stream\r\n"
            f"content-length: {len(chunk)}\r\n\r\n"
        )
        s.sendall(head.encode() + chunk[:send])


def _tus_upload(url: str, data: bytes) -> int:
    """The recipe's loop: HEAD for the offset, PATCH 8 MiB chunks until the engine says the
    upload is complete. The second PATCH and the first one that would finish the file are cut
    off mid-body first. Returns how many PATCHes were cut."""
    offset, cuts, complete, sent, cut_last = _head_offset(url), 0, False, 0, True
    for _ in range(100):
        if complete:
            break
        chunk = data[offset : offset + CHUNK]
        sent += 1
        ends = offset + len(chunk) == len(data)
        if sent == 2 or (ends and cut_last):
            cut_last = cut_last and not ends
            half = len(chunk) // 2 + 12345
            _cut_patch(url, offset, chunk, half)
            cuts += 1
            if sent == 2:
                # What arrived before the cut is committed (bounded wait for the append task).
                deadline = time.monotonic() + 60
                while _head_offset(url) != offset + half:
                    assert time.monotonic() < deadline, "the cut PATCH's bytes were not committed"
                    time.sleep(0.05)
            # The last cut resumes at once: the next PATCH may meet the cut one still running.
            offset = _head_offset(url)
            continue
        try:
            status, h, body = _request(
                url,
                "PATCH",
                {
                    "tus-resumable": "2.0.0",
                    "upload-offset": str(offset),
                    "content-type": "application/offset+octet-stream",
                },
                chunk,
            )
        except urllib.error.URLError:
            # Answered (409/423) and closed before the whole body was sent: as after any
            # broken connection, resume from HEAD.
            status, h, body = 0, {}, b""
        if status in (0, 409, 423):
            # The cut-off PATCH committed meanwhile (409 with the current offset), or still
            # holds the upload (423): resume from the engine's offset.
            time.sleep(0.1)
            offset = _head_offset(url)
            continue
        assert status == 204, (status, body)
        offset = int(h["upload-offset"])
        complete = h.get("upload-complete") == "?1"
    assert complete and offset == len(data), (complete, offset, len(data))
    return cuts


def _make_media(path: Path) -> bytes:
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=10",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
            "-b:v", "14M", "-minrate", "14M", "-maxrate", "14M", "-bufsize", "2M",
            "-x264-params", "nal-hrd=cbr",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def test_s3_upload_resume_package_serve_delete(
    s3: tuple[str, Any], s3_engine: Engine, tmp_path: Path
) -> None:
    _, bucket = s3
    engine = s3_engine
    src = _make_media(tmp_path / "s3-source.mp4")
    assert len(src) > 2 * PART, f"the source must take 3+ parts: {len(src)} bytes"

    status, created = _api(engine, "/assets/uploads", "POST", {"name": "s3-recording.mp4"})
    assert status == 201, created
    asset_id = created["assetId"]
    url = created["uploadUrl"]
    # The loop resumes via HEAD after each cut.
    assert _tus_upload(url, src) == 2

    deadline = time.monotonic() + 180
    while True:
        status, got = _api(engine, f"/assets/{asset_id}")
        asset = got["asset"]
        if asset["status"] == "ready":
            break
        assert asset["status"] != "errored", asset
        assert time.monotonic() < deadline, asset
        time.sleep(0.2)
    assert asset["size_bytes"] == len(src)
    # Nothing went to local object storage: the engine's only local bytes are staging.
    assert not (engine.data_dir / "objects").exists()

    # The stored source: byte-equal, uploaded as a multipart upload of 8 MiB parts.
    key = f"{PREFIX}/uploads/{asset_id}/source"
    obj = bucket.get_object(Bucket=BUCKET, Key=key)
    stored = obj["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(src).hexdigest()
    parts = math.ceil(len(src) / PART)
    assert obj["ETag"].strip('"').endswith(f"-{parts}"), obj["ETag"]
    first = bucket.head_object(Bucket=BUCKET, Key=key, PartNumber=1)
    assert first["ContentLength"] == PART
    assert first.get("PartsCount") == parts

    # Served from the bucket: catalog, init and every segment of every track; they decode.
    pb = asset["playback_id"]
    base = f"{engine.http}/vod/{pb}"
    status, _, raw = _request(f"{base}/catalog.json")
    assert status == 200
    catalog = json.loads(raw)
    assert {t["role"] for t in catalog["tracks"]} == {"video", "audio"}
    found = bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/vod/{asset_id}/").get("Contents", [])
    listed = {o["Key"] for o in found}
    assert f"{PREFIX}/vod/{asset_id}/catalog.json" in listed
    for t in catalog["tracks"]:
        status, _, init = _request(f"{base}/{t['initUrl']}")
        assert status == 200 and init
        whole = bytearray(init)
        assert t["segmentCount"] >= 9, t  # 10 s in 1 s GOPs
        for i in range(t["segmentCount"]):
            status, h, seg = _request(f"{base}/{t['segmentTemplate'].replace('{index}', str(i))}")
            assert status == 200 and seg, (t["name"], i)
            assert "immutable" in h["cache-control"]
            whole += seg
        status, _, _ = _request(f"{base}/{t['segmentTemplate'].replace('{index}', str(t['segmentCount']))}")
        assert status == 404
        out = tmp_path / f"{t['name'].replace('/', '_')}.mp4"
        out.write_bytes(whole)
        assert decode_errors(out) == "", t["name"]
    # A byte range of a segment, straight from the bucket.
    seg0 = catalog["tracks"][0]["segmentTemplate"].replace("{index}", "0")
    _, _, full = _request(f"{base}/{seg0}")
    status, h, part = _request(f"{base}/{seg0}", headers={"range": "bytes=100-199"})
    assert status == 206 and part == full[100:200]
    assert h["content-range"] == f"bytes 100-199/{len(full)}"

    # Deleting the asset empties both of its prefixes in the bucket.
    status, _ = _api(engine, f"/assets/{asset_id}", "DELETE")
    assert status == 204
    for p in (f"{PREFIX}/vod/{asset_id}/", f"{PREFIX}/uploads/{asset_id}/"):
        assert bucket.list_objects_v2(Bucket=BUCKET, Prefix=p).get("KeyCount", 0) == 0, p
    status, _, _ = _request(f"{base}/catalog.json")
    assert status == 404
