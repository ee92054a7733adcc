//! A synthetic live source for tests and benchmarks: publishes two single-track fragmented MP4
//! files (video, audio; e.g. made by ffmpeg with `-movflags frag_keyframe+empty_moov+default_base_moof
//! -frag_duration 1`) into a relay in real time, the way the RTMP ingest does: a `.catalog`
//! (MSF JSON with initData), `video/source` and `audio/source`, one CMAF chunk per object,
//! one group per `--gop` seconds (group ids aligned across tracks), looping the files with
//! shifted decode times. Ends the tracks (PUBLISH_DONE TRACK_ENDED) after `--seconds` or on
//! SIGTERM/SIGINT.
//!
//! ```text
//! cargo run -p clutchcall-py --example cmaf_source -- --http http://127.0.0.1:8080 \
//!   --relay moqt://127.0.0.1:4443/ --namespace stream/org_x/lv_y --key <stream key> \
//!   --video v.mp4 --audio a.mp4 [--seconds 30] [--gop 1]
//! ```

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use client::{status, Config, Connection, GroupWriter, PublishOptions, TrackPublisher};
use clutchcall_py::cmaf;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Track {
    name: &'static str,
    role: &'static str,
    timescale: u32,
    init: Vec<u8>,
    chunks: Vec<(u64, Vec<u8>)>,
    /// Length of the file in its timescale (last decode time + the typical chunk spacing).
    length: u64,
}

fn load(path: &str, name: &'static str, role: &'static str) -> Result<Track> {
    let file = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let (init, raw) = cmaf::split_fragmented(&file)?;
    let timescale = cmaf::parse_init(&init)?.timescale;
    let mut chunks = Vec::new();
    let mut rw = cmaf::Rewriter::new();
    for c in raw {
        let dt = rw.rewrite(&c, 1)?.decode_time.unwrap_or(0);
        chunks.push((dt, c));
    }
    let step = match chunks.as_slice() {
        [.., (a, _), (b, _)] => b.saturating_sub(*a),
        _ => 0,
    };
    let length = chunks.last().map_or(0, |(t, _)| t + step);
    Ok(Track {
        name,
        role,
        timescale,
        init,
        chunks,
        length,
    })
}

fn arg(args: &HashMap<String, String>, k: &str) -> Result<String> {
    args.get(k)
        .cloned()
        .ok_or_else(|| format!("missing --{k}").into())
}

#[tokio::main]
async fn main() -> Result {
    let mut args = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        args.insert(k.trim_start_matches('-').to_owned(), v);
    }
    let seconds: f64 = args.get("seconds").map_or(Ok(0.0), |s| s.parse())?;
    let gop: f64 = args.get("gop").map_or(Ok(1.0), |s| s.parse())?;
    let mut tracks = vec![load(&arg(&args, "video")?, "video/source", "video")?];
    if let Some(a) = args.get("audio") {
        tracks.push(load(a, "audio/source", "audio")?);
    }
    let config = Config {
        token: Some(arg(&args, "key")?),
        ..Config::default()
    };
    let conn =
        Connection::connect_engine(&arg(&args, "http")?, &arg(&args, "relay")?, config).await?;
    let ns = arg(&args, "namespace")?;

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let entries: Vec<serde_json::Value> = tracks
        .iter()
        .map(|t| {
            let mut e = serde_json::json!({
                "name": t.name, "packaging": "cmaf", "isLive": true, "role": t.role,
                "timescale": t.timescale, "altGroup": if t.role == "video" { 1 } else { 2 },
                "initData": base64::engine::general_purpose::STANDARD.encode(&t.init),
            });
            if t.role == "video" {
                e["codec"] = "avc1.64001f".into();
                e["bitrate"] = 6_000_000.into();
            } else {
                e["codec"] = "mp4a.40.2".into();
                e["bitrate"] = 128_000.into();
                e["samplerate"] = t.timescale.into();
            }
            e
        })
        .collect();
    let catalog =
        serde_json::json!({ "version": "draft-01", "generatedAt": now_ms, "tracks": entries });
    let catalog_pub = conn
        .publish(
            ns.as_str(),
            ".catalog",
            PublishOptions {
                priority: 0,
                ..PublishOptions::default()
            },
        )
        .await?;
    let mut g = catalog_pub.group(0).await?;
    g.write(serde_json::to_vec(&catalog)?.into()).await?;
    g.finish().await?;
    let mut pubs: Vec<TrackPublisher> = Vec::new();
    for (i, t) in tracks.iter().enumerate() {
        let options = PublishOptions {
            priority: 1 + i as u8,
            ..PublishOptions::default()
        };
        pubs.push(conn.publish(ns.as_str(), t.name, options).await?);
    }
    println!("cmaf_source publishing {ns}");

    // Every chunk of every track, in decode order: (seconds, track, chunk index).
    let mut order: Vec<(f64, usize, usize)> = Vec::new();
    for (ti, t) in tracks.iter().enumerate() {
        for (ci, (dt, _)) in t.chunks.iter().enumerate() {
            order.push((*dt as f64 / f64::from(t.timescale), ti, ci));
        }
    }
    order.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let period = tracks
        .iter()
        .map(|t| t.length as f64 / f64::from(t.timescale))
        .fold(0.0, f64::max);
    // A whole number of groups per loop keeps group ids aligned.
    let period = (period / gop).ceil().max(1.0) * gop;

    let start = tokio::time::Instant::now();
    let mut writers: Vec<Option<GroupWriter>> = tracks.iter().map(|_| None).collect();
    let mut stop = Box::pin(shutdown());
    let mut lap: u64 = 0;
    'outer: loop {
        for &(t, ti, ci) in &order {
            let at = lap as f64 * period + t;
            if seconds > 0.0 && at >= seconds {
                break 'outer;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(start + Duration::from_secs_f64(at)) => {}
                _ = &mut stop => break 'outer,
            }
            let track = &tracks[ti];
            let group = ((at + 1e-6) / gop).floor() as u64;
            let mut chunk = track.chunks[ci].1.clone();
            let shift = (lap as f64 * period * f64::from(track.timescale)).round() as u64;
            cmaf::shift_decode_time(&mut chunk, shift)?;
            let current = writers[ti].as_ref().map(|w| w.group_id());
            if current != Some(group) {
                if let Some(w) = writers[ti].take() {
                    w.finish().await?;
                }
                writers[ti] = Some(pubs[ti].group(group).await?);
            }
            if let Some(w) = writers[ti].as_mut() {
                w.write(chunk.into()).await?;
            }
        }
        lap += 1;
    }
    for w in writers.into_iter().flatten() {
        w.finish().await?;
    }
    for p in pubs {
        p.finish(status::TRACK_ENDED).await?;
    }
    catalog_pub.finish(status::TRACK_ENDED).await?;
    println!("cmaf_source done");
    Ok(())
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
