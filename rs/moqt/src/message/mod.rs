//! Control messages: `Message Type (vi64), Message Length (16), Payload`.
//!
//! One struct per message, named like the draft, and [`ControlMessage`]
//! tying them together with the framing.

mod fetch;
mod namespace;
mod response;
mod subscribe;

pub use fetch::{Fetch, FetchOk, FetchType};
pub use namespace::{
    Namespace, NamespaceDone, PublishBlocked, PublishNamespace, SubscribeNamespace, SubscribeTracks,
};
pub use response::{Goaway, Redirect, RequestError, RequestOk, MAX_URI_LEN};
pub use subscribe::{Publish, PublishDone, RequestUpdate, Subscribe, SubscribeOk, TrackStatus};

use bytes::{Buf, BufMut};

use crate::coding::{decode_buf, Eof, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::setup::Setup;
use crate::varint;
use crate::Version;

/// Control message type codes (draft-18 message table).
pub mod kind {
    /// SETUP (control stream).
    pub const SETUP: u64 = 0x2f00;
    /// GOAWAY (control or request stream).
    pub const GOAWAY: u64 = 0x10;
    /// SUBSCRIBE (first on a request stream).
    pub const SUBSCRIBE: u64 = 0x3;
    /// SUBSCRIBE_OK.
    pub const SUBSCRIBE_OK: u64 = 0x4;
    /// PUBLISH (first on a request stream).
    pub const PUBLISH: u64 = 0x1d;
    /// PUBLISH_OK (same format as REQUEST_OK).
    pub const PUBLISH_OK: u64 = 0x1e;
    /// PUBLISH_DONE.
    pub const PUBLISH_DONE: u64 = 0xb;
    /// FETCH (first on a request stream).
    pub const FETCH: u64 = 0x16;
    /// FETCH_OK.
    pub const FETCH_OK: u64 = 0x18;
    /// TRACK_STATUS (first on a request stream).
    pub const TRACK_STATUS: u64 = 0xd;
    /// PUBLISH_NAMESPACE (first on a request stream).
    pub const PUBLISH_NAMESPACE: u64 = 0x6;
    /// SUBSCRIBE_NAMESPACE (first on a request stream).
    pub const SUBSCRIBE_NAMESPACE: u64 = 0x50;
    /// SUBSCRIBE_TRACKS (first on a request stream).
    pub const SUBSCRIBE_TRACKS: u64 = 0x51;
    /// NAMESPACE.
    pub const NAMESPACE: u64 = 0x8;
    /// NAMESPACE_DONE.
    pub const NAMESPACE_DONE: u64 = 0xe;
    /// PUBLISH_BLOCKED.
    pub const PUBLISH_BLOCKED: u64 = 0xf;
    /// REQUEST_UPDATE.
    pub const REQUEST_UPDATE: u64 = 0x2;
    /// REQUEST_OK.
    pub const REQUEST_OK: u64 = 0x7;
    /// REQUEST_ERROR.
    pub const REQUEST_ERROR: u64 = 0x5;
}

/// Largest control message payload.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// A message payload with its own type code (internal).
pub(crate) trait Payload: Sized {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError>;
}

/// Any draft-18 control message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum ControlMessage {
    /// SETUP (0x2F00).
    Setup(Setup),
    /// GOAWAY (0x10).
    Goaway(Goaway),
    /// SUBSCRIBE (0x3).
    Subscribe(Subscribe),
    /// SUBSCRIBE_OK (0x4).
    SubscribeOk(SubscribeOk),
    /// PUBLISH (0x1D).
    Publish(Publish),
    /// PUBLISH_OK (0x1E): REQUEST_OK format under its own type code.
    // Ambiguity: draft-18's changelog says PUBLISH_OK became an alias of
    // REQUEST_OK (0x7), yet the message table still lists 0x1E. We accept
    // both on receipt; send `RequestOk` (0x7) in response to PUBLISH.
    PublishOk(RequestOk),
    /// PUBLISH_DONE (0xB).
    PublishDone(PublishDone),
    /// FETCH (0x16).
    Fetch(Fetch),
    /// FETCH_OK (0x18).
    FetchOk(FetchOk),
    /// TRACK_STATUS (0xD).
    TrackStatus(TrackStatus),
    /// PUBLISH_NAMESPACE (0x6).
    PublishNamespace(PublishNamespace),
    /// SUBSCRIBE_NAMESPACE (0x50).
    SubscribeNamespace(SubscribeNamespace),
    /// SUBSCRIBE_TRACKS (0x51).
    SubscribeTracks(SubscribeTracks),
    /// NAMESPACE (0x8).
    Namespace(Namespace),
    /// NAMESPACE_DONE (0xE).
    NamespaceDone(NamespaceDone),
    /// PUBLISH_BLOCKED (0xF).
    PublishBlocked(PublishBlocked),
    /// REQUEST_UPDATE (0x2).
    RequestUpdate(RequestUpdate),
    /// REQUEST_OK (0x7).
    RequestOk(RequestOk),
    /// REQUEST_ERROR (0x5).
    RequestError(RequestError),
}

macro_rules! from_impls {
    ($($v:ident($t:ty)),*) => {
        $(impl From<$t> for ControlMessage {
            fn from(m: $t) -> Self {
                ControlMessage::$v(m)
            }
        })*
    };
}

from_impls!(
    Setup(Setup),
    Goaway(Goaway),
    Subscribe(Subscribe),
    SubscribeOk(SubscribeOk),
    Publish(Publish),
    PublishDone(PublishDone),
    Fetch(Fetch),
    FetchOk(FetchOk),
    TrackStatus(TrackStatus),
    PublishNamespace(PublishNamespace),
    SubscribeNamespace(SubscribeNamespace),
    SubscribeTracks(SubscribeTracks),
    Namespace(Namespace),
    NamespaceDone(NamespaceDone),
    PublishBlocked(PublishBlocked),
    RequestUpdate(RequestUpdate),
    RequestOk(RequestOk),
    RequestError(RequestError)
);

/// True if `t` is a control message type this version knows.
pub fn is_known_type(t: u64) -> bool {
    use kind::*;
    matches!(
        t,
        SETUP
            | GOAWAY
            | SUBSCRIBE
            | SUBSCRIBE_OK
            | PUBLISH
            | PUBLISH_OK
            | PUBLISH_DONE
            | FETCH
            | FETCH_OK
            | TRACK_STATUS
            | PUBLISH_NAMESPACE
            | SUBSCRIBE_NAMESPACE
            | SUBSCRIBE_TRACKS
            | NAMESPACE
            | NAMESPACE_DONE
            | PUBLISH_BLOCKED
            | REQUEST_UPDATE
            | REQUEST_OK
            | REQUEST_ERROR
    )
}

/// True if a message of type `t` may open a bidirectional request stream.
pub fn is_request_start_type(t: u64) -> bool {
    use kind::*;
    matches!(
        t,
        SUBSCRIBE
            | PUBLISH
            | FETCH
            | TRACK_STATUS
            | PUBLISH_NAMESPACE
            | SUBSCRIBE_NAMESPACE
            | SUBSCRIBE_TRACKS
    )
}

impl ControlMessage {
    /// The message type code.
    pub fn message_type(&self) -> u64 {
        use ControlMessage as M;
        match self {
            M::Setup(_) => kind::SETUP,
            M::Goaway(_) => kind::GOAWAY,
            M::Subscribe(_) => kind::SUBSCRIBE,
            M::SubscribeOk(_) => kind::SUBSCRIBE_OK,
            M::Publish(_) => kind::PUBLISH,
            M::PublishOk(_) => kind::PUBLISH_OK,
            M::PublishDone(_) => kind::PUBLISH_DONE,
            M::Fetch(_) => kind::FETCH,
            M::FetchOk(_) => kind::FETCH_OK,
            M::TrackStatus(_) => kind::TRACK_STATUS,
            M::PublishNamespace(_) => kind::PUBLISH_NAMESPACE,
            M::SubscribeNamespace(_) => kind::SUBSCRIBE_NAMESPACE,
            M::SubscribeTracks(_) => kind::SUBSCRIBE_TRACKS,
            M::Namespace(_) => kind::NAMESPACE,
            M::NamespaceDone(_) => kind::NAMESPACE_DONE,
            M::PublishBlocked(_) => kind::PUBLISH_BLOCKED,
            M::RequestUpdate(_) => kind::REQUEST_UPDATE,
            M::RequestOk(_) => kind::REQUEST_OK,
            M::RequestError(_) => kind::REQUEST_ERROR,
        }
    }

    /// The draft's name for the message type.
    pub fn name(&self) -> &'static str {
        use ControlMessage as M;
        match self {
            M::Setup(_) => "SETUP",
            M::Goaway(_) => "GOAWAY",
            M::Subscribe(_) => "SUBSCRIBE",
            M::SubscribeOk(_) => "SUBSCRIBE_OK",
            M::Publish(_) => "PUBLISH",
            M::PublishOk(_) => "PUBLISH_OK",
            M::PublishDone(_) => "PUBLISH_DONE",
            M::Fetch(_) => "FETCH",
            M::FetchOk(_) => "FETCH_OK",
            M::TrackStatus(_) => "TRACK_STATUS",
            M::PublishNamespace(_) => "PUBLISH_NAMESPACE",
            M::SubscribeNamespace(_) => "SUBSCRIBE_NAMESPACE",
            M::SubscribeTracks(_) => "SUBSCRIBE_TRACKS",
            M::Namespace(_) => "NAMESPACE",
            M::NamespaceDone(_) => "NAMESPACE_DONE",
            M::PublishBlocked(_) => "PUBLISH_BLOCKED",
            M::RequestUpdate(_) => "REQUEST_UPDATE",
            M::RequestOk(_) => "REQUEST_OK",
            M::RequestError(_) => "REQUEST_ERROR",
        }
    }

    /// True for messages that must be first on a new request stream.
    pub fn is_request_start(&self) -> bool {
        is_request_start_type(self.message_type())
    }

    /// The Request ID consumed by this message, if it is a request
    /// (or the GOAWAY Request ID field).
    pub fn request_id(&self) -> Option<u64> {
        use ControlMessage as M;
        match self {
            M::Subscribe(m) => Some(m.request_id),
            M::Publish(m) => Some(m.request_id),
            M::Fetch(m) => Some(m.request_id),
            M::TrackStatus(m) => Some(m.request_id),
            M::PublishNamespace(m) => Some(m.request_id),
            M::SubscribeNamespace(m) => Some(m.request_id),
            M::SubscribeTracks(m) => Some(m.request_id),
            M::RequestUpdate(m) => Some(m.request_id),
            M::Goaway(m) => m.request_id,
            _ => None,
        }
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        use ControlMessage as M;
        match self {
            M::Setup(m) => m.encode_payload(buf),
            M::Goaway(m) => m.encode_payload(buf),
            M::Subscribe(m) => m.encode_payload(buf),
            M::SubscribeOk(m) => m.encode_payload(buf),
            M::Publish(m) => m.encode_payload(buf),
            M::PublishOk(m) => m.encode_payload(buf),
            M::PublishDone(m) => m.encode_payload(buf),
            M::Fetch(m) => m.encode_payload(buf),
            M::FetchOk(m) => m.encode_payload(buf),
            M::TrackStatus(m) => m.encode_payload(buf),
            M::PublishNamespace(m) => m.encode_payload(buf),
            M::SubscribeNamespace(m) => m.encode_payload(buf),
            M::SubscribeTracks(m) => m.encode_payload(buf),
            M::Namespace(m) => m.encode_payload(buf),
            M::NamespaceDone(m) => m.encode_payload(buf),
            M::PublishBlocked(m) => m.encode_payload(buf),
            M::RequestUpdate(m) => m.encode_payload(buf),
            M::RequestOk(m) => m.encode_payload(buf),
            M::RequestError(m) => m.encode_payload(buf),
        }
    }

    /// Writes `Type, Length (16), Payload`. Fails (writing nothing) if the
    /// payload exceeds 65535 bytes or a field cannot be represented.
    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let mut payload = Vec::new();
        self.encode_payload(&mut payload)?;
        if payload.len() > MAX_MESSAGE_LEN {
            return Err(EncodeError::MessageTooLong(payload.len()));
        }
        varint::encode(self.message_type(), buf);
        buf.put_u16(payload.len() as u16);
        buf.put_slice(&payload);
        Ok(())
    }

    /// Encodes into a fresh vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes one draft-18 control message. `Short` (nothing consumed)
    /// until the whole message is buffered; every other error closes the
    /// session with `err.code()`.
    pub fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Self::decode_version(Version::Draft18, buf)
    }

    /// Decodes one control message for the negotiated `version`.
    pub fn decode_version<B: Buf>(version: Version, buf: &mut B) -> Result<Self, DecodeError> {
        match version {
            Version::Draft18 => decode_buf(buf, Self::decode_reader),
        }
    }

    /// Total size (header + payload) of the message at the front of
    /// `bytes`, once its header is complete; `Short` before that. Lets a
    /// caller wait for exactly the bytes it needs.
    pub fn frame_len(bytes: &[u8]) -> Result<usize, DecodeError> {
        let mut r = Reader::new(bytes);
        let t = r.varint()?;
        if !is_known_type(t) {
            return Err(DecodeError::UnknownMessage(t));
        }
        let len = r.u16()? as usize;
        Ok(r.position() + len)
    }

    fn decode_reader(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        use ControlMessage as M;
        let t = r.varint()?;
        if !is_known_type(t) {
            return Err(DecodeError::UnknownMessage(t));
        }
        let len = r.u16()? as usize;
        let mut p = r.sub(len, Eof::Protocol)?;
        let p = &mut p;
        let msg = match t {
            kind::SETUP => M::Setup(Setup::decode_payload(p)?),
            kind::GOAWAY => M::Goaway(Goaway::decode_payload(p)?),
            kind::SUBSCRIBE => M::Subscribe(Subscribe::decode_payload(p)?),
            kind::SUBSCRIBE_OK => M::SubscribeOk(SubscribeOk::decode_payload(p)?),
            kind::PUBLISH => M::Publish(Publish::decode_payload(p)?),
            kind::PUBLISH_OK => {
                let m = RequestOk::decode_payload(p)?;
                if !m.properties.is_empty() {
                    return Err(DecodeError::ProtocolViolation(
                        "track properties in PUBLISH_OK",
                    ));
                }
                M::PublishOk(m)
            }
            kind::PUBLISH_DONE => M::PublishDone(PublishDone::decode_payload(p)?),
            kind::FETCH => M::Fetch(Fetch::decode_payload(p)?),
            kind::FETCH_OK => M::FetchOk(FetchOk::decode_payload(p)?),
            kind::TRACK_STATUS => M::TrackStatus(TrackStatus::decode_payload(p)?),
            kind::PUBLISH_NAMESPACE => M::PublishNamespace(PublishNamespace::decode_payload(p)?),
            kind::SUBSCRIBE_NAMESPACE => {
                M::SubscribeNamespace(SubscribeNamespace::decode_payload(p)?)
            }
            kind::SUBSCRIBE_TRACKS => M::SubscribeTracks(SubscribeTracks::decode_payload(p)?),
            kind::NAMESPACE => M::Namespace(Namespace::decode_payload(p)?),
            kind::NAMESPACE_DONE => M::NamespaceDone(NamespaceDone::decode_payload(p)?),
            kind::PUBLISH_BLOCKED => M::PublishBlocked(PublishBlocked::decode_payload(p)?),
            kind::REQUEST_UPDATE => M::RequestUpdate(RequestUpdate::decode_payload(p)?),
            kind::REQUEST_OK => M::RequestOk(RequestOk::decode_payload(p)?),
            kind::REQUEST_ERROR => M::RequestError(RequestError::decode_payload(p)?),
            other => return Err(DecodeError::UnknownMessage(other)),
        };
        if !p.is_empty() {
            return Err(DecodeError::LengthMismatch);
        }
        if let Some(params) = msg.params() {
            params.check_allowed_in(t)?;
        }
        Ok(msg)
    }

    /// The message's parameters, for messages that have them.
    pub fn params(&self) -> Option<&crate::params::Parameters> {
        use ControlMessage as M;
        match self {
            M::Subscribe(m) => Some(&m.params),
            M::SubscribeOk(m) => Some(&m.params),
            M::Publish(m) => Some(&m.params),
            M::PublishOk(m) | M::RequestOk(m) => Some(&m.params),
            M::Fetch(m) => Some(&m.params),
            M::FetchOk(m) => Some(&m.params),
            M::TrackStatus(m) => Some(&m.params),
            M::PublishNamespace(m) => Some(&m.params),
            M::SubscribeNamespace(m) => Some(&m.params),
            M::SubscribeTracks(m) => Some(&m.params),
            M::RequestUpdate(m) => Some(&m.params),
            _ => None,
        }
    }
}

impl crate::coding::Decode for ControlMessage {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        ControlMessage::decode_version(Version::Draft18, buf)
    }
}

#[cfg(test)]
pub(crate) mod tests;
