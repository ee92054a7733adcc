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

export interface ControlOptions {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly orgId: string;
  readonly fetch?: typeof fetch;
}

export type IngestKind = "fmp4" | "rtmp";

/** A live input as the API returns it (field names follow the recipes). */
export interface LiveInputData {
  readonly id: string;
  readonly external_input_id: string;
  readonly name: string;
  readonly ingest: IngestKind;
}

export interface SignedPlaybackUrl {
  readonly url: string;
  readonly expires_at?: string;
}

function pending(what: string): never {
  throw new StreamsError("not_supported", `${what}: the control-plane REST paths are not defined yet`);
}

export class LiveInput implements LiveInputData {
  readonly id: string;
  readonly external_input_id: string;
  readonly name: string;
  readonly ingest: IngestKind;
  constructor(
    private readonly api: ControlApi,
    data: LiveInputData,
  ) {
    this.id = data.id;
    this.external_input_id = data.external_input_id;
    this.name = data.name;
    this.ingest = data.ingest;
  }

  /** Issue a fresh stream key (the old one stops working). Shown once. */
  async rotateStreamKey(): Promise<{ streamKey: string }> {
    void this.api;
    return pending("input.rotateStreamKey");
  }

  /** Mint a signed playback URL `https://host/watch/<lv_id>?token=<jwt>`. */
  async signedPlaybackUrl(opts: { ttlSeconds: number }): Promise<SignedPlaybackUrl> {
    void opts;
    return pending("input.signedPlaybackUrl");
  }
}

export class LiveInputs {
  constructor(private readonly api: ControlApi) {}
  async create(opts: { name: string; ingest: IngestKind }): Promise<{ input: LiveInput; streamKey: string }> {
    void opts;
    void this.api;
    return pending("liveInputs.create");
  }
  async get(opts: { id: string }): Promise<LiveInput> {
    void opts;
    return pending("liveInputs.get");
  }
  async list(): Promise<LiveInput[]> {
    return pending("liveInputs.list");
  }
}

export class Assets {
  constructor(private readonly api: ControlApi) {}
  async createUpload(opts: { name: string }): Promise<{ uploadUrl: string; assetId: string }> {
    void opts;
    void this.api;
    return pending("assets.createUpload");
  }
}

/** Bearer-authenticated JSON client; maps `{error:{code,message}}` to {@link ApiError}. */
export class ControlApi {
  constructor(readonly options: ControlOptions) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const f = this.options.fetch ?? fetch;
    const init: RequestInit = {
      method,
      headers: { authorization: `Bearer ${this.options.apiKey}`, "content-type": "application/json", accept: "application/json" },
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res: Response;
    try {
      res = await f(`${this.options.baseUrl.replace(/\/$/, "")}${path}`, init);
    } catch (e) {
      throw new StreamsError("network", `${method} ${path} failed`, { cause: e });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) throw apiError(res.status, json);
    return json as T;
  }
}

export function apiError(status: number, body: unknown): ApiError {
  const err = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof err?.code === "string" ? err.code : `http_${status}`;
  const message = typeof err?.message === "string" ? err.message : `HTTP ${status}`;
  return new ApiError(status, code, message);
}
