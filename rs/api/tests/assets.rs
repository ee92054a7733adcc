//! VOD assets over real HTTP: the recipe's HEAD/PATCH loop, tus creation/checksum/termination,
//! bad input (a 4xx with a code each), concurrency, cut-off bodies, packaging and serving,
//! signed playback, and restarts (upload and packaging) on the same data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{assert_error, send, Backend, TestServer};

db_tests!(
    recipe_loop_uploads_packages_and_serves,
    tus_creation_checksum_and_termination,
    bad_input_is_a_4xx_with_a_code,
    concurrent_patches_never_interleave,
    cut_off_patch_keeps_what_arrived,
    not_media_errors_with_a_code,
    signed_assets_need_a_token,
    restart_mid_upload_and_mid_packaging_loses_nothing,
);

/// A 4 s H.264/AAC MP4 (moov at the end), made once per test binary.
fn media() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.mp4");
        let ok = std::process::Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25:duration=4",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=4",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
            ])
            .arg(&out)
            .status()
            .expect("ffmpeg (apt-get install -y ffmpeg)")
            .success();
        assert!(ok);
        std::fs::read(out).unwrap()
    })
}

fn start_worker(api: &api::Api) -> tokio::task::JoinHandle<()> {
    let api = api.clone();
    tokio::spawn(async move { api.run_vod_worker().await })
}

async fn create(s: &TestServer, body: Value) -> (String, String) {
    let r = send(
        s.req(Method::POST, &s.org_path("/assets/uploads"))
            .json(&body),
    )
    .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    assert_eq!(r.1["asset"]["status"], "uploading");
    (
        r.1["uploadUrl"].as_str().unwrap().to_owned(),
        r.1["assetId"].as_str().unwrap().to_owned(),
    )
}

async fn head_offset(s: &TestServer, url: &str) -> u64 {
    let r = s
        .client
        .head(url)
        .header("tus-resumable", "2.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The recipe's `tusUpload`, in Rust.
async fn tus_upload(s: &TestServer, url: &str, bytes: &[u8], chunk: usize) {
    let mut offset = head_offset(s, url).await as usize;
    while offset < bytes.len() {
        let end = (offset + chunk).min(bytes.len());
        let r = s
            .client
            .patch(url)
            .header("tus-resumable", "2.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(bytes[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        offset = r
            .headers()
            .get("upload-offset")
            .map(|v| v.to_str().unwrap().parse().unwrap())
            .unwrap_or(end);
    }
}

async fn asset(s: &TestServer, id: &str) -> Value {
    let r = send(s.req(Method::GET, &s.org_path(&format!("/assets/{id}")))).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    r.1["asset"].clone()
}

async fn wait_status(s: &TestServer, id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let a = asset(s, id).await;
        if a["status"] == want {
            return a;
        }
        assert!(
            a["status"] != "errored" || want == "errored",
            "asset errored: {a}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "asset never became {want}: {a}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn source_file(s: &TestServer, asset: &str) -> PathBuf {
    s.dir
        .path()
        .join("objects")
        .join("uploads")
        .join(asset)
        .join("source")
}

async fn recipe_loop_uploads_packages_and_serves(s: TestServer) {
    let _w = start_worker(&s.api);
    let (url, id) = create(&s, json!({ "name": "Session-Recording.mp4" })).await;
    assert!(
        url.contains("/v1/uploads/up_") && url.contains("?token=ut_"),
        "{url}"
    );
    tus_upload(&s, &url, media(), 64 << 10).await;
    let a = wait_status(&s, &id, "ready").await;
    assert_eq!(a["size_bytes"], media().len());
    let stored = std::fs::read(source_file(&s, &id)).unwrap();
    assert_eq!(Sha256::digest(&stored), Sha256::digest(media()));
    let pb = a["playback_id"].as_str().unwrap().to_owned();
    assert!(pb.starts_with("pb_"));
    assert!(
        (3900..=4200).contains(&a["duration_ms"].as_i64().unwrap()),
        "{a}"
    );

    // The viewer's calls: playback info (public: no token), catalog, segments.
    let info = send(s.anon(Method::GET, &format!("/v1/playback/{pb}"))).await;
    assert_eq!(info.0, StatusCode::OK, "{}", info.1);
    assert_eq!(info.1["kind"], "vod");
    let catalog_url = info.1["catalogUrl"].as_str().unwrap().to_owned();
    assert_eq!(catalog_url, s.url(&format!("/vod/{pb}/catalog.json")));
    let cat: Value = s
        .client
        .get(&catalog_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tracks = cat["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0]["name"], "video/source");
    assert_eq!(tracks[0]["segmentCount"], 4, "{}", tracks[0]);
    assert!(tracks[0]["initData"].as_str().is_some());
    for t in tracks {
        let name = t["name"].as_str().unwrap();
        let n = t["segmentCount"].as_u64().unwrap();
        // Both the plain and the percent-encoded track path work.
        for path in [
            format!("/vod/{pb}/{name}/0.m4s"),
            format!("/vod/{pb}/{}/0.m4s", name.replace('/', "%2F")),
        ] {
            let r = s.client.get(s.url(&path)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(
                r.headers()["cache-control"],
                "public, max-age=31536000, immutable"
            );
            assert_eq!(&r.bytes().await.unwrap()[4..8], b"moof");
        }
        let past = s
            .client
            .get(s.url(&format!("/vod/{pb}/{name}/{n}.m4s")))
            .send()
            .await
            .unwrap();
        assert_eq!(past.status(), StatusCode::NOT_FOUND, "404 ends the track");
        let init = s
            .client
            .get(s.url(&format!("/vod/{pb}/{name}/init.mp4")))
            .send()
            .await
            .unwrap();
        let init = init.bytes().await.unwrap();
        let inline = base64::engine::general_purpose::STANDARD
            .decode(t["initData"].as_str().unwrap())
            .unwrap();
        assert_eq!(init.as_ref(), inline.as_slice());
    }
    // Range, ETag.
    let seg = s.url(&format!("/vod/{pb}/video/source/1.m4s"));
    let full = s.client.get(&seg).send().await.unwrap();
    let etag = full.headers()["etag"].clone();
    let full = full.bytes().await.unwrap();
    let part = s
        .client
        .get(&seg)
        .header("range", "bytes=8-15")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 8-15/{}", full.len())
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &full[8..16]);
    let bad = s
        .client
        .get(&seg)
        .header("range", format!("bytes={}-", full.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let nm = s
        .client
        .get(&seg)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(nm.status(), StatusCode::NOT_MODIFIED);
    // Traversal and junk paths are 404.
    for p in [
        "/vod/{pb}/..%2F..%2Fcredentials",
        "/vod/{pb}/video/source/x.m4s",
        "/vod/pb_nope/catalog.json",
    ] {
        let r = s
            .client
            .get(s.url(&p.replace("{pb}", &pb)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{p}");
    }
    // List and delete.
    let list = send(s.req(Method::GET, &s.org_path("/assets"))).await;
    assert_eq!(list.1["data"][0]["id"], id.as_str());
    assert_eq!(
        send(s.req(Method::DELETE, &s.org_path(&format!("/assets/{id}"))))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.client.get(&catalog_url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert!(!source_file(&s, &id).exists());
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn tus_create(s: &TestServer, len: usize) -> (String, String) {
    let r = s
        .req(Method::POST, "/v1/uploads")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", len.to_string())
        .header(
            "upload-metadata",
            format!("filename {},filetype {}", b64("clip.mp4"), b64("video/mp4")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    assert!(r.headers().contains_key("upload-expires"));
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let asset = r.headers()["clutchcall-asset-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (loc, asset)
}

fn tus_patch(s: &TestServer, url: &str, offset: u64, body: Vec<u8>) -> reqwest::RequestBuilder {
    s.client
        .patch(url)
        .bearer_auth(&s.creds.api_key)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(body)
}

async fn tus_creation_checksum_and_termination(s: TestServer) {
    let opts = s.anon(Method::OPTIONS, "/v1/uploads").send().await.unwrap();
    assert_eq!(opts.status(), StatusCode::NO_CONTENT);
    let ext = opts.headers()["tus-extension"].to_str().unwrap();
    for e in [
        "creation",
        "creation-with-upload",
        "expiration",
        "checksum",
        "termination",
    ] {
        assert!(ext.split(',').any(|x| x == e), "{ext}");
    }
    assert_eq!(opts.headers()["tus-version"], "1.0.0");
    assert_eq!(opts.headers()["tus-checksum-algorithm"], "sha256");
    assert!(opts.headers().contains_key("tus-max-size"));

    let (url, asset_id) = tus_create(&s, 10).await;
    let a = asset(&s, &asset_id).await;
    assert_eq!(a["name"], "clip.mp4");
    let sum = |b: &[u8]| {
        format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b))
        )
    };
    let ok = tus_patch(&s, &url, 0, b"hello".to_vec())
        .header("upload-checksum", sum(b"hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()["upload-offset"], "5");
    let bad = tus_patch(&s, &url, 5, b"world".to_vec())
        .header("upload-checksum", sum(b"WORLD"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 460);
    assert_eq!(bad.headers()["upload-offset"], "5");
    let v: Value = bad.json().await.unwrap();
    assert_eq!(v["error"]["code"], "checksum_mismatch");
    let algo = tus_patch(&s, &url, 5, b"world".to_vec())
        .header("upload-checksum", "md5 AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(algo.status(), StatusCode::BAD_REQUEST);
    let h = s
        .client
        .head(&url)
        .bearer_auth(&s.creds.api_key)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(h.headers()["upload-offset"], "5");
    assert_eq!(h.headers()["upload-length"], "10");
    assert_eq!(h.headers()["cache-control"], "no-store");
    assert!(h.headers()["upload-metadata"]
        .to_str()
        .unwrap()
        .contains("filename"));
    // creation-with-upload
    let r = s
        .req(Method::POST, "/v1/uploads")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "6")
        .header("content-type", "application/offset+octet-stream")
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["upload-offset"], "3");
    // Termination.
    let d = s
        .client
        .delete(&url)
        .bearer_auth(&s.creds.api_key)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), StatusCode::NO_CONTENT);
    let h = s
        .client
        .head(&url)
        .bearer_auth(&s.creds.api_key)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), StatusCode::NOT_FOUND);
    assert_error(
        &send(s.req(Method::GET, &s.org_path(&format!("/assets/{asset_id}")))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

async fn code_of(r: reqwest::Response) -> (StatusCode, Value) {
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn bad_input_is_a_4xx_with_a_code(s: TestServer) {
    let (url, _) = tus_create(&s, 10).await;
    let p = |off: &str| {
        s.client
            .patch(&url)
            .bearer_auth(&s.creds.api_key)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", off)
            .header("content-type", "application/offset+octet-stream")
            .body(b"x".to_vec())
    };
    for off in [
        "abc",
        "-1",
        "99999999999999999999999",
        "1e3",
        "",
        "0x0",
        "+0",
    ] {
        assert_error(
            &code_of(p(off).send().await.unwrap()).await,
            StatusCode::BAD_REQUEST,
            "invalid_header",
        );
    }
    // Wrong offset: 409 with the current offset.
    let r = p("5").send().await.unwrap();
    assert_eq!(r.headers()["upload-offset"], "0");
    assert_error(
        &code_of(r).await,
        StatusCode::CONFLICT,
        "upload_offset_mismatch",
    );
    let r = p("999999999999999999").send().await.unwrap();
    assert_error(
        &code_of(r).await,
        StatusCode::CONFLICT,
        "upload_offset_mismatch",
    );
    // Missing Upload-Offset.
    let r = s
        .client
        .patch(&url)
        .bearer_auth(&s.creds.api_key)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(&code_of(r).await, StatusCode::BAD_REQUEST, "invalid_header");
    // Body longer than the declared length: 413 before reading.
    let r = tus_patch(&s, &url, 0, vec![0u8; 20]).send().await.unwrap();
    assert_eq!(r.headers()["upload-offset"], "0");
    assert_error(
        &code_of(r).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
    );
    // Wrong content type.
    let r = s
        .client
        .patch(&url)
        .bearer_auth(&s.creds.api_key)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(
        &code_of(r).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // Missing / unsupported Tus-Resumable.
    let r = s
        .client
        .patch(&url)
        .bearer_auth(&s.creds.api_key)
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    assert_error(
        &code_of(r).await,
        StatusCode::PRECONDITION_FAILED,
        "tus_version_unsupported",
    );
    let r = s
        .client
        .patch(&url)
        .bearer_auth(&s.creds.api_key)
        .header("tus-resumable", "0.2.2")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(
        &code_of(r).await,
        StatusCode::PRECONDITION_FAILED,
        "tus_version_unsupported",
    );
    // Malformed Upload-Length / Upload-Complete on PATCH.
    let r = tus_patch(&s, &url, 0, b"x".to_vec())
        .header("upload-length", "-3")
        .send()
        .await
        .unwrap();
    assert_error(&code_of(r).await, StatusCode::BAD_REQUEST, "invalid_header");
    let r = tus_patch(&s, &url, 0, b"x".to_vec())
        .header("upload-complete", "yes")
        .send()
        .await
        .unwrap();
    assert_error(&code_of(r).await, StatusCode::BAD_REQUEST, "invalid_header");
    let r = tus_patch(&s, &url, 0, b"x".to_vec())
        .header("upload-checksum", "sha256 !!!")
        .send()
        .await
        .unwrap();
    assert_error(&code_of(r).await, StatusCode::BAD_REQUEST, "invalid_header");
    // Unknown upload id, junk ids.
    for id in ["up_000000000000000000000000", "up_%00", "nope", "up_x'--"] {
        let u = s.url(&format!("/v1/uploads/{id}"));
        let r = s
            .client
            .patch(&u)
            .bearer_auth(&s.creds.api_key)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", "0")
            .header("content-type", "application/offset+octet-stream")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_error(&code_of(r).await, StatusCode::NOT_FOUND, "not_found");
    }
    // Another org's upload (its key), and a wrong upload token: 404.
    let other = s.api.create_org("other").await.unwrap();
    let r = s
        .client
        .head(&url)
        .bearer_auth(&other.api_key)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .client
        .patch(&url)
        .bearer_auth(&other.api_key)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(&code_of(r).await, StatusCode::NOT_FOUND, "not_found");
    let r = s
        .client
        .patch(format!("{url}?token=ut_forged"))
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(&code_of(r).await, StatusCode::NOT_FOUND, "not_found");
    // No credentials at all.
    let r = s
        .client
        .patch(&url)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(&code_of(r).await, StatusCode::UNAUTHORIZED, "unauthorized");
    // Creation: bad headers, limits.
    let c = |h: &[(&str, &str)]| {
        let mut rb = s
            .req(Method::POST, "/v1/uploads")
            .header("tus-resumable", "1.0.0");
        for (k, v) in h {
            rb = rb.header(*k, *v);
        }
        rb
    };
    assert_error(
        &code_of(c(&[]).send().await.unwrap()).await,
        StatusCode::BAD_REQUEST,
        "invalid_header",
    );
    assert_error(
        &code_of(
            c(&[("upload-length", "5"), ("upload-defer-length", "1")])
                .send()
                .await
                .unwrap(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_header",
    );
    assert_error(
        &code_of(c(&[("upload-defer-length", "2")]).send().await.unwrap()).await,
        StatusCode::BAD_REQUEST,
        "invalid_header",
    );
    assert_error(
        &code_of(c(&[("upload-length", "-5")]).send().await.unwrap()).await,
        StatusCode::BAD_REQUEST,
        "invalid_header",
    );
    assert_error(
        &code_of(
            c(&[
                ("upload-length", "5"),
                ("upload-metadata", "filename !!notbase64"),
            ])
            .send()
            .await
            .unwrap(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_header",
    );
    assert_error(
        &code_of(
            c(&[("upload-length", "999999999999999999")])
                .send()
                .await
                .unwrap(),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
    );
    let r = s
        .anon(Method::POST, "/v1/uploads")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "5")
        .send()
        .await
        .unwrap();
    assert_error(&code_of(r).await, StatusCode::UNAUTHORIZED, "unauthorized");
    // REST creation: validation.
    assert_error(
        &send(
            s.req(Method::POST, &s.org_path("/assets/uploads"))
                .json(&json!({ "name": "" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &send(
            s.req(Method::POST, &s.org_path("/assets/uploads"))
                .json(&json!({ "name": "x", "playbackPolicy": "open" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &send(
            s.req(Method::POST, &s.org_path("/assets/uploads"))
                .json(&json!({ "name": "x", "size": 1u64 << 60 })),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
    );
    assert_error(
        &send(
            s.req(Method::POST, &s.org_path("/assets/uploads"))
                .json(&json!({ "name": 5 })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
}

async fn concurrent_patches_never_interleave(s: TestServer) {
    let (url, _) = tus_create(&s, 2 << 20).await;
    // A slow first body: 1 MiB over ~1 s.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let slow = tokio::spawn({
        let rb = s
            .client
            .patch(&url)
            .bearer_auth(&s.creds.api_key)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", "0")
            .header("content-type", "application/offset+octet-stream")
            .header("content-length", (1u64 << 20).to_string())
            .body(body);
        async move { rb.send().await.unwrap().status() }
    });
    tx.send(Ok(vec![b'a'; 256 << 10])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fast = tus_patch(&s, &url, 0, vec![b'b'; 1 << 20]).send();
    let feeder = async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send(Ok(vec![b'a'; 256 << 10])).await.unwrap();
        }
    };
    let (fast, ()) = tokio::join!(fast, feeder);
    let fast = fast.unwrap();
    assert!(
        matches!(fast.status(), StatusCode::CONFLICT | StatusCode::LOCKED),
        "{}",
        fast.status()
    );
    assert_eq!(slow.await.unwrap(), StatusCode::NO_CONTENT);
    let staged = std::fs::read(
        s.dir
            .path()
            .join("uploads")
            .join(url.rsplit('/').next().unwrap()),
    )
    .unwrap();
    assert_eq!(staged.len(), 1 << 20);
    assert!(
        staged.iter().all(|b| *b == b'a'),
        "bytes of the two PATCHes interleaved"
    );
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn cut_off_patch_keeps_what_arrived(s: TestServer) {
    use tokio::io::AsyncWriteExt as _;
    let (url, _) = tus_create(&s, 1000).await;
    let path = url.strip_prefix(&s.base).unwrap().to_owned();
    let mut sock = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ntus-resumable: 1.0.0\r\nupload-offset: 0\r\ncontent-type: application/offset+octet-stream\r\ncontent-length: 1000\r\n\r\n",
        s.creds.api_key
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&[7u8; 400]).await.unwrap();
    sock.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(sock);
    let start = Instant::now();
    loop {
        let h = s
            .client
            .head(&url)
            .bearer_auth(&s.creds.api_key)
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        if h.headers()["upload-offset"] == "400" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "offset never reached 400"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Resume from there.
    let r = tus_patch(&s, &url, 400, vec![7u8; 600])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["upload-complete"], "?1");
}

async fn not_media_errors_with_a_code(s: TestServer) {
    let _w = start_worker(&s.api);
    let junk = b"definitely not a video\n".repeat(500);
    let (url, id) = tus_create(&s, junk.len()).await;
    let r = tus_patch(&s, &url, 0, junk).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let a = wait_status(&s, &id, "errored").await;
    assert_eq!(a["error"]["code"], "not_media", "{a}");
    assert!(a["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(a["playback_id"].is_null());
}

async fn signed_assets_need_a_token(s: TestServer) {
    let _w = start_worker(&s.api);
    let (url, id) = create(
        &s,
        json!({ "name": "private.mp4", "playbackPolicy": "signed", "size": media().len() }),
    )
    .await;
    tus_upload(&s, &url, media(), 1 << 20).await;
    let a = wait_status(&s, &id, "ready").await;
    assert_eq!(a["playback_policy"], "signed");
    let pb = a["playback_id"].as_str().unwrap().to_owned();
    assert_error(
        &send(s.anon(Method::GET, &format!("/vod/{pb}/catalog.json"))).await,
        StatusCode::UNAUTHORIZED,
        "token_missing",
    );
    assert_error(
        &send(s.anon(Method::GET, &format!("/v1/playback/{pb}"))).await,
        StatusCode::UNAUTHORIZED,
        "token_missing",
    );
    assert_error(
        &send(s.anon(Method::GET, &format!("/vod/{pb}/catalog.json?token=abc"))).await,
        StatusCode::UNAUTHORIZED,
        "token_invalid",
    );
    let t = send(
        s.req(
            Method::POST,
            &s.org_path(&format!("/assets/{id}/playback_tokens")),
        )
        .json(&json!({ "ttlSeconds": 60 })),
    )
    .await;
    assert_eq!(t.0, StatusCode::CREATED, "{}", t.1);
    let token = t.1["token"].as_str().unwrap();
    let info = send(s.anon(Method::GET, &format!("/v1/playback/{pb}?token={token}"))).await;
    assert_eq!(info.0, StatusCode::OK);
    let cat = s
        .client
        .get(info.1["catalogUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(cat.status(), StatusCode::OK);
    let seg = s
        .client
        .get(s.url(&format!("/vod/{pb}/video/source/0.m4s")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(seg.status(), StatusCode::OK);
    // A token for another id does not open this one.
    let (_, other) = create(&s, json!({ "name": "x" })).await;
    let _ = other;
    assert_error(
        &send(s.anon(
            Method::GET,
            &format!("/vod/{pb}/catalog.json?token={}", token.replace('a', "b")),
        ))
        .await,
        StatusCode::UNAUTHORIZED,
        "token_invalid",
    );
}

/// Open another `Api` on the same data directory and database (an engine restart).
async fn reopen(
    s: &TestServer,
    database_url: Option<String>,
) -> (api::Api, tokio::task::JoinHandle<()>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cfg = support::test_config(s.dir.path(), database_url, &base);
    let api = api::Api::open(cfg).await.unwrap();
    let router = api.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (api, server, base)
}

async fn restart_mid_upload_and_mid_packaging_loses_nothing(s: TestServer) {
    let database_url = match s.backend {
        Backend::Sqlite => None,
        Backend::Postgres => s.api.config().database_url.clone(),
    };
    let bytes = media();
    let (url, id) = create(&s, json!({ "name": "restart.mp4", "size": bytes.len() })).await;
    let half = bytes.len() / 2;
    tus_upload_until(&s, &url, bytes, half).await;
    let token_url = url.replace(&s.base, "");
    // "Restart": a new engine on the same data dir and database; the old one stops serving.
    s.api.close().await;
    let (api2, server2, base2) = reopen(&s, database_url.clone()).await;
    let url2 = format!("{base2}{token_url}");
    let r = s
        .client
        .head(&url2)
        .header("tus-resumable", "2.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["upload-offset"].to_str().unwrap(),
        half.to_string(),
        "acknowledged offset survives"
    );
    // Finish the upload; packaging starts; kill the worker mid-job.
    let mut offset = half;
    while offset < bytes.len() {
        let end = (offset + (64 << 10)).min(bytes.len());
        let r = s
            .client
            .patch(&url2)
            .header("tus-resumable", "2.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(bytes[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        offset = end;
    }
    let worker = start_worker(&api2);
    // Give it time to claim the job and start ffmpeg, then crash it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    worker.abort();
    let _ = worker.await;
    api2.close().await;
    server2.abort();
    let (api3, server3, base3) = reopen(&s, database_url).await;
    let _w3 = start_worker(&api3);
    let start = Instant::now();
    loop {
        let r = s
            .client
            .get(format!("{base3}/v1/orgs/{}/assets/{id}", s.creds.org_id))
            .bearer_auth(&s.creds.api_key)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        if v["asset"]["status"] == "ready" {
            break;
        }
        assert_ne!(v["asset"]["status"], "errored", "{v}");
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "never ready after restart: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = std::fs::read(source_file(&s, &id)).unwrap();
    assert_eq!(Sha256::digest(&stored), Sha256::digest(bytes));
    server3.abort();
}

async fn tus_upload_until(s: &TestServer, url: &str, bytes: &[u8], stop: usize) {
    let mut offset = 0;
    while offset < stop {
        let end = (offset + (64 << 10)).min(stop);
        let r = s
            .client
            .patch(url)
            .header("tus-resumable", "2.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(bytes[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        offset = end;
    }
}

#[allow(dead_code)]
fn _unused(_: &Path) {}

/// The media file remuxed to MPEG-TS (not ISO-BMFF: no structure says when it is whole).
fn media_ts() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (src, out) = (dir.path().join("m.mp4"), dir.path().join("m.ts"));
        std::fs::write(&src, media()).unwrap();
        let ok = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&src)
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(&out)
            .status()
            .expect("ffmpeg")
            .success();
        assert!(ok);
        std::fs::read(out).unwrap()
    })
}

mod idle_completion {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        idle_non_mp4_upload_of_unknown_length_completes(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        idle_non_mp4_upload_of_unknown_length_completes(Backend::Postgres).await;
    }
}

/// `upload_idle_complete`: a length-less upload that is not an MP4 completes once no PATCH has
/// moved it for the idle period, and is packaged; a paused MP4 (which completes by structure
/// when whole) is left alone; a PATCH after completion is 409 `upload_completed`.
async fn idle_non_mp4_upload_of_unknown_length_completes(backend: Backend) {
    let Some(s) = TestServer::start_with(backend, |c| {
        c.vod.upload_idle_complete = Duration::from_millis(300);
    })
    .await
    else {
        return;
    };
    let _w = start_worker(&s.api);
    // First a paused MP4: idle longer than the TS below, and still uploading at the end.
    let (mp4_url, mp4_id) = create(&s, json!({ "name": "paused.mp4" })).await;
    tus_upload_until(&s, &mp4_url, media(), media().len() / 2).await;

    let ts = media_ts();
    let (url, id) = create(&s, json!({ "name": "Session-Recording.ts" })).await;
    let mut offset = 0usize;
    while offset < ts.len() {
        let end = (offset + (64 << 10)).min(ts.len());
        let r = tus_patch(&s, &url, offset as u64, ts[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(
            r.headers().get("upload-complete").is_none(),
            "nothing in the bytes says a TS file is whole"
        );
        offset = end;
    }
    let a = wait_status(&s, &id, "ready").await;
    assert_eq!(a["upload"]["length"], json!(ts.len()), "{a}");
    assert_eq!(a["size_bytes"], json!(ts.len()), "{a}");
    let pb = a["playback_id"].as_str().unwrap();
    let cat = send(s.anon(Method::GET, &format!("/vod/{pb}/catalog.json"))).await;
    assert_eq!(cat.0, StatusCode::OK);
    assert!(cat.1["tracks"].as_array().is_some_and(|t| t.len() >= 2));
    // Completed: more bytes are refused with the completed code.
    let r = tus_patch(&s, &url, ts.len() as u64, b"more".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(code_of(r).await.1["error"]["code"], "upload_completed");
    // The sweep that completed the TS saw the (older, idler) MP4 too and left it.
    let m = asset(&s, &mp4_id).await;
    assert_eq!(m["status"], "uploading", "{m}");
    assert_eq!(m["upload"]["offset"], json!(media().len() / 2));
}
