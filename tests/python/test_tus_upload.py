"""VOD upload with tuspy (the standard Python tus client): creation + chunked PATCH against
`/v1/uploads`, then the asset is packaged and its `pb_…` catalog is served."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tusclient import client

from conftest import Engine


def _api(engine: Engine, path: str) -> Any:
    req = urllib.request.Request(
        f"{engine.http}/v1/orgs/{engine.org_id}{path}",
        headers={"authorization": f"Bearer {engine.api_key}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_tuspy_upload_becomes_ready(engine: Engine, tmp_path: Path) -> None:
    src = tmp_path / "py-upload.mp4"
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
            "-c:a", "aac", str(src),
        ],
        check=True,
    )  # fmt: skip
    tus = client.TusClient(f"{engine.http}/v1/uploads", headers={"Authorization": f"Bearer {engine.api_key}"})
    uploader = tus.uploader(file_path=str(src), chunk_size=256 * 1024, metadata={"filename": "py-upload.mp4"})
    uploader.upload()
    assert uploader.url is not None and "/v1/uploads/up_" in uploader.url

    assets = _api(engine, "/assets?limit=100")["data"]
    asset_id = next(a["id"] for a in assets if a["name"] == "py-upload.mp4")
    deadline = time.monotonic() + 120
    while True:
        asset = _api(engine, f"/assets/{asset_id}")["asset"]
        if asset["status"] == "ready":
            break
        assert asset["status"] != "errored", asset
        assert time.monotonic() < deadline, asset
        time.sleep(0.2)
    assert asset["size_bytes"] == src.stat().st_size
    stored = engine.data_dir / "objects" / "uploads" / asset_id / "source"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    with urllib.request.urlopen(f"{engine.http}/vod/{asset['playback_id']}/catalog.json") as r:
        catalog = json.loads(r.read())
    assert {t["role"] for t in catalog["tracks"]} == {"video", "audio"}
