//! Bad input on the wire closes only the offending session, with the draft's error code; every
//! other session carries on.

mod support;

use std::time::Duration;

use bytes::Bytes;
use moqt::{ControlMessage, Parameters, Setup, SetupOptions, TrackNamespace, TrackStatus};
use net::client::{Client, Config, Verify};
use support::Engine;

const PROTOCOL_VIOLATION: u64 = 0x3;
const INVALID_REQUEST_ID: u64 = 0x4;

fn client(engine: &Engine) -> Client {
    let hash = engine.cert_sha256().parse().expect("fingerprint");
    Client::new(Config {
        verify: Verify::Pinned(vec![hash]),
        ..Default::default()
    })
    .expect("client")
}

fn encode(msg: impl Into<ControlMessage>) -> Vec<u8> {
    let mut buf = Vec::new();
    msg.into().encode(&mut buf).expect("encode");
    buf
}

/// Connect over raw QUIC and complete SETUP; returns the session and our control stream.
async fn setup(client: &Client, engine: &Engine) -> (net::Session, net::SendStream) {
    let url = url::Url::parse(&engine.moqt_url()).expect("url");
    let connected = client.connect(&url).await.expect("connect");
    let session = connected.session;
    let mut control = session.open_uni().await.expect("uni");
    let mut options = SetupOptions::new();
    options.path = Some(connected.path.clone());
    options.authority = Some(connected.authority.clone());
    control
        .write_all(&encode(Setup { options }))
        .await
        .expect("write setup");
    let mut server_control = session.accept_uni().await.expect("server control stream");
    let mut first = [0u8; 2];
    server_control
        .read_exact(&mut first)
        .await
        .expect("read setup");
    assert_eq!(
        first,
        [0xaf, 0x00],
        "server control stream starts with SETUP (0x2F00)"
    );
    (session, control)
}

/// The close code the server used (raw QUIC carries it in CONNECTION_CLOSE).
async fn close_code(session: &net::Session) -> (u64, String) {
    let err = tokio::time::timeout(Duration::from_secs(10), session.closed())
        .await
        .expect("server closed the session");
    match err {
        net::SessionError::ConnectionError(net::quinn::ConnectionError::ApplicationClosed(c)) => (
            c.error_code.into_inner(),
            String::from_utf8_lossy(&c.reason).into_owned(),
        ),
        // web-transport-quinn reports a raw QUIC application close the same way as a
        // WebTransport session close.
        net::SessionError::WebTransportError(net::WebTransportError::Closed(code, reason)) => {
            (code as u64, reason)
        }
        other => panic!("unexpected close: {other:?}"),
    }
}

/// A healthy session still answers: TRACK_STATUS for a missing track gets REQUEST_ERROR.
async fn still_answers(session: &net::Session, request_id: u64) {
    let (mut send, mut recv) = session.open_bi().await.expect("bi on healthy session");
    let msg = TrackStatus {
        request_id,
        namespace: TrackNamespace::from_strs(["nothing", "here"]).expect("ns"),
        track_name: Bytes::from_static(b"video"),
        params: Parameters::new(),
    };
    send.write_all(&encode(msg)).await.expect("write");
    let reply = tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(4096))
        .await
        .expect("reply in time")
        .expect("read");
    let mut buf = &reply[..];
    match ControlMessage::decode(&mut buf).expect("decode reply") {
        ControlMessage::RequestError(e) => assert_eq!(e.error_code, 0x10, "DOES_NOT_EXIST"),
        other => panic!("expected REQUEST_ERROR, got {}", other.name()),
    }
}

async fn check_case(
    name: &str,
    expect: u64,
    bad: impl AsyncFnOnce(&net::Session, &mut net::SendStream),
) {
    let engine = Engine::start(&[]);
    let client = client(&engine);
    let (healthy, _healthy_control) = setup(&client, &engine).await;
    let (victim, mut victim_control) = setup(&client, &engine).await;
    bad(&victim, &mut victim_control).await;
    let (code, reason) = close_code(&victim).await;
    assert_eq!(code, expect, "{name}: close code (reason {reason:?})");
    still_answers(&healthy, 0).await;
    assert!(
        healthy.close_reason().is_none(),
        "{name}: the other session must stay open"
    );
}

#[tokio::test]
async fn garbage_on_the_control_stream() {
    check_case("garbage", PROTOCOL_VIOLATION, async |_s, control| {
        control
            .write_all(&[0x7e, 0x00, 0x01, 0xff])
            .await
            .expect("write");
    })
    .await;
}

#[tokio::test]
async fn request_message_on_the_control_stream() {
    check_case(
        "subscribe on control",
        PROTOCOL_VIOLATION,
        async |_s, control| {
            let msg = TrackStatus {
                request_id: 0,
                namespace: TrackNamespace::from_strs(["a"]).expect("ns"),
                track_name: Bytes::from_static(b"t"),
                params: Parameters::new(),
            };
            control.write_all(&encode(msg)).await.expect("write");
        },
    )
    .await;
}

#[tokio::test]
async fn response_opening_a_request_stream() {
    check_case(
        "REQUEST_OK first",
        PROTOCOL_VIOLATION,
        async |s, _control| {
            let (mut send, _recv) = s.open_bi().await.expect("bi");
            send.write_all(&encode(moqt::RequestOk {
                params: Parameters::new(),
                properties: Default::default(),
            }))
            .await
            .expect("write");
        },
    )
    .await;
}

#[tokio::test]
async fn odd_request_id_from_a_client() {
    check_case("odd request id", INVALID_REQUEST_ID, async |s, _control| {
        let (mut send, _recv) = s.open_bi().await.expect("bi");
        let msg = TrackStatus {
            request_id: 1,
            namespace: TrackNamespace::from_strs(["a"]).expect("ns"),
            track_name: Bytes::from_static(b"t"),
            params: Parameters::new(),
        };
        send.write_all(&encode(msg)).await.expect("write");
    })
    .await;
}

#[tokio::test]
async fn declared_length_longer_than_the_message() {
    check_case(
        "length mismatch",
        PROTOCOL_VIOLATION,
        async |s, _control| {
            let (mut send, _recv) = s.open_bi().await.expect("bi");
            // TRACK_STATUS (0x0d) claiming 40 bytes but carrying 3, then FIN.
            send.write_all(&[0x0d, 0x00, 40, 0x00, 0x01, 0x61])
                .await
                .expect("write");
            let _ = send.finish();
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_unidirectional_stream_type() {
    check_case(
        "unknown stream type",
        PROTOCOL_VIOLATION,
        async |s, _control| {
            let mut uni = s.open_uni().await.expect("uni");
            uni.write_all(&[0x02, 0x00, 0x00]).await.expect("write");
        },
    )
    .await;
}

#[tokio::test]
async fn second_control_stream() {
    check_case(
        "second control stream",
        PROTOCOL_VIOLATION,
        async |s, _control| {
            let mut uni = s.open_uni().await.expect("uni");
            uni.write_all(&encode(Setup {
                options: SetupOptions::new(),
            }))
            .await
            .expect("write");
        },
    )
    .await;
}
