//! SUBSCRIBE, SUBSCRIBE_OK, TRACK_STATUS, PUBLISH, PUBLISH_DONE,
//! REQUEST_UPDATE.

use bytes::{BufMut, Bytes};

use super::Payload;
use crate::coding::{put_bytes, Encode, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::kvp::Properties;
use crate::name::{check_full_name, decode_track_name, ReasonPhrase, TrackNamespace};
use crate::params::{check_encodable, Parameters};
use crate::varint;

/// SUBSCRIBE (0x3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscribe {
    /// Request ID.
    pub request_id: u64,
    /// Track Namespace.
    pub namespace: TrackNamespace,
    /// Track Name.
    pub track_name: Bytes,
    /// Parameters.
    pub params: Parameters,
}

fn decode_named(r: &mut Reader<'_>) -> Result<(u64, TrackNamespace, Bytes), DecodeError> {
    let request_id = r.varint()?;
    let namespace = TrackNamespace::decode_from(r)?;
    let track_name = decode_track_name(r, &namespace)?;
    Ok((request_id, namespace, track_name))
}

fn encode_named<B: BufMut>(
    buf: &mut B,
    request_id: u64,
    namespace: &TrackNamespace,
    track_name: &[u8],
) -> Result<(), EncodeError> {
    check_full_name(namespace, track_name)?;
    varint::encode(request_id, buf);
    namespace.encode(buf);
    put_bytes(buf, track_name);
    Ok(())
}

impl Payload for Subscribe {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (request_id, namespace, track_name) = decode_named(r)?;
        let params = Parameters::decode_from(r)?;
        Ok(Self {
            request_id,
            namespace,
            track_name,
            params,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_encodable(&self.params)?;
        encode_named(buf, self.request_id, &self.namespace, &self.track_name)?;
        self.params.encode(buf);
        Ok(())
    }
}

/// TRACK_STATUS (0xD): same format as SUBSCRIBE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackStatus {
    /// Request ID.
    pub request_id: u64,
    /// Track Namespace.
    pub namespace: TrackNamespace,
    /// Track Name.
    pub track_name: Bytes,
    /// Parameters.
    pub params: Parameters,
}

impl Payload for TrackStatus {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let s = Subscribe::decode_payload(r)?;
        Ok(Self {
            request_id: s.request_id,
            namespace: s.namespace,
            track_name: s.track_name,
            params: s.params,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_encodable(&self.params)?;
        encode_named(buf, self.request_id, &self.namespace, &self.track_name)?;
        self.params.encode(buf);
        Ok(())
    }
}

/// SUBSCRIBE_OK (0x4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscribeOk {
    /// Track Alias used on data streams and datagrams.
    pub track_alias: u64,
    /// Parameters (EXPIRES, LARGEST_OBJECT).
    pub params: Parameters,
    /// Track Properties (the rest of the message).
    pub properties: Properties,
}

impl Payload for SubscribeOk {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let track_alias = r.varint()?;
        let params = Parameters::decode_from(r)?;
        let properties = Properties::decode_all(r)?;
        Ok(Self {
            track_alias,
            params,
            properties,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_encodable(&self.params)?;
        varint::encode(self.track_alias, buf);
        self.params.encode(buf);
        self.properties.encode(buf);
        Ok(())
    }
}

/// PUBLISH (0x1D).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Publish {
    /// Request ID.
    pub request_id: u64,
    /// Track Namespace.
    pub namespace: TrackNamespace,
    /// Track Name.
    pub track_name: Bytes,
    /// Track Alias.
    pub track_alias: u64,
    /// Parameters.
    pub params: Parameters,
    /// Track Properties.
    pub properties: Properties,
}

impl Payload for Publish {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (request_id, namespace, track_name) = decode_named(r)?;
        let track_alias = r.varint()?;
        let params = Parameters::decode_from(r)?;
        let properties = Properties::decode_all(r)?;
        Ok(Self {
            request_id,
            namespace,
            track_name,
            track_alias,
            params,
            properties,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_encodable(&self.params)?;
        encode_named(buf, self.request_id, &self.namespace, &self.track_name)?;
        varint::encode(self.track_alias, buf);
        self.params.encode(buf);
        self.properties.encode(buf);
        Ok(())
    }
}

/// PUBLISH_DONE (0xB).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishDone {
    /// Status Code (see [`crate::PublishDoneCode`]).
    pub status_code: u64,
    /// Number of data streams opened for the subscription
    /// ([`PublishDone::UNKNOWN_STREAM_COUNT`] if unknown).
    pub stream_count: u64,
    /// Error Reason.
    pub reason: ReasonPhrase,
}

impl PublishDone {
    /// Stream Count value meaning "unknown" (2^62 - 1).
    pub const UNKNOWN_STREAM_COUNT: u64 = (1 << 62) - 1;
}

impl Payload for PublishDone {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status_code: r.varint()?,
            stream_count: r.varint()?,
            reason: ReasonPhrase::decode_from(r)?,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        varint::encode(self.status_code, buf);
        varint::encode(self.stream_count, buf);
        self.reason.encode(buf);
        Ok(())
    }
}

/// REQUEST_UPDATE (0x2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestUpdate {
    /// Request ID (a new one; the update applies to the request on the
    /// same bidirectional stream).
    pub request_id: u64,
    /// Parameters to change.
    pub params: Parameters,
}

impl Payload for RequestUpdate {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            request_id: r.varint()?,
            params: Parameters::decode_from(r)?,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_encodable(&self.params)?;
        varint::encode(self.request_id, buf);
        self.params.encode(buf);
        Ok(())
    }
}
