"""Recipe 4 through the relay mesh: the broadcast goes into the origin, the headless capture
reads it at an edge (`serve --origin`, the same PostgreSQL database), with a signed URL minted
through the edge's API. Needs PostgreSQL (Debian's `postgresql`, or CLUTCHCALL_TEST_DATABASE_URL);
without it the test is skipped, unless CI is set."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from clutchcall.streams import Streams
from conftest import Engine, start_broadcast, start_engine
from test_capture import Capture, assert_contiguous, check_file


def _pg_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    found = sorted(b for b in root.glob("*/bin") if (b / "initdb").exists() and (b / "pg_ctl").exists())
    return found[-1] if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database URL on CLUTCHCALL_TEST_DATABASE_URL's server or a throwaway cluster."""
    url = os.environ.get("CLUTCHCALL_TEST_DATABASE_URL")
    stop: list[str] | None = None
    if url:
        server, psql = url.rsplit("/", 1)[0], "psql"
    else:
        bin_dir = _pg_bin()
        if bin_dir is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is needed (CI is set): install Debian's postgresql")
            pytest.skip("PostgreSQL unavailable")
        # Not under pytest's tmp dir: the `postgres` user cannot enter root's.
        work = Path(tempfile.mkdtemp(prefix="clutchcall-py-pg-"))
        if os.geteuid() == 0:
            shutil.chown(work, "postgres", "postgres")
        data = work / "data"
        subprocess.run(
            _as_postgres(
                [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        opts = f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(work / "log"), "-w", "start"]
            ),
            check=True,
            capture_output=True,
        )
        server, psql = f"postgres://postgres@127.0.0.1:{port}", str(bin_dir / "psql")
        stop = _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
    name = f"cc_py_{uuid.uuid4().hex[:12]}"
    subprocess.run(
        [psql, f"{server}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True
    )
    yield f"{server}/{name}"
    if stop:
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def test_capture_at_an_edge(database: str, media: tuple[Path, Path], tmp_path: Path) -> None:
    origin = start_engine(tmp_path / "origin", ["--database-url", database])
    edge: Engine | None = None
    broadcast = None
    try:
        edge = start_engine(
            tmp_path / "edge",
            ["--database-url", database, "--origin", f"moqt://{origin.relay}/", "--origin-http", origin.http],
        )
        at_origin = Streams(base_url=origin.http, api_key=origin.api_key, org_id=origin.org_id)
        broadcast = start_broadcast(origin, at_origin, media, name="mesh capture")
        # The app server mints the URL through the edge's API: it points at the edge.
        at_edge = Streams(base_url=edge.http, api_key=origin.api_key, org_id=origin.org_id)
        ticket = at_edge.live_inputs.get(id=broadcast.input.id).signed_playback_url(ttl_seconds=600)
        assert ticket.url.startswith(edge.http), ticket.url
        cap = Capture(tmp_path / "edge.mp4")
        viewer = cap.open(ticket.url)
        assert cap.first.wait(20), (cap.closes, edge.log[-20:])
        started = time.monotonic()
        time.sleep(5)
        assert viewer.close() is True
        recorded = time.monotonic() - started
        assert cap.closes and cap.closes[0][0] == "closed", cap.closes
        assert_contiguous(cap, "video")
        assert_contiguous(cap, "audio")
        # Starts at a keyframe: the edge's cache begins at a group's first object.
        assert cap.media("video")[0][1] == 0
        check_file(tmp_path / "edge.mp4", recorded)
    finally:
        if broadcast is not None:
            broadcast.stop()
        if edge is not None:
            edge.stop()
        origin.stop()
