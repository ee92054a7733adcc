//! The relay as viewers see it: fan-out to many subscribers over raw QUIC, late joiners at the
//! group boundary, a stalled viewer that hurts nobody, publishers leaving and coming back.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client::{Config, Connection, Event, PublishOptions, Start, SubscribeOptions, Verify};
use support::Engine;

const NS: [&str; 3] = ["stream", "org_test", "lv_test"];

fn config(engine: &Engine) -> Config {
    let hash = engine.cert_sha256().parse().expect("fingerprint");
    Config::new(Verify::Pinned(vec![hash]))
}

async fn connect(engine: &Engine) -> Connection {
    Connection::connect(&engine.moqt_url(), config(engine))
        .await
        .expect("connect")
}

/// Group → object ids, in arrival order.
type Seen = BTreeMap<u64, Vec<u64>>;

async fn collect(
    mut sub: client::Subscription,
    want: usize,
    limit: Duration,
) -> (Seen, Option<(u64, String)>) {
    let mut seen = Seen::new();
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + limit;
    while count < want {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(Event::Object(o))) => {
                seen.entry(o.group).or_default().push(o.object);
                count += 1;
            }
            Ok(Some(Event::Ended { code, reason })) => return (seen, Some((code, reason))),
            Ok(None) | Err(_) => break,
        }
    }
    (seen, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_subscribers_receive_every_object_of_every_group_in_order() {
    const SUBSCRIBERS: usize = 200;
    const GROUPS: u64 = 5;
    const OBJECTS: u64 = 10;
    let engine = Engine::start(&[]);
    let cfg = config(&engine);
    let endpoint = net::client::Client::new(cfg.endpoint()).expect("endpoint");

    let publisher_conn = Connection::connect_with(&endpoint, &engine.moqt_url(), cfg.clone())
        .await
        .expect("publisher");
    let publisher = publisher_conn
        .publish(NS, "video", PublishOptions::default())
        .await
        .expect("publish");

    let mut viewers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let conn = Connection::connect_with(&endpoint, &engine.moqt_url(), cfg.clone())
            .await
            .expect("viewer connect");
        // Completeness is what this test checks, so the viewers ask the relay not to skip
        // ahead even when the shared 2-core machine makes them fall behind.
        let options = SubscribeOptions {
            delivery_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let sub = conn
            .subscribe(NS, "video", options)
            .await
            .expect("subscribe");
        viewers.push((conn, sub));
    }
    let tasks: Vec<_> = viewers
        .into_iter()
        .map(|(conn, sub)| {
            tokio::spawn(async move {
                let r = collect(sub, (GROUPS * OBJECTS) as usize, Duration::from_secs(120)).await;
                drop(conn);
                r
            })
        })
        .collect();

    for g in 0..GROUPS {
        let mut group = publisher.group(g).await.expect("group");
        for o in 0..OBJECTS {
            let size = if o == 0 { 20_000 } else { 2_000 };
            group
                .write(Bytes::from(vec![o as u8; size]))
                .await
                .expect("write");
        }
        group.finish().await.expect("finish group");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let expected: Vec<u64> = (0..OBJECTS).collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let (seen, ended) = t.await.expect("viewer task");
        assert!(ended.is_none(), "viewer {i} ended early: {ended:?}");
        assert_eq!(
            seen.len() as u64,
            GROUPS,
            "viewer {i} groups: {:?}",
            seen.keys().collect::<Vec<_>>()
        );
        for (g, objects) in &seen {
            assert_eq!(
                objects, &expected,
                "viewer {i} group {g} must be complete and in order"
            );
        }
    }
}

#[tokio::test]
async fn a_late_joiner_starts_at_the_latest_group_boundary() {
    let engine = Engine::start(&[]);
    let pub_conn = connect(&engine).await;
    let publisher = pub_conn
        .publish(NS, "video", PublishOptions::default())
        .await
        .expect("publish");
    // Two whole groups, then half of a third.
    for g in 0..2 {
        let mut group = publisher.group(g).await.expect("group");
        for o in 0..6 {
            group
                .write(Bytes::from(format!("{g}:{o}")))
                .await
                .expect("write");
        }
        group.finish().await.expect("finish");
    }
    let mut current = publisher.group(2).await.expect("group 2");
    for o in 0..3 {
        current
            .write(Bytes::from(format!("2:{o}")))
            .await
            .expect("write");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let viewer = connect(&engine).await;
    let sub = viewer
        .subscribe(
            NS,
            "video",
            SubscribeOptions {
                start: Start::Latest,
                ..Default::default()
            },
        )
        .await
        .expect("subscribe");
    assert_eq!(
        sub.largest_at_start().map(|l| (l.group, l.object)),
        Some((2, 2))
    );
    let reader = tokio::spawn(collect(sub, 9, Duration::from_secs(20)));
    for o in 3..6 {
        current
            .write(Bytes::from(format!("2:{o}")))
            .await
            .expect("write");
    }
    current.finish().await.expect("finish");
    let mut next = publisher.group(3).await.expect("group 3");
    for o in 0..3 {
        next.write(Bytes::from(format!("3:{o}")))
            .await
            .expect("write");
    }
    next.finish().await.expect("finish");

    let (seen, ended) = reader.await.expect("reader");
    assert!(ended.is_none());
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        vec![2, 3],
        "starts at the current group, never an older one"
    );
    assert_eq!(
        seen[&2],
        vec![0, 1, 2, 3, 4, 5],
        "the current group from its first object (keyframe), no gap, no duplicate"
    );
    assert_eq!(seen[&3], vec![0, 1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_does_not_delay_the_others() {
    let engine = Engine::start(&[]);
    let pub_conn = connect(&engine).await;
    let publisher = pub_conn
        .publish(NS, "video", PublishOptions::default())
        .await
        .expect("publish");

    // The stalled viewer subscribes and never reads: its buffer fills, then QUIC flow control
    // pushes back on its streams only.
    let mut stalled_cfg = config(&engine);
    stalled_cfg.buffer = 1;
    stalled_cfg.tuning.stream_receive_window = 16 * 1024;
    stalled_cfg.tuning.receive_window = 64 * 1024;
    let stalled_conn = Connection::connect(&engine.moqt_url(), stalled_cfg)
        .await
        .expect("stalled connect");
    let stalled = stalled_conn
        .subscribe(NS, "video", SubscribeOptions::default())
        .await
        .expect("stalled subscribe");

    const GROUPS: u64 = 8;
    const OBJECTS: u64 = 15;
    let mut healthy = Vec::new();
    for _ in 0..4 {
        let conn = connect(&engine).await;
        let mut sub = conn
            .subscribe(NS, "video", SubscribeOptions::default())
            .await
            .expect("subscribe");
        healthy.push(tokio::spawn(async move {
            let mut delays = Vec::new();
            let mut seen = Seen::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while seen.values().map(Vec::len).sum::<usize>() < (GROUPS * OBJECTS) as usize {
                match tokio::time::timeout_at(deadline, sub.next()).await {
                    Ok(Some(Event::Object(o))) => {
                        let sent_us = u64::from_be_bytes(o.payload[..8].try_into().expect("stamp"));
                        let now_us = START.elapsed().as_micros() as u64;
                        delays.push(now_us.saturating_sub(sent_us));
                        seen.entry(o.group).or_default().push(o.object);
                    }
                    _ => break,
                }
            }
            drop(conn);
            (seen, delays)
        }));
    }

    // ~2.4 Mbit/s: one 60 kB object then fourteen 10 kB objects per group.
    for g in 0..GROUPS {
        let mut group = publisher.group(g).await.expect("group");
        for o in 0..OBJECTS {
            let size = if o == 0 { 60_000 } else { 10_000 };
            let mut payload = vec![0u8; size];
            payload[..8].copy_from_slice(&(START.elapsed().as_micros() as u64).to_be_bytes());
            group
                .write(Bytes::from(payload))
                .await
                .expect("publisher is never blocked");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        group.finish().await.expect("finish");
    }

    let expected: Vec<u64> = (0..OBJECTS).collect();
    let mut all = Vec::new();
    for h in healthy {
        let (seen, delays) = h.await.expect("healthy viewer");
        assert_eq!(
            seen.len() as u64,
            GROUPS,
            "every group reaches healthy viewers"
        );
        for objects in seen.values() {
            assert_eq!(objects, &expected);
        }
        all.extend(delays);
    }
    all.sort_unstable();
    let p = |q: f64| all[((all.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    eprintln!(
        "healthy viewers with a stalled peer: per-object delay p50 {:.2} ms, p99 {:.2} ms (n={})",
        p(0.5),
        p(0.99),
        all.len()
    );
    // The stalled viewer's session is still up (it was slowed, not killed), and when it reads
    // again it is at the live edge: old groups were abandoned (reset), the newest one arrives.
    assert!(stalled_conn.close_reason().is_none());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (seen, _) = collect(stalled, usize::MAX, Duration::from_secs(3)).await;
    assert_eq!(
        seen.get(&(GROUPS - 1)),
        Some(&expected),
        "the stalled viewer catches up with the newest group"
    );
    let complete = seen.values().filter(|o| **o == expected).count() as u64;
    assert!(
        complete < GROUPS,
        "old groups were skipped, not queued: {:?}",
        seen.keys().collect::<Vec<_>>()
    );
    let (_, metrics) = engine.http_get("/metrics");
    assert!(
        metrics.contains("relay_groups_abandoned_total"),
        "abandoned groups are counted"
    );
}

static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

#[tokio::test]
async fn a_departing_publisher_ends_subscriptions_with_publish_done_and_a_new_one_resumes() {
    let engine = Engine::start(&["--publisher-grace-ms", "0"]);
    let viewer = connect(&engine).await;
    {
        let pub_conn = connect(&engine).await;
        let publisher = pub_conn
            .publish(NS, "video", PublishOptions::default())
            .await
            .expect("publish");
        let sub = viewer
            .subscribe(NS, "video", SubscribeOptions::default())
            .await
            .expect("subscribe");
        let reader = tokio::spawn(collect(sub, 100, Duration::from_secs(20)));
        let mut g = publisher.group(0).await.expect("group");
        g.write(Bytes::from_static(b"a")).await.expect("write");
        g.finish().await.expect("finish");
        publisher
            .finish(client::status::TRACK_ENDED)
            .await
            .expect("publish done");
        let (seen, ended) = reader.await.expect("reader");
        assert_eq!(seen.get(&0), Some(&vec![0]));
        let (code, _) = ended.expect("PUBLISH_DONE reaches the subscriber");
        assert_eq!(code, client::status::TRACK_ENDED);
    }
    // A new publisher on the same track: subscribing again works and objects flow.
    let pub_conn = connect(&engine).await;
    let publisher = pub_conn
        .publish(NS, "video", PublishOptions::default())
        .await
        .expect("publish again");
    let sub = viewer
        .subscribe(NS, "video", SubscribeOptions::default())
        .await
        .expect("subscribe again");
    let reader = tokio::spawn(collect(sub, 2, Duration::from_secs(20)));
    let mut g = publisher.group(1).await.expect("group");
    g.write(Bytes::from_static(b"b")).await.expect("write");
    g.write(Bytes::from_static(b"c")).await.expect("write");
    g.finish().await.expect("finish");
    let (seen, _) = reader.await.expect("reader");
    assert_eq!(seen.get(&1), Some(&vec![0, 1]));
}

#[tokio::test]
async fn a_publisher_reconnecting_within_the_grace_window_keeps_the_viewers() {
    let engine = Engine::start(&["--publisher-grace-ms", "3000"]);
    let viewer = connect(&engine).await;
    let first = connect(&engine).await;
    let publisher = first
        .publish(NS, "video", PublishOptions::default())
        .await
        .expect("publish");
    let sub = viewer
        .subscribe(NS, "video", SubscribeOptions::default())
        .await
        .expect("subscribe");
    let reader = tokio::spawn(collect(sub, 4, Duration::from_secs(20)));
    let mut g = publisher.group(0).await.expect("group");
    g.write(Bytes::from_static(b"0")).await.expect("write");
    g.write(Bytes::from_static(b"1")).await.expect("write");
    g.finish().await.expect("finish");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The encoder's connection drops without PUBLISH_DONE...
    first.close(0, "network blip");
    drop(publisher);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...and it comes back, continuing its group numbering.
    let second = connect(&engine).await;
    let publisher = second
        .publish(NS, "video", PublishOptions::default())
        .await
        .expect("publish again");
    let mut g = publisher.group(1).await.expect("group");
    g.write(Bytes::from_static(b"2")).await.expect("write");
    g.write(Bytes::from_static(b"3")).await.expect("write");
    g.finish().await.expect("finish");
    let (seen, ended) = reader.await.expect("reader");
    assert!(
        ended.is_none(),
        "the viewer's subscription survived the reconnect: {ended:?}"
    );
    assert_eq!(seen.get(&0), Some(&vec![0, 1]));
    assert_eq!(seen.get(&1), Some(&vec![0, 1]));
}

#[tokio::test]
async fn sigterm_sends_goaway_before_the_engine_exits() {
    let engine = Engine::start(&[]);
    let viewer = connect(&engine).await;
    let pid = engine.pid();
    let waiter = tokio::spawn({
        let viewer = viewer.clone();
        async move { tokio::time::timeout(Duration::from_secs(10), viewer.goaway_received()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let goaway = waiter
        .await
        .expect("task")
        .expect("GOAWAY within 10 s")
        .expect("GOAWAY before the session closed");
    assert!(
        goaway.new_session_uri.is_empty(),
        "no migration target: reconnect to the same URI"
    );
    assert_eq!(engine.terminate(), Some(0));
}

/// A gauge's value from the engine's /metrics (`None` when absent).
fn gauge(engine: &Engine, name: &str) -> Option<f64> {
    let (_, text) = engine.http_get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn the_cache_keeps_the_configured_window_of_a_track() {
    const OBJECT: usize = 100_000;
    let engine = Engine::start(&["--cache-window-secs", "1"]);
    let pub_conn = connect(&engine).await;
    let publisher = pub_conn
        .publish(NS, "video", PublishOptions::default())
        .await
        .expect("publish");
    let write_group = |g: u64| {
        let publisher = &publisher;
        async move {
            let mut group = publisher.group(g).await.expect("group");
            for _ in 0..2 {
                group
                    .write(Bytes::from(vec![g as u8; OBJECT]))
                    .await
                    .expect("write");
            }
            group.finish().await.expect("finish");
        }
    };
    let from_the_start = || SubscribeOptions {
        start: Start::Absolute(client::Location {
            group: 0,
            object: 0,
        }),
        ..Default::default()
    };
    // Three groups within a second: all of them are cached, for any viewer who asks.
    for g in 0..3 {
        write_group(g).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let viewer = connect(&engine).await;
    let sub = viewer
        .subscribe(NS, "video", from_the_start())
        .await
        .expect("subscribe");
    let (seen, _) = collect(sub, 6, Duration::from_secs(10)).await;
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    let before = gauge(&engine, "relay_cache_bytes").expect("relay_cache_bytes gauge");
    assert!(
        before >= (6 * OBJECT) as f64,
        "six 100 kB objects cached: {before}"
    );

    // More than the window later, a new group starts: the groups followed by one older than
    // the window go, the last complete one stays (it ended less than a window ago).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    write_group(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = connect(&engine).await;
    let sub = late
        .subscribe(NS, "video", from_the_start())
        .await
        .expect("subscribe");
    let (seen, _) = collect(sub, 4, Duration::from_secs(10)).await;
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        vec![2, 3],
        "only the last window of the track is cached"
    );
    let after = gauge(&engine, "relay_cache_bytes").expect("relay_cache_bytes gauge");
    assert!(
        after >= (4 * OBJECT) as f64 && after < (6 * OBJECT) as f64,
        "two groups of two 100 kB objects cached: {after}"
    );
    assert_eq!(gauge(&engine, "relay_tracks"), Some(1.0));
}
