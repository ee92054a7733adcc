//! REQUEST_OK, REQUEST_ERROR (with Redirect), GOAWAY.

use bytes::{BufMut, Bytes};

use super::Payload;
use crate::coding::{get_string, put_bytes, Encode, Reader};
use crate::error::{DecodeError, EncodeError, RequestErrorCode};
use crate::kvp::Properties;
use crate::name::{check_full_name, decode_track_name, ReasonPhrase, TrackNamespace};
use crate::params::{check_encodable, Parameters};
use crate::varint;

/// Maximum New Session URI length (GOAWAY). Also applied to the Redirect
/// Connect URI.
// Ambiguity: the draft gives no maximum for the Redirect Connect URI; we
// apply GOAWAY's 8192-byte limit to it as well.
pub const MAX_URI_LEN: usize = 8192;

/// REQUEST_OK (0x7), also PUBLISH_OK, REQUEST_UPDATE_OK, TRACK_STATUS_OK,
/// SUBSCRIBE_NAMESPACE_OK, PUBLISH_NAMESPACE_OK.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestOk {
    /// Parameters.
    pub params: Parameters,
    /// Track Properties (only in TRACK_STATUS_OK; empty otherwise).
    pub properties: Properties,
}

impl Payload for RequestOk {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let params = Parameters::decode_from(r)?;
        let properties = Properties::decode_all(r)?;
        Ok(Self { params, properties })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_encodable(&self.params)?;
        self.params.encode(buf);
        self.properties.encode(buf);
        Ok(())
    }
}

/// Redirect structure carried by REQUEST_ERROR with code REDIRECT.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redirect {
    /// Connect URI (empty = current session's URI).
    pub connect_uri: String,
    /// Track Namespace for the redirected request (empty with an empty
    /// name = same as the original request).
    pub namespace: TrackNamespace,
    /// Track Name for the redirected request.
    pub track_name: Bytes,
}

impl Redirect {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let connect_uri = get_string(r, MAX_URI_LEN, "connect uri")?;
        let namespace = TrackNamespace::decode_from(r)?;
        let track_name = decode_track_name(r, &namespace)?;
        Ok(Self {
            connect_uri,
            namespace,
            track_name,
        })
    }

    fn encode_to<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        if self.connect_uri.len() > MAX_URI_LEN {
            return Err(EncodeError::TooLong {
                what: "connect uri",
                len: self.connect_uri.len(),
                max: MAX_URI_LEN,
            });
        }
        check_full_name(&self.namespace, &self.track_name)?;
        put_bytes(buf, self.connect_uri.as_bytes());
        self.namespace.encode(buf);
        put_bytes(buf, &self.track_name);
        Ok(())
    }
}

/// REQUEST_ERROR (0x5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestError {
    /// Error Code (see [`RequestErrorCode`]).
    pub error_code: u64,
    /// Retry Interval: minimum ms before retrying, plus one (0 = don't retry).
    pub retry_interval: u64,
    /// Error Reason.
    pub reason: ReasonPhrase,
    /// Present exactly when `error_code` is REDIRECT. When encoding a
    /// REDIRECT with `None`, an empty Redirect is written; for other codes
    /// this field is not written.
    pub redirect: Option<Redirect>,
}

impl RequestError {
    /// A non-redirect error.
    pub fn new(code: RequestErrorCode, reason: &str) -> Self {
        Self {
            error_code: code.0,
            retry_interval: 0,
            reason: ReasonPhrase::new(reason),
            redirect: None,
        }
    }

    /// Typed error code.
    pub fn code(&self) -> RequestErrorCode {
        RequestErrorCode(self.error_code)
    }
}

impl Payload for RequestError {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let error_code = r.varint()?;
        let retry_interval = r.varint()?;
        let reason = ReasonPhrase::decode_from(r)?;
        let redirect = if error_code == RequestErrorCode::REDIRECT.0 {
            Some(Redirect::decode_from(r)?)
        } else {
            None
        };
        Ok(Self {
            error_code,
            retry_interval,
            reason,
            redirect,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        varint::encode(self.error_code, buf);
        varint::encode(self.retry_interval, buf);
        self.reason.encode(buf);
        if self.error_code == RequestErrorCode::REDIRECT.0 {
            match &self.redirect {
                Some(r) => r.encode_to(buf)?,
                None => Redirect::default().encode_to(buf)?,
            }
        }
        Ok(())
    }
}

/// GOAWAY (0x10).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Goaway {
    /// New Session URI (empty = reuse the current URI; clients always send
    /// empty).
    pub new_session_uri: String,
    /// Timeout in ms before the sender closes (0 = unspecified).
    pub timeout: u64,
    /// Request ID: present only on the control stream (smallest peer
    /// Request ID not processed).
    pub request_id: Option<u64>,
}

impl Payload for Goaway {
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let new_session_uri = get_string(r, MAX_URI_LEN, "new session uri")?;
        let timeout = r.varint()?;
        // The field is optional and the payload is length-bounded, so it is
        // present exactly when bytes remain.
        let request_id = if r.is_empty() {
            None
        } else {
            Some(r.varint()?)
        };
        Ok(Self {
            new_session_uri,
            timeout,
            request_id,
        })
    }

    fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        if self.new_session_uri.len() > MAX_URI_LEN {
            return Err(EncodeError::TooLong {
                what: "new session uri",
                len: self.new_session_uri.len(),
                max: MAX_URI_LEN,
            });
        }
        put_bytes(buf, self.new_session_uri.as_bytes());
        varint::encode(self.timeout, buf);
        if let Some(id) = self.request_id {
            varint::encode(id, buf);
        }
        Ok(())
    }
}
