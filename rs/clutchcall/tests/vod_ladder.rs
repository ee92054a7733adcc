//! VOD packaging with the ladder configured (`--vod-ladder`), end to end through the real
//! binary: an uploaded 720p file yields the source rendition plus the rungs below it (never one
//! at or above the source's height) as alternatives of one `altGroup` in `catalog.json`; every
//! segment of every rendition is served; segment i of each rendition starts with a keyframe at
//! the same time as segment i of the others (what a player switching renditions needs), and
//! each rendition decodes whole at its catalog height. Both packaging paths: an H.264/AAC
//! source with B-frames and an irregular keyframe interval (stream copy + ladder encodes keyed
//! on the source's keyframes) and an MPEG-4 Part 2 source (transcode: forced 2 s keyframes).
//! Timestamps are read back with ffprobe, independently of the engine's own box reader.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{credentials, http, Engine};

const LADDER: &str = "1080p:1080:5000000,720p:720:3000000,480p:480:1500000,360p:360:800000";

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .expect("ffmpeg/ffprobe (apt-get install -y ffmpeg)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// 6 s of 1280x720 25 fps test pattern + AAC: H.264 with B-frames and a keyframe every 37
/// frames (1.48 s), or MPEG-4 Part 2 (transcoded by the packager).
fn make_source(dir: &Path, h264: bool) -> PathBuf {
    let out = dir.join(if h264 { "h264.mp4" } else { "mpeg4.mp4" });
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=6",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=6",
        ]);
    if h264 {
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "superfast",
            "-bf",
            "2",
            "-g",
            "37",
        ])
        .args(["-sc_threshold", "0", "-pix_fmt", "yuv420p"]);
    } else {
        cmd.args(["-c:v", "mpeg4", "-q:v", "5", "-g", "50"]);
    }
    cmd.args(["-c:a", "aac", "-shortest"]).arg(&out);
    run(&mut cmd);
    out
}

/// Upload `file` (REST creation with its size, one PATCH), wait until ready: the catalog.
fn upload_and_package(engine: &Engine, key: &str, org: &str, file: &Path) -> (String, Value) {
    let bytes = std::fs::read(file).unwrap();
    let auth = format!("Bearer {key}");
    let body = format!(r#"{{"name":"ladder.mp4","size":{}}}"#, bytes.len());
    let r = http(
        engine.http,
        "POST",
        &format!("/v1/orgs/{org}/assets/uploads"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    let asset_id = created["assetId"].as_str().unwrap().to_owned();
    let url = created["uploadUrl"].as_str().unwrap();
    let target = &url[url.find("/v1/uploads/").expect("upload path")..];
    let r = http(
        engine.http,
        "PATCH",
        target,
        &[
            ("tus-resumable", "1.0.0"),
            ("upload-offset", "0"),
            ("content-type", "application/offset+octet-stream"),
        ],
        &bytes,
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let start = Instant::now();
    let asset = loop {
        let r = http(
            engine.http,
            "GET",
            &format!("/v1/orgs/{org}/assets/{asset_id}"),
            &[("authorization", &auth)],
            b"",
        );
        assert_eq!(r.status, 200);
        let a = r.json()["asset"].clone();
        assert_ne!(a["status"], "errored", "{a}");
        if a["status"] == "ready" {
            break a;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "not ready: {a}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let pb = asset["playback_id"].as_str().unwrap().to_owned();
    let r = http(
        engine.http,
        "GET",
        &format!("/vod/{pb}/catalog.json"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    (pb, r.json())
}

fn get(engine: &Engine, pb: &str, file: &str) -> Vec<u8> {
    let r = http(engine.http, "GET", &format!("/vod/{pb}/{file}"), &[], b"");
    assert_eq!(r.status, 200, "{file}");
    assert!(!r.body.is_empty(), "{file}");
    r.body
}

/// ffprobe's packets of a file: (dts seconds, pts seconds, keyframe), in decode order.
fn packets(file: &Path) -> Vec<(f64, f64, bool)> {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "0"])
        .args([
            "-show_entries",
            "packet=dts_time,pts_time,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(file));
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
            (num(f[1]), num(f[0]), f[2].contains('K'))
        })
        .collect()
}

/// Check the catalog and the served segments of one packaged asset.
fn check_ladder(engine: &Engine, pb: &str, catalog: &Value, dir: &Path, what: &str) {
    let tracks = catalog["tracks"].as_array().expect("tracks");
    let video: Vec<&Value> = tracks.iter().filter(|t| t["role"] == "video").collect();
    let names: Vec<&str> = video.iter().map(|t| t["name"].as_str().unwrap()).collect();
    // 720p source: the 480p and 360p rungs; 1080p (an upscale) and 720p (the source's own
    // height) are not encoded.
    assert_eq!(
        names,
        ["video/source", "video/480p", "video/360p"],
        "{what}"
    );
    assert_eq!(
        tracks.len(),
        4,
        "three video renditions and the audio: {what}"
    );
    let group = &video[0]["altGroup"];
    assert!(group.is_u64(), "{what}: altGroup");
    for (t, (height, width, bitrate)) in video.iter().zip([
        (720, 1280, None),
        (480, 854, Some(1_500_000)),
        (360, 640, Some(800_000)),
    ]) {
        assert_eq!(
            &t["altGroup"], group,
            "{what}: one altGroup for the renditions"
        );
        assert_eq!(t["height"], height, "{what}: {t}");
        assert_eq!(t["width"], width, "{what}: {t}");
        if let Some(b) = bitrate {
            assert_eq!(t["bitrate"], b, "{what}: {t}");
        }
        assert!(t["height"].as_u64() <= video[0]["height"].as_u64());
    }
    let audio = tracks.iter().find(|t| t["role"] == "audio").expect("audio");
    assert_ne!(
        &audio["altGroup"], group,
        "{what}: audio is not a video alternative"
    );

    // Boundaries from the catalog: the same segment count and start times everywhere.
    let starts = |t: &Value| -> Vec<f64> {
        let ts = t["timescale"].as_f64().unwrap();
        let mut at = t["segmentStartTime"].as_f64().unwrap();
        let mut out = Vec::new();
        for d in t["segmentDurations"].as_array().unwrap() {
            out.push(at / ts);
            at += d.as_f64().unwrap();
        }
        out
    };
    let reference = starts(video[0]);
    assert!(reference.len() >= 3, "{what}: {reference:?}");
    let frame = 1.0 / 25.0;
    for t in &video {
        assert_eq!(
            t["segmentCount"].as_u64(),
            Some(reference.len() as u64),
            "{what}: {t}"
        );
        let s = starts(t);
        for (a, b) in s.iter().zip(&reference) {
            assert!(
                (a - b).abs() < frame / 2.0,
                "{what}: {} starts {s:?} vs {reference:?}",
                t["name"]
            );
        }
    }

    // Served segments, read back with ffprobe: segment i of every rendition starts with a
    // keyframe at the same decode and presentation time; each rendition decodes whole.
    let mut firsts: Vec<Vec<(f64, f64)>> = Vec::new();
    for t in &video {
        let name = t["name"].as_str().unwrap();
        let init = get(engine, pb, t["initUrl"].as_str().unwrap());
        let template = t["segmentTemplate"].as_str().unwrap();
        let mut whole = init.clone();
        let mut mine = Vec::new();
        for (i, &start) in reference.iter().enumerate() {
            let seg = get(engine, pb, &template.replace("{index}", &i.to_string()));
            whole.extend_from_slice(&seg);
            let f = dir.join(format!("{}-{i}.mp4", name.replace('/', "_")));
            std::fs::write(&f, [init.as_slice(), seg.as_slice()].concat()).unwrap();
            let p = packets(&f);
            let &(dts, pts, key) = p
                .first()
                .unwrap_or_else(|| panic!("{what}: {name} {i}: no packets"));
            assert!(
                key,
                "{what}: {name} segment {i} does not start with a keyframe"
            );
            assert!(
                (dts - start).abs() < frame / 2.0,
                "{what}: {name} segment {i} starts at dts {dts}, the catalog says {start}"
            );
            mine.push((dts, pts));
        }
        let past = http(
            engine.http,
            "GET",
            &format!(
                "/vod/{pb}/{}",
                template.replace("{index}", &reference.len().to_string())
            ),
            &[],
            b"",
        );
        assert_eq!(past.status, 404, "{what}: past the last segment");
        let f = dir.join(format!("{}-whole.mp4", name.replace('/', "_")));
        std::fs::write(&f, &whole).unwrap();
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&f)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{what}: {name} does not decode: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let h = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=height",
            ])
            .args(["-of", "csv=p=0"])
            .arg(&f));
        assert_eq!(
            String::from_utf8_lossy(&h).trim(),
            t["height"].to_string(),
            "{what}: {name} height"
        );
        firsts.push(mine);
    }
    for (t, mine) in video.iter().zip(&firsts).skip(1) {
        for (i, ((dts, pts), (rdts, rpts))) in mine.iter().zip(&firsts[0]).enumerate() {
            assert!(
                (dts - rdts).abs() < frame / 2.0 && (pts - rpts).abs() < frame / 2.0,
                "{what}: {} segment {i} starts at dts/pts {dts}/{pts}, the source's at {rdts}/{rpts}",
                t["name"]
            );
        }
    }
}

#[test]
fn vod_ladder_renditions_align_and_are_served() {
    let dir = std::env::temp_dir().join(format!("clutchcall-vod-ladder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let engine = Engine::start(&["--vod-ladder", LADDER]);
    let (key, org) = credentials(&engine.data_dir);
    for (h264, what) in [(true, "stream-copy source"), (false, "transcoded source")] {
        let src = make_source(&dir, h264);
        let (pb, catalog) = upload_and_package(&engine, &key, &org, &src);
        check_ladder(&engine, &pb, &catalog, &dir, what);
    }
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
