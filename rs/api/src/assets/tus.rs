//! The upload endpoint: tus 1.0.0 (core, creation, creation-with-upload, creation-defer-length,
//! expiration, checksum sha256, termination) at `/v1/uploads[/{id}]`, also answering the
//! recipe's `Tus-Resumable: 2.0.0` HEAD/PATCH loop.
//!
//! Authorization: `Authorization: Bearer <api key>` of the upload's org, or the one-time
//! upload token of that very upload as `?token=ut_…` (the `uploadUrl` that
//! `POST /v1/orgs/{org}/assets/uploads` returns carries it). Another org's upload, a wrong
//! token or an unknown id: 404 `not_found`.
//!
//! When is an upload complete? When its offset reaches `Upload-Length` (declared at creation,
//! in the REST `size`, or on any PATCH: defer-length); when a PATCH says `Upload-Complete: ?1`;
//! or, for an upload of unknown length, when the bytes received form a whole ISO-BMFF file
//! (top-level boxes tile the data exactly and include `moov` and `mdat`): that is how the
//! recipe's length-less loop ends. An upload of unknown length whose bytes do not begin like
//! an MP4/MOV (other containers: MKV, TS, …) completes once no PATCH has moved it for
//! `upload_idle_complete` (default 60 s; the worker checks, see `worker.rs`); a client that
//! pauses longer than that and comes back gets 409 `upload_completed`.
//!
//! Concurrency: one append per upload at a time (a process-local lock; a second PATCH waits up
//! to 5 s for a cut-off one to finish, then gets 423 `upload_locked`), and the database offset
//! moves by compare-and-set. Each append runs in a task of its own so that a client that
//! disconnects mid-body still gets what it sent committed (fsync, then the offset).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body as RawBody;
use axum::extract::{Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt as _;
use sha2::{Digest, Sha256};
use vod::tus as hdr;

use super::db::{self, UploadRow};
use super::{check_policy, err, JOB, UPLOAD, UPLOAD_TOKEN};
use crate::http::{check_name, ApiError};
use crate::{now_ms, secret, Api};

/// How long a PATCH waits for another PATCH of the same upload to finish.
const LOCK_WAIT: Duration = Duration::from_secs(5);

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/v1/uploads", post(create).options(options))
        .route(
            "/v1/uploads/{id}",
            axum::routing::patch(patch)
                .head(head)
                .delete(terminate)
                .options(options),
        )
}

/// An error of the upload endpoint: the JSON error plus tus headers (and the current offset
/// when known, so a client can resume from any answer).
pub(crate) struct TusError {
    error: ApiError,
    offset: Option<i64>,
}

impl From<ApiError> for TusError {
    fn from(error: ApiError) -> Self {
        TusError {
            error,
            offset: None,
        }
    }
}

impl From<crate::Error> for TusError {
    fn from(e: crate::Error) -> Self {
        TusError {
            error: e.into(),
            offset: None,
        }
    }
}

impl TusError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        err(status, code, message).into()
    }

    fn at(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }
}

impl IntoResponse for TusError {
    fn into_response(self) -> Response {
        metrics::counter!("clutchcall_vod_upload_errors_total", "code" => self.error.code)
            .increment(1);
        let is_version = self.error.code == "tus_version_unsupported";
        let mut res = self.error.into_response();
        let h = res.headers_mut();
        tus_common(h);
        if is_version {
            h.insert("tus-version", HeaderValue::from_static(hdr::VERSION));
        }
        if let Some(o) = self.offset {
            set(h, "upload-offset", &o.to_string());
        }
        res
    }
}

type TusResult<T> = Result<T, TusError>;

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn tus_common(h: &mut HeaderMap) {
    h.insert("tus-resumable", HeaderValue::from_static(hdr::VERSION));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
}

fn bad_header(e: hdr::HeaderError) -> TusError {
    match e {
        hdr::HeaderError::ChecksumAlgorithm(_) => TusError::new(
            StatusCode::BAD_REQUEST,
            "checksum_algorithm_unsupported",
            e.to_string(),
        ),
        hdr::HeaderError::Version(_) => TusError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus_version_unsupported",
            e.to_string(),
        ),
        _ => TusError::new(StatusCode::BAD_REQUEST, "invalid_header", e.to_string()),
    }
}

fn check_version(h: &HeaderMap) -> TusResult<()> {
    let v = h.get("tus-resumable").ok_or_else(|| {
        TusError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus_version_unsupported",
            "Tus-Resumable: 1.0.0 is required",
        )
    })?;
    hdr::check_version(v.as_bytes()).map_err(bad_header)
}

fn header_u63(h: &HeaderMap, name: &'static str) -> TusResult<Option<u64>> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => hdr::parse_u63(name, v.as_bytes())
            .map(Some)
            .map_err(bad_header),
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn max_bytes(api: &Api) -> i64 {
    i64_of(api.config().vod.max_upload_bytes)
}

fn too_large(api: &Api) -> TusError {
    TusError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
        format!(
            "the upload would exceed its length or the limit of {} bytes",
            api.config().vod.max_upload_bytes
        ),
    )
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

fn not_found() -> TusError {
    TusError::new(StatusCode::NOT_FOUND, "not_found", "upload not found")
}

/// The upload `id` if the caller may touch it.
async fn authorized(
    api: &Api,
    id: &str,
    h: &HeaderMap,
    q: &HashMap<String, String>,
) -> TusResult<UploadRow> {
    if !id.starts_with(UPLOAD) || !secret::plausible_id(id) {
        return Err(not_found());
    }
    let token = q.get("token").filter(|t| !t.is_empty());
    let key = bearer(h);
    if token.is_none() && key.is_none() {
        return Err(TusError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an API key (Authorization: Bearer) or the upload token (?token=) is required",
        ));
    }
    let row = db::get_upload(&api.inner.db, id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(t) = token {
        if t.starts_with(UPLOAD_TOKEN) && secret::verify(t.as_bytes(), &row.token_hash) {
            return Ok(row);
        }
        return Err(not_found());
    }
    let key = api.authenticate(key.unwrap_or("")).await?.ok_or_else(|| {
        TusError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "invalid or revoked API key",
        )
    })?;
    if key.org_id != row.org_id {
        return Err(not_found());
    }
    Ok(row)
}

fn check_expiry(u: &UploadRow) -> TusResult<()> {
    if u.completed_at.is_none() && u.expires_at <= now_ms() {
        return Err(
            TusError::new(StatusCode::GONE, "upload_expired", "the upload expired")
                .at(u.upload_offset),
        );
    }
    Ok(())
}

fn query(
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> TusResult<HashMap<String, String>> {
    q.map(|Query(q)| q).map_err(|_| {
        TusError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "malformed query string",
        )
    })
}

// ---- OPTIONS ----

async fn options(State(api): State<Api>) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    tus_common(h);
    h.insert("tus-version", HeaderValue::from_static(hdr::VERSION));
    h.insert("tus-extension", HeaderValue::from_static(hdr::EXTENSIONS));
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(hdr::CHECKSUM_ALGORITHMS),
    );
    set(
        h,
        "tus-max-size",
        &api.config().vod.max_upload_bytes.to_string(),
    );
    res
}

// ---- HEAD ----

async fn head(
    State(api): State<Api>,
    crate::http::P(id): crate::http::P<String>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> TusResult<Response> {
    let q = query(q)?;
    check_version(&headers)?;
    let u = authorized(&api, &id, &headers, &q).await?;
    check_expiry(&u)?;
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    tus_common(h);
    upload_headers(h, &u);
    if !u.metadata.is_empty() {
        set(h, "upload-metadata", &u.metadata);
    }
    Ok(res)
}

fn upload_headers(h: &mut HeaderMap, u: &UploadRow) {
    set(h, "upload-offset", &u.upload_offset.to_string());
    match u.upload_length {
        Some(l) => set(h, "upload-length", &l.to_string()),
        None => set(h, "upload-defer-length", "1"),
    }
    if u.completed_at.is_none() {
        set(h, "upload-expires", &hdr::http_date(u.expires_at / 1000));
    } else {
        set(h, "upload-complete", "?1");
    }
}

// ---- DELETE (termination) ----

async fn terminate(
    State(api): State<Api>,
    crate::http::P(id): crate::http::P<String>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> TusResult<Response> {
    let q = query(q)?;
    check_version(&headers)?;
    let u = authorized(&api, &id, &headers, &q).await?;
    let lock = api.vod().lock_for(&u.id);
    let _guard = tokio::time::timeout(LOCK_WAIT, lock.lock_owned())
        .await
        .map_err(|_| {
            TusError::new(
                StatusCode::LOCKED,
                "upload_locked",
                "another request is writing to this upload",
            )
            .at(u.upload_offset)
        })?;
    let _ = tokio::fs::remove_file(api.vod().staging_file(&u.id)).await;
    if u.completed_at.is_none() {
        // The asset never got its bytes: it goes with the upload.
        let _ = db::delete_asset(&api.inner.db, &u.org_id, &u.asset_id).await?;
    } else {
        db::delete_upload(&api.inner.db, &u.id).await?;
    }
    api.vod().forget_lock(&u.id);
    let mut res = StatusCode::NO_CONTENT.into_response();
    tus_common(res.headers_mut());
    Ok(res)
}

// ---- POST (creation, creation-with-upload) ----

async fn create(
    State(api): State<Api>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> TusResult<Response> {
    let _ = query(q)?;
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    check_version(h)?;
    let key = match bearer(h) {
        Some(k) => api.authenticate(k).await?,
        None => None,
    }
    .ok_or_else(|| {
        TusError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "creating an upload needs an API key (Authorization: Bearer)",
        )
    })?;
    let length = header_u63(h, "upload-length")?;
    let deferred = match h.get("upload-defer-length") {
        None => false,
        Some(v) if v.as_bytes() == b"1" => true,
        Some(_) => {
            return Err(TusError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                "Upload-Defer-Length must be 1",
            ))
        }
    };
    if length.is_some() == deferred {
        return Err(TusError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            "send exactly one of Upload-Length and Upload-Defer-Length: 1",
        ));
    }
    if length.is_some_and(|l| i64_of(l) > max_bytes(&api)) {
        return Err(too_large(&api));
    }
    let raw_meta = match h.get("upload-metadata") {
        Some(v) => {
            hdr::parse_metadata(v.as_bytes()).map_err(bad_header)?;
            v.to_str().unwrap_or("").to_owned()
        }
        None => String::new(),
    };
    let meta = hdr::parse_metadata(raw_meta.as_bytes()).map_err(bad_header)?;
    let name = hdr::metadata_str(&meta, "filename")
        .or_else(|| hdr::metadata_str(&meta, "name"))
        .unwrap_or("upload");
    let name = check_name(name).map_err(TusError::from)?;
    let policy =
        check_policy(hdr::metadata_str(&meta, "playback_policy")).map_err(TusError::from)?;
    // creation-with-upload: a body of the right type is the first chunk.
    let with_body = match h.get(CONTENT_TYPE) {
        Some(ct) if hdr::is_offset_octet_stream(ct.as_bytes()) => true,
        Some(_) if h.get(CONTENT_LENGTH).is_some_and(|l| l.as_bytes() != b"0") => {
            return Err(TusError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "an upload body must be application/offset+octet-stream",
            ))
        }
        _ => false,
    };
    let checksum = parse_checksum(h)?;
    let declared = header_u63(h, CONTENT_LENGTH.as_str()).ok().flatten();
    if with_body {
        let limit = length.map_or(max_bytes(&api), i64_of);
        if declared.is_some_and(|d| i64_of(d) > limit) {
            return Err(too_large(&api));
        }
    }
    let n = api
        .new_upload(&key.org_id, &name, length, policy, &raw_meta)
        .await?;
    let location = api.upload_url(&n.upload.id);
    let mut upload = n.upload;
    let status = if with_body {
        let lock = api.vod().lock_for(&upload.id);
        let guard = lock.lock_owned().await;
        let out = spawn_append(
            api.clone(),
            upload.clone(),
            guard,
            Append {
                length_header: None,
                checksum,
                complete: None,
            },
            body,
        )
        .await?;
        upload.upload_offset = out.offset;
        out.status
    } else {
        StatusCode::CREATED
    };
    let mut res = if status.is_success() {
        StatusCode::CREATED.into_response()
    } else {
        TusError::new(
            status,
            "upload_too_large",
            "the body exceeded the upload's length",
        )
        .error
        .into_response()
    };
    let hm = res.headers_mut();
    tus_common(hm);
    set(hm, "location", &location);
    set(hm, "clutchcall-asset-id", &n.asset.id);
    set(hm, "upload-offset", &upload.upload_offset.to_string());
    set(
        hm,
        "upload-expires",
        &hdr::http_date(upload.expires_at / 1000),
    );
    Ok(res)
}

fn parse_checksum(h: &HeaderMap) -> TusResult<Option<[u8; 32]>> {
    match h.get("upload-checksum") {
        None => Ok(None),
        Some(v) => hdr::parse_checksum(v.as_bytes())
            .map(Some)
            .map_err(bad_header),
    }
}

// ---- PATCH ----

async fn patch(
    State(api): State<Api>,
    crate::http::P(id): crate::http::P<String>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> TusResult<Response> {
    let q = query(q)?;
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    check_version(h)?;
    let u = authorized(&api, &id, h, &q).await?;
    let ct_ok = h
        .get(CONTENT_TYPE)
        .is_some_and(|ct| hdr::is_offset_octet_stream(ct.as_bytes()));
    if !ct_ok {
        return Err(TusError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "PATCH bodies must be Content-Type: application/offset+octet-stream",
        )
        .at(u.upload_offset));
    }
    let offset = header_u63(h, "upload-offset")?.ok_or_else(|| {
        TusError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            "Upload-Offset is required",
        )
        .at(u.upload_offset)
    })?;
    let length_header = header_u63(h, "upload-length")?;
    let checksum = parse_checksum(h)?;
    let complete = match h.get("upload-complete") {
        None => None,
        Some(v) => Some(hdr::parse_sf_bool("Upload-Complete", v.as_bytes()).map_err(bad_header)?),
    };
    let declared = header_u63(h, CONTENT_LENGTH.as_str())?;
    check_expiry(&u)?;
    if let (Some(have), Some(l)) = (u.upload_length, length_header) {
        if have != i64_of(l) {
            return Err(TusError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                "Upload-Length differs from the upload's length",
            )
            .at(u.upload_offset));
        }
    }
    if length_header.is_some_and(|l| i64_of(l) > max_bytes(&api)) {
        return Err(too_large(&api).at(u.upload_offset));
    }
    // Wait for a PATCH that is still running (typically one whose client just vanished).
    let lock = api.vod().lock_for(&u.id);
    let guard = tokio::time::timeout(LOCK_WAIT, lock.lock_owned())
        .await
        .map_err(|_| {
            TusError::new(
                StatusCode::LOCKED,
                "upload_locked",
                "another request is writing to this upload",
            )
            .at(u.upload_offset)
        })?;
    // Fresh state under the lock.
    let u = db::get_upload(&api.inner.db, &u.id)
        .await?
        .ok_or_else(not_found)?;
    if u.completed_at.is_some() || i64_of(offset) != u.upload_offset {
        let code = if u.completed_at.is_some() && i64_of(offset) == u.upload_offset {
            "upload_completed"
        } else {
            "upload_offset_mismatch"
        };
        if code == "upload_completed" && declared.unwrap_or(0) == 0 {
            // An empty PATCH at the final offset: nothing to do (a retried last request).
            let mut res = StatusCode::NO_CONTENT.into_response();
            tus_common(res.headers_mut());
            upload_headers(res.headers_mut(), &u);
            return Ok(res);
        }
        return Err(TusError::new(
            StatusCode::CONFLICT,
            code,
            format!("the upload is at offset {}", u.upload_offset),
        )
        .at(u.upload_offset));
    }
    let limit = u
        .upload_length
        .or(length_header.map(i64_of))
        .unwrap_or(max_bytes(&api));
    if declared.is_some_and(|d| i64_of(d) > limit - u.upload_offset) {
        return Err(too_large(&api).at(u.upload_offset));
    }
    let out = spawn_append(
        api.clone(),
        u.clone(),
        guard,
        Append {
            length_header: length_header.map(i64_of),
            checksum,
            complete,
        },
        body,
    )
    .await?;
    if out.status == StatusCode::PAYLOAD_TOO_LARGE {
        return Err(too_large(&api).at(out.offset));
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    let hm = res.headers_mut();
    tus_common(hm);
    set(hm, "upload-offset", &out.offset.to_string());
    if out.completed {
        set(hm, "upload-complete", "?1");
    } else {
        set(hm, "upload-expires", &hdr::http_date(u.expires_at / 1000));
    }
    Ok(res)
}

struct Append {
    length_header: Option<i64>,
    checksum: Option<[u8; 32]>,
    complete: Option<bool>,
}

struct Appended {
    offset: i64,
    status: StatusCode,
    completed: bool,
}

/// Run the append in its own task: it finishes (and commits what arrived) even when the
/// client's connection, and with it this request's future, goes away.
async fn spawn_append(
    api: Api,
    u: UploadRow,
    guard: tokio::sync::OwnedMutexGuard<()>,
    a: Append,
    body: RawBody,
) -> TusResult<Appended> {
    let task = tokio::spawn(async move {
        let r = append(&api, &u, a, body).await;
        drop(guard);
        r
    });
    match task.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "upload append task failed");
            Err(TusError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ))
        }
    }
}

fn io_error(context: &str, e: std::io::Error) -> TusError {
    tracing::error!(error = %e, "{context}");
    TusError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

/// Frames queued between the request and its writer thread (hyper's frames are up to a few
/// hundred KiB). Short, so that frames are written while still in cache and the server's
/// read buffers are reused soon.
const WRITE_QUEUE_FRAMES: usize = 32;

fn staging_error(upload: &str, from: i64, e: vod::staging::StagingError) -> TusError {
    match e {
        vod::staging::StagingError::Short { on_disk, offset } => {
            tracing::error!(
                upload,
                on_disk,
                offset,
                "staging file shorter than the committed offset"
            );
            TusError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "upload bytes lost",
            )
            .at(from)
        }
        vod::staging::StagingError::Io { context, source } => io_error(context, source).at(from),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> TusResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "upload writer thread failed");
        TusError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })
}

async fn append(api: &Api, u: &UploadRow, a: Append, body: RawBody) -> TusResult<Appended> {
    let from = u.upload_offset;
    let length = u.upload_length.or(a.length_header);
    let limit = length.unwrap_or(max_bytes(api));
    let room = u64::try_from(limit.saturating_sub(from)).unwrap_or(0);
    let path = api.vod().staging_file(&u.id);
    let from_u = u64::try_from(from).unwrap_or(0);
    // The body's frames go, uncopied, to one blocking writer thread (gathered writes,
    // writeback while the body still arrives; see `vod::staging`).
    let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(WRITE_QUEUE_FRAMES);
    let writer = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || vod::staging::append(&path, from_u, rx))
    };
    let mut hasher = a.checksum.map(|_| Sha256::new());
    let mut sent = 0u64;
    let mut overflow = false;
    let mut cut = false;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(_) => {
                cut = true;
                break;
            }
        };
        let take = usize::try_from((room - sent).min(chunk.len() as u64)).unwrap_or(0);
        let whole = take == chunk.len();
        let part = if whole { chunk } else { chunk.slice(..take) };
        if let Some(hs) = hasher.as_mut() {
            hs.update(&part);
        }
        sent += take as u64;
        // A send fails only when the writer stopped on an error (reported by its join).
        if !part.is_empty() && tx.send(part).await.is_err() {
            break;
        }
        if !whole {
            overflow = true;
            break;
        }
    }
    drop(tx);
    let appender = writer
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "upload writer thread failed");
            TusError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        })?
        .map_err(|e| staging_error(&u.id, from, e))?;
    if let (Some(want), Some(hs)) = (a.checksum, hasher) {
        let got: [u8; 32] = hs.finalize().into();
        if cut || overflow || got != want {
            blocking(move || appender.discard())
                .await?
                .map_err(|e| staging_error(&u.id, from, e))?;
            let status = StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST);
            return Err(TusError::new(
                status,
                "checksum_mismatch",
                "the body does not match Upload-Checksum",
            )
            .at(from));
        }
    }
    // The one durability point of this PATCH: fdatasync before the offset moves.
    let written = blocking(move || appender.commit())
        .await?
        .map_err(|e| staging_error(&u.id, from, e))?;
    let to = from.saturating_add(i64::try_from(written).unwrap_or(0));
    if written > 0 || (a.length_header.is_some() && u.upload_length.is_none()) {
        let moved =
            db::advance_upload(&api.inner.db, &u.id, from, to, a.length_header, now_ms()).await?;
        if !moved {
            return Err(TusError::new(
                StatusCode::CONFLICT,
                "upload_offset_mismatch",
                "the upload moved concurrently",
            ));
        }
        metrics::counter!("clutchcall_vod_upload_bytes_total").increment(written);
    }
    let whole = match (length, a.complete) {
        (Some(l), _) => to == l,
        (None, Some(c)) => c && !cut,
        (None, None) => {
            !cut && to > 0
                && vod::segment::whole_iso_bmff(&path, u64::try_from(to).unwrap_or(0)).await
        }
    };
    let mut completed = false;
    if whole {
        let job = secret::new_id(JOB)?;
        if db::complete_upload(&api.inner.db, u, to, &job, now_ms()).await? {
            completed = true;
            api.vod().jobs.notify_one();
            metrics::counter!("clutchcall_vod_uploads_completed_total").increment(1);
            tracing::info!(upload = %u.id, asset = %u.asset_id, bytes = to, "upload complete; packaging queued");
        }
    }
    Ok(Appended {
        offset: to,
        status: if overflow {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::NO_CONTENT
        },
        completed,
    })
}
