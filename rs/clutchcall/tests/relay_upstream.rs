//! Publishers that announce a namespace (PUBLISH_NAMESPACE) and wait for SUBSCRIBE, as other
//! MoQT implementations do: the relay subscribes upstream once per track however many viewers
//! there are, and forwards object datagrams as datagrams. The publisher side is driven with
//! the raw codec here, so nothing of our own client hides a relay mistake.

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use client::{Connection, Event, SubscribeOptions};
use moqt::{
    ControlMessage, DatagramContent, Encode, ObjectDatagram, Parameters, Properties,
    PublishNamespace, Setup, SetupOptions, SubgroupHeader, SubgroupId, SubgroupObjectEncoder,
    Subscribe, SubscribeOk, SubscriptionFilter, TrackNamespace,
};
use net::client::{Client, Config, Verify};
use support::Engine;

const NS: [&str; 3] = ["stream", "org_up", "lv_up"];

fn encode(msg: impl Into<ControlMessage>) -> Vec<u8> {
    let mut buf = Vec::new();
    msg.into().encode(&mut buf).expect("encode");
    buf
}

async fn read_message(recv: &mut net::RecvStream, buf: &mut BytesMut) -> ControlMessage {
    loop {
        let mut slice = &buf[..];
        let before = slice.len();
        match ControlMessage::decode(&mut slice) {
            Ok(m) => {
                let used = before - slice.len();
                let _ = buf.split_to(used);
                return m;
            }
            Err(moqt::DecodeError::Short) => {}
            Err(e) => panic!("bad message from relay: {e}"),
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), recv.read_chunk(4096, true))
            .await
            .expect("relay answers in time")
            .expect("read")
            .expect("stream open");
        buf.extend_from_slice(&chunk.bytes);
    }
}

async fn raw_session(engine: &Engine) -> net::Session {
    let hash = engine.cert_sha256().parse().expect("fingerprint");
    let client = Client::new(Config {
        verify: Verify::Pinned(vec![hash]),
        ..Default::default()
    })
    .expect("client");
    let url = url::Url::parse(&engine.moqt_url()).expect("url");
    let connected = client.connect(&url).await.expect("connect");
    let session = connected.session;
    let mut control = session.open_uni().await.expect("uni");
    let mut options = SetupOptions::new();
    options.path = Some(connected.path.clone());
    control
        .write_all(&encode(Setup { options }))
        .await
        .expect("setup");
    // Keep our control stream open for the session's lifetime.
    std::mem::forget(control);
    let mut server_control = session.accept_uni().await.expect("server control");
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_message(&mut server_control, &mut buf).await,
        ControlMessage::Setup(_)
    ));
    std::mem::forget(server_control);
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_namespace_is_subscribed_upstream_once_and_datagrams_are_forwarded() {
    let engine = Engine::start(&[]);
    let publisher = raw_session(&engine).await;

    // PUBLISH_NAMESPACE and its REQUEST_OK.
    let (mut ns_send, mut ns_recv) = publisher.open_bi().await.expect("bi");
    let ns = TrackNamespace::from_strs(NS).expect("ns");
    ns_send
        .write_all(&encode(PublishNamespace {
            request_id: 0,
            namespace: ns.clone(),
            params: Parameters::new(),
        }))
        .await
        .expect("announce");
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_message(&mut ns_recv, &mut buf).await,
        ControlMessage::RequestOk(_)
    ));

    // Two viewers subscribe; the relay must ask the publisher exactly once.
    let cfg = client::Config::new(Verify::Pinned(vec![engine
        .cert_sha256()
        .parse()
        .expect("fp")]));
    let v1 = Connection::connect(&engine.moqt_url(), cfg.clone())
        .await
        .expect("viewer 1");
    let sub_task = tokio::spawn(async move {
        let s = v1
            .subscribe(NS, "video", SubscribeOptions::default())
            .await
            .expect("subscribe 1");
        (v1, s)
    });

    let (mut up_send, mut up_recv) =
        tokio::time::timeout(Duration::from_secs(10), publisher.accept_bi())
            .await
            .expect("upstream SUBSCRIBE")
            .expect("bi");
    let mut up_buf = BytesMut::new();
    let sub = match read_message(&mut up_recv, &mut up_buf).await {
        ControlMessage::Subscribe(s) => s,
        other => panic!("expected SUBSCRIBE, got {}", other.name()),
    };
    assert_eq!(sub.request_id % 2, 1, "server request ids are odd");
    assert_eq!(sub.namespace, ns);
    assert_eq!(&sub.track_name[..], b"video");
    assert!(matches!(
        sub.params.subscription_filter(),
        Some(SubscriptionFilter::LargestObject)
    ));
    const ALIAS: u64 = 7;
    up_send
        .write_all(&encode(SubscribeOk {
            track_alias: ALIAS,
            params: Parameters::new(),
            properties: Properties::new(),
        }))
        .await
        .expect("subscribe ok");
    let (v1, mut s1) = sub_task.await.expect("viewer 1 task");
    let v2 = Connection::connect(&engine.moqt_url(), cfg.clone())
        .await
        .expect("viewer 2");
    let mut s2 = v2
        .subscribe(NS, "video", SubscribeOptions::default())
        .await
        .expect("subscribe 2");

    // A raw viewer, to see datagrams as datagrams.
    let raw_viewer = raw_session(&engine).await;
    let (mut rv_send, mut rv_recv) = raw_viewer.open_bi().await.expect("bi");
    rv_send
        .write_all(&encode(Subscribe {
            request_id: 0,
            namespace: ns.clone(),
            track_name: Bytes::from_static(b"video"),
            params: Parameters::new().with_subscription_filter(SubscriptionFilter::LargestObject),
        }))
        .await
        .expect("raw subscribe");
    let mut rv_buf = BytesMut::new();
    let raw_alias = match read_message(&mut rv_recv, &mut rv_buf).await {
        ControlMessage::SubscribeOk(ok) => ok.track_alias,
        other => panic!("expected SUBSCRIBE_OK, got {}", other.name()),
    };

    // Group 0 on a subgroup stream.
    let header = SubgroupHeader {
        track_alias: ALIAS,
        group_id: 0,
        subgroup_id: SubgroupId::Explicit(0),
        publisher_priority: Some(100),
        has_properties: false,
        end_of_group: true,
        first_object: true,
    };
    let mut stream = publisher.open_uni().await.expect("uni");
    let mut data = BytesMut::new();
    header.encode(&mut data);
    let mut enc = SubgroupObjectEncoder::new(&header);
    for o in 0..4u8 {
        enc.encode_object(o as u64, &Properties::new(), &[o; 100], &mut data)
            .expect("object");
    }
    stream.write_all(&data).await.expect("write group");
    stream.finish().expect("fin");

    for (name, s) in [("viewer 1", &mut s1), ("viewer 2", &mut s2)] {
        let mut got = Vec::new();
        while got.len() < 4 {
            match tokio::time::timeout(Duration::from_secs(10), s.next()).await {
                Ok(Some(Event::Object(o))) => got.push((o.group, o.object, o.payload[0])),
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
        assert_eq!(
            got,
            vec![(0, 0, 0), (0, 1, 1), (0, 2, 2), (0, 3, 3)],
            "{name}"
        );
    }

    // Group 1 as object datagrams.
    for o in 0..3u64 {
        let d = ObjectDatagram {
            track_alias: ALIAS,
            group_id: 1,
            object_id: o,
            publisher_priority: Some(100),
            properties: Properties::new(),
            end_of_group: o == 2,
            content: DatagramContent::Payload(Bytes::from(vec![0xd0 + o as u8; 50])),
        };
        publisher
            .send_datagram(d.to_bytes().expect("datagram"))
            .expect("send datagram");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut dgrams = Vec::new();
    while dgrams.len() < 3 {
        let raw = tokio::time::timeout(Duration::from_secs(10), raw_viewer.read_datagram())
            .await
            .expect("datagram in time")
            .expect("read");
        let d = ObjectDatagram::decode(&raw).expect("valid datagram from the relay");
        assert_eq!(
            d.track_alias, raw_alias,
            "the relay rewrites the alias to the viewer's"
        );
        if let DatagramContent::Payload(p) = &d.content {
            dgrams.push((d.group_id, d.object_id, p[0]));
        }
    }
    assert_eq!(dgrams, vec![(1, 0, 0xd0), (1, 1, 0xd1), (1, 2, 0xd2)]);

    // Still exactly one upstream subscription.
    let second = tokio::time::timeout(Duration::from_millis(500), publisher.accept_bi()).await;
    assert!(
        second.is_err(),
        "the relay must not subscribe upstream twice for one track"
    );
    drop((v1, v2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_tracks_gets_a_publish_for_each_track_and_overlaps_are_refused() {
    let engine = Engine::start(&[]);
    let viewer = raw_session(&engine).await;
    let prefix = TrackNamespace::from_strs(["stream", "org_tracks"]).expect("prefix");
    let (mut st_send, mut st_recv) = viewer.open_bi().await.expect("bi");
    st_send
        .write_all(&encode(moqt::SubscribeTracks {
            request_id: 0,
            prefix: prefix.clone(),
            params: Parameters::new(),
        }))
        .await
        .expect("subscribe tracks");
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_message(&mut st_recv, &mut buf).await,
        ControlMessage::RequestOk(_)
    ));

    // An overlapping prefix in the same session is refused with PREFIX_OVERLAP.
    let (mut o_send, mut o_recv) = viewer.open_bi().await.expect("bi");
    let narrower = TrackNamespace::from_strs(["stream", "org_tracks", "lv_1"]).expect("ns");
    o_send
        .write_all(&encode(moqt::SubscribeTracks {
            request_id: 2,
            prefix: narrower,
            params: Parameters::new(),
        }))
        .await
        .expect("second subscribe tracks");
    let mut obuf = BytesMut::new();
    match read_message(&mut o_recv, &mut obuf).await {
        ControlMessage::RequestError(e) => assert_eq!(e.error_code, 0x30, "PREFIX_OVERLAP"),
        other => panic!("expected REQUEST_ERROR, got {}", other.name()),
    }

    // A track appears under the prefix: the relay PUBLISHes it to the viewer.
    let cfg = client::Config::new(Verify::Pinned(vec![engine
        .cert_sha256()
        .parse()
        .expect("fp")]));
    let pub_conn = Connection::connect(&engine.moqt_url(), cfg)
        .await
        .expect("publisher");
    let publisher = pub_conn
        .publish(
            ["stream", "org_tracks", "lv_1"],
            "audio",
            client::PublishOptions::default(),
        )
        .await
        .expect("publish");
    let (mut p_send, mut p_recv) =
        tokio::time::timeout(Duration::from_secs(10), viewer.accept_bi())
            .await
            .expect("PUBLISH from the relay")
            .expect("bi");
    let mut pbuf = BytesMut::new();
    let publish = match read_message(&mut p_recv, &mut pbuf).await {
        ControlMessage::Publish(p) => p,
        other => panic!("expected PUBLISH, got {}", other.name()),
    };
    assert_eq!(&publish.track_name[..], b"audio");
    assert_eq!(publish.request_id % 2, 1);
    p_send
        .write_all(&encode(moqt::RequestOk {
            params: Parameters::new(),
            properties: Properties::new(),
        }))
        .await
        .expect("PUBLISH_OK");

    let mut group = publisher.group(0).await.expect("group");
    group
        .write(Bytes::from_static(b"hello"))
        .await
        .expect("write");
    group.finish().await.expect("finish");

    let mut uni = tokio::time::timeout(Duration::from_secs(10), viewer.accept_uni())
        .await
        .expect("data stream")
        .expect("uni");
    let data = tokio::time::timeout(Duration::from_secs(10), uni.read_to_end(1 << 16))
        .await
        .expect("in time")
        .expect("read");
    let mut slice = &data[..];
    let header = <SubgroupHeader as moqt::Decode>::decode(&mut slice).expect("subgroup header");
    assert_eq!(
        header.track_alias, publish.track_alias,
        "objects use the alias from the relay's PUBLISH"
    );
    assert_eq!(header.group_id, 0);
    let mut dec = moqt::SubgroupObjectDecoder::new(&header);
    let (h, payload) = dec.decode_object(&mut slice).expect("object");
    assert_eq!((h.object_id, &payload[..]), (0, &b"hello"[..]));
}

#[tokio::test]
async fn standalone_fetch_and_track_status_are_served_from_the_cache() {
    let engine = Engine::start(&[]);
    let cfg = client::Config::new(Verify::Pinned(vec![engine
        .cert_sha256()
        .parse()
        .expect("fp")]));
    let pub_conn = Connection::connect(&engine.moqt_url(), cfg)
        .await
        .expect("publisher");
    let ns_fields = ["stream", "org_fetch", "lv_1"];
    let publisher = pub_conn
        .publish(ns_fields, "video", client::PublishOptions::default())
        .await
        .expect("publish");
    for g in 0..3u64 {
        let mut group = publisher.group(g).await.expect("group");
        for o in 0..4u64 {
            group
                .write(Bytes::from(vec![(g * 16 + o) as u8; 10]))
                .await
                .expect("write");
        }
        group.finish().await.expect("finish");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let viewer = raw_session(&engine).await;
    let ns = TrackNamespace::from_strs(ns_fields).expect("ns");

    // TRACK_STATUS: the largest location, no subscription.
    let (mut ts_send, mut ts_recv) = viewer.open_bi().await.expect("bi");
    ts_send
        .write_all(&encode(moqt::TrackStatus {
            request_id: 0,
            namespace: ns.clone(),
            track_name: Bytes::from_static(b"video"),
            params: Parameters::new(),
        }))
        .await
        .expect("track status");
    let mut buf = BytesMut::new();
    match read_message(&mut ts_recv, &mut buf).await {
        ControlMessage::RequestOk(ok) => {
            assert_eq!(
                ok.params.largest_object(),
                Some(moqt::Location {
                    group: 2,
                    object: 3
                })
            );
        }
        other => panic!("expected REQUEST_OK, got {}", other.name()),
    }

    // FETCH {0,2} .. whole group 1 (End {1,0} means "all of group 1").
    let (mut f_send, mut f_recv) = viewer.open_bi().await.expect("bi");
    f_send
        .write_all(&encode(moqt::Fetch {
            request_id: 2,
            fetch_type: moqt::FetchType::Standalone {
                namespace: ns.clone(),
                track_name: Bytes::from_static(b"video"),
                start: moqt::Location {
                    group: 0,
                    object: 2,
                },
                end: moqt::Location {
                    group: 1,
                    object: 0,
                },
            },
            params: Parameters::new(),
        }))
        .await
        .expect("fetch");
    let mut fbuf = BytesMut::new();
    match read_message(&mut f_recv, &mut fbuf).await {
        ControlMessage::FetchOk(ok) => assert!(!ok.end_of_track),
        other => panic!("expected FETCH_OK, got {}", other.name()),
    }
    let mut uni = tokio::time::timeout(Duration::from_secs(10), viewer.accept_uni())
        .await
        .expect("fetch stream")
        .expect("uni");
    let data = tokio::time::timeout(Duration::from_secs(10), uni.read_to_end(1 << 20))
        .await
        .expect("in time")
        .expect("read");
    let mut slice = &data[..];
    let header = <moqt::FetchHeader as moqt::Decode>::decode(&mut slice).expect("fetch header");
    assert_eq!(header.request_id, 2);
    let mut dec = moqt::FetchObjectDecoder::new(moqt::GroupOrder::Ascending);
    let mut got = Vec::new();
    while !slice.is_empty() {
        let (item, payload) = dec.decode_object(&mut slice).expect("fetch object");
        if let moqt::FetchItem::Object(h) = item {
            assert_eq!(
                payload[0] as u64,
                h.group_id * 16 + h.object_id,
                "payload matches its location"
            );
            got.push((h.group_id, h.object_id));
        }
    }
    assert_eq!(got, vec![(0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3)]);
}
