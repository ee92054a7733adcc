//! The MoQT (draft-18) client role over [`net`]: connect to a relay, publish tracks, subscribe
//! to them.
//!
//! This crate owns the client side of a MoQT session: SETUP on its control stream, one
//! bidirectional stream per request (PUBLISH, SUBSCRIBE, FETCH, PUBLISH_NAMESPACE, request ids
//! even from 0), the unidirectional subgroup streams a publisher writes, and the dispatch of the
//! relay's data streams (by track alias, or by request id for FETCH) to subscriptions. It is the
//! base of the tests, the benchmarks, the Python SDK and the RTMP ingest service.
//!
//! It must not: encode or parse wire formats itself (that is `moqt`), open sockets or handle
//! TLS itself (that is `net`), know what a track's payload means (media, catalogs), or decide
//! policy (credentials are passed through as opaque AUTHORIZATION TOKENs). It never panics on
//! network input, and a slow consumer only slows its own subscription's streams.
//!
//! Tasks: [`Connection::connect`] spawns the session's reader tasks on the caller's tokio
//! runtime (control stream, incoming data streams, one per subscription and joining fetch);
//! they end when the session closes, which happens when the last handle is dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::Error> {
//! use client::{Config, Connection, Event, PublishOptions, Start, SubscribeOptions};
//! let conn = Connection::connect("moqt://127.0.0.1:4443/", Config::default()).await?;
//! let publisher = conn.publish(["public", "demo"], "video", PublishOptions::default()).await?;
//! let mut group = publisher.next_group().await?;
//! group.write(bytes::Bytes::from_static(b"keyframe")).await?;
//! group.finish().await?;
//!
//! let mut sub = conn
//!     .subscribe(["public", "demo"], "video", SubscribeOptions { start: Start::Latest, ..Default::default() })
//!     .await?;
//! while let Some(Event::Object(o)) = sub.next().await {
//!     println!("group {} object {}: {} bytes", o.group, o.object, o.payload.len());
//! }
//! # Ok(()) }
//! ```

mod connection;
mod error;
mod http;
mod io;
mod publish;
mod subscribe;

pub use connection::{Announced, Config, Connection};
pub use error::{CloseReason, Error, AUTH_FAILED};
pub use publish::{status, GroupWriter, PublishOptions, TrackPublisher};
pub use subscribe::{Event, Received, Start, SubscribeOptions, Subscription};

pub use moqt::{GroupOrder, Location, TrackNamespace};

/// Fetches the engine's certificate fingerprint (`GET {http_base}/certificate.sha256`, plain
/// HTTP) for [`Verify::Pinned`]. [`Connection::connect_engine`] does this for one connection.
pub async fn fetch_fingerprint(
    http_base: &str,
    timeout: std::time::Duration,
) -> Result<Fingerprint, Error> {
    http::certificate_fingerprint(http_base, timeout).await
}
pub use net::client::Verify;
pub use net::tls::Fingerprint;

/// Anything that names a track namespace: a [`TrackNamespace`], a list of tuple fields
/// (`["stream", "org_1", "lv_2"]`, `&["a", "b"][..]`, `Vec<String>`), or a `/`-separated path
/// (`"stream/org_1/lv_2"`).
pub trait Namespace {
    /// The namespace, or [`Error::Invalid`] when it cannot be encoded.
    fn namespace(self) -> Result<TrackNamespace, Error>;
}

impl Namespace for TrackNamespace {
    fn namespace(self) -> Result<TrackNamespace, Error> {
        Ok(self)
    }
}

impl Namespace for &TrackNamespace {
    fn namespace(self) -> Result<TrackNamespace, Error> {
        Ok(self.clone())
    }
}

impl Namespace for &[&str] {
    fn namespace(self) -> Result<TrackNamespace, Error> {
        Ok(TrackNamespace::from_strs(self.iter().copied())?)
    }
}

impl<const N: usize> Namespace for [&str; N] {
    fn namespace(self) -> Result<TrackNamespace, Error> {
        Ok(TrackNamespace::from_strs(self.iter().copied())?)
    }
}

impl<const N: usize> Namespace for &[&str; N] {
    fn namespace(self) -> Result<TrackNamespace, Error> {
        Ok(TrackNamespace::from_strs(self.iter().copied())?)
    }
}

impl Namespace for &[String] {
    fn namespace(self) -> Result<TrackNamespace, Error> {
        Ok(TrackNamespace::from_strs(self.iter().map(String::as_str))?)
    }
}

impl Namespace for Vec<String> {
    fn namespace(self) -> Result<TrackNamespace, Error> {
        self.as_slice().namespace()
    }
}

impl Namespace for &str {
    fn namespace(self) -> Result<TrackNamespace, Error> {
        Ok(TrackNamespace::from_path(self)?)
    }
}
