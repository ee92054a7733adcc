//! OBJECT_DATAGRAM and padding datagrams.

use bytes::{BufMut, Bytes};

use super::ObjectStatus;
use crate::coding::{Eof, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::kvp::Properties;
use crate::varint;

/// Datagram type of a padding datagram.
pub const PADDING_DATAGRAM_TYPE: u64 = 0x132b_3e29;

const BIT_PROPERTIES: u64 = 0x01;
const BIT_END_OF_GROUP: u64 = 0x02;
const BIT_ZERO_OBJECT_ID: u64 = 0x04;
const BIT_DEFAULT_PRIORITY: u64 = 0x08;
const BIT_STATUS: u64 = 0x20;

/// What an object datagram carries after its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatagramContent {
    /// The payload (rest of the datagram).
    Payload(Bytes),
    /// An Object Status instead of a payload (STATUS bit).
    Status(ObjectStatus),
}

/// OBJECT_DATAGRAM, with the type bits decoded into fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectDatagram {
    /// Track Alias.
    pub track_alias: u64,
    /// Group ID.
    pub group_id: u64,
    /// Object ID (0 is sent with the ZERO_OBJECT_ID bit).
    pub object_id: u64,
    /// Publisher Priority; `None` = inherit (DEFAULT_PRIORITY bit).
    pub publisher_priority: Option<u8>,
    /// Object Properties (PROPERTIES bit set when non-empty).
    pub properties: Properties,
    /// END_OF_GROUP bit: no larger Object ID exists in this group.
    pub end_of_group: bool,
    /// Payload or status.
    pub content: DatagramContent,
}

/// Any datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// An object datagram.
    Object(ObjectDatagram),
    /// Padding; the number of padding bytes after the type.
    Padding(usize),
}

impl Datagram {
    /// Decodes a whole datagram (no `Short`: truncation is a
    /// PROTOCOL_VIOLATION). The payload is a zero-copy slice of `datagram`.
    pub fn decode(datagram: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(datagram, Eof::Protocol);
        let t = r.varint()?;
        if t == PADDING_DATAGRAM_TYPE {
            return Ok(Datagram::Padding(r.remaining()));
        }
        ObjectDatagram::decode_after_type(t, &mut r, datagram).map(Datagram::Object)
    }
}

impl ObjectDatagram {
    /// The datagram type value this encodes to.
    pub fn type_value(&self) -> u64 {
        let mut t = 0;
        if !self.properties.is_empty() {
            t |= BIT_PROPERTIES;
        }
        if self.end_of_group {
            t |= BIT_END_OF_GROUP;
        }
        if self.object_id == 0 {
            t |= BIT_ZERO_OBJECT_ID;
        }
        if self.publisher_priority.is_none() {
            t |= BIT_DEFAULT_PRIORITY;
        }
        if matches!(self.content, DatagramContent::Status(_)) {
            t |= BIT_STATUS;
        }
        t
    }

    /// Decodes a whole object datagram (padding datagrams are an error here;
    /// use [`Datagram::decode`] to accept both).
    pub fn decode(datagram: &Bytes) -> Result<Self, DecodeError> {
        match Datagram::decode(datagram)? {
            Datagram::Object(o) => Ok(o),
            Datagram::Padding(_) => Err(DecodeError::InvalidDatagramType(PADDING_DATAGRAM_TYPE)),
        }
    }

    fn decode_after_type(t: u64, r: &mut Reader<'_>, whole: &Bytes) -> Result<Self, DecodeError> {
        // Valid: 0b00X0XXXX, minus STATUS together with END_OF_GROUP.
        if t & !0x2f != 0 || (t & BIT_STATUS != 0 && t & BIT_END_OF_GROUP != 0) {
            return Err(DecodeError::InvalidDatagramType(t));
        }
        let track_alias = r.varint()?;
        let group_id = r.varint()?;
        let object_id = if t & BIT_ZERO_OBJECT_ID != 0 {
            0
        } else {
            r.varint()?
        };
        let publisher_priority = if t & BIT_DEFAULT_PRIORITY != 0 {
            None
        } else {
            Some(r.u8()?)
        };
        let properties = if t & BIT_PROPERTIES != 0 {
            let p = Properties::decode_length_prefixed(r)?;
            if p.is_empty() {
                return Err(DecodeError::ProtocolViolation("empty datagram properties"));
            }
            p
        } else {
            Properties::new()
        };
        let content = if t & BIT_STATUS != 0 {
            let status = ObjectStatus::from_u64(r.varint()?)?;
            if status != ObjectStatus::Normal && !properties.is_empty() {
                return Err(DecodeError::ProtocolViolation(
                    "properties on a status object",
                ));
            }
            if !r.is_empty() {
                return Err(DecodeError::LengthMismatch);
            }
            DatagramContent::Status(status)
        } else {
            let start = r.position();
            DatagramContent::Payload(whole.slice(start..))
        };
        Ok(Self {
            track_alias,
            group_id,
            object_id,
            publisher_priority,
            properties,
            end_of_group: t & BIT_END_OF_GROUP != 0,
            content,
        })
    }

    /// Writes the datagram. Fails (writing nothing) for END_OF_GROUP with a
    /// status, or properties with a non-Normal status.
    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        if let DatagramContent::Status(s) = self.content {
            if self.end_of_group {
                return Err(EncodeError::Invalid(
                    "status datagram cannot signal end of group",
                ));
            }
            if s != ObjectStatus::Normal && !self.properties.is_empty() {
                return Err(EncodeError::Invalid("properties on a status object"));
            }
        }
        varint::encode(self.type_value(), buf);
        varint::encode(self.track_alias, buf);
        varint::encode(self.group_id, buf);
        if self.object_id != 0 {
            varint::encode(self.object_id, buf);
        }
        if let Some(p) = self.publisher_priority {
            buf.put_u8(p);
        }
        if !self.properties.is_empty() {
            self.properties.encode_length_prefixed(buf);
        }
        match &self.content {
            DatagramContent::Payload(p) => buf.put_slice(p),
            DatagramContent::Status(s) => varint::encode(s.to_u64(), buf),
        }
        Ok(())
    }

    /// Encodes into a fresh `Bytes`.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v.into())
    }
}

/// Writes a padding datagram with `len` zero bytes after the type.
pub fn encode_padding_datagram<B: BufMut>(len: usize, buf: &mut B) {
    varint::encode(PADDING_DATAGRAM_TYPE, buf);
    buf.put_bytes(0, len);
}
