/**
 * CONTROL PLANE (REST) — placeholder with the public shapes from the recipes.
 *
 * The REST paths are not fixed yet; every method below throws `not_supported` until they are.
 * What is fixed: the names and shapes (`streams.liveInputs.create/get/list`,
 * `input.rotateStreamKey()`, `input.signedPlaybackUrl({ ttlSeconds })`,
 * `streams.assets.createUpload({ name })`) and the error contract: a non-2xx answer with body
 * `{ "error": { "code", "message" } }` becomes an {@link ApiError} whose `code` is that code.
 */
import { ApiError, StreamsError } from "./errors.js";
function pending(what) {
    throw new StreamsError("not_supported", `${what}: the control-plane REST paths are not defined yet`);
}
export class LiveInput {
    api;
    id;
    external_input_id;
    name;
    ingest;
    constructor(api, data) {
        this.api = api;
        this.id = data.id;
        this.external_input_id = data.external_input_id;
        this.name = data.name;
        this.ingest = data.ingest;
    }
    /** Issue a fresh stream key (the old one stops working). Shown once. */
    async rotateStreamKey() {
        void this.api;
        return pending("input.rotateStreamKey");
    }
    /** Mint a signed playback URL `https://host/watch/<lv_id>?token=<jwt>`. */
    async signedPlaybackUrl(opts) {
        void opts;
        return pending("input.signedPlaybackUrl");
    }
}
export class LiveInputs {
    api;
    constructor(api) {
        this.api = api;
    }
    async create(opts) {
        void opts;
        void this.api;
        return pending("liveInputs.create");
    }
    async get(opts) {
        void opts;
        return pending("liveInputs.get");
    }
    async list() {
        return pending("liveInputs.list");
    }
}
export class Assets {
    api;
    constructor(api) {
        this.api = api;
    }
    async createUpload(opts) {
        void opts;
        void this.api;
        return pending("assets.createUpload");
    }
}
/** Bearer-authenticated JSON client; maps `{error:{code,message}}` to {@link ApiError}. */
export class ControlApi {
    options;
    constructor(options) {
        this.options = options;
    }
    async request(method, path, body) {
        const f = this.options.fetch ?? fetch;
        const init = {
            method,
            headers: { authorization: `Bearer ${this.options.apiKey}`, "content-type": "application/json", accept: "application/json" },
        };
        if (body !== undefined)
            init.body = JSON.stringify(body);
        let res;
        try {
            res = await f(`${this.options.baseUrl.replace(/\/$/, "")}${path}`, init);
        }
        catch (e) {
            throw new StreamsError("network", `${method} ${path} failed`, { cause: e });
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