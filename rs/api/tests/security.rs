//! The security matrix, one test per case, on SQLite and PostgreSQL. HTTP cases go through a
//! real socket; relay cases call the `Authorizer` directly with crafted requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::tokens::{PlaybackClaims, Signer, SigningAlg};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use relay::auth::{Action, AuthRequest, Denied, Grant};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{assert_error, send, TestServer};

struct Input {
    id: String,
    lv: String,
    key: String,
}

async fn input(s: &TestServer) -> Input {
    let (st, v) = send(
        s.req(Method::POST, &s.org_path("/live_inputs"))
            .json(&json!({ "name": "sec", "ingest": "fmp4" })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    Input {
        id: v["input"]["id"].as_str().unwrap().into(),
        lv: v["input"]["external_input_id"].as_str().unwrap().into(),
        key: v["streamKey"].as_str().unwrap().into(),
    }
}

/// A second org with its own admin key and one input.
async fn other_org(s: &TestServer) -> (api::Credentials, Input) {
    let creds = s.api.create_org("other").await.unwrap();
    let (st, v) = send(
        s.anon(
            Method::POST,
            &format!("/v1/orgs/{}/live_inputs", creds.org_id),
        )
        .bearer_auth(&creds.api_key)
        .json(&json!({ "name": "theirs", "ingest": "rtmp" })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let i = Input {
        id: v["input"]["id"].as_str().unwrap().into(),
        lv: v["input"]["external_input_id"].as_str().unwrap().into(),
        key: v["streamKey"].as_str().unwrap().into(),
    };
    (creds, i)
}

async fn mint(s: &TestServer, i: &Input, ttl: u64) -> String {
    let (st, v) = send(
        s.req(
            Method::POST,
            &s.org_path(&format!("/live_inputs/{}/playback_tokens", i.id)),
        )
        .json(&json!({ "ttlSeconds": ttl })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["token"].as_str().unwrap().into()
}

fn ns(org: &str, lv: &str) -> Vec<Vec<u8>> {
    vec![
        b"stream".to_vec(),
        org.as_bytes().to_vec(),
        lv.as_bytes().to_vec(),
    ]
}

async fn authorize(
    s: &TestServer,
    action: Action,
    org: &str,
    lv: &str,
    token: Option<&str>,
) -> Result<Grant, Denied> {
    s.api
        .authorizer()
        .authorize(AuthRequest {
            action,
            namespace: ns(org, lv),
            track: Some(b".catalog".to_vec()),
            token: token.map(|t| t.as_bytes().to_vec()),
        })
        .await
}

async fn subscribe(s: &TestServer, i: &Input, token: &str) -> Result<Grant, Denied> {
    authorize(s, Action::Subscribe, &s.creds.org_id, &i.lv, Some(token)).await
}

async fn publish(s: &TestServer, org: &str, lv: &str, key: &str) -> Result<Grant, Denied> {
    authorize(s, Action::Publish, org, lv, Some(key)).await
}

/// Both the relay and the playback-info endpoint refuse `token` for input `i`.
async fn refused_everywhere(s: &TestServer, i: &Input, token: &str) {
    let denied = subscribe(s, i, token).await;
    assert!(denied.is_err(), "relay must refuse");
    assert!(denied.unwrap_err().to_string().starts_with("auth_failed"));
    let got = send(s.anon(Method::GET, &format!("/v1/playback/{}?token={token}", i.lv))).await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    assert!(got.1["error"]["code"]
        .as_str()
        .unwrap()
        .starts_with("token_"));
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The org's active signer, loaded from the store the way a forger holding the key would.
async fn active_signer(s: &TestServer, org: &str) -> Signer {
    let row = s
        .api
        .store()
        .active_signing_key(org)
        .await
        .unwrap()
        .unwrap();
    Signer::from_row(&row).unwrap()
}

fn claims(sub: &str, org: &str, aud: &str, exp: u64) -> PlaybackClaims {
    PlaybackClaims {
        sub: sub.into(),
        org: org.into(),
        aud: aud.into(),
        iat: now_s(),
        exp,
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

// ---- API keys ----

async fn no_key(s: TestServer) {
    for path in [
        s.org_path(""),
        s.org_path("/live_inputs"),
        s.org_path("/api_keys"),
        s.org_path("/signing_keys"),
    ] {
        assert_error(
            &send(s.anon(Method::GET, &path)).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    assert_error(
        &send(
            s.anon(Method::GET, &s.org_path(""))
                .header("authorization", "Basic Zm9vOmJhcg=="),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

async fn wrong_key(s: TestServer) {
    let real = &s.creds.api_key;
    let (id, secret) = real.split_once('.').unwrap();
    let mut flipped = secret.as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let wrong_secret = format!("{id}.{}", String::from_utf8(flipped).unwrap());
    for bad in [
        wrong_secret.as_str(),
        "ak_000000000000000000000000.AAAA",
        "garbage",
        "",
        id,
        &real[..real.len() - 1],
    ] {
        assert_error(
            &send(s.anon(Method::GET, &s.org_path("")).bearer_auth(bad)).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
}

async fn revoked_key(s: TestServer) {
    let (_, v) = send(
        s.req(Method::POST, &s.org_path("/api_keys"))
            .json(&json!({ "name": "tmp" })),
    )
    .await;
    let secret = v["secret"].as_str().unwrap().to_owned();
    let id = v["apiKey"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        send(s.anon(Method::GET, &s.org_path("")).bearer_auth(&secret))
            .await
            .0,
        StatusCode::OK
    );
    send(s.req(Method::DELETE, &s.org_path(&format!("/api_keys/{id}")))).await;
    assert_error(
        &send(s.anon(Method::GET, &s.org_path("")).bearer_auth(&secret)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

async fn other_orgs_key(s: TestServer) {
    let (theirs, _) = other_org(&s).await;
    let mine = input(&s).await;
    // Their valid key on our org: exactly like a missing org.
    let missing = send(
        s.anon(Method::GET, "/v1/orgs/org_000000000000000000000000")
            .bearer_auth(&theirs.api_key),
    )
    .await;
    for path in [
        s.org_path(""),
        s.org_path("/live_inputs"),
        s.org_path(&format!("/live_inputs/{}", mine.id)),
    ] {
        let got = send(s.anon(Method::GET, &path).bearer_auth(&theirs.api_key)).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(got.1, missing.1);
    }
    let got = send(
        s.anon(
            Method::POST,
            &s.org_path(&format!("/live_inputs/{}/stream_key", mine.id)),
        )
        .bearer_auth(&theirs.api_key),
    )
    .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
}

async fn other_orgs_ids(s: TestServer) {
    let (theirs, their_input) = other_org(&s).await;
    let missing = send(s.req(
        Method::GET,
        &s.org_path("/live_inputs/li_000000000000000000000000"),
    ))
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    for id in [&their_input.id, &their_input.lv] {
        for (m, suffix, body) in [
            (Method::GET, "", None),
            (Method::PATCH, "", Some(json!({ "name": "mine now" }))),
            (Method::POST, "/stream_key", None),
            (Method::POST, "/playback_tokens", None),
            (Method::DELETE, "", None),
        ] {
            let mut rb = s.req(
                m.clone(),
                &s.org_path(&format!("/live_inputs/{id}{suffix}")),
            );
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            let got = send(rb).await;
            assert_eq!(got, missing, "{m} {id}{suffix}");
        }
    }
    // Their API key id and signing key id.
    assert_error(
        &send(s.req(
            Method::DELETE,
            &s.org_path(&format!("/api_keys/{}", theirs.api_key_id)),
        ))
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let their_kid = s
        .api
        .store()
        .active_signing_key(&theirs.org_id)
        .await
        .unwrap()
        .unwrap()
        .kid;
    assert_error(
        &send(s.req(
            Method::DELETE,
            &s.org_path(&format!("/signing_keys/{their_kid}")),
        ))
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Lists show only our rows.
    let (_, v) = send(s.req(Method::GET, &s.org_path("/live_inputs"))).await;
    assert!(!v.to_string().contains(&their_input.id));
    let (_, v) = send(s.req(Method::GET, &s.org_path("/api_keys"))).await;
    assert!(!v.to_string().contains(&theirs.api_key_id));
    // Their input is untouched and their key still works.
    let (st, v) = send(
        s.anon(
            Method::GET,
            &format!("/v1/orgs/{}/live_inputs/{}", theirs.org_id, their_input.id),
        )
        .bearer_auth(&theirs.api_key),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["input"]["name"], "theirs");
}

// ---- playback tokens ----

async fn valid_token_is_accepted(s: TestServer) {
    let i = input(&s).await;
    let token = mint(&s, &i, 600).await;
    let grant = subscribe(&s, &i, &token).await.unwrap();
    let exp = grant
        .expires_at
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now_s() + 595..=now_s() + 600).contains(&exp),
        "expires_at is the token's exp"
    );
    assert!(grant.revoked.is_some());
    let (st, _) = send(s.anon(Method::GET, &format!("/v1/playback/{}?token={token}", i.lv))).await;
    assert_eq!(st, StatusCode::OK);
}

async fn expired_token(s: TestServer) {
    let i = input(&s).await;
    // Forged with the real key so only `exp` is wrong.
    let signer = active_signer(&s, &s.creds.org_id).await;
    let t = signer
        .mint(claims(
            &i.lv,
            &s.creds.org_id,
            "clutchcall-playback",
            now_s() - 1,
        ))
        .unwrap();
    refused_everywhere(&s, &i, &t.token).await;
    assert_error(
        &send(s.anon(
            Method::GET,
            &format!("/v1/playback/{}?token={}", i.lv, t.token),
        ))
        .await,
        StatusCode::UNAUTHORIZED,
        "token_expired",
    );
    // And one minted through the API that runs out.
    let token = mint(&s, &i, 1).await;
    assert!(subscribe(&s, &i, &token).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    refused_everywhere(&s, &i, &token).await;
}

async fn token_signed_by_unknown_key(s: TestServer) {
    let i = input(&s).await;
    let c = claims(&i.lv, &s.creds.org_id, "clutchcall-playback", now_s() + 600);
    // A key the engine never saw, under a fresh kid.
    let (rogue, _) = Signer::generate(
        &s.creds.org_id,
        SigningAlg::EdDSA,
        "kid_000000000000000000000000".into(),
        0,
    )
    .unwrap();
    refused_everywhere(&s, &i, &rogue.mint(c.clone()).unwrap().token).await;
    // A rogue key claiming the real kid.
    let real_kid = s
        .api
        .store()
        .active_signing_key(&s.creds.org_id)
        .await
        .unwrap()
        .unwrap()
        .kid;
    for alg in [SigningAlg::EdDSA, SigningAlg::ES256] {
        let (rogue, _) = Signer::generate(&s.creds.org_id, alg, real_kid.clone(), 0).unwrap();
        refused_everywhere(&s, &i, &rogue.mint(c.clone()).unwrap().token).await;
    }
}

async fn token_signed_by_deleted_key(s: TestServer) {
    let i = input(&s).await;
    let old = mint(&s, &i, 600).await;
    let old_kid = s
        .api
        .store()
        .active_signing_key(&s.creds.org_id)
        .await
        .unwrap()
        .unwrap()
        .kid;
    send(s.req(Method::POST, &s.org_path("/signing_keys/rotate"))).await;
    // Rotation alone: the previous key keeps verifying its tokens.
    assert!(subscribe(&s, &i, &old).await.is_ok());
    let fresh = mint(&s, &i, 600).await;
    assert!(subscribe(&s, &i, &fresh).await.is_ok());
    // Deleting it ends that at once.
    let (st, _) = send(s.req(
        Method::DELETE,
        &s.org_path(&format!("/signing_keys/{old_kid}")),
    ))
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    refused_everywhere(&s, &i, &old).await;
    assert!(subscribe(&s, &i, &fresh).await.is_ok());
    // A fresh engine on the same database (no cache) agrees.
    let (_, v) = send(s.anon(Method::GET, "/.well-known/jwks.json")).await;
    assert!(!v.to_string().contains(&old_kid));
}

async fn token_alg_none(s: TestServer) {
    let i = input(&s).await;
    let real = mint(&s, &i, 600).await;
    let kid = api::tokens::peek(&real).unwrap().kid;
    let payload = b64(
        &json!({ "sub": i.lv, "org": s.creds.org_id, "aud": "clutchcall-playback", "iat": now_s(), "exp": now_s() + 600 }),
    );
    for alg in ["none", "None", "NONE"] {
        let head = b64(&json!({ "alg": alg, "typ": "JWT", "kid": kid }));
        refused_everywhere(&s, &i, &format!("{head}.{payload}.")).await;
        let sig = real.rsplit('.').next().unwrap();
        refused_everywhere(&s, &i, &format!("{head}.{payload}.{sig}")).await;
    }
}

async fn token_hs256_confusion(s: TestServer) {
    let i = input(&s).await;
    for alg in [SigningAlg::EdDSA, SigningAlg::ES256] {
        let (_, v) = send(
            s.req(Method::POST, &s.org_path("/signing_keys/rotate"))
                .json(&json!({ "alg": alg.as_str() })),
        )
        .await;
        let jwk = v["signingKey"]["public_jwk"].clone();
        let kid = jwk["kid"].as_str().unwrap().to_owned();
        let payload = b64(
            &json!({ "sub": i.lv, "org": s.creds.org_id, "aud": "clutchcall-playback", "iat": now_s(), "exp": now_s() + 600 }),
        );
        // Every plausible rendering of the public key as an HMAC secret.
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let secrets: Vec<Vec<u8>> = vec![
            x.clone(),
            jwk["x"].as_str().unwrap().as_bytes().to_vec(),
            jwk.to_string().into_bytes(),
        ];
        for hs in ["HS256", "HS384", "HS512"] {
            for secret in &secrets {
                let head = b64(&json!({ "alg": hs, "typ": "JWT", "kid": kid }));
                let input = format!("{head}.{payload}");
                let algo = match hs {
                    "HS256" => ring::hmac::HMAC_SHA256,
                    "HS384" => ring::hmac::HMAC_SHA384,
                    _ => ring::hmac::HMAC_SHA512,
                };
                let tag = ring::hmac::sign(&ring::hmac::Key::new(algo, secret), input.as_bytes());
                refused_everywhere(
                    &s,
                    &i,
                    &format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())),
                )
                .await;
            }
        }
        // Algorithm switch between our own two algorithms.
        let other = if alg == SigningAlg::EdDSA {
            "ES256"
        } else {
            "EdDSA"
        };
        let real = mint(&s, &i, 600).await;
        let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
        parts[0] = b64(&json!({ "alg": other, "typ": "JWT", "kid": kid }));
        refused_everywhere(&s, &i, &parts.join(".")).await;
    }
}

async fn token_for_another_id(s: TestServer) {
    let a = input(&s).await;
    let b = input(&s).await;
    let for_b = mint(&s, &b, 600).await;
    assert!(subscribe(&s, &b, &for_b).await.is_ok());
    refused_everywhere(&s, &a, &for_b).await;
    // VOD token for a live id.
    let pb = s
        .api
        .mint_playback(&s.creds.org_id, "pb_x", Some(600))
        .await
        .unwrap();
    refused_everywhere(&s, &a, &pb.token).await;
}

async fn token_for_another_org(s: TestServer) {
    let mine = input(&s).await;
    let (theirs, their_input) = other_org(&s).await;
    // Their genuine token, presented on their id but under our org's namespace.
    let theirs_token = s
        .api
        .mint_playback(&theirs.org_id, &their_input.lv, Some(600))
        .await
        .unwrap()
        .token;
    assert!(authorize(
        &s,
        Action::Subscribe,
        &theirs.org_id,
        &their_input.lv,
        Some(&theirs_token)
    )
    .await
    .is_ok());
    assert!(authorize(
        &s,
        Action::Subscribe,
        &s.creds.org_id,
        &their_input.lv,
        Some(&theirs_token)
    )
    .await
    .is_err());
    // Their key signing a token that claims our org and our id.
    let their_signer = active_signer(&s, &theirs.org_id).await;
    let forged = their_signer
        .mint(claims(
            &mine.lv,
            &s.creds.org_id,
            "clutchcall-playback",
            now_s() + 600,
        ))
        .unwrap();
    refused_everywhere(&s, &mine, &forged.token).await;
    // Our key, but the claim names their org.
    let our_signer = active_signer(&s, &s.creds.org_id).await;
    let forged = our_signer
        .mint(claims(
            &mine.lv,
            &theirs.org_id,
            "clutchcall-playback",
            now_s() + 600,
        ))
        .unwrap();
    refused_everywhere(&s, &mine, &forged.token).await;
}

async fn token_wrong_audience(s: TestServer) {
    let i = input(&s).await;
    let signer = active_signer(&s, &s.creds.org_id).await;
    let t = signer
        .mint(claims(
            &i.lv,
            &s.creds.org_id,
            "someone-else",
            now_s() + 600,
        ))
        .unwrap();
    refused_everywhere(&s, &i, &t.token).await;
}

async fn token_tampered(s: TestServer) {
    let a = input(&s).await;
    let b = input(&s).await;
    let token = mint(&s, &a, 600).await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    // Retarget to b, extend exp: signature no longer matches.
    claims["sub"] = json!(b.lv);
    let retargeted = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    refused_everywhere(&s, &b, &retargeted).await;
    claims["sub"] = json!(a.lv);
    claims["exp"] = json!(now_s() + 86_400 * 365);
    refused_everywhere(
        &s,
        &a,
        &format!("{}.{}.{}", parts[0], b64(&claims), parts[2]),
    )
    .await;
    // Flip one bit of the signature; truncate; garbage.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    refused_everywhere(
        &s,
        &a,
        &format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig)),
    )
    .await;
    refused_everywhere(&s, &a, &token[..token.len() - 4]).await;
    refused_everywhere(&s, &a, "x.y.z").await;
    refused_everywhere(&s, &a, "").await;
    assert!(
        authorize(&s, Action::Subscribe, &s.creds.org_id, &a.lv, None)
            .await
            .is_err()
    );
}

async fn token_for_deleted_input(s: TestServer) {
    let i = input(&s).await;
    let token = mint(&s, &i, 600).await;
    let watching = subscribe(&s, &i, &token).await.unwrap();
    send(s.req(
        Method::DELETE,
        &s.org_path(&format!("/live_inputs/{}", i.id)),
    ))
    .await;
    assert!(
        watching.revoked.as_ref().unwrap().is_cancelled(),
        "viewers are cut off"
    );
    assert!(subscribe(&s, &i, &token).await.is_err());
}

// ---- refused requests leave nothing behind ----

async fn refused_requests_leave_no_state(s: TestServer) {
    let real = input(&s).await;
    let token = mint(&s, &real, 600).await;
    let org = s.creds.org_id.clone();
    let before = s.api.live_table_len();
    for i in 0..200u32 {
        // Made-up (but well-formed) input ids, as an attacker would send them.
        let lv = format!("lv_{:024x}", 0xdead_0000_u64 + u64::from(i));
        assert!(subscribe_id(&s, &org, &lv, "x.y.z").await.is_err());
        assert!(subscribe_id(&s, &org, &lv, &token).await.is_err());
        assert!(publish(&s, &org, &lv, "sk_garbage").await.is_err());
        assert!(publish(&s, &org, &lv, &real.key).await.is_err());
    }
    assert_eq!(
        s.api.live_table_len(),
        before,
        "refused requests for unknown inputs must not grow server state"
    );
}

async fn subscribe_id(s: &TestServer, org: &str, lv: &str, token: &str) -> Result<Grant, Denied> {
    authorize(s, Action::Subscribe, org, lv, Some(token)).await
}

// ---- relay-to-relay tokens (an edge subscribing at its origin) ----

async fn relay_tokens_are_scoped(s: TestServer) {
    let a = input(&s).await;
    let b = input(&s).await;
    let org = s.creds.org_id.clone();
    let relay_token = s.api.mint_relay_token(&org, &a.lv).await.unwrap();
    // Good for its one stream, and the grant does not close the edge's session at expiry.
    let grant = subscribe(&s, &a, &relay_token).await.unwrap();
    assert!(grant.expires_at.is_none() && grant.revoked.is_none());
    // Not for another stream, not for publishing, not for the HTTP playback path.
    assert!(subscribe(&s, &b, &relay_token).await.is_err());
    assert!(publish(&s, &org, &a.lv, &relay_token).await.is_err());
    let got = send(s.anon(
        Method::GET,
        &format!("/v1/playback/{}?token={relay_token}", a.lv),
    ))
    .await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    // Not for another org's stream.
    let (_theirs, their_input) = other_org(&s).await;
    assert!(authorize(
        &s,
        Action::Subscribe,
        &org,
        &their_input.lv,
        Some(&relay_token)
    )
    .await
    .is_err());
    // Expired, or tampered: refused like any token.
    let signer = active_signer(&s, &org).await;
    let audience = s.api.relay_audience();
    let expired = signer
        .mint(claims(&a.lv, &org, &audience, now_s() - 1))
        .unwrap();
    assert!(subscribe(&s, &a, &expired.token).await.is_err());
    let parts: Vec<&str> = relay_token.split('.').collect();
    let mut body: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    body["sub"] = json!(b.lv);
    let retargeted = format!("{}.{}.{}", parts[0], b64(&body), parts[2]);
    assert!(subscribe(&s, &b, &retargeted).await.is_err());
    // A viewer's token keeps its expiry (only relay tokens get a session-long grant).
    let viewer = mint(&s, &a, 600).await;
    assert!(subscribe(&s, &a, &viewer)
        .await
        .unwrap()
        .expires_at
        .is_some());
}

// ---- stream keys ----

async fn stream_key_publishes(s: TestServer) {
    let i = input(&s).await;
    let grant = publish(&s, &s.creds.org_id, &i.lv, &i.key).await.unwrap();
    assert!(grant.expires_at.is_none() && grant.guard.is_some());
    assert!(!grant.revoked.as_ref().unwrap().is_cancelled());
    // Playback tokens cannot publish; stream keys cannot subscribe.
    let token = mint(&s, &i, 600).await;
    assert!(publish(&s, &s.creds.org_id, &i.lv, &token).await.is_err());
    assert!(subscribe(&s, &i, &i.key).await.is_err());
    // No key; malformed namespaces.
    assert!(authorize(&s, Action::Publish, &s.creds.org_id, &i.lv, None)
        .await
        .is_err());
    for bad in [
        vec![b"stream".to_vec(), s.creds.org_id.as_bytes().to_vec()],
        vec![
            b"live".to_vec(),
            s.creds.org_id.as_bytes().to_vec(),
            i.lv.as_bytes().to_vec(),
        ],
        vec![
            b"stream".to_vec(),
            s.creds.org_id.as_bytes().to_vec(),
            i.id.as_bytes().to_vec(),
        ],
        vec![
            b"stream".to_vec(),
            s.creds.org_id.as_bytes().to_vec(),
            i.lv.as_bytes().to_vec(),
            b"x".to_vec(),
        ],
    ] {
        let r = s
            .api
            .authorizer()
            .authorize(AuthRequest {
                action: Action::Publish,
                namespace: bad,
                track: None,
                token: Some(i.key.as_bytes().to_vec()),
            })
            .await;
        assert!(r.is_err());
    }
}

async fn stream_key_after_rotation(s: TestServer) {
    let i = input(&s).await;
    let live = publish(&s, &s.creds.org_id, &i.lv, &i.key).await.unwrap();
    let revoked = live.revoked.clone().unwrap();
    let (st, v) = send(s.req(
        Method::POST,
        &s.org_path(&format!("/live_inputs/{}/stream_key", i.id)),
    ))
    .await;
    assert_eq!(st, StatusCode::OK);
    let new_key = v["streamKey"].as_str().unwrap().to_owned();
    // The connected publisher is cut off (well within 1 s: before the response returned).
    tokio::time::timeout(Duration::from_secs(1), revoked.cancelled())
        .await
        .expect("publisher revoked within 1 s");
    // The old key stops working at once; the new one works.
    assert!(publish(&s, &s.creds.org_id, &i.lv, &i.key).await.is_err());
    let again = publish(&s, &s.creds.org_id, &i.lv, &new_key).await.unwrap();
    assert!(!again.revoked.as_ref().unwrap().is_cancelled());
    // Deleting the input cuts off that publisher too.
    send(s.req(
        Method::DELETE,
        &s.org_path(&format!("/live_inputs/{}", i.id)),
    ))
    .await;
    assert!(again.revoked.as_ref().unwrap().is_cancelled());
    assert!(publish(&s, &s.creds.org_id, &i.lv, &new_key).await.is_err());
}

async fn stream_key_of_another_input(s: TestServer) {
    let a = input(&s).await;
    let b = input(&s).await;
    assert!(publish(&s, &s.creds.org_id, &a.lv, &b.key).await.is_err());
    let (theirs, their_input) = other_org(&s).await;
    assert!(publish(&s, &s.creds.org_id, &a.lv, &their_input.key)
        .await
        .is_err());
    // Their key on their id but in our org's namespace; our key in their namespace.
    assert!(
        publish(&s, &s.creds.org_id, &their_input.lv, &their_input.key)
            .await
            .is_err()
    );
    assert!(publish(&s, &theirs.org_id, &a.lv, &a.key).await.is_err());
    assert!(
        publish(&s, &theirs.org_id, &their_input.lv, &their_input.key)
            .await
            .is_ok()
    );
}

db_tests!(
    no_key,
    wrong_key,
    revoked_key,
    other_orgs_key,
    other_orgs_ids,
    valid_token_is_accepted,
    expired_token,
    token_signed_by_unknown_key,
    token_signed_by_deleted_key,
    token_alg_none,
    token_hs256_confusion,
    token_for_another_id,
    token_for_another_org,
    token_wrong_audience,
    token_tampered,
    token_for_deleted_input,
    stream_key_publishes,
    stream_key_after_rotation,
    stream_key_of_another_input,
    relay_tokens_are_scoped,
    refused_requests_leave_no_state,
);
