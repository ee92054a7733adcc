//! End to end, in process: ffmpeg publishes a test pattern over RTMP to `ingest::Server`, which
//! publishes into a `relay::Relay` served on QUIC; `client` subscribes like a viewer would.
//! Needs `ffmpeg` (Debian's package) on PATH.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use client::{
    Config as ClientConfig, Connection, Event, Received, Start, SubscribeOptions, Verify,
};
use futures::future::BoxFuture;
use media::catalog::{self, Catalog};
use media::mp4read::{Event as Mp4Event, Reader as Mp4Reader};
use relay::auth::{AuthRequest, Authorizer, Denied, DenyAll, Grant, Policy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ORG: &str = "org_test";
const KEY: &str = "sk_good";

async fn within<F: Future>(secs: u64, what: &str, f: F) -> Result<F::Output> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .map_err(|_| format!("timed out: {what}").into())
}

struct Keys;
impl Authorizer for Keys {
    fn authorize(&self, r: AuthRequest) -> BoxFuture<'static, std::result::Result<Grant, Denied>> {
        Box::pin(async move {
            if r.namespace.first().map(Vec::as_slice) != Some(b"stream")
                || r.namespace.get(1).map(Vec::as_slice) != Some(ORG.as_bytes())
            {
                return Err(Denied("bad namespace".into()));
            }
            if r.token.as_deref() == Some(KEY.as_bytes()) {
                Ok(Grant::default())
            } else {
                Err(Denied("wrong stream key".into()))
            }
        })
    }
}

struct Orgs;
impl ingest::Lookup for Orgs {
    fn org_of(&self, lv: &str) -> BoxFuture<'static, std::result::Result<Option<String>, String>> {
        let known = lv.starts_with("lv_");
        Box::pin(async move { Ok(known.then(|| ORG.to_owned())) })
    }
}

struct Env {
    relay_addr: SocketAddr,
    rtmp: SocketAddr,
    status: tokio::sync::watch::Receiver<BTreeMap<String, ingest::Status>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn test_ladder() -> Vec<ingest::Rendition> {
    vec![
        ingest::Rendition::new("360p", 360, 600_000),
        ingest::Rendition::new("240p", 240, 300_000),
        ingest::Rendition::new("720p", 720, 2_000_000),
    ]
}

async fn start(config: ingest::Config) -> Result<Env> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let certs = net::tls::Certs::new(net::tls::Config::default())?;
    let mut server = net::server::Server::bind(net::server::Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        ..net::server::Config::new(certs)
    })?;
    let relay_addr = server.local_addrs()[0];
    let relay = relay::Relay::new(
        relay::Config::default(),
        Policy::new(Some(vec![]), Arc::new(DenyAll)),
    );
    let r = relay.clone();
    let relay_task = tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let r = r.clone();
            tokio::spawn(async move { r.serve(incoming.session, incoming.url).await });
        }
    });
    let ing = ingest::Server::bind(
        ingest::Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..config
        },
        &relay,
        Arc::new(Keys),
        Arc::new(Orgs),
    )
    .await?;
    let rtmp = ing.local_addr()?;
    let status = ing.status();
    let ingest_task = tokio::spawn(async move {
        let _ = ing.run().await;
    });
    Ok(Env {
        relay_addr,
        rtmp,
        status,
        tasks: vec![relay_task, ingest_task],
    })
}

fn config() -> ingest::Config {
    ingest::Config {
        ladder: test_ladder(),
        preset: "ultrafast".into(),
        grace: Duration::from_secs(5),
        restart_min: Duration::from_millis(200),
        ..Default::default()
    }
}

/// ffmpeg pushing `secs` of 640x360 test pattern + tone, realtime.
fn encoder(rtmp: SocketAddr, lv: &str, key: &str, secs: u32) -> Result<Child> {
    Ok(Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ])
        .args([
            "-t",
            &secs.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "flv",
        ])
        .arg(format!("rtmp://{rtmp}/live/{lv}/{key}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?)
}

async fn viewer(env: &Env) -> Result<Connection> {
    Ok(within(
        10,
        "connect",
        Connection::connect(
            &format!("moqt://{}/", env.relay_addr),
            ClientConfig::new(Verify::InsecureAcceptAnyCertificate),
        ),
    )
    .await??)
}

fn ns(lv: &str) -> [&str; 3] {
    ["stream", ORG, lv]
}

/// Wait for a catalog naming all of `want`.
async fn catalog_with(conn: &Connection, lv: &str, want: &[&str]) -> Result<Catalog> {
    within(30, "catalog with every rendition", async {
        loop {
            if let Ok(mut sub) = conn
                .subscribe(ns(lv), catalog::TRACK, SubscribeOptions::default())
                .await
            {
                while let Ok(Some(Event::Object(o))) =
                    tokio::time::timeout(Duration::from_secs(3), sub.next()).await
                {
                    let c = Catalog::parse(&o.payload)?;
                    if want.iter().all(|w| c.tracks.iter().any(|t| t.name == *w)) {
                        return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(c);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await?
}

/// Objects of a track for `secs` (starting at the latest group).
async fn collect(conn: &Connection, lv: &str, track: &str, secs: u64) -> Result<Vec<Received>> {
    let mut sub = within(
        10,
        "subscribe",
        conn.subscribe(
            ns(lv),
            track,
            SubscribeOptions {
                start: Start::Latest,
                ..Default::default()
            },
        ),
    )
    .await??;
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while let Ok(Some(ev)) = tokio::time::timeout_at(end, sub.next()).await {
        match ev {
            Event::Object(o) => out.push(o),
            Event::Ended { reason, .. } => return Err(format!("{track} ended: {reason}").into()),
        }
    }
    Ok(out)
}

/// (decode time, sync) of the first sample of a chunk, read with the track's init segment.
fn first_sample(init: &[u8], chunk: &[u8]) -> Option<(u64, bool)> {
    let mut r = Mp4Reader::new();
    r.push(init);
    r.push(chunk);
    while let Ok(Some(ev)) = r.next_event() {
        if let Mp4Event::Samples(s) = ev {
            return s.first().map(|s| (s.dts, s.sync));
        }
    }
    None
}

fn init_of(c: &Catalog, name: &str) -> Vec<u8> {
    c.tracks
        .iter()
        .find(|t| t.name == name)
        .and_then(|t| t.init_data.as_deref())
        .and_then(catalog::unbase64)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_every_rendition_aligned_late_joiner_on_keyframe() -> Result {
    let env = start(config()).await?;
    let mut enc = encoder(env.rtmp, "lv_aligned", KEY, 8)?;
    let conn = viewer(&env).await?;
    let all = ["video/source", "video/360p", "video/240p", "audio/source"];
    let cat = catalog_with(&conn, "lv_aligned", &all).await?;
    // Never upscale: the 720p rung is not produced for a 360p source.
    assert!(!cat.tracks.iter().any(|t| t.name == "video/720p"));
    for t in &cat.tracks {
        assert_eq!(t.packaging, "cmaf");
        assert!(
            t.codec.is_some() && t.init_data.is_some() && t.bitrate.is_some(),
            "{t:?}"
        );
        if t.role.as_deref() == Some("video") {
            assert_eq!(t.alt_group, Some(1));
            assert!(t.width.is_some() && t.height.is_some());
            assert!(t.framerate.is_some(), "{t:?}");
        }
    }
    assert_eq!(
        cat.tracks
            .iter()
            .find(|t| t.name == "video/240p")
            .and_then(|t| t.height),
        Some(240)
    );
    assert!(cat
        .tracks
        .iter()
        .find(|t| t.name == "audio/source")
        .and_then(|t| t.codec.clone())
        .unwrap()
        .starts_with("mp4a.40."));

    // Subscribe every rendition at once (late joiners: the broadcast runs already).
    let (src, r360, r240, audio) = tokio::join!(
        collect(&conn, "lv_aligned", "video/source", 3),
        collect(&conn, "lv_aligned", "video/360p", 3),
        collect(&conn, "lv_aligned", "video/240p", 3),
        collect(&conn, "lv_aligned", "audio/source", 3),
    );
    let (src, r360, r240, audio) = (src?, r360?, r240?, audio?);
    for (name, objs) in [
        ("video/source", &src),
        ("video/360p", &r360),
        ("video/240p", &r240),
        ("audio/source", &audio),
    ] {
        assert!(objs.len() > 10, "{name}: only {} objects", objs.len());
        // A late joiner starts at a group boundary, on a keyframe.
        assert_eq!(objs[0].object, 0, "{name} starts mid-group");
        let init = init_of(&cat, name);
        assert_eq!(
            first_sample(&init, &objs[0].payload).map(|s| s.1),
            Some(true),
            "{name} does not start on a keyframe"
        );
    }
    // Group boundaries align: the first object of a group has the same decode time in every
    // video rendition, and is a keyframe in each.
    let starts = |name: &str, objs: &[Received]| -> BTreeMap<u64, u64> {
        let init = init_of(&cat, name);
        objs.iter()
            .filter(|o| o.object == 0)
            .filter_map(|o| {
                let (dts, sync) = first_sample(&init, &o.payload)?;
                assert!(sync, "{name} group {} starts without a keyframe", o.group);
                Some((o.group, dts))
            })
            .collect()
    };
    let s = starts("video/source", &src);
    let a = starts("video/360p", &r360);
    let b = starts("video/240p", &r240);
    let common: Vec<_> = s
        .keys()
        .filter(|g| a.contains_key(g) && b.contains_key(g))
        .collect();
    assert!(!common.is_empty(), "no common group: {s:?} {a:?} {b:?}");
    for g in common {
        assert_eq!(s[g], a[g], "group {g}: 360p not aligned");
        assert_eq!(s[g], b[g], "group {g}: 240p not aligned");
    }
    let _ = enc.kill().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_or_unknown_input_is_refused() -> Result {
    // Connections on the caller's runtime (no event loop threads).
    let env = start(ingest::Config {
        ladder: vec![],
        event_loops: 0,
        ..config()
    })
    .await?;
    for (lv, key) in [("lv_refused", "sk_wrong"), ("nope", KEY)] {
        let mut enc = encoder(env.rtmp, lv, key, 5)?;
        let status = within(15, "refused encoder exits", enc.wait()).await??;
        assert!(!status.success(), "{lv}/{key} was accepted");
        let mut err = String::new();
        if let Some(mut e) = enc.stderr.take() {
            let _ = e.read_to_string(&mut err).await;
        }
        assert!(
            err.contains("Unauthorized")
                || err.contains("BadName")
                || err.contains("auth_failed")
                || !err.is_empty(),
            "{err}"
        );
    }
    assert!(env.status.borrow().is_empty());
    // The status text goes back on the wire: a raw client sees NetStream.Publish.Unauthorized.
    let reply = raw_publish(env.rtmp, "live/lv_refused", "sk_wrong", &[]).await?;
    assert!(reply.contains("NetStream.Publish.Unauthorized"), "{reply}");
    Ok(())
}

/// A minimal RTMP client: handshake, connect, createStream, publish, then `then` (raw bytes)
/// and silence; returns the printable bytes the server answered before it closed (waits up to
/// 5 s).
async fn raw_publish(addr: SocketAddr, app: &str, name: &str, then: &[u8]) -> Result<String> {
    use ingest::rtmp::{chunk, command, types};
    use media::amf0::Value;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut hs = vec![3u8];
    hs.extend_from_slice(&[0u8; 1536]);
    s.write_all(&hs).await?;
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.read_exact(&mut s0s1s2).await?;
    s.write_all(&s0s1s2[1..1537]).await?;
    let mut out = Vec::new();
    let cmds = [
        command(
            0,
            &[
                Value::string("connect"),
                Value::Number(1.0),
                Value::object([("app", Value::string(app))]),
            ],
        ),
        command(
            0,
            &[
                Value::string("createStream"),
                Value::Number(2.0),
                Value::Null,
            ],
        ),
        command(
            1,
            &[
                Value::string("publish"),
                Value::Number(3.0),
                Value::Null,
                Value::string(name),
                Value::string("live"),
            ],
        ),
    ];
    for c in &cmds {
        chunk::write(&mut out, 128, c);
    }
    let _ = types::COMMAND_AMF0;
    out.extend_from_slice(then);
    s.write_all(&out).await?;
    let mut reply = Vec::new();
    let _ = within(5, "server closes", s.read_to_end(&mut reply)).await;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_gone_silent_is_closed_at_the_idle_timeout() -> Result {
    // Once publishing, a connection is served by its own blocking thread: the idle timeout and
    // the second-publish refusal must still reach it.
    let env = start(ingest::Config {
        ladder: vec![],
        idle_timeout: Duration::from_secs(2),
        ..config()
    })
    .await?;
    // The timeout's status message proves the watchdog closed it (not the client giving up).
    let reply = raw_publish(env.rtmp, "live/lv_silent", KEY, &[]).await?;
    assert!(reply.contains("NetStream.Publish.Start"), "{reply}");
    assert!(reply.contains("NetConnection.Connect.Closed"), "{reply}");

    // A message that never completes (8 MB declared, a few bytes sent) is not activity.
    let reply = raw_publish(
        env.rtmp,
        "live/lv_endless",
        KEY,
        &[0x06, 0, 0, 0, 0x7f, 0xff, 0xff, 9, 1, 0, 0, 0, 1, 2, 3],
    )
    .await?;
    assert!(reply.contains("NetStream.Publish.Start"), "{reply}");
    assert!(reply.contains("NetConnection.Connect.Closed"), "{reply}");

    // A second publish on a publishing connection is refused with a status, not ignored.
    let mut second = Vec::new();
    ingest::rtmp::chunk::write(
        &mut second,
        128,
        &ingest::rtmp::command(
            1,
            &[
                media::amf0::Value::string("publish"),
                media::amf0::Value::Number(4.0),
                media::amf0::Value::Null,
                media::amf0::Value::string(KEY),
                media::amf0::Value::string("live"),
            ],
        ),
    );
    let reply = raw_publish(env.rtmp, "live/lv_twice", KEY, &second).await?;
    assert!(reply.contains("NetStream.Publish.Start"), "{reply}");
    assert!(reply.contains("already publishing"), "{reply}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoder_reconnect_keeps_viewers() -> Result {
    // Two event loops: the reconnecting encoder lands on the other loop than the first one
    // (round-robin), so the takeover crosses threads.
    let env = start(ingest::Config {
        ladder: vec![],
        event_loops: 2,
        ..config()
    })
    .await?;
    let mut enc = encoder(env.rtmp, "lv_reconnect", KEY, 3)?;
    let conn = viewer(&env).await?;
    catalog_with(&conn, "lv_reconnect", &["video/source"]).await?;
    let mut sub = conn
        .subscribe(
            ns("lv_reconnect"),
            "video/source",
            SubscribeOptions::default(),
        )
        .await?;
    let mut groups = Vec::new();
    // First encoder runs out; a second one connects within the grace window.
    let _ = within(20, "first encoder ends", enc.wait()).await?;
    let mut enc2 = encoder(env.rtmp, "lv_reconnect", KEY, 3)?;
    let end = tokio::time::Instant::now() + Duration::from_secs(6);
    while let Ok(Some(ev)) = tokio::time::timeout_at(end, sub.next()).await {
        match ev {
            Event::Object(o) => {
                if groups.last() != Some(&o.group) {
                    groups.push(o.group);
                }
            }
            Event::Ended { reason, .. } => return Err(format!("viewer dropped: {reason}").into()),
        }
    }
    let _ = enc2.kill().await;
    assert!(
        groups.windows(2).all(|w| w[0] < w[1]),
        "group ids must keep increasing: {groups:?}"
    );
    // Groups from both encoders (3 s each at one keyframe per second) reached the same viewer.
    assert!(groups.len() >= 5, "{groups:?}");
    assert!(env
        .status
        .borrow()
        .get("lv_reconnect")
        .is_some_and(|s| s.renditions.contains(&"video/source".to_owned())));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_ffmpeg_keeps_source_and_ladder_comes_back() -> Result {
    let env = start(ingest::Config {
        ladder: vec![ingest::Rendition::new("240p", 240, 300_000)],
        ..config()
    })
    .await?;
    let mut enc = encoder(env.rtmp, "lv_kill", KEY, 12)?;
    let conn = viewer(&env).await?;
    catalog_with(&conn, "lv_kill", &["video/source", "video/240p"]).await?;
    let mut status = env.status.clone();
    let pid = within(
        10,
        "transcoder pid",
        status.wait_for(|m| m.get("lv_kill").is_some_and(|s| s.transcoder_pid.is_some())),
    )
    .await??
    .get("lv_kill")
    .and_then(|s| s.transcoder_pid)
    .unwrap();
    let mut src = conn
        .subscribe(ns("lv_kill"), "video/source", SubscribeOptions::default())
        .await?;
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .await?;
    assert!(killed.success());
    // The source keeps flowing while the ladder is down.
    let mut got = 0;
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(Event::Object(_))) = tokio::time::timeout_at(end, src.next()).await {
        got += 1;
    }
    assert!(
        got > 20,
        "source stalled after the transcoder died: {got} objects"
    );
    // The failure is surfaced, then the ladder restarts and comes back in the catalog.
    let s = within(
        10,
        "restart",
        status.wait_for(|m| {
            m.get("lv_kill").is_some_and(|s| {
                s.transcoder_starts >= 2 && s.transcoder_pid.is_some_and(|p| p != pid)
            })
        }),
    )
    .await??
    .get("lv_kill")
    .cloned()
    .unwrap();
    assert!(s.transcoder_starts >= 2);
    catalog_with(&conn, "lv_kill", &["video/source", "video/240p"]).await?;
    let objs = collect(&conn, "lv_kill", "video/240p", 2).await?;
    assert!(!objs.is_empty(), "ladder did not come back");
    let _ = enc.kill().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_ffmpeg_is_surfaced_and_source_flows() -> Result {
    let env = start(ingest::Config {
        ffmpeg_path: "/nonexistent/ffmpeg".into(),
        ..config()
    })
    .await?;
    let mut enc = encoder(env.rtmp, "lv_noffmpeg", KEY, 5)?;
    let conn = viewer(&env).await?;
    catalog_with(&conn, "lv_noffmpeg", &["video/source", "audio/source"]).await?;
    let mut status = env.status.clone();
    let s = within(
        10,
        "error surfaced",
        status.wait_for(|m| {
            m.get("lv_noffmpeg")
                .is_some_and(|s| s.transcoder_error.is_some())
        }),
    )
    .await??
    .get("lv_noffmpeg")
    .cloned()
    .unwrap();
    assert!(s
        .transcoder_error
        .unwrap_or_default()
        .contains("cannot start"));
    assert!(
        collect(&conn, "lv_noffmpeg", "video/source", 1)
            .await?
            .len()
            > 5
    );
    let _ = enc.kill().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_disconnected_without_affecting_others() -> Result {
    let env = start(ingest::Config {
        ladder: vec![],
        idle_timeout: Duration::from_secs(2),
        publish_timeout: Duration::from_secs(3),
        ..config()
    })
    .await?;
    let mut enc = encoder(env.rtmp, "lv_hostile", KEY, 10)?;
    let conn = viewer(&env).await?;
    catalog_with(&conn, "lv_hostile", &["video/source"]).await?;
    let mut sub = conn
        .subscribe(
            ns("lv_hostile"),
            "video/source",
            SubscribeOptions::default(),
        )
        .await?;

    let closes = |mut s: tokio::net::TcpStream| async move {
        let mut sink = Vec::new();
        within(10, "hostile client disconnected", s.read_to_end(&mut sink))
            .await
            .map(|_| ())
    };
    let handshake = |mut s: tokio::net::TcpStream| async move {
        let mut hs = vec![3u8];
        hs.extend_from_slice(&[0u8; 1536]);
        s.write_all(&hs).await?;
        let mut back = vec![0u8; 1 + 2 * 1536];
        s.read_exact(&mut back).await?;
        s.write_all(&back[1..1537]).await?;
        Ok::<_, std::io::Error>(s)
    };
    // Garbage handshake.
    let mut g = tokio::net::TcpStream::connect(env.rtmp).await?;
    g.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    closes(g).await?;
    // Huge chunk size.
    let h = handshake(tokio::net::TcpStream::connect(env.rtmp).await?).await?;
    let mut h = h;
    h.write_all(&[
        0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
    ])
    .await?;
    closes(h).await?;
    // A message that never ends: declares 8 MB of video, sends a few bytes, then trickles.
    let mut n = handshake(tokio::net::TcpStream::connect(env.rtmp).await?).await?;
    n.write_all(&[0x06, 0, 0, 0, 0x7f, 0xff, 0xff, 9, 1, 0, 0, 0, 1, 2, 3])
        .await?;
    let trickle = async {
        for _ in 0..100 {
            if n.write_all(&[0xc6, 0]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    within(12, "never-ending message disconnected", trickle).await?;
    // Silent after connecting (never publishes).
    closes(handshake(tokio::net::TcpStream::connect(env.rtmp).await?).await?).await?;

    // The real encoder was not affected.
    let mut got = 0;
    let end = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(Event::Object(_))) = tokio::time::timeout_at(end, sub.next()).await {
        got += 1;
    }
    assert!(got > 10, "{got}");
    let _ = enc.kill().await;
    Ok(())
}
