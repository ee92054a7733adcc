//! Benchmark helper for bench/rtmp-ingest: runs the RTMP ingest in process over a relay,
//! accepts every key, and reports the process CPU over a window (no subscriber attached during
//! the window, like nginx-rtmp with no players).
//!
//! Usage: rtmp_bench <listen addr> <warmup s> <measure s> <ladder: none|default> [preset]
//!        [relay addr] [linger s]
//! Prints `ready` once listening, then `cpu_seconds=<s> wall_seconds=<s> objects=<n>`. With a
//! relay address it also serves the relay over QUIC there (open namespaces, self-signed
//! certificate), stamps source objects with `prft` (see `rtmp_delay`; `RTMP_BENCH_PRFT=0`
//! leaves them unstamped, as the engine does), and keeps serving `linger` seconds after the
//! window for the delay measurement.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use relay::auth::{AuthRequest, Authorizer, Denied, DenyAll, Grant, Policy};

/// The engine binary's allocator, so the figure is the engine's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct AllowAll;
impl Authorizer for AllowAll {
    fn authorize(&self, _r: AuthRequest) -> BoxFuture<'static, Result<Grant, Denied>> {
        Box::pin(async { Ok(Grant::default()) })
    }
}
impl ingest::Lookup for AllowAll {
    fn org_of(&self, _lv: &str) -> BoxFuture<'static, Result<Option<String>, String>> {
        Box::pin(async { Ok(Some("org_bench".to_owned())) })
    }
}

/// utime + stime (+ waited children) of a process, seconds.
fn cpu_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat; index 11/12 after the ") " split. Also children (16, 17).
    (t(11) + t(12) + t(13) + t(14)) / 100.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen: SocketAddr = args
        .get(1)
        .map_or("127.0.0.1:19350", String::as_str)
        .parse()?;
    let warmup: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let measure: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let ladder = match args.get(4).map(String::as_str) {
        Some("default") => ingest::Rendition::default_ladder(),
        _ => vec![],
    };
    let preset = args.get(5).cloned().unwrap_or_else(|| "veryfast".into());
    let quic: Option<SocketAddr> = args.get(6).map(|a| a.parse()).transpose()?;
    let linger: u64 = args.get(7).and_then(|s| s.parse().ok()).unwrap_or(0);
    // RTMP_BENCH_CACHE_MB: a smaller relay cache per track (reaches the steady state sooner;
    // for quick comparisons only, the reported figures use the engine's default).
    let mut relay_config = relay::Config::default();
    if let Some(mb) = std::env::var("RTMP_BENCH_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        relay_config.cache.bytes = mb << 20;
    }
    let relay = relay::Relay::new(
        relay_config,
        Policy::new(quic.map(|_| vec![]), Arc::new(DenyAll)),
    );
    if let Some(addr) = quic {
        let certs = net::tls::Certs::new(net::tls::Config::default())?;
        let mut server = net::server::Server::bind(net::server::Config {
            listen: vec![addr],
            ..net::server::Config::new(certs)
        })?;
        let r = relay.clone();
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                let r = r.clone();
                tokio::spawn(async move { r.serve(incoming.session, incoming.url).await });
            }
        });
    }
    let auth = Arc::new(AllowAll);
    let server = ingest::Server::bind(
        ingest::Config {
            listen,
            ladder,
            preset,
            producer_reference_time: quic.is_some()
                && std::env::var("RTMP_BENCH_PRFT").as_deref() != Ok("0"),
            ..Default::default()
        },
        &relay,
        auth.clone(),
        auth,
    )
    .await?;
    println!("ready");
    let registry = relay.registry().clone();
    let status = server.status();
    let run = tokio::spawn(server.run());
    // This process plus the running transcoders.
    let cpu_seconds = || {
        let pids: Vec<u32> = status
            .borrow()
            .values()
            .filter_map(|s| s.transcoder_pid)
            .collect();
        cpu_of("self") + pids.iter().map(|p| cpu_of(&p.to_string())).sum::<f64>()
    };
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let count = |r: &relay::registry::Registry| {
        r.tracks_under(&[])
            .iter()
            .filter_map(|t| t.largest())
            .map(|l| l.group * 1000 + l.object)
            .sum::<u64>()
    };
    let o0 = count(&registry);
    tokio::time::sleep(Duration::from_secs(measure)).await;
    let (c1, t1) = (cpu_seconds(), Instant::now());
    let tracks = registry.tracks_under(&[]).len();
    println!(
        "cpu_seconds={:.3} wall_seconds={:.3} tracks={tracks} progress={}",
        c1 - c0,
        (t1 - t0).as_secs_f64(),
        count(&registry) - o0
    );
    tokio::time::sleep(Duration::from_secs(linger)).await;
    run.abort();
    Ok(())
}
