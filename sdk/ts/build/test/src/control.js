/**
 * CONTROL PLANE (REST) client: `streams.liveInputs.create/get/list`, `input.rotateStreamKey()`,
 * `input.signedPlaybackUrl({ ttlSeconds })`, `streams.assets.createUpload({ name })`.
 *
 * Paths (rs/api/src/http.rs, `/openapi.json`):
 * - `POST /v1/orgs/{org}/live_inputs {name, ingest}` → `{input, streamKey}`
 * - `GET  /v1/orgs/{org}/live_inputs/{id}` (li_… or lv_…) → `{input}`
 * - `GET  /v1/orgs/{org}/live_inputs?limit&cursor` → `{data, nextCursor}`
 * - `POST /v1/orgs/{org}/live_inputs/{id}/stream_key` → `{input, streamKey}`
 * - `POST /v1/orgs/{org}/live_inputs/{id}/playback_tokens {ttlSeconds}` → `{url, token, expiresAt, playbackId}`
 * - `POST /v1/orgs/{org}/assets/uploads {name}` → `{uploadUrl, assetId}` (VOD; endpoint in progress)
 *
 * Resource objects are snake_case (`external_input_id`), envelopes camelCase. A non-2xx answer
 * with body `{ "error": { "code", "message" } }` becomes an {@link ApiError} whose `code` is that
 * code and `status` the HTTP status.
 */
import { ApiError, StreamsError } from "./errors.js";
export class LiveInput {
    api;
    id;
    external_input_id;
    org_id;
    name;
    ingest;
    namespace;
    status;
    stream_key_rotated_at;
    created_at;
    updated_at;
    constructor(api, data) {
        this.api = api;
        this.id = data.id;
        this.external_input_id = data.external_input_id;
        this.org_id = data.org_id;
        this.name = data.name;
        this.ingest = data.ingest;
        this.namespace = data.namespace ?? `stream/${data.org_id}/${data.external_input_id}`;
        if (data.status !== undefined)
            this.status = data.status;
        if (data.stream_key_rotated_at !== undefined)
            this.stream_key_rotated_at = data.stream_key_rotated_at;
        if (data.created_at !== undefined)
            this.created_at = data.created_at;
        if (data.updated_at !== undefined)
            this.updated_at = data.updated_at;
    }
    /** Issue a fresh stream key (the old one stops working, live sessions using it end). Shown once. */
    async rotateStreamKey() {
        const r = await this.api.request("POST", this.api.orgPath(`/live_inputs/${encodeURIComponent(this.id)}/stream_key`), {});
        return { input: new LiveInput(this.api, liveInputData(r.input)), streamKey: str(r.streamKey, "streamKey") };
    }
    /** Mint a playback JWT and the signed URL `<base>/watch/<lv_id>?token=<jwt>`. */
    async signedPlaybackUrl(opts = {}) {
        const body = opts.ttlSeconds !== undefined ? { ttlSeconds: opts.ttlSeconds } : {};
        const r = await this.api.request("POST", this.api.orgPath(`/live_inputs/${encodeURIComponent(this.id)}/playback_tokens`), body);
        return {
            url: str(r["url"], "url"),
            token: str(r["token"], "token"),
            expiresAt: str(r["expiresAt"], "expiresAt"),
            playbackId: str(r["playbackId"], "playbackId"),
        };
    }
}
export class LiveInputs {
    api;
    constructor(api) {
        this.api = api;
    }
    /** Create a live input. `streamKey` is returned only here (and by rotation): persist it. */
    async create(opts) {
        const r = await this.api.request("POST", this.api.orgPath("/live_inputs"), { name: opts.name, ingest: opts.ingest });
        return { input: new LiveInput(this.api, liveInputData(r.input)), streamKey: str(r.streamKey, "streamKey") };
    }
    /** Look up an input by `li_…` or `lv_…` id. */
    async get(opts) {
        const r = await this.api.request("GET", this.api.orgPath(`/live_inputs/${encodeURIComponent(opts.id)}`));
        return new LiveInput(this.api, liveInputData(r.input));
    }
    /** One page of inputs (newest first); pass `nextCursor` back as `cursor` for the next. */
    async list(opts = {}) {
        const q = new URLSearchParams();
        if (opts.limit !== undefined)
            q.set("limit", String(opts.limit));
        if (opts.cursor !== undefined)
            q.set("cursor", opts.cursor);
        const qs = q.toString();
        const r = await this.api.request("GET", this.api.orgPath(`/live_inputs${qs ? `?${qs}` : ""}`));
        if (!Array.isArray(r.data))
            throw new StreamsError("api_error", "list response has no data array");
        return { data: r.data.map((d) => new LiveInput(this.api, liveInputData(d))), nextCursor: r.nextCursor ?? null };
    }
}
export class Assets {
    api;
    constructor(api) {
        this.api = api;
    }
    /**
     * Start a resumable (TUS2) upload. Preview: the engine's VOD endpoint
     * (`POST /v1/orgs/{org}/assets/uploads {name}` → `{uploadUrl, assetId}`) is being built.
     */
    async createUpload(opts) {
        const r = await this.api.request("POST", this.api.orgPath("/assets/uploads"), { name: opts.name });
        const uploadUrl = str(r["uploadUrl"], "uploadUrl");
        return { uploadUrl: new URL(uploadUrl, this.api.base() || undefined).toString(), assetId: str(r["assetId"], "assetId") };
    }
}
function str(v, what) {
    if (typeof v !== "string")
        throw new StreamsError("api_error", `response field ${what} is missing`);
    return v;
}
function liveInputData(v) {
    if (typeof v !== "object" || v === null)
        throw new StreamsError("api_error", "response has no input object");
    const o = v;
    str(o["id"], "input.id");
    str(o["external_input_id"], "input.external_input_id");
    return o;
}
/** Bearer-authenticated JSON client; maps `{error:{code,message}}` to {@link ApiError}. */
export class ControlApi {
    options;
    constructor(options) {
        this.options = options;
    }
    base() {
        return this.options.baseUrl.replace(/\/+$/, "");
    }
    orgPath(rest) {
        if (this.options.orgId === "")
            throw new StreamsError("invalid_argument", "control-plane calls need new Streams({ baseUrl, apiKey, orgId })");
        return `/v1/orgs/${encodeURIComponent(this.options.orgId)}${rest}`;
    }
    async request(method, path, body) {
        if (this.options.apiKey === "")
            throw new StreamsError("invalid_argument", "control-plane calls need an apiKey");
        const f = this.options.fetch ?? ((i, init) => fetch(i, init));
        const headers = { authorization: `Bearer ${this.options.apiKey}`, accept: "application/json" };
        const init = { method, headers };
        if (body !== undefined) {
            headers["content-type"] = "application/json";
            init.body = JSON.stringify(body);
        }
        let res;
        try {
            res = await f(`${this.base()}${path}`, init);
        }
        catch (e) {
            throw new StreamsError("network", `${method} ${path} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        const text = await res.text();
        let json;
        try {
            json = text.length > 0 ? JSON.parse(text) : undefined;
        }
        catch {
            json = undefined;
        }
        if (!res.ok)
            throw apiError(res.status, json);
        if (json === undefined || typeof json !== "object" || json === null)
            throw new StreamsError("api_error", `${method} ${path}: response is not JSON`);
        return json;
    }
}
export function apiError(status, body) {
    const err = body?.error;
    const code = typeof err?.code === "string" ? err.code : `http_${status}`;
    const message = typeof err?.message === "string" ? err.message : `HTTP ${status}`;
    return new ApiError(status, code, message);
}
//# sourceMappingURL=control.js.map