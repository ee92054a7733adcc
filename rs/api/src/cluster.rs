//! Nodes sharing one PostgreSQL database (an origin and its edges, or several API nodes) keep
//! some state in memory: who is publishing (to cut them off when a key is rotated or an input
//! deleted) and the signing keys they use. A change made on one node is applied there at once
//! and announced to the others with `NOTIFY clutchcall_cluster`; every node listens and applies
//! what the others announce. On SQLite there is one node and nothing to tell.
//!
//! A notification is `<node id>|<kind>|<argument>`; a node ignores its own. While a node's
//! listener is reconnecting it may miss events, so on every (re)connection it drops its key
//! caches (they reload from the database on next use).

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::store::Db;
use crate::{Api, Ingest};

/// The NOTIFY channel.
pub const CHANNEL: &str = "clutchcall_cluster";

/// A change other nodes must apply to their in-memory state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The input's stream key was rotated: disconnect its publishers.
    PublishersRevoked(String),
    /// The input was deleted: disconnect its publishers and viewers.
    InputRemoved(String),
    /// The org's signing keys changed (rotation): reload its signer and verifying keys.
    SigningKeysChanged(String),
    /// A retired signing key was deleted: its tokens stop verifying.
    SigningKeyDeleted(String),
    /// The input went live on the sender (repeated every [`REPEAT`] while it stays live).
    Live {
        lv: String,
        ingest: Ingest,
        since_ms: i64,
    },
    /// The input's last publisher on the sender left.
    Idle(String),
}

/// How often a node repeats its live reports (others forget one after
/// `auth::REMOTE_LIVE_TTL` without a repeat: a node that died stops counting).
pub(crate) const REPEAT: Duration = Duration::from_secs(30);

impl Event {
    fn encode(&self, node: &str) -> String {
        let (kind, arg) = match self {
            Event::PublishersRevoked(a) => ("publishers_revoked", a.clone()),
            Event::InputRemoved(a) => ("input_removed", a.clone()),
            Event::SigningKeysChanged(a) => ("signing_keys_changed", a.clone()),
            Event::SigningKeyDeleted(a) => ("signing_key_deleted", a.clone()),
            Event::Live {
                lv,
                ingest,
                since_ms,
            } => ("live", format!("{lv},{},{since_ms}", ingest.as_str())),
            Event::Idle(a) => ("idle", a.clone()),
        };
        format!("{node}|{kind}|{arg}")
    }

    /// `(sender node, event)`; `None` for anything else on the channel.
    fn decode(payload: &str) -> Option<(&str, Event)> {
        let mut parts = payload.splitn(3, '|');
        let node = parts.next()?;
        let kind = parts.next()?;
        let arg = parts.next()?.to_owned();
        if arg.is_empty() {
            return None;
        }
        let event = match kind {
            "publishers_revoked" => Event::PublishersRevoked(arg),
            "input_removed" => Event::InputRemoved(arg),
            "signing_keys_changed" => Event::SigningKeysChanged(arg),
            "signing_key_deleted" => Event::SigningKeyDeleted(arg),
            "live" => {
                let mut f = arg.split(',');
                let lv = f.next()?.to_owned();
                let ingest = match f.next()? {
                    "rtmp" => Ingest::Rtmp,
                    "fmp4" => Ingest::Fmp4,
                    _ => return None,
                };
                let since_ms = f.next()?.parse().ok()?;
                if lv.is_empty() || f.next().is_some() {
                    return None;
                }
                Event::Live {
                    lv,
                    ingest,
                    since_ms,
                }
            }
            "idle" => Event::Idle(arg),
            _ => return None,
        };
        Some((node, event))
    }
}

impl Api {
    /// Tell the other nodes about a change already applied here.
    pub(crate) async fn announce(&self, event: Event) {
        let Db::Postgres(pool) = &self.inner.db else {
            return;
        };
        let payload = event.encode(&self.inner.node_id);
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(pool)
            .await
        {
            tracing::error!(error = %e, ?event, "cannot tell the other nodes about a change");
        }
    }

    /// Apply the other nodes' changes, and send this node's live/idle reports (repeated every
    /// [`REPEAT`]), until the future is dropped (put it in the binary's `select!`). On SQLite
    /// there are no other nodes: it just waits.
    pub async fn run_cluster_listener(&self) {
        let Db::Postgres(pool) = &self.inner.db else {
            return std::future::pending().await;
        };
        let outbox = self
            .inner
            .cluster_outbox
            .lock()
            .ok()
            .and_then(|mut o| o.take());
        let send_reports = async {
            let Some(mut outbox) = outbox else {
                return std::future::pending().await;
            };
            let mut repeat = tokio::time::interval(REPEAT);
            repeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    event = outbox.recv() => match event {
                        Some(event) => self.announce(event).await,
                        None => return std::future::pending().await,
                    },
                    _ = repeat.tick() => {
                        for event in self.inner.live.local_live() {
                            self.announce(event).await;
                        }
                    }
                }
            }
        };
        tokio::join!(self.listen(pool), send_reports);
    }

    async fn listen(&self, pool: &sqlx::PgPool) {
        let mut retry = Duration::from_millis(250);
        loop {
            let mut listener = match PgListener::connect_with(pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster listener: cannot connect; retrying");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "cluster listener: LISTEN failed; retrying");
                tokio::time::sleep(retry).await;
                continue;
            }
            retry = Duration::from_millis(250);
            // Events may have been missed while we were not listening.
            self.forget_cached_keys(None);
            tracing::debug!("cluster listener ready");
            loop {
                match listener.recv().await {
                    Ok(n) => {
                        if let Some((node, event)) = Event::decode(n.payload()) {
                            if node != self.inner.node_id {
                                tracing::debug!(?event, from = node, "change from another node");
                                self.apply(node, event);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster listener lost its connection; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    fn apply(&self, node: &str, event: Event) {
        match event {
            Event::Live {
                lv,
                ingest,
                since_ms,
            } => self
                .inner
                .live
                .remote_report(node, &lv, Some((ingest, since_ms))),
            Event::Idle(lv) => self.inner.live.remote_report(node, &lv, None),
            Event::PublishersRevoked(lv) => self.inner.live.revoke_publishers(&lv),
            Event::InputRemoved(lv) => self.inner.live.remove_input(&lv),
            Event::SigningKeysChanged(org) => self.forget_cached_keys(Some(&org)),
            Event::SigningKeyDeleted(kid) => {
                if let Ok(mut v) = self.inner.verifiers.write() {
                    v.remove(&kid);
                }
            }
        }
    }

    /// Drop cached signers and verifying keys (of one org, or all).
    fn forget_cached_keys(&self, org: Option<&str>) {
        if let Ok(mut s) = self.inner.signers.write() {
            match org {
                Some(o) => {
                    s.remove(o);
                }
                None => s.clear(),
            }
        }
        if let Ok(mut v) = self.inner.verifiers.write() {
            match org {
                Some(o) => v.retain(|_, k| k.org_id != o),
                None => v.clear(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_junk_is_ignored() {
        for e in [
            Event::PublishersRevoked("lv_a".into()),
            Event::InputRemoved("lv_b".into()),
            Event::SigningKeysChanged("org_c".into()),
            Event::SigningKeyDeleted("kid_d".into()),
            Event::Live {
                lv: "lv_e".into(),
                ingest: Ingest::Rtmp,
                since_ms: 1_700_000_000_000,
            },
            Event::Idle("lv_f".into()),
        ] {
            let wire = e.encode("n1");
            assert_eq!(Event::decode(&wire), Some(("n1", e)));
        }
        assert_eq!(Event::decode(""), None);
        assert_eq!(Event::decode("n1|unknown|x"), None);
        assert_eq!(Event::decode("n1|input_removed|"), None);
        assert_eq!(Event::decode("n1|input_removed"), None);
        assert_eq!(Event::decode("n1|live|lv_a,rtmp"), None);
        assert_eq!(Event::decode("n1|live|lv_a,quic,1"), None);
        assert_eq!(Event::decode("n1|live|lv_a,rtmp,x"), None);
    }
}
