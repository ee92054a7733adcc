//! The MoQT relay: tracks, the group cache, fan-out to subscribers, priorities.
//!
//! Owns: MoQT sessions at the server side (SETUP, request streams, data streams), which tracks
//! exist and who feeds them (one feed per track however many viewers), the bounded per-track
//! cache of recent groups, and scheduling objects to each subscriber by the draft's priority
//! rules. Does not own: wire encoding (`moqt`), sockets and TLS (`net`), or what a credential
//! means (`auth::Authorizer`, filled in by the control plane).
//!
//! Layout: [`session`] drives one peer (as server, or as client of an origin: [`mesh`]); [`ingest`] is its publishing side (PUBLISH,
//! PUBLISH_NAMESPACE, incoming data streams); [`deliver`] its subscribing side (SUBSCRIBE fan-out,
//! FETCH, TRACK_STATUS, SUBSCRIBE_NAMESPACE); [`registry`] and [`track`] are the shared state.

pub mod auth;
mod deliver;
pub mod error;
mod ingest;
mod io;
pub mod mesh;
pub mod registry;
mod session;
pub mod track;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Stream reset code CANCELLED (draft-18 "Stream Reset Error Codes").
pub const RESET_CANCELLED: u32 = 0x1;
/// Stream reset code DELIVERY_TIMEOUT.
pub const RESET_DELIVERY_TIMEOUT: u32 = 0x2;

/// Relay settings (one struct per component; the binary maps flags/env/TOML onto it).
#[derive(Debug, Clone)]
pub struct Config {
    /// How much of each track the cache keeps: a time window and a byte cap. The newest group
    /// is always kept.
    pub cache: track::CacheLimits,
    /// How long a track outlives its publisher so a reconnect resumes it for the viewers.
    pub publisher_grace: Duration,
    /// How long a subscriber may still be writing an old group after a newer one began before
    /// the old group's stream is reset (unless the subscriber set SUBGROUP_DELIVERY_TIMEOUT).
    pub lag_budget: Duration,
    /// How long a track fed on demand from upstream (an origin, or a PUBLISH_NAMESPACE
    /// publisher) is kept subscribed after its last subscriber left.
    pub unused_feed_linger: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cache: track::CacheLimits::DEFAULT,
            publisher_grace: Duration::from_secs(5),
            lag_budget: Duration::from_millis(500),
            unused_feed_linger: Duration::from_secs(10),
        }
    }
}

/// State shared by every session of a relay.
pub(crate) struct Shared {
    pub config: Config,
    pub policy: auth::Policy,
    pub registry: Arc<registry::Registry>,
    pub shutdown: CancellationToken,
    /// Flips to true when the relay starts draining: sessions send GOAWAY.
    pub going_away: watch::Sender<bool>,
    next_session: AtomicU64,
}

impl Shared {
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running relay. Cheap to clone; all clones share the same tracks.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

impl Relay {
    pub fn new(config: Config, policy: auth::Policy) -> Self {
        let registry = registry::Registry::new(config.cache, config.publisher_grace);
        let (going_away, _) = watch::channel(false);
        Self {
            shared: Arc::new(Shared {
                config,
                policy,
                registry,
                shutdown: CancellationToken::new(),
                going_away,
                next_session: AtomicU64::new(1),
            }),
        }
    }

    /// Run one MoQT session (raw QUIC or WebTransport) until it ends. `url` is the
    /// WebTransport CONNECT URL, or `None` on raw QUIC (then the SETUP PATH option is used).
    pub async fn serve(&self, session: web_transport_quinn::Session, url: Option<url::Url>) {
        session::run(self.shared.clone(), session, url).await;
    }

    /// Run one session that this relay opened to an origin relay (client role) until it
    /// ends: subscriptions under `options.prefix` are fed from it once SETUP is done. The
    /// caller dials (and re-dials when this returns or `options.goaway` fires).
    pub async fn serve_upstream(
        &self,
        session: web_transport_quinn::Session,
        options: mesh::UpstreamOptions,
    ) -> Result<(), String> {
        session::run_upstream(self.shared.clone(), session, options)
            .await
            .map_err(|e| e.to_string())
    }

    /// The shared track directory (status pages, tests, in-process publishers).
    pub fn registry(&self) -> &Arc<registry::Registry> {
        &self.shared.registry
    }

    /// Drain: send GOAWAY on every session, wait up to `grace`, then close them all.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.shared.going_away.send(true);
        tokio::time::sleep(grace.min(Duration::from_secs(30))).await;
        self.shared.shutdown.cancel();
    }
}
