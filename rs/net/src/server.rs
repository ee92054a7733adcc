//! The server endpoint: one UDP socket per listen address, serving MoQT over raw QUIC
//! (ALPN `moqt-18`) and over WebTransport (ALPN `h3`) on the same port.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::task::JoinSet;
use url::Url;
use web_transport_quinn::http::StatusCode;
use web_transport_quinn::proto::ConnectResponse;

use crate::{bind_udp, quinn, tls, Session, Transport, TransportTuning, ALPN_H3, MOQT_18};

/// Server endpoint configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on, one UDP socket each (IPv6 sockets are IPv6-only, so `0.0.0.0`
    /// and `[::]` can be listed together). Port 0 picks a free port per socket; see
    /// [`Server::local_addrs`]. An IPv6 address that cannot be bound because the host has no
    /// IPv6 is skipped with a warning, as long as another address binds.
    /// Default: `127.0.0.1:4443` and `[::1]:4443`.
    pub listen: Vec<SocketAddr>,
    /// The certificate to serve (and rotate).
    pub certs: tls::Certs,
    /// MoQT versions accepted, most preferred first: offered as ALPNs for raw QUIC (`h3` is
    /// added for WebTransport) and matched against `WT-Available-Protocols`.
    /// Default: `["moqt-18"]`.
    pub protocols: Vec<String>,
    /// QUIC transport parameters.
    pub tuning: TransportTuning,
    /// Time allowed for the QUIC handshake plus, for WebTransport, the HTTP/3 SETTINGS exchange
    /// and CONNECT request. Slower peers are dropped. Default 10 s.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; further connection attempts are refused until some
    /// finish. Default 4096.
    pub max_pending_handshakes: usize,
}

impl Config {
    /// The defaults above, serving `certs`.
    pub fn new(certs: tls::Certs) -> Self {
        Self {
            listen: vec![
                SocketAddr::from(([127, 0, 0, 1], 4443)),
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 4443)),
            ],
            certs,
            protocols: vec![MOQT_18.to_owned()],
            tuning: TransportTuning::default(),
            handshake_timeout: Duration::from_secs(10),
            max_pending_handshakes: 4096,
        }
    }
}

/// Errors starting the server. Nothing a client does produces one.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("no listen address configured")]
    NoListenAddress,
    #[error("no MoQT protocol configured")]
    NoProtocol,
    #[error("binding UDP {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("QUIC TLS configuration: {0}")]
    QuicTls(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// A MoQT session ready for the application: the handshake is done and, for WebTransport, the
/// CONNECT was answered 200 with `moqt-18` selected.
#[derive(Debug)]
pub struct Incoming {
    /// The session; raw QUIC and WebTransport look the same from here on.
    pub session: Session,
    /// Which transport the client used.
    pub transport: Transport,
    /// The WebTransport CONNECT URL (`https://authority/path?query`); `None` for raw QUIC, whose
    /// path and authority arrive in the MoQT SETUP options instead.
    pub url: Option<Url>,
    /// The MoQT version negotiated (e.g. `moqt-18`), by ALPN or `WT-Protocol`. For a WebTransport
    /// client that sent no `WT-Available-Protocols`, the most preferred configured version.
    pub protocol: String,
    /// The client's address.
    pub remote: SocketAddr,
}

type AcceptFuture = BoxFuture<'static, (quinn::Endpoint, Option<quinn::Incoming>)>;

/// A bound server endpoint. Call [`Server::accept`] in a loop.
///
/// Handshakes run concurrently in tasks owned by the server (a [`JoinSet`], aborted when the
/// server is dropped), so a slow or malicious client never delays the others.
pub struct Server {
    endpoints: Vec<quinn::Endpoint>,
    local_addrs: Vec<SocketAddr>,
    accepts: FuturesUnordered<AcceptFuture>,
    handshakes: JoinSet<Option<Incoming>>,
    shared: Arc<Shared>,
    max_pending: usize,
}

struct Shared {
    protocols: Vec<String>,
    timeout: Duration,
}

impl Server {
    /// Binds every listen address. Must be called inside a tokio runtime.
    pub fn bind(config: Config) -> Result<Self, ServerError> {
        if config.listen.is_empty() {
            return Err(ServerError::NoListenAddress);
        }
        if config.protocols.is_empty() {
            return Err(ServerError::NoProtocol);
        }

        let mut crypto = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(config.certs.clone()));
        crypto.alpn_protocols = config
            .protocols
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .chain(std::iter::once(ALPN_H3.as_bytes().to_vec()))
            .collect();
        // No 0-RTT: WebTransport cannot use it and MoQT requests are not all replay-safe.
        crypto.max_early_data_size = 0;

        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(crypto)?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server_config.transport_config(config.tuning.to_quinn());

        let runtime = quinn::default_runtime().ok_or_else(|| ServerError::Bind {
            addr: config.listen[0],
            source: io::Error::other("no async runtime (call inside tokio)"),
        })?;

        let mut endpoints = Vec::new();
        let mut local_addrs = Vec::new();
        let mut first_error = None;
        for &addr in &config.listen {
            let socket = match bind_udp(addr, config.tuning.udp_buffer, true) {
                Ok(socket) => socket,
                Err(err) if addr.is_ipv6() && ipv6_unavailable(&err) => {
                    tracing::warn!(%addr, %err, "IPv6 unavailable; not listening on this address");
                    first_error.get_or_insert(ServerError::Bind { addr, source: err });
                    continue;
                }
                Err(source) => return Err(ServerError::Bind { addr, source }),
            };
            let endpoint = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(server_config.clone()),
                socket,
                runtime.clone(),
            )
            .map_err(|source| ServerError::Bind { addr, source })?;
            let local = endpoint
                .local_addr()
                .map_err(|source| ServerError::Bind { addr, source })?;
            tracing::info!(addr = %local, "MoQT listening (QUIC + WebTransport)");
            local_addrs.push(local);
            endpoints.push(endpoint);
        }
        if endpoints.is_empty() {
            return Err(first_error.unwrap_or(ServerError::NoListenAddress));
        }

        let accepts = endpoints.iter().cloned().map(accept_next).collect();
        Ok(Self {
            endpoints,
            local_addrs,
            accepts,
            handshakes: JoinSet::new(),
            shared: Arc::new(Shared {
                protocols: config.protocols,
                timeout: config.handshake_timeout,
            }),
            max_pending: config.max_pending_handshakes.max(1),
        })
    }

    /// The bound addresses, with the real ports.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The next established session, or `None` once every endpoint is closed (see
    /// [`Server::close`]). Cancel-safe: use it in `select!`.
    pub async fn accept(&mut self) -> Option<Incoming> {
        loop {
            tokio::select! {
                biased;
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    match done {
                        Ok(Some(incoming)) => return Some(incoming),
                        Ok(None) => {}
                        Err(err) => tracing::debug!(%err, "handshake task ended abnormally"),
                    }
                }
                Some((endpoint, incoming)) = self.accepts.next() => {
                    // `None`: the endpoint was closed; stop accepting on it.
                    let Some(incoming) = incoming else { continue };
                    self.accepts.push(accept_next(endpoint));
                    if self.handshakes.len() >= self.max_pending {
                        tracing::debug!(
                            remote = %incoming.remote_address(),
                            "too many handshakes in progress; refusing connection"
                        );
                        incoming.refuse();
                        continue;
                    }
                    let shared = self.shared.clone();
                    self.handshakes.spawn(handshake(incoming, shared));
                }
                else => return None,
            }
        }
    }

    /// Number of handshakes in progress.
    pub fn pending_handshakes(&self) -> usize {
        self.handshakes.len()
    }

    /// Closes every connection with `code` and stops accepting; [`Server::accept`] then drains
    /// and returns `None`. Pair with [`Server::wait_idle`] to let the close frames go out.
    pub fn close(&self, code: u32, reason: &[u8]) {
        for endpoint in &self.endpoints {
            endpoint.close(code.into(), reason);
        }
    }

    /// Waits until every connection is fully closed.
    pub async fn wait_idle(&self) {
        for endpoint in &self.endpoints {
            endpoint.wait_idle().await;
        }
    }

    /// The underlying quinn endpoints, one per bound address.
    pub fn endpoints(&self) -> &[quinn::Endpoint] {
        &self.endpoints
    }
}

fn accept_next(endpoint: quinn::Endpoint) -> AcceptFuture {
    Box::pin(async move {
        let incoming = endpoint.accept().await;
        (endpoint, incoming)
    })
}

/// Whether a bind error means "this host has no IPv6", as opposed to a real problem such as the
/// port being taken.
fn ipv6_unavailable(err: &io::Error) -> bool {
    const EAFNOSUPPORT: i32 = 97;
    const EADDRNOTAVAIL: i32 = 99;
    matches!(
        err.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
    ) || matches!(err.raw_os_error(), Some(EAFNOSUPPORT | EADDRNOTAVAIL))
}

async fn handshake(incoming: quinn::Incoming, shared: Arc<Shared>) -> Option<Incoming> {
    let remote = incoming.remote_address();
    let conn = match incoming.accept() {
        Ok(connecting) => connecting,
        Err(err) => {
            tracing::debug!(%remote, %err, "rejected connection attempt");
            return None;
        }
    };
    match tokio::time::timeout(shared.timeout, establish(conn, remote, &shared)).await {
        Ok(Ok(incoming)) => Some(incoming),
        Ok(Err(err)) => {
            tracing::debug!(%remote, %err, "handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%remote, timeout = ?shared.timeout, "handshake timed out");
            None
        }
    }
}

/// Why a handshake failed; only logged.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("QUIC: {0}")]
    Quic(#[from] quinn::ConnectionError),
    #[error("unexpected ALPN {0:?}")]
    Alpn(Option<String>),
    #[error("WebTransport: {0}")]
    WebTransport(#[from] web_transport_quinn::ServerError),
    #[error("client offered {offered:?}, none of {supported:?}; rejected with 400")]
    NoCommonProtocol {
        offered: Vec<String>,
        supported: Vec<String>,
    },
}

async fn establish(
    connecting: quinn::Connecting,
    remote: SocketAddr,
    shared: &Shared,
) -> Result<Incoming, HandshakeError> {
    let conn = connecting.await?;
    let alpn = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol)
        .and_then(|p| String::from_utf8(p).ok());

    match alpn {
        Some(alpn) if shared.protocols.contains(&alpn) => {
            tracing::debug!(%remote, %alpn, "raw QUIC session");
            Ok(Incoming {
                session: Session::raw(conn),
                transport: Transport::Quic,
                url: None,
                protocol: alpn,
                remote,
            })
        }
        Some(alpn) if alpn == ALPN_H3 => webtransport(conn, remote, shared).await,
        other => {
            // rustls only completes a handshake on an ALPN we offered, so this is defensive.
            conn.close(quinn::VarInt::from_u32(0x0), b"unsupported ALPN");
            Err(HandshakeError::Alpn(other))
        }
    }
}

async fn webtransport(
    conn: quinn::Connection,
    remote: SocketAddr,
    shared: &Shared,
) -> Result<Incoming, HandshakeError> {
    let request = web_transport_quinn::Request::accept(conn.clone()).await?;
    let url = request.url.clone();

    let protocol = if request.protocols.is_empty() {
        // Browsers before WT-Available-Protocols support send none: assume our preferred version.
        let protocol = shared.protocols[0].clone();
        tracing::info!(%remote, %url, %protocol, "WebTransport client sent no WT-Available-Protocols; assuming it");
        let session = request.respond(ConnectResponse::OK).await?;
        return Ok(Incoming {
            session,
            transport: Transport::WebTransport,
            url: Some(url),
            protocol,
            remote,
        });
    } else {
        // Our preference order wins over the client's.
        shared
            .protocols
            .iter()
            .find(|p| request.protocols.contains(p))
            .cloned()
    };

    let Some(protocol) = protocol else {
        let offered = request.protocols.clone();
        tracing::info!(%remote, %url, ?offered, "WebTransport client offered no supported MoQT version; rejecting");
        request.reject(StatusCode::BAD_REQUEST).await?;
        // Give the response a moment to reach the client before the connection goes away.
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
        conn.close(
            quinn::VarInt::from_u32(H3_NO_ERROR),
            b"no supported protocol",
        );
        return Err(HandshakeError::NoCommonProtocol {
            offered,
            supported: shared.protocols.clone(),
        });
    };

    let session = request
        .respond(ConnectResponse::OK.with_protocol(protocol.clone()))
        .await?;
    tracing::debug!(%remote, %url, %protocol, "WebTransport session");
    Ok(Incoming {
        session,
        transport: Transport::WebTransport,
        url: Some(url),
        protocol,
        remote,
    })
}

/// HTTP/3 `H3_NO_ERROR`.
const H3_NO_ERROR: u32 = 0x100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_unavailable_is_told_apart_from_real_errors() {
        assert!(ipv6_unavailable(&io::Error::from_raw_os_error(97)));
        assert!(ipv6_unavailable(&io::Error::from_raw_os_error(99)));
        assert!(ipv6_unavailable(&io::Error::from(
            io::ErrorKind::AddrNotAvailable
        )));
        assert!(!ipv6_unavailable(&io::Error::from(
            io::ErrorKind::AddrInUse
        )));
        assert!(!ipv6_unavailable(&io::Error::from(
            io::ErrorKind::PermissionDenied
        )));
    }
}
