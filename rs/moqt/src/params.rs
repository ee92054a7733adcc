//! Message Parameters (draft-18 "Message Parameters") and the structures
//! they carry: Token (AUTHORIZATION TOKEN), Subscription Filter, Group Order.
//!
//! Wire form: `Number of Parameters (vi64)`, then per parameter
//! `Type Delta (vi64), Value (..)` where the value encoding is fixed by the
//! type (uint8, varint, Location, length-prefixed). Types are ascending;
//! every parameter must be known (unknown → PROTOCOL_VIOLATION); only
//! AUTHORIZATION TOKEN may repeat.

use bytes::{BufMut, Bytes};

use crate::coding::{put_bytes, Encode, Eof, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::name::{Location, TrackNamespace};
use crate::varint;

/// Message Parameter type codes.
pub mod kind {
    /// OBJECT_DELIVERY_TIMEOUT (varint, ms).
    pub const OBJECT_DELIVERY_TIMEOUT: u64 = 0x02;
    /// AUTHORIZATION_TOKEN (length-prefixed Token; may repeat).
    pub const AUTHORIZATION_TOKEN: u64 = 0x03;
    /// RENDEZVOUS_TIMEOUT (varint, ms).
    pub const RENDEZVOUS_TIMEOUT: u64 = 0x04;
    /// SUBGROUP_DELIVERY_TIMEOUT (varint, ms).
    pub const SUBGROUP_DELIVERY_TIMEOUT: u64 = 0x06;
    /// EXPIRES (varint, ms).
    pub const EXPIRES: u64 = 0x08;
    /// LARGEST_OBJECT (Location).
    pub const LARGEST_OBJECT: u64 = 0x09;
    /// FILL_TIMEOUT (varint, ms).
    pub const FILL_TIMEOUT: u64 = 0x0a;
    /// FORWARD (uint8, 0 or 1).
    pub const FORWARD: u64 = 0x10;
    /// SUBSCRIBER_PRIORITY (uint8).
    pub const SUBSCRIBER_PRIORITY: u64 = 0x20;
    /// SUBSCRIPTION_FILTER (length-prefixed Subscription Filter).
    pub const SUBSCRIPTION_FILTER: u64 = 0x21;
    /// GROUP_ORDER (uint8, 1 or 2).
    pub const GROUP_ORDER: u64 = 0x22;
    /// NEW_GROUP_REQUEST (varint).
    pub const NEW_GROUP_REQUEST: u64 = 0x32;
    /// TRACK_NAMESPACE_PREFIX (Track Namespace).
    pub const TRACK_NAMESPACE_PREFIX: u64 = 0x34;
}

/// Default SUBSCRIBER_PRIORITY when the parameter is absent.
pub const DEFAULT_SUBSCRIBER_PRIORITY: u8 = 128;

/// Group Order: ascending (0x1) or descending (0x2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GroupOrder {
    /// 0x1.
    #[default]
    Ascending,
    /// 0x2.
    Descending,
}

impl GroupOrder {
    /// Wire value.
    pub fn to_u64(self) -> u64 {
        match self {
            GroupOrder::Ascending => 1,
            GroupOrder::Descending => 2,
        }
    }

    /// Parses a wire value; anything but 1 or 2 is a PROTOCOL_VIOLATION.
    pub fn from_u64(v: u64) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(GroupOrder::Ascending),
            2 => Ok(GroupOrder::Descending),
            _ => Err(DecodeError::ProtocolViolation("invalid group order")),
        }
    }
}

/// The Token structure carried by AUTHORIZATION TOKEN (parameter and setup
/// option).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuthToken {
    /// Alias Type DELETE (0x0): retire `alias`.
    Delete {
        /// Token Alias.
        alias: u64,
    },
    /// Alias Type REGISTER (0x1): associate `alias` with the token and use it.
    Register {
        /// Token Alias.
        alias: u64,
        /// Token Type (IANA "MOQT Auth Token Type"; 0 = out-of-band).
        token_type: u64,
        /// Token Value.
        value: Bytes,
    },
    /// Alias Type USE_ALIAS (0x2): use the token registered as `alias`.
    UseAlias {
        /// Token Alias.
        alias: u64,
    },
    /// Alias Type USE_VALUE (0x3): use this token, no alias.
    UseValue {
        /// Token Type.
        token_type: u64,
        /// Token Value.
        value: Bytes,
    },
}

impl AuthToken {
    /// A plain token (USE_VALUE) with Token Type 0 (out-of-band type).
    pub fn bearer(value: impl Into<Bytes>) -> Self {
        AuthToken::UseValue {
            token_type: 0,
            value: value.into(),
        }
    }

    /// The Alias Type code.
    pub fn alias_type(&self) -> u64 {
        match self {
            AuthToken::Delete { .. } => 0,
            AuthToken::Register { .. } => 1,
            AuthToken::UseAlias { .. } => 2,
            AuthToken::UseValue { .. } => 3,
        }
    }

    /// The token value, when carried inline.
    pub fn value(&self) -> Option<&Bytes> {
        match self {
            AuthToken::Register { value, .. } | AuthToken::UseValue { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Size this token occupies in the peer's cache when registered
    /// (16 bytes + Token Value length).
    pub fn cache_size(&self) -> u64 {
        16 + self.value().map_or(0, |v| v.len() as u64)
    }

    /// Decodes a Token from exactly `bytes`. Any failure is a
    /// KEY_VALUE_FORMATTING_ERROR.
    pub fn decode_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, Eof::KeyValue);
        let alias_type = r.varint()?;
        let tok = match alias_type {
            0 => AuthToken::Delete { alias: r.varint()? },
            1 => {
                let alias = r.varint()?;
                let token_type = r.varint()?;
                let value = Bytes::copy_from_slice(r.rest());
                AuthToken::Register {
                    alias,
                    token_type,
                    value,
                }
            }
            2 => AuthToken::UseAlias { alias: r.varint()? },
            3 => {
                let token_type = r.varint()?;
                let value = Bytes::copy_from_slice(r.rest());
                AuthToken::UseValue { token_type, value }
            }
            _ => return Err(DecodeError::KeyValueFormatting("unknown token alias type")),
        };
        if !r.is_empty() {
            return Err(DecodeError::KeyValueFormatting(
                "trailing bytes after token",
            ));
        }
        Ok(tok)
    }
}

impl Encode for AuthToken {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        varint::encode(self.alias_type(), buf);
        match self {
            AuthToken::Delete { alias } | AuthToken::UseAlias { alias } => {
                varint::encode(*alias, buf)
            }
            AuthToken::Register {
                alias,
                token_type,
                value,
            } => {
                varint::encode(*alias, buf);
                varint::encode(*token_type, buf);
                buf.put_slice(value);
            }
            AuthToken::UseValue { token_type, value } => {
                varint::encode(*token_type, buf);
                buf.put_slice(value);
            }
        }
    }
}

/// A Subscription Filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionFilter {
    /// 0x1: start at `{Largest.Group + 1, 0}`, open ended.
    NextGroupStart,
    /// 0x2: start at `{Largest.Group, Largest.Object + 1}`, open ended.
    LargestObject,
    /// 0x3: explicit start, open ended.
    AbsoluteStart(Location),
    /// 0x4: explicit start and end group (`start.group + end_group_delta`).
    AbsoluteRange {
        /// Start Location.
        start: Location,
        /// End Group Delta (0 = rest of the start group).
        end_group_delta: u64,
    },
}

impl SubscriptionFilter {
    /// Filter Type code.
    pub fn filter_type(&self) -> u64 {
        match self {
            SubscriptionFilter::NextGroupStart => 0x1,
            SubscriptionFilter::LargestObject => 0x2,
            SubscriptionFilter::AbsoluteStart(_) => 0x3,
            SubscriptionFilter::AbsoluteRange { .. } => 0x4,
        }
    }

    /// The explicit start, for absolute filters.
    pub fn start(&self) -> Option<Location> {
        match self {
            SubscriptionFilter::AbsoluteStart(s)
            | SubscriptionFilter::AbsoluteRange { start: s, .. } => Some(*s),
            _ => None,
        }
    }

    /// The last group delivered, for AbsoluteRange.
    pub fn end_group(&self) -> Option<u64> {
        match self {
            SubscriptionFilter::AbsoluteRange {
                start,
                end_group_delta,
            } => start.group.checked_add(*end_group_delta),
            _ => None,
        }
    }

    /// Decodes from exactly `bytes` (the length-prefixed parameter value).
    pub fn decode_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::bounded(bytes, Eof::KeyValue);
        let f = match r.varint()? {
            0x1 => SubscriptionFilter::NextGroupStart,
            0x2 => SubscriptionFilter::LargestObject,
            0x3 => SubscriptionFilter::AbsoluteStart(Location::decode_from(&mut r)?),
            0x4 => {
                let start = Location::decode_from(&mut r)?;
                let end_group_delta = r.varint()?;
                if start.group.checked_add(end_group_delta).is_none() {
                    return Err(DecodeError::ProtocolViolation("filter end group overflow"));
                }
                SubscriptionFilter::AbsoluteRange {
                    start,
                    end_group_delta,
                }
            }
            _ => return Err(DecodeError::ProtocolViolation("unknown filter type")),
        };
        if !r.is_empty() {
            return Err(DecodeError::KeyValueFormatting(
                "trailing bytes after filter",
            ));
        }
        Ok(f)
    }
}

impl Encode for SubscriptionFilter {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        varint::encode(self.filter_type(), buf);
        match self {
            SubscriptionFilter::NextGroupStart | SubscriptionFilter::LargestObject => {}
            SubscriptionFilter::AbsoluteStart(s) => s.encode(buf),
            SubscriptionFilter::AbsoluteRange {
                start,
                end_group_delta,
            } => {
                start.encode(buf);
                varint::encode(*end_group_delta, buf);
            }
        }
    }
}

/// The Message Parameters of one control message, typed.
///
/// Build with the `with_*` methods, read with the getters. Encoding always
/// writes ascending types with delta encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Parameters {
    object_delivery_timeout: Option<u64>,
    auth_tokens: Vec<AuthToken>,
    rendezvous_timeout: Option<u64>,
    subgroup_delivery_timeout: Option<u64>,
    expires: Option<u64>,
    largest_object: Option<Location>,
    fill_timeout: Option<u64>,
    forward: Option<bool>,
    subscriber_priority: Option<u8>,
    subscription_filter: Option<SubscriptionFilter>,
    group_order: Option<GroupOrder>,
    new_group_request: Option<u64>,
    track_namespace_prefix: Option<TrackNamespace>,
}

macro_rules! accessors {
    ($($(#[$doc:meta])* $field:ident, $set:ident, $with:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $field(&self) -> Option<$ty> {
                self.$field.clone()
            }

            $(#[$doc])*
            /// Sets the parameter (`None` removes it).
            pub fn $set(&mut self, v: impl Into<Option<$ty>>) {
                self.$field = v.into();
            }

            $(#[$doc])*
            /// Builder form.
            pub fn $with(mut self, v: $ty) -> Self {
                self.$field = Some(v);
                self
            }
        )*
    };
}

impl Parameters {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    accessors! {
        /// OBJECT_DELIVERY_TIMEOUT (ms).
        object_delivery_timeout, set_object_delivery_timeout, with_object_delivery_timeout: u64;
        /// RENDEZVOUS_TIMEOUT (ms).
        rendezvous_timeout, set_rendezvous_timeout, with_rendezvous_timeout: u64;
        /// SUBGROUP_DELIVERY_TIMEOUT (ms).
        subgroup_delivery_timeout, set_subgroup_delivery_timeout, with_subgroup_delivery_timeout: u64;
        /// EXPIRES (ms; 0 = no expiry).
        expires, set_expires, with_expires: u64;
        /// LARGEST_OBJECT.
        largest_object, set_largest_object, with_largest_object: Location;
        /// FILL_TIMEOUT (ms).
        fill_timeout, set_fill_timeout, with_fill_timeout: u64;
        /// FORWARD (absent = 1, except in REQUEST_UPDATE where absent = unchanged).
        forward, set_forward, with_forward: bool;
        /// SUBSCRIBER_PRIORITY (absent = 128 in SUBSCRIBE/PUBLISH_OK/FETCH).
        subscriber_priority, set_subscriber_priority, with_subscriber_priority: u8;
        /// SUBSCRIPTION_FILTER (absent = unfiltered).
        subscription_filter, set_subscription_filter, with_subscription_filter: SubscriptionFilter;
        /// GROUP_ORDER.
        group_order, set_group_order, with_group_order: GroupOrder;
        /// NEW_GROUP_REQUEST.
        new_group_request, set_new_group_request, with_new_group_request: u64;
        /// TRACK_NAMESPACE_PREFIX.
        track_namespace_prefix, set_track_namespace_prefix, with_track_namespace_prefix: TrackNamespace;
    }

    /// The first AUTHORIZATION TOKEN, if any.
    pub fn auth_token(&self) -> Option<&AuthToken> {
        self.auth_tokens.first()
    }

    /// All AUTHORIZATION TOKENs (the parameter may repeat).
    pub fn auth_tokens(&self) -> &[AuthToken] {
        &self.auth_tokens
    }

    /// Appends an AUTHORIZATION TOKEN.
    pub fn add_auth_token(&mut self, t: AuthToken) {
        self.auth_tokens.push(t);
    }

    /// Builder form of [`Parameters::add_auth_token`].
    pub fn with_auth_token(mut self, t: AuthToken) -> Self {
        self.auth_tokens.push(t);
        self
    }

    /// Removes all AUTHORIZATION TOKENs.
    pub fn clear_auth_tokens(&mut self) {
        self.auth_tokens.clear();
    }

    /// FORWARD with the draft default (true) applied.
    pub fn forward_or_default(&self) -> bool {
        self.forward.unwrap_or(true)
    }

    /// SUBSCRIBER_PRIORITY with the draft default (128) applied.
    pub fn subscriber_priority_or_default(&self) -> u8 {
        self.subscriber_priority
            .unwrap_or(DEFAULT_SUBSCRIBER_PRIORITY)
    }

    /// True when no parameter is present.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Number of parameters on the wire.
    pub fn count(&self) -> usize {
        self.types().count()
    }

    /// Types present, ascending, one entry per wire parameter.
    pub fn types(&self) -> impl Iterator<Item = u64> + '_ {
        let opt = |present: bool, k: u64| present.then_some(k);
        [opt(
            self.object_delivery_timeout.is_some(),
            kind::OBJECT_DELIVERY_TIMEOUT,
        )]
        .into_iter()
        .flatten()
        .chain(std::iter::repeat_n(
            kind::AUTHORIZATION_TOKEN,
            self.auth_tokens.len(),
        ))
        .chain(
            [
                opt(self.rendezvous_timeout.is_some(), kind::RENDEZVOUS_TIMEOUT),
                opt(
                    self.subgroup_delivery_timeout.is_some(),
                    kind::SUBGROUP_DELIVERY_TIMEOUT,
                ),
                opt(self.expires.is_some(), kind::EXPIRES),
                opt(self.largest_object.is_some(), kind::LARGEST_OBJECT),
                opt(self.fill_timeout.is_some(), kind::FILL_TIMEOUT),
                opt(self.forward.is_some(), kind::FORWARD),
                opt(
                    self.subscriber_priority.is_some(),
                    kind::SUBSCRIBER_PRIORITY,
                ),
                opt(
                    self.subscription_filter.is_some(),
                    kind::SUBSCRIPTION_FILTER,
                ),
                opt(self.group_order.is_some(), kind::GROUP_ORDER),
                opt(self.new_group_request.is_some(), kind::NEW_GROUP_REQUEST),
                opt(
                    self.track_namespace_prefix.is_some(),
                    kind::TRACK_NAMESPACE_PREFIX,
                ),
            ]
            .into_iter()
            .flatten(),
        )
    }

    /// Checks every present parameter against the message types the draft
    /// allows it in (PROTOCOL_VIOLATION otherwise). `message_type` is the
    /// control message type code; REQUEST_OK (and PUBLISH_OK) accept the
    /// union of what their aliases (PUBLISH_OK, REQUEST_UPDATE_OK,
    /// TRACK_STATUS_OK, ...) allow.
    pub fn check_allowed_in(&self, message_type: u64) -> Result<(), DecodeError> {
        for t in self.types() {
            if !param_allowed(t, message_type) {
                return Err(DecodeError::ParameterNotAllowed {
                    param: t,
                    message: message_type,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = r.varint()?;
        let mut p = Parameters::default();
        let mut prev: u64 = 0;
        for i in 0..count {
            let delta = r.varint()?;
            let t = prev
                .checked_add(delta)
                .ok_or(DecodeError::ProtocolViolation("parameter type overflow"))?;
            if i > 0 && delta == 0 && t != kind::AUTHORIZATION_TOKEN {
                return Err(DecodeError::DuplicateParameter(t));
            }
            prev = t;
            match t {
                kind::OBJECT_DELIVERY_TIMEOUT => p.object_delivery_timeout = Some(r.varint()?),
                kind::AUTHORIZATION_TOKEN => {
                    let len = r.length()?;
                    let raw = r.bytes(len)?;
                    p.auth_tokens.push(AuthToken::decode_from(raw)?);
                }
                kind::RENDEZVOUS_TIMEOUT => p.rendezvous_timeout = Some(r.varint()?),
                kind::SUBGROUP_DELIVERY_TIMEOUT => p.subgroup_delivery_timeout = Some(r.varint()?),
                kind::EXPIRES => p.expires = Some(r.varint()?),
                kind::LARGEST_OBJECT => p.largest_object = Some(Location::decode_from(r)?),
                kind::FILL_TIMEOUT => p.fill_timeout = Some(r.varint()?),
                kind::FORWARD => {
                    p.forward = Some(match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(DecodeError::ProtocolViolation("FORWARD not 0 or 1")),
                    })
                }
                kind::SUBSCRIBER_PRIORITY => p.subscriber_priority = Some(r.u8()?),
                kind::SUBSCRIPTION_FILTER => {
                    let len = r.length()?;
                    let raw = r.bytes(len)?;
                    p.subscription_filter = Some(SubscriptionFilter::decode_from(raw)?);
                }
                kind::GROUP_ORDER => p.group_order = Some(GroupOrder::from_u64(r.u8()?.into())?),
                kind::NEW_GROUP_REQUEST => p.new_group_request = Some(r.varint()?),
                kind::TRACK_NAMESPACE_PREFIX => {
                    p.track_namespace_prefix = Some(TrackNamespace::decode_from(r)?)
                }
                other => return Err(DecodeError::UnknownParameter(other)),
            }
        }
        Ok(p)
    }
}

impl Encode for Parameters {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        varint::encode(self.count() as u64, buf);
        let mut prev = 0u64;
        let mut head = |t: u64, buf: &mut B| {
            varint::encode(t - prev, buf);
            prev = t;
        };
        if let Some(v) = self.object_delivery_timeout {
            head(kind::OBJECT_DELIVERY_TIMEOUT, buf);
            varint::encode(v, buf);
        }
        for t in &self.auth_tokens {
            head(kind::AUTHORIZATION_TOKEN, buf);
            put_bytes(buf, &t.to_vec());
        }
        if let Some(v) = self.rendezvous_timeout {
            head(kind::RENDEZVOUS_TIMEOUT, buf);
            varint::encode(v, buf);
        }
        if let Some(v) = self.subgroup_delivery_timeout {
            head(kind::SUBGROUP_DELIVERY_TIMEOUT, buf);
            varint::encode(v, buf);
        }
        if let Some(v) = self.expires {
            head(kind::EXPIRES, buf);
            varint::encode(v, buf);
        }
        if let Some(v) = self.largest_object {
            head(kind::LARGEST_OBJECT, buf);
            v.encode(buf);
        }
        if let Some(v) = self.fill_timeout {
            head(kind::FILL_TIMEOUT, buf);
            varint::encode(v, buf);
        }
        if let Some(v) = self.forward {
            head(kind::FORWARD, buf);
            buf.put_u8(u8::from(v));
        }
        if let Some(v) = self.subscriber_priority {
            head(kind::SUBSCRIBER_PRIORITY, buf);
            buf.put_u8(v);
        }
        if let Some(v) = &self.subscription_filter {
            head(kind::SUBSCRIPTION_FILTER, buf);
            put_bytes(buf, &v.to_vec());
        }
        if let Some(v) = self.group_order {
            head(kind::GROUP_ORDER, buf);
            buf.put_u8(v.to_u64() as u8);
        }
        if let Some(v) = self.new_group_request {
            head(kind::NEW_GROUP_REQUEST, buf);
            varint::encode(v, buf);
        }
        if let Some(v) = &self.track_namespace_prefix {
            head(kind::TRACK_NAMESPACE_PREFIX, buf);
            v.encode(buf);
        }
    }
}

/// Encodes a parameter list, failing on values the wire cannot carry.
pub(crate) fn check_encodable(p: &Parameters) -> Result<(), EncodeError> {
    if let Some(SubscriptionFilter::AbsoluteRange {
        start,
        end_group_delta,
    }) = p.subscription_filter
    {
        if start.group.checked_add(end_group_delta).is_none() {
            return Err(EncodeError::Invalid("filter end group overflows"));
        }
    }
    Ok(())
}

/// The parameter scope table: which message types may carry which
/// parameter, from each parameter's definition in draft-18.
pub fn param_allowed(param: u64, message_type: u64) -> bool {
    use crate::message::kind as m;
    // PUBLISH_OK (0x1E) and REQUEST_OK (0x07) share the REQUEST_OK format;
    // REQUEST_OK also stands for REQUEST_UPDATE_OK / TRACK_STATUS_OK / ...
    let ok = message_type == m::REQUEST_OK || message_type == m::PUBLISH_OK;
    let allowed: &[u64] = match param {
        kind::AUTHORIZATION_TOKEN => &[
            m::PUBLISH,
            m::SUBSCRIBE,
            m::REQUEST_UPDATE,
            m::SUBSCRIBE_NAMESPACE,
            m::SUBSCRIBE_TRACKS,
            m::PUBLISH_NAMESPACE,
            m::TRACK_STATUS,
            m::FETCH,
        ],
        kind::SUBGROUP_DELIVERY_TIMEOUT | kind::OBJECT_DELIVERY_TIMEOUT => {
            return ok || matches!(message_type, m::SUBSCRIBE | m::REQUEST_UPDATE)
        }
        kind::FILL_TIMEOUT => &[m::FETCH],
        kind::RENDEZVOUS_TIMEOUT => &[m::SUBSCRIBE],
        kind::SUBSCRIBER_PRIORITY => {
            return ok || matches!(message_type, m::SUBSCRIBE | m::FETCH | m::REQUEST_UPDATE)
        }
        kind::GROUP_ORDER => return ok || matches!(message_type, m::SUBSCRIBE | m::FETCH),
        kind::SUBSCRIPTION_FILTER => {
            return ok || matches!(message_type, m::SUBSCRIBE | m::REQUEST_UPDATE)
        }
        kind::EXPIRES => return ok || matches!(message_type, m::SUBSCRIBE_OK | m::PUBLISH),
        kind::LARGEST_OBJECT => return ok || matches!(message_type, m::SUBSCRIBE_OK | m::PUBLISH),
        kind::FORWARD => {
            return ok
                || matches!(
                    message_type,
                    m::SUBSCRIBE | m::REQUEST_UPDATE | m::PUBLISH | m::SUBSCRIBE_TRACKS
                )
        }
        kind::NEW_GROUP_REQUEST => {
            return ok || matches!(message_type, m::SUBSCRIBE | m::REQUEST_UPDATE)
        }
        kind::TRACK_NAMESPACE_PREFIX => &[m::REQUEST_UPDATE],
        _ => &[],
    };
    allowed.contains(&message_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(p: &Parameters) -> Parameters {
        let bytes = p.to_vec();
        let mut r = Reader::bounded(&bytes, Eof::Protocol);
        let back = Parameters::decode_from(&mut r).unwrap();
        assert!(r.is_empty());
        back
    }

    fn full() -> Parameters {
        Parameters::new()
            .with_object_delivery_timeout(1000)
            .with_auth_token(AuthToken::bearer(&b"jwt"[..]))
            .with_auth_token(AuthToken::Register {
                alias: 7,
                token_type: 1,
                value: Bytes::from_static(b"tok"),
            })
            .with_auth_token(AuthToken::UseAlias { alias: 7 })
            .with_auth_token(AuthToken::Delete { alias: 7 })
            .with_rendezvous_timeout(5)
            .with_subgroup_delivery_timeout(2000)
            .with_expires(30_000)
            .with_largest_object(Location::new(5, 6))
            .with_fill_timeout(0)
            .with_forward(false)
            .with_subscriber_priority(3)
            .with_subscription_filter(SubscriptionFilter::AbsoluteRange {
                start: Location::new(1, 2),
                end_group_delta: 3,
            })
            .with_group_order(GroupOrder::Descending)
            .with_new_group_request(0)
            .with_track_namespace_prefix(TrackNamespace::from_strs(["a", "b"]).unwrap())
    }

    #[test]
    fn all_parameters_round_trip() {
        let p = full();
        assert_eq!(p.count(), 16);
        assert_eq!(round_trip(&p), p);
        for f in [
            SubscriptionFilter::NextGroupStart,
            SubscriptionFilter::LargestObject,
            SubscriptionFilter::AbsoluteStart(Location::new(9, 0)),
        ] {
            let p = Parameters::new().with_subscription_filter(f);
            assert_eq!(round_trip(&p).subscription_filter(), Some(f));
        }
    }

    #[test]
    fn wire_format() {
        let p = Parameters::new()
            .with_forward(true)
            .with_subscriber_priority(7)
            .with_group_order(GroupOrder::Ascending);
        // count 3; FORWARD delta 0x10 value 1; PRIORITY delta 0x10 value 7;
        // GROUP_ORDER delta 0x02 value 1.
        assert_eq!(p.to_vec(), vec![3, 0x10, 1, 0x10, 7, 0x02, 1]);
    }

    fn decode(bytes: &[u8]) -> Result<Parameters, DecodeError> {
        let mut r = Reader::bounded(bytes, Eof::Protocol);
        Parameters::decode_from(&mut r)
    }

    #[test]
    fn malformed() {
        // Unknown parameter type 0x12.
        assert!(matches!(
            decode(&[1, 0x12, 0]),
            Err(DecodeError::UnknownParameter(0x12))
        ));
        // Duplicate FORWARD.
        assert!(matches!(
            decode(&[2, 0x10, 1, 0, 1]),
            Err(DecodeError::DuplicateParameter(0x10))
        ));
        // FORWARD = 2.
        assert!(matches!(
            decode(&[1, 0x10, 2]),
            Err(DecodeError::ProtocolViolation(_))
        ));
        // GROUP_ORDER = 0.
        assert!(decode(&[1, 0x22, 0]).is_err());
        // Unknown filter type.
        assert!(matches!(
            decode(&[1, 0x21, 1, 9]),
            Err(DecodeError::ProtocolViolation(_))
        ));
        // Filter with trailing bytes.
        assert!(matches!(
            decode(&[1, 0x21, 2, 1, 0]),
            Err(DecodeError::KeyValueFormatting(_))
        ));
        // Token with unknown alias type.
        let e = decode(&[1, 0x03, 1, 9]).unwrap_err();
        assert_eq!(e.code(), 0x6);
        // Token DELETE with trailing bytes.
        assert_eq!(decode(&[1, 0x03, 3, 0, 1, 1]).unwrap_err().code(), 0x6);
        // Truncated value inside the message.
        assert!(matches!(
            decode(&[1, 0x02]),
            Err(DecodeError::LengthMismatch)
        ));
        // Type overflow.
        let mut b = vec![2];
        varint::encode(u64::MAX, &mut b);
        b.extend_from_slice(&[0]);
        b.extend_from_slice(&[1, 0]);
        assert!(decode(&b).is_err());
        // AbsoluteRange overflow.
        let mut f = Vec::new();
        SubscriptionFilter::AbsoluteStart(Location::new(u64::MAX, 0)).encode(&mut f);
        f[0] = 4;
        f.push(1);
        let mut b = vec![1, 0x21];
        put_bytes(&mut b, &f);
        assert!(matches!(decode(&b), Err(DecodeError::ProtocolViolation(_))));
    }

    #[test]
    fn scope() {
        use crate::message::kind as m;
        let p = Parameters::new().with_expires(1);
        assert!(p.check_allowed_in(m::SUBSCRIBE_OK).is_ok());
        assert!(p.check_allowed_in(m::SUBSCRIBE).is_err());
        let p = Parameters::new().with_auth_token(AuthToken::bearer(Bytes::new()));
        assert!(p.check_allowed_in(m::SUBSCRIBE).is_ok());
        assert!(p.check_allowed_in(m::SUBSCRIBE_OK).is_err());
        assert!(full().check_allowed_in(m::FETCH_OK).is_err());
        assert!(Parameters::new().check_allowed_in(m::FETCH_OK).is_ok());
    }
}
