//! `clutchcall serve`: every component in one process.
//!
//! Start-up order: data directory, metrics, certificates, control plane (database + REST),
//! relay (UDP), HTTP (TCP); `/healthz` turns 200 once all listeners are bound. Shutdown on
//! SIGTERM/SIGINT: stop accepting, tell sessions we are going away, drain HTTP, exit 0.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{ServeArgs, Settings, StoreArgs};
use crate::http;

pub async fn run(store: StoreArgs, args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(store, args)?;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;

    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus metrics recorder")?;

    // Certificates for the relay.
    let tls_config = net::tls::Config {
        cert: settings.tls_cert.clone(),
        key: settings.tls_key.clone(),
        hostnames: settings.tls_hostnames.clone(),
        ..Default::default()
    };
    let certs = net::tls::Certs::new(tls_config)
        .context("loading or generating the relay's TLS certificate")?;
    let (hash_tx, hash_rx) = watch::channel(certs.fingerprint().to_hex());
    let mut identity_rx = certs.subscribe();

    // Relay UDP listener(s).
    let mut quic_config = net::server::Config::new(certs.clone());
    quic_config.listen = settings.relay.clone();
    quic_config.tuning.max_udp_payload = settings.relay_max_udp_payload;
    let mut quic = net::server::Server::bind(quic_config).with_context(|| {
        format!(
            "binding the relay on {:?} (UDP); is the port in use?",
            settings.relay
        )
    })?;
    let relay_addrs = quic.local_addrs().to_vec();
    let relay_url = settings.relay_url.clone().unwrap_or_else(|| {
        format!(
            "https://{}",
            relay_addrs.first().copied().unwrap_or(settings.relay[0])
        )
    });

    // HTTP listener.
    let http_listener = tokio::net::TcpListener::bind(settings.http)
        .await
        .with_context(|| format!("binding HTTP on {}; is the port in use?", settings.http))?;
    let http_addr = http_listener
        .local_addr()
        .context("reading the HTTP address")?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"));

    // Control plane.
    let api = api::Api::open(settings.api_config_with(&public_url, &relay_url))
        .await
        .context("opening the control plane (database, migrations)")?;
    // Browsers get the certificate hash (serverCertificateHashes) only for the self-signed
    // certificate: a configured one is checked against their root CAs, and Chromium refuses
    // hash pinning for certificates valid longer than 14 days.
    let advertised_hash = if settings.tls_cert.is_some() {
        watch::channel(String::new()).1
    } else {
        hash_rx.clone()
    };
    api.set_relay_info(vec![relay_url.clone()], advertised_hash);

    // Relay.
    let public_prefix = settings
        .public_prefix
        .as_deref()
        .map(relay::auth::Policy::parse_prefix);
    let authorizer: Arc<dyn relay::auth::Authorizer> = match &settings.origin {
        Some(origin) => Arc::new(crate::edge::EdgePolicy {
            inner: api.authorizer(),
            origin: origin.clone(),
        }),
        None => api.authorizer(),
    };
    let policy = relay::auth::Policy::new(public_prefix, authorizer);
    let relay = relay::Relay::new(
        relay::Config {
            cache: settings.cache,
            publisher_grace: settings.publisher_grace,
            unused_feed_linger: settings.upstream_linger,
            ..Default::default()
        },
        policy,
    );
    // An edge of the relay mesh: tracks under the origin prefix come from the origin.
    let edge = {
        let origin = settings.origin.clone();
        let shared_db = settings.database_url.is_some();
        let (relay, api) = (relay.clone(), api.clone());
        async move {
            match origin {
                Some(origin) => {
                    info!(origin = %origin.url, "running as an edge of the origin relay");
                    if !shared_db {
                        warn!("this edge has its own SQLite database: viewers' tokens minted by the origin will not verify here, and the origin will refuse this edge's relay tokens (only --public-prefix namespaces will work); give every node the same --database-url postgres://…");
                    }
                    crate::edge::run(origin, relay, api).await
                }
                None => std::future::pending::<()>().await,
            }
        }
    };

    let ready = Arc::new(AtomicBool::new(false));
    let app = http::router(http::EngineState {
        ready: ready.clone(),
        cert_sha256: hash_rx,
        metrics,
        relay: relay.clone(),
    })
    .merge(api.router())
    // Browser SDKs call the API from other origins with bearer keys (no cookies), so any
    // origin may read responses; CORS never implies credentials here.
    .layer(
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::Any)
            .allow_methods(tower_http::cors::Any)
            .allow_headers(tower_http::cors::Any)
            .expose_headers(tower_http::cors::Any),
    )
    .layer(tower_http::trace::TraceLayer::new_for_http());

    let shutdown = tokio_util::sync::CancellationToken::new();
    let http_shutdown = shutdown.clone();
    let mut http_server = tokio::spawn(async move {
        axum::serve(http_listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
    });

    // RTMP ingest (recipe 2): publishes into this relay in process.
    let rtmp_auth = Arc::new(RtmpAuth {
        api: api.clone(),
        edge_of: settings.origin.clone(),
    });
    let rtmp = ingest::Server::bind(
        ingest::Config {
            listen: settings.rtmp,
            ladder: settings.ladder.clone(),
            ffmpeg_path: settings.ffmpeg.clone(),
            ..Default::default()
        },
        &relay,
        rtmp_auth.clone(),
        rtmp_auth,
    )
    .await
    .with_context(|| format!("binding RTMP on {}; is the port in use?", settings.rtmp))?;
    let rtmp_addr = rtmp.local_addr().context("reading the RTMP address")?;
    // The ingest's per-input details (renditions, transcoder errors) shown in `input.status`.
    let (details_tx, details_rx) = watch::channel(std::collections::BTreeMap::new());
    api.set_ingest_details(details_rx);
    let mut rtmp_status = rtmp.status();
    let ingest_details = async move {
        loop {
            let details = rtmp_status
                .borrow_and_update()
                .iter()
                .map(|(lv, s)| {
                    let v = serde_json::json!({
                        "renditions": s.renditions,
                        "transcoder_error": s.transcoder_error,
                        "transcoder_starts": s.transcoder_starts,
                    });
                    (lv.clone(), v)
                })
                .collect();
            let _ = details_tx.send(details);
            if rtmp_status.changed().await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await
    };

    ready.store(true, Ordering::Release);
    info!(http = %http_addr, relay = ?relay_addrs, rtmp = %rtmp_addr, %relay_url, data_dir = %settings.data_dir.display(), "clutchcall serving");
    // One line on stdout for scripts and tests that start the engine on port 0.
    println!(
        "clutchcall listening http={http_addr} relay={} rtmp={rtmp_addr}",
        relay_addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );

    let accept_relay = relay.clone();
    let accept_loop = async move {
        while let Some(incoming) = quic.accept().await {
            let relay = accept_relay.clone();
            tokio::spawn(async move {
                relay.serve(incoming.session, incoming.url).await;
            });
        }
        quic
    };

    let cert_hash = async move {
        while identity_rx.changed().await.is_ok() {
            let hex = identity_rx.borrow().fingerprint().to_hex();
            info!(sha256 = %hex, "relay certificate renewed");
            let _ = hash_tx.send(hex);
        }
        std::future::pending::<()>().await
    };

    // VOD packaging jobs (durable, in the database; resumed here after a restart).
    let worker_api = api.clone();
    let vod_worker = async move { worker_api.run_vod_worker().await };
    // Changes other nodes on the same PostgreSQL make (key rotations, deletions).
    let cluster_api = api.clone();
    let cluster = async move { cluster_api.run_cluster_listener().await };

    tokio::select! {
        _ = vod_worker => anyhow::bail!("VOD worker stopped unexpectedly"),
        r = &mut http_server => {
            r.context("HTTP server task failed")?.context("HTTP server failed")?;
            anyhow::bail!("HTTP server stopped unexpectedly");
        }
        _ = accept_loop => anyhow::bail!("relay listener stopped unexpectedly"),
        r = rtmp.run() => {
            r.context("RTMP ingest failed")?;
            anyhow::bail!("RTMP ingest stopped unexpectedly");
        }
        _ = certs.run_rotation() => anyhow::bail!("certificate rotation stopped unexpectedly"),
        _ = cert_hash => {},
        _ = edge => {},
        _ = cluster => {},
        _ = ingest_details => {},
        _ = shutdown_signal() => {
            info!("shutting down: draining sessions");
            ready.store(false, Ordering::Release);
            shutdown.cancel();
            relay.shutdown(Duration::from_secs(1)).await;
            if tokio::time::timeout(Duration::from_secs(5), api.close()).await.is_err() {
                warn!("database connections still busy after 5 s: leaving them");
            }
            if tokio::time::timeout(Duration::from_secs(5), &mut http_server).await.is_err() {
                warn!("HTTP connections still open after 5 s: closing them");
                http_server.abort();
            }
        }
    }
    info!("bye");
    Ok(())
}

/// The RTMP ingest's view of the control plane: stream keys are checked like MoQT publishers'
/// (but recorded as ingest "rtmp"), and an RTMP URL's `lv_…` id is mapped to its org.
struct RtmpAuth {
    api: api::Api,
    /// Set on an edge, which takes no publishers (see `edge::EdgePolicy`).
    edge_of: Option<crate::edge::Origin>,
}

impl relay::auth::Authorizer for RtmpAuth {
    fn authorize(
        &self,
        request: relay::auth::AuthRequest,
    ) -> futures::future::BoxFuture<'static, Result<relay::auth::Grant, relay::auth::Denied>> {
        if let Some(denied) = self
            .edge_of
            .as_ref()
            .and_then(|o| crate::edge::EdgePolicy::refuses(o, &request))
        {
            return Box::pin(async move { Err(denied) });
        }
        let api = self.api.clone();
        Box::pin(async move {
            let field = |i: usize| {
                request
                    .namespace
                    .get(i)
                    .and_then(|f| std::str::from_utf8(f).ok())
                    .map(str::to_owned)
            };
            let (Some(org), Some(lv)) = (field(1), field(2)) else {
                return Err(relay::auth::Denied("namespace names no input".into()));
            };
            let key = request.token.unwrap_or_default();
            api.authorize_publish(&org, &lv, &key, api::Ingest::Rtmp)
                .await
        })
    }
}

impl ingest::Lookup for RtmpAuth {
    fn org_of(
        &self,
        lv: &str,
    ) -> futures::future::BoxFuture<'static, Result<Option<String>, String>> {
        let api = self.api.clone();
        let lv = lv.to_owned();
        Box::pin(async move {
            let input = api
                .find_input_by_external_id(&lv)
                .await
                .map_err(|e| e.to_string())?;
            Ok(input.map(|i| i.org_id))
        })
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
