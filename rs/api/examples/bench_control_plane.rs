//! Control-plane benchmark (run by `bench/control-plane/run.sh`; build with `--release`).
//!
//! 1. Signed playback URLs minted per second on one core: `Api::mint_playback` (the REST
//!    handler's path minus HTTP) on a current-thread runtime, for EdDSA and ES256, plus token
//!    verification per second.
//! 2. API latency at a fixed arrival rate (default 1,000 requests/s for 10 s), open loop: each
//!    request has a scheduled send time and its latency is measured from that time, so a slow
//!    server cannot hide queueing (no coordinated omission). Mix: GET live input, POST
//!    playback_tokens, GET /v1/playback/{id}. Against an in-process server on loopback by
//!    default, or a running engine with `--url` (+ CLUTCHCALL_CREDENTIALS / CLUTCHCALL_ORG_ID).
//!
//! Flags: `--rate N` `--seconds N` `--mint-seconds N` `--url URL` `--data-dir DIR`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::tokens::SigningAlg;
use api::{Api, Config};
use serde_json::{json, Value};

struct Args {
    rate: u64,
    seconds: u64,
    mint_seconds: f64,
    url: Option<String>,
    data_dir: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        rate: 1000,
        seconds: 10,
        mint_seconds: 2.0,
        url: None,
        data_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().unwrap_or_default();
        match flag.as_str() {
            "--rate" => a.rate = val.parse().expect("--rate N"),
            "--seconds" => a.seconds = val.parse().expect("--seconds N"),
            "--mint-seconds" => a.mint_seconds = val.parse().expect("--mint-seconds N"),
            "--url" => a.url = Some(val),
            "--data-dir" => a.data_dir = Some(val),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn config(dir: &std::path::Path, base: &str, alg: SigningAlg) -> Config {
    let mut c = Config::new(dir);
    c.public_base_url = base.into();
    c.announce_credentials = false;
    c.signing_alg = alg;
    c
}

/// Tokens per second on the current thread for `secs`.
async fn mint_rate(api: &Api, org: &str, lv: &str, secs: f64) -> (f64, String) {
    let mut last = String::new();
    // Warm-up (loads the signer).
    for _ in 0..200 {
        last = api.mint_playback(org, lv, Some(3600)).await.unwrap().token;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..256 {
            last = api.mint_playback(org, lv, Some(3600)).await.unwrap().token;
        }
        n += 256;
    }
    (n as f64 / start.elapsed().as_secs_f64(), last)
}

async fn verify_rate(api: &Api, lv: &str, token: &str, secs: f64) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..256 {
            api.verify_playback(token, lv, None).await.unwrap().unwrap();
        }
        n += 256;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn mint_bench(secs: f64) {
    // One core: a current-thread runtime, one task.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("## Signed playback URLs, one core (current-thread runtime)\n");
        println!("| alg | minted/s | verified/s |");
        println!("|---|---:|---:|");
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256] {
            let dir = tempfile::tempdir().unwrap();
            let api = Api::open(config(dir.path(), "http://127.0.0.1:8080", alg))
                .await
                .unwrap();
            let creds = api.bootstrap_credentials().unwrap();
            let (input, _) = api
                .create_input(&creds.org_id, "bench", api::Ingest::Fmp4)
                .await
                .unwrap();
            let (mint, token) =
                mint_rate(&api, &creds.org_id, &input.external_input_id, secs).await;
            let verify = verify_rate(&api, &input.external_input_id, &token, secs).await;
            println!("| {alg} | {mint:.0} | {verify:.0} |");
            api.close().await;
        }
        println!();
    });
}

struct Target {
    base: String,
    key: String,
    org: String,
    input_id: String,
    lv: String,
    token: String,
}

async fn prepare(client: &reqwest::Client, base: &str, key: &str, org: &str) -> Target {
    let v: Value = client
        .post(format!("{base}/v1/orgs/{org}/live_inputs"))
        .bearer_auth(key)
        .json(&json!({ "name": "bench", "ingest": "fmp4" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let input_id = v["input"]["id"].as_str().expect("create input").to_owned();
    let lv = v["input"]["external_input_id"].as_str().unwrap().to_owned();
    let v: Value = client
        .post(format!(
            "{base}/v1/orgs/{org}/live_inputs/{input_id}/playback_tokens"
        ))
        .bearer_auth(key)
        .json(&json!({ "ttlSeconds": 3600 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    Target {
        base: base.into(),
        key: key.into(),
        org: org.into(),
        input_id,
        lv,
        token,
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn load(t: Arc<Target>, rate: u64, seconds: u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let kinds = [
        "GET live_input",
        "POST playback_tokens",
        "GET playback info",
    ];
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, f64, bool)>();
    // Warm the connection pool.
    for _ in 0..32 {
        let _ = client
            .get(format!("{}/v1/orgs/{}", t.base, t.org))
            .bearer_auth(&t.key)
            .send()
            .await;
    }
    let start = tokio::time::Instant::now();
    for i in 0..total {
        let due = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due).await;
        let (client, t, tx) = (client.clone(), t.clone(), tx.clone());
        let kind = (i % 3) as usize;
        tokio::spawn(async move {
            let rb = match kind {
                0 => client
                    .get(format!(
                        "{}/v1/orgs/{}/live_inputs/{}",
                        t.base, t.org, t.input_id
                    ))
                    .bearer_auth(&t.key),
                1 => client
                    .post(format!(
                        "{}/v1/orgs/{}/live_inputs/{}/playback_tokens",
                        t.base, t.org, t.input_id
                    ))
                    .bearer_auth(&t.key)
                    .json(&json!({ "ttlSeconds": 600 })),
                _ => client.get(format!("{}/v1/playback/{}?token={}", t.base, t.lv, t.token)),
            };
            let ok = match rb.send().await {
                Ok(r) => {
                    let s = r.status().is_success();
                    let _ = r.bytes().await;
                    s
                }
                Err(_) => false,
            };
            // Latency from the scheduled send time.
            let ms = due.elapsed().as_secs_f64() * 1000.0;
            let _ = tx.send((kind, ms, ok));
        });
    }
    drop(tx);
    let mut all = Vec::new();
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut errors = 0u64;
    while let Some((k, ms, ok)) = rx.recv().await {
        all.push(ms);
        per[k].push(ms);
        if !ok {
            errors += 1;
        }
    }
    let achieved = all.len() as f64 / start.elapsed().as_secs_f64();
    println!("## API latency at {rate} requests/s for {seconds} s (open loop, {} requests, {errors} errors, {achieved:.0} req/s achieved)\n", all.len());
    println!("| request | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for (k, v) in per.iter_mut().enumerate() {
        v.sort_by(f64::total_cmp);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} |",
            kinds[k],
            pct(v, 50.0),
            pct(v, 99.0),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    all.sort_by(f64::total_cmp);
    println!(
        "| all | {:.2} | {:.2} | {:.2} |\n",
        pct(&all, 50.0),
        pct(&all, 99.0),
        all.last().copied().unwrap_or(f64::NAN)
    );
}

fn main() {
    let a = args();
    println!(
        "# ClutchCall control-plane benchmark ({} CPUs)\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    mint_bench(a.mint_seconds);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let (target, _server, _dir) = match &a.url {
            Some(url) => {
                let key = std::env::var("CLUTCHCALL_CREDENTIALS")
                    .expect("CLUTCHCALL_CREDENTIALS for --url");
                let org = std::env::var("CLUTCHCALL_ORG_ID").expect("CLUTCHCALL_ORG_ID for --url");
                println!("Target: running engine at {url}\n");
                (prepare(&client, url, &key, &org).await, None, None)
            }
            None => {
                let dir = tempfile::tempdir().unwrap();
                let data = a
                    .data_dir
                    .clone()
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| dir.path().to_owned());
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let base = format!("http://{}", listener.local_addr().unwrap());
                let api = Api::open(config(&data, &base, SigningAlg::EdDSA))
                    .await
                    .unwrap();
                let creds = api.bootstrap_credentials().unwrap();
                let router = api.router();
                let server = tokio::spawn(async move { axum::serve(listener, router).await });
                println!(
                    "Target: in-process engine router on {base} (SQLite in {})\n",
                    data.display()
                );
                (
                    prepare(&client, &base, &creds.api_key, &creds.org_id).await,
                    Some(server),
                    Some(dir),
                )
            }
        };
        load(Arc::new(target), a.rate, a.seconds).await;
    });
}
