//! The OpenAPI 3.1 document served at `/openapi.json`, written by hand next to the handlers.

use serde_json::{json, Value};

fn err(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok(desc: &str, schema: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn body(schema: &str, required: bool) -> Value {
    json!({ "required": required, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn param(name: &str, desc: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": desc, "schema": { "type": "string" } })
}

fn org() -> Value {
    param(
        "org",
        "Org id, `org_…`. Another org's id answers 404 like a missing one.",
    )
}

fn page_params() -> Vec<Value> {
    vec![
        json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } }),
        json!({ "name": "cursor", "in": "query", "schema": { "type": "string" }, "description": "`nextCursor` of the previous page" }),
    ]
}

/// Operation with the errors every authenticated endpoint can return.
fn op(summary: &str, params: Vec<Value>, request: Option<Value>, responses: Value) -> Value {
    let mut r = responses;
    if let Some(m) = r.as_object_mut() {
        m.insert(
            "401".into(),
            err("`unauthorized`: missing, invalid or revoked API key"),
        );
        m.insert(
            "404".into(),
            err("`not_found`: org or resource missing (or another org's)"),
        );
        m.insert("500".into(), err("`internal`"));
    }
    let mut o = json!({ "summary": summary, "parameters": params, "responses": r, "security": [{ "apiKey": [] }] });
    if let (Some(req), Some(m)) = (request, o.as_object_mut()) {
        m.insert("requestBody".into(), req);
    }
    o
}

fn body_errors(mut responses: Value) -> Value {
    if let Some(m) = responses.as_object_mut() {
        m.insert(
            "400".into(),
            err("`malformed_json` (body is not JSON) or `invalid_parameter`"),
        );
        m.insert("413".into(), err("`payload_too_large`"));
        m.insert(
            "415".into(),
            err("`unsupported_media_type`: send application/json"),
        );
        m.insert(
            "422".into(),
            err("`invalid_body` (wrong types, missing fields) or `validation_failed`"),
        );
    }
    responses
}

pub(crate) fn document() -> Value {
    let mut doc = base_document();
    crate::assets::openapi::extend(&mut doc);
    doc
}

fn base_document() -> Value {
    let id = || param("id", "Live input id `li_…` (its `lv_…` id is accepted too)");
    json!({
      "openapi": "3.1.0",
      "info": {
        "title": "ClutchCall Streams control plane",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Errors are `{ \"error\": { \"code\", \"message\" } }`; switch on `code`. Resource objects use snake_case fields; request bodies and response envelopes use camelCase."
      },
      "components": {
        "securitySchemes": {
          "apiKey": { "type": "http", "scheme": "bearer", "description": "API key `ak_….…` (CLUTCHCALL_CREDENTIALS)" },
          "playbackToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "Playback JWT; or `?token=`" }
        },
        "schemas": {
          "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
            "code": { "type": "string", "enum": ["unauthorized", "not_found", "malformed_json", "invalid_body", "invalid_parameter", "validation_failed", "payload_too_large", "unsupported_media_type", "method_not_allowed", "conflict", "signing_key_active", "token_missing", "token_invalid", "token_expired", "internal"] },
            "message": { "type": "string" } } } } },
          "Org": { "type": "object", "properties": { "org": { "type": "object", "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "created_at": { "type": "string", "format": "date-time" } } } } },
          "InputStatus": { "type": "object", "properties": {
            "state": { "type": "string", "enum": ["idle", "live"] },
            "since": { "type": ["string", "null"], "format": "date-time" },
            "ingest": { "type": ["string", "null"], "enum": ["rtmp", "fmp4", null] },
            "publishers": { "type": "integer" },
            "renditions": { "type": "array", "items": { "type": "string" }, "description": "RTMP ingest: track names in the catalog (while the broadcast exists)" },
            "transcoder_error": { "type": ["string", "null"], "description": "RTMP ingest: the last ABR transcoder failure, null once it produces again" },
            "transcoder_starts": { "type": "integer", "description": "RTMP ingest: how many times the transcoder was (re)started" } } },
          "LiveInput": { "type": "object", "properties": {
            "id": { "type": "string", "description": "li_…" },
            "external_input_id": { "type": "string", "description": "lv_…: playback id and namespace field" },
            "org_id": { "type": "string" }, "name": { "type": "string" },
            "ingest": { "type": "string", "enum": ["rtmp", "fmp4"] },
            "namespace": { "type": "string", "description": "stream/<org>/<lv_…>" },
            "status": { "$ref": "#/components/schemas/InputStatus" },
            "stream_key_rotated_at": { "type": "string", "format": "date-time" },
            "created_at": { "type": "string", "format": "date-time" },
            "updated_at": { "type": "string", "format": "date-time" } } },
          "CreateLiveInput": { "type": "object", "required": ["name", "ingest"], "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 200 }, "ingest": { "type": "string", "enum": ["rtmp", "fmp4"] } } },
          "UpdateLiveInput": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 200 } } },
          "InputWithKey": { "type": "object", "properties": { "input": { "$ref": "#/components/schemas/LiveInput" }, "streamKey": { "type": "string", "description": "sk_…; returned only on create and rotation" } } },
          "InputEnvelope": { "type": "object", "properties": { "input": { "$ref": "#/components/schemas/LiveInput" } } },
          "InputPage": { "type": "object", "properties": { "data": { "type": "array", "items": { "$ref": "#/components/schemas/LiveInput" } }, "nextCursor": { "type": ["string", "null"] } } },
          "MintToken": { "type": "object", "properties": { "ttlSeconds": { "type": "integer", "description": "within the configured bounds (default 60 … 86400; default 3600)" } } },
          "SignedUrl": { "type": "object", "properties": {
            "url": { "type": "string", "description": "<publicBaseUrl>/watch/<id>?token=<jwt>" },
            "token": { "type": "string" }, "expiresAt": { "type": "string", "format": "date-time" },
            "playbackId": { "type": "string" }, "kid": { "type": "string" } } },
          "ApiKey": { "type": "object", "properties": { "id": { "type": "string" }, "org_id": { "type": "string" }, "name": { "type": "string" },
            "created_at": { "type": "string", "format": "date-time" }, "revoked_at": { "type": ["string", "null"], "format": "date-time" } } },
          "CreateApiKey": { "type": "object", "properties": { "name": { "type": "string" } } },
          "ApiKeyWithSecret": { "type": "object", "properties": { "apiKey": { "$ref": "#/components/schemas/ApiKey" }, "secret": { "type": "string", "description": "shown once" } } },
          "ApiKeyPage": { "type": "object", "properties": { "data": { "type": "array", "items": { "$ref": "#/components/schemas/ApiKey" } }, "nextCursor": { "type": ["string", "null"] } } },
          "SigningKey": { "type": "object", "properties": { "kid": { "type": "string" }, "org_id": { "type": "string" }, "alg": { "type": "string", "enum": ["ES256", "EdDSA"] },
            "active": { "type": "boolean" }, "created_at": { "type": "string" }, "retired_at": { "type": ["string", "null"] }, "verify_until": { "type": ["string", "null"] }, "public_jwk": { "type": "object" } } },
          "RotateSigningKey": { "type": "object", "properties": { "alg": { "type": "string", "enum": ["ES256", "EdDSA"] } } },
          "SigningKeyEnvelope": { "type": "object", "properties": { "signingKey": { "$ref": "#/components/schemas/SigningKey" } } },
          "SigningKeyPage": { "type": "object", "properties": { "data": { "type": "array", "items": { "$ref": "#/components/schemas/SigningKey" } }, "nextCursor": { "type": "null" } } },
          "PlaybackInfo": { "type": "object", "properties": {
            "playbackId": { "type": "string" }, "kind": { "type": "string", "enum": ["live", "vod"] }, "orgId": { "type": "string" },
            "namespace": { "type": "string", "description": "live only" }, "catalogTrack": { "type": "string", "description": "live only: .catalog" },
            "relayUrl": { "type": ["string", "null"] }, "relayUrls": { "type": "array", "items": { "type": "string" } },
            "certificateSha256": { "type": ["string", "null"], "description": "live only: relay certificate hash for serverCertificateHashes" },
            "catalogUrl": { "type": "string", "description": "vod only" },
            "token": { "type": "string" }, "expiresAt": { "type": "string", "format": "date-time" } } },
          "Jwks": { "type": "object", "properties": { "keys": { "type": "array", "items": { "type": "object" } } } }
        }
      },
      "paths": {
        "/v1/orgs/{org}": { "get": op("Get the org", vec![org()], None, json!({ "200": ok("the org", "Org") })) },
        "/v1/orgs/{org}/api_keys": {
          "get": op("List API keys", [vec![org()], page_params()].concat(), None, json!({ "200": ok("a page", "ApiKeyPage"), "400": err("`invalid_parameter`") })),
          "post": op("Create an API key (secret shown once)", vec![org()], Some(body("CreateApiKey", false)), body_errors(json!({ "201": ok("created", "ApiKeyWithSecret") })))
        },
        "/v1/orgs/{org}/api_keys/{id}": {
          "delete": op("Revoke an API key", vec![org(), param("id", "ak_…")], None, json!({ "204": { "description": "revoked" } }))
        },
        "/v1/orgs/{org}/live_inputs": {
          "get": op("List live inputs", [vec![org()], page_params()].concat(), None, json!({ "200": ok("a page", "InputPage"), "400": err("`invalid_parameter`") })),
          "post": op("Create a live input; returns its stream key once", vec![org()], Some(body("CreateLiveInput", true)), body_errors(json!({ "201": ok("created", "InputWithKey") })))
        },
        "/v1/orgs/{org}/live_inputs/{id}": {
          "get": op("Get a live input", vec![org(), id()], None, json!({ "200": ok("the input", "InputEnvelope") })),
          "patch": op("Rename a live input", vec![org(), id()], Some(body("UpdateLiveInput", true)), body_errors(json!({ "200": ok("updated", "InputEnvelope") }))),
          "delete": op("Delete a live input (its publishers and viewers are disconnected)", vec![org(), id()], None, json!({ "204": { "description": "deleted" } }))
        },
        "/v1/orgs/{org}/live_inputs/{id}/stream_key": {
          "post": op("Rotate the stream key: the old key stops working and its publishers are disconnected", vec![org(), id()], None, json!({ "200": ok("new key", "InputWithKey") }))
        },
        "/v1/orgs/{org}/live_inputs/{id}/playback_tokens": {
          "post": op("Mint a signed playback URL (signedPlaybackUrl)", vec![org(), id()], Some(body("MintToken", false)), body_errors(json!({ "201": ok("minted", "SignedUrl") })))
        },
        "/v1/orgs/{org}/signing_keys": {
          "get": op("List signing keys that still verify", vec![org()], None, json!({ "200": ok("keys", "SigningKeyPage") })),
          "post": op("Create a new active signing key (same as rotate)", vec![org()], Some(body("RotateSigningKey", false)), body_errors(json!({ "201": ok("created", "SigningKeyEnvelope") })))
        },
        "/v1/orgs/{org}/signing_keys/rotate": {
          "post": op("Rotate the signing key; the previous key verifies until its tokens expire", vec![org()], Some(body("RotateSigningKey", false)), body_errors(json!({ "201": ok("created", "SigningKeyEnvelope") })))
        },
        "/v1/orgs/{org}/signing_keys/{kid}": {
          "delete": op("Delete a retired signing key: its tokens stop verifying at once", vec![org(), param("kid", "kid_…")], None,
             json!({ "204": { "description": "deleted" }, "409": err("`signing_key_active`: rotate first") }))
        },
        "/v1/playback/{id}": {
          "get": {
            "summary": "How to play an id (viewer call: needs only a playback token)",
            "parameters": [param("id", "lv_… or pb_…"), { "name": "token", "in": "query", "schema": { "type": "string" }, "description": "playback JWT (or Authorization: Bearer)" }],
            "security": [{ "playbackToken": [] }],
            "responses": { "200": ok("playback info", "PlaybackInfo"), "401": err("`token_missing`, `token_invalid`, `token_expired`"), "404": err("`not_found`") }
          }
        },
        "/.well-known/jwks.json": { "get": { "summary": "Public keys of playback tokens (all orgs)", "responses": { "200": ok("JWKS", "Jwks") } } },
        "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1" } } } },
        "/watch/{id}": { "get": { "summary": "Player page for a signed URL", "parameters": [param("id", "lv_… or pb_…")],
          "responses": { "200": { "description": "HTML", "content": { "text/html": {} } }, "404": err("`not_found`") } } }
      }
    })
}
