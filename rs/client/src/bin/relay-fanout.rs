//! Relay fan-out load generator: one publisher and N subscribers over raw QUIC against a
//! running engine. Prints one JSON line: egress Gbit/s, per-object delay percentiles, losses.
//!
//! ```text
//! relay-fanout --relay moqt://127.0.0.1:4443 --http http://127.0.0.1:8080 \
//!     --subscribers 100 --seconds 10 --bitrate 3000000 --group-ms 1000 --fps 30
//! ```
//!
//! With `--subscribe-at URL` (repeatable) the subscribers connect round-robin to those relays
//! instead (edges of the relay the publisher uses: the relay mesh); `--pin-http URL`
//! (repeatable) adds those engines' certificate fingerprints to the accepted ones.
//!
//! Each group (`--group-ms` long) carries one large object (a third of the group's bytes, like
//! a keyframe) followed by small ones, paced at `--fps`. Every payload starts with its send
//! time (µs since the Unix epoch, big-endian u64); publisher and subscribers share the clock.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use client::{status, Config, Connection, Event, PublishOptions, Start, SubscribeOptions, Verify};
use futures::stream::{self, StreamExt};

struct Args {
    relay: String,
    http: Option<String>,
    subscribe_at: Vec<String>,
    pin_http: Vec<String>,
    subscribers: usize,
    seconds: f64,
    bitrate: u64,
    group_ms: u64,
    fps: u64,
    sockets: usize,
    insecure: bool,
    max_udp_payload: u16,
}

const USAGE: &str = "usage: relay-fanout --relay moqt://HOST:PORT [--http http://HOST:PORT | --insecure] \
[--subscribe-at moqt://EDGE:PORT ...] [--pin-http http://EDGE:PORT ...] [--subscribers N=100] [--seconds S=10] [--bitrate BPS=3000000] [--group-ms MS=1000] [--fps N=30] [--sockets N=8] [--max-udp-payload BYTES=1452]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        relay: String::new(),
        http: None,
        subscribe_at: Vec::new(),
        pin_http: Vec::new(),
        subscribers: 100,
        seconds: 10.0,
        bitrate: 3_000_000,
        group_ms: 1000,
        fps: 30,
        sockets: 8,
        insecure: false,
        max_udp_payload: 1452,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--insecure" {
            a.insecure = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--relay" => a.relay = value,
            "--http" => a.http = Some(value),
            "--subscribe-at" => a.subscribe_at.push(value),
            "--pin-http" => a.pin_http.push(value),
            "--subscribers" => a.subscribers = num(&value)? as usize,
            "--seconds" => {
                a.seconds = value
                    .parse()
                    .map_err(|e| format!("--seconds {value}: {e}"))?
            }
            "--bitrate" => a.bitrate = num(&value)?,
            "--group-ms" => a.group_ms = num(&value)?.max(1),
            "--fps" => a.fps = num(&value)?.max(1),
            "--sockets" => a.sockets = (num(&value)? as usize).max(1),
            "--max-udp-payload" => a.max_udp_payload = num(&value)?.clamp(1200, 65_000) as u16,
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if a.relay.is_empty() {
        return Err(format!("--relay is required\n{USAGE}"));
    }
    if a.http.is_none() && !a.insecure {
        return Err(format!(
            "--http (to pin the certificate) or --insecure is required\n{USAGE}"
        ));
    }
    Ok(a)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Per-subscriber results.
#[derive(Default)]
struct Tally {
    bytes: u64,
    objects: u64,
    delays_us: Vec<u64>,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("relay-fanout: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<String, Box<dyn std::error::Error>> {
    let verify = match &args.http {
        Some(http) => {
            let mut pins = vec![client::fetch_fingerprint(http, Duration::from_secs(10)).await?];
            for other in &args.pin_http {
                pins.push(client::fetch_fingerprint(other, Duration::from_secs(10)).await?);
            }
            Verify::Pinned(pins)
        }
        None => Verify::InsecureAcceptAnyCertificate,
    };
    let mut config = Config::new(verify);
    config.buffer = 1024;
    config.tuning.max_udp_payload = args.max_udp_payload;
    let endpoints = (0..args.sockets)
        .map(|_| net::client::Client::new(config.endpoint()))
        .collect::<Result<Vec<_>, _>>()?;

    let namespace = format!("bench/fanout-{}-{}", std::process::id(), now_us());
    let track = "video";
    let publisher_conn =
        Connection::connect_with(&endpoints[0], &args.relay, config.clone()).await?;
    let publisher = publisher_conn
        .publish(namespace.as_str(), track, PublishOptions::default())
        .await?;

    // Subscribers, connected 64 at a time.
    let subscriptions = stream::iter(0..args.subscribers)
        .map(|i| {
            let endpoint = endpoints[i % endpoints.len()].clone();
            let relay = if args.subscribe_at.is_empty() {
                args.relay.clone()
            } else {
                args.subscribe_at[i % args.subscribe_at.len()].clone()
            };
            let (config, namespace) = (config.clone(), namespace.clone());
            async move {
                let conn = Connection::connect_with(&endpoint, &relay, config).await?;
                let sub = conn
                    .subscribe(
                        namespace.as_str(),
                        track,
                        SubscribeOptions {
                            start: Start::Latest,
                            ..Default::default()
                        },
                    )
                    .await?;
                Ok::<_, client::Error>((conn, sub))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    let done = Arc::new(tokio::sync::Notify::new());
    let mut readers = Vec::with_capacity(subscriptions.len());
    for (conn, mut sub) in subscriptions {
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let _conn = conn;
            let mut t = Tally::default();
            let stop = done.notified();
            tokio::pin!(stop);
            loop {
                let ev = tokio::select! {
                    ev = sub.next() => ev,
                    _ = &mut stop => break,
                };
                match ev {
                    Some(Event::Object(o)) => {
                        let at = now_us();
                        t.bytes += o.payload.len() as u64;
                        t.objects += 1;
                        if o.payload.len() >= 8 {
                            let mut ts = [0u8; 8];
                            ts.copy_from_slice(&o.payload[..8]);
                            t.delays_us.push(at.saturating_sub(u64::from_be_bytes(ts)));
                        }
                    }
                    Some(Event::Ended { .. }) | None => break,
                }
            }
            t
        }));
    }

    // Publish.
    let frames_per_group = (args.fps * args.group_ms / 1000).max(1);
    let group_bytes = (args.bitrate / 8 * args.group_ms / 1000).max(frames_per_group * 16);
    let key_bytes = (group_bytes / 3).max(8) as usize;
    let small_bytes = ((group_bytes - group_bytes / 3) / frames_per_group.saturating_sub(1).max(1))
        .max(8) as usize;
    let frame_interval = Duration::from_micros(1_000_000 / args.fps);
    let filler = Bytes::from(vec![0x5a; key_bytes.max(small_bytes)]);
    let total_frames = ((args.seconds * args.fps as f64).round() as u64).max(1);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut group = None;
    let mut tick = tokio::time::interval(frame_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for frame in 0..total_frames {
        tick.tick().await;
        let index = frame % frames_per_group;
        if index == 0 {
            if let Some(g) = group.take() {
                client::GroupWriter::finish(g).await?;
            }
            group = Some(publisher.next_group().await?);
        }
        let size = if index == 0 { key_bytes } else { small_bytes };
        let mut buf = BytesMut::with_capacity(size);
        buf.put_u64(now_us());
        buf.extend_from_slice(&filler[..size - 8]);
        if let Some(g) = group.as_mut() {
            g.write(buf.freeze()).await?;
            sent += 1;
        }
    }
    if let Some(g) = group.take() {
        g.finish().await?;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    publisher.finish(status::TRACK_ENDED).await?;
    // Give subscribers a moment to drain, then stop whoever is still waiting.
    let drain = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        done.notify_waiters();
    };
    let collect = futures::future::join_all(readers);
    let (tallies, _) = tokio::join!(collect, drain);

    let mut bytes = 0u64;
    let mut received = 0u64;
    let mut delays = Vec::new();
    for t in tallies.into_iter().flatten() {
        bytes += t.bytes;
        received += t.objects;
        delays.extend(t.delays_us);
    }
    delays.sort_unstable();
    let pct = |p: f64| -> f64 {
        if delays.is_empty() {
            return 0.0;
        }
        let i = ((delays.len() as f64 - 1.0) * p).round() as usize;
        delays[i.min(delays.len() - 1)] as f64 / 1000.0
    };
    let expected = sent * args.subscribers as u64;
    Ok(format!(
        "{{\"subscribers\":{},\"seconds\":{:.3},\"bitrate\":{},\"objects_sent\":{},\"objects_expected\":{},\"objects_received\":{},\"lost\":{},\"bytes_received\":{},\"egress_gbps\":{:.4},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
        args.subscribers,
        publish_secs,
        args.bitrate,
        sent,
        expected,
        received,
        expected.saturating_sub(received),
        bytes,
        bytes as f64 * 8.0 / publish_secs / 1e9,
        pct(0.5),
        pct(0.99),
    ))
}
