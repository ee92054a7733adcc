//! Fuzz harness bodies, shared by the cargo-fuzz targets (`fuzz/`) and the
//! stable random-input tests. Each function decodes arbitrary bytes, must
//! never panic on a decode error, and asserts that anything that decodes
//! re-encodes to something that decodes to the same value.
//!
//! Only built with the `fuzzing` feature (or in tests); not part of the
//! codec API.
#![allow(clippy::panic)]

use bytes::Bytes;

use crate::coding::{Decode, Encode, Eof, Reader};
use crate::data::{
    Datagram, FetchHeader, FetchItem, FetchObjectDecoder, FetchObjectEncoder, ObjectHeader,
    StreamType, SubgroupHeader, SubgroupObjectDecoder, SubgroupObjectEncoder,
};
use crate::error::DecodeError;
use crate::message::ControlMessage;
use crate::params::{GroupOrder, Parameters};
use crate::setup::SetupOptions;
use crate::varint;

fn check(cond: bool, what: &str) {
    assert!(cond, "round trip unstable: {what}");
}

/// varint: decode, re-encode minimal, decode again.
pub fn varint(data: &[u8]) {
    if let Ok((v, n)) = varint::peek(data) {
        check(n == varint::len_from_first_byte(data[0]), "varint length");
        let enc = varint::to_vec(v);
        check(varint::peek(&enc).ok() == Some((v, enc.len())), "varint");
        let mut non_min = Vec::new();
        check(varint::encode_with_len(v, n, &mut non_min), "varint len");
        check(non_min == data[..n], "varint bytes");
    }
    let _ = StreamType::peek(data);
}

/// Control messages (all types), consuming as many as decode.
pub fn control_message(data: &[u8]) {
    let mut b = data;
    loop {
        let before = b.len();
        match ControlMessage::decode(&mut b) {
            Ok(m) => {
                let enc = match m.to_vec() {
                    Ok(e) => e,
                    Err(e) => panic!("decoded message does not re-encode: {e} {m:?}"),
                };
                let back = ControlMessage::decode(&mut &enc[..]);
                check(back.as_ref() == Ok(&m), "control message");
            }
            Err(DecodeError::Short) => {
                check(b.len() == before, "Short consumed bytes");
                break;
            }
            Err(_) => break,
        }
        if b.is_empty() {
            break;
        }
    }
    let _ = ControlMessage::frame_len(data);
}

/// A Message Parameters block, as in a message payload.
pub fn params(data: &[u8]) {
    let mut r = Reader::bounded(data, Eof::Protocol);
    if let Ok(p) = Parameters::decode_from(&mut r) {
        let enc = p.to_vec();
        let mut r2 = Reader::bounded(&enc, Eof::Protocol);
        check(
            Parameters::decode_from(&mut r2).as_ref() == Ok(&p),
            "params",
        );
        check(r2.is_empty(), "params length");
        for t in [0x3u64, 0x4, 0x7, 0x16, 0x1e] {
            let _ = p.check_allowed_in(t);
        }
    }
    let _ = crate::params::AuthToken::decode_from(data);
    let _ = crate::params::SubscriptionFilter::decode_from(data);
    if let Ok(p) = crate::kvp::Properties::decode_from(data) {
        check(
            crate::kvp::Properties::decode_from(&p.to_vec()).as_ref() == Ok(&p),
            "props",
        );
        let _ = p.immutable();
        let _ = p.default_publisher_priority();
        let _ = p.default_group_order();
        let _ = p.dynamic_groups();
    }
}

/// SETUP options payload.
pub fn setup(data: &[u8]) {
    if let Ok(o) = SetupOptions::decode_from(data) {
        match o.to_properties() {
            Ok(p) => check(
                SetupOptions::decode_from(&p.to_vec()).as_ref() == Ok(&o),
                "setup",
            ),
            Err(e) => panic!("decoded setup options do not re-encode: {e}"),
        }
    }
}

/// A whole subgroup stream: header, then objects with their payloads.
pub fn subgroup_stream(data: &[u8]) {
    let mut b = data;
    let Ok(h) = SubgroupHeader::decode(&mut b) else {
        return;
    };
    let mut dec = SubgroupObjectDecoder::new(&h);
    let mut objs: Vec<(ObjectHeader, Bytes)> = Vec::new();
    while !b.is_empty() {
        match dec.decode_object(&mut b) {
            Ok(o) => objs.push(o),
            Err(_) => break,
        }
    }
    let mut enc = Vec::new();
    h.encode(&mut enc);
    let mut e = SubgroupObjectEncoder::new(&h);
    for (o, p) in &objs {
        if let Err(err) = e.encode(o, &mut enc) {
            panic!("decoded object does not re-encode: {err}");
        }
        enc.extend_from_slice(p);
    }
    let mut b2 = &enc[..];
    check(
        SubgroupHeader::decode(&mut b2).as_ref() == Ok(&h),
        "subgroup header",
    );
    let mut dec2 = SubgroupObjectDecoder::new(&h);
    for o in &objs {
        check(
            dec2.decode_object(&mut b2).as_ref() == Ok(o),
            "subgroup object",
        );
    }
    check(b2.is_empty(), "subgroup stream length");
    check(dec2.subgroup_id() == dec.subgroup_id(), "subgroup id");
}

/// A whole fetch stream, under both group orders.
pub fn fetch_stream(data: &[u8]) {
    for order in [GroupOrder::Ascending, GroupOrder::Descending] {
        let mut b = data;
        let Ok(h) = FetchHeader::decode(&mut b) else {
            return;
        };
        let mut dec = FetchObjectDecoder::new(order);
        let mut items: Vec<(FetchItem, Bytes)> = Vec::new();
        while !b.is_empty() {
            match dec.decode_object(&mut b) {
                Ok(i) => items.push(i),
                Err(_) => break,
            }
        }
        // Re-encode; streams whose End of Range markers jump backwards
        // cannot be re-encoded compactly, which is fine.
        let mut enc = Vec::new();
        h.encode(&mut enc);
        let mut e = FetchObjectEncoder::new(order);
        let mut ok = true;
        for (it, p) in &items {
            if e.encode_item(it, &mut enc).is_err() {
                ok = false;
                break;
            }
            enc.extend_from_slice(p);
        }
        if ok {
            let mut b2 = &enc[..];
            check(
                FetchHeader::decode(&mut b2).as_ref() == Ok(&h),
                "fetch header",
            );
            let mut dec2 = FetchObjectDecoder::new(order);
            for it in &items {
                check(dec2.decode_object(&mut b2).as_ref() == Ok(it), "fetch item");
            }
            check(b2.is_empty(), "fetch stream length");
        }
    }
}

/// One datagram.
pub fn datagram(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(Datagram::Object(d)) = Datagram::decode(&bytes) {
        match d.to_bytes() {
            Ok(enc) => check(
                Datagram::decode(&enc) == Ok(Datagram::Object(d)),
                "datagram",
            ),
            Err(e) => panic!("decoded datagram does not re-encode: {e}"),
        }
    }
}
