//! The relay mesh: this relay as an edge of an origin relay.
//!
//! An edge opens one MoQT session to its origin, in the client role, and treats it like a
//! peer that announced a namespace prefix (by default `stream`): the first subscriber of a
//! track under it makes the edge SUBSCRIBE upstream once, with a joining FETCH of the current
//! group so the edge's cache starts at a keyframe; every later subscriber is served from the
//! edge's cache. Upstream subscriptions nobody follows any more are cancelled after a linger
//! time. When the origin session goes (GOAWAY, a restart, a network cut) the caller dials a
//! new one, and tracks in flight move over to it without ending for their subscribers.
//!
//! What a credential means stays outside: each upstream request carries a token from an
//! [`UpstreamAuth`] (the control plane mints short-lived per-stream relay tokens).
//! Dialing (QUIC, TLS, certificates) is the caller's job; see [`crate::Relay::serve_upstream`].

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tracing::info;

use crate::ingest::AnnouncedBy;
use crate::session::Ctx;

/// Supplies the token an edge presents to its origin for one track.
pub trait UpstreamAuth: Send + Sync + 'static {
    /// The AUTHORIZATION TOKEN value for a request about `namespace`/`track`, or `None` to
    /// send none.
    fn token(&self, namespace: &[Bytes], track: &Bytes) -> BoxFuture<'static, Option<Vec<u8>>>;
}

/// How one session to an origin is used.
#[derive(Clone)]
pub struct UpstreamOptions {
    /// Namespace prefix the origin feeds (tuple fields), e.g. `["stream"]`.
    pub prefix: Vec<Bytes>,
    /// SETUP PATH option (raw QUIC): the origin URL's path and query.
    pub path: Option<String>,
    /// SETUP AUTHORITY option (raw QUIC): the origin URL's host and port.
    pub authority: Option<String>,
    /// Tokens for upstream requests.
    pub auth: Option<Arc<dyn UpstreamAuth>>,
    /// Set to `Some(new session URI)` (empty when the origin named none) when the origin sends
    /// GOAWAY: dial the next session then; this one keeps feeding its tracks until it closes.
    pub goaway: watch::Sender<Option<String>>,
}

impl std::fmt::Debug for UpstreamOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamOptions")
            .field("prefix", &self.prefix)
            .field("path", &self.path)
            .field("authority", &self.authority)
            .field("auth", &self.auth.is_some())
            .finish()
    }
}

/// Withdraws an origin's announcement when its session ends.
pub(crate) struct Announced {
    ctx: Arc<Ctx>,
    prefix: Vec<Bytes>,
}

impl Drop for Announced {
    fn drop(&mut self) {
        self.ctx.shared.registry.withdraw(&self.prefix, self.ctx.id);
    }
}

/// After SETUP in the client role: route subscriptions under the prefix to this session.
pub(crate) fn announce_upstream(ctx: &Arc<Ctx>) -> Option<Announced> {
    let options = ctx.upstream.as_ref()?;
    let prefix = options.prefix.clone();
    ctx.shared
        .registry
        .announce(prefix.clone(), Arc::new(AnnouncedBy::new(ctx)));
    info!(session = ctx.id, prefix = %path(&prefix), "origin session ready: feeding subscriptions from it");
    Some(Announced {
        ctx: ctx.clone(),
        prefix,
    })
}

/// The origin sent GOAWAY: take no new tracks from this session and ask for the next one.
pub(crate) fn origin_going_away(ctx: &Arc<Ctx>, new_uri: &str) {
    let Some(options) = &ctx.upstream else {
        return;
    };
    info!(
        session = ctx.id,
        new_uri, "origin is going away: dialing the next session"
    );
    ctx.shared.registry.withdraw(&options.prefix, ctx.id);
    options.goaway.send_replace(Some(new_uri.to_owned()));
}

fn path(prefix: &[Bytes]) -> String {
    prefix
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect::<Vec<_>>()
        .join("/")
}
