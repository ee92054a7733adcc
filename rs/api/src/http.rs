//! REST handlers, extractors and the error shape `{ "error": { "code", "message" } }`.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Query, RawPathParams,
    Request, State,
};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::secret::prefix;
use crate::store::{ApiKeyRow, Cursor, InputRow, SigningKeyRow};
use crate::tokens::{SigningAlg, TokenError};
use crate::{rfc3339, Api, Error, Ingest, SignedUrl};

/// An HTTP error with a stable machine code.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }

    fn validation(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound => ApiError::not_found("resource"),
            Error::Invalid(m) => ApiError::validation(m),
            Error::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            other => {
                tracing::error!(error = %other, "internal error serving request");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------------------
// Extractors

/// A caller authenticated by API key and allowed on the `{org}` of the path.
pub(crate) struct OrgKey {
    pub(crate) org: String,
}

impl FromRequestParts<Api> for OrgKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing API key"))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <api key>`"))?;
        let key = api
            .authenticate(secret)
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid or revoked API key"))?;
        let params = RawPathParams::from_request_parts(parts, api)
            .await
            .map_err(|_| ApiError::invalid_parameter("bad path"))?;
        let org = params
            .iter()
            .find(|(k, _)| *k == "org")
            .map(|(_, v)| v.to_owned());
        match org {
            // Another org's id answers exactly like a missing one.
            Some(o) if o == key.org_id => Ok(OrgKey { org: o }),
            _ => Err(ApiError::not_found("org")),
        }
    }
}

/// A JSON body with precise rejections: 415 (`unsupported_media_type`), 413
/// (`payload_too_large`), 400 (`malformed_json`), 422 (`invalid_body`).
pub(crate) struct Body<T>(pub(crate) Option<T>);

impl<T: DeserializeOwned> FromRequest<Api> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send application/json",
                ));
            }
        }
        let bytes = Bytes::from_request(req, api)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "request body too large",
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
                        "could not read request body",
                    )
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(None));
        }
        match serde_json::from_slice::<T>(&bytes) {
            Ok(v) => Ok(Body(Some(v))),
            Err(e) => Err(match e.classify() {
                serde_json::error::Category::Data => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    e.to_string(),
                ),
                _ => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()),
            }),
        }
    }
}

impl<T> Body<T> {
    pub(crate) fn required(self) -> ApiResult<T> {
        self.0.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "a JSON body is required",
            )
        })
    }
}

impl<T: Default> Body<T> {
    fn or_default(self) -> T {
        self.0.unwrap_or_default()
    }
}

/// Path parameters; a segment that cannot be decoded (invalid UTF-8) names nothing: 404.
pub(crate) struct P<T>(pub(crate) T);

impl<T: DeserializeOwned + Send> FromRequestParts<Api> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, api).await {
            Ok(Path(v)) => Ok(P(v)),
            Err(_) => Err(ApiError::not_found("resource")),
        }
    }
}

pub(crate) struct Page {
    pub(crate) limit: i64,
    pub(crate) after: Option<Cursor>,
}

pub(crate) fn page(
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Page> {
    let Query(q) = q.map_err(|_| ApiError::invalid_parameter("malformed query string"))?;
    let limit = match q.get("limit") {
        None => 20,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_parameter(
                    "limit must be an integer from 1 to 100",
                ))
            }
        },
    };
    let after = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            Some(Cursor::decode(c).ok_or_else(|| ApiError::invalid_parameter("bad cursor"))?)
        }
    };
    Ok(Page { limit, after })
}

/// Fetch `limit + 1` rows to know whether another page exists.
pub(crate) fn paginate<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> Cursor,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(20);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| cursor_of(r).encode());
        (rows, next)
    } else {
        (rows, None)
    }
}

pub(crate) fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::validation("name must be 1 to 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Views

fn input_view(api: &Api, i: &InputRow) -> Value {
    json!({
        "id": i.id,
        "external_input_id": i.external_input_id,
        "org_id": i.org_id,
        "name": i.name,
        "ingest": i.ingest,
        "namespace": format!("stream/{}/{}", i.org_id, i.external_input_id),
        "status": api.input_status(&i.external_input_id),
        "stream_key_rotated_at": rfc3339(i.stream_key_rotated_at),
        "created_at": rfc3339(i.created_at),
        "updated_at": rfc3339(i.updated_at),
    })
}

fn api_key_view(k: &ApiKeyRow) -> Value {
    json!({
        "id": k.id,
        "org_id": k.org_id,
        "name": k.name,
        "created_at": rfc3339(k.created_at),
        "revoked_at": k.revoked_at.map(rfc3339),
    })
}

fn signing_key_view(k: &SigningKeyRow) -> Value {
    let jwk = crate::tokens::VerifyingKey::from_row(k)
        .map(|v| v.jwk())
        .unwrap_or(Value::Null);
    json!({
        "kid": k.kid,
        "org_id": k.org_id,
        "alg": k.alg,
        "active": k.retired_at.is_none(),
        "created_at": rfc3339(k.created_at),
        "retired_at": k.retired_at.map(rfc3339),
        "verify_until": k.verify_until.map(rfc3339),
        "public_jwk": jwk,
    })
}

pub(crate) fn signed_view(s: &SignedUrl) -> Value {
    json!({
        "url": s.url,
        "token": s.token,
        "expiresAt": rfc3339(s.expires_at_ms),
        "playbackId": s.playback_id,
        "kid": s.kid,
    })
}

// ---------------------------------------------------------------------------------------------
// Router

pub(crate) fn router(api: Api) -> Router {
    let max_body = api.config().max_body_bytes;
    Router::new()
        .route("/v1/orgs/{org}", get(get_org))
        .route(
            "/v1/orgs/{org}/api_keys",
            get(list_api_keys).post(create_api_key),
        )
        .route("/v1/orgs/{org}/api_keys/{id}", delete(revoke_api_key))
        .route(
            "/v1/orgs/{org}/live_inputs",
            get(list_inputs).post(create_input),
        )
        .route(
            "/v1/orgs/{org}/live_inputs/{id}",
            get(get_input).patch(update_input).delete(delete_input),
        )
        .route(
            "/v1/orgs/{org}/live_inputs/{id}/stream_key",
            post(rotate_stream_key),
        )
        .route(
            "/v1/orgs/{org}/live_inputs/{id}/playback_tokens",
            post(mint_input_token),
        )
        .route(
            "/v1/orgs/{org}/signing_keys",
            get(list_signing_keys).post(rotate_signing_key),
        )
        .route(
            "/v1/orgs/{org}/signing_keys/rotate",
            post(rotate_signing_key),
        )
        .route(
            "/v1/orgs/{org}/signing_keys/{kid}",
            delete(delete_signing_key),
        )
        .route("/v1/playback/{id}", get(playback_info))
        .route("/openapi.json", get(openapi))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/watch/{id}", get(watch_page))
        .route("/", get(crate::web::demo_page))
        .route("/sdk/streams.js", get(crate::web::sdk_bundle))
        .merge(crate::assets::routes())
        .route_layer(middleware::from_fn(track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(api)
}

async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "other".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("clutchcall_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("clutchcall_http_request_duration_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

async fn not_found() -> ApiError {
    metrics::counter!("clutchcall_http_requests_total", "route" => "unmatched", "method" => "any", "status" => "404").increment(1);
    ApiError::not_found("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this path",
    )
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

async fn jwks(State(api): State<Api>) -> ApiResult<Response> {
    let doc = api.jwks().await?;
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(res)
}

async fn watch_page(State(api): State<Api>, P(id): P<String>) -> ApiResult<Html<String>> {
    let plausible = (id.starts_with(prefix::LIVE_PLAYBACK) || id.starts_with(prefix::VOD_PLAYBACK))
        && crate::secret::plausible_id(&id);
    if !plausible {
        return Err(ApiError::not_found("playback id"));
    }
    let (relay_urls, _) = api.relay_info();
    Ok(Html(crate::player::page(
        &id,
        relay_urls.first().map(String::as_str),
    )))
}

// ---- orgs ----

async fn get_org(State(api): State<Api>, key: OrgKey) -> ApiResult<Json<Value>> {
    let org = api
        .store()
        .get_org(&key.org)
        .await?
        .ok_or_else(|| ApiError::not_found("org"))?;
    Ok(Json(
        json!({ "org": { "id": org.id, "name": org.name, "created_at": rfc3339(org.created_at) } }),
    ))
}

// ---- API keys ----

#[derive(Deserialize, Default)]
struct CreateApiKey {
    name: Option<String>,
}

async fn create_api_key(
    State(api): State<Api>,
    key: OrgKey,
    body: Body<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req = body.or_default();
    let name = check_name(req.name.as_deref().unwrap_or("api key"))?;
    let (row, secret) = api.create_api_key(&key.org, &name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "apiKey": api_key_view(&row), "secret": secret })),
    ))
}

async fn list_api_keys(
    State(api): State<Api>,
    key: OrgKey,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let p = page(q)?;
    let rows = api
        .list_api_keys(&key.org, p.after.as_ref(), p.limit + 1)
        .await?;
    let (rows, next) = paginate(rows, p.limit, |r| Cursor {
        created_at: r.created_at,
        id: r.id.clone(),
    });
    Ok(Json(
        json!({ "data": rows.iter().map(api_key_view).collect::<Vec<_>>(), "nextCursor": next }),
    ))
}

async fn revoke_api_key(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
) -> ApiResult<StatusCode> {
    api.revoke_api_key(&key.org, &id)
        .await
        .map_err(|e| match e {
            Error::NotFound => ApiError::not_found("API key"),
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- live inputs ----

#[derive(Deserialize)]
struct CreateInput {
    name: String,
    ingest: String,
}

async fn create_input(
    State(api): State<Api>,
    key: OrgKey,
    body: Body<CreateInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req = body.required()?;
    let name = check_name(&req.name)?;
    let ingest = Ingest::parse(&req.ingest)
        .ok_or_else(|| ApiError::validation("ingest must be \"rtmp\" or \"fmp4\""))?;
    let (row, stream_key) = api.create_input(&key.org, &name, ingest).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "input": input_view(&api, &row), "streamKey": stream_key })),
    ))
}

fn input_missing(e: Error) -> ApiError {
    match e {
        Error::NotFound => ApiError::not_found("live input"),
        e => e.into(),
    }
}

async fn get_input(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
) -> ApiResult<Json<Value>> {
    let row = api.get_input(&key.org, &id).await.map_err(input_missing)?;
    Ok(Json(json!({ "input": input_view(&api, &row) })))
}

async fn list_inputs(
    State(api): State<Api>,
    key: OrgKey,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let p = page(q)?;
    let rows = api
        .list_inputs(&key.org, p.after.as_ref(), p.limit + 1)
        .await?;
    let (rows, next) = paginate(rows, p.limit, |r| Cursor {
        created_at: r.created_at,
        id: r.id.clone(),
    });
    let data: Vec<_> = rows.iter().map(|r| input_view(&api, r)).collect();
    Ok(Json(json!({ "data": data, "nextCursor": next })))
}

#[derive(Deserialize)]
struct UpdateInput {
    name: String,
}

async fn update_input(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
    body: Body<UpdateInput>,
) -> ApiResult<Json<Value>> {
    let req = body.required()?;
    let name = check_name(&req.name)?;
    let row = api
        .rename_input(&key.org, &id, &name)
        .await
        .map_err(input_missing)?;
    Ok(Json(json!({ "input": input_view(&api, &row) })))
}

async fn delete_input(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
) -> ApiResult<StatusCode> {
    api.delete_input(&key.org, &id)
        .await
        .map_err(input_missing)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_stream_key(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (row, stream_key) = api
        .rotate_stream_key(&key.org, &id)
        .await
        .map_err(input_missing)?;
    Ok(Json(
        json!({ "input": input_view(&api, &row), "streamKey": stream_key }),
    ))
}

#[derive(Deserialize, Default)]
struct MintToken {
    #[serde(rename = "ttlSeconds", alias = "ttl_seconds")]
    ttl_seconds: Option<u64>,
}

async fn mint_input_token(
    State(api): State<Api>,
    key: OrgKey,
    P((_, id)): P<(String, String)>,
    body: Body<MintToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req = body.or_default();
    let ttl = api.check_ttl(req.ttl_seconds)?;
    let row = api.get_input(&key.org, &id).await.map_err(input_missing)?;
    let signed = api
        .mint_playback(&key.org, &row.external_input_id, Some(ttl))
        .await?;
    Ok((StatusCode::CREATED, Json(signed_view(&signed))))
}

// ---- signing keys ----

#[derive(Deserialize, Default)]
struct RotateSigningKey {
    alg: Option<String>,
}

async fn rotate_signing_key(
    State(api): State<Api>,
    key: OrgKey,
    body: Body<RotateSigningKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req = body.or_default();
    let alg = match req.alg.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<SigningAlg>().map_err(ApiError::validation)?),
    };
    let new = api.rotate_signing_key(&key.org, alg).await?;
    let row = api
        .list_signing_keys(&key.org)
        .await?
        .into_iter()
        .find(|r| r.kid == new.kid)
        .ok_or_else(|| ApiError::from(Error::Crypto("rotated key vanished".into())))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "signingKey": signing_key_view(&row) })),
    ))
}

async fn list_signing_keys(State(api): State<Api>, key: OrgKey) -> ApiResult<Json<Value>> {
    let rows = api.list_signing_keys(&key.org).await?;
    Ok(Json(
        json!({ "data": rows.iter().map(signing_key_view).collect::<Vec<_>>(), "nextCursor": null }),
    ))
}

async fn delete_signing_key(
    State(api): State<Api>,
    key: OrgKey,
    P((_, kid)): P<(String, String)>,
) -> ApiResult<StatusCode> {
    api.delete_signing_key(&key.org, &kid)
        .await
        .map_err(|e| match e {
            Error::NotFound => ApiError::not_found("signing key"),
            Error::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "signing_key_active", m),
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- playback info ----

async fn playback_info(
    State(api): State<Api>,
    P(id): P<String>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|_| ApiError::invalid_parameter("malformed query string"))?;
    let live = id.starts_with(prefix::LIVE_PLAYBACK);
    if !(live || id.starts_with(prefix::VOD_PLAYBACK)) || !crate::secret::plausible_id(&id) {
        return Err(ApiError::not_found("playback id"));
    }
    let header_token = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    if !live {
        // VOD: public assets need no token (crate::assets decides).
        let token = q.get("token").cloned().or(header_token);
        return crate::assets::playback_info(&api, &id, token).await;
    }
    let token = q
        .get("token")
        .cloned()
        .or(header_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_missing",
                "a playback token is required",
            )
        })?;
    let claims = match api.verify_playback(&token, &id, None).await? {
        Ok(c) => c,
        Err(TokenError::Expired) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "playback token expired",
            ))
        }
        Err(e) => {
            tracing::debug!(reason = %e, "playback token refused");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_invalid",
                "playback token is not valid for this id",
            ));
        }
    };
    let expires_at = rfc3339(
        i64::try_from(claims.exp)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
    );
    if live {
        match api.store().get_input(&claims.org, &id).await? {
            Some(i) if i.external_input_id == id => {}
            _ => return Err(ApiError::not_found("playback id")),
        }
        let (relay_urls, cert) = api.relay_info();
        Ok(Json(json!({
            "playbackId": id,
            "kind": "live",
            "orgId": claims.org,
            "namespace": format!("stream/{}/{}", claims.org, id),
            "catalogTrack": ".catalog",
            "relayUrl": relay_urls.first(),
            "relayUrls": relay_urls,
            "certificateSha256": cert.filter(|c| !c.is_empty()),
            "token": token,
            "expiresAt": expires_at,
        })))
    } else {
        let base = api.config().public_base_url.trim_end_matches('/');
        Ok(Json(json!({
            "playbackId": id,
            "kind": "vod",
            "orgId": claims.org,
            "catalogUrl": format!("{base}/vod/{id}/catalog.json"),
            "token": token,
            "expiresAt": expires_at,
        })))
    }
}
