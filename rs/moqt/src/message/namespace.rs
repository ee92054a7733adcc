//! PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE, SUBSCRIBE_TRACKS, NAMESPACE,
//! NAMESPACE_DONE, PUBLISH_BLOCKED.

use bytes::{BufMut, Bytes};

use super::Payload;
use crate::coding::{put_bytes, Encode, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::name::{check_full_name, decode_track_name, TrackNamespace};
use crate::params::Parameters;
use crate::varint;

macro_rules! ns_request {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            /// Request ID.
            pub request_id: u64,
            /// Track Namespace (prefix).
            pub $field: TrackNamespace,
            /// Parameters.
            pub params: Parameters,
        }

        impl Payload for $name {
            fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self {
                    request_id: r.varint()?,
                    $field: TrackNamespace::decode_from(r)?,
                    params: Parameters::decode_from(r)?,
                })
            }

            fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
                varint::encode(self.request_id, buf);
                self.$field.encode(buf);
                self.params.encode(buf);
                Ok(())
            }
        }
    };
}

ns_request!(
    /// PUBLISH_NAMESPACE (0x6).
    PublishNamespace,
    namespace
);
ns_request!(
    /// SUBSCRIBE_NAMESPACE (0x50).
    SubscribeNamespace,
    prefix
);
ns_request!(
    /// SUBSCRIBE_TRACKS (0x51).
    SubscribeTracks,
    prefix
);

macro_rules! ns_suffix {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            /// Track Namespace Suffix (after the subscription's prefix).
            pub suffix: TrackNamespace,
        }

        impl Payload for $name {
            fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self {
                    suffix: TrackNamespace::decode_from(r)?,
                })
            }

            fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
                self.suffix.encode(buf);
                Ok(())
            }
        }
    };
}

ns_suffix!(
    /// NAMESPACE (0x8).
    Namespace
);
ns_suffix!(
    /// NAMESPACE_DONE (0xE).
    NamespaceDone
);

/// PUBLISH_BLOCKED (0xF).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishBlocked {
    /// Track Namespace Suffix.
    pub suffix: TrackNamespace,
    /// Track Name.
    pub track_name: Bytes,
}

impl Payload for PublishBlocked {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let suffix = TrackNamespace::decode_from(r)?;
        let track_name = decode_track_name(r, &suffix)?;
        Ok(Self { suffix, track_name })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_full_name(&self.suffix, &self.track_name)?;
        self.suffix.encode(buf);
        put_bytes(buf, &self.track_name);
        Ok(())
    }
}
