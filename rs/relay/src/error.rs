//! Why a session (or one request in it) ended.

use moqt::DecodeError;

/// Session termination codes, as the QUIC/WebTransport close code (the codec's table).
pub mod close {
    use moqt::SessionErrorCode as C;
    pub const INTERNAL_ERROR: u32 = C::INTERNAL_ERROR.0 as u32;
    pub const UNAUTHORIZED: u32 = C::UNAUTHORIZED.0 as u32;
    pub const PROTOCOL_VIOLATION: u32 = C::PROTOCOL_VIOLATION.0 as u32;
    pub const DUPLICATE_TRACK_ALIAS: u32 = C::DUPLICATE_TRACK_ALIAS.0 as u32;
    pub const INVALID_PATH: u32 = C::INVALID_PATH.0 as u32;
    pub const EXPIRED_AUTH_TOKEN: u32 = C::EXPIRED_AUTH_TOKEN.0 as u32;
    pub const INVALID_AUTHORITY: u32 = C::INVALID_AUTHORITY.0 as u32;
}

/// REQUEST_ERROR codes used by the relay (the codec's table).
pub mod request {
    use moqt::RequestErrorCode as C;
    pub const INTERNAL_ERROR: u64 = C::INTERNAL_ERROR.0;
    pub const UNAUTHORIZED: u64 = C::UNAUTHORIZED.0;
    pub const NOT_SUPPORTED: u64 = C::NOT_SUPPORTED.0;
    pub const GOING_AWAY: u64 = C::GOING_AWAY.0;
    pub const DOES_NOT_EXIST: u64 = C::DOES_NOT_EXIST.0;
    pub const INVALID_RANGE: u64 = C::INVALID_RANGE.0;
    pub const PREFIX_OVERLAP: u64 = C::PREFIX_OVERLAP.0;
    pub const INVALID_JOINING_REQUEST_ID: u64 = C::INVALID_JOINING_REQUEST_ID.0;
}

/// PUBLISH_DONE status codes used by the relay (the codec's table).
pub mod done {
    use moqt::PublishDoneCode as C;
    pub const TRACK_ENDED: u64 = C::TRACK_ENDED.0;
    pub const SUBSCRIPTION_ENDED: u64 = C::SUBSCRIPTION_ENDED.0;
}

/// The reason phrase every authorization failure carries (the SDKs' contract).
pub const AUTH_FAILED: &str = "auth_failed";

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The peer sent bytes the draft forbids: close with the codec's code.
    #[error("malformed input: {0}")]
    Decode(DecodeError),
    /// The peer broke a protocol rule above the codec.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer is not allowed to do what it asked.
    #[error("auth_failed: {0}")]
    Unauthorized(String),
    /// The transport went away (peer closed, reset, idle timeout).
    #[error("transport: {0}")]
    Transport(String),
    /// A stream was reset by the peer with this code.
    #[error("stream reset by peer with code {0}")]
    Reset(u32),
    #[error("internal: {0}")]
    Internal(String),
}

impl SessionError {
    pub fn from_read(e: web_transport_quinn::ReadError) -> Self {
        match e {
            web_transport_quinn::ReadError::Reset(code) => SessionError::Reset(code),
            other => SessionError::Transport(other.to_string()),
        }
    }

    pub fn from_write(e: web_transport_quinn::WriteError) -> Self {
        match e {
            web_transport_quinn::WriteError::Stopped(code) => SessionError::Reset(code),
            other => SessionError::Transport(other.to_string()),
        }
    }

    pub fn from_session(e: web_transport_quinn::SessionError) -> Self {
        SessionError::Transport(e.to_string())
    }

    /// The session close code and reason this error calls for, or `None` when the transport is
    /// already gone (or only one stream failed).
    pub fn close_code(&self) -> Option<(u32, String)> {
        match self {
            SessionError::Decode(e) => Some((e.code() as u32, e.to_string())),
            SessionError::Protocol(m) => Some((close::PROTOCOL_VIOLATION, m.clone())),
            SessionError::Unauthorized(_) => Some((close::UNAUTHORIZED, AUTH_FAILED.to_string())),
            SessionError::Internal(m) => Some((close::INTERNAL_ERROR, m.clone())),
            SessionError::Transport(_) | SessionError::Reset(_) => None,
        }
    }
}
