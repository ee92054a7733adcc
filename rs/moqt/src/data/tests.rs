use bytes::{Bytes, BytesMut};

use super::*;
use crate::coding::{Decode, Encode};
use crate::kvp::KeyValuePair;
use crate::name::Location;
use crate::params::GroupOrder;

fn props() -> Properties {
    [
        KeyValuePair::int(4, 2_186_796_243).unwrap(),
        KeyValuePair::bytes(77, &b"traceID:123456"[..]).unwrap(),
    ]
    .into_iter()
    .collect()
}

/// Every valid subgroup header shape.
pub(crate) fn sample_subgroup_headers() -> Vec<SubgroupHeader> {
    let mut out = Vec::new();
    for sub in [
        SubgroupId::Zero,
        SubgroupId::FirstObject,
        SubgroupId::Explicit(9),
    ] {
        for prio in [None, Some(3)] {
            for bits in 0..8u8 {
                out.push(SubgroupHeader {
                    track_alias: 2,
                    group_id: 100,
                    subgroup_id: sub,
                    publisher_priority: prio,
                    has_properties: bits & 1 != 0,
                    end_of_group: bits & 2 != 0,
                    first_object: bits & 4 != 0,
                });
            }
        }
    }
    out
}

#[test]
fn spec_example_subgroup_stream() {
    // SUBGROUP_HEADER type 0x14, alias 2, group 0, subgroup 0, priority 0,
    // then objects 0 "abcd" and 1 "efgh".
    let wire = [
        0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x04, b'a', b'b', b'c', b'd', 0x00, 0x04, b'e', b'f',
        b'g', b'h',
    ];
    let mut b = &wire[..];
    let h = SubgroupHeader::decode(&mut b).unwrap();
    assert_eq!(h.track_alias, 2);
    assert_eq!(h.subgroup_id, SubgroupId::Explicit(0));
    assert_eq!(h.publisher_priority, Some(0));
    assert!(!h.has_properties && !h.end_of_group && !h.first_object);
    assert_eq!(h.type_value(), 0x14);
    let mut d = SubgroupObjectDecoder::new(&h);
    let (o0, p0) = d.decode_object(&mut b).unwrap();
    assert_eq!((o0.object_id, &p0[..]), (0, &b"abcd"[..]));
    let (o1, p1) = d.decode_object(&mut b).unwrap();
    assert_eq!((o1.object_id, &p1[..]), (1, &b"efgh"[..]));
    assert!(b.is_empty());

    // Re-encode and compare.
    let mut out = Vec::new();
    h.encode(&mut out);
    let mut e = SubgroupObjectEncoder::new(&h);
    e.encode_object(0, &Properties::new(), b"abcd", &mut out)
        .unwrap();
    e.encode_object(1, &Properties::new(), b"efgh", &mut out)
        .unwrap();
    assert_eq!(out, wire);
}

#[test]
fn spec_example_type_0x35() {
    let h = SubgroupHeader {
        track_alias: 2,
        group_id: 0,
        subgroup_id: SubgroupId::Explicit(0),
        publisher_priority: None,
        has_properties: true,
        end_of_group: false,
        first_object: false,
    };
    assert_eq!(h.type_value(), 0x35);
    let mut out = Vec::new();
    h.encode(&mut out);
    let mut e = SubgroupObjectEncoder::new(&h);
    e.encode_object(0, &props(), b"abcd", &mut out).unwrap();
    e.encode_object(1, &Properties::new(), b"efgh", &mut out)
        .unwrap();
    let mut b = &out[..];
    let h2 = SubgroupHeader::decode(&mut b).unwrap();
    assert_eq!(h2, h);
    let mut d = SubgroupObjectDecoder::new(&h2);
    let (o, p) = d.decode_object(&mut b).unwrap();
    assert_eq!(o.properties, props());
    assert_eq!(&p[..], b"abcd");
    let (o, _) = d.decode_object(&mut b).unwrap();
    assert_eq!(o.object_id, 1);
    assert!(o.properties.is_empty());
}

/// Encodes a subgroup stream with a mix of objects for `h`.
pub(crate) fn sample_subgroup_stream(h: &SubgroupHeader) -> (Vec<u8>, Vec<ObjectHeader>) {
    let mut out = Vec::new();
    h.encode(&mut out);
    let mut e = SubgroupObjectEncoder::new(h);
    let mut objs = Vec::new();
    for (i, id) in [5u64, 6, 9, 200].into_iter().enumerate() {
        let last = i == 3;
        let oh = ObjectHeader {
            object_id: id,
            properties: if h.has_properties && i == 1 {
                props()
            } else {
                Properties::new()
            },
            payload_len: if last { 0 } else { i as u64 },
            status: if last {
                ObjectStatus::EndOfGroup
            } else {
                ObjectStatus::Normal
            },
        };
        e.encode(&oh, &mut out).unwrap();
        out.extend(std::iter::repeat_n(0xaa, oh.payload_len as usize));
        objs.push(oh);
    }
    (out, objs)
}

#[test]
fn every_subgroup_variant_round_trips() {
    for h in sample_subgroup_headers() {
        let (wire, objs) = sample_subgroup_stream(&h);
        let (st, _) = StreamType::peek(&wire).unwrap();
        assert_eq!(st, StreamType::Subgroup(h.type_value()));
        let mut b = &wire[..];
        let h2 = SubgroupHeader::decode(&mut b).unwrap();
        assert_eq!(h2, h);
        let mut d = SubgroupObjectDecoder::new(&h2);
        for o in &objs {
            let got = d.decode(&mut b).unwrap();
            assert_eq!(&got, o);
            bytes::Buf::advance(&mut b, got.payload_len as usize);
        }
        assert!(b.is_empty());
        let expect = match h.subgroup_id {
            SubgroupId::Zero => Some(0),
            SubgroupId::FirstObject => Some(5),
            SubgroupId::Explicit(x) => Some(x),
        };
        assert_eq!(d.subgroup_id(), expect);
    }
}

#[test]
fn subgroup_truncation_is_short() {
    for h in sample_subgroup_headers() {
        let (wire, _) = sample_subgroup_stream(&h);
        // Feed byte by byte into a BytesMut, decoding as far as possible.
        let mut buf = BytesMut::new();
        let mut header = None;
        let mut dec = None;
        let mut pending_payload = 0usize;
        let mut count = 0;
        for &byte in &wire {
            buf.extend_from_slice(&[byte]);
            loop {
                if pending_payload > 0 {
                    let n = pending_payload.min(buf.len());
                    bytes::Buf::advance(&mut buf, n);
                    pending_payload -= n;
                    if pending_payload > 0 {
                        break;
                    }
                }
                if header.is_none() {
                    match SubgroupHeader::decode(&mut buf) {
                        Ok(h2) => {
                            dec = Some(SubgroupObjectDecoder::new(&h2));
                            header = Some(h2);
                        }
                        Err(DecodeError::Short) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                let Some(d) = dec.as_mut() else { break };
                if buf.is_empty() {
                    break;
                }
                match d.decode(&mut buf) {
                    Ok(o) => {
                        count += 1;
                        pending_payload = o.payload_len as usize;
                    }
                    Err(DecodeError::Short) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(count, 4);
        assert!(buf.is_empty());
    }
}

#[test]
fn invalid_subgroup_types() {
    for t in [0x16u8, 0x17, 0x1e, 0x1f, 0x36, 0x7f] {
        assert!(StreamType::from_u64(t.into()).is_err(), "{t:#x}");
        let wire = [t, 0, 0, 0, 0];
        assert!(SubgroupHeader::decode(&mut &wire[..]).is_err());
    }
    for t in [0x00u64, 0x01, 0x0f, 0x20, 0x80, 0x90, 0x2f01] {
        assert!(StreamType::from_u64(t).is_err(), "{t:#x}");
    }
    assert_eq!(StreamType::from_u64(0x05), Ok(StreamType::Fetch));
    assert_eq!(StreamType::from_u64(0x2f00), Ok(StreamType::Control));
    assert_eq!(StreamType::from_u64(0x132b_3e28), Ok(StreamType::Padding));
    assert_eq!(StreamType::from_u64(0x7d), Ok(StreamType::Subgroup(0x7d)));
    let mut pad = Vec::new();
    encode_padding_stream_header(&mut pad);
    assert_eq!(StreamType::decode(&mut &pad[..]), Ok(StreamType::Padding));
}

#[test]
fn subgroup_object_errors() {
    let h = SubgroupHeader {
        has_properties: true,
        ..Default::default()
    };
    // Status object with properties.
    let mut d = SubgroupObjectDecoder::new(&h);
    let wire = [0x00, 0x02, 0x04, 0x01, 0x00, 0x03];
    assert!(matches!(
        d.decode(&mut &wire[..]),
        Err(DecodeError::ProtocolViolation(_))
    ));
    // Invalid status.
    let wire = [0x00, 0x00, 0x00, 0x01];
    assert!(d.decode(&mut &wire[..]).is_err());
    // Object id overflow.
    let h = SubgroupHeader::default();
    let mut d = SubgroupObjectDecoder::new(&h);
    let mut wire = Vec::new();
    crate::varint::encode(u64::MAX, &mut wire);
    wire.extend([0x01, 0xaa]);
    let (o, _) = d.decode_object(&mut &wire[..]).unwrap();
    assert_eq!(o.object_id, u64::MAX);
    assert!(d.decode(&mut &[0x00u8, 0x01, 0xaa][..]).is_err());
    // Encoder rejects non-increasing ids and stray properties.
    let mut e = SubgroupObjectEncoder::new(&h);
    let mut out = Vec::new();
    e.encode_object(3, &Properties::new(), b"x", &mut out)
        .unwrap();
    assert!(e
        .encode_object(3, &Properties::new(), b"x", &mut out)
        .is_err());
    assert!(e.encode_object(4, &props(), b"x", &mut out).is_err());
}

pub(crate) fn sample_fetch_items() -> Vec<(FetchItem, Bytes)> {
    let o = |g, s, id, p, pr: Properties, payload: &'static [u8]| {
        (
            FetchItem::Object(FetchObjectHeader {
                group_id: g,
                subgroup_id: s,
                object_id: id,
                publisher_priority: p,
                properties: pr,
                payload_len: payload.len() as u64,
            }),
            Bytes::from_static(payload),
        )
    };
    vec![
        o(1, Some(0), 0, 10, Properties::new(), b"a"),
        o(1, Some(0), 1, 10, Properties::new(), b"bb"),
        o(1, Some(0), 5, 11, props(), b""),
        o(1, Some(1), 6, 11, Properties::new(), b"c"),
        o(1, Some(2), 7, 11, Properties::new(), b"c"),
        o(1, Some(7), 8, 11, Properties::new(), b"c"),
        o(1, None, 9, 11, Properties::new(), b"dgram"),
        (
            FetchItem::EndOfRange {
                kind: EndOfRange::NonExistent,
                location: Location::new(1, 20),
            },
            Bytes::new(),
        ),
        o(1, Some(7), 21, 11, Properties::new(), b"x"),
        (
            FetchItem::EndOfRange {
                kind: EndOfRange::Unknown,
                location: Location::new(3, 4),
            },
            Bytes::new(),
        ),
        o(4, Some(0), 0, 0, Properties::new(), b"y"),
        o(4, Some(0), 1, 0, Properties::new(), b"z"),
        o(9, Some(3), 2, 0, Properties::new(), b"w"),
    ]
}

fn descending(items: &[(FetchItem, Bytes)]) -> Vec<(FetchItem, Bytes)> {
    // Mirror group ids so groups descend.
    items
        .iter()
        .map(|(it, p)| {
            let it = match it {
                FetchItem::Object(h) => FetchItem::Object(FetchObjectHeader {
                    group_id: 100 - h.group_id,
                    ..h.clone()
                }),
                FetchItem::EndOfRange { kind, location } => FetchItem::EndOfRange {
                    kind: *kind,
                    location: Location::new(100 - location.group, location.object),
                },
            };
            (it, p.clone())
        })
        .collect()
}

pub(crate) fn encode_fetch_stream(order: GroupOrder, items: &[(FetchItem, Bytes)]) -> Vec<u8> {
    let mut out = Vec::new();
    FetchHeader { request_id: 4 }.encode(&mut out);
    let mut e = FetchObjectEncoder::new(order);
    for (it, payload) in items {
        e.encode_item(it, &mut out).unwrap();
        out.extend_from_slice(payload);
    }
    out
}

#[test]
fn fetch_stream_round_trips_both_orders() {
    for (order, items) in [
        (GroupOrder::Ascending, sample_fetch_items()),
        (GroupOrder::Descending, descending(&sample_fetch_items())),
    ] {
        let wire = encode_fetch_stream(order, &items);
        assert_eq!(StreamType::peek(&wire).unwrap().0, StreamType::Fetch);
        let mut b = &wire[..];
        assert_eq!(FetchHeader::decode(&mut b).unwrap().request_id, 4);
        let mut d = FetchObjectDecoder::new(order);
        for (it, payload) in &items {
            let (got, p) = d.decode_object(&mut b).unwrap();
            assert_eq!(&got, it);
            assert_eq!(&p, payload);
        }
        assert!(b.is_empty());
        // Every truncation is Short and consumes nothing.
        let mut b = &wire[..];
        FetchHeader::decode(&mut b).unwrap();
        let body = b;
        let mut d = FetchObjectDecoder::new(order);
        let mut pos = 0;
        for (it, payload) in &items {
            let start = pos;
            let full = {
                let mut probe = &body[start..];
                let mut d2 = d.clone();
                d2.decode_object(&mut probe).unwrap();
                body.len() - start - probe.len()
            };
            for cut in 0..full {
                let mut t = &body[start..start + cut];
                assert_eq!(d.clone().decode_object(&mut t), Err(DecodeError::Short));
                assert_eq!(t.len(), cut);
            }
            let mut t = &body[start..];
            let (got, p) = d.decode_object(&mut t).unwrap();
            assert_eq!((&got, &p), (it, payload));
            pos = start + full;
        }
    }
}

#[test]
fn fetch_wire_format() {
    // First object: flags = group|object|priority (0x1c), group 1, object 0,
    // priority 10, payload length 1.
    let items = &sample_fetch_items()[..2];
    let wire = encode_fetch_stream(GroupOrder::Ascending, items);
    assert_eq!(&wire[..2], &[0x05, 0x04]);
    assert_eq!(&wire[2..8], &[0x1c, 0x01, 0x00, 0x0a, 0x01, b'a']);
    // Second object: same group/subgroup/priority, object+1 → flags 0.
    assert_eq!(&wire[8..], &[0x00, 0x02, b'b', b'b']);
    // End of range markers.
    let mut out = Vec::new();
    FetchObjectEncoder::new(GroupOrder::Ascending).encode_end_of_range(
        EndOfRange::Unknown,
        Location::new(2, 3),
        &mut out,
    );
    assert_eq!(out, vec![0x81, 0x0c, 0x02, 0x03]);
}

#[test]
fn fetch_errors() {
    let bad = |wire: &[u8]| FetchObjectDecoder::new(GroupOrder::Ascending).decode(&mut &wire[..]);
    // First object referring to prior fields.
    assert!(bad(&[0x10, 0x05, 0x01]).is_err()); // no group delta
    assert!(bad(&[0x0c, 0x01, 0x00, 0x00]).is_err()); // no priority
    assert!(bad(&[0x1d, 0x01, 0x00, 0x00, 0x00]).is_err()); // prior subgroup
                                                            // Invalid flag values.
    assert!(bad(&[0x80, 0x80]).is_err());
    let mut w = Vec::new();
    crate::varint::encode(0x20c, &mut w);
    assert!(bad(&w).is_err());
    // Descending underflow.
    let mut d = FetchObjectDecoder::new(GroupOrder::Descending);
    let wire = [0x1c, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00];
    let mut b = &wire[..];
    d.decode(&mut b).unwrap();
    assert!(matches!(
        d.decode(&mut b),
        Err(DecodeError::ProtocolViolation(_))
    ));
    // Prior subgroup after a datagram object.
    let wire = [0x5c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00];
    let mut d = FetchObjectDecoder::new(GroupOrder::Ascending);
    let mut b = &wire[..];
    d.decode(&mut b).unwrap();
    assert!(d.decode(&mut b).is_err());
    // Encoder: groups out of order.
    let mut e = FetchObjectEncoder::new(GroupOrder::Ascending);
    let h = |g| FetchObjectHeader {
        group_id: g,
        ..Default::default()
    };
    let mut out = Vec::new();
    e.encode(&h(5), &mut out).unwrap();
    assert!(e.encode(&h(4), &mut out).is_err());
}

pub(crate) fn sample_datagrams() -> Vec<ObjectDatagram> {
    let mut out = Vec::new();
    for object_id in [0u64, 7] {
        for prio in [None, Some(9)] {
            for eog in [false, true] {
                for pr in [Properties::new(), props()] {
                    out.push(ObjectDatagram {
                        track_alias: 3,
                        group_id: 12,
                        object_id,
                        publisher_priority: prio,
                        properties: pr.clone(),
                        end_of_group: eog,
                        content: DatagramContent::Payload(Bytes::from_static(b"payload")),
                    });
                    if !eog {
                        for st in [
                            ObjectStatus::Normal,
                            ObjectStatus::EndOfGroup,
                            ObjectStatus::EndOfTrack,
                        ] {
                            if st != ObjectStatus::Normal && !pr.is_empty() {
                                continue;
                            }
                            out.push(ObjectDatagram {
                                track_alias: 3,
                                group_id: 12,
                                object_id,
                                publisher_priority: prio,
                                properties: pr.clone(),
                                end_of_group: false,
                                content: DatagramContent::Status(st),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_datagram_variant_round_trips() {
    let mut types = std::collections::BTreeSet::new();
    for dg in sample_datagrams() {
        let bytes = dg.to_bytes().unwrap();
        types.insert(dg.type_value());
        assert_eq!(ObjectDatagram::decode(&bytes).unwrap(), dg);
        // Truncation never panics; for status datagrams it is an error.
        for cut in 0..bytes.len() {
            let r = ObjectDatagram::decode(&bytes.slice(..cut));
            if matches!(dg.content, DatagramContent::Status(_)) {
                assert!(r.is_err());
            }
        }
    }
    // All 24 valid type values are exercised.
    let valid: Vec<u64> = (0..=0x2fu64)
        .filter(|t| t & 0x10 == 0 && !(t & 0x20 != 0 && t & 0x02 != 0))
        .collect();
    assert_eq!(types.into_iter().collect::<Vec<_>>(), valid);
}

#[test]
fn datagram_errors() {
    let d = |b: &[u8]| ObjectDatagram::decode(&Bytes::copy_from_slice(b));
    for t in [0x10u8, 0x22, 0x23, 0x2f, 0x30, 0x40] {
        assert!(
            matches!(d(&[t, 0, 0, 0]), Err(DecodeError::InvalidDatagramType(_))),
            "{t:#x}"
        );
    }
    // PROPERTIES bit with zero-length properties.
    assert!(matches!(
        d(&[0x0d, 1, 1, 0]),
        Err(DecodeError::ProtocolViolation(_))
    ));
    // Status datagram, invalid status.
    assert!(d(&[0x2c, 1, 1, 1]).is_err());
    // Status datagram with properties and EndOfTrack.
    assert!(d(&[0x2d, 1, 1, 2, 4, 1, 4]).is_err());
    // Trailing bytes after status.
    assert!(d(&[0x2c, 1, 1, 0, 0]).is_err());
    // Encoder refuses STATUS + END_OF_GROUP.
    let bad = ObjectDatagram {
        track_alias: 0,
        group_id: 0,
        object_id: 0,
        publisher_priority: None,
        properties: Properties::new(),
        end_of_group: true,
        content: DatagramContent::Status(ObjectStatus::EndOfTrack),
    };
    assert!(bad.to_bytes().is_err());
    // Padding datagrams.
    let mut pad = Vec::new();
    encode_padding_datagram(5, &mut pad);
    assert_eq!(
        Datagram::decode(&Bytes::from(pad.clone())).unwrap(),
        Datagram::Padding(5)
    );
    assert!(ObjectDatagram::decode(&Bytes::from(pad)).is_err());
}
