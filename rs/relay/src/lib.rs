//! The MoQT relay: tracks, the group cache, fan-out to subscribers, priorities.
//!
//! Owns: which tracks exist, one upstream subscription per track, the bounded per-track cache
//! of recent groups, and scheduling objects to each subscriber. Does not own: wire encoding
//! (`moqt`), sockets/TLS (`net`), or what a credential means (`auth::Authorizer`, filled in by
//! the control plane).

pub mod auth;

use std::sync::Arc;

/// Relay settings (one struct per component; the binary maps flags/env/TOML onto it).
#[derive(Debug, Clone)]
pub struct Config {
    /// Memory cap for cached groups, per track, in bytes.
    pub cache_bytes_per_track: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { cache_bytes_per_track: 64 << 20 }
    }
}

/// A running relay. Cheap to clone; all clones share the same tracks.
#[derive(Clone)]
pub struct Relay {
    #[allow(dead_code)]
    inner: Arc<Inner>,
}

struct Inner {
    #[allow(dead_code)]
    config: Config,
    #[allow(dead_code)]
    policy: auth::Policy,
}

impl Relay {
    pub fn new(config: Config, policy: auth::Policy) -> Self {
        Self { inner: Arc::new(Inner { config, policy }) }
    }

    /// Run one MoQT session (raw QUIC or WebTransport) until it ends. `url` is the
    /// WebTransport CONNECT URL, or `None` on raw QUIC (then the SETUP PATH option is used).
    pub async fn serve(&self, session: web_transport_quinn::Session, url: Option<url::Url>) {
        let _ = (session, url);
    }
}
