//! OpenAPI entries of the VOD endpoints, merged into `/openapi.json`.

use serde_json::{json, Value};

fn e(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok(desc: &str, schema: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn p(name: &str, desc: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": desc, "schema": { "type": "string" } })
}

fn h(name: &str, desc: &str) -> Value {
    json!({ "name": name, "in": "header", "description": desc, "schema": { "type": "string" } })
}

const CODES: [&str; 12] = [
    "upload_offset_mismatch",
    "upload_completed",
    "upload_locked",
    "upload_too_large",
    "upload_expired",
    "invalid_header",
    "checksum_mismatch",
    "checksum_algorithm_unsupported",
    "tus_version_unsupported",
    "asset_not_ready",
    "range_not_satisfiable",
    "storage_error",
];

pub(crate) fn extend(doc: &mut Value) {
    if let Some(list) = doc
        .pointer_mut("/components/schemas/Error/properties/error/properties/code/enum")
        .and_then(Value::as_array_mut)
    {
        list.extend(CODES.iter().map(|c| json!(c)));
    }
    let tus_auth = json!([{ "apiKey": [] }, { "uploadToken": [] }]);
    if let Some(s) = doc
        .pointer_mut("/components/securitySchemes")
        .and_then(Value::as_object_mut)
    {
        s.insert("uploadToken".into(), json!({ "type": "apiKey", "in": "query", "name": "token", "description": "One-time upload token `ut_…` (part of `uploadUrl`)" }));
    }
    if let Some(s) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        s.insert("Asset".into(), json!({ "type": "object", "properties": {
            "id": { "type": "string", "description": "as_…" }, "org_id": { "type": "string" }, "name": { "type": "string" },
            "status": { "type": "string", "enum": ["uploading", "processing", "ready", "errored"] },
            "playback_id": { "type": ["string", "null"], "description": "pb_…, assigned when ready" },
            "playback_policy": { "type": "string", "enum": ["public", "signed"] },
            "error": { "type": ["object", "null"], "properties": { "code": { "type": "string", "description": "not_media, no_media_streams, packaging_failed, packager_unavailable, storage_error, source_missing, upload_expired" }, "message": { "type": "string" } } },
            "duration_ms": { "type": ["integer", "null"] }, "size_bytes": { "type": ["integer", "null"] },
            "catalog_url": { "type": ["string", "null"] },
            "upload": { "type": ["object", "null"], "properties": { "id": { "type": "string" }, "offset": { "type": "integer" }, "length": { "type": ["integer", "null"] }, "expires_at": { "type": "string" }, "completed_at": { "type": ["string", "null"] } } },
            "created_at": { "type": "string" }, "updated_at": { "type": "string" }, "ready_at": { "type": ["string", "null"] } } }));
        s.insert("CreateUpload".into(), json!({ "type": "object", "required": ["name"], "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 200 },
            "size": { "type": "integer", "description": "bytes, when known; else the upload completes when the file is a whole MP4, or on Upload-Complete: ?1 / Upload-Length" },
            "playbackPolicy": { "type": "string", "enum": ["public", "signed"], "default": "public" } } }));
        s.insert("UploadCreated".into(), json!({ "type": "object", "properties": {
            "uploadUrl": { "type": "string", "description": "<base>/v1/uploads/up_…?token=ut_…" }, "assetId": { "type": "string" },
            "uploadId": { "type": "string" }, "expiresAt": { "type": "string" }, "asset": { "$ref": "#/components/schemas/Asset" } } }));
        s.insert("AssetEnvelope".into(), json!({ "type": "object", "properties": { "asset": { "$ref": "#/components/schemas/Asset" } } }));
        s.insert("AssetPage".into(), json!({ "type": "object", "properties": { "data": { "type": "array", "items": { "$ref": "#/components/schemas/Asset" } }, "nextCursor": { "type": ["string", "null"] } } }));
    }
    let org = p("org", "Org id `org_…`");
    let id = p("id", "Asset id `as_…` (its `pb_…` id is accepted too)");
    let up = p("id", "Upload id `up_…`");
    let tus_headers = vec![
        h("Tus-Resumable", "1.0.0 (2.0.0 accepted)"),
        json!({ "name": "token", "in": "query", "schema": { "type": "string" } }),
    ];
    let common = json!({ "401": e("`unauthorized`"), "404": e("`not_found` (unknown id, another org's upload, wrong token)"), "410": e("`upload_expired`"), "412": e("`tus_version_unsupported`") });
    let with = |extra: Value| {
        let mut r = common.clone();
        if let (Some(m), Some(x)) = (r.as_object_mut(), extra.as_object()) {
            m.extend(x.clone());
        }
        r
    };
    if let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        paths.insert("/v1/orgs/{org}/assets/uploads".into(), json!({ "post": { "summary": "Create an asset and its resumable upload (assets.createUpload)", "parameters": [org],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CreateUpload" } } } },
            "security": [{ "apiKey": [] }],
            "responses": { "201": ok("created", "UploadCreated"), "401": e("`unauthorized`"), "413": e("`upload_too_large`"), "422": e("`validation_failed`, `invalid_body`") } } }));
        paths.insert("/v1/orgs/{org}/assets".into(), json!({ "get": { "summary": "List assets", "parameters": [org], "security": [{ "apiKey": [] }], "responses": { "200": ok("a page", "AssetPage") } } }));
        paths.insert("/v1/orgs/{org}/assets/{id}".into(), json!({
            "get": { "summary": "Get an asset (status, error, playback id)", "parameters": [org, id], "security": [{ "apiKey": [] }], "responses": { "200": ok("the asset", "AssetEnvelope"), "404": e("`not_found`") } },
            "delete": { "summary": "Delete an asset, its upload and its packaged files", "parameters": [org, id], "security": [{ "apiKey": [] }], "responses": { "204": { "description": "deleted" }, "404": e("`not_found`") } } }));
        paths.insert("/v1/orgs/{org}/assets/{id}/playback_tokens".into(), json!({ "post": { "summary": "Mint a playback JWT for the asset's pb_… id (signed assets)", "parameters": [org, id], "security": [{ "apiKey": [] }],
            "responses": { "201": ok("minted", "SignedUrl"), "409": e("`asset_not_ready`") } } }));
        paths.insert("/v1/uploads".into(), json!({
            "options": { "summary": "tus discovery: Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm", "responses": { "204": { "description": "capabilities" } } },
            "post": { "summary": "tus creation (+ creation-with-upload): Upload-Length or Upload-Defer-Length: 1, Upload-Metadata (filename, playback_policy); 201 Location, Clutchcall-Asset-Id",
              "parameters": tus_headers, "security": [{ "apiKey": [] }],
              "responses": with(json!({ "201": { "description": "created" }, "400": e("`invalid_header`"), "413": e("`upload_too_large`"), "415": e("`unsupported_media_type`") })) } }));
        paths.insert("/v1/uploads/{id}".into(), json!({
            "head": { "summary": "Upload-Offset, Upload-Length (or Upload-Defer-Length), Upload-Metadata, Upload-Expires", "parameters": [up.clone(), tus_headers[0].clone(), tus_headers[1].clone()], "security": tus_auth.clone(), "responses": with(json!({ "200": { "description": "state" } })) },
            "patch": { "summary": "Append at Upload-Offset (Content-Type: application/offset+octet-stream); optional Upload-Checksum (sha256), Upload-Length, Upload-Complete",
              "parameters": [up.clone(), tus_headers[0].clone(), tus_headers[1].clone()], "security": tus_auth.clone(),
              "responses": with(json!({ "204": { "description": "appended; Upload-Offset is the new offset" }, "400": e("`invalid_header`, `checksum_algorithm_unsupported`"),
                "409": e("`upload_offset_mismatch` / `upload_completed` (Upload-Offset carries the current offset)"), "413": e("`upload_too_large`"), "415": e("`unsupported_media_type`"),
                "423": e("`upload_locked`: another PATCH is writing"), "460": e("`checksum_mismatch`") })) },
            "delete": { "summary": "tus termination", "parameters": [up.clone(), tus_headers[0].clone(), tus_headers[1].clone()], "security": tus_auth.clone(), "responses": with(json!({ "204": { "description": "terminated" } })) },
            "options": { "summary": "tus discovery", "parameters": [up], "responses": { "204": { "description": "capabilities" } } } }));
        paths.insert("/vod/{pb}/{path}".into(), json!({ "get": { "summary": "VOD files: catalog.json, <track>/init.mp4, <track>/<index>.m4s (Range, ETag, immutable caching, CORS)",
            "parameters": [p("pb", "pb_…"), p("path", "catalog.json | <track>/init.mp4 | <track>/<n>.m4s"), { "name": "token", "in": "query", "schema": { "type": "string" }, "description": "playback JWT (signed assets)" }],
            "security": [{}, { "playbackToken": [] }],
            "responses": { "200": { "description": "bytes" }, "206": { "description": "range" }, "304": { "description": "not modified" },
              "401": e("`token_missing`, `token_invalid`, `token_expired`"), "404": e("`not_found`"), "416": e("`range_not_satisfiable`") } } }));
    }
}
