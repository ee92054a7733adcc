//! Packaging against real ffmpeg output: remux path, transcode path, not-media input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use vod::{package, Config, PackageError, Storage};

fn make_media(path: &Path, secs: u32, vcodec: &[&str], acodec: &[&str]) {
    let st = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size=320x240:rate=25:duration={secs}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={secs}"
        ))
        .args(vcodec)
        .args(acodec)
        .arg(path)
        .status()
        .expect("ffmpeg runs (apt-get install -y ffmpeg)");
    assert!(st.success());
}

fn config(dir: &Path) -> Config {
    Config {
        work_dir: dir.join("work"),
        ..Config::default()
    }
}

#[tokio::test]
async fn remux_h264_aac_to_aligned_segments() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.mp4");
    make_media(
        &src,
        7,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
        ],
        &["-c:a", "aac", "-b:a", "64k"],
    );
    let store = Storage::local(&dir.path().join("store")).unwrap();
    let p = package(&config(dir.path()), &src, &store, "vod/as_x", "job1")
        .await
        .unwrap();
    assert!(p.remuxed);
    let c = serde_json::to_value(&p.catalog).unwrap();
    let tracks = c["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2, "{c}");
    let v = &tracks[0];
    assert_eq!(v["name"], "video/source");
    assert!(v["codec"].as_str().unwrap().starts_with("avc1."), "{v}");
    assert_eq!(v["width"], 320);
    assert_eq!(v["isLive"], false);
    assert_eq!(v["segmentCount"], 4, "{v}");
    let a = &tracks[1];
    assert_eq!(a["name"], "audio/source");
    assert_eq!(a["codec"], "mp4a.40.2");
    assert_eq!(a["samplerate"], 48000);
    assert!(
        (6900..=7100).contains(&v["trackDuration"].as_u64().unwrap()),
        "{v}"
    );
    assert!(
        (6900..=7200).contains(&a["trackDuration"].as_u64().unwrap()),
        "{a}"
    );
    assert_eq!(c["isComplete"], true);
    // Objects exist; segment 0 starts with a moof.
    for t in ["video/source", "audio/source"] {
        let init = store
            .get(&format!("vod/as_x/{t}/init.mp4"), None)
            .await
            .unwrap();
        assert_eq!(&init.bytes[4..8], b"ftyp");
        let s0 = store
            .get(&format!("vod/as_x/{t}/0.m4s"), None)
            .await
            .unwrap();
        assert_eq!(&s0.bytes[4..8], b"moof");
    }
    assert!(store
        .size("vod/as_x/video/source/4.m4s")
        .await
        .unwrap()
        .is_none());
    assert!(store.size("vod/as_x/catalog.json").await.unwrap().is_some());
}

#[tokio::test]
async fn transcode_other_codecs() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.mkv");
    make_media(&src, 3, &["-c:v", "mpeg4", "-q:v", "5"], &["-c:a", "mp2"]);
    let store = Storage::local(&dir.path().join("store")).unwrap();
    let p = package(&config(dir.path()), &src, &store, "vod/as_y", "job2")
        .await
        .unwrap();
    assert!(!p.remuxed);
    let c = serde_json::to_value(&p.catalog).unwrap();
    assert!(c["tracks"][0]["codec"]
        .as_str()
        .unwrap()
        .starts_with("avc1."));
    assert_eq!(c["tracks"][1]["codec"], "mp4a.40.2");
    assert_eq!(c["tracks"][0]["segmentCount"], 2, "{c}");
}

#[tokio::test]
async fn not_media_is_a_permanent_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("junk.bin");
    std::fs::write(
        &src,
        b"this is certainly not a video file, just text\n".repeat(100),
    )
    .unwrap();
    let store = Storage::local(&dir.path().join("store")).unwrap();
    let e = package(&config(dir.path()), &src, &store, "vod/as_z", "job3")
        .await
        .unwrap_err();
    assert!(e.permanent(), "{e}");
    assert!(
        matches!(e, PackageError::NotMedia(_) | PackageError::NoStreams),
        "{e}"
    );
    assert_eq!(e.code(), "not_media");
}
