//! The relay's [`Authorizer`]: stream keys to publish, playback JWTs to subscribe; and the
//! in-memory data-plane state of inputs (live/idle) that the grants maintain.
//!
//! Namespaces are exactly three tuple fields: `["stream", <org_id>, <lv_id>]`.
//!
//! * Publish (PUBLISH / PUBLISH_NAMESPACE): the token is the input's current stream key
//!   (`sk_…`), carried in the AUTHORIZATION TOKEN parameter or as `?token=` on the connection
//!   URL. The grant is revoked (session closed with `auth_failed`) when the key is rotated or the
//!   input deleted; its guard marks the input idle when dropped.
//! * Subscribe: the token is a playback JWT for that `lv_…` id and org. The grant expires at the
//!   token's `exp` and is revoked if the input is deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::future::BoxFuture;
use relay::auth::{Action, AuthRequest, Authorizer, Denied, Grant};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::secret::prefix;
use crate::tokens::TokenError;
use crate::{ms_to_system, now_ms, rfc3339, secret, Api, Ingest};

/// Data-plane status of a live input, as shown in `input.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputStatus {
    /// `"idle"` or `"live"`.
    pub state: &'static str,
    /// RFC 3339: when it went live (live), or when the last publisher left (idle; `null` if
    /// never published since the engine started).
    pub since: Option<String>,
    /// Ingest kind of the current publisher (`"fmp4"` for MoQT publishers, `"rtmp"`), when live.
    pub ingest: Option<Ingest>,
    /// Number of connected publishers.
    pub publishers: u32,
    /// Details from the ingest (RTMP: `renditions`, `transcoder_error`, …), flattened in.
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

struct Entry {
    publishers: u32,
    since_ms: Option<i64>,
    ingest: Option<Ingest>,
    /// Publishers other nodes on the same database reported, by node id (see `crate::cluster`).
    remote: HashMap<String, RemoteLive>,
    /// Cancelled when the stream key rotates or the input is deleted.
    publish: CancellationToken,
    /// Cancelled when the input is deleted.
    subscribe: CancellationToken,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            publishers: 0,
            since_ms: None,
            ingest: None,
            remote: HashMap::new(),
            publish: CancellationToken::new(),
            subscribe: CancellationToken::new(),
        }
    }
}

/// An input live on another node, as that node last reported it.
#[derive(Debug, Clone, Copy)]
struct RemoteLive {
    since_ms: i64,
    ingest: Ingest,
    /// When the report arrived: nodes repeat theirs, so a silent node's reports lapse.
    seen: std::time::Instant,
}

/// How long another node's "live" report holds without being repeated.
pub(crate) const REMOTE_LIVE_TTL: std::time::Duration = std::time::Duration::from_secs(90);

/// Live state by `lv_…` id: this node's publishers, plus those other nodes sharing the
/// database reported (`crate::cluster`), so an input's status reads the same on every node.
#[derive(Default, Clone)]
pub(crate) struct LiveTable {
    map: Arc<Mutex<HashMap<String, Entry>>>,
    /// Where this node's go-live / go-idle changes are sent for the other nodes (PostgreSQL).
    changes: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<crate::cluster::Event>>>,
}

impl LiveTable {
    fn with<R>(&self, lv: &str, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut map = self.map.lock().ok()?;
        Some(f(map.entry(lv.to_owned()).or_insert_with(Entry::new)))
    }

    fn publish_token(&self, lv: &str) -> Option<CancellationToken> {
        self.with(lv, |e| e.publish.clone())
    }

    fn subscribe_token(&self, lv: &str) -> Option<CancellationToken> {
        self.with(lv, |e| e.subscribe.clone())
    }

    /// Send this node's changes to `tx` (set once, by the control plane on PostgreSQL).
    pub(crate) fn report_changes_to(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<crate::cluster::Event>,
    ) {
        let _ = self.changes.set(tx);
    }

    fn report(&self, event: crate::cluster::Event) {
        if let Some(tx) = self.changes.get() {
            let _ = tx.send(event);
        }
    }

    /// This node's live inputs, for the periodic repeat of its reports.
    pub(crate) fn local_live(&self) -> Vec<crate::cluster::Event> {
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        map.iter()
            .filter(|(_, e)| e.publishers > 0)
            .filter_map(|(lv, e)| {
                Some(crate::cluster::Event::Live {
                    lv: lv.clone(),
                    ingest: e.ingest?,
                    since_ms: e.since_ms?,
                })
            })
            .collect()
    }

    /// Another node reports an input live (`Some`) or idle (`None`) there.
    pub(crate) fn remote_report(&self, node: &str, lv: &str, live: Option<(Ingest, i64)>) {
        self.with(lv, |e| match live {
            Some((ingest, since_ms)) => {
                e.remote.insert(
                    node.to_owned(),
                    RemoteLive {
                        since_ms,
                        ingest,
                        seen: std::time::Instant::now(),
                    },
                );
            }
            None => {
                if e.remote.remove(node).is_some() && e.publishers == 0 {
                    e.since_ms = Some(now_ms());
                }
            }
        });
    }

    fn go_live(&self, lv: &str, ingest: Ingest) -> LiveGuard {
        let first = self.with(lv, |e| {
            let first = e.publishers == 0;
            if first {
                e.since_ms = Some(now_ms());
            }
            e.publishers += 1;
            e.ingest = Some(ingest);
            first.then_some(e.since_ms.unwrap_or_default())
        });
        if let Some(Some(since_ms)) = first {
            self.report(crate::cluster::Event::Live {
                lv: lv.to_owned(),
                ingest,
                since_ms,
            });
        }
        LiveGuard {
            table: self.clone(),
            lv: lv.to_owned(),
        }
    }

    pub(crate) fn revoke_publishers(&self, lv: &str) {
        self.with(lv, |e| {
            std::mem::replace(&mut e.publish, CancellationToken::new()).cancel()
        });
    }

    /// Drop the entry of an id that names no input, unless it holds state (a publisher here or
    /// reported elsewhere): refused requests for made-up ids must not grow the table.
    fn forget_unknown(&self, lv: &str) {
        if let Ok(mut map) = self.map.lock() {
            if map
                .get(lv)
                .is_some_and(|e| e.publishers == 0 && e.remote.is_empty())
            {
                map.remove(lv);
            }
        }
    }

    /// Number of ids with an entry (tests).
    pub(crate) fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or_default()
    }

    pub(crate) fn remove_input(&self, lv: &str) {
        let removed = self.map.lock().ok().and_then(|mut m| m.remove(lv));
        if let Some(e) = removed {
            e.publish.cancel();
            e.subscribe.cancel();
        }
    }

    pub(crate) fn status(&self, lv: &str) -> InputStatus {
        struct Snapshot {
            publishers: u32,
            since: Option<i64>,
            ingest: Option<Ingest>,
        }
        let snapshot = self.map.lock().ok().and_then(|m| {
            m.get(lv).map(|e| {
                // Reports from other nodes count while they are fresh.
                let remote: Vec<&RemoteLive> = e
                    .remote
                    .values()
                    .filter(|r| r.seen.elapsed() < REMOTE_LIVE_TTL)
                    .collect();
                if e.publishers > 0 || remote.is_empty() {
                    Snapshot {
                        publishers: e.publishers + remote.len() as u32,
                        since: e.since_ms,
                        ingest: e.ingest,
                    }
                } else {
                    Snapshot {
                        publishers: remote.len() as u32,
                        since: remote.iter().map(|r| r.since_ms).min(),
                        ingest: remote.first().map(|r| r.ingest),
                    }
                }
            })
        });
        match snapshot {
            Some(Snapshot {
                publishers: n,
                since,
                ingest,
            }) if n > 0 => InputStatus {
                state: "live",
                since: since.map(rfc3339),
                ingest,
                publishers: n,
                details: Default::default(),
            },
            Some(Snapshot { since, .. }) => InputStatus {
                state: "idle",
                since: since.map(rfc3339),
                ingest: None,
                publishers: 0,
                details: Default::default(),
            },
            None => InputStatus {
                state: "idle",
                since: None,
                ingest: None,
                publishers: 0,
                details: Default::default(),
            },
        }
    }
}

/// Held by the relay while a publication lives; dropping it marks the input idle (when it was
/// the last publisher).
pub struct LiveGuard {
    table: LiveTable,
    lv: String,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut idle = false;
        if let Ok(mut map) = self.table.map.lock() {
            if let Some(e) = map.get_mut(&self.lv) {
                e.publishers = e.publishers.saturating_sub(1);
                if e.publishers == 0 {
                    e.since_ms = Some(now_ms());
                    e.ingest = None;
                    idle = true;
                }
            }
        }
        if idle {
            self.table
                .report(crate::cluster::Event::Idle(self.lv.clone()));
        }
    }
}

/// The relay hook, from [`Api::authorizer`].
pub(crate) struct RelayAuthorizer {
    pub(crate) api: Api,
}

impl Authorizer for RelayAuthorizer {
    fn authorize(&self, request: AuthRequest) -> BoxFuture<'static, Result<Grant, Denied>> {
        let api = self.api.clone();
        Box::pin(async move {
            let action = match request.action {
                Action::Publish => "publish",
                Action::Subscribe => "subscribe",
            };
            let result = api.authorize_relay(request).await;
            let outcome = if result.is_ok() { "granted" } else { "denied" };
            metrics::counter!("clutchcall_auth_decisions_total", "action" => action, "result" => outcome).increment(1);
            if let Err(d) = &result {
                tracing::info!(action, reason = %d.0, "relay authorization denied");
            }
            result
        })
    }
}

/// Mints the tokens an edge relay presents upstream, from the namespace it subscribes to.
pub(crate) struct RelayTokens {
    pub(crate) api: Api,
}

impl relay::mesh::UpstreamAuth for RelayTokens {
    fn token(
        &self,
        namespace: &[bytes::Bytes],
        _track: &bytes::Bytes,
    ) -> BoxFuture<'static, Option<Vec<u8>>> {
        let api = self.api.clone();
        let fields: Vec<Vec<u8>> = namespace.iter().map(|f| f.to_vec()).collect();
        Box::pin(async move {
            let (org, lv) = parse_namespace(&fields).ok()?;
            match api.mint_relay_token(org, lv).await {
                Ok(t) => Some(t.into_bytes()),
                Err(e) => {
                    tracing::warn!(error = %e, org, lv, "cannot mint a relay token for the origin");
                    None
                }
            }
        })
    }
}

fn deny(why: &str) -> Denied {
    Denied(why.to_owned())
}

/// `["stream", org, lv]` → `(org, lv)`.
fn parse_namespace(ns: &[Vec<u8>]) -> Result<(&str, &str), Denied> {
    let [kind, org, id] = ns else {
        return Err(deny("namespace must be stream/<org>/<lv_id>"));
    };
    if kind.as_slice() != b"stream" {
        return Err(deny("namespace must start with stream"));
    }
    let org = std::str::from_utf8(org).map_err(|_| deny("org is not UTF-8"))?;
    let id = std::str::from_utf8(id).map_err(|_| deny("id is not UTF-8"))?;
    if !org.starts_with(prefix::ORG)
        || !id.starts_with(prefix::LIVE_PLAYBACK)
        || !secret::plausible_id(org)
        || !secret::plausible_id(id)
    {
        return Err(deny("namespace names no live input"));
    }
    Ok((org, id))
}

impl Api {
    async fn authorize_relay(&self, request: AuthRequest) -> Result<Grant, Denied> {
        let (org, lv) = parse_namespace(&request.namespace)?;
        let token = request.token.as_deref().ok_or_else(|| deny("no token"))?;
        match request.action {
            Action::Publish => self.authorize_publish(org, lv, token, Ingest::Fmp4).await,
            Action::Subscribe => self.authorize_subscribe(org, lv, token).await,
        }
    }

    /// Check a stream key for `stream/<org>/<lv>` and mark the input live. Shared by MoQT
    /// publishers (`Ingest::Fmp4`) and the RTMP ingest (`Ingest::Rtmp`).
    pub async fn authorize_publish(
        &self,
        org: &str,
        lv: &str,
        stream_key: &[u8],
        ingest: Ingest,
    ) -> Result<Grant, Denied> {
        if !lv.starts_with(prefix::LIVE_PLAYBACK)
            || !secret::plausible_id(lv)
            || !secret::plausible_id(org)
        {
            return Err(deny("not a live input id"));
        }
        // Take the revocation token before reading the key: a rotation that lands after our
        // read cancels this very token.
        let revoked = self
            .inner
            .live
            .publish_token(lv)
            .ok_or_else(|| deny("state lock poisoned"))?;
        let input = match self.inner.db.get_input(org, lv).await {
            Ok(Some(i)) if i.external_input_id == lv => i,
            Ok(_) => {
                self.inner.live.forget_unknown(lv);
                return Err(deny("unknown input"));
            }
            Err(e) => {
                tracing::error!(error = %e, "store failure during publish authorization");
                return Err(deny("store unavailable"));
            }
        };
        if !secret::verify(stream_key, &input.stream_key_hash) {
            return Err(deny("wrong stream key"));
        }
        if revoked.is_cancelled() {
            return Err(deny("stream key rotated"));
        }
        let guard = self.inner.live.go_live(lv, ingest);
        Ok(Grant {
            expires_at: None,
            revoked: Some(revoked),
            guard: Some(Box::new(guard)),
        })
    }

    /// Check a playback JWT for `stream/<org>/<lv>`.
    pub async fn authorize_subscribe(
        &self,
        org: &str,
        lv: &str,
        token: &[u8],
    ) -> Result<Grant, Denied> {
        let token = std::str::from_utf8(token).map_err(|_| deny("token is not UTF-8"))?;
        if !lv.starts_with(prefix::LIVE_PLAYBACK)
            || !secret::plausible_id(lv)
            || !secret::plausible_id(org)
        {
            return Err(deny("not a live input id"));
        }

        let (claims, from_relay) = match self.verify_playback(token, lv, Some(org)).await {
            Ok(Ok(c)) => (c, false),
            // Not a viewer's token: maybe an edge relay's (another audience).
            Ok(Err(TokenError::Audience)) => {
                match self
                    .verify_token_for(token, lv, Some(org), &self.relay_audience())
                    .await
                {
                    Ok(Ok(c)) => (c, true),
                    Ok(Err(TokenError::Audience)) => {
                        return Err(Denied(TokenError::Audience.to_string()))
                    }
                    Ok(Err(e)) => return Err(Denied(format!("relay token: {e}"))),
                    Err(e) => {
                        tracing::error!(error = %e, "store failure during subscribe authorization");
                        return Err(deny("store unavailable"));
                    }
                }
            }
            Ok(Err(e)) => return Err(Denied(e.to_string())),
            Err(e) => {
                tracing::error!(error = %e, "store failure during subscribe authorization");
                return Err(deny("store unavailable"));
            }
        };
        // Taken after the token checks (refused tokens leave no state behind) and before the
        // input is read, so a deletion that lands after the read cancels this very token.
        let revoked = self
            .inner
            .live
            .subscribe_token(lv)
            .ok_or_else(|| deny("state lock poisoned"))?;
        match self.inner.db.get_input(org, lv).await {
            Ok(Some(i)) if i.external_input_id == lv => {}
            Ok(_) => {
                self.inner.live.forget_unknown(lv);
                return Err(deny("unknown input"));
            }
            Err(e) => {
                tracing::error!(error = %e, "store failure during subscribe authorization");
                return Err(deny("store unavailable"));
            }
        }
        if from_relay {
            // An edge relay's session carries many streams for many viewers, each checked at
            // the edge: the grant outlives this (one-minute, one-stream) token, and a revocation
            // ends the stream through its publisher rather than the edge's whole session.
            return Ok(Grant::default());
        }
        let exp_ms = i64::try_from(claims.exp)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let expires_at: SystemTime = ms_to_system(exp_ms);
        Ok(Grant {
            expires_at: Some(expires_at),
            revoked: Some(revoked),
            guard: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_shapes() {
        let ns = |p: &[&str]| p.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(parse_namespace(&ns(&["stream", "org_a", "lv_b"])).is_ok());
        assert!(parse_namespace(&ns(&["stream", "org_a"])).is_err());
        assert!(parse_namespace(&ns(&["stream", "org_a", "lv_b", "x"])).is_err());
        assert!(parse_namespace(&ns(&["public", "org_a", "lv_b"])).is_err());
        assert!(parse_namespace(&ns(&["stream", "org_a", "pb_b"])).is_err());
        assert!(parse_namespace(&[b"stream".to_vec(), vec![0xff], b"lv_b".to_vec()]).is_err());
    }

    #[test]
    fn live_table_counts_publishers() {
        let t = LiveTable::default();
        assert_eq!(t.status("lv_x").state, "idle");
        let g1 = t.go_live("lv_x", Ingest::Fmp4);
        let g2 = t.go_live("lv_x", Ingest::Rtmp);
        assert_eq!(t.status("lv_x").state, "live");
        assert_eq!(t.status("lv_x").publishers, 2);
        drop(g1);
        assert_eq!(t.status("lv_x").state, "live");
        drop(g2);
        let s = t.status("lv_x");
        assert_eq!(s.state, "idle");
        assert!(s.since.is_some());
        let tok = t.publish_token("lv_x");
        t.revoke_publishers("lv_x");
        assert!(tok.is_some_and(|t| t.is_cancelled()));
    }
}
