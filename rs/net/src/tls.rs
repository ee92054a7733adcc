//! Server certificates: loaded from PEM files, or a short-lived self-signed ECDSA P-256
//! certificate that browsers accept through WebTransport's `serverCertificateHashes`.
//!
//! [`Certs`] holds the current [`Identity`] and is the rustls certificate resolver of the server,
//! so [`Certs::refresh`] (run periodically by [`Certs::run_rotation`]) swaps the certificate for
//! new connections without a restart. [`Certs::subscribe`] lets the HTTP side publish the new
//! SHA-256 as soon as it changes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::watch;

/// The longest validity Chromium accepts for a certificate pinned by `serverCertificateHashes`.
pub const MAX_PINNED_VALIDITY: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Hostnames always present in a generated certificate's subjectAltName.
pub const DEFAULT_HOSTNAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The crypto provider every TLS config of this crate uses (ring; never the process default, so
/// the crate behaves the same whatever else the binary links).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Certificate configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// PEM file with the certificate chain, leaf first. Set together with `key`; when both are
    /// unset a self-signed certificate is generated. Default: none.
    pub cert: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1). Default: none.
    pub key: Option<PathBuf>,
    /// Names added to the generated certificate's subjectAltName besides [`DEFAULT_HOSTNAMES`]
    /// (DNS names or IP literals). Default: empty.
    pub hostnames: Vec<String>,
    /// Total validity of a generated certificate (from `not_before` to `not_after`, the backdate
    /// included). At most [`MAX_PINNED_VALIDITY`] (14 days), the default.
    pub validity: Duration,
    /// How far in the past a generated certificate's validity starts, to tolerate clients whose
    /// clock is slightly behind. Default 1 hour.
    pub backdate: Duration,
    /// Replace a generated certificate once less than this remains before `not_after`.
    /// Default 2 days.
    pub renew_before: Duration,
    /// How often [`Certs::run_rotation`] checks: regenerates a generated certificate that is due,
    /// and re-reads configured PEM files (picking up a renewed certificate). Default 1 hour.
    pub check_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            hostnames: Vec::new(),
            validity: MAX_PINNED_VALIDITY,
            backdate: Duration::from_secs(60 * 60),
            renew_before: Duration::from_secs(2 * 24 * 60 * 60),
            check_interval: Duration::from_secs(60 * 60),
        }
    }
}

/// Errors loading or generating certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate and key must be configured together (got only the {0})")]
    Incomplete(&'static str),
    #[error("generated certificate validity must be between 1 s and 14 days, got {0:?}")]
    Validity(Duration),
    #[error("backdate {backdate:?} must be shorter than the validity {validity:?}")]
    Backdate {
        backdate: Duration,
        validity: Duration,
    },
    #[error("reading certificates from {path}: {source}")]
    Certs {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    #[error("reading private key from {path}: {source}")]
    Key {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("unusable private key: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("generating certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("certificate time out of range")]
    Time,
}

/// SHA-256 of a certificate's DER encoding: what `serverCertificateHashes` pins.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Hashes a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// The 32 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// Error parsing a [`Fingerprint`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a certificate fingerprint is 64 hex digits (optionally separated by ':')")]
pub struct ParseFingerprintError;

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    /// Accepts hex in either case, optionally with `:` separators (`openssl x509 -fingerprint`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.trim().chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&digits, &mut out).map_err(|_| ParseFingerprintError)?;
        Ok(Self(out))
    }
}

/// Where an [`Identity`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Generated self-signed by this process.
    Generated,
    /// Read from the configured PEM files.
    Files,
}

/// One certificate chain and its key, as served to clients.
pub struct Identity {
    key: Arc<CertifiedKey>,
    fingerprint: Fingerprint,
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
    source: Source,
}

impl Identity {
    /// SHA-256 of the leaf certificate's DER.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.key.cert
    }

    /// The leaf certificate's DER.
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.key.cert.first()
    }

    /// Start of validity of a generated certificate (`None` for loaded files: not parsed).
    pub fn not_before(&self) -> Option<OffsetDateTime> {
        self.not_before
    }

    /// End of validity of a generated certificate (`None` for loaded files: not parsed).
    pub fn not_after(&self) -> Option<OffsetDateTime> {
        self.not_after
    }

    /// Whether it was generated or loaded.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The rustls form, for callers building their own TLS config (e.g. an HTTPS listener).
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.key.clone()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .field("source", &self.source)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// The server's current certificate, shared by the QUIC endpoint (as its rustls certificate
/// resolver), the HTTP side (which publishes the fingerprint) and the rotation task.
///
/// Cheap to clone; all clones see the same certificate.
#[derive(Clone)]
pub struct Certs {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    provider: Arc<CryptoProvider>,
    current: watch::Sender<Arc<Identity>>,
}

impl Certs {
    /// Loads the configured PEM files, or generates a self-signed certificate.
    pub fn new(config: Config) -> Result<Self, CertError> {
        let provider = provider();
        let identity = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => load(cert, key, &provider)?,
            (Some(_), None) => return Err(CertError::Incomplete("certificate")),
            (None, Some(_)) => return Err(CertError::Incomplete("key")),
            (None, None) => generate(&config, OffsetDateTime::now_utc(), &provider)?,
        };
        tracing::info!(
            fingerprint = %identity.fingerprint,
            source = ?identity.source,
            not_after = ?identity.not_after,
            "TLS certificate ready"
        );
        let (current, _) = watch::channel(Arc::new(identity));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                provider,
                current,
            }),
        })
    }

    /// The configuration this was built from.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The certificate new connections get.
    pub fn current(&self) -> Arc<Identity> {
        self.inner.current.borrow().clone()
    }

    /// SHA-256 of the current leaf certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.inner.current.borrow().fingerprint
    }

    /// A receiver that sees every replacement of the certificate.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Identity>> {
        self.inner.current.subscribe()
    }

    /// Checks the certificate now; see [`Certs::refresh_at`].
    pub fn refresh(&self) -> Result<bool, CertError> {
        self.refresh_at(OffsetDateTime::now_utc())
    }

    /// A generated certificate is regenerated when less than `renew_before` remains at `now`;
    /// configured PEM files are re-read and swapped in if the leaf changed. Returns whether the
    /// certificate was replaced. On error the current certificate stays.
    pub fn refresh_at(&self, now: OffsetDateTime) -> Result<bool, CertError> {
        let current = self.current();
        let next = match current.source {
            Source::Generated => {
                let due = match current.not_after {
                    Some(not_after) => not_after - self.inner.config.renew_before <= now,
                    None => true,
                };
                if !due {
                    return Ok(false);
                }
                generate(&self.inner.config, now, &self.inner.provider)?
            }
            Source::Files => {
                let (Some(cert), Some(key)) = (&self.inner.config.cert, &self.inner.config.key)
                else {
                    return Ok(false);
                };
                let loaded = load(cert, key, &self.inner.provider)?;
                if loaded.fingerprint == current.fingerprint {
                    return Ok(false);
                }
                loaded
            }
        };
        tracing::info!(
            old = %current.fingerprint,
            new = %next.fingerprint,
            not_after = ?next.not_after,
            "TLS certificate replaced"
        );
        self.inner.current.send_replace(Arc::new(next));
        Ok(true)
    }

    /// Replaces the certificate now, whatever its age (regenerates, or re-reads the files).
    pub fn rotate(&self) -> Result<(), CertError> {
        let next = match (&self.inner.config.cert, &self.inner.config.key) {
            (Some(cert), Some(key)) => load(cert, key, &self.inner.provider)?,
            _ => generate(
                &self.inner.config,
                OffsetDateTime::now_utc(),
                &self.inner.provider,
            )?,
        };
        tracing::info!(new = %next.fingerprint, "TLS certificate rotated");
        self.inner.current.send_replace(Arc::new(next));
        Ok(())
    }

    /// Calls [`Certs::refresh`] every `check_interval`, forever; errors are logged and retried at
    /// the next check. The binary spawns this (or selects on it); the library never does.
    pub async fn run_rotation(self) {
        let period = self
            .inner
            .config
            .check_interval
            .max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(err) = self.refresh() {
                tracing::warn!(%err, "certificate refresh failed; keeping the current one");
            }
        }
    }
}

impl fmt::Debug for Certs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certs")
            .field("current", &*self.inner.current.borrow())
            .finish()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.inner.current.borrow().key.clone())
    }
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Identity, CertError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| CertError::Certs {
            path: cert.to_owned(),
            source,
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate(cert.to_owned()));
    };
    let fingerprint = Fingerprint::of(leaf);
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| CertError::Key {
        path: key.to_owned(),
        source,
    })?;
    let signer = provider.key_provider.load_private_key(private)?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match()?;
    Ok(Identity {
        key: Arc::new(certified),
        fingerprint,
        not_before: None,
        not_after: None,
        source: Source::Files,
    })
}

fn generate(
    config: &Config,
    now: OffsetDateTime,
    provider: &CryptoProvider,
) -> Result<Identity, CertError> {
    if config.validity.is_zero() || config.validity > MAX_PINNED_VALIDITY {
        return Err(CertError::Validity(config.validity));
    }
    if config.backdate >= config.validity {
        return Err(CertError::Backdate {
            backdate: config.backdate,
            validity: config.validity,
        });
    }

    let mut names: Vec<String> = DEFAULT_HOSTNAMES.iter().map(|s| s.to_string()).collect();
    for name in &config.hostnames {
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
    }

    // Whole seconds, so the encoded validity is exactly `validity` long (X.509 has no fractions).
    let now = now.replace_nanosecond(0).map_err(|_| CertError::Time)?;
    let not_before = now
        .checked_sub(time_duration(config.backdate)?)
        .ok_or(CertError::Time)?;
    let not_after = not_before
        .checked_add(time_duration(config.validity)?)
        .ok_or(CertError::Time)?;

    let mut params = rcgen::CertificateParams::new(names)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "ClutchCall self-signed");
    params.distinguished_name = dn;
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];

    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key_pair)?;
    let der = cert.der().clone();
    let fingerprint = Fingerprint::of(&der);

    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let signer = provider.key_provider.load_private_key(private)?;
    Ok(Identity {
        key: Arc::new(CertifiedKey::new(vec![der], signer)),
        fingerprint,
        not_before: Some(not_before),
        not_after: Some(not_after),
        source: Source::Generated,
    })
}

fn time_duration(d: Duration) -> Result<time::Duration, CertError> {
    time::Duration::try_from(d).map_err(|_| CertError::Time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_hex() {
        let fp = Fingerprint::of(b"hello");
        let hex = fp.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_lowercase());
        assert_eq!(hex.parse::<Fingerprint>(), Ok(fp));
        let colons =
            fp.0.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":");
        assert_eq!(colons.parse::<Fingerprint>(), Ok(fp));
        assert!("abc".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn rejects_long_validity() {
        let config = Config {
            validity: MAX_PINNED_VALIDITY + Duration::from_secs(1),
            ..Config::default()
        };
        assert!(matches!(Certs::new(config), Err(CertError::Validity(_))));
    }

    #[test]
    fn refresh_only_when_due() -> Result<(), CertError> {
        let certs = Certs::new(Config::default())?;
        let first = certs.fingerprint();
        let now = OffsetDateTime::now_utc();
        assert!(!certs.refresh_at(now)?);
        assert_eq!(certs.fingerprint(), first);
        // 12 days later less than 2 days remain.
        assert!(certs.refresh_at(now + time::Duration::days(12))?);
        assert_ne!(certs.fingerprint(), first);
        Ok(())
    }
}
