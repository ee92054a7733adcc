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

export interface ControlOptions {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly orgId: string;
  readonly fetch?: typeof fetch;
}

export type IngestKind = "fmp4" | "rtmp";

/** A live input as the API returns it (snake_case resource fields). */
export interface LiveInputData {
  readonly id: string;
  readonly external_input_id: string;
  readonly org_id: string;
  readonly name: string;
  readonly ingest: IngestKind;
  /** `stream/<org_id>/<external_input_id>` */
  readonly namespace: string;
  /** e.g. "idle" | "live" (as the engine reports it). */
  readonly status?: string;
  readonly stream_key_rotated_at?: string;
  readonly created_at?: string;
  readonly updated_at?: string;
}

/** A minted playback token and the signed URL that carries it. */
export interface SignedPlaybackUrl {
  /** `<public base>/watch/<lv_id>?token=<jwt>` */
  readonly url: string;
  readonly token: string;
  /** RFC 3339 */
  readonly expiresAt: string;
  readonly playbackId: string;
}

export interface LiveInputList {
  readonly data: LiveInput[];
  readonly nextCursor: string | null;
}

export class LiveInput implements LiveInputData {
  readonly id: string;
  readonly external_input_id: string;
  readonly org_id: string;
  readonly name: string;
  readonly ingest: IngestKind;
  readonly namespace: string;
  readonly status?: string;
  readonly stream_key_rotated_at?: string;
  readonly created_at?: string;
  readonly updated_at?: string;

  constructor(
    private readonly api: ControlApi,
    data: LiveInputData,
  ) {
    this.id = data.id;
    this.external_input_id = data.external_input_id;
    this.org_id = data.org_id;
    this.name = data.name;
    this.ingest = data.ingest;
    this.namespace = data.namespace ?? `stream/${data.org_id}/${data.external_input_id}`;
    if (data.status !== undefined) this.status = data.status;
    if (data.stream_key_rotated_at !== undefined) this.stream_key_rotated_at = data.stream_key_rotated_at;
    if (data.created_at !== undefined) this.created_at = data.created_at;
    if (data.updated_at !== undefined) this.updated_at = data.updated_at;
  }

  /** Issue a fresh stream key (the old one stops working, live sessions using it end). Shown once. */
  async rotateStreamKey(): Promise<{ input: LiveInput; streamKey: string }> {
    const r = await this.api.request<{ input: LiveInputData; streamKey: string }>("POST", this.api.orgPath(`/live_inputs/${encodeURIComponent(this.id)}/stream_key`), {});
    return { input: new LiveInput(this.api, liveInputData(r.input)), streamKey: str(r.streamKey, "streamKey") };
  }

  /** Mint a playback JWT and the signed URL `<base>/watch/<lv_id>?token=<jwt>`. */
  async signedPlaybackUrl(opts: { ttlSeconds?: number } = {}): Promise<SignedPlaybackUrl> {
    const body = opts.ttlSeconds !== undefined ? { ttlSeconds: opts.ttlSeconds } : {};
    const r = await this.api.request<Record<string, unknown>>("POST", this.api.orgPath(`/live_inputs/${encodeURIComponent(this.id)}/playback_tokens`), body);
    return {
      url: str(r["url"], "url"),
      token: str(r["token"], "token"),
      expiresAt: str(r["expiresAt"], "expiresAt"),
      playbackId: str(r["playbackId"], "playbackId"),
    };
  }
}

export class LiveInputs {
  constructor(private readonly api: ControlApi) {}

  /** Create a live input. `streamKey` is returned only here (and by rotation): persist it. */
  async create(opts: { name: string; ingest: IngestKind }): Promise<{ input: LiveInput; streamKey: string }> {
    const r = await this.api.request<{ input: LiveInputData; streamKey: string }>("POST", this.api.orgPath("/live_inputs"), { name: opts.name, ingest: opts.ingest });
    return { input: new LiveInput(this.api, liveInputData(r.input)), streamKey: str(r.streamKey, "streamKey") };
  }

  /** Look up an input by `li_…` or `lv_…` id. */
  async get(opts: { id: string }): Promise<LiveInput> {
    const r = await this.api.request<{ input: LiveInputData }>("GET", this.api.orgPath(`/live_inputs/${encodeURIComponent(opts.id)}`));
    return new LiveInput(this.api, liveInputData(r.input));
  }

  /** One page of inputs (newest first); pass `nextCursor` back as `cursor` for the next. */
  async list(opts: { limit?: number; cursor?: string } = {}): Promise<LiveInputList> {
    const q = new URLSearchParams();
    if (opts.limit !== undefined) q.set("limit", String(opts.limit));
    if (opts.cursor !== undefined) q.set("cursor", opts.cursor);
    const qs = q.toString();
    const r = await this.api.request<{ data: LiveInputData[]; nextCursor?: string | null }>("GET", this.api.orgPath(`/live_inputs${qs ? `?${qs}` : ""}`));
    if (!Array.isArray(r.data)) throw new StreamsError("api_error", "list response has no data array");
    return { data: r.data.map((d) => new LiveInput(this.api, liveInputData(d))), nextCursor: r.nextCursor ?? null };
  }
}

export class Assets {
  constructor(private readonly api: ControlApi) {}

  /**
   * Start a resumable (TUS2) upload. Preview: the engine's VOD endpoint
   * (`POST /v1/orgs/{org}/assets/uploads {name}` → `{uploadUrl, assetId}`) is being built.
   */
  async createUpload(opts: { name: string }): Promise<{ uploadUrl: string; assetId: string }> {
    const r = await this.api.request<Record<string, unknown>>("POST", this.api.orgPath("/assets/uploads"), { name: opts.name });
    const uploadUrl = str(r["uploadUrl"], "uploadUrl");
    return { uploadUrl: new URL(uploadUrl, this.api.base() || undefined).toString(), assetId: str(r["assetId"], "assetId") };
  }
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new StreamsError("api_error", `response field ${what} is missing`);
  return v;
}

function liveInputData(v: unknown): LiveInputData {
  if (typeof v !== "object" || v === null) throw new StreamsError("api_error", "response has no input object");
  const o = v as Record<string, unknown>;
  str(o["id"], "input.id");
  str(o["external_input_id"], "input.external_input_id");
  return o as unknown as LiveInputData;
}

/** Bearer-authenticated JSON client; maps `{error:{code,message}}` to {@link ApiError}. */
export class ControlApi {
  constructor(readonly options: ControlOptions) {}

  base(): string {
    return this.options.baseUrl.replace(/\/+$/, "");
  }

  orgPath(rest: string): string {
    if (this.options.orgId === "") throw new StreamsError("invalid_argument", "control-plane calls need new Streams({ baseUrl, apiKey, orgId })");
    return `/v1/orgs/${encodeURIComponent(this.options.orgId)}${rest}`;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (this.options.apiKey === "") throw new StreamsError("invalid_argument", "control-plane calls need an apiKey");
    const f = this.options.fetch ?? ((i: RequestInfo | URL, init?: RequestInit) => fetch(i, init));
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.apiKey}`, accept: "application/json" };
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await f(`${this.base()}${path}`, init);
    } catch (e) {
      throw new StreamsError("network", `${method} ${path} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) throw apiError(res.status, json);
    if (json === undefined || typeof json !== "object" || json === null) throw new StreamsError("api_error", `${method} ${path}: response is not JSON`);
    return json as T;
  }
}

export function apiError(status: number, body: unknown): ApiError {
  const err = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof err?.code === "string" ? err.code : `http_${status}`;
  const message = typeof err?.message === "string" ? err.message : `HTTP ${status}`;
  return new ApiError(status, code, message);
}
