//! Decode/encode errors and the draft-18 IANA error-code tables.

use std::fmt;

/// Why decoding failed.
///
/// [`DecodeError::Short`] is not a protocol error: the buffer simply does not
/// hold the whole item yet. Every other variant is a protocol error that
/// closes the session with [`DecodeError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not enough bytes yet: buffer more and retry. Nothing was consumed.
    /// (If the stream ends here, that is a PROTOCOL_VIOLATION.)
    #[error("need more bytes")]
    Short,
    /// A length-delimited structure (control message payload, datagram)
    /// does not match its declared length.
    #[error("length does not match the content")]
    LengthMismatch,
    /// A generic violation of the wire format.
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// A known Key-Value-Pair / parameter value is not serialized as its
    /// definition says (KEY_VALUE_FORMATTING_ERROR).
    #[error("key-value formatting error: {0}")]
    KeyValueFormatting(&'static str),
    /// A length field exceeds the draft's maximum.
    #[error("{what} too long: {len} > {max}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Received length.
        len: u64,
        /// Allowed maximum.
        max: usize,
    },
    /// Unknown control message type.
    #[error("unknown control message type {0:#x}")]
    UnknownMessage(u64),
    /// Unknown unidirectional stream type.
    #[error("unknown stream type {0:#x}")]
    UnknownStreamType(u64),
    /// Unknown or invalid datagram type.
    #[error("invalid datagram type {0:#x}")]
    InvalidDatagramType(u64),
    /// Unknown Message Parameter type.
    #[error("unknown message parameter {0:#x}")]
    UnknownParameter(u64),
    /// A Message Parameter (or Setup Option) that may appear once appears twice.
    #[error("duplicate parameter {0:#x}")]
    DuplicateParameter(u64),
    /// A Message Parameter not allowed in this message type.
    #[error("parameter {param:#x} not allowed in message {message:#x}")]
    ParameterNotAllowed {
        /// Parameter type.
        param: u64,
        /// Message type.
        message: u64,
    },
    /// A Request ID with the wrong parity for its sender.
    #[error("invalid request id {0}")]
    InvalidRequestId(u64),
    /// Malformed PATH setup option.
    #[error("malformed PATH setup option")]
    MalformedPath,
    /// Malformed AUTHORITY setup option.
    #[error("malformed AUTHORITY setup option")]
    MalformedAuthority,
}

impl DecodeError {
    /// The session termination code ([`SessionErrorCode`]) to close with.
    /// `Short` maps to PROTOCOL_VIOLATION (a stream that ends mid-item).
    pub fn code(&self) -> u64 {
        self.session_code().0
    }

    /// Like [`DecodeError::code`], typed.
    pub fn session_code(&self) -> SessionErrorCode {
        match self {
            DecodeError::KeyValueFormatting(_) => SessionErrorCode::KEY_VALUE_FORMATTING_ERROR,
            DecodeError::InvalidRequestId(_) => SessionErrorCode::INVALID_REQUEST_ID,
            DecodeError::MalformedPath => SessionErrorCode::MALFORMED_PATH,
            DecodeError::MalformedAuthority => SessionErrorCode::MALFORMED_AUTHORITY,
            DecodeError::Short
            | DecodeError::LengthMismatch
            | DecodeError::ProtocolViolation(_)
            | DecodeError::TooLong { .. }
            | DecodeError::UnknownMessage(_)
            | DecodeError::UnknownStreamType(_)
            | DecodeError::InvalidDatagramType(_)
            | DecodeError::UnknownParameter(_)
            | DecodeError::DuplicateParameter(_)
            | DecodeError::ParameterNotAllowed { .. } => SessionErrorCode::PROTOCOL_VIOLATION,
        }
    }

    /// True for [`DecodeError::Short`].
    pub fn is_short(&self) -> bool {
        matches!(self, DecodeError::Short)
    }
}

/// Why encoding failed (a value the wire format cannot carry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A control message payload is larger than 65535 bytes.
    #[error("control message payload too long: {0} > 65535")]
    MessageTooLong(usize),
    /// A field exceeds the draft's limit.
    #[error("{what} too long: {len} > {max}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// Allowed maximum.
        max: usize,
    },
    /// A value cannot be represented (see message).
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

/// Checks a Request ID's least significant bit against its sender:
/// clients use even IDs, servers odd ones. A violation closes the session
/// with INVALID_REQUEST_ID. (Duplicate detection is the session's job.)
pub fn check_request_id_parity(id: u64, from_client: bool) -> Result<(), DecodeError> {
    let even = id % 2 == 0;
    if even == from_client {
        Ok(())
    } else {
        Err(DecodeError::InvalidRequestId(id))
    }
}

/// True if `v` is a grease value (`0x7f * N + 0x9D`).
pub fn is_grease(v: u64) -> bool {
    v >= 0x9d && (v - 0x9d) % 0x7f == 0
}

/// The `n`-th grease value, if it fits in 64 bits.
pub fn grease(n: u64) -> Option<u64> {
    n.checked_mul(0x7f)?.checked_add(0x9d)
}

macro_rules! code_table {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $c:ident = $v:expr,)* }) => {
        $(#[$doc])*
        ///
        /// Unknown values (including grease) are representable; per the
        /// draft they are treated as INTERNAL_ERROR, never as a reason to
        /// close the session.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl $name {
            $($(#[$cdoc])* pub const $c: Self = Self($v);)*

            /// The registered name, or `None` for an unknown value.
            pub fn name(&self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some(stringify!($c)),)*
                    _ => None,
                }
            }

            /// True if this value is registered in draft-18.
            pub fn is_known(&self) -> bool {
                self.name().is_some()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({:#x})", n, self.0),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }

        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }
    };
}

code_table! {
    /// Session Termination Error Codes (IANA table).
    SessionErrorCode {
        /// No error.
        NO_ERROR = 0x0,
        /// Implementation-specific error.
        INTERNAL_ERROR = 0x1,
        /// Client not authorized to establish a session.
        UNAUTHORIZED = 0x2,
        /// Disallowed action.
        PROTOCOL_VIOLATION = 0x3,
        /// Bad Request ID parity or duplicate.
        INVALID_REQUEST_ID = 0x4,
        /// Track Alias already in use.
        DUPLICATE_TRACK_ALIAS = 0x5,
        /// Known Key-Value-Pair with a bad serialization.
        KEY_VALUE_FORMATTING_ERROR = 0x6,
        /// PATH not supported.
        INVALID_PATH = 0x8,
        /// PATH malformed.
        MALFORMED_PATH = 0x9,
        /// GOAWAY timeout elapsed.
        GOAWAY_TIMEOUT = 0x10,
        /// Control message timeout.
        CONTROL_MESSAGE_TIMEOUT = 0x11,
        /// Data stream timeout.
        DATA_STREAM_TIMEOUT = 0x12,
        /// Auth token cache overflow.
        AUTH_TOKEN_CACHE_OVERFLOW = 0x13,
        /// Duplicate auth token alias.
        DUPLICATE_AUTH_TOKEN_ALIAS = 0x14,
        /// Version negotiation failed.
        VERSION_NEGOTIATION_FAILED = 0x15,
        /// Malformed auth token.
        MALFORMED_AUTH_TOKEN = 0x16,
        /// Unknown auth token alias.
        UNKNOWN_AUTH_TOKEN_ALIAS = 0x17,
        /// Expired auth token.
        EXPIRED_AUTH_TOKEN = 0x18,
        /// AUTHORITY not supported.
        INVALID_AUTHORITY = 0x19,
        /// AUTHORITY malformed.
        MALFORMED_AUTHORITY = 0x1a,
    }
}

code_table! {
    /// REQUEST_ERROR Codes (IANA table).
    RequestErrorCode {
        /// Generic error.
        INTERNAL_ERROR = 0x0,
        /// Not authorized.
        UNAUTHORIZED = 0x1,
        /// Timed out.
        TIMEOUT = 0x2,
        /// Request type not supported.
        NOT_SUPPORTED = 0x3,
        /// Malformed auth token.
        MALFORMED_AUTH_TOKEN = 0x4,
        /// Expired auth token.
        EXPIRED_AUTH_TOKEN = 0x5,
        /// GOAWAY received or sent.
        GOING_AWAY = 0x6,
        /// Overloaded.
        EXCESSIVE_LOAD = 0x9,
        /// Track or namespace does not exist.
        DOES_NOT_EXIST = 0x10,
        /// Range cannot be satisfied.
        INVALID_RANGE = 0x11,
        /// Track is malformed.
        MALFORMED_TRACK = 0x12,
        /// Duplicate subscription.
        DUPLICATE_SUBSCRIPTION = 0x19,
        /// Not interested.
        UNINTERESTED = 0x20,
        /// Prefix overlaps another subscription.
        PREFIX_OVERLAP = 0x30,
        /// Too many matching publishers.
        NAMESPACE_TOO_LARGE = 0x31,
        /// Joining FETCH references no established subscription.
        INVALID_JOINING_REQUEST_ID = 0x32,
        /// Unknown Mandatory Track Property.
        UNSUPPORTED_EXTENSION = 0x33,
        /// Retry elsewhere (REQUEST_ERROR carries a Redirect).
        REDIRECT = 0x34,
    }
}

code_table! {
    /// PUBLISH_DONE status codes (IANA table).
    PublishDoneCode {
        /// Generic error.
        INTERNAL_ERROR = 0x0,
        /// No longer authorized.
        UNAUTHORIZED = 0x1,
        /// Track no longer published.
        TRACK_ENDED = 0x2,
        /// End of the subscription filter reached.
        SUBSCRIPTION_ENDED = 0x3,
        /// GOAWAY issued.
        GOING_AWAY = 0x4,
        /// Subscriber too far behind.
        TOO_FAR_BEHIND = 0x5,
        /// EXPIRES reached.
        EXPIRED = 0x6,
        /// REQUEST_UPDATE failed.
        UPDATE_FAILED = 0x8,
        /// Overloaded.
        EXCESSIVE_LOAD = 0x9,
        /// Track is malformed.
        MALFORMED_TRACK = 0x12,
    }
}

code_table! {
    /// Stream reset (RESET_STREAM / STOP_SENDING) error codes (IANA table).
    StreamResetCode {
        /// Implementation-specific.
        INTERNAL_ERROR = 0x0,
        /// Cancelled by either endpoint.
        CANCELLED = 0x1,
        /// Delivery timeout exceeded.
        DELIVERY_TIMEOUT = 0x2,
        /// Session closing.
        SESSION_CLOSED = 0x3,
        /// GOAWAY sent or received.
        GOING_AWAY = 0x4,
        /// Subscription too far behind.
        TOO_FAR_BEHIND = 0x5,
        /// Status of the next FETCH object unknown.
        UNKNOWN_OBJECT_STATUS = 0x6,
        /// Authorization token expired.
        EXPIRED_AUTH_TOKEN = 0x7,
        /// Overloaded.
        EXCESSIVE_LOAD = 0x9,
        /// Track is malformed.
        MALFORMED_TRACK = 0x12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map() {
        assert_eq!(DecodeError::Short.code(), 0x3);
        assert_eq!(DecodeError::KeyValueFormatting("x").code(), 0x6);
        assert_eq!(DecodeError::InvalidRequestId(3).code(), 0x4);
        assert_eq!(DecodeError::UnknownMessage(0x99).code(), 0x3);
        assert_eq!(RequestErrorCode::REDIRECT.0, 0x34);
        assert_eq!(RequestErrorCode(0x34).name(), Some("REDIRECT"));
        assert!(!PublishDoneCode(0x9d).is_known());
        assert_eq!(
            format!("{:?}", StreamResetCode::CANCELLED),
            "CANCELLED(0x1)"
        );
    }

    #[test]
    fn parity() {
        assert!(check_request_id_parity(0, true).is_ok());
        assert!(check_request_id_parity(1, false).is_ok());
        assert!(check_request_id_parity(1, true).is_err());
        assert!(check_request_id_parity(2, false).is_err());
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x9d));
        assert!(is_grease(0x11c));
        assert!(is_grease(0x3fff_ffff_ffff_ffde));
        assert!(!is_grease(0x9e));
        assert_eq!(grease(1), Some(0x11c));
    }
}
