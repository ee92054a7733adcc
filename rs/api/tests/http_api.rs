//! Every REST endpoint and its errors, over real HTTP, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{assert_error, send, TestServer};

async fn create_input(s: &TestServer, name: &str, ingest: &str) -> (Value, String) {
    let (st, v) = send(
        s.req(Method::POST, &s.org_path("/live_inputs"))
            .json(&json!({ "name": name, "ingest": ingest })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (
        v["input"].clone(),
        v["streamKey"].as_str().unwrap().to_owned(),
    )
}

async fn org_endpoint(s: TestServer) {
    let (st, v) = send(s.req(Method::GET, &s.org_path(""))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["org"]["id"], s.creds.org_id.as_str());
    assert_eq!(v["org"]["name"], "default");
    assert_error(
        &send(s.anon(Method::GET, &s.org_path(""))).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &send(s.req(Method::GET, "/v1/orgs/org_000000000000000000000000")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

async fn api_keys_lifecycle(s: TestServer) {
    let (st, v) = send(
        s.req(Method::POST, &s.org_path("/api_keys"))
            .json(&json!({ "name": "ci" })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["apiKey"]["id"].as_str().unwrap().to_owned();
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ak_") && secret.starts_with(&format!("{id}.")));
    assert_eq!(v["apiKey"]["name"], "ci");
    assert!(v["apiKey"]["revoked_at"].is_null());
    assert!(v["apiKey"].get("secret_hash").is_none());

    // The new key works.
    let (st, _) = send(s.anon(Method::GET, &s.org_path("")).bearer_auth(&secret)).await;
    assert_eq!(st, StatusCode::OK);

    // No body: default name.
    let (st, v) = send(s.req(Method::POST, &s.org_path("/api_keys"))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    // List, paginated.
    let (st, v) = send(s.req(Method::GET, &s.org_path("/api_keys?limit=2"))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let cursor = v["nextCursor"].as_str().unwrap().to_owned();
    let (_, v2) = send(s.req(
        Method::GET,
        &s.org_path(&format!("/api_keys?limit=2&cursor={cursor}")),
    ))
    .await;
    assert_eq!(v2["data"].as_array().unwrap().len(), 1);
    assert!(v2["nextCursor"].is_null());
    assert!(
        v.to_string().find(&secret).is_none() && v2.to_string().find(&secret).is_none(),
        "secrets never listed"
    );

    // Revoke.
    let (st, _) = send(s.req(Method::DELETE, &s.org_path(&format!("/api_keys/{id}")))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(
        &send(s.anon(Method::GET, &s.org_path("")).bearer_auth(&secret)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &send(s.req(Method::DELETE, &s.org_path(&format!("/api_keys/{id}")))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &send(s.req(Method::DELETE, &s.org_path("/api_keys/ak_nope"))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, v) = send(s.req(Method::GET, &s.org_path("/api_keys?limit=100"))).await;
    let listed = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert!(listed["revoked_at"].is_string());

    // Validation.
    assert_error(
        &send(
            s.req(Method::POST, &s.org_path("/api_keys"))
                .json(&json!({ "name": "" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &send(s.req(Method::GET, &s.org_path("/api_keys?limit=0"))).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    );
}

async fn live_input_create_get_update_delete(s: TestServer) {
    let (input, key) = create_input(&s, "Live Demo", "fmp4").await;
    let id = input["id"].as_str().unwrap().to_owned();
    let lv = input["external_input_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("li_") && lv.starts_with("lv_") && key.starts_with("sk_"));
    assert_eq!(input["name"], "Live Demo");
    assert_eq!(input["ingest"], "fmp4");
    assert_eq!(input["org_id"], s.creds.org_id.as_str());
    assert_eq!(
        input["namespace"],
        format!("stream/{}/{lv}", s.creds.org_id)
    );
    assert_eq!(input["status"]["state"], "idle");
    assert!(input.get("stream_key_hash").is_none() && input.get("streamKey").is_none());

    // Get by li_ and by lv_; the key never comes back.
    for path_id in [&id, &lv] {
        let (st, v) =
            send(s.req(Method::GET, &s.org_path(&format!("/live_inputs/{path_id}")))).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["input"]["id"], id.as_str());
        assert!(!v.to_string().contains(&key));
    }
    assert_error(
        &send(s.req(Method::GET, &s.org_path("/live_inputs/li_missing"))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Update.
    let (st, v) = send(
        s.req(Method::PATCH, &s.org_path(&format!("/live_inputs/{id}")))
            .json(&json!({ "name": "Renamed" })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["input"]["name"], "Renamed");
    assert_error(
        &send(
            s.req(Method::PATCH, &s.org_path("/live_inputs/li_missing"))
                .json(&json!({ "name": "x" })),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &send(
            s.req(Method::PATCH, &s.org_path(&format!("/live_inputs/{id}")))
                .json(&json!({ "name": " " })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &send(
            s.req(Method::PATCH, &s.org_path(&format!("/live_inputs/{id}")))
                .json(&json!({ "name": 5 })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );

    // Delete.
    let (st, _) = send(s.req(Method::DELETE, &s.org_path(&format!("/live_inputs/{id}")))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(
        &send(s.req(Method::GET, &s.org_path(&format!("/live_inputs/{id}")))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &send(s.req(Method::DELETE, &s.org_path(&format!("/live_inputs/{id}")))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

async fn live_input_create_errors(s: TestServer) {
    let p = s.org_path("/live_inputs");
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            s.req(Method::POST, &p)
                .json(&json!({ "name": "x", "ingest": "hls" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            s.req(Method::POST, &p)
                .json(&json!({ "name": "", "ingest": "rtmp" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            s.req(Method::POST, &p)
                .json(&json!({ "name": "x".repeat(201), "ingest": "rtmp" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            s.req(Method::POST, &p)
                .json(&json!({ "name": "a\u{0}b", "ingest": "rtmp" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            s.req(Method::POST, &p).json(&json!({ "ingest": "rtmp" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            s.req(Method::POST, &p)
                .json(&json!({ "name": 1, "ingest": "rtmp" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            s.req(Method::POST, &p).json(&json!([1, 2])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            s.req(Method::POST, &p)
                .header("content-type", "application/json")
                .body("{\"name\":"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            s.req(Method::POST, &p),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            s.req(Method::POST, &p)
                .header("content-type", "text/plain")
                .body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            s.req(Method::POST, &p)
                .header("content-type", "application/json")
                .body(vec![b' '; 70 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            s.anon(Method::POST, &p)
                .json(&json!({ "name": "x", "ingest": "rtmp" })),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ];
    for (rb, status, code) in cases {
        assert_error(&send(rb).await, status, code);
    }
    // RTMP inputs are created the same way.
    let (input, _) = create_input(&s, "Keynote 2026", "rtmp").await;
    assert_eq!(input["ingest"], "rtmp");
}

async fn live_input_list_paginates(s: TestServer) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let (input, _) = create_input(&s, &format!("in {i}"), "fmp4").await;
        ids.push(input["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("/live_inputs?limit=2&cursor={c}"),
            None => "/live_inputs?limit=2".into(),
        };
        let (st, v) = send(s.req(Method::GET, &s.org_path(&q))).await;
        assert_eq!(st, StatusCode::OK);
        pages += 1;
        for i in v["data"].as_array().unwrap() {
            seen.push(i["id"].as_str().unwrap().to_owned());
        }
        match v["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "creation order, no duplicates, nothing missing");
    let (_, v) = send(s.req(Method::GET, &s.org_path("/live_inputs"))).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 5);
    for bad in [
        "limit=101",
        "limit=-1",
        "limit=x",
        "cursor=garbage",
        "cursor=1.a%27b",
    ] {
        assert_error(
            &send(s.req(Method::GET, &s.org_path(&format!("/live_inputs?{bad}")))).await,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        );
    }
}

async fn stream_key_rotation(s: TestServer) {
    let (input, key) = create_input(&s, "k", "rtmp").await;
    let id = input["id"].as_str().unwrap();
    let (st, v) = send(s.req(
        Method::POST,
        &s.org_path(&format!("/live_inputs/{id}/stream_key")),
    ))
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let new_key = v["streamKey"].as_str().unwrap();
    assert!(new_key.starts_with("sk_") && new_key != key);
    assert_eq!(v["input"]["id"], id);
    assert_error(
        &send(s.req(
            Method::POST,
            &s.org_path("/live_inputs/li_missing/stream_key"),
        ))
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

async fn playback_tokens_mint(s: TestServer) {
    let (input, _) = create_input(&s, "t", "fmp4").await;
    let id = input["id"].as_str().unwrap();
    let lv = input["external_input_id"].as_str().unwrap();
    let path = s.org_path(&format!("/live_inputs/{id}/playback_tokens"));
    let (st, v) = send(
        s.req(Method::POST, &path)
            .json(&json!({ "ttlSeconds": 900 })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap();
    assert_eq!(v["url"], format!("{}/watch/{lv}?token={token}", s.base));
    assert_eq!(v["playbackId"], lv);
    let exp = time::OffsetDateTime::parse(
        v["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = exp - time::OffsetDateTime::now_utc();
    assert!(
        left.whole_seconds() > 890 && left.whole_seconds() <= 900,
        "{left}"
    );

    // Default TTL, no body; snake_case alias.
    let (st, v) = send(s.req(Method::POST, &path)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, _) = send(
        s.req(Method::POST, &path)
            .json(&json!({ "ttl_seconds": 60 })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);

    // Bounds and types.
    for ttl in [json!(0), json!(86_401), json!(1_000_000_000u64)] {
        assert_error(
            &send(
                s.req(Method::POST, &path)
                    .json(&json!({ "ttlSeconds": ttl })),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    for ttl in [json!(-1), json!("60"), json!(1.5)] {
        assert_error(
            &send(
                s.req(Method::POST, &path)
                    .json(&json!({ "ttlSeconds": ttl })),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        );
    }
    assert_error(
        &send(s.req(
            Method::POST,
            &s.org_path("/live_inputs/li_missing/playback_tokens"),
        ))
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

async fn signing_keys_endpoints(s: TestServer) {
    let (st, v) = send(s.req(Method::GET, &s.org_path("/signing_keys"))).await;
    assert_eq!(st, StatusCode::OK);
    let keys = v["data"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let first = keys[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(keys[0]["active"], true);
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert_eq!(keys[0]["public_jwk"]["kty"], "OKP");
    assert!(keys[0].get("private_pkcs8").is_none() && !v.to_string().contains("private"));

    let (st, v) = send(
        s.req(Method::POST, &s.org_path("/signing_keys/rotate"))
            .json(&json!({ "alg": "ES256" })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let second = v["signingKey"]["kid"].as_str().unwrap().to_owned();
    assert_eq!(v["signingKey"]["alg"], "ES256");
    assert_eq!(v["signingKey"]["public_jwk"]["crv"], "P-256");
    assert_ne!(first, second);

    let (st, v) = send(s.req(Method::POST, &s.org_path("/signing_keys"))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let third = v["signingKey"]["kid"].as_str().unwrap().to_owned();
    assert_eq!(v["signingKey"]["alg"], "EdDSA");

    let (_, v) = send(s.req(Method::GET, &s.org_path("/signing_keys"))).await;
    let keys = v["data"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let active: Vec<_> = keys
        .iter()
        .filter(|k| k["active"] == true)
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(active, vec![third.as_str()]);
    assert!(keys
        .iter()
        .filter(|k| k["active"] == false)
        .all(|k| k["verify_until"].is_string()));

    assert_error(
        &send(
            s.req(Method::POST, &s.org_path("/signing_keys/rotate"))
                .json(&json!({ "alg": "HS256" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &send(s.req(
            Method::DELETE,
            &s.org_path(&format!("/signing_keys/{third}")),
        ))
        .await,
        StatusCode::CONFLICT,
        "signing_key_active",
    );
    let (st, _) = send(s.req(
        Method::DELETE,
        &s.org_path(&format!("/signing_keys/{first}")),
    ))
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(
        &send(s.req(
            Method::DELETE,
            &s.org_path(&format!("/signing_keys/{first}")),
        ))
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // JWKS: the keys that still verify.
    let (st, v) = send(s.anon(Method::GET, "/.well-known/jwks.json")).await;
    assert_eq!(st, StatusCode::OK);
    let kids: Vec<_> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kids.contains(&second) && kids.contains(&third) && !kids.contains(&first),
        "{kids:?}"
    );
    let ec = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == second.as_str())
        .unwrap();
    assert!(ec["x"].is_string() && ec["y"].is_string() && ec["alg"] == "ES256");
}

async fn playback_info_endpoint(s: TestServer) {
    let (input, _) = create_input(&s, "p", "fmp4").await;
    let id = input["id"].as_str().unwrap().to_owned();
    let lv = input["external_input_id"].as_str().unwrap().to_owned();
    let (_, minted) = send(s.req(
        Method::POST,
        &s.org_path(&format!("/live_inputs/{id}/playback_tokens")),
    ))
    .await;
    let token = minted["token"].as_str().unwrap().to_owned();

    let (_tx, rx) = tokio::sync::watch::channel("ab12cd".to_string());
    s.api
        .set_relay_info(vec!["https://relay.example:4443".into()], rx);
    let (st, v) = send(s.anon(Method::GET, &format!("/v1/playback/{lv}?token={token}"))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], "live");
    assert_eq!(v["playbackId"], lv.as_str());
    assert_eq!(v["orgId"], s.creds.org_id.as_str());
    assert_eq!(v["relayUrl"], "https://relay.example:4443");
    assert_eq!(v["certificateSha256"], "ab12cd");
    assert_eq!(v["namespace"], format!("stream/{}/{lv}", s.creds.org_id));
    assert_eq!(v["catalogTrack"], ".catalog");
    assert_eq!(v["expiresAt"], minted["expiresAt"]);

    // Token in the Authorization header.
    let (st, _) = send(
        s.anon(Method::GET, &format!("/v1/playback/{lv}"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(st, StatusCode::OK);

    assert_error(
        &send(s.anon(Method::GET, &format!("/v1/playback/{lv}"))).await,
        StatusCode::UNAUTHORIZED,
        "token_missing",
    );
    assert_error(
        &send(s.anon(Method::GET, &format!("/v1/playback/{lv}?token=nope"))).await,
        StatusCode::UNAUTHORIZED,
        "token_invalid",
    );
    assert_error(
        &send(s.anon(Method::GET, &format!("/v1/playback/xx_1?token={token}"))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // VOD ids: the token minted by the VOD path through the same library call.
    let pb = s
        .api
        .mint_playback(&s.creds.org_id, "pb_def456", Some(600))
        .await
        .unwrap();
    let (st, v) = send(s.anon(
        Method::GET,
        &format!("/v1/playback/pb_def456?token={}", pb.token),
    ))
    .await;
    // No ready asset has this id (the VOD path itself is tested in tests/assets.rs).
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "not_found");

    // A deleted input: valid token, id gone.
    send(s.req(Method::DELETE, &s.org_path(&format!("/live_inputs/{id}")))).await;
    assert_error(
        &send(s.anon(Method::GET, &format!("/v1/playback/{lv}?token={token}"))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

async fn watch_page_and_documents(s: TestServer) {
    let res = s
        .anon(Method::GET, "/watch/lv_abc123?token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("lv_abc123"));
    assert_error(
        &send(s.anon(Method::GET, "/watch/%3Cscript%3E")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let (st, doc) = send(s.anon(Method::GET, "/openapi.json")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (p, methods) in [
        ("/v1/orgs/{org}", &["get"][..]),
        ("/v1/orgs/{org}/api_keys", &["get", "post"]),
        ("/v1/orgs/{org}/api_keys/{id}", &["delete"]),
        ("/v1/orgs/{org}/live_inputs", &["get", "post"]),
        (
            "/v1/orgs/{org}/live_inputs/{id}",
            &["get", "patch", "delete"],
        ),
        ("/v1/orgs/{org}/live_inputs/{id}/stream_key", &["post"]),
        ("/v1/orgs/{org}/live_inputs/{id}/playback_tokens", &["post"]),
        ("/v1/orgs/{org}/signing_keys", &["get", "post"]),
        ("/v1/orgs/{org}/signing_keys/rotate", &["post"]),
        ("/v1/orgs/{org}/signing_keys/{kid}", &["delete"]),
        ("/v1/playback/{id}", &["get"]),
        ("/.well-known/jwks.json", &["get"]),
        ("/openapi.json", &["get"]),
        ("/watch/{id}", &["get"]),
        ("/v1/orgs/{org}/assets/uploads", &["post"]),
        ("/v1/orgs/{org}/assets", &["get"]),
        ("/v1/orgs/{org}/assets/{id}", &["get", "delete"]),
        ("/v1/orgs/{org}/assets/{id}/playback_tokens", &["post"]),
        ("/v1/uploads", &["options", "post"]),
        ("/v1/uploads/{id}", &["head", "patch", "delete", "options"]),
        ("/vod/{pb}/{path}", &["get"]),
    ] {
        for m in methods {
            assert!(
                paths.get(p).and_then(|o| o.get(*m)).is_some(),
                "{m} {p} documented"
            );
        }
    }
    assert_eq!(paths.len(), 21, "no undocumented or stale paths");

    assert_error(
        &send(s.req(Method::GET, "/v1/nope")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &send(s.req(Method::PUT, &s.org_path("/live_inputs"))).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

async fn input_status_follows_the_data_plane(s: TestServer) {
    use relay::auth::{Action, AuthRequest};
    let (input, key) = create_input(&s, "st", "fmp4").await;
    let id = input["id"].as_str().unwrap().to_owned();
    let lv = input["external_input_id"].as_str().unwrap().to_owned();
    let auth = s.api.authorizer();
    let grant = auth
        .authorize(AuthRequest {
            action: Action::Publish,
            namespace: vec![
                b"stream".to_vec(),
                s.creds.org_id.as_bytes().to_vec(),
                lv.as_bytes().to_vec(),
            ],
            track: None,
            token: Some(key.into_bytes()),
        })
        .await
        .unwrap();
    let (_, v) = send(s.req(Method::GET, &s.org_path(&format!("/live_inputs/{id}")))).await;
    assert_eq!(v["input"]["status"]["state"], "live");
    assert_eq!(v["input"]["status"]["ingest"], "fmp4");
    assert!(v["input"]["status"]["since"].is_string());
    drop(grant);
    let (_, v) = send(s.req(Method::GET, &s.org_path(&format!("/live_inputs/{id}")))).await;
    assert_eq!(v["input"]["status"]["state"], "idle");
    assert!(v["input"]["status"]["ingest"].is_null());
}

db_tests!(
    org_endpoint,
    api_keys_lifecycle,
    live_input_create_get_update_delete,
    live_input_create_errors,
    live_input_list_paginates,
    stream_key_rotation,
    playback_tokens_mint,
    signing_keys_endpoints,
    playback_info_endpoint,
    watch_page_and_documents,
    input_status_follows_the_data_plane,
);
