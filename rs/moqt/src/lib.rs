//! MoQT (draft-ietf-moq-transport-18) wire codec.
//!
//! This crate owns the draft-18 wire format and nothing else: variable-length
//! integers, Key-Value-Pairs and Properties, Message Parameters and Setup
//! Options, every control message, and the data plane (unidirectional stream
//! types, SUBGROUP_HEADER and subgroup objects, FETCH_HEADER and fetch
//! objects, OBJECT_DATAGRAM, padding), plus the IANA error-code tables.
//!
//! It must not do I/O, spawn tasks or threads, depend on an async runtime,
//! hold session state beyond what a single stream's delta encoding needs, or
//! panic on any input. Session rules (request-id bookkeeping, token caches,
//! track aliases, timeouts) belong to the session layer built on top; this
//! crate only offers helpers for them (e.g. [`check_request_id_parity`]).
//!
//! Decoders read from [`bytes::Buf`] and return [`DecodeError::Short`]
//! without consuming anything when the item is incomplete; encoders write to
//! [`bytes::BufMut`]. Where the draft is ambiguous the choice is marked in the
//! source with an `Ambiguity:` comment.
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![warn(missing_docs)]

mod coding;
pub mod data;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod kvp;
pub mod message;
mod name;
pub mod params;
pub mod setup;
pub mod varint;

pub use coding::{Decode, Encode};
pub use data::{
    Datagram, DatagramContent, EndOfRange, FetchHeader, FetchItem, FetchObjectDecoder,
    FetchObjectEncoder, FetchObjectHeader, ObjectDatagram, ObjectHeader, ObjectStatus, StreamType,
    SubgroupHeader, SubgroupId, SubgroupObjectDecoder, SubgroupObjectEncoder,
};
pub use error::{
    check_request_id_parity, grease, is_grease, DecodeError, EncodeError, PublishDoneCode,
    RequestErrorCode, SessionErrorCode, StreamResetCode,
};
pub use kvp::{KeyValuePair, Properties, Value};
pub use message::{
    ControlMessage, Fetch, FetchOk, FetchType, Goaway, Namespace, NamespaceDone, Publish,
    PublishBlocked, PublishDone, PublishNamespace, Redirect, RequestError, RequestOk,
    RequestUpdate, Subscribe, SubscribeNamespace, SubscribeOk, SubscribeTracks, TrackStatus,
};
pub use name::{
    check_full_name, render_full_name, Location, ReasonPhrase, TrackNamespace, MAX_FULL_NAME_LEN,
    MAX_NAMESPACE_FIELDS, MAX_REASON_LEN,
};
pub use params::{AuthToken, GroupOrder, Parameters, SubscriptionFilter};
pub use setup::{Setup, SetupOptions};

/// ALPN (raw QUIC) and `WT-Available-Protocols` token for draft-18.
pub const ALPN: &str = "moqt-18";

/// A MoQT wire version this crate can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Version {
    /// draft-ietf-moq-transport-18.
    Draft18,
}

impl Version {
    /// Every supported version, preferred first.
    pub const ALL: &'static [Version] = &[Version::Draft18];

    /// The ALPN / WebTransport protocol token.
    pub fn alpn(self) -> &'static str {
        match self {
            Version::Draft18 => ALPN,
        }
    }

    /// The version negotiated by an ALPN / WebTransport protocol token.
    pub fn from_alpn(alpn: &str) -> Option<Version> {
        Version::ALL.iter().copied().find(|v| v.alpn() == alpn)
    }
}

#[cfg(test)]
mod fuzz_tests;
