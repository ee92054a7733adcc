//! The relay mesh with real processes: an origin engine and an edge engine (`serve --origin`)
//! sharing one PostgreSQL database. A publisher pushes to the origin with its stream key;
//! viewers with playback tokens watch at the edge. Checks what an operator relies on: one
//! upstream subscription per track however many viewers, viewers at the edge start on a group
//! boundary and miss nothing, the edge authorizes viewers itself, an unwatched track is
//! unsubscribed upstream, and the publisher's end reaches the edge's viewers.
//! Needs PostgreSQL (Debian's `postgresql`, or CLUTCHCALL_TEST_DATABASE_URL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../api/tests/support/pg.rs"]
mod pg;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use client::{Config, Connection, Event, PublishOptions, Start, SubscribeOptions, Verify};
use support::{http, Engine};

/// Bounds for waits (never thresholds on how fast things are).
const WAIT: Duration = Duration::from_secs(30);
const OBJECTS_PER_GROUP: u64 = 10;

fn client_config(engine: &Engine, token: &str) -> Config {
    let mut c = Config::new(Verify::Pinned(vec![engine
        .cert_sha256()
        .parse()
        .expect("fingerprint")]));
    c.token = Some(token.to_owned());
    c
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// POST JSON with the admin key; the JSON reply.
fn post(addr: SocketAddr, key: &str, path: &str, body: &str) -> serde_json::Value {
    let auth = bearer(key);
    let r = http(
        addr,
        "POST",
        path,
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert!(
        r.status / 100 == 2,
        "POST {path}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// A metric's value from the engine's Prometheus page (0 when absent).
fn metric(engine: &Engine, series: &str) -> f64 {
    let (status, text) = engine.http_get("/metrics");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Group → object ids in arrival order, checking every payload names its own location.
async fn watch(
    mut sub: client::Subscription,
    objects: usize,
    tag: &str,
) -> (BTreeMap<u64, Vec<u64>>, Option<String>) {
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while n < objects {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(Event::Object(o))) => {
                assert_eq!(
                    o.payload,
                    Bytes::from(format!("{tag}{}:{}", o.group, o.object)),
                    "payload of {}:{} arrived under another location",
                    o.group,
                    o.object
                );
                seen.entry(o.group).or_default().push(o.object);
                n += 1;
            }
            Ok(Some(Event::Ended { reason, .. })) => return (seen, Some(reason)),
            Ok(None) | Err(_) => break,
        }
    }
    (seen, None)
}

/// Every group starts at object 0 and has no gap; groups follow each other.
fn assert_whole_groups(seen: &BTreeMap<u64, Vec<u64>>, who: &str) {
    assert!(!seen.is_empty(), "{who} received nothing");
    let groups: Vec<u64> = seen.keys().copied().collect();
    for w in groups.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{who}: a group is missing: {groups:?}");
    }
    for (g, objects) in seen {
        let expected: Vec<u64> = (0..objects.len() as u64).collect();
        assert_eq!(
            objects, &expected,
            "{who}: group {g} must start at its first object and have no gap"
        );
    }
}

/// An origin and an edge on one fresh PostgreSQL database; `None` when PostgreSQL is missing
/// (outside CI).
struct Mesh {
    origin: Engine,
    edge: Engine,
    /// The bootstrap admin API key and its org.
    key: String,
    org: String,
    /// The shared database's URL.
    db: String,
}

/// A live input: its ids and stream key.
struct Input {
    id: String,
    lv: String,
    stream_key: String,
}

impl Mesh {
    async fn start(edge_args: &[&str]) -> Option<Mesh> {
        let db = pg::postgres_database().await?;
        let origin = Engine::start_with(&[], &["--database-url", &db]);
        let (key, org) = support::credentials(&origin.data_dir);
        let origin_http = format!("http://{}", origin.http);
        let origin_url = origin.moqt_url();
        let mut args = vec![
            "--database-url",
            db.as_str(),
            "--origin",
            origin_url.as_str(),
            "--origin-http",
            origin_http.as_str(),
        ];
        args.extend_from_slice(edge_args);
        let edge = Engine::start_with(&[], &args);
        Some(Mesh {
            origin,
            edge,
            key,
            org,
            db,
        })
    }

    /// Create an input through `engine`'s API.
    fn input(&self, engine: &Engine, name: &str) -> Input {
        let created = post(
            engine.http,
            &self.key,
            &format!("/v1/orgs/{}/live_inputs", self.org),
            &format!(r#"{{"name":"{name}","ingest":"fmp4"}}"#),
        );
        let field = |v: &serde_json::Value| v.as_str().expect("string field").to_owned();
        Input {
            id: field(&created["input"]["id"]),
            lv: field(&created["input"]["external_input_id"]),
            stream_key: field(&created["streamKey"]),
        }
    }

    /// Wait until `engine`'s API reports the input's status `state` (`live` / `idle`).
    async fn wait_for_state(&self, engine: &Engine, input: &Input, state: &str) {
        let auth = bearer(&self.key);
        let path = format!("/v1/orgs/{}/live_inputs/{}", self.org, input.id);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = http(
                engine.http,
                "GET",
                &path,
                &[("Authorization", auth.as_str())],
                b"",
            );
            let got = r.json()["input"]["status"]["state"].clone();
            if got == state {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "status through {} stayed {got} (want {state})",
                engine.http
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Mint a viewer's playback token through `engine`'s API: the reply (token, kid, …).
    fn mint(&self, engine: &Engine, input: &Input) -> serde_json::Value {
        post(
            engine.http,
            &self.key,
            &format!(
                "/v1/orgs/{}/live_inputs/{}/playback_tokens",
                self.org, input.id
            ),
            r#"{"ttlSeconds":600}"#,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_serves_many_viewers_from_one_upstream_subscription() {
    let Some(mesh) = Mesh::start(&["--upstream-linger-ms", "500"]).await else {
        return;
    };
    let Mesh {
        origin, edge, org, ..
    } = &mesh;
    // The input and a viewer token, through the edge's control plane (same database).
    let input = mesh.input(edge, "mesh");
    let (lv, stream_key) = (input.lv.clone(), input.stream_key.clone());
    let token = mesh.mint(edge, &input)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let ns = ["stream", org.as_str(), lv.as_str()];

    // Nothing is published yet: the edge answers "no such track" as the origin would (and does
    // not keep the refusal: the viewers below find the track once it exists).
    let early = Connection::connect(&edge.moqt_url(), client_config(edge, &token))
        .await
        .expect("connect");
    assert!(
        early
            .subscribe(&ns[..], "video", SubscribeOptions::default())
            .await
            .is_err(),
        "a track the origin does not have must be refused at the edge"
    );

    // The publisher, at the origin: groups of 10 objects, 40 ms apart.
    let (_publisher_conn, publisher) = publish_video(origin, &stream_key, &ns).await;
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = publish_until(publisher, stop.clone(), "");
    // The input reads live through the edge's API too (the origin reports it).
    mesh.wait_for_state(edge, &input, "live").await;
    // Join in the middle of a group.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Refused at the edge: a bad token, another stream's.
    let other = mesh.input(edge, "other");
    let other_token = mesh.mint(edge, &other)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    for (what, bad) in [
        ("a garbage token", "x.y.z"),
        ("another stream's token", other_token.as_str()),
    ] {
        let conn = Connection::connect(&edge.moqt_url(), client_config(edge, bad))
            .await
            .expect("connect");
        let refused = conn
            .subscribe(&ns[..], "video", SubscribeOptions::default())
            .await;
        assert!(refused.is_err(), "the edge must refuse {what}");
    }

    // (Whether the early refusal reached the origin depends on whether the edge had connected
    // to it yet: count from here.)
    let subscribes = || metric(origin, "relay_requests_total{type=\"SUBSCRIBE\"}");
    let before = subscribes();
    // Four viewers at the edge, at once.
    let mut viewers = Vec::new();
    for _ in 0..4 {
        let token = token.clone();
        let edge_cfg = client_config(edge, &token);
        let url = edge.moqt_url();
        let ns = ns.map(str::to_owned);
        viewers.push(tokio::spawn(async move {
            let conn = Connection::connect(&url, edge_cfg)
                .await
                .expect("viewer connects to the edge");
            let sub = conn
                .subscribe(
                    &ns[..],
                    "video",
                    SubscribeOptions {
                        start: Start::Latest,
                        ..Default::default()
                    },
                )
                .await
                .expect("the edge accepts the viewer's token");
            let seen = watch(sub, 25, "").await;
            drop(conn);
            seen
        }));
    }
    for (i, v) in viewers.into_iter().enumerate() {
        let (seen, ended) = v.await.expect("viewer task");
        assert!(
            ended.is_none(),
            "viewer {i}: the track ended early: {ended:?}"
        );
        assert_whole_groups(&seen, &format!("viewer {i}"));
        assert!(seen.values().map(Vec::len).sum::<usize>() >= 25);
    }
    // However many viewers, the origin saw one SUBSCRIBE (and one joining FETCH) for the track.
    assert_eq!(subscribes() - before, 1.0);

    // Nobody watches any more: the edge unsubscribes upstream after its linger time.
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(origin, "relay_subscriptions") > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edge kept an unwatched track subscribed at the origin"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A new viewer subscribes it again, again from a group boundary, and sees the end.
    let conn = Connection::connect(&edge.moqt_url(), client_config(edge, &token))
        .await
        .expect("connect");
    let sub = conn
        .subscribe(&ns[..], "video", SubscribeOptions::default())
        .await
        .expect("subscribe again");
    let watcher = tokio::spawn(watch(sub, 10_000, ""));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    publishing.await.expect("publisher task");
    mesh.wait_for_state(edge, &input, "idle").await;
    let (seen, ended) = watcher.await.expect("watcher");
    assert_whole_groups(&seen, "the returning viewer");
    assert!(
        ended.is_some(),
        "the publisher's end must reach viewers at the edge"
    );
    assert_eq!(subscribes() - before, 2.0);
}

fn delete(addr: SocketAddr, key: &str, path: &str) -> u16 {
    let auth = bearer(key);
    http(
        addr,
        "DELETE",
        path,
        &[("Authorization", auth.as_str())],
        b"",
    )
    .status
}

/// Subscribe at `engine` with `token`: whether the relay accepted it.
async fn can_watch(engine: &Engine, token: &str, ns: &[&str]) -> bool {
    let Ok(conn) = Connection::connect(&engine.moqt_url(), client_config(engine, token)).await
    else {
        return false;
    };
    conn.subscribe(ns, "video", SubscribeOptions::default())
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_through_an_edge_reach_the_origin() {
    let Some(mesh) = Mesh::start(&[]).await else {
        return;
    };
    let Mesh {
        origin,
        edge,
        key,
        org,
        ..
    } = &mesh;
    let input = mesh.input(origin, "keys");
    let (id, lv, stream_key) = (input.id.clone(), input.lv.clone(), input.stream_key.clone());
    let ns = ["stream", org.as_str(), lv.as_str()];

    // An edge takes no publishers: the broadcast lives at the origin.
    let at_edge = Connection::connect(&edge.moqt_url(), client_config(edge, &stream_key))
        .await
        .expect("connect to the edge");
    assert!(
        at_edge
            .publish(&ns[..], "video", PublishOptions::default())
            .await
            .is_err(),
        "the edge must refuse a publisher"
    );

    // A publisher at the origin; its key rotated through the edge's API cuts it off there.
    let (publisher_conn, _publisher) = publish_video(origin, &stream_key, &ns).await;
    post(
        edge.http,
        key,
        &format!("/v1/orgs/{org}/live_inputs/{id}/stream_key"),
        "{}",
    );
    let reason = tokio::time::timeout(WAIT, publisher_conn.closed())
        .await
        .expect("the origin must disconnect the publisher whose key was rotated on the edge");
    assert_eq!(reason.reason, client::AUTH_FAILED, "{reason:?}");

    // Signing keys: the origin signs with the key the edge rotated to, and stops accepting
    // tokens of a key the edge deleted.
    let mint = |engine: &Engine| mesh.mint(engine, &input);
    let old = mint(origin);
    let old_kid = old["kid"].as_str().expect("kid").to_owned();
    let old_token = old["token"].as_str().expect("token").to_owned();
    assert!(
        can_watch(origin, &old_token, &ns).await,
        "a fresh token is accepted"
    );
    post(
        edge.http,
        key,
        &format!("/v1/orgs/{org}/signing_keys/rotate"),
        "{}",
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let kid = mint(origin)["kid"].as_str().expect("kid").to_owned();
        if kid != old_kid {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the origin kept signing with the key the edge rotated away"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        delete(
            edge.http,
            key,
            &format!("/v1/orgs/{org}/signing_keys/{old_kid}")
        ),
        204
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while can_watch(origin, &old_token, &ns).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the origin still accepts a token whose key was deleted on the edge"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connect to `engine` with `key` and PUBLISH `video` in `ns`.
async fn publish_video(
    engine: &Engine,
    key: &str,
    ns: &[&str],
) -> (Connection, client::TrackPublisher) {
    let conn = Connection::connect(&engine.moqt_url(), client_config(engine, key))
        .await
        .expect("publisher connects");
    let publisher = conn
        .publish(ns, "video", PublishOptions::default())
        .await
        .expect("the stream key publishes");
    (conn, publisher)
}

/// Publish groups of `OBJECTS_PER_GROUP` objects on `video` until `stop`, each payload
/// `<tag><group>:<object>`; errors end it quietly (the origin may go away under it).
fn publish_until(
    publisher: client::TrackPublisher,
    stop: Arc<AtomicBool>,
    tag: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut group = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut g) = publisher.next_group().await else {
                return;
            };
            for object in 0..OBJECTS_PER_GROUP {
                if g.write(Bytes::from(format!("{tag}{group}:{object}")))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            if g.finish().await.is_err() {
                return;
            }
            group += 1;
        }
        let _ = publisher.finish(client::status::TRACK_ENDED).await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_origin_restart_edge_viewers_are_ended_not_stalled_and_can_watch_again() {
    let Some(mesh) = Mesh::start(&[]).await else {
        return;
    };
    let input = mesh.input(&mesh.origin, "restart");
    let token = mesh.mint(&mesh.edge, &input)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let ns = ["stream", mesh.org.as_str(), input.lv.as_str()];
    let Mesh {
        origin, edge, db, ..
    } = mesh;
    let (origin_http, origin_relay) = (origin.http, origin.relay);

    let (_publisher_conn, publisher) = publish_video(&origin, &input.stream_key, &ns).await;
    let stop = Arc::new(AtomicBool::new(false));
    let first_run = publish_until(publisher, stop.clone(), "");

    let viewer = Connection::connect(&edge.moqt_url(), client_config(&edge, &token))
        .await
        .expect("viewer connects");
    let mut sub = viewer
        .subscribe(&ns[..], "video", SubscribeOptions::default())
        .await
        .expect("subscribe at the edge");
    let first = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an object");
    assert!(matches!(first, Some(Event::Object(_))), "{first:?}");

    // The origin restarts (SIGTERM: GOAWAY, drain, exit) where the edge expects it; the
    // encoder comes back and numbers its groups afresh.
    assert_eq!(origin.terminate(), Some(0), "the origin exits cleanly");
    let _ = first_run.await;
    let origin = Engine::start_on(origin_http, origin_relay, &[], &["--database-url", &db]);
    // (The encoder reconnects.)
    let (_publisher_conn, publisher) = publish_video(&origin, &input.stream_key, &ns).await;
    let second_run = publish_until(publisher, stop.clone(), "r2-");

    // The viewer is not left waiting: its track either ends (PUBLISH_DONE; the new run is
    // numbered below what it has seen) or goes on with the new run's objects (the edge came
    // back when the new numbering had already passed it).
    // (A bound, not a speed: under a loaded CI machine the edge may first hit the draining
    // origin, wait out a refeed window and a grace window before the track ends.)
    let deadline = tokio::time::Instant::now() + 2 * WAIT;
    loop {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(Event::Object(o))) if o.payload.starts_with(b"r2-") => break,
            Ok(Some(Event::Object(_))) => continue,
            Ok(Some(Event::Ended { .. })) => break,
            Ok(None) => panic!("the subscription vanished without PUBLISH_DONE"),
            Err(_) => panic!("the viewer at the edge stalled after the origin restarted"),
        }
    }

    // Watching again at the same edge works: it reconnected to the new origin.
    let deadline = tokio::time::Instant::now() + WAIT;
    let seen = loop {
        let sub = viewer
            .subscribe(&ns[..], "video", SubscribeOptions::default())
            .await;
        if let Ok(sub) = sub {
            let (seen, _) = watch(sub, 15, "r2-").await;
            if !seen.is_empty() {
                break seen;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edge never served the restarted origin's track"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_whole_groups(&seen, "the viewer after the restart");
    stop.store(true, Ordering::Relaxed);
    let _ = second_run.await;
    assert_eq!(edge.terminate(), Some(0), "the edge exits cleanly");
    assert_eq!(origin.terminate(), Some(0), "the origin exits cleanly");
}
