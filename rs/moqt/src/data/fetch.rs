//! FETCH_HEADER and the objects on a fetch stream.

use bytes::{Buf, BufMut, Bytes};

use crate::coding::{decode_buf, Decode, Encode, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::kvp::Properties;
use crate::name::Location;
use crate::params::GroupOrder;
use crate::varint;

/// Stream type of a fetch stream.
pub const FETCH_HEADER_TYPE: u64 = 0x05;

const MASK_SUBGROUP: u64 = 0x03;
const FLAG_OBJECT_ID: u64 = 0x04;
const FLAG_GROUP_ID: u64 = 0x08;
const FLAG_PRIORITY: u64 = 0x10;
const FLAG_PROPERTIES: u64 = 0x20;
const FLAG_DATAGRAM: u64 = 0x40;
const END_OF_NON_EXISTENT_RANGE: u64 = 0x8c;
const END_OF_UNKNOWN_RANGE: u64 = 0x10c;

/// FETCH_HEADER: `Type (0x05), Request ID`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FetchHeader {
    /// Request ID of the FETCH this stream answers.
    pub request_id: u64,
}

impl Encode for FetchHeader {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        varint::encode(FETCH_HEADER_TYPE, buf);
        varint::encode(self.request_id, buf);
    }
}

impl Decode for FetchHeader {
    /// Decodes from the start of the stream (type varint included).
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        decode_buf(buf, |r| {
            let t = r.varint()?;
            if t != FETCH_HEADER_TYPE {
                return Err(DecodeError::UnknownStreamType(t));
            }
            Ok(FetchHeader {
                request_id: r.varint()?,
            })
        })
    }
}

/// The kind of an End of Range marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndOfRange {
    /// 0x8C: the objects in the range do not exist.
    NonExistent,
    /// 0x10C: the objects' status is unknown.
    Unknown,
}

impl EndOfRange {
    fn flags(self) -> u64 {
        match self {
            EndOfRange::NonExistent => END_OF_NON_EXISTENT_RANGE,
            EndOfRange::Unknown => END_OF_UNKNOWN_RANGE,
        }
    }
}

/// One object header on a fetch stream; `payload_len` bytes follow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchObjectHeader {
    /// Group ID.
    pub group_id: u64,
    /// Subgroup ID; `None` for an object whose forwarding preference is
    /// Datagram.
    pub subgroup_id: Option<u64>,
    /// Object ID.
    pub object_id: u64,
    /// Publisher Priority.
    pub publisher_priority: u8,
    /// Object Properties.
    pub properties: Properties,
    /// Payload length (a zero-length object is a Normal empty object; fetch
    /// streams carry no Object Status).
    pub payload_len: u64,
}

impl FetchObjectHeader {
    /// Location of the object.
    pub fn location(&self) -> Location {
        Location::new(self.group_id, self.object_id)
    }
}

/// An item on a fetch stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchItem {
    /// An object header (payload follows).
    Object(FetchObjectHeader),
    /// All objects after the previous one up to and including `location`
    /// do not exist / are unknown. No payload follows.
    EndOfRange {
        /// Which marker.
        kind: EndOfRange,
        /// Last location covered.
        location: Location,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Prior {
    /// Location of the prior object or End of Range marker.
    location: Option<Location>,
    /// The last actual object: `(subgroup id, priority)`.
    object: Option<(Option<u64>, u8)>,
}

/// Reads the objects following a FETCH_HEADER, resolving the
/// "same as prior object" flags and deltas.
///
/// The group order (from the FETCH's GROUP_ORDER parameter, default
/// ascending) decides the direction of Group ID deltas.
#[derive(Clone, Debug)]
pub struct FetchObjectDecoder {
    order: GroupOrder,
    prior: Prior,
}

fn violation(msg: &'static str) -> DecodeError {
    DecodeError::ProtocolViolation(msg)
}

impl FetchObjectDecoder {
    /// A decoder for a fetch delivered in `order`.
    pub fn new(order: GroupOrder) -> Self {
        Self {
            order,
            prior: Prior::default(),
        }
    }

    /// Decodes the next item. On `Short` nothing is consumed and the state
    /// is unchanged. An object's payload is not consumed.
    pub fn decode<B: Buf>(&mut self, buf: &mut B) -> Result<FetchItem, DecodeError> {
        let (item, prior) = decode_buf(buf, |r| self.decode_from(r))?;
        self.prior = prior;
        Ok(item)
    }

    /// Like [`FetchObjectDecoder::decode`], also taking the payload, which
    /// must be fully buffered (`Short` otherwise, nothing consumed).
    pub fn decode_object<B: Buf>(
        &mut self,
        buf: &mut B,
    ) -> Result<(FetchItem, Bytes), DecodeError> {
        let (item, prior, payload) = decode_buf(buf, |r| {
            let (item, prior) = self.decode_from(r)?;
            let payload = match &item {
                FetchItem::Object(h) => {
                    let len = usize::try_from(h.payload_len).map_err(|_| DecodeError::Short)?;
                    r.bytes_owned(len)?
                }
                FetchItem::EndOfRange { .. } => Bytes::new(),
            };
            Ok((item, prior, payload))
        })?;
        self.prior = prior;
        Ok((item, payload))
    }

    fn decode_from(&self, r: &mut Reader<'_>) -> Result<(FetchItem, Prior), DecodeError> {
        let flags = r.varint()?;
        let mut prior = self.prior;
        if flags >= 0x80 {
            let kind = match flags {
                END_OF_NON_EXISTENT_RANGE => EndOfRange::NonExistent,
                END_OF_UNKNOWN_RANGE => EndOfRange::Unknown,
                _ => return Err(violation("invalid fetch serialization flags")),
            };
            // Ambiguity: the End of Range Group/Object fields are read as
            // absolute IDs (not deltas) and no Object Payload Length
            // follows, matching other implementations; with the delta
            // reading a range ending in the prior object's group would be
            // inexpressible.
            let location = Location::decode_from(r)?;
            prior.location = Some(location);
            return Ok((FetchItem::EndOfRange { kind, location }, prior));
        }

        let group_id = if flags & FLAG_GROUP_ID != 0 {
            let delta = r.varint()?;
            match prior.location {
                None => delta,
                Some(p) => match self.order {
                    GroupOrder::Ascending => {
                        p.group.checked_add(delta).and_then(|g| g.checked_add(1))
                    }
                    GroupOrder::Descending => {
                        delta.checked_add(1).and_then(|d| p.group.checked_sub(d))
                    }
                }
                .ok_or_else(|| violation("group id out of range"))?,
            }
        } else {
            prior
                .location
                .ok_or_else(|| violation("first fetch object refers to prior group"))?
                .group
        };

        let subgroup_id = if flags & FLAG_DATAGRAM != 0 {
            None
        } else {
            let prior_sub = || {
                prior
                    .object
                    .and_then(|(s, _)| s)
                    .ok_or_else(|| violation("fetch object refers to missing prior subgroup"))
            };
            Some(match flags & MASK_SUBGROUP {
                0 => 0,
                1 => prior_sub()?,
                2 => prior_sub()?
                    .checked_add(1)
                    .ok_or_else(|| violation("subgroup id overflow"))?,
                _ => r.varint()?,
            })
        };

        let object_id = if flags & FLAG_OBJECT_ID != 0 {
            let delta = r.varint()?;
            match prior.location {
                Some(p) if flags & FLAG_GROUP_ID == 0 => p
                    .object
                    .checked_add(delta)
                    .ok_or_else(|| violation("object id overflow"))?,
                _ => delta,
            }
        } else {
            prior
                .location
                .ok_or_else(|| violation("first fetch object refers to prior object"))?
                .object
                .checked_add(1)
                .ok_or_else(|| violation("object id overflow"))?
        };

        let publisher_priority = if flags & FLAG_PRIORITY != 0 {
            r.u8()?
        } else {
            prior
                .object
                .map(|(_, p)| p)
                .ok_or_else(|| violation("fetch object refers to missing prior priority"))?
        };

        let properties = if flags & FLAG_PROPERTIES != 0 {
            Properties::decode_length_prefixed(r)?
        } else {
            Properties::new()
        };
        let payload_len = r.varint()?;

        prior.location = Some(Location::new(group_id, object_id));
        prior.object = Some((subgroup_id, publisher_priority));
        Ok((
            FetchItem::Object(FetchObjectHeader {
                group_id,
                subgroup_id,
                object_id,
                publisher_priority,
                properties,
                payload_len,
            }),
            prior,
        ))
    }
}

/// Writes the objects following a FETCH_HEADER with compact flags.
#[derive(Clone, Debug)]
pub struct FetchObjectEncoder {
    order: GroupOrder,
    prior: Prior,
}

impl FetchObjectEncoder {
    /// An encoder for a fetch delivered in `order`.
    pub fn new(order: GroupOrder) -> Self {
        Self {
            order,
            prior: Prior::default(),
        }
    }

    /// Writes an object header; follow it with `payload_len` payload bytes.
    /// Groups must follow the group order and Object IDs must not decrease
    /// within a group. Nothing is written on error.
    pub fn encode<B: BufMut>(
        &mut self,
        h: &FetchObjectHeader,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let mut flags = 0u64;
        let mut group_delta = None;
        let mut object_delta = None;
        match self.prior.location {
            None => {
                flags |= FLAG_GROUP_ID | FLAG_OBJECT_ID;
                group_delta = Some(h.group_id);
                object_delta = Some(h.object_id);
            }
            Some(p) if p.group == h.group_id => {
                if h.object_id < p.object {
                    return Err(EncodeError::Invalid("fetch object ids must not decrease"));
                }
                if Some(h.object_id) != p.object.checked_add(1) {
                    flags |= FLAG_OBJECT_ID;
                    object_delta = Some(h.object_id - p.object);
                }
            }
            Some(p) => {
                let d = match self.order {
                    GroupOrder::Ascending if h.group_id > p.group => h.group_id - p.group - 1,
                    GroupOrder::Descending if h.group_id < p.group => p.group - h.group_id - 1,
                    _ => return Err(EncodeError::Invalid("fetch groups out of order")),
                };
                flags |= FLAG_GROUP_ID | FLAG_OBJECT_ID;
                group_delta = Some(d);
                object_delta = Some(h.object_id);
            }
        }
        let prior_object = self.prior.object;
        let mut explicit_subgroup = None;
        match h.subgroup_id {
            None => flags |= FLAG_DATAGRAM,
            Some(0) => {}
            Some(s) => {
                let prior_sub = prior_object.and_then(|(s, _)| s);
                if prior_sub == Some(s) {
                    flags |= 0x01;
                } else if prior_sub.and_then(|p| p.checked_add(1)) == Some(s) {
                    flags |= 0x02;
                } else {
                    flags |= 0x03;
                    explicit_subgroup = Some(s);
                }
            }
        }
        let write_priority = prior_object.map(|(_, p)| p) != Some(h.publisher_priority);
        if write_priority {
            flags |= FLAG_PRIORITY;
        }
        if !h.properties.is_empty() {
            flags |= FLAG_PROPERTIES;
        }

        varint::encode(flags, buf);
        if let Some(d) = group_delta {
            varint::encode(d, buf);
        }
        if let Some(s) = explicit_subgroup {
            varint::encode(s, buf);
        }
        if let Some(d) = object_delta {
            varint::encode(d, buf);
        }
        if write_priority {
            buf.put_u8(h.publisher_priority);
        }
        if !h.properties.is_empty() {
            h.properties.encode_length_prefixed(buf);
        }
        varint::encode(h.payload_len, buf);

        self.prior.location = Some(h.location());
        self.prior.object = Some((h.subgroup_id, h.publisher_priority));
        Ok(())
    }

    /// Writes an object header followed by its payload.
    pub fn encode_object<B: BufMut>(
        &mut self,
        h: &FetchObjectHeader,
        payload: &[u8],
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        if h.payload_len != payload.len() as u64 {
            return Err(EncodeError::Invalid("payload_len does not match payload"));
        }
        self.encode(h, buf)?;
        buf.put_slice(payload);
        Ok(())
    }

    /// Writes an End of Range marker.
    pub fn encode_end_of_range<B: BufMut>(
        &mut self,
        kind: EndOfRange,
        location: Location,
        buf: &mut B,
    ) {
        varint::encode(kind.flags(), buf);
        location.encode(buf);
        self.prior.location = Some(location);
    }

    /// Writes any [`FetchItem`] (payload not included).
    pub fn encode_item<B: BufMut>(
        &mut self,
        item: &FetchItem,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        match item {
            FetchItem::Object(h) => self.encode(h, buf),
            FetchItem::EndOfRange { kind, location } => {
                self.encode_end_of_range(*kind, *location, buf);
                Ok(())
            }
        }
    }
}
