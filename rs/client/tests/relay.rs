//! The client against the real relay, in process: `net::server::Server` on 127.0.0.1:0 with a
//! generated certificate, every session served by `relay::Relay`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use client::{
    status, Config, Connection, Event, PublishOptions, Received, Start, SubscribeOptions,
    Subscription, Verify,
};
use futures::future::BoxFuture;
use relay::auth::{AuthRequest, Authorizer, Denied, DenyAll, Grant, Policy};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const STEP: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, f: F) -> Result<F::Output> {
    tokio::time::timeout(STEP, f)
        .await
        .map_err(|_| format!("timed out: {what}").into())
}

struct TestRelay {
    addr: SocketAddr,
    relay: relay::Relay,
    fingerprint: net::tls::Fingerprint,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestRelay {
    fn url(&self) -> String {
        format!("moqt://{}/", self.addr)
    }
}

fn start(config: relay::Config, policy: Policy) -> Result<TestRelay> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let certs = net::tls::Certs::new(net::tls::Config::default())?;
    let fingerprint = certs.fingerprint();
    let mut server = net::server::Server::bind(net::server::Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        ..net::server::Config::new(certs)
    })?;
    let addr = server.local_addrs()[0];
    let relay = relay::Relay::new(config, policy);
    let r = relay.clone();
    let task = tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let r = r.clone();
            tokio::spawn(async move { r.serve(incoming.session, incoming.url).await });
        }
    });
    Ok(TestRelay {
        addr,
        relay,
        fingerprint,
        task,
    })
}

fn open_policy() -> Policy {
    Policy::new(Some(vec![]), Arc::new(DenyAll))
}

fn no_grace() -> relay::Config {
    relay::Config {
        publisher_grace: Duration::ZERO,
        ..relay::Config::default()
    }
}

fn config() -> Config {
    Config::new(Verify::InsecureAcceptAnyCertificate)
}

fn payload(group: u64, object: u64) -> Bytes {
    Bytes::from(format!("g{group}o{object}").repeat(1 + (object as usize % 7) * 50))
}

async fn write_group(
    publisher: &client::TrackPublisher,
    group: u64,
    objects: std::ops::Range<u64>,
) -> Result {
    let mut g = publisher.group(group).await?;
    for o in objects {
        assert_eq!(g.write(payload(group, o)).await?, o);
    }
    g.finish().await?;
    Ok(())
}

/// Everything up to the end: objects by group, and the end event.
async fn collect(sub: &mut Subscription) -> Result<(Vec<Received>, Option<(u64, String)>)> {
    let mut objects = Vec::new();
    loop {
        match within("next event", sub.next()).await? {
            Some(Event::Object(o)) => objects.push(o),
            Some(Event::Ended { code, reason }) => return Ok((objects, Some((code, reason)))),
            None => return Ok((objects, None)),
        }
    }
}

fn by_group(objects: &[Received]) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for o in objects {
        assert_eq!(
            o.payload,
            payload(o.group, o.object),
            "payload of {}/{}",
            o.group,
            o.object
        );
        m.entry(o.group).or_default().push(o.object);
    }
    m
}

/// Wait until the relay has ingested up to `{group, object}` on a track.
///
/// The tests call this before PUBLISH_DONE because the relay (as of this writing) ends a track
/// as soon as it reads PUBLISH_DONE, without waiting for the data streams PUBLISH_DONE's Stream
/// Count announces; groups still in flight to the relay are then lost for every subscriber.
async fn relay_has(
    relay: &relay::Relay,
    ns: &[&str],
    track: &str,
    group: u64,
    object: u64,
) -> Result {
    let name = relay::track::TrackName::from_strs(ns, track);
    within("relay ingest", async {
        loop {
            if let Some(t) = relay.registry().lookup(&name) {
                if t.largest()
                    .is_some_and(|l| (l.group, l.object) >= (group, object))
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_receives_every_object_in_order_then_publish_done() -> Result {
    let relay = start(no_grace(), open_policy())?;
    let pub_conn = Connection::connect(&relay.url(), config()).await?;
    let publisher = pub_conn
        .publish(["public", "t1"], "video", PublishOptions::default())
        .await?;
    let sub_conn = Connection::connect(&relay.url(), config()).await?;
    let mut sub = sub_conn
        .subscribe(["public", "t1"], "video", SubscribeOptions::default())
        .await?;
    assert_eq!(sub.largest_at_start(), None);

    for g in 0..5 {
        write_group(&publisher, g, 0..10).await?;
    }
    // See `settle`: the relay may end the track before it has read the last group.
    relay_has(&relay.relay, &["public", "t1"], "video", 4, 9).await?;
    publisher.finish(status::TRACK_ENDED).await?;

    let (objects, end) = collect(&mut sub).await?;
    let groups = by_group(&objects);
    let expected: BTreeMap<u64, Vec<u64>> = (0..5).map(|g| (g, (0..10).collect())).collect();
    assert_eq!(
        groups, expected,
        "every object of every group, each group in object order"
    );
    assert_eq!(end, Some((status::TRACK_ENDED, "track ended".to_string())));
    assert_eq!(within("after end", sub.next()).await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscriber_starts_at_the_current_group_start() -> Result {
    let relay = start(no_grace(), open_policy())?;
    let pub_conn = Connection::connect(&relay.url(), config()).await?;
    let publisher = pub_conn
        .publish("public/t2", "video", PublishOptions::default())
        .await?;
    write_group(&publisher, 0, 0..10).await?;
    let mut g1 = publisher.group(1).await?;
    for o in 0..5 {
        g1.write(payload(1, o)).await?;
    }
    relay_has(&relay.relay, &["public", "t2"], "video", 1, 4).await?;

    let sub_conn = Connection::connect(&relay.url(), config()).await?;
    let mut sub = sub_conn
        .subscribe(
            ["public", "t2"],
            "video",
            SubscribeOptions {
                start: Start::Latest,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(sub.largest_at_start(), Some(client::Location::new(1, 4)));
    // The joining FETCH delivers the current group from its first object.
    let mut objects = Vec::new();
    while objects.len() < 5 {
        match within("fetched objects", sub.next()).await? {
            Some(Event::Object(o)) => objects.push(o),
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    let fetched: Vec<(u64, u64)> = objects.iter().map(|o| (o.group, o.object)).collect();
    assert_eq!(
        fetched,
        (0..5).map(|o| (1, o)).collect::<Vec<_>>(),
        "starts at the group boundary"
    );

    for o in 5..10 {
        g1.write(payload(1, o)).await?;
    }
    g1.finish().await?;
    write_group(&publisher, 2, 0..3).await?;
    relay_has(&relay.relay, &["public", "t2"], "video", 2, 2).await?;
    publisher.finish(status::TRACK_ENDED).await?;

    let (rest, end) = collect(&mut sub).await?;
    objects.extend(rest);
    let groups = by_group(&objects);
    let expected: BTreeMap<u64, Vec<u64>> = [(1, (0..10).collect()), (2, (0..3).collect())]
        .into_iter()
        .collect();
    assert_eq!(groups, expected);
    assert!(end.is_some(), "PUBLISH_DONE reached the late subscriber");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_group_start_skips_the_current_group() -> Result {
    let relay = start(no_grace(), open_policy())?;
    let pub_conn = Connection::connect(&relay.url(), config()).await?;
    let publisher = pub_conn
        .publish(["public", "t5"], "video", PublishOptions::default())
        .await?;
    write_group(&publisher, 0, 0..4).await?;
    relay_has(&relay.relay, &["public", "t5"], "video", 0, 3).await?;
    let sub_conn = Connection::connect(&relay.url(), config()).await?;
    let mut sub = sub_conn
        .subscribe(
            ["public", "t5"],
            "video",
            SubscribeOptions {
                start: Start::NextGroup,
                ..Default::default()
            },
        )
        .await?;
    write_group(&publisher, 1, 0..4).await?;
    relay_has(&relay.relay, &["public", "t5"], "video", 1, 3).await?;
    publisher.finish(status::TRACK_ENDED).await?;
    let (objects, end) = collect(&mut sub).await?;
    let expected: BTreeMap<u64, Vec<u64>> = [(1, (0..4).collect())].into_iter().collect();
    assert_eq!(by_group(&objects), expected);
    assert!(end.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_publisher_within_grace_keeps_subscribers() -> Result {
    let relay = start(
        relay::Config {
            publisher_grace: Duration::from_secs(3),
            ..relay::Config::default()
        },
        open_policy(),
    )?;
    let ns = ["public", "t3"];
    let first = Connection::connect(&relay.url(), config()).await?;
    let publisher = first
        .publish(ns, "video", PublishOptions::default())
        .await?;
    let sub_conn = Connection::connect(&relay.url(), config()).await?;
    let mut sub = sub_conn
        .subscribe(ns, "video", SubscribeOptions::default())
        .await?;
    write_group(&publisher, 0, 0..5).await?;
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match within("objects from the first publisher", sub.next()).await? {
            Some(Event::Object(o)) => seen.push(o),
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    // The encoder's connection dies without PUBLISH_DONE.
    first.close(0, "crash");
    drop(publisher);
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let second = Connection::connect(&relay.url(), config()).await?;
    let publisher = second
        .publish(ns, "video", PublishOptions::default())
        .await?;
    write_group(&publisher, 1, 0..5).await?;
    write_group(&publisher, 2, 0..5).await?;
    relay_has(&relay.relay, &["public", "t3"], "video", 2, 4).await?;
    publisher.finish(status::TRACK_ENDED).await?;

    let (rest, end) = collect(&mut sub).await?;
    seen.extend(rest);
    let expected: BTreeMap<u64, Vec<u64>> = (0..3).map(|g| (g, (0..5).collect())).collect();
    assert_eq!(
        by_group(&seen),
        expected,
        "the subscription survived the publisher's reconnect (end: {end:?})"
    );
    assert_eq!(end.map(|e| e.0), Some(status::TRACK_ENDED));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_outside_the_public_prefix_fails_with_auth_failed() -> Result {
    let relay = start(
        no_grace(),
        Policy::new(Some(vec![b"public".to_vec()]), Arc::new(DenyAll)),
    )?;
    let ok = Connection::connect(&relay.url(), config()).await?;
    ok.publish(["public", "x"], "video", PublishOptions::default())
        .await?;

    let conn = Connection::connect(&relay.url(), config()).await?;
    let err = conn
        .publish(["private", "x"], "video", PublishOptions::default())
        .await
        .err()
        .ok_or("publish succeeded")?;
    assert!(err.is_auth_failed(), "error carries auth_failed: {err}");
    let closed = within("session close", conn.closed()).await?;
    assert_eq!(closed.reason, "auth_failed");
    assert_eq!(closed.code, 0x2, "UNAUTHORIZED");
    Ok(())
}

/// Accepts requests that present the token `secret`.
struct Secret;

impl Authorizer for Secret {
    fn authorize(
        &self,
        request: AuthRequest,
    ) -> BoxFuture<'static, std::result::Result<Grant, Denied>> {
        let ok = request.token.as_deref() == Some(b"secret".as_slice());
        Box::pin(async move {
            if ok {
                Ok(Grant::default())
            } else {
                Err(Denied("bad token".into()))
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_travel_on_requests_and_overrides_apply() -> Result {
    let relay = start(no_grace(), Policy::new(None, Arc::new(Secret)))?;
    let conn = Connection::connect(
        &relay.url(),
        Config {
            token: Some("secret".into()),
            ..config()
        },
    )
    .await?;
    let publisher = conn
        .publish(["stream", "org", "lv"], "video", PublishOptions::default())
        .await?;
    let mut sub = conn
        .subscribe(
            ["stream", "org", "lv"],
            "video",
            SubscribeOptions::default(),
        )
        .await?;
    write_group(&publisher, 0, 0..2).await?;
    match within("object", sub.next()).await? {
        Some(Event::Object(o)) => assert_eq!((o.group, o.object), (0, 0)),
        other => return Err(format!("unexpected {other:?}").into()),
    }

    let viewer = Connection::connect(&relay.url(), config()).await?;
    let err = viewer
        .subscribe(
            ["stream", "org", "lv"],
            "video",
            SubscribeOptions {
                token: Some("wrong".into()),
                ..Default::default()
            },
        )
        .await
        .err()
        .ok_or("subscribe with a wrong token succeeded")?;
    assert!(err.is_auth_failed(), "{err}");
    assert!(within("close", viewer.closed()).await?.is_auth_failed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_an_unknown_track_is_refused() -> Result {
    let relay = start(no_grace(), open_policy())?;
    let conn = Connection::connect(&relay.url(), config()).await?;
    let err = conn
        .subscribe(["public", "none"], "video", SubscribeOptions::default())
        .await
        .err()
        .ok_or("subscribed")?;
    assert!(
        matches!(err, client::Error::Refused { code: 0x10, .. }),
        "{err}"
    );
    // The session stays usable.
    conn.publish(["public", "none"], "video", PublishOptions::default())
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_engine_pins_the_served_fingerprint() -> Result {
    let relay = start(no_grace(), open_policy())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = listener.local_addr()?;
    let hex = relay.fingerprint.to_hex();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{hex}",
                hex.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    let conn =
        Connection::connect_engine(&format!("http://{http}"), &relay.url(), Config::default())
            .await?;
    conn.publish(["public", "pinned"], "video", PublishOptions::default())
        .await?;

    // A wrong pin fails the handshake.
    let wrong = Config::new(Verify::Pinned(vec![net::tls::Fingerprint([0; 32])]));
    assert!(Connection::connect(&relay.url(), wrong).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_subscription_unsubscribes() -> Result {
    let relay = start(no_grace(), open_policy())?;
    let conn = Connection::connect(&relay.url(), config()).await?;
    let publisher = conn
        .publish(["public", "t4"], "video", PublishOptions::default())
        .await?;
    let sub = conn
        .subscribe(["public", "t4"], "video", SubscribeOptions::default())
        .await?;
    drop(sub);
    // Publishing goes on without anyone reading; the session stays healthy.
    for g in 0..3 {
        write_group(&publisher, g, 0..3).await?;
    }
    relay_has(&relay.relay, &["public", "t4"], "video", 2, 2).await?;
    let mut again = conn
        .subscribe(["public", "t4"], "video", SubscribeOptions::default())
        .await?;
    assert_eq!(again.largest_at_start(), Some(client::Location::new(2, 2)));
    write_group(&publisher, 3, 0..3).await?;
    relay_has(&relay.relay, &["public", "t4"], "video", 3, 2).await?;
    publisher.finish(status::TRACK_ENDED).await?;
    let (objects, end) = collect(&mut again).await?;
    let groups = by_group(&objects);
    assert_eq!(groups.get(&3), Some(&vec![0, 1, 2]));
    assert!(end.is_some());
    assert!(conn.close_reason().is_none());
    Ok(())
}
