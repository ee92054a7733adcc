//! SUBGROUP_HEADER and the objects on a subgroup stream.

use bytes::{Buf, BufMut};

use super::{ObjectHeader, ObjectStatus};
use crate::coding::{decode_buf, Decode, Encode, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::kvp::Properties;
use crate::varint;

const BIT_PROPERTIES: u8 = 0x01;
const MASK_SUBGROUP_MODE: u8 = 0x06;
const BIT_END_OF_GROUP: u8 = 0x08;
const BIT_SUBGROUP: u8 = 0x10;
const BIT_DEFAULT_PRIORITY: u8 = 0x20;
const BIT_FIRST_OBJECT: u8 = 0x40;

pub(crate) fn check_type(t: u8) -> Result<(), DecodeError> {
    if t & 0x80 != 0 || t & BIT_SUBGROUP == 0 {
        return Err(DecodeError::UnknownStreamType(t.into()));
    }
    if (t & MASK_SUBGROUP_MODE) >> 1 == 0b11 {
        return Err(DecodeError::ProtocolViolation("reserved subgroup id mode"));
    }
    Ok(())
}

/// How a subgroup stream conveys its Subgroup ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SubgroupId {
    /// Mode 0b00: Subgroup ID is 0 (not on the wire).
    #[default]
    Zero,
    /// Mode 0b01: Subgroup ID is the first object's Object ID.
    FirstObject,
    /// Mode 0b10: explicit Subgroup ID in the header.
    Explicit(u64),
}

/// SUBGROUP_HEADER, with the type bits decoded into fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubgroupHeader {
    /// Track Alias.
    pub track_alias: u64,
    /// Group ID.
    pub group_id: u64,
    /// Subgroup ID mode / value.
    pub subgroup_id: SubgroupId,
    /// Publisher Priority; `None` = inherit the subscription's default
    /// (DEFAULT_PRIORITY bit set).
    pub publisher_priority: Option<u8>,
    /// Every object carries an Object Properties field (PROPERTIES bit).
    pub has_properties: bool,
    /// This subgroup contains the group's largest object (END_OF_GROUP bit).
    pub end_of_group: bool,
    /// The first object on this stream is the subgroup's first (FIRST_OBJECT bit).
    pub first_object: bool,
}

impl SubgroupHeader {
    /// The stream type value this header encodes to.
    pub fn type_value(&self) -> u8 {
        let mut t = BIT_SUBGROUP;
        if self.has_properties {
            t |= BIT_PROPERTIES;
        }
        t |= match self.subgroup_id {
            SubgroupId::Zero => 0b00,
            SubgroupId::FirstObject => 0b01 << 1,
            SubgroupId::Explicit(_) => 0b10 << 1,
        };
        if self.end_of_group {
            t |= BIT_END_OF_GROUP;
        }
        if self.publisher_priority.is_none() {
            t |= BIT_DEFAULT_PRIORITY;
        }
        if self.first_object {
            t |= BIT_FIRST_OBJECT;
        }
        t
    }

    /// The Subgroup ID when it is known from the header alone.
    pub fn known_subgroup_id(&self) -> Option<u64> {
        match self.subgroup_id {
            SubgroupId::Zero => Some(0),
            SubgroupId::FirstObject => None,
            SubgroupId::Explicit(id) => Some(id),
        }
    }

    /// Publisher priority, falling back to the subscription default.
    pub fn priority_or(&self, default: u8) -> u8 {
        self.publisher_priority.unwrap_or(default)
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = r.varint()?;
        if t >= 0x80 {
            return Err(DecodeError::UnknownStreamType(t));
        }
        let t = t as u8;
        check_type(t)?;
        let track_alias = r.varint()?;
        let group_id = r.varint()?;
        let subgroup_id = match (t & MASK_SUBGROUP_MODE) >> 1 {
            0b00 => SubgroupId::Zero,
            0b01 => SubgroupId::FirstObject,
            _ => SubgroupId::Explicit(r.varint()?),
        };
        let publisher_priority = if t & BIT_DEFAULT_PRIORITY != 0 {
            None
        } else {
            Some(r.u8()?)
        };
        Ok(Self {
            track_alias,
            group_id,
            subgroup_id,
            publisher_priority,
            has_properties: t & BIT_PROPERTIES != 0,
            end_of_group: t & BIT_END_OF_GROUP != 0,
            first_object: t & BIT_FIRST_OBJECT != 0,
        })
    }
}

impl Encode for SubgroupHeader {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        varint::encode(self.type_value().into(), buf);
        varint::encode(self.track_alias, buf);
        varint::encode(self.group_id, buf);
        if let SubgroupId::Explicit(id) = self.subgroup_id {
            varint::encode(id, buf);
        }
        if let Some(p) = self.publisher_priority {
            buf.put_u8(p);
        }
    }
}

impl Decode for SubgroupHeader {
    /// Decodes from the start of the stream (type varint included).
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        decode_buf(buf, Self::decode_from)
    }
}

/// Reads the objects following a SUBGROUP_HEADER, resolving Object ID
/// deltas. Decode a header, read its `payload_len` bytes yourself, repeat.
#[derive(Clone, Debug)]
pub struct SubgroupObjectDecoder {
    has_properties: bool,
    first_object_mode: bool,
    subgroup_id: Option<u64>,
    prev_object_id: Option<u64>,
}

impl SubgroupObjectDecoder {
    /// A decoder for the objects after `header`.
    pub fn new(header: &SubgroupHeader) -> Self {
        Self {
            has_properties: header.has_properties,
            first_object_mode: header.subgroup_id == SubgroupId::FirstObject,
            subgroup_id: header.known_subgroup_id(),
            prev_object_id: None,
        }
    }

    /// The Subgroup ID, once known (after the first object in
    /// first-object mode).
    pub fn subgroup_id(&self) -> Option<u64> {
        self.subgroup_id
    }

    /// The last Object ID decoded.
    pub fn last_object_id(&self) -> Option<u64> {
        self.prev_object_id
    }

    /// Decodes the next object header. On `Short` nothing is consumed and
    /// the decoder state is unchanged. The payload is not consumed.
    pub fn decode<B: Buf>(&mut self, buf: &mut B) -> Result<ObjectHeader, DecodeError> {
        let h = decode_buf(buf, |r| self.decode_from(r))?;
        self.commit(&h);
        Ok(h)
    }

    /// Decodes the next object header and, if the whole payload is
    /// buffered, the payload too (`Short` otherwise, nothing consumed).
    pub fn decode_object<B: Buf>(
        &mut self,
        buf: &mut B,
    ) -> Result<(ObjectHeader, bytes::Bytes), DecodeError> {
        let (h, payload) = decode_buf(buf, |r| {
            let h = self.decode_from(r)?;
            let len = usize::try_from(h.payload_len).map_err(|_| DecodeError::Short)?;
            let payload = r.bytes_owned(len)?;
            Ok((h, payload))
        })?;
        self.commit(&h);
        Ok((h, payload))
    }

    fn commit(&mut self, h: &ObjectHeader) {
        if self.prev_object_id.is_none() && self.first_object_mode {
            self.subgroup_id = Some(h.object_id);
        }
        self.prev_object_id = Some(h.object_id);
    }

    fn decode_from(&self, r: &mut Reader<'_>) -> Result<ObjectHeader, DecodeError> {
        let delta = r.varint()?;
        let object_id = match self.prev_object_id {
            None => delta,
            Some(prev) => prev
                .checked_add(delta)
                .and_then(|v| v.checked_add(1))
                .ok_or(DecodeError::ProtocolViolation("object id overflow"))?,
        };
        let properties = if self.has_properties {
            Properties::decode_length_prefixed(r)?
        } else {
            Properties::new()
        };
        let payload_len = r.varint()?;
        let status = if payload_len == 0 {
            ObjectStatus::from_u64(r.varint()?)?
        } else {
            ObjectStatus::Normal
        };
        if status != ObjectStatus::Normal && !properties.is_empty() {
            return Err(DecodeError::ProtocolViolation(
                "properties on a status object",
            ));
        }
        Ok(ObjectHeader {
            object_id,
            properties,
            payload_len,
            status,
        })
    }
}

/// Writes the objects following a SUBGROUP_HEADER, computing Object ID
/// deltas. Write a header with [`SubgroupObjectEncoder::encode`], then its
/// `payload_len` payload bytes.
#[derive(Clone, Debug)]
pub struct SubgroupObjectEncoder {
    has_properties: bool,
    prev_object_id: Option<u64>,
}

impl SubgroupObjectEncoder {
    /// An encoder for the objects after `header`.
    pub fn new(header: &SubgroupHeader) -> Self {
        Self {
            has_properties: header.has_properties,
            prev_object_id: None,
        }
    }

    /// Writes one object header. Object IDs must increase; properties need
    /// the header's PROPERTIES bit and a Normal status; a non-Normal status
    /// needs `payload_len == 0`. Nothing is written on error.
    pub fn encode<B: BufMut>(&mut self, h: &ObjectHeader, buf: &mut B) -> Result<(), EncodeError> {
        let delta = match self.prev_object_id {
            None => h.object_id,
            Some(prev) if h.object_id > prev => h.object_id - prev - 1,
            Some(_) => return Err(EncodeError::Invalid("object ids must increase")),
        };
        if !h.properties.is_empty() && !self.has_properties {
            return Err(EncodeError::Invalid(
                "properties without the PROPERTIES bit",
            ));
        }
        if h.status != ObjectStatus::Normal {
            if h.payload_len != 0 {
                return Err(EncodeError::Invalid("status object with payload"));
            }
            if !h.properties.is_empty() {
                return Err(EncodeError::Invalid("properties on a status object"));
            }
        }
        varint::encode(delta, buf);
        if self.has_properties {
            h.properties.encode_length_prefixed(buf);
        }
        varint::encode(h.payload_len, buf);
        if h.payload_len == 0 {
            varint::encode(h.status.to_u64(), buf);
        }
        self.prev_object_id = Some(h.object_id);
        Ok(())
    }

    /// Writes one object header followed by its payload.
    pub fn encode_object<B: BufMut>(
        &mut self,
        object_id: u64,
        properties: &Properties,
        payload: &[u8],
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let h = ObjectHeader {
            object_id,
            properties: properties.clone(),
            payload_len: payload.len() as u64,
            status: ObjectStatus::Normal,
        };
        self.encode(&h, buf)?;
        buf.put_slice(payload);
        Ok(())
    }
}
