/**
 * How a viewer finds things: signed playback URLs, the playback-resolution call, JWT claims,
 * and the VOD catalog → segment URL mapping. Each assumption about the engine lives in exactly
 * one function here so it can change in one place.
 */
import { StreamsError } from "./errors.js";
import type { CatalogTrack } from "./media/catalog.js";

/** `https://host/watch/<id>?token=<jwt>` → `{ id, token }`. */
export function parseSignedPlaybackUrl(url: string): { id: string; token: string | undefined } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StreamsError("invalid_argument", `not a URL: ${url}`);
  }
  const parts = u.pathname.split("/").filter((p) => p.length > 0);
  const i = parts.lastIndexOf("watch");
  const id = i >= 0 ? parts[i + 1] : undefined;
  if (id === undefined || !/^(lv|pb)_[A-Za-z0-9_-]+$/.test(decodeURIComponent(id))) {
    throw new StreamsError("invalid_argument", `not a signed playback URL (expected /watch/<lv_…|pb_…>): ${url}`);
  }
  const token = u.searchParams.get("token") ?? undefined;
  return { id: decodeURIComponent(id), token };
}

export type PlaybackKind = "live" | "vod";

/** Delivery by id prefix: `lv_` → live over MoQT, `pb_` → VOD over HTTPS. */
export function playbackKind(id: string): PlaybackKind {
  if (id.startsWith("lv_")) return "live";
  if (id.startsWith("pb_")) return "vod";
  throw new StreamsError("invalid_argument", `unknown playback id "${id}" (expected lv_… or pb_…)`);
}

/**
 * Response of `GET <apiBase>/v1/playback/<id>?token=…` (rs/api `playback_info`):
 *
 * ```json
 * { "playbackId": "lv_…", "kind": "live", "orgId": "org_…", "namespace": "stream/org_…/lv_…",
 *   "catalogTrack": ".catalog", "relayUrl": "https://…", "relayUrls": ["https://…"],
 *   "certificateSha256": "hex…" | null, "token": "jwt", "expiresAt": "RFC 3339" }
 * { "playbackId": "pb_…", "kind": "vod", "orgId": "org_…", "catalogUrl": "https://…/catalog.json",
 *   "token": "jwt", "expiresAt": "…" }
 * ```
 */
export interface PlaybackInfo {
  readonly id: string;
  readonly kind: PlaybackKind;
  readonly orgId?: string;
  readonly relayUrl?: string;
  readonly relayUrls?: readonly string[];
  readonly certificateSha256?: string;
  readonly catalogUrl?: string;
  readonly namespace?: string;
  readonly catalogTrack?: string;
  readonly token?: string;
  readonly expiresAt?: string;
}

/** API error codes of the playback call that mean "this token does not let you watch". */
const AUTH_CODES = new Set(["unauthorized", "token_missing", "token_expired", "token_invalid", "forbidden"]);

export async function resolvePlayback(apiBase: string, id: string, token: string | undefined, f: typeof fetch = fetch): Promise<PlaybackInfo> {
  const q = token !== undefined ? `?token=${encodeURIComponent(token)}` : "";
  const url = `${apiBase.replace(/\/$/, "")}/v1/playback/${encodeURIComponent(id)}${q}`;
  let res: Response;
  try {
    res = await f(url, { headers: { accept: "application/json" } });
  } catch (e) {
    throw new StreamsError("network", `GET ${url.replace(/\?.*$/, "")} failed`, { cause: e });
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const err = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const apiCode = typeof err?.code === "string" ? err.code : `http_${res.status}`;
    const message = typeof err?.message === "string" ? err.message : `HTTP ${res.status}`;
    // Token problems surface as `auth_failed` (the same code the relay's session close gives);
    // the API's own code stays in `reason`.
    const auth = res.status === 401 || res.status === 403 || AUTH_CODES.has(apiCode);
    const code = auth ? "auth_failed" : res.status === 404 ? "not_found" : "api_error";
    throw new StreamsError(code, `playback ${id}: ${message} (${apiCode})`, { reason: apiCode });
  }
  return parsePlaybackInfo(body, id);
}

export function parsePlaybackInfo(body: unknown, id: string): PlaybackInfo {
  if (typeof body !== "object" || body === null) throw new StreamsError("api_error", "playback response is not an object");
  const b = body as Record<string, unknown>;
  const str = (k: string) => (typeof b[k] === "string" && (b[k] as string).length > 0 ? (b[k] as string) : undefined);
  const kind = str("kind") ?? playbackKind(id);
  if (kind !== "live" && kind !== "vod") throw new StreamsError("api_error", `playback kind "${kind}" unknown`);
  const pid = str("playbackId") ?? str("id") ?? id;
  const out: { -readonly [K in keyof PlaybackInfo]: PlaybackInfo[K] } = { id: pid, kind };
  const org = str("orgId");
  const namespace = str("namespace") ?? (org !== undefined && kind === "live" ? `stream/${org}/${pid}` : undefined);
  const urls = Array.isArray(b["relayUrls"]) ? (b["relayUrls"] as unknown[]).filter((u): u is string => typeof u === "string") : undefined;
  const set = <K extends keyof PlaybackInfo>(k: K, v: PlaybackInfo[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set("orgId", org);
  set("relayUrl", str("relayUrl") ?? urls?.[0]);
  set("relayUrls", urls);
  set("certificateSha256", str("certificateSha256"));
  set("catalogUrl", str("catalogUrl"));
  set("namespace", namespace);
  set("catalogTrack", str("catalogTrack"));
  set("token", str("token"));
  set("expiresAt", str("expiresAt"));
  return out;
}

/** Unverified JWT payload claims (the relay verifies; we only read hints such as the org). */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const part = token.split(".")[1];
  if (part === undefined) return undefined;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const json = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    const v: unknown = JSON.parse(json);
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** `stream/<org>/<id>` from a JWT's `namespace`, or `org`/`org_id` claim; else undefined. */
export function namespaceFromToken(token: string | undefined, id: string): string | undefined {
  if (token === undefined) return undefined;
  const c = jwtClaims(token);
  if (c === undefined) return undefined;
  if (typeof c["namespace"] === "string") return c["namespace"];
  const org = typeof c["org"] === "string" ? c["org"] : typeof c["org_id"] === "string" ? c["org_id"] : undefined;
  return org !== undefined ? `stream/${org}/${id}` : undefined;
}

/**
 * VOD layout (rs/api/src/assets/serve.rs): `/vod/{pb}/catalog.json[?token=…]`,
 * init    = `<dir of catalog.json>/<track name>/init.mp4` (only when the catalog has no initData)
 * segment = `<dir of catalog.json>/<track name>/<index>.m4s`, index from 0, 404 = end of track.
 * The track name is one percent-encoded path segment; the catalog URL's query (the playback
 * token of a signed asset) is carried over to every segment URL.
 */
export function vodSegmentUrl(catalogUrl: string, track: CatalogTrack, index: number | "init"): string {
  const base = new URL(catalogUrl, typeof location !== "undefined" ? location.href : undefined);
  const file = index === "init" ? "init.mp4" : `${index}.m4s`;
  const u = new URL(`${encodeURIComponent(track.name)}/${file}`, base);
  u.search = base.search;
  return u.toString();
}

/**
 * Index of the VOD segment that holds `seconds` of `track`'s timeline, from the catalog's
 * `segmentStartTime`, `segmentDurations` and `timescale`: 0 before the first segment, the last
 * one past the end. Without timing fields (an older catalog) it answers 0, so a player falls
 * back to reading from the start.
 */
export function vodSegmentAt(track: CatalogTrack, seconds: number): number {
  const durations = track.segmentDurations;
  const timescale = track.timescale;
  if (durations === undefined || durations.length === 0 || timescale === undefined || timescale <= 0) return 0;
  const target = seconds * timescale;
  let end = track.segmentStartTime ?? 0;
  for (let i = 0; i < durations.length; i++) {
    end += durations[i] as number;
    if (target < end) return i;
  }
  return durations.length - 1;
}
