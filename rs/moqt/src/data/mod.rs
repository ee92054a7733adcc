//! Data plane: unidirectional stream types, subgroup streams, fetch streams,
//! object datagrams and padding.

mod datagram;
mod fetch;
mod subgroup;

pub use datagram::{
    encode_padding_datagram, Datagram, DatagramContent, ObjectDatagram, PADDING_DATAGRAM_TYPE,
};
pub use fetch::{
    EndOfRange, FetchHeader, FetchItem, FetchObjectDecoder, FetchObjectEncoder, FetchObjectHeader,
    FETCH_HEADER_TYPE,
};
pub use subgroup::{SubgroupHeader, SubgroupId, SubgroupObjectDecoder, SubgroupObjectEncoder};

use bytes::{Buf, BufMut};

use crate::coding::decode_buf;
use crate::error::DecodeError;
use crate::kvp::Properties;
use crate::varint;

/// Stream type of a padding stream.
pub const PADDING_STREAM_TYPE: u64 = 0x132b_3e28;
/// Stream type of the control stream (= the SETUP message type).
pub const CONTROL_STREAM_TYPE: u64 = 0x2f00;

/// What a new unidirectional stream carries, from its first varint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamType {
    /// 0x05: FETCH_HEADER; decode with [`FetchHeader`].
    Fetch,
    /// 0b0XX1XXXX: SUBGROUP_HEADER with this type value; decode with
    /// [`SubgroupHeader`].
    Subgroup(u8),
    /// 0x2F00: control stream starting with SETUP; decode with
    /// [`crate::ControlMessage`].
    Control,
    /// 0x132B3E28: padding; discard everything after the type.
    Padding,
}

impl StreamType {
    /// Classifies a stream type value. Unknown types and invalid subgroup
    /// types are a PROTOCOL_VIOLATION (the session must close).
    pub fn from_u64(t: u64) -> Result<Self, DecodeError> {
        match t {
            FETCH_HEADER_TYPE => Ok(StreamType::Fetch),
            CONTROL_STREAM_TYPE => Ok(StreamType::Control),
            PADDING_STREAM_TYPE => Ok(StreamType::Padding),
            t if t < 0x80 && t & 0x10 != 0 => {
                subgroup::check_type(t as u8)?;
                Ok(StreamType::Subgroup(t as u8))
            }
            t => Err(DecodeError::UnknownStreamType(t)),
        }
    }

    /// Peeks the stream type at the front of `bytes` without consuming.
    /// The header decoders ([`SubgroupHeader`], [`FetchHeader`],
    /// [`crate::ControlMessage`]) then read from the start of the stream,
    /// type included; for padding, skip the returned length and discard
    /// the rest.
    pub fn peek(bytes: &[u8]) -> Result<(StreamType, usize), DecodeError> {
        let (t, n) = varint::peek(bytes)?;
        Ok((Self::from_u64(t)?, n))
    }

    /// Decodes and consumes the stream type varint.
    pub fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        decode_buf(buf, |r| Self::from_u64(r.varint()?))
    }
}

/// Writes the start of a padding stream; follow it with zero bytes.
pub fn encode_padding_stream_header<B: BufMut>(buf: &mut B) {
    varint::encode(PADDING_STREAM_TYPE, buf);
}

/// Object Status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ObjectStatus {
    /// 0x0: normal object (implicit for non-empty payloads).
    #[default]
    Normal,
    /// 0x3: end of group.
    EndOfGroup,
    /// 0x4: end of track.
    EndOfTrack,
}

impl ObjectStatus {
    /// Wire value.
    pub fn to_u64(self) -> u64 {
        match self {
            ObjectStatus::Normal => 0x0,
            ObjectStatus::EndOfGroup => 0x3,
            ObjectStatus::EndOfTrack => 0x4,
        }
    }

    /// Parses a wire value; others are a PROTOCOL_VIOLATION.
    pub fn from_u64(v: u64) -> Result<Self, DecodeError> {
        match v {
            0x0 => Ok(ObjectStatus::Normal),
            0x3 => Ok(ObjectStatus::EndOfGroup),
            0x4 => Ok(ObjectStatus::EndOfTrack),
            _ => Err(DecodeError::ProtocolViolation("invalid object status")),
        }
    }
}

/// One object's header on a subgroup stream. `payload_len` payload bytes
/// follow it on the stream; the caller reads (or streams) them itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectHeader {
    /// Object ID (resolved from the delta).
    pub object_id: u64,
    /// Object Properties (empty if absent).
    pub properties: Properties,
    /// Payload length in bytes (0 for status objects).
    pub payload_len: u64,
    /// Object Status (Normal whenever `payload_len > 0`).
    pub status: ObjectStatus,
}

#[cfg(test)]
pub(crate) mod tests;
