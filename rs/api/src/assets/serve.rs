//! VOD serving: `GET|HEAD /vod/{pb}/catalog.json`, `/vod/{pb}/<track>/init.mp4`,
//! `/vod/{pb}/<track>/<index>.m4s` (`<track>` may be percent-encoded as one segment, e.g.
//! `video%2Fsource`). Single `Range` requests (206/416), strong `ETag` + `If-None-Match` (304),
//! `Cache-Control: public, max-age=31536000, immutable` on segments of public assets. Signed
//! assets need a playback JWT for the `pb_…` id: `?token=` or `Authorization: Bearer`.
//! CORS comes from the binary's layer (any origin, no credentials).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header::{
    ACCEPT_RANGES, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::db::{self, AssetRow};
use super::{err, token_error};
use crate::http::{ApiError, P};
use crate::secret::{self, prefix};
use crate::Api;

pub(super) fn routes() -> Router<Api> {
    Router::new().route("/vod/{pb}/{*path}", get(serve))
}

fn missing() -> ApiError {
    err(StatusCode::NOT_FOUND, "not_found", "not found")
}

/// The ready asset behind `pb`, if the caller may watch it.
pub(crate) async fn authorize(
    api: &Api,
    pb: &str,
    token: Option<&str>,
) -> Result<AssetRow, ApiError> {
    if !pb.starts_with(prefix::VOD_PLAYBACK) || !secret::plausible_id(pb) {
        return Err(err(
            StatusCode::NOT_FOUND,
            "not_found",
            "playback id not found",
        ));
    }
    let a = db::get_asset_by_playback(&api.inner.db, pb)
        .await?
        .filter(|a| a.status == "ready")
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "not_found", "playback id not found"))?;
    if a.playback_policy == "signed" {
        let t = token.ok_or_else(|| {
            err(
                StatusCode::UNAUTHORIZED,
                "token_missing",
                "a playback token is required",
            )
        })?;
        match api.verify_playback(t, pb, Some(&a.org_id)).await? {
            Ok(_) => {}
            Err(e) => return Err(token_error(&e)),
        }
    }
    Ok(a)
}

/// `catalog.json` | `<track>/init.mp4` | `<track>/<n>.m4s`, with `<track>` made of
/// `[A-Za-z0-9_-]` segments joined by `/`.
fn valid_path(path: &str) -> bool {
    if path == "catalog.json" {
        return true;
    }
    let Some((track, file)) = path.rsplit_once('/') else {
        return false;
    };
    let track_ok = !track.is_empty()
        && track.len() <= 64
        && track.split('/').all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    let file_ok = file == "init.mp4"
        || file.strip_suffix(".m4s").is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 9
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
        });
    track_ok && file_ok
}

/// A single byte range against `size`: `Ok(None)` for none (or one we ignore, like multiple
/// ranges), `Err(())` when unsatisfiable or malformed. Public for the fuzz target.
#[allow(clippy::result_unit_err)]
pub fn parse_range(h: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.get(RANGE) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| ())?.trim();
    let spec = s.strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |x: &str| -> Result<u64, ()> {
        let x = x.trim();
        if x.is_empty() || x.len() > 19 || !x.bytes().all(|c| c.is_ascii_digit()) {
            return Err(());
        }
        x.parse().map_err(|_| ())
    };
    let (start, end) = if a.trim().is_empty() {
        let n = num(b)?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start = num(a)?;
        let end = if b.trim().is_empty() {
            size.saturating_sub(1)
        } else {
            num(b)?.min(size.saturating_sub(1))
        };
        (start, end)
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn serve(
    State(api): State<Api>,
    P((pb, path)): P<(String, String)>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let token = q
        .get("token")
        .map(String::as_str)
        .or_else(|| {
            headers
                .get(AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
        })
        .filter(|t| !t.is_empty());
    let asset = authorize(&api, &pb, token).await?;
    if !valid_path(&path) {
        return Err(missing());
    }
    let key = format!("vod/{}/{path}", asset.id);
    let storage = &api.vod().storage;
    let size = match storage.size(&key).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(missing()),
        Err(e) => {
            tracing::error!(error = %e, %key, "object store failure");
            return Err(err(
                StatusCode::BAD_GATEWAY,
                "storage_error",
                "storage unavailable",
            ));
        }
    };
    // Objects under a ready asset never change: a strong tag from id, path and size.
    let digest = Sha256::digest(format!("{}\n{path}\n{size}", asset.id));
    let etag = format!("\"{}\"", hex::encode(&digest[..12]));
    let catalog = path == "catalog.json";
    let cache = match (catalog, asset.playback_policy.as_str()) {
        (true, "public") => "public, max-age=60",
        (true, _) => "private, max-age=60",
        (false, "public") => "public, max-age=31536000, immutable",
        (false, _) => "private, max-age=3600",
    };
    let mut res_headers = HeaderMap::new();
    let put = |h: &mut HeaderMap, k, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put(&mut res_headers, ETAG, &etag);
    put(&mut res_headers, CACHE_CONTROL, cache);
    put(&mut res_headers, ACCEPT_RANGES, "bytes");
    put(
        &mut res_headers,
        CONTENT_TYPE,
        if catalog {
            "application/json"
        } else {
            "video/mp4"
        },
    );
    if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, res_headers).into_response());
    }
    let range = match parse_range(&headers, size) {
        Ok(r) => r,
        Err(()) => {
            put(&mut res_headers, CONTENT_RANGE, &format!("bytes */{size}"));
            let mut res = err(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                "the range is not satisfiable",
            )
            .into_response();
            res.headers_mut().extend(res_headers);
            return Ok(res);
        }
    };
    let (status, start, end) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    if status == StatusCode::PARTIAL_CONTENT {
        put(
            &mut res_headers,
            CONTENT_RANGE,
            &format!("bytes {start}-{end}/{size}"),
        );
    }
    put(&mut res_headers, CONTENT_LENGTH, &len.to_string());
    metrics::counter!("clutchcall_vod_requests_total", "kind" => if catalog { "catalog" } else { "segment" }).increment(1);
    if method == Method::HEAD || len == 0 {
        return Ok((status, res_headers).into_response());
    }
    let obj = match storage.get(&key, Some(start..end + 1)).await {
        Ok(o) => o,
        Err(e) if e.is_not_found() => return Err(missing()),
        Err(e) => {
            tracing::error!(error = %e, %key, "object store failure");
            return Err(err(
                StatusCode::BAD_GATEWAY,
                "storage_error",
                "storage unavailable",
            ));
        }
    };
    metrics::counter!("clutchcall_vod_bytes_served_total").increment(obj.bytes.len() as u64);
    Ok((status, res_headers, obj.bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in [
            "catalog.json",
            "video/source/init.mp4",
            "video/source/0.m4s",
            "audio/source/12.m4s",
            "v/720p/3.m4s",
        ] {
            assert!(valid_path(ok), "{ok}");
        }
        for bad in [
            "",
            "../x/0.m4s",
            "video/../0.m4s",
            "video//0.m4s",
            "video/source/01.m4s",
            "video/source/x.m4s",
            "video/source/0.mp4",
            "/0.m4s",
            "catalog.json/x",
        ] {
            assert!(!valid_path(bad), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(
                RANGE,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("x")),
            );
            m
        };
        assert_eq!(parse_range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(parse_range(&h("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(parse_range(&h("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(&h("bytes=-4"), 10), Ok(Some((6, 9))));
        assert_eq!(parse_range(&h("bytes=8-100"), 10), Ok(Some((8, 9))));
        assert_eq!(parse_range(&h("bytes=0-1,3-4"), 10), Ok(None));
        assert!(parse_range(&h("bytes=10-"), 10).is_err());
        assert!(parse_range(&h("bytes=4-2"), 10).is_err());
        assert!(parse_range(&h("items=0-1"), 10).is_err());
        assert!(parse_range(&h("bytes=-0"), 10).is_err());
        assert!(parse_range(&h("bytes=99999999999999999999-"), 10).is_err());
    }
}
