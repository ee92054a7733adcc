//! The client endpoint: `moqt://` URLs over raw QUIC (ALPN `moqt-18`) and `https://` URLs over
//! WebTransport (offering `moqt-18` in `WT-Available-Protocols`).
//!
//! One [`Client`] is one UDP socket; it can carry any number of connections at once, so a load
//! generator opening a thousand sessions should build one `Client` and call
//! [`Client::connect`] a thousand times.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use url::{Host, Url};
use web_transport_quinn::proto::ConnectRequest;

use crate::tls::{self, Fingerprint};
use crate::{bind_udp, quinn, Session, Transport, TransportTuning, ALPN_H3, MOQT_18};

/// How the client checks the server's certificate.
#[derive(Clone, Default)]
pub enum Verify {
    /// Standard WebPKI validation against the platform's root store (on Debian,
    /// `/etc/ssl/certs`, via `rustls-native-certs`). The default.
    #[default]
    PlatformRoots,
    /// Standard validation against these trust anchors only (a private CA).
    Roots(Vec<CertificateDer<'static>>),
    /// Like a browser's `serverCertificateHashes`: the leaf certificate is accepted iff the
    /// SHA-256 of its DER is in the list; name and chain are not checked. The TLS handshake
    /// signature is still verified, so the server must hold the matching key.
    Pinned(Vec<Fingerprint>),
    /// Accept any certificate. **Tests only**: anyone on the path can impersonate the server.
    /// (The handshake signature is still checked against whatever certificate was presented.)
    InsecureAcceptAnyCertificate,
}

impl fmt::Debug for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verify::PlatformRoots => f.write_str("PlatformRoots"),
            Verify::Roots(roots) => write!(f, "Roots({} certificates)", roots.len()),
            Verify::Pinned(hashes) => f.debug_tuple("Pinned").field(hashes).finish(),
            Verify::InsecureAcceptAnyCertificate => f.write_str("InsecureAcceptAnyCertificate"),
        }
    }
}

/// Client endpoint configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Certificate verification. Default [`Verify::PlatformRoots`].
    pub verify: Verify,
    /// MoQT versions offered, most preferred first (ALPNs for `moqt://`, `WT-Available-Protocols`
    /// for `https://`). Default `["moqt-18"]`.
    pub protocols: Vec<String>,
    /// Local address of the UDP socket (an IPv6 one is made dual-stack). Default `None`:
    /// `[::]:0`, falling back to `0.0.0.0:0` on hosts without IPv6.
    pub bind: Option<SocketAddr>,
    /// QUIC transport parameters (the viewer side receives many streams, so the server's
    /// defaults fit here too).
    pub tuning: TransportTuning,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            verify: Verify::default(),
            protocols: vec![MOQT_18.to_owned()],
            bind: None,
            tuning: TransportTuning::default(),
        }
    }
}

/// Errors connecting.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("unsupported URL scheme {0:?} (expected moqt or https)")]
    Scheme(String),
    #[error("URL has no host")]
    NoHost,
    #[error("no MoQT protocol configured")]
    NoProtocol,
    #[error("resolving {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{0} resolved to no address")]
    NoAddress(String),
    #[error("binding UDP socket: {0}")]
    Bind(io::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("QUIC TLS configuration: {0}")]
    QuicTls(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("no usable root certificate in the platform store")]
    NoRoots,
    #[error("starting QUIC connection: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("QUIC connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("WebTransport CONNECT answered with HTTP status {0}")]
    Status(u16),
    #[error("WebTransport: {0}")]
    WebTransport(web_transport_quinn::ClientError),
    #[error("server selected {0:?}, which was not offered")]
    Protocol(Option<String>),
}

impl From<web_transport_quinn::ClientError> for ClientError {
    fn from(err: web_transport_quinn::ClientError) -> Self {
        use web_transport_quinn::{proto, ClientError as Wt, ConnectError};
        match err {
            Wt::HttpError(ConnectError::ErrorStatus(status))
            | Wt::HttpError(ConnectError::ProtoError(proto::ConnectError::WrongStatus(Some(
                status,
            )))) => ClientError::Status(status.as_u16()),
            Wt::HttpError(ConnectError::ProtocolMismatch(protocol)) => {
                ClientError::Protocol(Some(protocol))
            }
            other => ClientError::WebTransport(other),
        }
    }
}

/// An established session.
#[derive(Debug)]
pub struct Connected {
    /// The session.
    pub session: Session,
    /// The transport, from the URL scheme.
    pub transport: Transport,
    /// The MoQT version negotiated. For a WebTransport server that selected none (it predates
    /// protocol negotiation), the most preferred configured version.
    pub protocol: String,
    /// `host[:port]` of the URL: for raw QUIC, the caller sends it as the SETUP AUTHORITY option.
    pub authority: String,
    /// The URL's path and query (`/path?query`; empty path allowed): for raw QUIC, the caller
    /// sends it as the SETUP PATH option. For WebTransport it already travelled in the CONNECT.
    pub path: String,
}

/// A client endpoint: one UDP socket, any number of connections.
#[derive(Clone)]
pub struct Client {
    endpoint: quinn::Endpoint,
    quic: quinn::ClientConfig,
    webtransport: quinn::ClientConfig,
    protocols: Vec<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("local_addr", &self.endpoint.local_addr().ok())
            .field("protocols", &self.protocols)
            .finish()
    }
}

impl Client {
    /// Binds the UDP socket. Must be called inside a tokio runtime.
    pub fn new(config: Config) -> Result<Self, ClientError> {
        if config.protocols.is_empty() {
            return Err(ClientError::NoProtocol);
        }
        let provider = tls::provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?;
        let crypto = match &config.verify {
            Verify::PlatformRoots => {
                let native = rustls_native_certs::load_native_certs();
                for err in &native.errors {
                    tracing::warn!(%err, "loading platform root certificates");
                }
                let mut roots = rustls::RootCertStore::empty();
                let (added, _ignored) = roots.add_parsable_certificates(native.certs);
                if added == 0 {
                    return Err(ClientError::NoRoots);
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Verify::Roots(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs {
                    roots.add(cert.clone())?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Verify::Pinned(hashes) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(LeafVerifier {
                    pins: Some(hashes.clone()),
                    provider: provider.clone(),
                }))
                .with_no_client_auth(),
            Verify::InsecureAcceptAnyCertificate => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(LeafVerifier {
                    pins: None,
                    provider: provider.clone(),
                }))
                .with_no_client_auth(),
        };

        let transport = config.tuning.to_quinn();
        let quic_config = |alpns: Vec<Vec<u8>>| -> Result<quinn::ClientConfig, ClientError> {
            let mut crypto = crypto.clone();
            crypto.alpn_protocols = alpns;
            let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto)?;
            let mut client = quinn::ClientConfig::new(Arc::new(crypto));
            client.transport_config(transport.clone());
            Ok(client)
        };
        let quic = quic_config(
            config
                .protocols
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect(),
        )?;
        let webtransport = quic_config(vec![ALPN_H3.as_bytes().to_vec()])?;

        let buffer = config.tuning.udp_buffer;
        let socket = match config.bind {
            Some(addr) => bind_udp(addr, buffer, false),
            None => bind_udp(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)), buffer, false)
                .or_else(|_| bind_udp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), buffer, false)),
        }
        .map_err(ClientError::Bind)?;
        let runtime = quinn::default_runtime().ok_or_else(|| {
            ClientError::Bind(io::Error::other("no async runtime (call inside tokio)"))
        })?;
        let endpoint =
            quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
                .map_err(ClientError::Bind)?;

        Ok(Self {
            endpoint,
            quic,
            webtransport,
            protocols: config.protocols,
        })
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Connects to `moqt://host[:port]/path?query` (raw QUIC) or `https://host[:port]/path?query`
    /// (WebTransport). The port defaults to 443.
    pub async fn connect(&self, url: &Url) -> Result<Connected, ClientError> {
        let transport = match url.scheme() {
            "moqt" => Transport::Quic,
            "https" => Transport::WebTransport,
            other => return Err(ClientError::Scheme(other.to_owned())),
        };
        let host = url.host().ok_or(ClientError::NoHost)?;
        let port = url.port().unwrap_or(443);
        let (server_name, remote) = resolve(&host, port).await?;
        let remote = self.reachable(remote);

        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let mut path = url.path().to_owned();
        if let Some(query) = url.query() {
            path.push('?');
            path.push_str(query);
        }

        match transport {
            Transport::Quic => {
                let conn = self
                    .endpoint
                    .connect_with(self.quic.clone(), remote, &server_name)?
                    .await?;
                let session = Session::raw(conn);
                let protocol = session.protocol().map(str::to_owned);
                let protocol = match protocol {
                    Some(p) if self.protocols.contains(&p) => p,
                    other => {
                        session.close(0, b"no common protocol");
                        return Err(ClientError::Protocol(other));
                    }
                };
                Ok(Connected {
                    session,
                    transport,
                    protocol,
                    authority,
                    path,
                })
            }
            Transport::WebTransport => {
                let conn = self
                    .endpoint
                    .connect_with(self.webtransport.clone(), remote, &server_name)?
                    .await?;
                // The URL goes out as is; the fragment never leaves the client.
                let mut target = url.clone();
                target.set_fragment(None);
                let request =
                    ConnectRequest::new(target).with_protocols(self.protocols.iter().cloned());
                let session = Session::connect(conn, request).await?;
                // web-transport-quinn already rejects a selection we did not offer.
                let protocol = match session.protocol() {
                    Some(p) => p.to_owned(),
                    None => {
                        tracing::debug!(%url, "server selected no WebTransport protocol; assuming our first");
                        self.protocols[0].clone()
                    }
                };
                Ok(Connected {
                    session,
                    transport,
                    protocol,
                    authority,
                    path,
                })
            }
        }
    }

    /// The quinn client configuration used for `transport` (ALPNs, TLS verification, tuning), for
    /// callers that drive [`Client::endpoint`] themselves.
    pub fn quic_config(&self, transport: Transport) -> quinn::ClientConfig {
        match transport {
            Transport::Quic => self.quic.clone(),
            Transport::WebTransport => self.webtransport.clone(),
        }
    }

    /// The underlying quinn endpoint.
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// Closes every connection of this endpoint.
    pub fn close(&self, code: u32, reason: &[u8]) {
        self.endpoint.close(code.into(), reason);
    }

    /// Waits until every connection is fully closed (close frames sent).
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }

    /// Number of connections open on this endpoint.
    pub fn open_connections(&self) -> usize {
        self.endpoint.open_connections()
    }

    /// An IPv4 destination on an IPv6 dual-stack socket must be IPv4-mapped.
    fn reachable(&self, remote: SocketAddr) -> SocketAddr {
        match (remote, self.endpoint.local_addr()) {
            (SocketAddr::V4(v4), Ok(SocketAddr::V6(_))) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            _ => remote,
        }
    }
}

/// Builds a [`Client`] and connects once. For many connections, build one [`Client`] and reuse it.
pub async fn connect(url: &Url, config: Config) -> Result<Connected, ClientError> {
    Client::new(config)?.connect(url).await
}

async fn resolve(host: &Host<&str>, port: u16) -> Result<(String, SocketAddr), ClientError> {
    match host {
        Host::Ipv4(ip) => Ok((ip.to_string(), SocketAddr::from((*ip, port)))),
        Host::Ipv6(ip) => Ok((ip.to_string(), SocketAddr::from((*ip, port)))),
        Host::Domain(domain) => {
            let mut addrs = tokio::net::lookup_host((*domain, port))
                .await
                .map_err(|source| ClientError::Resolve {
                    host: domain.to_string(),
                    source,
                })?;
            let addr = addrs
                .next()
                .ok_or_else(|| ClientError::NoAddress(domain.to_string()))?;
            Ok((domain.to_string(), addr))
        }
    }
}

/// Checks the server's leaf certificate against pinned SHA-256 fingerprints
/// (`serverCertificateHashes` semantics), or accepts any certificate when `pins` is `None`
/// (tests only). Either way the handshake signature is verified.
#[derive(Debug)]
struct LeafVerifier {
    pins: Option<Vec<Fingerprint>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LeafVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pins) = &self.pins else {
            return Ok(ServerCertVerified::assertion());
        };
        let fingerprint = Fingerprint::of(end_entity);
        if pins.contains(&fingerprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::debug!(%fingerprint, "server certificate not pinned");
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
