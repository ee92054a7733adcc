//! The engine's own HTTP routes (health, certificate hash, metrics), merged with the control
//! plane's REST router.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

/// What the engine routes need.
#[derive(Clone)]
pub struct EngineState {
    /// Set once every listener is bound.
    pub ready: Arc<AtomicBool>,
    /// Lower-case hex SHA-256 of the relay's current certificate.
    pub cert_sha256: watch::Receiver<String>,
    pub metrics: PrometheusHandle,
    /// Read at each scrape for the relay's gauges that are not kept up to date per object.
    pub relay: relay::Relay,
}

pub fn router(state: EngineState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/certificate.sha256", get(certificate_sha256))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(state): State<EngineState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn certificate_sha256(State(state): State<EngineState>) -> impl IntoResponse {
    let hash = state.cert_sha256.borrow().clone();
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        hash,
    )
}

async fn metrics(State(state): State<EngineState>) -> impl IntoResponse {
    // Summed per scrape rather than maintained per object (that would cost the publish path a
    // metrics update per frame).
    let registry = state.relay.registry();
    metrics::gauge!("relay_tracks").set(registry.track_count() as f64);
    metrics::gauge!("relay_cache_bytes").set(registry.cached_bytes() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
