//! Configuration: command-line flags, `CLUTCHCALL_*` environment variables and an optional
//! TOML file, in that order of precedence, resolved into one [`Settings`].

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

/// Flags every subcommand shares: where the data lives.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// Data directory: SQLite database, credentials file, uploads, certificates.
    /// [default: ./data]
    #[arg(long, env = "CLUTCHCALL_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user:pass@host/db) instead of the embedded SQLite file.
    #[arg(
        long,
        env = "CLUTCHCALL_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// TOML configuration file (see `clutchcall sample-config`). Flags and env vars override it.
    #[arg(long, env = "CLUTCHCALL_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// Flags of `serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// HTTP listen address (REST API, player pages, /healthz, /metrics). [default: 127.0.0.1:8080]
    #[arg(long, env = "CLUTCHCALL_HTTP")]
    pub http: Option<SocketAddr>,
    /// Relay UDP listen address for raw QUIC (ALPN moqt-18) and WebTransport. A loopback IPv4
    /// address also listens on [::1] (Chromium resolves localhost to ::1 first).
    /// [default: 127.0.0.1:4443]
    #[arg(long, env = "CLUTCHCALL_RELAY")]
    pub relay: Option<SocketAddr>,
    /// RTMP ingest listen address (OBS: rtmp://<host>/live/<external_input_id>, stream key =
    /// the input's stream key). [default: 127.0.0.1:1935]
    #[arg(long, env = "CLUTCHCALL_RTMP")]
    pub rtmp: Option<SocketAddr>,
    /// ABR ladder of RTMP inputs besides the passthrough source, as HEIGHT:KBITS,… (rungs
    /// taller than the source are skipped); "none" for source only.
    /// [default: 720:3000,480:1500,360:800]
    #[arg(long, env = "CLUTCHCALL_LADDER")]
    pub ladder: Option<String>,
    /// The ffmpeg executable that encodes the RTMP ladder. [default: ffmpeg from PATH]
    #[arg(long, env = "CLUTCHCALL_FFMPEG")]
    pub ffmpeg: Option<PathBuf>,
    /// Namespace prefix (`/`-separated tuple fields) that needs no token to publish or watch.
    /// An empty string opens every namespace: for tests only.
    #[arg(long, env = "CLUTCHCALL_PUBLIC_PREFIX")]
    pub public_prefix: Option<String>,
    /// PEM certificate chain for the relay; without it a self-signed 14-day certificate is
    /// generated and rotated, and its SHA-256 is served at /certificate.sha256.
    #[arg(long, env = "CLUTCHCALL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key matching --tls-cert.
    #[arg(long, env = "CLUTCHCALL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Extra host names for the self-signed certificate (repeatable).
    #[arg(
        long = "tls-hostname",
        env = "CLUTCHCALL_TLS_HOSTNAMES",
        value_delimiter = ','
    )]
    pub tls_hostnames: Vec<String>,
    /// Memory cap of the relay's cache of recent groups, per track, in MiB. [default: 64]
    #[arg(long, env = "CLUTCHCALL_CACHE_MB_PER_TRACK")]
    pub cache_mb_per_track: Option<usize>,
    /// How many seconds of each track the relay's cache keeps (groups are dropped once the
    /// group after them is older than this; the newest group always stays). [default: 10]
    #[arg(long, env = "CLUTCHCALL_CACHE_WINDOW_SECS")]
    pub cache_window_secs: Option<u64>,
    /// How long a track outlives its publisher, in milliseconds, so a reconnecting publisher
    /// continues the same broadcast without dropping viewers. [default: 5000]
    #[arg(long, env = "CLUTCHCALL_PUBLISHER_GRACE_MS")]
    pub publisher_grace_ms: Option<u64>,
    /// Public base URL of the HTTP API, used in signed playback URLs.
    /// [default: http://<--http>]
    #[arg(long, env = "CLUTCHCALL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Public relay URL that viewers are sent to. [default: https://<--relay>]
    #[arg(long, env = "CLUTCHCALL_RELAY_URL")]
    pub relay_url: Option<String>,
    /// Largest UDP payload the relay's MTU discovery may reach. Keep the default on the
    /// internet; raise it (e.g. 8952) where jumbo frames or loopback allow. [default: 1452]
    #[arg(long, env = "CLUTCHCALL_RELAY_MAX_UDP_PAYLOAD")]
    pub relay_max_udp_payload: Option<u16>,
    /// Object store for uploads and VOD output: s3://bucket/prefix (S3-compatible; AWS_* env
    /// vars for keys, region and endpoint; the query may set S3 options, e.g.
    /// s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&allow_http=true;
    /// path-style requests) or file:///dir. [default: <data-dir>/objects]
    #[arg(long, env = "CLUTCHCALL_OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,
    /// Largest upload, in MiB (413 beyond). [default: 51200]
    #[arg(long, env = "CLUTCHCALL_MAX_UPLOAD_MB")]
    pub max_upload_mb: Option<u64>,
    /// VOD ladder besides the source rendition, as name:height:bits_per_second,… (e.g.
    /// 720p:720:3000000,480p:480:1500000). [default: none: source only, no re-encode]
    #[arg(long, env = "CLUTCHCALL_VOD_LADDER")]
    pub vod_ladder: Option<String>,
    /// Complete an upload of unknown length that is not an MP4/MOV file after this many
    /// seconds without a PATCH (0: never; such uploads then need Upload-Complete: ?1 or
    /// Upload-Length). [default: 60]
    #[arg(long, env = "CLUTCHCALL_UPLOAD_IDLE_COMPLETE_SECS")]
    pub upload_idle_complete_secs: Option<u64>,
    /// Run as an edge of this origin relay (relay mesh), e.g. moqt://origin.example:4443: tracks
    /// under --origin-prefix are fetched from it once per track, however many viewers attach
    /// here. The edge must share the origin's database (--database-url postgres://…).
    /// [default: none: this node is an origin]
    #[arg(long, env = "CLUTCHCALL_ORIGIN")]
    pub origin: Option<String>,
    /// SHA-256 of the origin relay's certificate, hex (repeatable; the origin serves it at
    /// /certificate.sha256). [default: --origin-http, else the platform's root CAs]
    #[arg(
        long = "origin-cert-sha256",
        env = "CLUTCHCALL_ORIGIN_CERT_SHA256",
        value_delimiter = ','
    )]
    pub origin_cert_sha256: Vec<String>,
    /// The origin's HTTP base URL (http://host:8080), to read its self-signed certificate's
    /// hash before each connection. Only on a network you trust.
    #[arg(long, env = "CLUTCHCALL_ORIGIN_HTTP")]
    pub origin_http: Option<String>,
    /// Namespace prefix the origin feeds, /-separated. [default: stream]
    #[arg(long, env = "CLUTCHCALL_ORIGIN_PREFIX")]
    pub origin_prefix: Option<String>,
    /// How long, in milliseconds, a track fed from upstream (an origin, or a publisher's
    /// PUBLISH_NAMESPACE) stays subscribed after its last viewer left. [default: 10000]
    #[arg(long, env = "CLUTCHCALL_UPSTREAM_LINGER_MS")]
    pub upstream_linger_ms: Option<u64>,
}

/// The optional TOML file: the same keys as the flags, in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    http: Option<SocketAddr>,
    relay: Option<SocketAddr>,
    rtmp: Option<SocketAddr>,
    ladder: Option<String>,
    ffmpeg: Option<PathBuf>,
    public_prefix: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    tls_hostnames: Vec<String>,
    cache_mb_per_track: Option<usize>,
    cache_window_secs: Option<u64>,
    publisher_grace_ms: Option<u64>,
    public_url: Option<String>,
    relay_url: Option<String>,
    relay_max_udp_payload: Option<u16>,
    object_store_url: Option<String>,
    max_upload_mb: Option<u64>,
    vod_ladder: Option<String>,
    upload_idle_complete_secs: Option<u64>,
    origin: Option<String>,
    #[serde(default)]
    origin_cert_sha256: Vec<String>,
    origin_http: Option<String>,
    origin_prefix: Option<String>,
    upstream_linger_ms: Option<u64>,
}

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub http: SocketAddr,
    pub relay: Vec<SocketAddr>,
    pub rtmp: SocketAddr,
    /// RTMP ABR ladder (empty: source only).
    pub ladder: Vec<ingest::Rendition>,
    /// ffmpeg executable for the RTMP ladder.
    pub ffmpeg: PathBuf,
    pub public_prefix: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_hostnames: Vec<String>,
    pub cache: relay::track::CacheLimits,
    pub publisher_grace: Duration,
    pub public_url: Option<String>,
    pub relay_url: Option<String>,
    pub relay_max_udp_payload: u16,
    pub object_store_url: Option<String>,
    pub max_upload_mb: u64,
    pub vod_ladder: Vec<vod::Rung>,
    pub upload_idle_complete: Duration,
    /// Set on an edge: the origin it is fed from.
    pub origin: Option<crate::edge::Origin>,
    pub upstream_linger: Duration,
}

impl Settings {
    pub fn resolve(store: StoreArgs, serve: ServeArgs) -> anyhow::Result<Self> {
        let file = match &store.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let relay = serve
            .relay
            .or(file.relay)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4443)));
        let mut relays = vec![relay];
        if relay.ip() == IpAddr::from([127, 0, 0, 1]) {
            relays.push(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                relay.port(),
            ));
        }
        let relay_max_udp_payload = serve
            .relay_max_udp_payload
            .or(file.relay_max_udp_payload)
            .unwrap_or(1452);
        let origin_pins = if serve.origin_cert_sha256.is_empty() {
            file.origin_cert_sha256
        } else {
            serve.origin_cert_sha256
        };
        let origin = match serve.origin.or(file.origin).filter(|o| !o.is_empty()) {
            Some(url) => Some(crate::edge::Origin::parse(
                &url,
                &origin_pins,
                serve
                    .origin_http
                    .or(file.origin_http)
                    .filter(|h| !h.is_empty()),
                serve
                    .origin_prefix
                    .or(file.origin_prefix)
                    .as_deref()
                    .unwrap_or("stream"),
                relay_max_udp_payload,
            )?),
            None => None,
        };
        let tls_hostnames = if serve.tls_hostnames.is_empty() {
            file.tls_hostnames
        } else {
            serve.tls_hostnames
        };
        Ok(Self {
            data_dir: store
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("data")),
            database_url: store
                .database_url
                .or(file.database_url)
                .filter(|u| !u.is_empty()),
            http: serve
                .http
                .or(file.http)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            relay: relays,
            rtmp: serve
                .rtmp
                .or(file.rtmp)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 1935))),
            ladder: match serve.ladder.or(file.ladder) {
                Some(l) => ingest::Rendition::parse_ladder(&l).context("--ladder")?,
                None => ingest::Rendition::default_ladder(),
            },
            ffmpeg: serve
                .ffmpeg
                .or(file.ffmpeg)
                .unwrap_or_else(|| PathBuf::from("ffmpeg")),
            public_prefix: serve.public_prefix.or(file.public_prefix),
            tls_cert: serve.tls_cert.or(file.tls_cert),
            tls_key: serve.tls_key.or(file.tls_key),
            tls_hostnames,
            cache: relay::track::CacheLimits {
                bytes: serve
                    .cache_mb_per_track
                    .or(file.cache_mb_per_track)
                    .unwrap_or(64)
                    << 20,
                window: Duration::from_secs(
                    serve
                        .cache_window_secs
                        .or(file.cache_window_secs)
                        .unwrap_or(10),
                ),
            },
            publisher_grace: Duration::from_millis(
                serve
                    .publisher_grace_ms
                    .or(file.publisher_grace_ms)
                    .unwrap_or(5000),
            ),
            public_url: serve.public_url.or(file.public_url),
            relay_url: serve.relay_url.or(file.relay_url),
            relay_max_udp_payload,
            object_store_url: serve
                .object_store_url
                .or(file.object_store_url)
                .filter(|u| !u.is_empty()),
            max_upload_mb: serve
                .max_upload_mb
                .or(file.max_upload_mb)
                .unwrap_or(50 << 10),
            vod_ladder: parse_ladder(
                serve
                    .vod_ladder
                    .or(file.vod_ladder)
                    .as_deref()
                    .unwrap_or(""),
            )?,
            upload_idle_complete: Duration::from_secs(
                serve
                    .upload_idle_complete_secs
                    .or(file.upload_idle_complete_secs)
                    .unwrap_or(60),
            ),
            origin,
            upstream_linger: Duration::from_millis(
                serve
                    .upstream_linger_ms
                    .or(file.upstream_linger_ms)
                    .unwrap_or(10_000),
            ),
        })
    }
}

impl Settings {
    /// The control plane's configuration for this engine.
    pub fn api_config_with(&self, public_url: &str, relay_url: &str) -> api::Config {
        let mut c = api::Config::new(&self.data_dir);
        c.database_url = self.database_url.clone();
        c.public_base_url = public_url.trim_end_matches('/').to_string();
        c.relay_urls = vec![relay_url.to_string()];
        c.vod.object_store_url = self.object_store_url.clone();
        c.vod.max_upload_bytes = self.max_upload_mb.saturating_mul(1 << 20);
        c.vod.packager.ladder = self.vod_ladder.clone();
        c.vod.upload_idle_complete = self.upload_idle_complete;
        c
    }

    /// For admin subcommands that only touch the database (no listeners, no bootstrap print).
    pub fn api_config(&self) -> api::Config {
        let mut c = self.api_config_with(
            self.public_url
                .as_deref()
                .unwrap_or(&format!("http://{}", self.http)),
            self.relay_url
                .as_deref()
                .unwrap_or(&format!("https://{}", self.relay[0])),
        );
        // Admin commands never create the first org: `serve` does that, and prints its key.
        c.bootstrap = false;
        c.announce_credentials = false;
        c
    }
}

/// `name:height:bps,…` → ladder rungs.
fn parse_ladder(s: &str) -> anyhow::Result<Vec<vod::Rung>> {
    s.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let parts: Vec<&str> = r.split(':').collect();
            let [name, height, bps] = parts.as_slice() else {
                anyhow::bail!("vod ladder rung {r:?}: expected name:height:bits_per_second");
            };
            Ok(vod::Rung {
                name: (*name).to_owned(),
                height: height
                    .parse()
                    .with_context(|| format!("vod ladder rung {r:?}: height"))?,
                video_bitrate: bps
                    .parse()
                    .with_context(|| format!("vod ladder rung {r:?}: bitrate"))?,
            })
        })
        .collect()
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "parsing config file {} (see `clutchcall sample-config`)",
            path.display()
        )
    })
}

/// Log to stderr; `RUST_LOG` (or `CLUTCHCALL_LOG`) picks the level, default `info`.
pub fn init_logging() {
    let filter = std::env::var("CLUTCHCALL_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// `clutchcall sample-config`: every key, commented, with its default.
pub const SAMPLE_CONFIG: &str = include_str!("../../../deploy/clutchcall.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses_and_names_every_key() {
        let parsed: Result<FileConfig, _> = toml::from_str(SAMPLE_CONFIG);
        assert!(parsed.is_ok(), "sample config must parse: {parsed:?}");
        for key in [
            "data_dir",
            "database_url",
            "http",
            "relay",
            "rtmp",
            "ladder",
            "ffmpeg",
            "public_prefix",
            "tls_cert",
            "tls_key",
            "tls_hostnames",
            "cache_mb_per_track",
            "cache_window_secs",
            "publisher_grace_ms",
            "public_url",
            "relay_url",
            "object_store_url",
            "max_upload_mb",
            "vod_ladder",
            "relay_max_udp_payload",
            "upload_idle_complete_secs",
            "origin",
            "origin_cert_sha256",
            "origin_http",
            "origin_prefix",
            "upstream_linger_ms",
        ] {
            assert!(
                SAMPLE_CONFIG.contains(&format!("{key} =")),
                "sample config lacks {key}"
            );
        }
    }

    #[test]
    fn flags_override_file_and_loopback_adds_ipv6() {
        let dir = std::env::temp_dir().join(format!("cc-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "http = \"127.0.0.1:9000\"\nrelay = \"127.0.0.1:5000\"\n",
        )
        .expect("write");
        let store = StoreArgs {
            config: Some(path),
            ..Default::default()
        };
        let serve = ServeArgs {
            http: Some("127.0.0.1:9001".parse().expect("addr")),
            ..Default::default()
        };
        let s = Settings::resolve(store, serve).expect("resolve");
        assert_eq!(s.http.port(), 9001);
        assert_eq!(s.relay.len(), 2);
        assert_eq!(s.relay[1].port(), 5000);
        assert!(s.relay[1].is_ipv6());
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("htttp = \"x\"").is_err());
    }
}
