//! The RTMP ingest's needs from the control plane, on SQLite and PostgreSQL: finding an input
//! by its `lv_…` id alone, and the ingest's details merged into `input.status`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{send, TestServer};

async fn create_input(s: &TestServer, name: &str) -> Value {
    let (st, v) = send(
        s.req(Method::POST, &s.org_path("/live_inputs"))
            .json(&json!({ "name": name, "ingest": "rtmp" })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["input"].clone()
}

async fn find_input_by_external_id(s: TestServer) {
    let input = create_input(&s, "Keynote").await;
    let lv = input["external_input_id"].as_str().unwrap();
    let row = s.api.find_input_by_external_id(lv).await.unwrap().unwrap();
    assert_eq!(row.org_id, s.creds.org_id);
    assert_eq!(row.id, input["id"].as_str().unwrap());
    // A second org's input is found too, with its own org.
    let other = s.api.create_org("other").await.unwrap();
    let (row2, _) = s
        .api
        .create_input(&other.org_id, "x", api::Ingest::Rtmp)
        .await
        .unwrap();
    let found = s
        .api
        .find_input_by_external_id(&row2.external_input_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.org_id, other.org_id);
    // Unknown, the internal li_ id, and junk are all "no input".
    for missing in [
        "lv_doesnotexist",
        input["id"].as_str().unwrap(),
        "",
        "lv_' OR 1=1 --",
    ] {
        assert!(
            s.api
                .find_input_by_external_id(missing)
                .await
                .unwrap()
                .is_none(),
            "{missing}"
        );
    }
}

async fn ingest_details_in_status(s: TestServer) {
    let input = create_input(&s, "Keynote").await;
    let id = input["id"].as_str().unwrap().to_owned();
    let lv = input["external_input_id"].as_str().unwrap().to_owned();
    let path = s.org_path(&format!("/live_inputs/{id}"));
    let get = |s: &TestServer| {
        let req = s.req(Method::GET, &path);
        async move { send(req).await.1["input"]["status"].clone() }
    };
    // Without an ingest: the plain status.
    let st = get(&s).await;
    assert_eq!(st["state"], "idle");
    assert!(st.get("renditions").is_none());

    let (tx, rx) = tokio::sync::watch::channel(BTreeMap::new());
    s.api.set_ingest_details(rx);
    tx.send_modify(|m| {
        m.insert(
            lv.clone(),
            json!({
                "renditions": [".catalog", "video/source", "video/360p"],
                "transcoder_error": "ffmpeg exited",
                "state": "hijacked",
            }),
        );
    });
    let st = get(&s).await;
    assert_eq!(
        st["renditions"],
        json!([".catalog", "video/source", "video/360p"])
    );
    assert_eq!(st["transcoder_error"], "ffmpeg exited");
    // The control plane's own fields are not overridden.
    assert_eq!(st["state"], "idle");
    assert_eq!(st["publishers"], 0);
    // Details of other inputs do not leak; removal clears them.
    tx.send_modify(|m| {
        m.remove(&lv);
        m.insert("lv_other".into(), json!({ "renditions": ["video/source"] }));
    });
    let st = get(&s).await;
    assert!(st.get("renditions").is_none(), "{st}");
}

db_tests!(find_input_by_external_id, ingest_details_in_status);
