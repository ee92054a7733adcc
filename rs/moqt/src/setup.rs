//! SETUP and its Setup Options.
//!
//! Setup Options are Key-Value-Pairs spanning the whole SETUP payload, in a
//! namespace separate from Message Parameters and constant across versions.
//! Unknown options are ignored (but kept, so they survive a round trip);
//! duplicates of unknown options are allowed.

use bytes::{BufMut, Bytes};

use crate::coding::{Encode, Eof, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::kvp::{KeyValuePair, Properties};
use crate::params::AuthToken;

/// Setup Option type codes.
pub mod option {
    /// PATH (client only, native QUIC).
    pub const PATH: u64 = 0x01;
    /// AUTHORIZATION_TOKEN (may repeat).
    pub const AUTHORIZATION_TOKEN: u64 = 0x03;
    /// MAX_AUTH_TOKEN_CACHE_SIZE (default 0).
    pub const MAX_AUTH_TOKEN_CACHE_SIZE: u64 = 0x04;
    /// AUTHORITY (client only, native QUIC).
    pub const AUTHORITY: u64 = 0x05;
    /// MOQT_IMPLEMENTATION.
    pub const MOQT_IMPLEMENTATION: u64 = 0x07;
}

/// The Setup Options of one SETUP message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetupOptions {
    /// PATH: `path-abempty` [`?` query] of the moqt URI.
    pub path: Option<String>,
    /// AUTHORITY: authority of the moqt URI.
    pub authority: Option<String>,
    /// MAX_AUTH_TOKEN_CACHE_SIZE in bytes (absent = 0: no aliases).
    pub max_auth_token_cache_size: Option<u64>,
    /// AUTHORIZATION_TOKEN options, in order.
    pub auth_tokens: Vec<AuthToken>,
    /// MOQT_IMPLEMENTATION (UTF-8; invalid bytes replaced on receipt).
    pub implementation: Option<String>,
    /// Unknown options (ignored, kept for forwarding/round trips).
    pub unknown: Vec<KeyValuePair>,
}

fn check_uri_part(s: &str, err: DecodeError) -> Result<(), DecodeError> {
    // RFC 3986 characters are all visible ASCII.
    if s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(err)
    }
}

impl SetupOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// MAX_AUTH_TOKEN_CACHE_SIZE with the default (0) applied.
    pub fn max_auth_token_cache_size_or_default(&self) -> u64 {
        self.max_auth_token_cache_size.unwrap_or(0)
    }

    /// Builds the Key-Value-Pair list in wire order.
    pub fn to_properties(&self) -> Result<Properties, EncodeError> {
        let mut p = Properties::new();
        if let Some(v) = &self.path {
            p.push(KeyValuePair::bytes(
                option::PATH,
                Bytes::copy_from_slice(v.as_bytes()),
            )?);
        }
        for t in &self.auth_tokens {
            p.push(KeyValuePair::bytes(
                option::AUTHORIZATION_TOKEN,
                t.to_vec(),
            )?);
        }
        if let Some(v) = self.max_auth_token_cache_size {
            p.push(KeyValuePair::int(option::MAX_AUTH_TOKEN_CACHE_SIZE, v)?);
        }
        if let Some(v) = &self.authority {
            p.push(KeyValuePair::bytes(
                option::AUTHORITY,
                Bytes::copy_from_slice(v.as_bytes()),
            )?);
        }
        if let Some(v) = &self.implementation {
            p.push(KeyValuePair::bytes(
                option::MOQT_IMPLEMENTATION,
                Bytes::copy_from_slice(v.as_bytes()),
            )?);
        }
        for kvp in &self.unknown {
            if is_known(kvp.kind()) {
                return Err(EncodeError::Invalid("known setup option in `unknown`"));
            }
            p.push(kvp.clone());
        }
        Ok(p)
    }

    /// Interprets a decoded Key-Value-Pair list.
    pub fn from_properties(p: &Properties) -> Result<Self, DecodeError> {
        let mut o = SetupOptions::default();
        for kvp in p.iter() {
            let dup = || DecodeError::DuplicateParameter(kvp.kind());
            match (kvp.kind(), kvp.value()) {
                (option::PATH, crate::kvp::Value::Bytes(b)) => {
                    // Ambiguity: the draft does not say whether a repeated
                    // known option is an error; we follow "Senders MUST NOT
                    // repeat" and reject it.
                    if o.path.is_some() {
                        return Err(dup());
                    }
                    let s =
                        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::MalformedPath)?;
                    check_uri_part(&s, DecodeError::MalformedPath)?;
                    o.path = Some(s);
                }
                (option::AUTHORITY, crate::kvp::Value::Bytes(b)) => {
                    if o.authority.is_some() {
                        return Err(dup());
                    }
                    let s = String::from_utf8(b.to_vec())
                        .map_err(|_| DecodeError::MalformedAuthority)?;
                    check_uri_part(&s, DecodeError::MalformedAuthority)?;
                    o.authority = Some(s);
                }
                (option::AUTHORIZATION_TOKEN, crate::kvp::Value::Bytes(b)) => {
                    o.auth_tokens.push(AuthToken::decode_from(b)?);
                }
                (option::MAX_AUTH_TOKEN_CACHE_SIZE, crate::kvp::Value::Int(v)) => {
                    if o.max_auth_token_cache_size.is_some() {
                        return Err(dup());
                    }
                    o.max_auth_token_cache_size = Some(*v);
                }
                (option::MOQT_IMPLEMENTATION, crate::kvp::Value::Bytes(b)) => {
                    if o.implementation.is_some() {
                        return Err(dup());
                    }
                    o.implementation = Some(String::from_utf8_lossy(b).into_owned());
                }
                _ => o.unknown.push(kvp.clone()),
            }
        }
        Ok(o)
    }
}

fn is_known(kind: u64) -> bool {
    matches!(
        kind,
        option::PATH
            | option::AUTHORIZATION_TOKEN
            | option::MAX_AUTH_TOKEN_CACHE_SIZE
            | option::AUTHORITY
            | option::MOQT_IMPLEMENTATION
    )
}

/// SETUP (type 0x2F00): the first message on each endpoint's control stream.
///
/// The control stream's stream type *is* the SETUP message type: a control
/// stream starts directly with a full SETUP message (`0x2F00`, length,
/// options), decoded with [`crate::ControlMessage::decode`].
// Ambiguity: the stream-type table lists 0x2F00 = SETUP while the SETUP
// message itself begins with Type 0x2F00. We read the message type as the
// stream type (no second 0x2F00 varint), as the session-init text says the
// control stream begins with a SETUP message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Setup {
    /// The options.
    pub options: SetupOptions,
}

impl Setup {
    pub(crate) fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let props = Properties::decode_all(r)?;
        Ok(Setup {
            options: SetupOptions::from_properties(&props)?,
        })
    }

    pub(crate) fn encode_payload<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.options.to_properties()?.encode(buf);
        Ok(())
    }

    /// Checks a SETUP received by a server: DELETE and USE_ALIAS tokens are a
    /// PROTOCOL_VIOLATION there, as are PATH/AUTHORITY from a server (checked
    /// by the client with `from_server = true`; the draft's code for that is
    /// INVALID_PATH/INVALID_AUTHORITY, which the session layer applies).
    pub fn check_tokens_for_server(&self) -> Result<(), DecodeError> {
        for t in &self.options.auth_tokens {
            if matches!(t, AuthToken::Delete { .. } | AuthToken::UseAlias { .. }) {
                return Err(DecodeError::ProtocolViolation(
                    "DELETE/USE_ALIAS token in SETUP",
                ));
            }
        }
        Ok(())
    }
}

impl SetupOptions {
    /// Decodes options from exactly `bytes` (a SETUP payload).
    pub fn decode_from(bytes: &[u8]) -> Result<SetupOptions, DecodeError> {
        let mut r = Reader::bounded(bytes, Eof::Protocol);
        let p = Properties::decode_all(&mut r)?;
        SetupOptions::from_properties(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip() {
        let o = SetupOptions {
            path: Some("/live?x=1".into()),
            authority: Some("relay.example:4443".into()),
            max_auth_token_cache_size: Some(4096),
            auth_tokens: vec![AuthToken::bearer(&b"key"[..])],
            implementation: Some("clutchcall/0.1".into()),
            unknown: vec![
                KeyValuePair::int(0x9e, 1).unwrap(),
                KeyValuePair::bytes(0x9d, &b"grease"[..]).unwrap(),
                KeyValuePair::bytes(0x9d, &b"again"[..]).unwrap(),
            ],
        };
        let bytes = o.to_properties().unwrap().to_vec();
        let back = SetupOptions::decode_from(&bytes).unwrap();
        assert_eq!(back.path, o.path);
        assert_eq!(back.authority, o.authority);
        assert_eq!(back.max_auth_token_cache_size, Some(4096));
        assert_eq!(back.auth_tokens, o.auth_tokens);
        assert_eq!(back.implementation, o.implementation);
        // Unknown options are kept (sorted by type) including duplicates.
        assert_eq!(back.unknown.len(), 3);
    }

    #[test]
    fn duplicate_known_rejected_unknown_allowed() {
        let p = Properties::new()
            .with(KeyValuePair::bytes(option::PATH, &b"/a"[..]).unwrap())
            .with(KeyValuePair::bytes(option::PATH, &b"/b"[..]).unwrap());
        assert!(SetupOptions::from_properties(&p).is_err());
        let p = Properties::new()
            .with(KeyValuePair::int(0x100, 1).unwrap())
            .with(KeyValuePair::int(0x100, 2).unwrap());
        assert_eq!(SetupOptions::from_properties(&p).unwrap().unknown.len(), 2);
    }

    #[test]
    fn malformed_path_code() {
        let p = Properties::new().with(KeyValuePair::bytes(option::PATH, &b"/a b"[..]).unwrap());
        assert_eq!(SetupOptions::from_properties(&p).unwrap_err().code(), 0x9);
        let p =
            Properties::new().with(KeyValuePair::bytes(option::AUTHORITY, &[0xffu8][..]).unwrap());
        assert_eq!(SetupOptions::from_properties(&p).unwrap_err().code(), 0x1a);
    }

    #[test]
    fn server_token_check() {
        let s = Setup {
            options: SetupOptions {
                auth_tokens: vec![AuthToken::UseAlias { alias: 1 }],
                ..Default::default()
            },
        };
        assert!(s.check_tokens_for_server().is_err());
    }
}
