//! Benchmark helper for bench/rtmp-ingest: ingest-to-subscriber delay over QUIC.
//!
//! Subscribes (raw QUIC, the `client` crate) to tracks of an ingest started with
//! `producer_reference_time` on (see `rtmp_bench`), which stamps each source object with a
//! `prft` box: the wallclock when the ingest packaged it, right after its RTMP message was
//! reassembled from the socket. The delay of an object is the wallclock at which its last byte
//! was read from QUIC (`Received::received_at`, mapped onto the system clock) minus that stamp.
//! Both ends run on one machine and one clock, so no clock offset enters. Objects stamped
//! before the subscription started (the joining group's backlog) are left out.
//!
//! Usage: rtmp_delay <relay addr> <namespace a/b/c> <seconds> <track>...
//! Prints `delay_ms n=<objects> p50=<ms> p95=<ms> p99=<ms> max=<ms>`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client::{Config, Connection, Event, Start, SubscribeOptions, Verify};
use media::fmp4;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(ns), Some(secs)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: rtmp_delay <relay addr> <ns a/b/c> <seconds> <track>...".into());
    };
    let secs: u64 = secs.parse()?;
    let tracks: Vec<String> = args.iter().skip(4).cloned().collect();
    let ns: Vec<String> = ns.split('/').map(str::to_owned).collect();
    let conn = Connection::connect(
        &format!("moqt://{addr}/"),
        Config::new(Verify::InsecureAcceptAnyCertificate),
    )
    .await?;
    // One anchor maps the monotonic receive instants onto the system clock.
    let (anchor_i, anchor_s) = (Instant::now(), SystemTime::now());
    let wall = |i: Instant| -> Duration {
        (anchor_s + i.saturating_duration_since(anchor_i))
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    };
    let started = wall(Instant::now());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for t in &tracks {
        let mut sub = conn
            .subscribe(
                ns.clone(),
                t,
                SubscribeOptions {
                    start: Start::Latest,
                    ..Default::default()
                },
            )
            .await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Event::Object(o)) = sub.next().await {
                if tx.send(o).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut delays = Vec::new();
    let mut unstamped = 0u64;
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while let Ok(Some(o)) = tokio::time::timeout_at(end, rx.recv()).await {
        let Some((_, ntp, _)) = fmp4::read_prft(&o.payload) else {
            unstamped += 1;
            continue;
        };
        let stamped = fmp4::ntp_to_unix(ntp);
        if stamped < started {
            continue; // backlog of the joining group
        }
        let arrived = wall(o.received_at);
        delays.push(arrived.saturating_sub(stamped).as_secs_f64() * 1000.0);
    }
    if delays.is_empty() {
        return Err(format!("no stamped objects received ({unstamped} without prft)").into());
    }
    delays.sort_by(f64::total_cmp);
    let q = |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize];
    println!(
        "delay_ms n={} p50={:.2} p95={:.2} p99={:.2} max={:.2}",
        delays.len(),
        q(0.5),
        q(0.95),
        q(0.99),
        q(1.0)
    );
    Ok(())
}
