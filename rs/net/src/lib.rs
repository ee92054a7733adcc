//! QUIC and WebTransport endpoints for ClutchCall's MoQT relay and clients.
//!
//! This crate owns everything below MoQT:
//!
//! * the UDP sockets and the quinn endpoints bound on them ([`server::Server`], [`client::Client`]);
//! * the QUIC handshake and ALPN negotiation (`moqt-18` for raw QUIC, `h3` for WebTransport),
//!   the HTTP/3 extended CONNECT and its `WT-Available-Protocols` negotiation;
//! * TLS: certificate loading, the short-lived self-signed certificate browsers accept through
//!   `serverCertificateHashes`, its rotation, and client-side verification ([`tls`]).
//!
//! Both transports end in the same [`Session`] type, so the layers above never care which one a
//! peer used.
//!
//! What it must not do: send, parse or interpret MoQT messages. Once a [`Session`] is handed out,
//! every byte on its streams and datagrams belongs to the caller (the `moqt` codec and the relay).
//! It also spawns nothing behind the caller's back except the per-handshake tasks a
//! [`server::Server`] owns (and aborts when dropped); long-running work such as certificate
//! rotation is a future the caller runs ([`tls::Certs::run_rotation`]).

pub mod client;
pub mod server;
pub mod tls;
mod tuning;

pub(crate) use tuning::bind_udp;
pub use tuning::{Congestion, TransportTuning};

pub use web_transport_quinn::{
    ClosedStream, ReadError, ReadExactError, ReadToEndError, RecvStream, SendStream, Session,
    SessionError, WebTransportError, WriteError,
};

/// The quinn crate this one is built on, for callers that need its types (stats, `VarInt`, ...).
pub use web_transport_quinn::quinn;

/// Re-exported because [`server::Incoming::url`] and [`client::Client::connect`] use it.
pub use url::Url;

/// The ALPN (raw QUIC) and WebTransport protocol token of MoQT draft-18.
pub const MOQT_18: &str = "moqt-18";

/// The ALPN of HTTP/3, which carries WebTransport.
pub const ALPN_H3: &str = "h3";

/// How a session reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// MoQT directly over QUIC (ALPN `moqt-18`).
    Quic,
    /// MoQT over WebTransport over HTTP/3 (ALPN `h3` + extended CONNECT).
    WebTransport,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Quic => "quic",
            Transport::WebTransport => "webtransport",
        })
    }
}
