//! Property test: malformed JSON, wrong types, odd content types, oversized bodies, odd query
//! strings and path ids on every endpoint. Every answer is 2xx or a 4xx carrying an error code;
//! never 5xx, never a dropped connection (a panic would drop it).
//!
//! A seeded generator (xorshift) keeps runs reproducible: `CLUTCHCALL_FUZZ_SEED=<n>` replays a
//! run, `CLUTCHCALL_FUZZ_CASES=<n>` sets cases per endpoint (default 120).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{send, TestServer};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn scalar(r: &mut Rng) -> Value {
    match r.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(r.next() as i64),
        3 => json!(-(r.below(1000) as i64)),
        4 => json!(f64::from(r.below(1000) as u32) / 7.0),
        5 => json!(""),
        6 => json!("x".repeat(r.below(5000))),
        7 => json!("\u{0}\u{1f}\u{202e}💥"),
        8 => json!(u64::MAX),
        9 => json!("rtmp"),
        10 => json!("fmp4"),
        _ => json!("ES256"),
    }
}

fn value(r: &mut Rng, depth: u32) -> Value {
    if depth > 3 {
        return scalar(r);
    }
    match r.below(4) {
        0 => Value::Array((0..r.below(4)).map(|_| value(r, depth + 1)).collect()),
        1 => {
            let mut m = serde_json::Map::new();
            for _ in 0..r.below(4) {
                let k = r
                    .pick(&[
                        "name",
                        "ingest",
                        "ttlSeconds",
                        "ttl_seconds",
                        "alg",
                        "x",
                        "",
                    ])
                    .to_string();
                m.insert(k, value(r, depth + 1));
            }
            Value::Object(m)
        }
        _ => scalar(r),
    }
}

/// A body: (content-type or none, bytes).
fn body(r: &mut Rng) -> (Option<&'static str>, Vec<u8>) {
    let ct = *r.pick(&[
        Some("application/json"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ]);
    let bytes = match r.below(10) {
        // Field-shaped objects with wrong types.
        0..=2 => {
            let mut m = serde_json::Map::new();
            for k in ["name", "ingest", "ttlSeconds", "alg"] {
                if r.below(2) == 0 {
                    m.insert(k.into(), scalar(r));
                }
            }
            Value::Object(m).to_string().into_bytes()
        }
        3..=4 => value(r, 0).to_string().into_bytes(),
        // Truncated valid JSON.
        5 => {
            let s = json!({ "name": "n", "ingest": "fmp4", "ttlSeconds": 60 }).to_string();
            s.as_bytes()[..r.below(s.len())].to_vec()
        }
        // Random bytes, including invalid UTF-8.
        6 => (0..r.below(300)).map(|_| r.next() as u8).collect(),
        // Deep nesting.
        7 => {
            let n = 1 + r.below(5000);
            format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()
        }
        // Oversized (limit is 64 KiB).
        8 => {
            let n = 64 * 1024 + 1 + r.below(200_000);
            format!("{{\"name\":\"{}\"}}", "a".repeat(n)).into_bytes()
        }
        _ => b"{\"name\": \"ok\", \"ingest\": \"fmp4\", \"name\": 1}".to_vec(),
    };
    (ct, bytes)
}

fn junk_segment(r: &mut Rng) -> String {
    r.pick(&[
        "li_x",
        "lv_1",
        "%00",
        "%FF%FE",
        "..",
        "a%2Fb",
        "%27%22",
        "x".repeat(300).as_str(),
        "ak_%20",
        "kid_",
        "pb_1",
        "💥",
    ])
    .to_string()
}

fn junk_query(r: &mut Rng) -> String {
    r.pick(&[
        "",
        "?limit=",
        "?limit=99999999999999999999",
        "?limit=-5",
        "?cursor=%FF",
        "?cursor=1.",
        "?cursor=9223372036854775807.li_a",
        "?limit=1&limit=2",
        "?%%%",
        "?token=",
        "?token=a.b.c",
    ])
    .to_string()
}

async fn every_endpoint_survives_garbage(s: TestServer) {
    let seed: u64 = std::env::var("CLUTCHCALL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_c1c7_ca11_0001);
    let cases: usize = std::env::var("CLUTCHCALL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let mut r = Rng(seed | 1);
    // A fresh connection per request: the server may close a connection after refusing an
    // oversized body, and a pooled client would then fail the *next* request on it.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let (_, v) = send(
        s.req(Method::POST, &s.org_path("/live_inputs"))
            .json(&json!({ "name": "f", "ingest": "fmp4" })),
    )
    .await;
    let li = v["input"]["id"].as_str().unwrap().to_owned();
    let lv = v["input"]["external_input_id"].as_str().unwrap().to_owned();
    let o = s.creds.org_id.clone();
    let endpoints: Vec<(Method, String)> = vec![
        (Method::GET, format!("/v1/orgs/{o}")),
        (Method::GET, format!("/v1/orgs/{o}/api_keys")),
        (Method::POST, format!("/v1/orgs/{o}/api_keys")),
        (Method::DELETE, format!("/v1/orgs/{o}/api_keys/{{junk}}")),
        (Method::GET, format!("/v1/orgs/{o}/live_inputs")),
        (Method::POST, format!("/v1/orgs/{o}/live_inputs")),
        (Method::GET, format!("/v1/orgs/{o}/live_inputs/{li}")),
        (Method::PATCH, format!("/v1/orgs/{o}/live_inputs/{li}")),
        (Method::PATCH, format!("/v1/orgs/{o}/live_inputs/{{junk}}")),
        (Method::DELETE, format!("/v1/orgs/{o}/live_inputs/{{junk}}")),
        (
            Method::POST,
            format!("/v1/orgs/{o}/live_inputs/{li}/stream_key"),
        ),
        (
            Method::POST,
            format!("/v1/orgs/{o}/live_inputs/{li}/playback_tokens"),
        ),
        (
            Method::POST,
            format!("/v1/orgs/{o}/live_inputs/{{junk}}/playback_tokens"),
        ),
        (Method::GET, format!("/v1/orgs/{o}/signing_keys")),
        (Method::POST, format!("/v1/orgs/{o}/signing_keys")),
        (Method::POST, format!("/v1/orgs/{o}/signing_keys/rotate")),
        (
            Method::DELETE,
            format!("/v1/orgs/{o}/signing_keys/{{junk}}"),
        ),
        (Method::GET, format!("/v1/playback/{lv}")),
        (Method::GET, "/v1/playback/{junk}".into()),
        (Method::GET, "/.well-known/jwks.json".into()),
        (Method::GET, "/openapi.json".into()),
        (Method::GET, "/watch/{junk}".into()),
        (Method::GET, "/v1/orgs/{junk}/live_inputs".into()),
    ];
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    // Any panic anywhere in this process (the server runs in it) fails the test.
    let panics = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        previous(info);
    }));
    for (method, template) in &endpoints {
        for case in 0..cases {
            let path = template.replace("{junk}", &junk_segment(&mut r));
            let query = junk_query(&mut r);
            let (ct, bytes) = body(&mut r);
            let size = bytes.len();
            let url = s.url(&format!("{path}{query}"));
            let mut rb = if r.below(8) == 0 {
                fresh.request(method.clone(), &url).header(
                    "authorization",
                    *r.pick(&["Bearer ", "Bearer x.y", "Basic a", "Bearer ak_1.2"]),
                )
            } else {
                fresh
                    .request(method.clone(), &url)
                    .bearer_auth(&s.creds.api_key)
            };
            if let Some(ct) = ct {
                rb = rb.header("content-type", ct);
            }
            let res = match rb.body(bytes).send().await {
                Ok(res) => res,
                // The server may answer 413 (or ignore a GET body) and close before an oversized
                // upload finishes; the client then sees a write error. Only acceptable there.
                Err(e) if size > 64 * 1024 => {
                    *statuses.entry(0).or_default() += 1;
                    let _ = e;
                    continue;
                }
                Err(e) => panic!("seed {seed} case {case} {method} {path}{query} ({size} bytes): connection failed: {e:?}"),
            };
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            *statuses.entry(status.as_u16()).or_default() += 1;
            assert!(
                !status.is_server_error(),
                "seed {seed} case {case}: {method} {path}{query} ({size} body bytes) gave {status}: {text}"
            );
            if status.is_client_error() {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                assert!(
                    v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()),
                    "seed {seed} case {case}: {method} {path}{query} gave {status} without a code: {text}"
                );
            } else {
                assert!(status.is_success(), "seed {seed}: unexpected {status}");
            }
        }
    }
    assert_eq!(
        panics.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "seed {seed}: the server panicked"
    );
    eprintln!(
        "{:?} statuses over {} requests: {statuses:?}",
        s.backend,
        endpoints.len() * cases
    );
    assert!(
        statuses.keys().any(|k| *k == 413)
            && statuses.keys().any(|k| *k == 422)
            && statuses.keys().any(|k| *k == 400)
    );
}

db_tests!(every_endpoint_survives_garbage);
