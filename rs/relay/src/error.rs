//! Why a session (or one request in it) ended.

use moqt::DecodeError;

/// Session termination codes (draft-18 "Session Termination Error Codes").
pub mod close {
    pub const NO_ERROR: u32 = 0x0;
    pub const INTERNAL_ERROR: u32 = 0x1;
    pub const UNAUTHORIZED: u32 = 0x2;
    pub const PROTOCOL_VIOLATION: u32 = 0x3;
    pub const INVALID_REQUEST_ID: u32 = 0x4;
    pub const DUPLICATE_TRACK_ALIAS: u32 = 0x5;
    pub const INVALID_PATH: u32 = 0x8;
    pub const GOAWAY_TIMEOUT: u32 = 0x10;
    pub const CONTROL_MESSAGE_TIMEOUT: u32 = 0x11;
    pub const EXPIRED_AUTH_TOKEN: u32 = 0x18;
    pub const INVALID_AUTHORITY: u32 = 0x19;
}

/// REQUEST_ERROR codes used by the relay.
pub mod request {
    pub const INTERNAL_ERROR: u64 = 0x0;
    pub const UNAUTHORIZED: u64 = 0x1;
    pub const TIMEOUT: u64 = 0x2;
    pub const NOT_SUPPORTED: u64 = 0x3;
    pub const GOING_AWAY: u64 = 0x7;
    pub const DOES_NOT_EXIST: u64 = 0x10;
    pub const INVALID_RANGE: u64 = 0x11;
    pub const DUPLICATE_SUBSCRIPTION: u64 = 0x19;
    pub const INVALID_JOINING_REQUEST_ID: u64 = 0x32;
}

/// PUBLISH_DONE status codes.
pub mod done {
    pub const INTERNAL_ERROR: u64 = 0x0;
    pub const UNAUTHORIZED: u64 = 0x1;
    pub const TRACK_ENDED: u64 = 0x2;
    pub const SUBSCRIPTION_ENDED: u64 = 0x3;
    pub const GOING_AWAY: u64 = 0x4;
    pub const TOO_FAR_BEHIND: u64 = 0x5;
    pub const EXPIRED: u64 = 0x6;
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
