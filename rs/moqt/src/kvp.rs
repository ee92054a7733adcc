//! Key-Value-Pairs and the Properties lists built from them (Track
//! Properties, Object Properties, Immutable Properties, Setup Options).
//!
//! Wire form: `Delta Type (vi64), [Length (vi64),] Value`. Even types carry a
//! single varint; odd types carry `Length` bytes (at most 65535). Types are
//! delta-encoded from the previous type, so a list is always in
//! non-decreasing type order; the same type may repeat (delta 0).

use bytes::{BufMut, Bytes};

use crate::coding::{Encode, Eof, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::varint;

/// Maximum length of an odd-typed Key-Value-Pair value.
pub const MAX_KVP_VALUE_LEN: usize = 65_535;

/// Object Properties blocks larger than this are rejected with
/// PROTOCOL_VIOLATION.
// Ambiguity: the draft bounds each value (65535) but not the block length
// or pair count; a length-prefixed block must be buffered whole, so we cap it
// to keep a peer from making us buffer without limit.
pub const MAX_OBJECT_PROPERTIES_LEN: usize = 1 << 20;

/// A Key-Value-Pair value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// Even types: one varint.
    Int(u64),
    /// Odd types: up to 65535 bytes.
    Bytes(Bytes),
}

/// One Key-Value-Pair. The type's parity always matches the value kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyValuePair {
    kind: u64,
    value: Value,
}

impl KeyValuePair {
    /// An even-typed pair. Fails if `kind` is odd.
    pub fn int(kind: u64, v: u64) -> Result<Self, EncodeError> {
        if kind % 2 != 0 {
            return Err(EncodeError::Invalid(
                "integer Key-Value-Pair needs an even type",
            ));
        }
        Ok(Self {
            kind,
            value: Value::Int(v),
        })
    }

    /// An odd-typed pair. Fails if `kind` is even or the value is too long.
    pub fn bytes(kind: u64, v: impl Into<Bytes>) -> Result<Self, EncodeError> {
        let v = v.into();
        if kind % 2 == 0 {
            return Err(EncodeError::Invalid(
                "byte Key-Value-Pair needs an odd type",
            ));
        }
        if v.len() > MAX_KVP_VALUE_LEN {
            return Err(EncodeError::TooLong {
                what: "key-value-pair value",
                len: v.len(),
                max: MAX_KVP_VALUE_LEN,
            });
        }
        Ok(Self {
            kind,
            value: Value::Bytes(v),
        })
    }

    /// The type.
    pub fn kind(&self) -> u64 {
        self.kind
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The integer value, for even types.
    pub fn as_int(&self) -> Option<u64> {
        match self.value {
            Value::Int(v) => Some(v),
            Value::Bytes(_) => None,
        }
    }

    /// The byte value, for odd types.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.value {
            Value::Bytes(b) => Some(b),
            Value::Int(_) => None,
        }
    }

    fn encoded_len(&self, prev: u64) -> usize {
        let head = varint::size(self.kind - prev);
        match &self.value {
            Value::Int(v) => head + varint::size(*v),
            Value::Bytes(b) => head + varint::size(b.len() as u64) + b.len(),
        }
    }
}

/// An ordered list of Key-Value-Pairs (Properties, Setup Options).
///
/// Kept sorted by type (stable: pairs of the same type stay in insertion
/// order), as the delta encoding requires. Unknown types are preserved
/// byte-for-byte so relays can forward them unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Properties {
    pairs: Vec<KeyValuePair>,
}

/// Track Property: OBJECT_DELIVERY_TIMEOUT (varint, ms).
pub const PROP_OBJECT_DELIVERY_TIMEOUT: u64 = 0x02;
/// Track Property: MAX_CACHE_DURATION (varint, ms).
pub const PROP_MAX_CACHE_DURATION: u64 = 0x04;
/// Track Property: SUBGROUP_DELIVERY_TIMEOUT (varint, ms).
pub const PROP_SUBGROUP_DELIVERY_TIMEOUT: u64 = 0x06;
/// Track/Object Property: IMMUTABLE_PROPERTIES (nested Key-Value-Pairs).
pub const PROP_IMMUTABLE_PROPERTIES: u64 = 0x0b;
/// Track Property: DEFAULT_PUBLISHER_PRIORITY (0..=255, default 128).
pub const PROP_DEFAULT_PUBLISHER_PRIORITY: u64 = 0x0e;
/// Track Property: DEFAULT_PUBLISHER_GROUP_ORDER (1 ascending, 2 descending).
pub const PROP_DEFAULT_PUBLISHER_GROUP_ORDER: u64 = 0x22;
/// Track Property: DYNAMIC_GROUPS (0 or 1).
pub const PROP_DYNAMIC_GROUPS: u64 = 0x30;
/// Object Property: PRIOR_GROUP_ID_GAP (varint).
pub const PROP_PRIOR_GROUP_ID_GAP: u64 = 0x3c;
/// Object Property: PRIOR_OBJECT_ID_GAP (varint).
pub const PROP_PRIOR_OBJECT_ID_GAP: u64 = 0x3e;

/// True for the Mandatory Track Property range 0x4000..=0x7FFF.
pub fn is_mandatory_track_property(kind: u64) -> bool {
    (0x4000..=0x7fff).contains(&kind)
}

impl Properties {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// All pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyValuePair> {
        self.pairs.iter()
    }

    /// Adds a pair after any existing pairs of the same type.
    pub fn push(&mut self, kvp: KeyValuePair) {
        let at = self.pairs.partition_point(|p| p.kind <= kvp.kind);
        self.pairs.insert(at, kvp);
    }

    /// Builder form of [`Properties::push`].
    pub fn with(mut self, kvp: KeyValuePair) -> Self {
        self.push(kvp);
        self
    }

    /// Replaces every pair of `kvp`'s type with `kvp`.
    pub fn set(&mut self, kvp: KeyValuePair) {
        self.remove(kvp.kind);
        self.push(kvp);
    }

    /// Removes every pair of type `kind`.
    pub fn remove(&mut self, kind: u64) {
        self.pairs.retain(|p| p.kind != kind);
    }

    /// The first pair of type `kind`.
    pub fn get(&self, kind: u64) -> Option<&KeyValuePair> {
        self.pairs.iter().find(|p| p.kind == kind)
    }

    /// All pairs of type `kind`.
    pub fn get_all(&self, kind: u64) -> impl Iterator<Item = &KeyValuePair> {
        self.pairs.iter().filter(move |p| p.kind == kind)
    }

    /// Integer value of the first pair of an even type.
    pub fn get_int(&self, kind: u64) -> Option<u64> {
        self.get(kind).and_then(|p| p.as_int())
    }

    /// Byte value of the first pair of an odd type.
    pub fn get_bytes(&self, kind: u64) -> Option<&Bytes> {
        self.get(kind).and_then(|p| p.as_bytes())
    }

    /// Types in the Mandatory Track Property range present in this list.
    pub fn mandatory_track_properties(&self) -> impl Iterator<Item = u64> + '_ {
        self.pairs
            .iter()
            .map(|p| p.kind)
            .filter(|k| is_mandatory_track_property(*k))
    }

    /// DEFAULT_PUBLISHER_PRIORITY (default 128). Values above 255 are a
    /// PROTOCOL_VIOLATION.
    pub fn default_publisher_priority(&self) -> Result<u8, DecodeError> {
        match self.get_int(PROP_DEFAULT_PUBLISHER_PRIORITY) {
            None => Ok(128),
            Some(v) => u8::try_from(v)
                .map_err(|_| DecodeError::ProtocolViolation("publisher priority above 255")),
        }
    }

    /// DEFAULT_PUBLISHER_GROUP_ORDER (default ascending).
    pub fn default_group_order(&self) -> Result<crate::params::GroupOrder, DecodeError> {
        match self.get_int(PROP_DEFAULT_PUBLISHER_GROUP_ORDER) {
            None => Ok(crate::params::GroupOrder::Ascending),
            Some(v) => crate::params::GroupOrder::from_u64(v),
        }
    }

    /// DYNAMIC_GROUPS (default false; values above 1 are a PROTOCOL_VIOLATION).
    pub fn dynamic_groups(&self) -> Result<bool, DecodeError> {
        match self.get_int(PROP_DYNAMIC_GROUPS) {
            None | Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(_) => Err(DecodeError::ProtocolViolation("DYNAMIC_GROUPS above 1")),
        }
    }

    /// MAX_CACHE_DURATION in milliseconds.
    pub fn max_cache_duration(&self) -> Option<u64> {
        self.get_int(PROP_MAX_CACHE_DURATION)
    }

    /// OBJECT_DELIVERY_TIMEOUT track property (ms).
    pub fn object_delivery_timeout(&self) -> Option<u64> {
        self.get_int(PROP_OBJECT_DELIVERY_TIMEOUT)
    }

    /// SUBGROUP_DELIVERY_TIMEOUT track property (ms).
    pub fn subgroup_delivery_timeout(&self) -> Option<u64> {
        self.get_int(PROP_SUBGROUP_DELIVERY_TIMEOUT)
    }

    /// PRIOR_GROUP_ID_GAP object property.
    pub fn prior_group_id_gap(&self) -> Option<u64> {
        self.get_int(PROP_PRIOR_GROUP_ID_GAP)
    }

    /// PRIOR_OBJECT_ID_GAP object property.
    pub fn prior_object_id_gap(&self) -> Option<u64> {
        self.get_int(PROP_PRIOR_OBJECT_ID_GAP)
    }

    /// Parses the IMMUTABLE_PROPERTIES pair, if present. A nested list that
    /// cannot be parsed, or that nests another IMMUTABLE_PROPERTIES, makes
    /// the track malformed; that is reported as KEY_VALUE_FORMATTING_ERROR
    /// here and the caller decides (see "Malformed Tracks").
    pub fn immutable(&self) -> Result<Option<Properties>, DecodeError> {
        let Some(raw) = self.get_bytes(PROP_IMMUTABLE_PROPERTIES) else {
            return Ok(None);
        };
        let mut r = Reader::bounded(raw, Eof::KeyValue);
        let inner = Properties::decode_all(&mut r)?;
        if inner.get(PROP_IMMUTABLE_PROPERTIES).is_some() {
            return Err(DecodeError::KeyValueFormatting(
                "immutable properties nest immutable properties",
            ));
        }
        Ok(Some(inner))
    }

    /// Number of bytes [`Encode::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let mut prev = 0;
        let mut total = 0;
        for p in &self.pairs {
            total += p.encoded_len(prev);
            prev = p.kind;
        }
        total
    }

    /// Decodes pairs until `r` is exhausted.
    pub(crate) fn decode_all(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut pairs = Vec::new();
        let mut prev: u64 = 0;
        while !r.is_empty() {
            let delta = r.varint()?;
            let kind = prev
                .checked_add(delta)
                .ok_or(DecodeError::ProtocolViolation(
                    "key-value-pair type overflow",
                ))?;
            prev = kind;
            let value = if kind % 2 == 0 {
                Value::Int(r.varint()?)
            } else {
                let len = r.varint()?;
                if len > MAX_KVP_VALUE_LEN as u64 {
                    return Err(DecodeError::TooLong {
                        what: "key-value-pair value",
                        len,
                        max: MAX_KVP_VALUE_LEN,
                    });
                }
                Value::Bytes(r.bytes_owned(len as usize)?)
            };
            pairs.push(KeyValuePair { kind, value });
        }
        Ok(Self { pairs })
    }

    /// Decodes `Properties Length (vi64), Properties (..)` (Object Properties).
    pub(crate) fn decode_length_prefixed(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.varint()?;
        if len > MAX_OBJECT_PROPERTIES_LEN as u64 {
            return Err(DecodeError::TooLong {
                what: "object properties",
                len,
                max: MAX_OBJECT_PROPERTIES_LEN,
            });
        }
        let mut sub = r.sub(len as usize, Eof::Protocol)?;
        Self::decode_all(&mut sub)
    }

    /// Encodes `Properties Length (vi64), Properties (..)`.
    pub(crate) fn encode_length_prefixed<B: BufMut>(&self, buf: &mut B) {
        varint::encode(self.encoded_len() as u64, buf);
        self.encode(buf);
    }

    /// Decodes a list from exactly `bytes` (for callers holding raw bytes).
    pub fn decode_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, Eof::Protocol);
        Self::decode_all(&mut r)
    }
}

impl Encode for Properties {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        let mut prev = 0;
        for p in &self.pairs {
            varint::encode(p.kind - prev, buf);
            prev = p.kind;
            match &p.value {
                Value::Int(v) => varint::encode(*v, buf),
                Value::Bytes(b) => {
                    varint::encode(b.len() as u64, buf);
                    buf.put_slice(b);
                }
            }
        }
    }
}

impl FromIterator<KeyValuePair> for Properties {
    fn from_iter<T: IntoIterator<Item = KeyValuePair>>(iter: T) -> Self {
        let mut p = Properties::new();
        for kvp in iter {
            p.push(kvp);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let p: Properties = [
            KeyValuePair::bytes(77, &b"traceID:123456"[..]).unwrap(),
            KeyValuePair::int(4, 2_186_796_243).unwrap(),
            KeyValuePair::int(4, 1).unwrap(),
        ]
        .into_iter()
        .collect();
        let bytes = p.to_vec();
        assert_eq!(bytes.len(), p.encoded_len());
        // First type is 4 (delta 4), then 4 again (delta 0), then 77 (delta 73).
        assert_eq!(bytes[0], 4);
        let back = Properties::decode_from(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.get_int(4), Some(2_186_796_243));
        assert_eq!(back.get_all(4).count(), 2);
    }

    #[test]
    fn too_long_value_rejected() {
        let mut buf = Vec::new();
        varint::encode(1, &mut buf);
        varint::encode(65_536, &mut buf);
        buf.extend(std::iter::repeat_n(0u8, 65_536));
        let err = Properties::decode_from(&buf).unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { .. }));
        assert_eq!(err.code(), 0x3);
        assert!(KeyValuePair::bytes(1, vec![0u8; 65_536]).is_err());
    }

    #[test]
    fn type_overflow_rejected() {
        let mut buf = Vec::new();
        varint::encode(u64::MAX - 1, &mut buf); // even type
        varint::encode(0, &mut buf);
        varint::encode(2, &mut buf); // overflows
        varint::encode(0, &mut buf);
        assert!(matches!(
            Properties::decode_from(&buf),
            Err(DecodeError::ProtocolViolation(_))
        ));
    }

    #[test]
    fn parity_enforced_on_construction() {
        assert!(KeyValuePair::int(1, 0).is_err());
        assert!(KeyValuePair::bytes(2, Bytes::new()).is_err());
    }

    #[test]
    fn immutable_nested() {
        let inner: Properties = [KeyValuePair::int(0x3c, 2).unwrap()].into_iter().collect();
        let outer = Properties::new()
            .with(KeyValuePair::bytes(PROP_IMMUTABLE_PROPERTIES, inner.to_vec()).unwrap());
        assert_eq!(outer.immutable().unwrap(), Some(inner));
        let bad_inner = Properties::new().with(KeyValuePair::bytes(0xb, Bytes::new()).unwrap());
        let bad = Properties::new()
            .with(KeyValuePair::bytes(PROP_IMMUTABLE_PROPERTIES, bad_inner.to_vec()).unwrap());
        assert!(bad.immutable().is_err());
    }
}
