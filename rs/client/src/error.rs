//! The crate's error type and the session close reason.

use std::fmt;

use net::quinn;

/// Why a session ended: the code and reason phrase of the CONNECTION_CLOSE (raw QUIC) or
/// CLOSE_WEBTRANSPORT_SESSION capsule the peer sent, or a description of a local or transport
/// failure.
///
/// The relay ends a session whose credentials are refused with reason `auth_failed`
/// ([`AUTH_FAILED`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The application close code (draft-18 "Session Termination Error Codes") when the peer or
    /// this client closed the session; for a transport failure, the QUIC transport error code
    /// (0 for an idle timeout or a reset).
    pub code: u64,
    /// The reason phrase (UTF-8, lossy), or a description of the transport failure.
    pub reason: String,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {:#x}: {}", self.code, self.reason)
    }
}

/// The reason phrase of every authorization failure (the SDKs' contract).
pub const AUTH_FAILED: &str = "auth_failed";

impl CloseReason {
    /// Whether the relay ended the session because a credential was refused or expired.
    pub fn is_auth_failed(&self) -> bool {
        self.reason == AUTH_FAILED
    }

    pub(crate) fn from_session(err: &net::SessionError) -> Self {
        use net::SessionError as S;
        match err {
            S::WebTransportError(net::WebTransportError::Closed(code, reason)) => Self {
                code: u64::from(*code),
                reason: reason.clone(),
            },
            S::ConnectionError(e)
            | S::SendDatagramError(quinn::SendDatagramError::ConnectionLost(e)) => {
                Self::from_connection(e)
            }
            other => Self {
                code: 0,
                reason: other.to_string(),
            },
        }
    }

    fn from_connection(e: &quinn::ConnectionError) -> Self {
        match e {
            quinn::ConnectionError::ApplicationClosed(c) => Self {
                code: c.error_code.into_inner(),
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
            },
            quinn::ConnectionError::ConnectionClosed(c) => Self {
                code: c.error_code.into(),
                reason: format!("transport closed: {}", String::from_utf8_lossy(&c.reason)),
            },
            other => Self {
                code: 0,
                reason: other.to_string(),
            },
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building the endpoint or establishing the QUIC / WebTransport session failed.
    #[error("connecting: {0}")]
    Connect(#[from] net::client::ClientError),
    /// A stream failed for a reason other than a session close (reset, stopped, …).
    #[error("transport: {0}")]
    Transport(String),
    /// The peer sent bytes that are not valid draft-18 MoQT.
    #[error("protocol: {0}")]
    Decode(#[from] moqt::DecodeError),
    /// The peer broke a protocol rule above the codec (unexpected message, truncated stream).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer refused the request with REQUEST_ERROR.
    #[error("request refused (code {code:#x}): {reason}")]
    Refused {
        /// REQUEST_ERROR code (draft-18 "Request Error Codes").
        code: u64,
        /// Reason phrase, e.g. `auth_failed`.
        reason: String,
    },
    /// The session is closed; `reason` is the peer's reason phrase (e.g. `auth_failed`).
    #[error("session closed ({code:#x}): {reason}")]
    SessionClosed {
        /// Session close code.
        code: u64,
        /// Reason phrase.
        reason: String,
    },
    /// A value this client was asked to send cannot be encoded (name too long, …).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Fetching the relay's certificate fingerprint over HTTP failed.
    #[error("fetching the certificate fingerprint: {0}")]
    Http(String),
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl Error {
    /// The peer's reason phrase, when the error carries one (`Refused`, `SessionClosed`).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Refused { reason, .. } | Error::SessionClosed { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether the relay refused a credential (`auth_failed` as REQUEST_ERROR or session close).
    pub fn is_auth_failed(&self) -> bool {
        self.reason() == Some(AUTH_FAILED)
    }
}

impl From<CloseReason> for Error {
    fn from(c: CloseReason) -> Self {
        Error::SessionClosed {
            code: c.code,
            reason: c.reason,
        }
    }
}

impl From<moqt::EncodeError> for Error {
    fn from(e: moqt::EncodeError) -> Self {
        Error::Invalid(e.to_string())
    }
}
