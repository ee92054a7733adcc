use bytes::Bytes;

use super::*;
use crate::kvp::{KeyValuePair, Properties};
use crate::name::{Location, ReasonPhrase, TrackNamespace};
use crate::params::{AuthToken, GroupOrder, Parameters, SubscriptionFilter};
use crate::setup::SetupOptions;
use crate::RequestErrorCode;

fn ns(parts: &[&str]) -> TrackNamespace {
    TrackNamespace::from_strs(parts.iter().copied()).unwrap()
}

fn track_props() -> Properties {
    [
        KeyValuePair::int(crate::kvp::PROP_DEFAULT_PUBLISHER_PRIORITY, 10).unwrap(),
        KeyValuePair::int(crate::kvp::PROP_DYNAMIC_GROUPS, 1).unwrap(),
        KeyValuePair::bytes(0x3801, &b"app"[..]).unwrap(),
    ]
    .into_iter()
    .collect()
}

/// One instance of every control message (several for the variants).
pub(crate) fn sample_messages() -> Vec<ControlMessage> {
    let sub_params = Parameters::new()
        .with_auth_token(AuthToken::bearer(&b"jwt.token"[..]))
        .with_subscriber_priority(1)
        .with_group_order(GroupOrder::Ascending)
        .with_subscription_filter(SubscriptionFilter::LargestObject)
        .with_forward(true)
        .with_object_delivery_timeout(500)
        .with_subgroup_delivery_timeout(600)
        .with_rendezvous_timeout(1000)
        .with_new_group_request(0);
    vec![
        Setup {
            options: SetupOptions {
                path: Some("/moq".into()),
                authority: Some("localhost:4443".into()),
                max_auth_token_cache_size: Some(1024),
                auth_tokens: vec![AuthToken::Register {
                    alias: 1,
                    token_type: 0,
                    value: Bytes::from_static(b"k"),
                }],
                implementation: Some("clutchcall".into()),
                unknown: vec![KeyValuePair::int(0x9e, 5).unwrap()],
            },
        }
        .into(),
        Setup::default().into(),
        Goaway {
            new_session_uri: "moqt://other.example/live".into(),
            timeout: 5000,
            request_id: Some(4),
        }
        .into(),
        Goaway::default().into(),
        Subscribe {
            request_id: 0,
            namespace: ns(&["stream", "org_1", "lv_abc"]),
            track_name: Bytes::from_static(b"video"),
            params: sub_params,
        }
        .into(),
        SubscribeOk {
            track_alias: 7,
            params: Parameters::new()
                .with_expires(60_000)
                .with_largest_object(Location::new(3, 9)),
            properties: track_props(),
        }
        .into(),
        Publish {
            request_id: 2,
            namespace: ns(&["stream", "org_1", "lv_abc"]),
            track_name: Bytes::from_static(b".catalog"),
            track_alias: 1,
            params: Parameters::new()
                .with_auth_token(AuthToken::UseAlias { alias: 1 })
                .with_forward(false)
                .with_largest_object(Location::new(0, 0))
                .with_expires(0),
            properties: track_props(),
        }
        .into(),
        ControlMessage::PublishOk(RequestOk {
            params: Parameters::new()
                .with_forward(true)
                .with_subscriber_priority(9)
                .with_subscription_filter(SubscriptionFilter::NextGroupStart),
            properties: Properties::new(),
        }),
        PublishDone {
            status_code: crate::PublishDoneCode::TRACK_ENDED.0,
            stream_count: PublishDone::UNKNOWN_STREAM_COUNT,
            reason: ReasonPhrase::new("bye"),
        }
        .into(),
        Fetch {
            request_id: 4,
            fetch_type: FetchType::Standalone {
                namespace: ns(&["a"]),
                track_name: Bytes::from_static(b"t"),
                start: Location::new(1, 0),
                end: Location::new(5, 0),
            },
            params: Parameters::new()
                .with_fill_timeout(100)
                .with_group_order(GroupOrder::Descending)
                .with_subscriber_priority(2),
        }
        .into(),
        Fetch {
            request_id: 6,
            fetch_type: FetchType::RelativeJoining {
                joining_request_id: 0,
                joining_start: 2,
            },
            params: Parameters::new(),
        }
        .into(),
        Fetch {
            request_id: 8,
            fetch_type: FetchType::AbsoluteJoining {
                joining_request_id: 0,
                joining_start: 10,
            },
            params: Parameters::new(),
        }
        .into(),
        FetchOk {
            end_of_track: true,
            end_location: Location::new(5, 1),
            params: Parameters::new(),
            properties: track_props(),
        }
        .into(),
        TrackStatus {
            request_id: 10,
            namespace: ns(&["a", "b"]),
            track_name: Bytes::new(),
            params: Parameters::new().with_auth_token(AuthToken::bearer(&b"x"[..])),
        }
        .into(),
        PublishNamespace {
            request_id: 12,
            namespace: ns(&["stream", "org_1"]),
            params: Parameters::new().with_auth_token(AuthToken::Delete { alias: 3 }),
        }
        .into(),
        SubscribeNamespace {
            request_id: 14,
            prefix: ns(&["stream"]),
            params: Parameters::new(),
        }
        .into(),
        SubscribeTracks {
            request_id: 16,
            prefix: TrackNamespace::empty(),
            params: Parameters::new().with_forward(false),
        }
        .into(),
        Namespace {
            suffix: ns(&["org_1", "lv_x"]),
        }
        .into(),
        NamespaceDone {
            suffix: ns(&["org_1", "lv_x"]),
        }
        .into(),
        PublishBlocked {
            suffix: ns(&["lv_x"]),
            track_name: Bytes::from_static(b"audio"),
        }
        .into(),
        RequestUpdate {
            request_id: 18,
            params: Parameters::new()
                .with_forward(true)
                .with_subscription_filter(SubscriptionFilter::AbsoluteRange {
                    start: Location::new(4, 0),
                    end_group_delta: 10,
                })
                .with_track_namespace_prefix(ns(&["x"])),
        }
        .into(),
        RequestOk {
            params: Parameters::new().with_largest_object(Location::new(1, 1)),
            properties: track_props(),
        }
        .into(),
        RequestError::new(RequestErrorCode::DOES_NOT_EXIST, "no such track").into(),
        RequestError {
            error_code: RequestErrorCode::REDIRECT.0,
            retry_interval: 1001,
            reason: ReasonPhrase::new("moved"),
            redirect: Some(Redirect {
                connect_uri: "moqt://edge2.example/".into(),
                namespace: ns(&["stream", "o"]),
                track_name: Bytes::from_static(b"v"),
            }),
        }
        .into(),
    ]
}

#[test]
fn every_message_round_trips() {
    for m in sample_messages() {
        let bytes = m.to_vec().unwrap();
        assert_eq!(ControlMessage::frame_len(&bytes).unwrap(), bytes.len());
        let mut b = &bytes[..];
        let back = ControlMessage::decode(&mut b).unwrap_or_else(|e| panic!("{}: {e}", m.name()));
        assert!(b.is_empty(), "{}", m.name());
        assert_eq!(back, m, "{}", m.name());
        // Stable re-encoding.
        assert_eq!(back.to_vec().unwrap(), bytes, "{}", m.name());
    }
}

#[test]
fn truncation_is_short_and_consumes_nothing() {
    for m in sample_messages() {
        let bytes = m.to_vec().unwrap();
        for cut in 0..bytes.len() {
            let mut b = &bytes[..cut];
            let r = ControlMessage::decode(&mut b);
            assert_eq!(r, Err(DecodeError::Short), "{} cut {cut}", m.name());
            assert_eq!(b.len(), cut);
        }
    }
}

#[test]
fn wrong_lengths_are_protocol_violations() {
    for m in sample_messages() {
        let bytes = m.to_vec().unwrap();
        let (_, tlen) = crate::varint::peek(&bytes).unwrap();
        let len = u16::from_be_bytes([bytes[tlen], bytes[tlen + 1]]);
        // Longer length with an extra byte of junk.
        let mut longer = bytes.clone();
        longer[tlen..tlen + 2].copy_from_slice(&(len + 1).to_be_bytes());
        longer.push(0xff);
        let r = ControlMessage::decode(&mut &longer[..]);
        // GOAWAY's optional trailing Request ID and trailing Track
        // Properties can absorb bytes; everything else must fail.
        if let Err(e) = &r {
            assert_eq!(e.code(), 0x3, "{} {e}", m.name());
        }
        if len > 0 {
            let mut shorter = bytes[..bytes.len() - 1].to_vec();
            shorter[tlen..tlen + 2].copy_from_slice(&(len - 1).to_be_bytes());
            let r = ControlMessage::decode(&mut &shorter[..]);
            if let Err(e) = &r {
                assert!(!e.is_short(), "{}", m.name());
            }
        }
    }
    // A fixed-layout message: PUBLISH_DONE with a trailing byte.
    let m: ControlMessage = PublishDone::default().into();
    let mut bytes = m.to_vec().unwrap();
    bytes[2] += 1;
    bytes.push(0);
    assert_eq!(
        ControlMessage::decode(&mut &bytes[..]),
        Err(DecodeError::LengthMismatch)
    );
    // ...and with a length one short.
    let mut bytes = m.to_vec().unwrap();
    bytes[2] -= 1;
    bytes.pop();
    assert_eq!(
        ControlMessage::decode(&mut &bytes[..]),
        Err(DecodeError::LengthMismatch)
    );
}

#[test]
fn unknown_type_rejected() {
    let bytes = [0x01, 0x00, 0x00];
    assert_eq!(
        ControlMessage::decode(&mut &bytes[..]),
        Err(DecodeError::UnknownMessage(1))
    );
    // Old CLIENT_SETUP (0x20) is reserved.
    let bytes = [0x20, 0x00, 0x00];
    assert!(ControlMessage::decode(&mut &bytes[..]).is_err());
}

#[test]
fn reason_phrase_limit() {
    // PUBLISH_DONE with a 1025-byte reason.
    let mut payload = vec![0, 0];
    crate::varint::encode(1025, &mut payload);
    payload.extend(std::iter::repeat_n(b'a', 1025));
    let mut bytes = vec![0x0b];
    bytes.extend((payload.len() as u16).to_be_bytes());
    bytes.extend(payload);
    let e = ControlMessage::decode(&mut &bytes[..]).unwrap_err();
    assert!(matches!(e, DecodeError::TooLong { .. }));
    assert_eq!(e.code(), 0x3);
}

#[test]
fn payload_too_long_rejected_on_encode() {
    let m: ControlMessage = Publish {
        request_id: 0,
        namespace: ns(&["a"]),
        track_name: Bytes::from_static(b"t"),
        track_alias: 0,
        params: Parameters::new(),
        properties: (0..2u64)
            .map(|i| KeyValuePair::bytes(2 * i + 1, vec![0u8; 40_000]).unwrap())
            .collect(),
    }
    .into();
    assert!(matches!(m.to_vec(), Err(EncodeError::MessageTooLong(_))));
}

#[test]
fn wire_format_subscribe() {
    let m: ControlMessage = Subscribe {
        request_id: 2,
        namespace: ns(&["ab"]),
        track_name: Bytes::from_static(b"v"),
        params: Parameters::new().with_subscriber_priority(5),
    }
    .into();
    assert_eq!(
        m.to_vec().unwrap(),
        vec![0x03, 0x00, 0x0a, 0x02, 0x01, 0x02, b'a', b'b', 0x01, b'v', 0x01, 0x20, 0x05]
    );
    let setup: ControlMessage = Setup::default().into();
    assert_eq!(setup.to_vec().unwrap(), vec![0xaf, 0x00, 0x00, 0x00]);
}

#[test]
fn parameter_scope_enforced() {
    // EXPIRES in SUBSCRIBE is not allowed.
    let m: ControlMessage = Subscribe {
        request_id: 0,
        namespace: ns(&["a"]),
        track_name: Bytes::new(),
        params: Parameters::new().with_expires(1),
    }
    .into();
    let bytes = m.to_vec().unwrap();
    assert!(matches!(
        ControlMessage::decode(&mut &bytes[..]),
        Err(DecodeError::ParameterNotAllowed { .. })
    ));
}

#[test]
fn publish_ok_alias_rejects_properties() {
    let m = ControlMessage::PublishOk(RequestOk {
        params: Parameters::new(),
        properties: track_props(),
    });
    let bytes = m.to_vec().unwrap();
    assert!(ControlMessage::decode(&mut &bytes[..]).is_err());
}

#[test]
fn goaway_limits() {
    let m: ControlMessage = Goaway {
        new_session_uri: "x".repeat(8193),
        timeout: 0,
        request_id: None,
    }
    .into();
    assert!(m.to_vec().is_err());
    let mut payload = Vec::new();
    crate::varint::encode(8193, &mut payload);
    payload.extend(std::iter::repeat_n(b'x', 8193));
    payload.push(0);
    let mut bytes = vec![0x10];
    bytes.extend((payload.len() as u16).to_be_bytes());
    bytes.extend(payload);
    assert!(matches!(
        ControlMessage::decode(&mut &bytes[..]),
        Err(DecodeError::TooLong { .. })
    ));
}

#[test]
fn fetch_type_and_end_of_track_checked() {
    // FETCH with fetch type 4.
    let bytes = [0x16, 0x00, 0x03, 0x00, 0x04, 0x00];
    assert!(matches!(
        ControlMessage::decode(&mut &bytes[..]),
        Err(DecodeError::ProtocolViolation(_))
    ));
    // FETCH_OK with End Of Track = 2.
    let bytes = [0x18, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00];
    assert!(ControlMessage::decode(&mut &bytes[..]).is_err());
}

#[test]
fn segmented_buffer_decodes() {
    use bytes::Buf;
    for m in sample_messages() {
        let bytes = m.to_vec().unwrap();
        let mid = bytes.len() / 2;
        let mut chain = (&bytes[..mid]).chain(&bytes[mid..]);
        assert_eq!(ControlMessage::decode(&mut chain).unwrap(), m);
        assert_eq!(chain.remaining(), 0);
    }
}
