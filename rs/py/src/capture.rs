//! The capture engine: resolve a signed playback URL, subscribe to a live broadcast over MoQT
//! (raw QUIC), and turn its tracks into one MP4 byte stream (init segment, then media chunks
//! in decode order). Python-free: [`start`] runs on a tokio runtime and reports through a
//! channel; `lib.rs` hands that to Python.
//!
//! Sessions. Every connection is a *session* with a generation number. The engine keeps one
//! primary session; [`Command::Renew`] starts a second one with a new ticket, and once the new
//! one covers everything the old one would still deliver (it delivered a chunk the old one
//! already did, or the old one reached the new one's first group), the old one is closed.
//! Reconnects after a lost connection work the same way. Chunks are deduplicated per track by
//! (group, object), so overlapping sessions never write a chunk twice and never leave a gap.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{Config, Connection, Event, Received, Start, SubscribeOptions, Verify};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::debug;

use crate::cmaf::{self, Interleaver, Rewriter, TrackInit};

/// `on_close` reasons.
pub mod reason {
    /// The ticket was refused (bad signature, expired, another id) or expired mid-capture.
    pub const AUTH_FAILED: &str = "auth_failed";
    /// The broadcast ended (or was not live).
    pub const ENDED: &str = "ended";
    /// The application closed the viewer.
    pub const CLOSED: &str = "closed";
    /// The connection was lost and the retries are exhausted.
    pub const NETWORK: &str = "network";
}

/// REQUEST_ERROR code DOES_NOT_EXIST.
const DOES_NOT_EXIST: u64 = 0x10;
/// How long a track that is late may hold back the other tracks' chunks.
const INTERLEAVE_WAIT: Duration = Duration::from_millis(1500);
/// How long a retired session stays open after the switch (its in-flight chunks still count).
const RETIRE_GRACE: Duration = Duration::from_secs(1);
/// A renewal switches over after this long even if overlap was never observed.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(15);
/// Groups remembered per track for deduplication.
const DEDUP_GROUPS: usize = 64;

/// Capture settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Video track to record (catalog name such as `video/720p`, or its last part / label such
    /// as `720p`); default the highest bitrate.
    pub rendition: Option<String>,
    /// Reconnect attempts after a lost connection before closing with `network`.
    pub retries: u32,
    /// How long to wait for a catalog that has audio when the first one has video only.
    pub catalog_wait: Duration,
    /// How long to wait for the broadcast to start (tracks that do not exist yet).
    pub live_wait: Duration,
    /// Timeout of each network step (HTTP, QUIC handshake, MoQT replies).
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rendition: None,
            retries: 5,
            catalog_wait: Duration::from_millis(1500),
            live_wait: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One piece of the output file.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The init segment (first chunk, once).
    pub is_init: bool,
    /// Bytes to append to the file.
    pub data: Vec<u8>,
    /// `"video"` or `"audio"` (empty for the init segment).
    pub track: &'static str,
    /// The MoQT group and object the chunk came in.
    pub group: u64,
    pub object: u64,
    /// Decode time in seconds (the chunk's tfdt over its timescale).
    pub decode_time: f64,
}

/// What the engine reports, in order; `Close` is always last and always sent.
#[derive(Debug, Clone)]
pub enum Output {
    Chunk(Chunk),
    /// Something worth logging that does not end the capture (a failed renewal, …).
    Warning(String),
    Close {
        reason: &'static str,
        detail: String,
    },
}

/// What the application asks of a running capture.
#[derive(Debug)]
pub enum Command {
    Close,
    Renew(String),
}

/// Counters for `stats()`.
#[derive(Debug, Default)]
pub struct Stats {
    pub chunks: AtomicU64,
    pub bytes: AtomicU64,
    pub duplicates: AtomicU64,
    pub reconnects: AtomicU64,
    pub renewals: AtomicU64,
    /// Largest video group written (+1; 0 = none).
    pub last_group: AtomicU64,
}

/// Why a step failed, already sorted into an `on_close` reason.
#[derive(Debug, Clone)]
enum Failure {
    Auth(String),
    NotLive(String),
    Ended(String),
    Network(String),
    Invalid(String),
}

impl Failure {
    fn from_client(e: &client::Error) -> Self {
        if e.is_auth_failed() {
            return Failure::Auth(e.to_string());
        }
        match e {
            client::Error::Refused { code, reason } if *code == DOES_NOT_EXIST => {
                Failure::NotLive(reason.clone())
            }
            client::Error::Invalid(m) => Failure::Invalid(m.clone()),
            other => Failure::Network(other.to_string()),
        }
    }

    fn from_close(c: &client::CloseReason) -> Self {
        if c.is_auth_failed() {
            Failure::Auth(format!("the relay closed the session: {c}"))
        } else {
            Failure::Network(format!("the session ended: {c}"))
        }
    }

    fn into_close(self) -> (&'static str, String) {
        match self {
            Failure::Auth(d) => (reason::AUTH_FAILED, d),
            Failure::NotLive(d) => (reason::ENDED, format!("the broadcast is not live: {d}")),
            Failure::Ended(d) => (reason::ENDED, d),
            Failure::Network(d) => (reason::NETWORK, d),
            Failure::Invalid(d) => (reason::NETWORK, format!("cannot capture: {d}")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resolving the signed URL

/// `GET /v1/playback/{id}` for a live id.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlaybackInfo {
    playback_id: String,
    kind: String,
    namespace: Option<String>,
    catalog_track: Option<String>,
    relay_url: Option<String>,
    certificate_sha256: Option<String>,
    token: String,
}

#[derive(Debug, Clone)]
struct Playback {
    id: String,
    namespace: String,
    catalog: String,
    relay: String,
    verify: Verify,
    token: String,
}

#[derive(Deserialize)]
struct ApiError {
    error: ApiErrorBody,
}

#[derive(Deserialize)]
struct ApiErrorBody {
    code: String,
    message: String,
}

/// The playback-info URL for a signed URL `{base}/watch/{id}?token=…`.
pub fn info_url(signed: &str) -> Result<(String, String), String> {
    let url = url::Url::parse(signed).map_err(|e| format!("not a URL ({e}): {signed:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "expected an http(s) signed playback URL, got {signed:?}"
        ));
    }
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the signed URL has no token= parameter".to_owned())?;
    let path = url.path();
    let (prefix, id) = match path.rfind("/watch/") {
        Some(at) => (&path[..at], &path[at + "/watch/".len()..]),
        None => return Err(format!("expected …/watch/<id>?token=… in {signed:?}")),
    };
    let id = id.trim_end_matches('/');
    if id.is_empty() || id.contains('/') {
        return Err(format!("no playback id in {signed:?}"));
    }
    let mut info = url.clone();
    info.set_path(&format!("{prefix}/v1/playback/{id}"));
    info.set_query(None);
    info.query_pairs_mut().append_pair("token", &token);
    info.set_fragment(None);
    Ok((info.to_string(), id.to_owned()))
}

async fn resolve(http: &reqwest::Client, signed: &str) -> Result<Playback, Failure> {
    let (info_url, id) = info_url(signed).map_err(Failure::Invalid)?;
    if !id.starts_with("lv_") {
        return Err(Failure::Invalid(format!(
            "{id} is not a live playback id (lv_…)"
        )));
    }
    let resp = http
        .get(&info_url)
        .send()
        .await
        .map_err(|e| Failure::Network(format!("resolving the signed URL: {e}")))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Failure::Network(format!("resolving the signed URL: {e}")))?;
    if !status.is_success() {
        let api = serde_json::from_slice::<ApiError>(&body).ok();
        let detail = match &api {
            Some(e) => format!("{}: {}", e.error.code, e.error.message),
            None => format!("HTTP {status}"),
        };
        return Err(match status.as_u16() {
            401 | 403 => Failure::Auth(detail),
            404 => Failure::NotLive(detail),
            s if s >= 500 => Failure::Network(detail),
            _ => Failure::Invalid(detail),
        });
    }
    let info: PlaybackInfo = serde_json::from_slice(&body)
        .map_err(|e| Failure::Invalid(format!("playback info: {e}")))?;
    if info.kind != "live" {
        return Err(Failure::Invalid(format!(
            "{} is not a live broadcast",
            info.playback_id
        )));
    }
    let relay = info
        .relay_url
        .ok_or_else(|| Failure::Invalid("playback info has no relayUrl".into()))?;
    let relay = moqt_url(&relay).map_err(Failure::Invalid)?;
    let verify = match info.certificate_sha256.as_deref().filter(|s| !s.is_empty()) {
        Some(hex) => Verify::Pinned(vec![hex
            .trim()
            .parse::<client::Fingerprint>()
            .map_err(|e| Failure::Invalid(format!("certificateSha256: {e}")))?]),
        None => Verify::PlatformRoots,
    };
    Ok(Playback {
        id: info.playback_id,
        namespace: info
            .namespace
            .ok_or_else(|| Failure::Invalid("playback info has no namespace".into()))?,
        catalog: info.catalog_track.unwrap_or_else(|| ".catalog".into()),
        relay,
        verify,
        token: info.token,
    })
}

/// `https://host:port/…` (the relay's WebTransport URL) → `moqt://host:port/` (raw QUIC, same
/// UDP port).
fn moqt_url(relay: &str) -> Result<String, String> {
    let url = url::Url::parse(relay).map_err(|e| format!("relayUrl {relay:?}: {e}"))?;
    match url.scheme() {
        "moqt" => Ok(relay.to_owned()),
        "https" => {
            let host = url
                .host_str()
                .ok_or_else(|| format!("relayUrl {relay:?} has no host"))?;
            let port = url.port().unwrap_or(443);
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            Ok(format!("moqt://{host}:{port}/"))
        }
        other => Err(format!("relayUrl scheme {other:?} is not supported")),
    }
}

// ---------------------------------------------------------------------------------------------
// The catalog

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogTrack {
    name: String,
    #[serde(default)]
    packaging: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    bitrate: Option<f64>,
    #[serde(default)]
    height: Option<u32>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    init_data: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Catalog {
    tracks: Vec<CatalogTrack>,
}

/// A track this capture records.
#[derive(Debug, Clone)]
struct Selected {
    name: String,
    role: &'static str,
    init: Vec<u8>,
}

fn role_of(t: &CatalogTrack) -> Option<&'static str> {
    match t.role.as_deref() {
        Some("video") => Some("video"),
        Some("audio") => Some("audio"),
        Some(_) => None,
        None if t.name.starts_with("video") => Some("video"),
        None if t.name.starts_with("audio") => Some("audio"),
        None => None,
    }
}

fn matches_rendition(t: &CatalogTrack, want: &str) -> bool {
    t.name == want || t.name.rsplit('/').next() == Some(want) || t.label.as_deref() == Some(want)
}

/// The best (or the requested) video track and the best audio track.
fn select(catalog: &Catalog, rendition: Option<&str>) -> Result<Vec<Selected>, String> {
    let usable = |t: &&CatalogTrack| {
        t.packaging.as_deref().is_none_or(|p| p == "cmaf") && t.init_data.is_some()
    };
    let rank = |t: &CatalogTrack| (t.bitrate.unwrap_or(0.0), t.height.unwrap_or(0));
    let best = |role: &str| {
        catalog
            .tracks
            .iter()
            .filter(usable)
            .filter(|t| role_of(t) == Some(role))
            .max_by(|a, b| {
                rank(a)
                    .partial_cmp(&rank(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    };
    let video = match rendition {
        Some(want) => Some(
            catalog
                .tracks
                .iter()
                .filter(usable)
                .find(|t| matches_rendition(t, want))
                .ok_or_else(|| {
                    let names: Vec<&str> = catalog.tracks.iter().map(|t| t.name.as_str()).collect();
                    format!("no rendition {want:?} in the catalog (tracks: {names:?})")
                })?,
        ),
        None => best("video"),
    };
    let mut out = Vec::new();
    for t in video.into_iter().chain(best("audio")) {
        let init = t
            .init_data
            .as_deref()
            .and_then(|b| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).ok()
            })
            .ok_or_else(|| format!("track {} has invalid initData", t.name))?;
        out.push(Selected {
            name: t.name.clone(),
            role: role_of(t).unwrap_or("video"),
            init,
        });
    }
    if out.is_empty() {
        return Err("the catalog has no CMAF audio or video track".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// One session

#[derive(Debug)]
enum Ev {
    Resolved {
        gen: u64,
        playback: Arc<Playback>,
    },
    Ready {
        gen: u64,
        tracks: Vec<Selected>,
    },
    Object {
        gen: u64,
        track: usize,
        object: Received,
    },
    Ended {
        gen: u64,
        track: usize,
        reason: String,
    },
    Closed {
        gen: u64,
        failure: Failure,
    },
}

/// What a session should subscribe to when it is not the first one.
type Wanted = Option<Arc<Vec<String>>>;

async fn session(
    gen: u64,
    playback: Arc<Playback>,
    options: Arc<Options>,
    wanted: Wanted,
    events: mpsc::Sender<Ev>,
    stop: oneshot::Receiver<()>,
) {
    let mut stop = stop;
    let run = run_session(gen, &playback, &options, wanted, &events);
    let failure = tokio::select! {
        f = run => f,
        _ = &mut stop => return,
    };
    let _ = events.send(Ev::Closed { gen, failure }).await;
}

async fn run_session(
    gen: u64,
    playback: &Playback,
    options: &Options,
    wanted: Wanted,
    events: &mpsc::Sender<Ev>,
) -> Failure {
    let mut config = Config {
        verify: playback.verify.clone(),
        token: Some(playback.token.clone()),
        timeout: options.timeout,
        ..Config::default()
    };
    // Notice a dead relay within about one step timeout (pings keep a quiet session alive).
    config.tuning.idle_timeout = options.timeout.max(Duration::from_secs(3));
    config.tuning.keep_alive = Some(config.tuning.idle_timeout / 3);
    let conn = match Connection::connect(&playback.relay, config).await {
        Ok(c) => c,
        Err(e) => return Failure::from_client(&e),
    };
    let result = subscribe_all(gen, &conn, playback, options, wanted, events).await;
    let failure = match result {
        Ok(mut pumps) => {
            // Until every track ended, or the session closed. A subscription that stops
            // without PUBLISH_DONE means the session is going down: report how it closed
            // (`network`), not a clean end.
            let closed = conn.closed();
            tokio::pin!(closed);
            let mut cut_off = false;
            loop {
                tokio::select! {
                    c = &mut closed => break Failure::from_close(&c),
                    r = pumps.join_next() => match r {
                        Some(Ok(true)) => {}
                        Some(_) => cut_off = true,
                        None if cut_off => {
                            break match tokio::time::timeout(options.timeout, &mut closed).await {
                                Ok(c) => Failure::from_close(&c),
                                Err(_) => Failure::Network("subscriptions stopped without PUBLISH_DONE".into()),
                            };
                        }
                        None => break Failure::Ended("every track ended".into()),
                    },
                }
            }
        }
        Err(f) => match conn.close_reason() {
            Some(c) if c.is_auth_failed() => Failure::from_close(&c),
            _ => f,
        },
    };
    conn.close(0, "");
    failure
}

async fn subscribe_all(
    gen: u64,
    conn: &Connection,
    playback: &Playback,
    options: &Options,
    wanted: Wanted,
    events: &mpsc::Sender<Ev>,
) -> Result<JoinSet<bool>, Failure> {
    let ns = playback.namespace.as_str();
    let latest = || SubscribeOptions {
        start: Start::Latest,
        ..SubscribeOptions::default()
    };
    // The catalog: the latest version; wait a little for one with audio.
    let deadline = Instant::now() + options.live_wait;
    let mut catalog_sub = loop {
        match conn.subscribe(ns, &playback.catalog, latest()).await {
            Ok(s) => break s,
            Err(e) => match Failure::from_client(&e) {
                Failure::NotLive(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                f => return Err(f),
            },
        }
    };
    let mut selected: Option<Vec<Selected>> = None;
    let mut audio_deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = async {
            match audio_deadline {
                Some(d) => tokio::time::timeout_at(d, catalog_sub.next()).await.ok(),
                None => tokio::time::timeout(options.timeout, catalog_sub.next())
                    .await
                    .ok(),
            }
        };
        match next.await {
            Some(Some(Event::Object(o))) => {
                let catalog: Catalog = match serde_json::from_slice(&o.payload) {
                    Ok(c) => c,
                    Err(e) => {
                        debug!(%e, "unreadable catalog version");
                        continue;
                    }
                };
                let sel = match &wanted {
                    Some(names) => {
                        let keep: Vec<Selected> = select_all(&catalog)
                            .into_iter()
                            .filter(|s| names.contains(&s.name))
                            .collect();
                        if keep.len() == names.len() {
                            Ok(keep)
                        } else {
                            select(&catalog, options.rendition.as_deref())
                        }
                    }
                    None => select(&catalog, options.rendition.as_deref()),
                };
                let sel = sel.map_err(Failure::Invalid)?;
                let has_audio = sel.iter().any(|s| s.role == "audio");
                selected = Some(sel);
                if has_audio || wanted.is_some() {
                    break;
                }
                audio_deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + options.catalog_wait);
            }
            Some(Some(Event::Ended { reason, .. })) => return Err(Failure::Ended(reason)),
            Some(None) => {
                return Err(match conn.close_reason() {
                    Some(c) => Failure::from_close(&c),
                    None => Failure::Network("catalog subscription ended".into()),
                })
            }
            None if selected.is_some() => break,
            None => return Err(Failure::NotLive("no catalog in time".into())),
        }
    }
    drop(catalog_sub);
    let Some(selected) = selected else {
        return Err(Failure::NotLive("no catalog".into()));
    };
    let mut pumps = JoinSet::new();
    let mut subs = Vec::new();
    for s in &selected {
        let sub = conn
            .subscribe(ns, &s.name, latest())
            .await
            .map_err(|e| Failure::from_client(&e))?;
        subs.push(sub);
    }
    if events
        .send(Ev::Ready {
            gen,
            tracks: selected,
        })
        .await
        .is_err()
    {
        return Err(Failure::Network("engine stopped".into()));
    }
    for (track, mut sub) in subs.into_iter().enumerate() {
        let events = events.clone();
        pumps.spawn(async move {
            loop {
                match sub.next().await {
                    Some(Event::Object(object)) => {
                        if events
                            .send(Ev::Object { gen, track, object })
                            .await
                            .is_err()
                        {
                            return true;
                        }
                    }
                    Some(Event::Ended { reason, code }) => {
                        let reason = if reason.is_empty() {
                            format!("publisher ended the track (status {code:#x})")
                        } else {
                            reason
                        };
                        let _ = events.send(Ev::Ended { gen, track, reason }).await;
                        return true;
                    }
                    // The subscription stopped without PUBLISH_DONE.
                    None => return false,
                }
            }
        });
    }
    Ok(pumps)
}

fn select_all(catalog: &Catalog) -> Vec<Selected> {
    catalog
        .tracks
        .iter()
        .filter_map(|t| {
            let init = t.init_data.as_deref().and_then(|b| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).ok()
            })?;
            Some(Selected {
                name: t.name.clone(),
                role: role_of(t)?,
                init,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The engine

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Primary,
    Pending,
    Retiring(Instant),
    /// Resolving / connecting, will become primary (reconnects).
    Next,
}

struct SessionCtl {
    role: Role,
    stop: Option<oneshot::Sender<()>>,
    playback: Option<Arc<Playback>>,
    ready: bool,
    /// Per track: group of the first new chunk this (pending) session delivered.
    first_group: Vec<Option<u64>>,
    /// Per track: whether the switch to this session is safe for that track.
    covered: Vec<bool>,
    since: Instant,
}

struct TrackState {
    name: String,
    role: &'static str,
    timescale: u32,
    /// group → largest object id written.
    written: BTreeMap<u64, u64>,
}

struct Out {
    chunk: Chunk,
}

/// Starts a capture of `url` on the current tokio runtime. Returns the command sender; the
/// engine reports on `out` and ends after sending [`Output::Close`].
pub fn start(
    url: String,
    options: Options,
    out: mpsc::Sender<Output>,
    stats: Arc<Stats>,
) -> mpsc::UnboundedSender<Command> {
    let (tx, rx) = mpsc::unbounded_channel();
    // The engine keeps a sender: dropping the application's handle does not stop the capture.
    let keep = tx.clone();
    tokio::spawn(async move {
        let _keep = keep;
        let mut engine = Engine::new(options, out.clone(), stats);
        let (reason, detail) = engine.run(url, rx).await;
        engine.flush_all().await;
        let _ = out.send(Output::Close { reason, detail }).await;
    });
    tx
}

struct Engine {
    options: Arc<Options>,
    out: mpsc::Sender<Output>,
    stats: Arc<Stats>,
    http: reqwest::Client,
    events_tx: mpsc::Sender<Ev>,
    events: mpsc::Receiver<Ev>,
    sessions: HashMap<u64, SessionCtl>,
    next_gen: u64,
    tracks: Vec<TrackState>,
    rewriter: Rewriter,
    interleaver: Option<Interleaver<Out>>,
    retries_left: u32,
    /// Delay before the next reconnect attempt.
    backoff: Duration,
}

impl Engine {
    fn new(options: Options, out: mpsc::Sender<Output>, stats: Arc<Stats>) -> Self {
        let (events_tx, events) = mpsc::channel(1024);
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .unwrap_or_default();
        Self {
            retries_left: options.retries,
            options: Arc::new(options),
            out,
            stats,
            http,
            events_tx,
            events,
            sessions: HashMap::new(),
            next_gen: 0,
            tracks: Vec::new(),
            rewriter: Rewriter::new(),
            interleaver: None,
            backoff: Duration::from_millis(250),
        }
    }

    /// Starts a session: resolves `url` (or reuses `playback`), then connects.
    fn spawn(
        &mut self,
        role: Role,
        url: Option<String>,
        playback: Option<Arc<Playback>>,
        delay: Duration,
    ) -> u64 {
        let gen = self.next_gen;
        self.next_gen += 1;
        let (stop_tx, stop_rx) = oneshot::channel();
        let wanted: Wanted = if self.tracks.is_empty() {
            None
        } else {
            Some(Arc::new(
                self.tracks.iter().map(|t| t.name.clone()).collect(),
            ))
        };
        let events = self.events_tx.clone();
        let options = self.options.clone();
        let http = self.http.clone();
        let known = playback.clone();
        tokio::spawn(async move {
            let mut stop_rx = stop_rx;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = &mut stop_rx => return,
            }
            let playback = match (known, url) {
                (Some(p), _) => p,
                (None, Some(url)) => {
                    let r = tokio::select! {
                        r = resolve(&http, &url) => r,
                        _ = &mut stop_rx => return,
                    };
                    match r {
                        Ok(p) => {
                            let p = Arc::new(p);
                            let _ = events
                                .send(Ev::Resolved {
                                    gen,
                                    playback: p.clone(),
                                })
                                .await;
                            p
                        }
                        Err(failure) => {
                            let _ = events.send(Ev::Closed { gen, failure }).await;
                            return;
                        }
                    }
                }
                (None, None) => return,
            };
            session(gen, playback, options, wanted, events, stop_rx).await;
        });
        self.sessions.insert(
            gen,
            SessionCtl {
                role,
                stop: Some(stop_tx),
                playback,
                ready: false,
                first_group: Vec::new(),
                covered: Vec::new(),
                since: Instant::now(),
            },
        );
        gen
    }

    fn stop(&mut self, gen: u64) {
        if let Some(mut s) = self.sessions.remove(&gen) {
            if let Some(stop) = s.stop.take() {
                let _ = stop.send(());
            }
        }
    }

    fn gen_with(&self, role: Role) -> Option<u64> {
        self.sessions
            .iter()
            .find(|(_, s)| s.role == role)
            .map(|(g, _)| *g)
    }

    async fn warn(&self, msg: String) {
        let _ = self.out.send(Output::Warning(msg)).await;
    }

    async fn run(
        &mut self,
        url: String,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> (&'static str, String) {
        self.spawn(Role::Primary, Some(url), None, Duration::ZERO);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                c = commands.recv() => match c {
                    None | Some(Command::Close) => break (reason::CLOSED, "closed by the application".to_owned()),
                    Some(Command::Renew(url)) => {
                        if let Some(old) = self.gen_with(Role::Pending) {
                            self.stop(old);
                        }
                        self.stats.renewals.fetch_add(1, Ordering::Relaxed);
                        self.spawn(Role::Pending, Some(url), None, Duration::ZERO);
                    }
                },
                Some(ev) = self.events.recv() => {
                    if let Some(done) = self.on_event(ev).await {
                        break done;
                    }
                }
                _ = tick.tick() => self.on_tick().await,
            }
        };
        let gens: Vec<u64> = self.sessions.keys().copied().collect();
        for g in gens {
            self.stop(g);
        }
        result
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        let retired: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| matches!(s.role, Role::Retiring(at) if at <= now))
            .map(|(g, _)| *g)
            .collect();
        for g in retired {
            self.stop(g);
        }
        if let Some(p) = self.gen_with(Role::Pending) {
            let overdue = self.sessions.get(&p).is_some_and(|s| {
                s.ready && now.saturating_duration_since(s.since) >= SWITCH_TIMEOUT
            });
            if overdue {
                self.warn(
                    "renewal: no overlap seen between the old and new session; switching anyway"
                        .into(),
                )
                .await;
                self.switch(p);
            }
        }
        let ready = match self.interleaver.as_mut() {
            Some(il) => il.ready(now),
            None => Vec::new(),
        };
        self.emit(ready).await;
    }

    /// The pending session `gen` becomes primary; the primary retires.
    fn switch(&mut self, gen: u64) {
        let retire_at = Instant::now() + RETIRE_GRACE;
        for s in self.sessions.values_mut() {
            if s.role == Role::Primary {
                s.role = Role::Retiring(retire_at);
            }
        }
        if let Some(s) = self.sessions.get_mut(&gen) {
            s.role = Role::Primary;
        }
        debug!(gen, "switched to the renewed session");
    }

    async fn on_event(&mut self, ev: Ev) -> Option<(&'static str, String)> {
        match ev {
            Ev::Resolved { gen, playback } => {
                if let Some(s) = self.sessions.get_mut(&gen) {
                    s.playback = Some(playback.clone());
                }
                let primary = self
                    .gen_with(Role::Primary)
                    .and_then(|g| self.sessions.get(&g));
                let same = primary
                    .and_then(|s| s.playback.as_ref())
                    .is_none_or(|p| p.id == playback.id && p.namespace == playback.namespace);
                if !same {
                    self.warn(format!(
                        "renewal with a ticket for another broadcast ({}): ignored",
                        playback.id
                    ))
                    .await;
                    self.stop(gen);
                }
                None
            }
            Ev::Ready { gen, tracks } => self.on_ready(gen, tracks).await,
            Ev::Object { gen, track, object } => {
                self.on_object(gen, track, object).await;
                None
            }
            Ev::Ended { gen, track, reason } => {
                let role = self.sessions.get(&gen).map(|s| s.role)?;
                if matches!(role, Role::Retiring(_)) {
                    return None;
                }
                if let Some(il) = self.interleaver.as_mut() {
                    il.finish(track);
                }
                let is_video = self.tracks.get(track).is_some_and(|t| t.role == "video");
                if is_video || self.tracks.len() == 1 {
                    return Some((reason::ENDED, reason));
                }
                None
            }
            Ev::Closed { gen, failure } => self.on_closed(gen, failure).await,
        }
    }

    async fn on_ready(
        &mut self,
        gen: u64,
        selected: Vec<Selected>,
    ) -> Option<(&'static str, String)> {
        if !self.sessions.contains_key(&gen) {
            return None;
        }
        if self.tracks.is_empty() {
            let mut inits: Vec<TrackInit> = Vec::new();
            for s in &selected {
                match cmaf::parse_init(&s.init) {
                    Ok(i) => inits.push(i),
                    Err(e) => {
                        return Some((
                            reason::NETWORK,
                            format!("track {}: unusable init segment: {e}", s.name),
                        ))
                    }
                }
            }
            let init = match cmaf::merge_init(&inits) {
                Ok(i) => i,
                Err(e) => {
                    return Some((
                        reason::NETWORK,
                        format!("cannot combine the init segments: {e}"),
                    ))
                }
            };
            self.tracks = selected
                .iter()
                .zip(&inits)
                .map(|(s, i)| TrackState {
                    name: s.name.clone(),
                    role: s.role,
                    timescale: i.timescale,
                    written: BTreeMap::new(),
                })
                .collect();
            self.interleaver = Some(Interleaver::new(
                self.tracks.iter().map(|t| t.timescale).collect(),
                INTERLEAVE_WAIT,
            ));
            let len = init.len() as u64;
            let _ = self
                .out
                .send(Output::Chunk(Chunk {
                    is_init: true,
                    data: init,
                    track: "",
                    group: 0,
                    object: 0,
                    decode_time: 0.0,
                }))
                .await;
            self.stats.chunks.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes.fetch_add(len, Ordering::Relaxed);
        } else {
            let names: Vec<&str> = selected.iter().map(|s| s.name.as_str()).collect();
            let expected: Vec<&str> = self.tracks.iter().map(|t| t.name.as_str()).collect();
            if names != expected {
                self.warn(format!(
                    "the new session offers tracks {names:?} instead of {expected:?}; keeping the old one"
                ))
                .await;
                self.stop(gen);
                return None;
            }
        }
        let n = self.tracks.len();
        let has_primary = self.gen_with(Role::Primary).is_some_and(|g| g != gen);
        if let Some(s) = self.sessions.get_mut(&gen) {
            s.ready = true;
            s.first_group = vec![None; n];
            s.covered = vec![false; n];
            s.since = Instant::now();
            if s.role == Role::Next {
                s.role = if has_primary {
                    Role::Pending
                } else {
                    Role::Primary
                };
            }
        }
        None
    }

    async fn on_object(&mut self, gen: u64, track: usize, object: Received) {
        if !self.sessions.contains_key(&gen) {
            return;
        }
        let Some(state) = self.tracks.get_mut(track) else {
            return;
        };
        let duplicate = state
            .written
            .get(&object.group)
            .is_some_and(|&largest| object.object <= largest);
        // Renewal bookkeeping: is the switch safe for this track yet?
        if let Some(pending) = self.gen_with(Role::Pending) {
            if let Some(p) = self.sessions.get_mut(&pending) {
                if p.covered.len() > track {
                    if gen == pending {
                        if duplicate {
                            p.covered[track] = true;
                        }
                        p.first_group[track].get_or_insert(object.group);
                    } else if p.first_group[track].is_some_and(|g| object.group >= g) {
                        p.covered[track] = true;
                    }
                }
                if p.ready && !p.covered.is_empty() && p.covered.iter().all(|c| *c) {
                    self.switch(pending);
                }
            }
        }
        if duplicate {
            self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(state) = self.tracks.get_mut(track) else {
            return;
        };
        let entry = state.written.entry(object.group).or_insert(object.object);
        *entry = (*entry).max(object.object);
        while state.written.len() > DEDUP_GROUPS {
            state.written.pop_first();
        }
        let role_name = state.role;
        let timescale = state.timescale;
        if role_name == "video" {
            self.stats
                .last_group
                .fetch_max(object.group + 1, Ordering::Relaxed);
        }
        // A successful object means the connection works again.
        self.retries_left = self.options.retries;
        self.backoff = Duration::from_millis(250);
        let rewritten = match self.rewriter.rewrite(&object.payload, track as u32 + 1) {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!(
                    "{} group {} object {}: not a CMAF chunk ({e}); skipped",
                    role_name, object.group, object.object
                ))
                .await;
                return;
            }
        };
        let dts = rewritten.decode_time.unwrap_or(0);
        let chunk = Chunk {
            is_init: false,
            data: rewritten.data,
            track: role_name,
            group: object.group,
            object: object.object,
            decode_time: dts as f64 / f64::from(timescale.max(1)),
        };
        let now = Instant::now();
        let ready = match self.interleaver.as_mut() {
            Some(il) => {
                il.push(track, dts, now, Out { chunk });
                il.ready(now)
            }
            None => Vec::new(),
        };
        self.emit(ready).await;
    }

    async fn emit(&mut self, ready: Vec<Out>) {
        for o in ready {
            self.stats.chunks.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes
                .fetch_add(o.chunk.data.len() as u64, Ordering::Relaxed);
            if self.out.send(Output::Chunk(o.chunk)).await.is_err() {
                return;
            }
        }
    }

    async fn flush_all(&mut self) {
        let rest = match self.interleaver.as_mut() {
            Some(il) => il.drain(),
            None => Vec::new(),
        };
        self.emit(rest).await;
    }

    async fn on_closed(&mut self, gen: u64, failure: Failure) -> Option<(&'static str, String)> {
        let s = self.sessions.remove(&gen)?;
        debug!(gen, ?failure, role = ?s.role, "session closed");
        match s.role {
            Role::Retiring(_) => None,
            Role::Pending => {
                let (_, detail) = failure.into_close();
                self.warn(format!(
                    "renewal failed, the capture continues on the old ticket: {detail}"
                ))
                .await;
                None
            }
            Role::Primary | Role::Next => {
                if let Some(p) = self.gen_with(Role::Pending) {
                    if self.sessions.get(&p).is_some_and(|p| p.ready) {
                        self.switch(p);
                        return None;
                    }
                }
                if let Some(p) = self.gen_with(Role::Pending) {
                    // Not ready yet: it becomes the primary when it is.
                    if let Some(ps) = self.sessions.get_mut(&p) {
                        ps.role = Role::Next;
                    }
                    return None;
                }
                match failure {
                    Failure::Network(detail) if self.retries_left > 0 && s.playback.is_some() => {
                        self.retries_left -= 1;
                        self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        let delay = self.backoff;
                        self.backoff = (self.backoff * 2).min(Duration::from_secs(4));
                        debug!(%detail, ?delay, "connection lost: reconnecting");
                        self.spawn(Role::Next, None, s.playback.clone(), delay);
                        None
                    }
                    f => Some(f.into_close()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signed_url_to_info_url() {
        let (u, id) = info_url("http://127.0.0.1:8080/watch/lv_abc?token=x.y.z").unwrap();
        assert_eq!(id, "lv_abc");
        assert_eq!(u, "http://127.0.0.1:8080/v1/playback/lv_abc?token=x.y.z");
        let (u, _) = info_url("https://h.example/base/watch/lv_1/?a=1&token=t").unwrap();
        assert_eq!(u, "https://h.example/base/v1/playback/lv_1?token=t");
        assert!(info_url("http://h/watch/lv_1").is_err());
        assert!(info_url("http://h/other/lv_1?token=t").is_err());
        assert!(info_url("moqt://h/watch/lv_1?token=t").is_err());
        assert!(info_url("not a url").is_err());
    }

    #[test]
    fn relay_url_to_raw_quic() {
        assert_eq!(
            moqt_url("https://127.0.0.1:4443").unwrap(),
            "moqt://127.0.0.1:4443/"
        );
        assert_eq!(
            moqt_url("https://[::1]:4443/").unwrap(),
            "moqt://[::1]:4443/"
        );
        assert_eq!(
            moqt_url("https://relay.example").unwrap(),
            "moqt://relay.example:443/"
        );
        assert!(moqt_url("ftp://x").is_err());
    }

    fn track(name: &str, role: &str, bitrate: f64, label: Option<&str>) -> CatalogTrack {
        CatalogTrack {
            name: name.into(),
            packaging: Some("cmaf".into()),
            role: Some(role.into()),
            bitrate: Some(bitrate),
            height: None,
            label: label.map(Into::into),
            init_data: Some("aW5pdA==".into()),
        }
    }

    #[test]
    fn selects_best_or_named_rendition() {
        let c = Catalog {
            tracks: vec![
                track("video/360p", "video", 800e3, None),
                track("video/source", "video", 6e6, Some("source")),
                track("video/720p", "video", 3e6, None),
                track("audio/source", "audio", 128e3, None),
            ],
        };
        let names = |s: Vec<Selected>| s.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            names(select(&c, None).unwrap()),
            vec!["video/source", "audio/source"]
        );
        assert_eq!(
            names(select(&c, Some("720p")).unwrap()),
            vec!["video/720p", "audio/source"]
        );
        assert_eq!(
            names(select(&c, Some("video/360p")).unwrap()),
            vec!["video/360p", "audio/source"]
        );
        assert!(select(&c, Some("1080p")).is_err());
        let bad = Catalog { tracks: vec![] };
        assert!(select(&bad, None).is_err());
        let json = br#"{"version":"draft-01","tracks":[{"name":"video/source","packaging":"cmaf","isLive":true,"role":"video","initData":"aW5pdA=="}]}"#;
        let parsed: Catalog = serde_json::from_slice(json).unwrap();
        assert_eq!(select(&parsed, None).unwrap()[0].init, b"init");
    }
}
