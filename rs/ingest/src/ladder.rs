//! The ABR ladder: one supervised ffmpeg child per broadcast, fed FLV (H.264) on stdin by our
//! demuxer, writing one fragmented MP4 with a video track per rung on stdout.
//!
//! Alignment: ffmpeg encodes with `-force_key_frames source` and no B-frames, frame for frame
//! (`-fps_mode passthrough`), so the k-th output sample of a rung is the k-th input frame in
//! presentation order. Each output sample takes that input frame's timestamp and group id, so
//! every rung shares the source's timeline and group boundaries. If ffmpeg dies the source
//! keeps flowing; the rungs leave the catalog and ffmpeg is restarted with back-off.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::catalog;
use media::codec::avc_codec_string;
use media::flv;
use media::fmp4::{self, Media, Sample, TrackInit};
use media::mp4read::{self, entry_config, Event};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::broadcast::{lock, Broadcast, PRIO_LADDER_BASE, VIDEO_TIMESCALE};
use crate::{Config, Rendition};

/// Frames buffered towards ffmpeg before the source path starts dropping them.
pub(crate) const QUEUE: usize = 600;

#[derive(Debug)]
pub(crate) enum LadderInput {
    Config {
        avcc: Vec<u8>,
        width: u32,
        height: u32,
        framerate: Option<f64>,
    },
    Frame {
        dts_ms: i64,
        cts_ms: i32,
        keyframe: bool,
        group: u64,
        data: Bytes,
    },
    /// The source is not H.264: no ladder until it is.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq)]
struct Source {
    avcc: Vec<u8>,
    width: u32,
    height: u32,
    framerate: Option<f64>,
}

enum Outcome {
    /// The broadcast is over.
    Ended,
    /// The source changed: start again at the next keyframe, no back-off.
    Restart,
    Failed(String),
}

/// The rungs to encode for a source height (never upscale; unknown height keeps all).
pub fn rungs_for(ladder: &[Rendition], source_height: u32) -> Vec<Rendition> {
    ladder
        .iter()
        .filter(|r| source_height == 0 || r.height <= source_height)
        .cloned()
        .collect()
}

/// ffmpeg arguments for `rungs`, reading FLV from `input` (`pipe:0` in production) and
/// writing fragmented MP4 to `output` (`pipe:1`). Public so the benchmark runs the very same
/// command bare.
pub fn ffmpeg_args(preset: &str, rungs: &[Rendition], input: &str, output: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-fflags",
        "+nobuffer",
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-f",
        "flv",
        "-i",
        input,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let n = rungs.len();
    let mut graph = if n == 1 {
        String::new()
    } else {
        format!("[0:v]split={n}")
    };
    if n > 1 {
        for i in 0..n {
            graph.push_str(&format!("[i{i}]"));
        }
        graph.push(';');
    }
    for (i, r) in rungs.iter().enumerate() {
        let src = if n == 1 {
            "[0:v]".to_owned()
        } else {
            format!("[i{i}]")
        };
        graph.push_str(&format!("{src}scale=-2:{}[o{i}]", r.height));
        if i + 1 < n {
            graph.push(';');
        }
    }
    a.push("-filter_complex".into());
    a.push(graph);
    for (i, r) in rungs.iter().enumerate() {
        let k = r.video_bitrate / 1000;
        a.extend([
            "-map".into(),
            format!("[o{i}]"),
            format!("-c:v:{i}"),
            "libx264".into(),
            format!("-b:v:{i}"),
            format!("{k}k"),
            format!("-maxrate:v:{i}"),
            format!("{k}k"),
            format!("-bufsize:v:{i}"),
            format!("{}k", k * 2),
        ]);
    }
    for s in [
        "-preset",
        preset,
        "-tune",
        "zerolatency",
        "-bf",
        "0",
        "-g",
        "600",
        "-sc_threshold",
        "0",
        "-force_key_frames",
        "source",
        "-pix_fmt",
        "yuv420p",
        "-fps_mode",
        "passthrough",
        "-f",
        "mp4",
        "-movflags",
        "empty_moov+default_base_moof+frag_every_frame",
        output,
    ] {
        a.push(s.to_owned());
    }
    a
}

pub(crate) async fn supervise(
    config: Config,
    b: Weak<Broadcast>,
    mut rx: mpsc::Receiver<LadderInput>,
) {
    let mut src: Option<Source> = None;
    let mut backoff = config.restart_min;
    // Priorities by rung height, lowest rung first (most important).
    let mut by_height: Vec<&Rendition> = config.ladder.iter().collect();
    by_height.sort_by_key(|r| r.height);
    let prio: BTreeMap<String, u8> = by_height
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), PRIO_LADDER_BASE.saturating_add(i as u8)))
        .collect();
    loop {
        // Wait for a configuration and a keyframe.
        let first = loop {
            match rx.recv().await {
                None => return,
                Some(LadderInput::Config {
                    avcc,
                    width,
                    height,
                    framerate,
                }) => {
                    src = Some(Source {
                        avcc,
                        width,
                        height,
                        framerate,
                    })
                }
                Some(LadderInput::Unsupported) => src = None,
                Some(f @ LadderInput::Frame { keyframe: true, .. }) if src.is_some() => break f,
                Some(_) => {}
            }
        };
        let Some(source) = src.clone() else { continue };
        let rungs = rungs_for(&config.ladder, source.height);
        if rungs.is_empty() {
            continue;
        }
        let Some(bc) = b.upgrade() else { return };
        let started = Instant::now();
        let outcome = run_once(
            &config, &bc, &source, &rungs, &prio, first, &mut rx, &mut src,
        )
        .await;
        bc.status(|s| s.transcoder_pid = None);
        match outcome {
            Outcome::Ended => return,
            Outcome::Restart => {
                bc.ladder_down();
                backoff = config.restart_min;
            }
            Outcome::Failed(why) => {
                tracing::error!(lv = %bc.lv, error = %why, retry_in = ?backoff, "transcoder failed; the source rendition keeps flowing");
                bc.status(|s| s.transcoder_error = Some(why));
                bc.ladder_down();
                drop(bc);
                if started.elapsed() > config.restart_max {
                    backoff = config.restart_min;
                }
                // Back off, still draining the queue (keep the newest configuration).
                let deadline = tokio::time::Instant::now() + backoff;
                loop {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Err(_) => break,
                        Ok(None) => return,
                        Ok(Some(LadderInput::Config {
                            avcc,
                            width,
                            height,
                            framerate,
                        })) => {
                            src = Some(Source {
                                avcc,
                                width,
                                height,
                                framerate,
                            })
                        }
                        Ok(Some(LadderInput::Unsupported)) => src = None,
                        Ok(Some(_)) => {}
                    }
                }
                backoff = (backoff * 2).min(config.restart_max);
            }
        }
    }
}

type Pending = Arc<Mutex<Vec<BTreeMap<(i64, u64), u64>>>>;

#[allow(clippy::too_many_arguments)]
async fn run_once(
    config: &Config,
    b: &Arc<Broadcast>,
    source: &Source,
    rungs: &[Rendition],
    prio: &BTreeMap<String, u8>,
    first: LadderInput,
    rx: &mut mpsc::Receiver<LadderInput>,
    src: &mut Option<Source>,
) -> Outcome {
    let args = ffmpeg_args(&config.preset, rungs, "pipe:0", "pipe:1");
    let mut child = match Command::new(&config.ffmpeg_path)
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Failed(format!(
                "cannot start {}: {e}",
                config.ffmpeg_path.display()
            ))
        }
    };
    let pid = child.id();
    tracing::info!(lv = %b.lv, ?pid, rungs = ?rungs.iter().map(|r| &r.name).collect::<Vec<_>>(), "transcoder started");
    b.status(|s| {
        s.transcoder_pid = pid;
        s.transcoder_starts += 1;
    });
    let (Some(mut stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Outcome::Failed("ffmpeg pipes unavailable".into());
    };
    let pending: Pending = Arc::new(Mutex::new(vec![BTreeMap::new(); rungs.len()]));
    let tail = Arc::new(Mutex::new(VecDeque::<String>::new()));

    let writer = {
        let pending = pending.clone();
        async move {
            let mut seq = 0u64;
            let mut buf = flv::file_header(false, true);
            flv::write_tag(
                &mut buf,
                flv::TAG_VIDEO,
                0,
                &flv::avc_config_body(&source.avcc),
            );
            let mut next = Some(first);
            loop {
                let input = match next.take() {
                    Some(i) => i,
                    None => match rx.recv().await {
                        Some(i) => i,
                        None => return Outcome::Ended,
                    },
                };
                match input {
                    LadderInput::Frame {
                        dts_ms,
                        cts_ms,
                        keyframe,
                        group,
                        data,
                    } => {
                        seq += 1;
                        for m in lock(&pending).iter_mut() {
                            m.insert((dts_ms + i64::from(cts_ms), seq), group);
                        }
                        flv::write_tag(
                            &mut buf,
                            flv::TAG_VIDEO,
                            dts_ms.max(0) as u32,
                            &flv::avc_frame_body(keyframe, cts_ms, &data),
                        );
                    }
                    LadderInput::Config {
                        avcc,
                        width,
                        height,
                        framerate,
                    } => {
                        let new = Source {
                            avcc,
                            width,
                            height,
                            framerate,
                        };
                        if new.avcc != source.avcc || new.height != source.height {
                            *src = Some(new);
                            return Outcome::Restart;
                        }
                    }
                    LadderInput::Unsupported => {
                        *src = None;
                        return Outcome::Restart;
                    }
                }
                if let Err(e) = stdin.write_all(&buf).await {
                    return Outcome::Failed(format!("ffmpeg stopped reading its input: {e}"));
                }
                buf.clear();
            }
        }
    };

    let reader = {
        let pending = pending.clone();
        let b = b.clone();
        async move {
            let mut r = mp4read::Reader::new();
            let mut chunk = vec![0u8; 64 << 10];
            let mut tracks: Vec<(u32, u32)> = Vec::new(); // (track id, timescale) by rung
            let mut warned = false;
            loop {
                let n = match stdout.read(&mut chunk).await {
                    Ok(0) => return "ffmpeg closed its output".to_owned(),
                    Ok(n) => n,
                    Err(e) => return format!("reading ffmpeg output: {e}"),
                };
                r.push(&chunk[..n]);
                loop {
                    let ev = match r.next_event() {
                        Ok(Some(ev)) => ev,
                        Ok(None) => break,
                        Err(e) => return format!("ffmpeg output is not fragmented MP4: {e}"),
                    };
                    match ev {
                        Event::Init(ts) => {
                            tracks.clear();
                            for (i, t) in ts.iter().enumerate().take(rungs.len()) {
                                tracks.push((t.track_id, t.timescale));
                                let init = fmp4::init_segment(&TrackInit {
                                    track_id: 1,
                                    timescale: VIDEO_TIMESCALE,
                                    media: Media::Video {
                                        width: t.width,
                                        height: t.height,
                                    },
                                    sample_entry: t.sample_entry.clone(),
                                });
                                let codec = entry_config(&t.sample_entry, b"avcC")
                                    .and_then(|c| avc_codec_string(c).ok());
                                let rung = &rungs[i];
                                let name = format!("video/{}", rung.name);
                                let priority =
                                    prio.get(&rung.name).copied().unwrap_or(PRIO_LADDER_BASE);
                                // Claim the track before it is announced in the catalog.
                                b.with_rung(&name, priority, |_| ());
                                let (framerate, _) = b.source_info();
                                b.ladder_up(catalog::Track {
                                    name,
                                    packaging: "cmaf".into(),
                                    is_live: true,
                                    role: Some("video".into()),
                                    codec,
                                    width: Some(t.width),
                                    height: Some(t.height),
                                    framerate: framerate.or(source.framerate),
                                    bitrate: Some(rung.video_bitrate),
                                    timescale: Some(VIDEO_TIMESCALE),
                                    alt_group: Some(1),
                                    render_group: Some(1),
                                    init_data: Some(catalog::base64(&init)),
                                    max_grp_sap_starting_type: Some(2),
                                    label: Some(rung.name.clone()),
                                    ..Default::default()
                                });
                            }
                            b.status(|s| s.transcoder_error = None);
                        }
                        Event::Samples(samples) => {
                            for s in samples {
                                let Some(i) = tracks.iter().position(|(id, _)| *id == s.track_id)
                                else {
                                    continue;
                                };
                                let Some(((pts_ms, _), group)) =
                                    lock(&pending).get_mut(i).and_then(|m| m.pop_first())
                                else {
                                    continue;
                                };
                                let timescale = u64::from(tracks[i].1.max(1));
                                let duration = (u64::from(s.duration) * u64::from(VIDEO_TIMESCALE)
                                    / timescale)
                                    as u32;
                                let rung = &rungs[i];
                                let name = format!("video/{}", rung.name);
                                let priority =
                                    prio.get(&rung.name).copied().unwrap_or(PRIO_LADDER_BASE);
                                let misaligned = b.with_rung(&name, priority, |p| {
                                    let cur = p.current_group();
                                    let mut misaligned = false;
                                    if cur.is_none_or(|c| c < group) {
                                        if s.sync {
                                            p.start_group(group);
                                        } else {
                                            misaligned = true;
                                        }
                                    }
                                    if p.current_group().is_none() {
                                        return misaligned;
                                    }
                                    let seq = p.next_sequence();
                                    let c = fmp4::chunk(
                                        seq,
                                        1,
                                        (pts_ms.max(0) as u64) * u64::from(VIDEO_TIMESCALE / 1000),
                                        &[Sample {
                                            duration,
                                            cts: 0,
                                            sync: s.sync,
                                            data: s.data,
                                        }],
                                    );
                                    p.push(c);
                                    misaligned
                                });
                                if misaligned == Some(true) && !warned {
                                    warned = true;
                                    tracing::warn!(lv = %b.lv, rung = %rung.name, group, "rung keyframe not aligned with the source group");
                                }
                            }
                        }
                    }
                }
            }
        }
    };

    let stderr_task = {
        let tail = tail.clone();
        async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut t = lock(&tail);
                t.push_back(line.chars().take(300).collect());
                if t.len() > 5 {
                    t.pop_front();
                }
            }
            std::future::pending::<()>().await;
        }
    };

    let outcome = tokio::select! {
        o = writer => o,
        why = reader => Outcome::Failed(why),
        _ = stderr_task => Outcome::Failed("unreachable".into()),
    };
    let _ = child.start_kill();
    let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    match outcome {
        Outcome::Failed(why) => {
            let mut msg = why;
            if let Ok(Ok(st)) = status {
                msg.push_str(&format!(" ({st})"));
            }
            let t = lock(&tail);
            if !t.is_empty() {
                msg.push_str(": ");
                msg.push_str(&t.iter().cloned().collect::<Vec<_>>().join(" | "));
            }
            Outcome::Failed(msg)
        }
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_upscale() {
        let l = Rendition::default_ladder();
        assert_eq!(
            rungs_for(&l, 480)
                .iter()
                .map(|r| r.height)
                .collect::<Vec<_>>(),
            vec![480, 360]
        );
        assert_eq!(rungs_for(&l, 1080).len(), 3);
        assert!(rungs_for(&l, 240).is_empty());
    }

    #[test]
    fn parse_ladder_flag() {
        assert_eq!(
            Rendition::parse_ladder("720:3000,480:1500,360:800"),
            Ok(Rendition::default_ladder())
        );
        assert_eq!(Rendition::parse_ladder(" none "), Ok(vec![]));
        assert_eq!(Rendition::parse_ladder(""), Ok(vec![]));
        for bad in [
            "720",
            "720:x",
            "721:3000",
            "720:3000,720:1000",
            "0:100",
            "720:1",
        ] {
            assert!(Rendition::parse_ladder(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn args_map_every_rung() {
        let a = ffmpeg_args("veryfast", &Rendition::default_ladder(), "pipe:0", "pipe:1");
        let j = a.join(" ");
        assert!(j.contains("[0:v]split=3[i0][i1][i2];[i0]scale=-2:720[o0];[i1]scale=-2:480[o1];[i2]scale=-2:360[o2]"), "{j}");
        assert!(j.contains("-force_key_frames source"));
        assert_eq!(a.iter().filter(|s| *s == "-map").count(), 3);
    }
}
