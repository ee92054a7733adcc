//! `cargo run --release -p clutchcall-vod --example package -- <source> <out-dir>`: package one
//! file into a local store and print the timings as JSON (bench/upload-vod uses it).

use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let source = PathBuf::from(args.next().ok_or("usage: package <source> <out-dir>")?);
    let out = PathBuf::from(args.next().ok_or("usage: package <source> <out-dir>")?);
    let store = vod::Storage::local(&out.join("objects"))?;
    let cfg = vod::Config {
        work_dir: out.join("work"),
        ..vod::Config::default()
    };
    let p = vod::package(&cfg, &source, &store, "vod/bench", "bench").await?;
    println!(
        "{}",
        serde_json::json!({
            "remuxed": p.remuxed,
            "duration_s": p.duration_ms as f64 / 1000.0,
            "ffmpeg_s": p.ffmpeg_secs,
            "total_s": p.total_secs,
            "bytes": p.bytes,
            "segments": p.catalog.tracks.iter().map(|t| t.segment_count).sum::<usize>(),
        })
    );
    Ok(())
}
