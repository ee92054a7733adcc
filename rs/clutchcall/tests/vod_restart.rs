//! Recipe 3 across crashes of the real binary: SIGKILL mid-upload (with a PATCH body in
//! flight) and SIGKILL mid-packaging (ffmpeg running), each followed by a restart on the same
//! data directory. Nothing acknowledged is lost, the asset becomes ready, its catalog and
//! segments are served, and the stored source is byte-for-byte the file that was sent.
//!
//! A restarted engine listens on a new port here (`--http 127.0.0.1:0`): the client keeps
//! the path and token of its `uploadUrl` (`/v1/uploads/up_…?token=ut_…`), puts them on the
//! engine's current base URL, and HEADs that to learn the offset to resume from. (With a
//! stable `--public-url` the `uploadUrl` itself stays valid.)
//!
//! Packaging is held at a known point with an `ffmpeg` wrapper first on the engine's `PATH`
//! that waits while a "hold" file exists, so the kill lands while the job holds its lease;
//! no sleeps decide the outcome, every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ffi::OsString;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{credentials, http, Engine, Reply};

/// A few seconds of H.264/AAC in an MP4 (moov at the end).
fn media(dir: &Path) -> Vec<u8> {
    let out = dir.join("source.mp4");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=5",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=5",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-b:v",
            "2M",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&out)
        .status()
        .expect("ffmpeg (apt-get install -y ffmpeg)")
        .success();
    assert!(ok, "ffmpeg could not make the test file");
    std::fs::read(out).unwrap()
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The real ffmpeg, found on this process's `PATH`.
fn real_ffmpeg() -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("ffmpeg"))
        .find(|p| p.is_file())
        .expect("ffmpeg on PATH")
}

/// A directory with an `ffmpeg` that records each start in `started` and waits (at most
/// 120 s) while `hold` exists, then runs the real one; returns the engine's `PATH`.
fn held_ffmpeg(dir: &Path, hold: &Path, started: &Path) -> OsString {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\necho $$ >> '{}'\ni=0\nwhile [ -e '{}' ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\nexec '{}' \"$@\"\n",
        started.display(),
        hold.display(),
        real_ffmpeg().display()
    );
    let path = bin.join("ffmpeg");
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut paths = vec![bin];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).unwrap()
}

/// Path and query of an upload URL (the part that survives a change of host or port).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_owned())
}

fn head_offset(addr: SocketAddr, target: &str) -> u64 {
    let r = http(addr, "HEAD", target, &[("tus-resumable", "2.0.0")], b"");
    assert_eq!(r.status, 200, "HEAD {target}");
    r.header("upload-offset")
        .and_then(|v| v.parse().ok())
        .expect("Upload-Offset")
}

fn patch(addr: SocketAddr, target: &str, offset: u64, body: &[u8]) -> Reply {
    let off = offset.to_string();
    http(
        addr,
        "PATCH",
        target,
        &[
            ("tus-resumable", "2.0.0"),
            ("upload-offset", &off),
            ("content-type", "application/offset+octet-stream"),
        ],
        body,
    )
}

fn asset(addr: SocketAddr, key: &str, org: &str, id: &str) -> Value {
    let auth = format!("Bearer {key}");
    let r = http(
        addr,
        "GET",
        &format!("/v1/orgs/{org}/assets/{id}"),
        &[("authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["asset"].clone()
}

/// Wait (bounded) until `f` holds, polling.
fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_mid_upload_and_mid_packaging_loses_nothing() {
    let scratch = tempfile_dir();
    let source = media(&scratch);
    let hold = scratch.join("hold");
    let started = scratch.join("ffmpeg-started");
    let path = held_ffmpeg(&scratch, &hold, &started);
    let env = [("PATH", path)];

    // 1. First run: create the upload (recipe flow: no size), one acknowledged PATCH.
    let first = Engine::start(&[]);
    let data_dir = first.data_dir.clone();
    let (key, org) = credentials(&data_dir);
    let auth = format!("Bearer {key}");
    let r = http(
        first.http,
        "POST",
        &format!("/v1/orgs/{org}/assets/uploads"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        br#"{"name":"Session-Recording.mp4"}"#,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    let upload_url = created["uploadUrl"].as_str().expect("uploadUrl").to_owned();
    let asset_id = created["assetId"].as_str().expect("assetId").to_owned();
    let target = path_of(&upload_url);
    assert!(target.starts_with("/v1/uploads/up_") && target.contains("?token=ut_"));

    let acked = source.len() / 3;
    let r = patch(first.http, &target, 0, &source[..acked]);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("upload-offset"), Some(acked.to_string().as_str()));
    assert_eq!(head_offset(first.http, &target), acked as u64);

    // A second PATCH is mid-body (half of what its Content-Length announces) when the engine
    // is SIGKILLed.
    let rest = &source[acked..];
    let mut s = TcpStream::connect(first.http).unwrap();
    write!(
        s,
        "PATCH {target} HTTP/1.1\r\nHost: {}\r\ntus-resumable: 2.0.0\r\nupload-offset: {acked}\r\n\
         content-type: application/offset+octet-stream\r\ncontent-length: {}\r\n\r\n",
        first.http,
        rest.len()
    )
    .unwrap();
    s.write_all(&rest[..rest.len() / 2]).unwrap();
    s.flush().unwrap();
    let data_dir = first.kill();
    drop(s);

    // 2. Restart on the same data dir (a new port): HEAD on the new base gives the
    // acknowledged offset; resume from there and finish. Packaging starts and is held in
    // ffmpeg; SIGKILL again.
    std::fs::write(&hold, b"").unwrap();
    let second = Engine::start_in_env(&data_dir, &[], &env);
    let offset = head_offset(second.http, &target);
    assert_eq!(
        offset, acked as u64,
        "the acknowledged offset, no more, no less"
    );
    let mut offset = offset as usize;
    let mut completed = false;
    while offset < source.len() {
        let end = (offset + (256 << 10)).min(source.len());
        let r = patch(second.http, &target, offset as u64, &source[offset..end]);
        assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
        offset = r
            .header("upload-offset")
            .and_then(|v| v.parse().ok())
            .expect("Upload-Offset");
        completed = r.header("upload-complete") == Some("?1");
    }
    assert!(completed, "a whole MP4 completes the length-less upload");
    wait_for("packaging to start ffmpeg", Duration::from_secs(60), || {
        std::fs::metadata(&started).is_ok_and(|m| m.len() > 0)
    });
    let a = asset(second.http, &key, &org, &asset_id);
    assert_eq!(a["status"], "processing", "{a}");
    let data_dir = second.kill();

    // 3. Restart again, packaging released: the job runs again and the asset becomes ready.
    std::fs::remove_file(&hold).unwrap();
    let third = Engine::start_in_env(&data_dir, &[], &env);
    let mut a = Value::Null;
    wait_for(
        "the asset to become ready",
        Duration::from_secs(120),
        || {
            a = asset(third.http, &key, &org, &asset_id);
            assert_ne!(a["status"], "errored", "{a}");
            a["status"] == "ready"
        },
    );
    let pb = a["playback_id"].as_str().expect("playback id").to_owned();
    let catalog = http(
        third.http,
        "GET",
        &format!("/vod/{pb}/catalog.json"),
        &[],
        b"",
    );
    assert_eq!(catalog.status, 200);
    let catalog = catalog.json();
    let tracks = catalog["tracks"].as_array().expect("tracks");
    assert!(tracks.len() >= 2, "video and audio: {catalog}");
    for t in tracks {
        let count = t["segmentCount"].as_u64().expect("segmentCount");
        assert!(count >= 1, "{t}");
        let template = t["segmentTemplate"].as_str().expect("segmentTemplate");
        let init = t["initUrl"].as_str().expect("initUrl").to_owned();
        let last = template.replace("{index}", &(count - 1).to_string());
        for file in [init, template.replace("{index}", "0"), last] {
            let r = http(third.http, "GET", &format!("/vod/{pb}/{file}"), &[], b"");
            assert_eq!(r.status, 200, "{file}");
            assert!(!r.body.is_empty(), "{file}");
        }
    }
    // The stored source is the file that was sent.
    let stored = data_dir
        .join("objects")
        .join("uploads")
        .join(&asset_id)
        .join("source");
    let sent = scratch.join("source.mp4");
    assert_eq!(std::fs::read(&stored).unwrap(), source);
    assert_eq!(sha256(&stored), sha256(&sent));
    assert_eq!(sha256(&sent).len(), 64);

    drop(third);
    let _ = std::fs::remove_dir_all(&scratch);
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("clutchcall-vod-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
