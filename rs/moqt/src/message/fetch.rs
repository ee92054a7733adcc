//! FETCH and FETCH_OK.

use bytes::{BufMut, Bytes};

use super::Payload;
use crate::coding::{put_bytes, Encode, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::kvp::Properties;
use crate::name::{check_full_name, decode_track_name, Location, TrackNamespace};
use crate::params::{check_encodable, Parameters};
use crate::varint;

/// The Fetch Type and its structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchType {
    /// 0x1: Standalone Fetch.
    Standalone {
        /// Track Namespace.
        namespace: TrackNamespace,
        /// Track Name.
        track_name: Bytes,
        /// Start Location.
        start: Location,
        /// End Location, plus 1 (Object 0 = the whole End group).
        end: Location,
    },
    /// 0x2: Relative Joining Fetch: start at `{Joining.Group - joining_start, 0}`.
    RelativeJoining {
        /// Request ID of the subscription joined.
        joining_request_id: u64,
        /// Groups before the joining location.
        joining_start: u64,
    },
    /// 0x3: Absolute Joining Fetch: start at `{joining_start, 0}`.
    AbsoluteJoining {
        /// Request ID of the subscription joined.
        joining_request_id: u64,
        /// Start group.
        joining_start: u64,
    },
}

impl FetchType {
    /// Fetch Type code.
    pub fn code(&self) -> u64 {
        match self {
            FetchType::Standalone { .. } => 0x1,
            FetchType::RelativeJoining { .. } => 0x2,
            FetchType::AbsoluteJoining { .. } => 0x3,
        }
    }
}

/// FETCH (0x16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// Request ID.
    pub request_id: u64,
    /// Standalone or joining.
    pub fetch_type: FetchType,
    /// Parameters.
    pub params: Parameters,
}

impl Payload for Fetch {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let request_id = r.varint()?;
        let fetch_type = match r.varint()? {
            0x1 => {
                let namespace = TrackNamespace::decode_from(r)?;
                let track_name = decode_track_name(r, &namespace)?;
                let start = Location::decode_from(r)?;
                let end = Location::decode_from(r)?;
                FetchType::Standalone {
                    namespace,
                    track_name,
                    start,
                    end,
                }
            }
            t @ (0x2 | 0x3) => {
                let joining_request_id = r.varint()?;
                let joining_start = r.varint()?;
                if t == 0x2 {
                    FetchType::RelativeJoining {
                        joining_request_id,
                        joining_start,
                    }
                } else {
                    FetchType::AbsoluteJoining {
                        joining_request_id,
                        joining_start,
                    }
                }
            }
            _ => return Err(DecodeError::ProtocolViolation("invalid fetch type")),
        };
        let params = Parameters::decode_from(r)?;
        Ok(Self {
            request_id,
            fetch_type,
            params,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_encodable(&self.params)?;
        varint::encode(self.request_id, buf);
        varint::encode(self.fetch_type.code(), buf);
        match &self.fetch_type {
            FetchType::Standalone {
                namespace,
                track_name,
                start,
                end,
            } => {
                check_full_name(namespace, track_name)?;
                namespace.encode(buf);
                put_bytes(buf, track_name);
                start.encode(buf);
                end.encode(buf);
            }
            FetchType::RelativeJoining {
                joining_request_id,
                joining_start,
            }
            | FetchType::AbsoluteJoining {
                joining_request_id,
                joining_start,
            } => {
                varint::encode(*joining_request_id, buf);
                varint::encode(*joining_start, buf);
            }
        }
        self.params.encode(buf);
        Ok(())
    }
}

/// FETCH_OK (0x18).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchOk {
    /// All Objects of the Track are published and End Location is final.
    pub end_of_track: bool,
    /// End of the range covered (last Object plus 1; Object 0 = whole group).
    pub end_location: Location,
    /// Parameters.
    pub params: Parameters,
    /// Track Properties.
    pub properties: Properties,
}

impl Payload for FetchOk {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // Ambiguity: End Of Track is an 8-bit field defined as 0 or 1; we
        // reject other values with PROTOCOL_VIOLATION.
        let end_of_track = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::ProtocolViolation("End Of Track not 0 or 1")),
        };
        let end_location = Location::decode_from(r)?;
        let params = Parameters::decode_from(r)?;
        let properties = Properties::decode_all(r)?;
        Ok(Self {
            end_of_track,
            end_location,
            params,
            properties,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_encodable(&self.params)?;
        buf.put_u8(u8::from(self.end_of_track));
        self.end_location.encode(buf);
        self.params.encode(buf);
        self.properties.encode(buf);
        Ok(())
    }
}
