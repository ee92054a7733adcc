//! RTMP ingest with an ABR ladder (recipe 2).
//!
//! Owns: the RTMP listener (handshake, chunk stream, AMF0 commands, FLV payloads), the
//! authorization of RTMP publishers (stream key → [`relay::auth::Authorizer`], lv id → org via
//! [`Lookup`]), FLV → CMAF packaging of a passthrough `source` rendition, the supervised ffmpeg
//! child that encodes the ladder, and publishing every rendition plus the MSF catalog into the
//! in-process relay ([`relay::registry::Registry`]).
//!
//! Must not: open any other socket, talk to the database (the binary supplies [`Lookup`] and
//! the authorizer), or spawn tasks other than the per-connection tasks (each with a small
//! watcher for its stop tokens) and per-broadcast transcoder supervisors it owns (they end
//! with [`Server::run`]'s future or their broadcast). Connections do their handshake and
//! commands on [`Config::event_loops`] dedicated single-threaded runtimes, started and joined
//! by [`Server::run`]; a publishing connection's media path runs on a thread of its own
//! (blocking reads), which ends with the connection.
//!
//! Tracks in `stream/<org>/<lv_id>` (CMSF: one track per rendition and media type):
//! `.catalog` (MSF JSON, one group per catalog version, object 0), `video/source`,
//! `video/<name>` per ladder rung (e.g. `video/720p`), `audio/source`. A group is one GOP of the
//! source and every video rendition uses the source's group ids (one `altGroup`); each object
//! is one CMAF chunk (moof+mdat) holding one frame. Publisher priorities (lower is more
//! important): catalog 0, audio 1, ladder rungs from the lowest (2, 3, …), source last.

mod broadcast;
mod ladder;
pub mod rtmp;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

pub use server::Server;

/// One rung of the ABR ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Track suffix: the track is `video/<name>`.
    pub name: String,
    /// Output height; width keeps the source's aspect ratio. Rungs taller than the source
    /// are skipped (never upscale).
    pub height: u32,
    /// Target video bitrate, bits per second.
    pub video_bitrate: u64,
}

impl Rendition {
    pub fn new(name: &str, height: u32, video_bitrate: u64) -> Self {
        Self {
            name: name.to_owned(),
            height,
            video_bitrate,
        }
    }

    /// The default ladder: 720p, 480p, 360p.
    pub fn default_ladder() -> Vec<Rendition> {
        vec![
            Rendition::new("720p", 720, 3_000_000),
            Rendition::new("480p", 480, 1_500_000),
            Rendition::new("360p", 360, 800_000),
        ]
    }

    /// Parse a ladder written `HEIGHT:KBITS,…` (e.g. `720:3000,480:1500,360:800`); rung
    /// `720` is named `720p` (track `video/720p`). An empty string or `none` is no ladder.
    pub fn parse_ladder(s: &str) -> Result<Vec<Rendition>, LadderError> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        let mut out: Vec<Rendition> = Vec::new();
        for rung in s.split(',').map(str::trim) {
            let err = |why: &'static str| LadderError {
                rung: rung.chars().take(40).collect(),
                why,
            };
            let (h, k) = rung.split_once(':').ok_or(err("expected HEIGHT:KBITS"))?;
            let height: u32 = h
                .trim()
                .parse()
                .map_err(|_| err("height is not a number"))?;
            let kbits: u64 = k
                .trim()
                .parse()
                .map_err(|_| err("bitrate is not a number"))?;
            if !(16..=4320).contains(&height) || height % 2 != 0 {
                return Err(err("height must be even, 16 to 4320"));
            }
            if !(50..=200_000).contains(&kbits) {
                return Err(err("bitrate must be 50 to 200000 kbit/s"));
            }
            if out.iter().any(|r| r.height == height) {
                return Err(err("height appears twice"));
            }
            out.push(Rendition::new(&format!("{height}p"), height, kbits * 1000));
        }
        Ok(out)
    }
}

/// A ladder string [`Rendition::parse_ladder`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ladder rung {rung:?}: {why}")]
pub struct LadderError {
    pub rung: String,
    pub why: &'static str,
}

/// Ingest settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// RTMP listen address. Default `127.0.0.1:1935`.
    pub listen: SocketAddr,
    /// ABR ladder; empty disables transcoding (source only).
    pub ladder: Vec<Rendition>,
    /// The ffmpeg executable. Default `ffmpeg` (from `PATH`).
    pub ffmpeg_path: PathBuf,
    /// x264 preset for the ladder. Default `veryfast`.
    pub preset: String,
    /// How long a broadcast outlives its encoder's connection so a reconnect continues it.
    pub grace: Duration,
    /// A connection that completes no RTMP message for this long is closed.
    pub idle_timeout: Duration,
    /// Time allowed from TCP accept to an accepted `publish`.
    pub publish_timeout: Duration,
    /// ffmpeg restart back-off: first delay, doubled up to `restart_max`.
    pub restart_min: Duration,
    pub restart_max: Duration,
    /// Precede every source chunk (`video/source`, `audio/source`) with a `prft` box holding
    /// the wallclock at which it was packaged, right after its RTMP message arrived, so a
    /// subscriber on the same clock can measure ingest-to-subscriber delay
    /// (bench/rtmp-ingest). Default off: 32 bytes per object, and not every player accepts it.
    pub producer_reference_time: bool,
    /// RTMP connections do their handshake and commands on this many dedicated threads, each
    /// a single-threaded event loop (spread round-robin); 0 serves them on the runtime that
    /// polls [`Server::run`]. Once a connection publishes, its media path (socket reads, chunk
    /// reassembly, CMAF packaging) moves to a thread of its own that blocks in `recv`: no
    /// event loop, waker or scheduler between the kernel and the packager. Authorization and
    /// the ladder's transcoder supervisors run on the runtime that polls [`Server::run`].
    /// Default 1.
    pub event_loops: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1935)),
            ladder: Rendition::default_ladder(),
            ffmpeg_path: PathBuf::from("ffmpeg"),
            preset: "veryfast".to_owned(),
            grace: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(20),
            publish_timeout: Duration::from_secs(10),
            restart_min: Duration::from_millis(500),
            restart_max: Duration::from_secs(30),
            producer_reference_time: false,
            event_loops: 1,
        }
    }
}

/// Maps an RTMP URL's external input id (`lv_…`) to the org that owns it; the namespace is
/// `stream/<org>/<lv_id>` but the RTMP URL carries only the lv id. Implemented by the binary
/// over the control plane.
pub trait Lookup: Send + Sync + 'static {
    /// `Ok(None)` when no input has this id.
    fn org_of(&self, lv_id: &str) -> BoxFuture<'static, Result<Option<String>, String>>;
}

/// Data-plane status of one RTMP broadcast, by lv id, from [`Server::status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// An encoder is connected (false during the reconnect grace window).
    pub live: bool,
    /// Track names currently in the catalog.
    pub renditions: Vec<String>,
    /// The last transcoder failure (ffmpeg missing, exited, …); cleared when it produces
    /// output again.
    pub transcoder_error: Option<String>,
    /// How many times the transcoder was (re)started.
    pub transcoder_starts: u32,
    /// The running ffmpeg's process id.
    pub transcoder_pid: Option<u32>,
}

/// Ingest failures surfaced to the binary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding RTMP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("RTMP accept failed: {0}")]
    Accept(std::io::Error),
    #[error("starting the RTMP event loop threads: {0}")]
    EventLoops(std::io::Error),
}
