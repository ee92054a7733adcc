//! Packaging a source file to CMAF: ffprobe, one ffmpeg run (stream copy for H.264/AAC, else
//! transcode; optional ladder rungs), then init + media segments + `catalog.json` into the
//! store.
//!
//! Output layout under `prefix` (e.g. `vod/as_…`):
//! `catalog.json`, and per track `<track>/init.mp4` and `<track>/<index>.m4s` (index from 0).
//! Tracks: `video/source`, `video/<rung>` (ladder), `audio/source`: the live names.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::process::Command;

use crate::boxes::TrackInfo;
use crate::segment::{self, Indexed, Planned, SegmentError};
use crate::storage::{Storage, StoreError};

/// One ladder rung, as for live: track `video/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    pub name: String,
    pub height: u32,
    pub video_bitrate: u64,
}

/// Packaging settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Rungs encoded besides the source (rungs taller than the source are skipped).
    pub ladder: Vec<Rung>,
    /// x264 preset for transcodes.
    pub preset: String,
    /// Shortest segment, seconds (segments are whole GOPs).
    pub min_segment_secs: f64,
    /// Keyframe interval when we transcode, seconds.
    pub gop_secs: f64,
    /// Scratch directory (ffmpeg outputs); created if missing.
    pub work_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            ladder: Vec::new(),
            preset: "veryfast".into(),
            min_segment_secs: 1.0,
            gop_secs: 2.0,
            work_dir: std::env::temp_dir().join("clutchcall-vod"),
        }
    }
}

/// Why packaging failed. [`PackageError::code`] is the asset's error code;
/// [`PackageError::permanent`] says whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("not a media file: {0}")]
    NotMedia(String),
    #[error("no audio or video stream")]
    NoStreams,
    #[error("ffmpeg failed: {0}")]
    Ffmpeg(String),
    #[error("cannot run {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

impl PackageError {
    pub fn code(&self) -> &'static str {
        match self {
            PackageError::NotMedia(_) => "not_media",
            PackageError::NoStreams => "no_media_streams",
            PackageError::Ffmpeg(_) | PackageError::Segment(_) => "packaging_failed",
            PackageError::Spawn(..) => "packager_unavailable",
            PackageError::Store(_) | PackageError::Io(..) => "storage_error",
        }
    }

    /// Retrying cannot help: the input is at fault.
    pub fn permanent(&self) -> bool {
        matches!(
            self,
            PackageError::NotMedia(_)
                | PackageError::NoStreams
                | PackageError::Ffmpeg(_)
                | PackageError::Segment(_)
        )
    }
}

/// What ffprobe says about the source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    pub video: Option<Stream>,
    pub audio: Option<Stream>,
    pub duration_secs: f64,
    pub format: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub framerate: Option<f64>,
    pub pix_fmt: String,
}

/// Run ffprobe on `source`.
pub async fn probe(cfg: &Config, source: &Path) -> Result<Probe, PackageError> {
    let out = Command::new(&cfg.ffprobe)
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(source)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| PackageError::Spawn(cfg.ffprobe.display().to_string(), e))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(PackageError::NotMedia(last_line(&msg)));
    }
    parse_probe(&out.stdout)
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("unrecognized input")
        .chars()
        .take(300)
        .collect()
}

/// Parse ffprobe's JSON.
pub fn parse_probe(json: &[u8]) -> Result<Probe, PackageError> {
    let v: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| PackageError::NotMedia(format!("ffprobe output: {e}")))?;
    let mut p = Probe {
        format: v["format"]["format_name"].as_str().unwrap_or("").to_owned(),
        duration_secs: v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        ..Default::default()
    };
    let empty = Vec::new();
    for s in v["streams"].as_array().unwrap_or(&empty) {
        let codec = s["codec_name"].as_str().unwrap_or("").to_owned();
        let dim = |k: &str| {
            s[k].as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        match s["codec_type"].as_str() {
            Some("video") if p.video.is_none() => {
                // Cover art (attached pictures) is not a video track.
                if s["disposition"]["attached_pic"].as_u64() == Some(1) {
                    continue;
                }
                p.video = Some(Stream {
                    codec,
                    width: dim("width"),
                    height: dim("height"),
                    framerate: s["avg_frame_rate"]
                        .as_str()
                        .and_then(rational)
                        .or_else(|| s["r_frame_rate"].as_str().and_then(rational)),
                    pix_fmt: s["pix_fmt"].as_str().unwrap_or("").to_owned(),
                });
            }
            Some("audio") if p.audio.is_none() => {
                p.audio = Some(Stream {
                    codec,
                    ..Default::default()
                });
            }
            _ => {}
        }
    }
    if p.video.is_none() && p.audio.is_none() {
        return Err(PackageError::NoStreams);
    }
    Ok(p)
}

fn rational(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0).then_some(n / d)
}

/// The VOD catalog: the live MSF document plus, per track, what a player needs to fetch and
/// seek a finished presentation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub version: &'static str,
    pub generated_at: u64,
    /// MSF: the presentation is finished (always true for VOD).
    pub is_complete: bool,
    pub tracks: Vec<CatalogTrack>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogTrack {
    #[serde(flatten)]
    pub base: media::catalog::Track,
    /// Milliseconds.
    pub track_duration: u64,
    /// `<track>/{index}.m4s`, relative to `catalog.json`; `{index}` from 0.
    pub segment_template: String,
    /// `<track>/init.mp4`, relative to `catalog.json` (same bytes as `initData`).
    pub init_url: String,
    pub segment_count: usize,
    /// Decode time of segment 0, in `timescale` units.
    pub segment_start_time: u64,
    /// Duration of every segment, in `timescale` units.
    pub segment_durations: Vec<u64>,
}

/// Result of [`package`].
#[derive(Debug, Clone)]
pub struct Packaged {
    pub catalog: Catalog,
    pub duration_ms: u64,
    /// Stream copy (no re-encode) of the source video.
    pub remuxed: bool,
    pub probe: Probe,
    /// Total bytes written (segments + init).
    pub bytes: u64,
    pub ffmpeg_secs: f64,
    pub total_secs: f64,
}

struct Output {
    track: String,
    file: PathBuf,
    bitrate_hint: Option<u64>,
    video: bool,
}

/// Package `source` into `store` under `prefix`. `job` names the scratch directory.
pub async fn package(
    cfg: &Config,
    source: &Path,
    store: &Storage,
    prefix: &str,
    job: &str,
) -> Result<Packaged, PackageError> {
    let started = Instant::now();
    let probe = probe(cfg, source).await?;
    let work = cfg.work_dir.join(job);
    let _ = tokio::fs::remove_dir_all(&work).await;
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| PackageError::Io(format!("create {}", work.display()), e))?;
    let result = run(cfg, source, store, prefix, &work, probe, started).await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

async fn run(
    cfg: &Config,
    source: &Path,
    store: &Storage,
    prefix: &str,
    work: &Path,
    probe: Probe,
    started: Instant,
) -> Result<Packaged, PackageError> {
    let copy_video = probe.video.as_ref().is_some_and(|v| {
        v.codec == "h264" && matches!(v.pix_fmt.as_str(), "yuv420p" | "yuvj420p" | "")
    });
    let copy_audio = probe.audio.as_ref().is_some_and(|a| a.codec == "aac");
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.push(source.display().to_string());
    let mut outputs: Vec<Output> = Vec::new();
    let frag_video = "+frag_keyframe+empty_moov+default_base_moof";
    let gop = format!("expr:gte(t,n_forced*{})", cfg.gop_secs);
    if let Some(v) = &probe.video {
        let file = work.join("video_source.mp4");
        args.extend([
            "-map".into(),
            "0:v:0".into(),
            "-an".into(),
            "-sn".into(),
            "-dn".into(),
        ]);
        if copy_video {
            args.extend(["-c:v".into(), "copy".into()]);
        } else {
            args.extend(
                [
                    "-c:v",
                    "libx264",
                    "-preset",
                    &cfg.preset,
                    "-crf",
                    "21",
                    "-pix_fmt",
                    "yuv420p",
                    "-force_key_frames",
                    &gop,
                    "-sc_threshold",
                    "0",
                ]
                .iter()
                .map(|s| (*s).to_owned()),
            );
        }
        args.extend(
            ["-f", "mp4", "-movflags", frag_video]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        args.push(file.display().to_string());
        outputs.push(Output {
            track: "video/source".into(),
            file,
            bitrate_hint: None,
            video: true,
        });
        for r in &cfg.ladder {
            if v.height != 0 && r.height >= v.height {
                continue;
            }
            let file = work.join(format!("video_{}.mp4", sanitize(&r.name)));
            let k = r.video_bitrate / 1000;
            let keys = if copy_video {
                "source".to_owned()
            } else {
                gop.clone()
            };
            args.extend([
                "-map".into(),
                "0:v:0".into(),
                "-an".into(),
                "-sn".into(),
                "-dn".into(),
                "-vf".into(),
                format!("scale=-2:{}", r.height),
                "-c:v".into(),
                "libx264".into(),
                "-preset".into(),
                cfg.preset.clone(),
                "-b:v".into(),
                format!("{k}k"),
                "-maxrate".into(),
                format!("{k}k"),
                "-bufsize".into(),
                format!("{}k", k * 2),
                "-pix_fmt".into(),
                "yuv420p".into(),
                "-force_key_frames".into(),
                keys,
                "-sc_threshold".into(),
                "0".into(),
                "-f".into(),
                "mp4".into(),
                "-movflags".into(),
                frag_video.into(),
            ]);
            args.push(file.display().to_string());
            outputs.push(Output {
                track: format!("video/{}", sanitize(&r.name)),
                file,
                bitrate_hint: Some(r.video_bitrate),
                video: true,
            });
        }
    }
    if probe.audio.is_some() {
        let file = work.join("audio_source.mp4");
        args.extend([
            "-map".into(),
            "0:a:0".into(),
            "-vn".into(),
            "-sn".into(),
            "-dn".into(),
        ]);
        if copy_audio {
            // ADTS AAC (MPEG-TS, raw .aac sources) must become raw AAC + AudioSpecificConfig in
            // MP4; the filter passes AAC that already is (MP4/MOV sources) through.
            args.extend(
                ["-c:a", "copy", "-bsf:a", "aac_adtstoasc"]
                    .iter()
                    .map(|s| (*s).to_owned()),
            );
        } else {
            args.extend(
                ["-c:a", "aac", "-b:a", "128k", "-ac", "2"]
                    .iter()
                    .map(|s| (*s).to_owned()),
            );
        }
        args.extend(
            [
                "-f",
                "mp4",
                "-movflags",
                "+empty_moov+default_base_moof",
                "-frag_duration",
                "200000",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        args.push(file.display().to_string());
        outputs.push(Output {
            track: "audio/source".into(),
            file,
            bitrate_hint: None,
            video: false,
        });
    }
    let t0 = Instant::now();
    let out = Command::new(&cfg.ffmpeg)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| PackageError::Spawn(cfg.ffmpeg.display().to_string(), e))?;
    if !out.status.success() {
        return Err(PackageError::Ffmpeg(last_line(&String::from_utf8_lossy(
            &out.stderr,
        ))));
    }
    let ffmpeg_secs = t0.elapsed().as_secs_f64();

    let mut indexed: Vec<(Output, Indexed)> = Vec::new();
    for o in outputs {
        let ix = segment::index(&o.file).await?;
        if ix.fragments.is_empty() {
            continue;
        }
        indexed.push((o, ix));
    }
    let reference = indexed
        .iter()
        .find(|(o, _)| o.video)
        .or_else(|| indexed.first())
        .map(|(_, ix)| ix)
        .ok_or(PackageError::NoStreams)?;
    let bounds = segment::boundaries(reference, cfg.min_segment_secs);

    let mut tracks = Vec::new();
    let mut total_bytes = 0u64;
    let mut duration_ms = 0u64;
    for (o, ix) in &indexed {
        let planned: Vec<Vec<Planned>> = segment::plan(ix, &bounds)
            .into_iter()
            .filter(|runs| !runs.is_empty())
            .collect();
        let mut f = tokio::fs::File::open(&o.file)
            .await
            .map_err(|e| PackageError::Io(format!("open {}", o.file.display()), e))?;
        let mut durations = Vec::with_capacity(planned.len());
        let mut media_bytes = 0u64;
        for (i, runs) in planned.iter().enumerate() {
            let len: u64 = runs.iter().map(|r| r.len).sum();
            let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            for r in runs {
                f.seek(std::io::SeekFrom::Start(r.offset))
                    .await
                    .map_err(|e| PackageError::Io("seek".into(), e))?;
                let mut take = (&mut f).take(r.len);
                take.read_to_end(&mut buf)
                    .await
                    .map_err(|e| PackageError::Io(format!("read {}", o.file.display()), e))?;
            }
            media_bytes += buf.len() as u64;
            store
                .put(&format!("{prefix}/{}/{i}.m4s", o.track), Bytes::from(buf))
                .await?;
            durations.push(runs.iter().map(|r| r.duration).sum::<u64>());
        }
        store
            .put(
                &format!("{prefix}/{}/init.mp4", o.track),
                Bytes::from(ix.init.clone()),
            )
            .await?;
        total_bytes += media_bytes + ix.init.len() as u64;
        let ts = u64::from(ix.track.timescale.max(1));
        let total: u64 = durations.iter().sum();
        let ms = total.saturating_mul(1000) / ts;
        duration_ms = duration_ms.max(ms);
        let bitrate = o
            .bitrate_hint
            .or_else(|| (ms > 0).then(|| media_bytes.saturating_mul(8000) / ms));
        let start = planned
            .first()
            .and_then(|r| r.first())
            .map(|r| r.start)
            .unwrap_or(0);
        tracks.push(CatalogTrack {
            base: base_track(&o.track, &ix.track, &ix.init, bitrate, &probe),
            track_duration: ms,
            segment_template: format!("{}/{{index}}.m4s", o.track),
            init_url: format!("{}/init.mp4", o.track),
            segment_count: durations.len(),
            segment_start_time: start,
            segment_durations: durations,
        });
    }
    let generated_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let catalog = Catalog {
        version: media::catalog::VERSION,
        generated_at,
        is_complete: true,
        tracks,
    };
    let json = serde_json::to_vec(&catalog)
        .map_err(|e| PackageError::Io("catalog".into(), std::io::Error::other(e)))?;
    store
        .put(&format!("{prefix}/catalog.json"), Bytes::from(json))
        .await?;
    Ok(Packaged {
        catalog,
        duration_ms,
        remuxed: copy_video || probe.video.is_none(),
        probe,
        bytes: total_bytes,
        ffmpeg_secs,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(32)
        .collect()
}

fn base_track(
    name: &str,
    t: &TrackInfo,
    init: &[u8],
    bitrate: Option<u64>,
    probe: &Probe,
) -> media::catalog::Track {
    let entry_kind = t
        .sample_entry
        .get(4..8)
        .map(|k| [k[0], k[1], k[2], k[3]])
        .unwrap_or([0; 4]);
    let video = &t.handler == b"vide";
    let codec = if video {
        media::mp4read::entry_config(&t.sample_entry, b"avcC")
            .and_then(|c| media::codec::avc_codec_string(c).ok())
            .or_else(|| Some(String::from_utf8_lossy(&entry_kind).into_owned()))
    } else {
        Some(audio_codec(&t.sample_entry, &entry_kind))
    };
    let mut tr = media::catalog::Track {
        name: name.to_owned(),
        packaging: "cmaf".into(),
        is_live: false,
        role: Some(if video { "video" } else { "audio" }.into()),
        codec,
        bitrate,
        timescale: Some(t.timescale),
        alt_group: Some(if video { 1 } else { 2 }),
        render_group: Some(1),
        init_data: Some(media::catalog::base64(init)),
        max_grp_sap_starting_type: video.then_some(1),
        ..Default::default()
    };
    if video {
        tr.width = Some(t.width);
        tr.height = Some(t.height);
        tr.framerate = probe.video.as_ref().and_then(|v| v.framerate);
    } else {
        tr.samplerate = Some(t.samplerate);
        tr.channel_config = Some(t.channels.to_string());
    }
    tr
}

/// `mp4a.40.<aot>` from the esds' AudioSpecificConfig, else the entry type.
fn audio_codec(entry: &[u8], kind: &[u8; 4]) -> String {
    if kind == b"mp4a" {
        let aot = entry
            .get(36..)
            .and_then(|b| crate::boxes::child(b, b"esds").ok().flatten())
            .and_then(|esds| esds.get(4..))
            .and_then(esds_asc)
            .and_then(|asc| media::codec::parse_asc(asc).ok())
            .map_or(2, |a| a.object_type);
        return format!("mp4a.40.{aot}");
    }
    if kind == b"Opus" {
        return "opus".into();
    }
    String::from_utf8_lossy(kind).into_owned()
}

/// One MPEG-4 descriptor: (tag, payload, rest).
fn descriptor(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, mut rest) = b.split_first()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let (&x, r) = rest.split_first()?;
        rest = r;
        len = (len << 7) | usize::from(x & 0x7f);
        if x & 0x80 == 0 {
            break;
        }
    }
    let payload = rest.get(..len)?;
    Some((tag, payload, &rest[len..]))
}

/// The DecoderSpecificInfo (AudioSpecificConfig) inside an esds' ES_Descriptor.
pub(crate) fn esds_asc(b: &[u8]) -> Option<&[u8]> {
    let (tag, es, _) = descriptor(b)?;
    if tag != 0x03 {
        return None;
    }
    let flags = *es.get(2)?;
    let mut at = 3usize;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*es.get(at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let (tag, dc, _) = descriptor(es.get(at..)?)?;
    if tag != 0x04 {
        return None;
    }
    let (tag, dsi, _) = descriptor(dc.get(13..)?)?;
    (tag == 0x05).then_some(dsi)
}
