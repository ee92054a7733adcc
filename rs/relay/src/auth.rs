//! The relay's authorization hook.
//!
//! Every PUBLISH, PUBLISH_NAMESPACE, SUBSCRIBE, FETCH, TRACK_STATUS and SUBSCRIBE_NAMESPACE
//! the relay receives is checked by an [`Authorizer`] before it has any effect. The control
//! plane (`api` crate) implements it with stream keys (publish) and playback JWTs (subscribe);
//! [`Policy`] adds the `--public-prefix` escape hatch in front of it.
//!
//! Where a token comes from: the AUTHORIZATION TOKEN parameter of the request (its Token Value,
//! with Alias Type USE_VALUE or a registered alias), or else the `token` query parameter of the
//! connection URL (WebTransport URL, or the PATH setup option on raw QUIC).

use std::any::Any;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// What the peer wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// PUBLISH or PUBLISH_NAMESPACE: put tracks into the namespace.
    Publish,
    /// SUBSCRIBE, FETCH, TRACK_STATUS, SUBSCRIBE_NAMESPACE: read tracks in the namespace.
    Subscribe,
}

/// One authorization question.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub action: Action,
    /// Namespace tuple fields, e.g. `["stream", "org_abc", "lv_123"]`.
    pub namespace: Vec<Vec<u8>>,
    /// Track name when the request names one (SUBSCRIBE, PUBLISH, FETCH), else `None`.
    pub track: Option<Vec<u8>>,
    /// The token the peer presented, if any.
    pub token: Option<Vec<u8>>,
}

/// A successful authorization.
#[derive(Default)]
pub struct Grant {
    /// The relay closes the session with `auth_failed` at this instant (token expiry).
    pub expires_at: Option<SystemTime>,
    /// Cancelled by the authorizer when the credential stops being valid (stream key rotated,
    /// key revoked): the relay then closes the session with `auth_failed` at once.
    pub revoked: Option<CancellationToken>,
    /// Kept alive by the relay for as long as the granted publication or subscription lives,
    /// then dropped. The control plane uses its `Drop` to mark an input idle again.
    pub guard: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_at", &self.expires_at)
            .field("revocable", &self.revoked.is_some())
            .field("guarded", &self.guard.is_some())
            .finish()
    }
}

/// Why a request was refused. Every variant ends the session with reason phrase `auth_failed`
/// (the recipes' contract); the message is logged, never sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("auth_failed: {0}")]
pub struct Denied(pub String);

/// Decides whether a request may proceed.
pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, request: AuthRequest) -> BoxFuture<'static, Result<Grant, Denied>>;
}

/// Refuses everything that needs a token: the default until a control plane is attached.
#[derive(Debug, Default, Clone, Copy)]
pub struct DenyAll;

impl Authorizer for DenyAll {
    fn authorize(&self, _request: AuthRequest) -> BoxFuture<'static, Result<Grant, Denied>> {
        Box::pin(async {
            Err(Denied(
                "no authorizer configured and namespace is not public".into(),
            ))
        })
    }
}

/// The relay's effective policy: namespaces under `public_prefix` need no token; everything
/// else goes to `inner`.
#[derive(Clone)]
pub struct Policy {
    /// Tuple-field prefix, e.g. `["public"]`. `Some(vec![])` opens every namespace (tests only).
    pub public_prefix: Option<Vec<Vec<u8>>>,
    pub inner: Arc<dyn Authorizer>,
}

impl Policy {
    pub fn new(public_prefix: Option<Vec<Vec<u8>>>, inner: Arc<dyn Authorizer>) -> Self {
        Self {
            public_prefix,
            inner,
        }
    }

    /// Parse a `--public-prefix` value: `/`-separated tuple fields; the empty string opens all.
    pub fn parse_prefix(s: &str) -> Vec<Vec<u8>> {
        s.split('/')
            .filter(|p| !p.is_empty())
            .map(|p| p.as_bytes().to_vec())
            .collect()
    }

    pub fn is_public(&self, namespace: &[Vec<u8>]) -> bool {
        match &self.public_prefix {
            Some(prefix) => {
                namespace.len() >= prefix.len() && namespace[..prefix.len()] == prefix[..]
            }
            None => false,
        }
    }

    pub async fn check(&self, request: AuthRequest) -> Result<Grant, Denied> {
        if self.is_public(&request.namespace) {
            return Ok(Grant::default());
        }
        self.inner.authorize(request).await
    }
}
