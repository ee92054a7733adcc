//! `serve --origin`: this engine as an edge of an origin engine (the relay mesh).
//!
//! Keeps one MoQT session open to the origin relay (raw QUIC) and hands it to the relay
//! (`relay::Relay::serve_upstream`), which feeds every track under the origin prefix from it:
//! one upstream subscription per track however many viewers attach here. Re-dials with
//! back-off when the session ends, and at once when the origin sends GOAWAY (the old session
//! keeps feeding its tracks until it closes, then they move to the new one). Viewers here are
//! authorized by this node's control plane, which shares the origin's database; the origin
//! authorizes each upstream request with a one-minute relay token minted here.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use tokio::sync::watch;
use tracing::{info, warn};

/// Where the origin is and how its certificate is checked.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `moqt://host:port` of the origin's relay.
    pub url: url::Url,
    /// Certificate SHA-256 pins (hex); empty: see `http`, else the platform's roots.
    pub pins: Vec<net::tls::Fingerprint>,
    /// The origin's HTTP base URL, to read `/certificate.sha256` before each dial (for the
    /// self-signed default certificate on a trusted network).
    pub http: Option<String>,
    /// Namespace prefix the origin feeds.
    pub prefix: Vec<Bytes>,
    /// Largest UDP payload for the session.
    pub max_udp_payload: u16,
}

impl Origin {
    /// Parse `--origin` and `--origin-cert-sha256` values.
    pub fn parse(
        url: &str,
        pins: &[String],
        http: Option<String>,
        prefix: &str,
        max_udp_payload: u16,
    ) -> anyhow::Result<Self> {
        let url = url::Url::parse(url).with_context(|| format!("--origin {url:?}"))?;
        if url.scheme() != "moqt" || url.host().is_none() {
            anyhow::bail!("--origin must be the origin relay's moqt://host:port URL, got {url}");
        }
        let pins = pins
            .iter()
            .map(|p| {
                let mut bytes = [0u8; 32];
                let clean: String = p.chars().filter(|c| *c != ':').collect();
                if clean.len() != 64 {
                    anyhow::bail!("--origin-cert-sha256 {p:?}: expected 64 hex digits (the origin's /certificate.sha256)");
                }
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&clean[2 * i..2 * i + 2], 16).with_context(|| {
                        format!("--origin-cert-sha256 {p:?}: not hex")
                    })?;
                }
                Ok(net::tls::Fingerprint(bytes))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let prefix = relay::auth::Policy::parse_prefix(prefix)
            .into_iter()
            .map(Bytes::from)
            .collect::<Vec<_>>();
        if prefix.is_empty() {
            anyhow::bail!("--origin-prefix must name at least one namespace field (e.g. stream)");
        }
        Ok(Self {
            url,
            pins,
            http,
            prefix,
            max_udp_payload,
        })
    }
}

/// An edge takes no publishers under the origin prefix: the broadcast lives at the origin, and
/// viewers elsewhere in the mesh would never see one published here.
pub struct EdgePolicy {
    pub inner: std::sync::Arc<dyn relay::auth::Authorizer>,
    pub origin: Origin,
}

impl EdgePolicy {
    /// `Some(refusal)` when this request publishes under the origin prefix.
    pub fn refuses(
        origin: &Origin,
        request: &relay::auth::AuthRequest,
    ) -> Option<relay::auth::Denied> {
        let under = request.namespace.len() >= origin.prefix.len()
            && origin
                .prefix
                .iter()
                .zip(&request.namespace)
                .all(|(p, f)| p.as_ref() == f.as_slice());
        (request.action == relay::auth::Action::Publish && under).then(|| {
            relay::auth::Denied(format!(
                "this engine is an edge of {}: publish to the origin",
                origin.url
            ))
        })
    }
}

impl relay::auth::Authorizer for EdgePolicy {
    fn authorize(
        &self,
        request: relay::auth::AuthRequest,
    ) -> futures::future::BoxFuture<'static, Result<relay::auth::Grant, relay::auth::Denied>> {
        if let Some(denied) = Self::refuses(&self.origin, &request) {
            return Box::pin(async move { Err(denied) });
        }
        self.inner.authorize(request)
    }
}

/// Keep a session to the origin open for as long as the engine runs.
pub async fn run(origin: Origin, relay: relay::Relay, api: api::Api) {
    const FIRST_RETRY: Duration = Duration::from_millis(250);
    // Short enough that an edge is back within seconds of an origin restart; a dial attempt
    // every 2 s against an origin that stays down costs nothing.
    const MAX_RETRY: Duration = Duration::from_secs(2);
    // A session that lived this long was healthy: the next failure starts the back-off anew.
    const STABLE: Duration = Duration::from_secs(10);
    let mut retry = FIRST_RETRY;
    loop {
        let connected = match dial(&origin).await {
            Ok(c) => c,
            Err(e) => {
                warn!(origin = %origin.url, error = %format!("{e:#}"), retry_in_ms = retry.as_millis() as u64, "cannot reach the origin relay");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        info!(origin = %origin.url, "connected to the origin relay");
        metrics::counter!("clutchcall_origin_sessions_total").increment(1);
        let (goaway, mut goaway_rx) = watch::channel(None);
        let options = relay::mesh::UpstreamOptions {
            prefix: origin.prefix.clone(),
            path: Some(connected.path),
            authority: Some(connected.authority),
            auth: Some(api.upstream_auth()),
            goaway,
        };
        let started = tokio::time::Instant::now();
        let session_relay = relay.clone();
        let mut served = tokio::spawn(async move {
            session_relay
                .serve_upstream(connected.session, options)
                .await
        });
        tokio::select! {
            r = &mut served => {
                let why = match r {
                    Ok(Ok(())) => "closed".to_owned(),
                    Ok(Err(e)) => e,
                    Err(e) => e.to_string(),
                };
                warn!(origin = %origin.url, reason = %why, "origin session ended: reconnecting");
            }
            _ = goaway_rx.wait_for(|g| g.is_some()) => {
                // The old session goes on in its task until the origin closes it.
                info!(origin = %origin.url, "origin sent GOAWAY: opening a new session");
            }
        }
        // A session that fails right after connecting must not turn into a busy loop.
        if started.elapsed() < STABLE {
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
        } else {
            retry = FIRST_RETRY;
        }
    }
}

async fn dial(origin: &Origin) -> anyhow::Result<net::client::Connected> {
    let verify = if !origin.pins.is_empty() {
        net::client::Verify::Pinned(origin.pins.clone())
    } else if let Some(http) = &origin.http {
        let fp = client::fetch_fingerprint(http, Duration::from_secs(5))
            .await
            .with_context(|| format!("reading {http}/certificate.sha256"))?;
        net::client::Verify::Pinned(vec![fp])
    } else {
        net::client::Verify::PlatformRoots
    };
    let mut config = net::client::Config {
        verify,
        ..Default::default()
    };
    config.tuning.max_udp_payload = origin.max_udp_payload;
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        net::client::connect(&origin.url, config),
    )
    .await
    .context("connecting took over 10 s")?
    .context("QUIC/TLS connection")?;
    Ok(connected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_flags_are_checked() {
        let ok = Origin::parse("moqt://127.0.0.1:4443", &[], None, "stream", 1452);
        assert!(ok.is_ok());
        assert!(Origin::parse("https://127.0.0.1:4443", &[], None, "stream", 1452).is_err());
        assert!(Origin::parse(
            "moqt://127.0.0.1:4443",
            &["abcd".into()],
            None,
            "stream",
            1452
        )
        .is_err());
        assert!(Origin::parse(
            "moqt://127.0.0.1:4443",
            &["zz".repeat(32)],
            None,
            "stream",
            1452
        )
        .is_err());
        let pin = "ab".repeat(32);
        let o = Origin::parse("moqt://h:1", &[pin], None, "stream", 1452).expect("pin");
        assert_eq!(o.pins[0].0, [0xab; 32]);
        assert!(Origin::parse("moqt://h:1", &[], None, "", 1452).is_err());
    }
}
