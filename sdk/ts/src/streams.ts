/**
 * `@clutchcall/sdk/streams` — the ClutchCall Streams browser SDK.
 *
 * This package owns the browser side of the product:
 * - the DATA PLANE: a MoQT (draft-ietf-moq-transport-18) client over WebTransport, a WebCodecs
 *   publisher that packages CMAF per CMSF with an MSF catalog, and an MSE viewer that plays
 *   `lv_…` (live, MoQT) and `pb_…` (VOD, HTTPS) ids;
 * - the codecs behind them (MoQT wire format, fMP4/CMAF writer, MSF catalog);
 * - the CONTROL-PLANE client (`liveInputs`, `assets`), see control.ts.
 *
 * It has no runtime dependencies. Errors are {@link StreamsError}s with a stable `code`.
 *
 * ```ts
 * const dataPlane = new Streams({ relayUrl: "https://relay.example" });
 * const pub = dataPlane.publisher({ timesliceMs: 500 });
 * await pub.publish(input.external_input_id, streamKey, cam, `stream/org_abc/${input.external_input_id}`);
 * const viewer = new Streams({ apiBase: "", relayUrl }).viewer({ onStarted, onError });
 * viewer.attach(videoEl);
 * await viewer.play(input.external_input_id);
 * ```
 */
import { Assets, ControlApi, LiveInputs } from "./control.js";
import { StreamsError } from "./errors.js";
import { Publisher, type PublisherOptions } from "./publisher.js";
import { Viewer, type ViewerOptions } from "./viewer.js";
import type { WebTransportFactory } from "./moqt/transport.js";

export interface StreamsOptions {
  /** Control plane: API origin, e.g. `https://app.clutchcall.dev`. */
  readonly baseUrl?: string;
  /** Control plane: API key (bearer). */
  readonly apiKey?: string;
  /** Organization id (`org_…`); also lets the viewer build `stream/<org>/<id>`. */
  readonly orgId?: string;
  /** Data plane: MoQT relay (https URL, WebTransport). */
  readonly relayUrl?: string;
  /** Viewer: base for `GET <apiBase>/v1/playback/<id>` ("" = same origin). */
  readonly apiBase?: string;
  /**
   * Viewer: playback JWT (e.g. from {@link parseSignedPlaybackUrl}). When absent, a viewer in a
   * page opened from a signed URL (`…/watch/<id>?token=<jwt>`) uses that page's `?token=`.
   */
  readonly token?: string;
  /** Hex SHA-256 of the relay's self-signed certificate. */
  readonly relayCertificateSha256?: string;
  /**
   * Where to fetch that hash: "auto" (default: `<baseUrl|apiBase>/certificate.sha256`, the page's
   * origin, then `http://<relay host:port>/certificate.sha256`), a URL, or false.
   */
  readonly certificateHashUrl?: string | "auto" | false;
  /** Test hook: WebTransport factory. */
  readonly webTransport?: WebTransportFactory;
  /** Test hook: fetch. */
  readonly fetch?: typeof fetch;
}

export class Streams {
  /** Control plane: live inputs (needs baseUrl/apiKey/orgId). */
  readonly liveInputs: LiveInputs;
  /** Control plane: VOD assets (needs baseUrl/apiKey/orgId). */
  readonly assets: Assets;

  constructor(readonly options: StreamsOptions = {}) {
    const api = new ControlApi({
      baseUrl: options.baseUrl ?? "",
      apiKey: options.apiKey ?? "",
      orgId: options.orgId ?? "",
      ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
    });
    this.liveInputs = new LiveInputs(api);
    this.assets = new Assets(api);
  }

  private sessionBase() {
    const o = this.options;
    const bases = [o.baseUrl, o.apiBase].filter((b): b is string => b !== undefined);
    return {
      certificateHashBases: bases,
      ...(o.relayCertificateSha256 !== undefined ? { certificateSha256: o.relayCertificateSha256 } : {}),
      ...(o.certificateHashUrl !== undefined ? { certificateHashUrl: o.certificateHashUrl } : {}),
      ...(o.webTransport !== undefined ? { transport: o.webTransport } : {}),
      ...(o.fetch !== undefined ? { fetch: o.fetch } : {}),
    };
  }

  /** A MoQT publisher for browser capture (needs `relayUrl`). */
  publisher(options: PublisherOptions = {}): Publisher {
    const relayUrl = this.options.relayUrl;
    if (relayUrl === undefined) throw new StreamsError("invalid_argument", "publisher() needs new Streams({ relayUrl })");
    return new Publisher({ url: relayUrl, ...this.sessionBase() }, options);
  }

  /** A viewer for `lv_…` (MoQT) and `pb_…` (HTTPS) ids. */
  viewer(options: ViewerOptions = {}): Viewer {
    const o = this.options;
    const f = o.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
    return new Viewer(
      { apiBase: o.apiBase ?? o.baseUrl ?? "", relayUrl: o.relayUrl, token: o.token ?? pageToken(), orgId: o.orgId, session: this.sessionBase(), fetch: f },
      options,
    );
  }
}

/** `?token=` of the current page (a signed playback URL), if any. */
function pageToken(): string | undefined {
  if (typeof location === "undefined") return undefined;
  const t = new URLSearchParams(location.search).get("token");
  return t !== null && t.length > 0 ? t : undefined;
}

export { Publisher, type PublisherOptions, TRACK_PRIORITY, videoCodecCandidates } from "./publisher.js";
export { Viewer, type ViewerOptions, type ViewerStats, type PlayOptions, chooseRendition, ThroughputEstimator } from "./viewer.js";
export { LiveInput, LiveInputs, Assets, type LiveInputData, type LiveInputList, type IngestKind, type SignedPlaybackUrl } from "./control.js";
export {
  StreamsError,
  ApiError,
  RequestError,
  SessionClosedError,
  DecodeError,
  type StreamsErrorCode,
  SessionCode,
  RequestErrorCode,
} from "./errors.js";
export { parseSignedPlaybackUrl, playbackKind, resolvePlayback, type PlaybackInfo, vodSegmentUrl } from "./playback.js";
export { CATALOG_TRACK, MSF_VERSION, type Catalog, type CatalogTrack, parseCatalog, pickRenditions } from "./media/catalog.js";
export { MoqtSession, type SessionOptions, type Subscription, type TrackObject, type SubscribeOptions } from "./moqt/session.js";
export * as moqt from "./moqt/index.js";
export * as media from "./media/index.js";
