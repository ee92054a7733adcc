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
import { Publisher } from "./publisher.js";
import { Viewer } from "./viewer.js";
export class Streams {
    options;
    /** Control plane: live inputs (needs baseUrl/apiKey/orgId). */
    liveInputs;
    /** Control plane: VOD assets (needs baseUrl/apiKey/orgId). */
    assets;
    constructor(options = {}) {
        this.options = options;
        const api = new ControlApi({
            baseUrl: options.baseUrl ?? "",
            apiKey: options.apiKey ?? "",
            orgId: options.orgId ?? "",
            ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
        });
        this.liveInputs = new LiveInputs(api);
        this.assets = new Assets(api);
    }
    sessionBase() {
        const o = this.options;
        const bases = [o.baseUrl, o.apiBase].filter((b) => b !== undefined);
        return {
            certificateHashBases: bases,
            ...(o.relayCertificateSha256 !== undefined ? { certificateSha256: o.relayCertificateSha256 } : {}),
            ...(o.certificateHashUrl !== undefined ? { certificateHashUrl: o.certificateHashUrl } : {}),
            ...(o.webTransport !== undefined ? { transport: o.webTransport } : {}),
            ...(o.fetch !== undefined ? { fetch: o.fetch } : {}),
        };
    }
    /** A MoQT publisher for browser capture (needs `relayUrl`). */
    publisher(options = {}) {
        const relayUrl = this.options.relayUrl;
        if (relayUrl === undefined)
            throw new StreamsError("invalid_argument", "publisher() needs new Streams({ relayUrl })");
        return new Publisher({ url: relayUrl, ...this.sessionBase() }, options);
    }
    /** A viewer for `lv_…` (MoQT) and `pb_…` (HTTPS) ids. */
    viewer(options = {}) {
        const o = this.options;
        const f = o.fetch ?? ((input, init) => fetch(input, init));
        return new Viewer({ apiBase: o.apiBase ?? o.baseUrl ?? "", relayUrl: o.relayUrl, token: o.token ?? pageToken(), orgId: o.orgId, session: this.sessionBase(), fetch: f }, options);
    }
}
/** `?token=` of the current page (a signed playback URL), if any. */
function pageToken() {
    if (typeof location === "undefined")
        return undefined;
    const t = new URLSearchParams(location.search).get("token");
    return t !== null && t.length > 0 ? t : undefined;
}
export { Publisher, TRACK_PRIORITY, videoCodecCandidates } from "./publisher.js";
export { Viewer, chooseRendition, ThroughputEstimator } from "./viewer.js";
export { LiveInput, LiveInputs, Assets } from "./control.js";
export { StreamsError, ApiError, RequestError, SessionClosedError, DecodeError, SessionCode, RequestErrorCode, } from "./errors.js";
export { parseSignedPlaybackUrl, playbackKind, resolvePlayback, vodSegmentUrl } from "./playback.js";
export { CATALOG_TRACK, MSF_VERSION, parseCatalog, pickRenditions } from "./media/catalog.js";
export { MoqtSession } from "./moqt/session.js";
export * as moqt from "./moqt/index.js";
export * as media from "./media/index.js";
//# sourceMappingURL=streams.js.map