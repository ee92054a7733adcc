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
use crate::Api;

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
}

impl Event {
    fn encode(&self, node: &str) -> String {
        let (kind, arg) = match self {
            Event::PublishersRevoked(a) => ("publishers_revoked", a),
            Event::InputRemoved(a) => ("input_removed", a),
            Event::SigningKeysChanged(a) => ("signing_keys_changed", a),
            Event::SigningKeyDeleted(a) => ("signing_key_deleted", a),
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

    /// Apply the other nodes' changes until the future is dropped (put it in the binary's
    /// `select!`). On SQLite there are no other nodes: it just waits.
    pub async fn run_cluster_listener(&self) {
        let Db::Postgres(pool) = &self.inner.db else {
            return std::future::pending().await;
        };
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
                                tracing::info!(?event, from = node, "change from another node");
                                self.apply(event);
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

    fn apply(&self, event: Event) {
        match event {
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
        ] {
            let wire = e.encode("n1");
            assert_eq!(Event::decode(&wire), Some(("n1", e)));
        }
        assert_eq!(Event::decode(""), None);
        assert_eq!(Event::decode("n1|unknown|x"), None);
        assert_eq!(Event::decode("n1|input_removed|"), None);
        assert_eq!(Event::decode("n1|input_removed"), None);
    }
}
