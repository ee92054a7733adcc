/**
 * Browser viewer: `lv_…` over MoQT, `pb_…` over HTTPS, both into Media Source Extensions.
 *
 * Live: subscribe `.catalog` in `stream/<org>/<lv_id>` (Largest Object filter + Joining FETCH,
 * so the newest complete catalog arrives at once) and keep reading it (renditions come and go:
 * an RTMP input's ladder appears seconds after its source and leaves when the transcoder dies);
 * pick video+audio renditions, subscribe them from the start of the current group, append init
 * segments then objects (one SourceBuffer per media type, mode "segments"), hold the live edge,
 * and switch renditions of one altGroup at group boundaries (ABR). On GOAWAY the viewer opens a
 * new session (the GOAWAY's New Session URI, else the same URL, retrying while the relay is
 * unreachable) and re-subscribes without reporting an error.
 */
import { StreamsError } from "./errors.js";
import { CATALOG_TRACK, type Catalog, type CatalogTrack, base64Decode, mseType, parseCatalog, pickRenditions } from "./media/catalog.js";
import { SessionClosedError } from "./errors.js";
import { MoqtSession, type SessionOptions, type Subscription, type TrackObject } from "./moqt/session.js";
import { type Namespace, namespaceFromString } from "./moqt/wire.js";
import { toStreamsError } from "./publisher.js";
import { type PlaybackInfo, namespaceFromToken, playbackKind, resolvePlayback, vodSegmentAt, vodSegmentUrl } from "./playback.js";
import { RequestError, RequestErrorCode } from "./errors.js";

export interface ViewerOptions {
  /** Called once, when the first frame is shown. */
  readonly onStarted?: () => void;
  /** Playback errors; `error.code === "auth_failed"` on a bad or expired token. */
  readonly onError?: (error: StreamsError) => void;
  /** Enable ABR across renditions of one altGroup. Default true. */
  readonly abr?: boolean;
  /**
   * Called when a rendition starts playing: its init segment goes into the SourceBuffer and
   * its objects follow (at start, after each ABR switch, after GOAWAY).
   */
  readonly onRendition?: (rendition: CatalogTrack, kind: "video" | "audio") => void;
  /** Called with every catalog the live viewer reads from `.catalog` (the first one and updates). */
  readonly onCatalog?: (catalog: Catalog) => void;
  /**
   * Video rendition to play (track name, e.g. `"video/source"`): ABR stays on it while the
   * catalog lists it. Change at runtime with {@link Viewer.setRendition}.
   */
  readonly rendition?: string;
  /**
   * Bitrate cap for ABR, bits per second (catalog `bitrate`): renditions above it are not
   * chosen (the lowest one is, if all are above). Change at runtime with
   * {@link Viewer.setMaxBitrate}.
   */
  readonly maxBitrate?: number;
  /**
   * After GOAWAY, how long to keep trying to reach a relay (and for the broadcast to be there)
   * before `onError`, milliseconds. Default 30000.
   */
  readonly reconnectTimeoutMs?: number;
}

export interface ViewerContext {
  readonly apiBase: string;
  readonly relayUrl: string | undefined;
  readonly token: string | undefined;
  readonly orgId: string | undefined;
  readonly session: Omit<SessionOptions, "url" | "token">;
  readonly fetch: typeof fetch;
}

export interface PlayOptions {
  /** MoQT namespace (`stream/<org>/<lv_id>`) when it cannot be derived. */
  readonly namespace?: string;
}

/** How far behind the newest buffered video frame the live viewer aims to play, seconds. */
export const LIVE_TARGET_S = 0.15;
const CATCH_UP_RATE = 1.15;

/** Serializes appends and removals on one SourceBuffer (one operation at a time, in order). */
class Feeder {
  private queue: Array<{ op: { bytes: Uint8Array } | { from: number; to: number }; resolve: () => void; reject: (e: unknown) => void }> = [];
  private busy = false;
  constructor(
    readonly sb: SourceBuffer,
    private type = "",
  ) {
    sb.mode = "segments";
  }

  append(bytes: Uint8Array): Promise<void> {
    return this.run({ bytes });
  }

  /** Remove `[from, to)` (seconds) after the queued operations. */
  remove(from: number, to: number): Promise<void> {
    return this.run({ from, to });
  }

  private run(op: { bytes: Uint8Array } | { from: number; to: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      this.pump();
    });
  }

  /** Change codec (ABR across codecs) before the next init segment. */
  changeType(type: string): void {
    if (type === this.type) return;
    const sb = this.sb as SourceBuffer & { changeType?: (t: string) => void };
    try {
      sb.changeType?.(type);
      this.type = type;
    } catch {
      /* busy: the next init segment of the same codec family still plays */
    }
  }

  private pump(): void {
    if (this.busy) return;
    if (this.sb.updating) {
      // Someone else's operation (should not happen): try again when it ends.
      this.sb.addEventListener("updateend", () => this.pump(), { once: true });
      return;
    }
    const item = this.queue.shift();
    if (item === undefined) return;
    this.busy = true;
    const done = (err?: unknown) => {
      this.sb.removeEventListener("updateend", ok);
      this.sb.removeEventListener("error", fail);
      this.busy = false;
      if (err !== undefined) item.reject(err);
      else item.resolve();
      this.pump();
    };
    const ok = () => done();
    const fail = () => done(new StreamsError("media_error", "SourceBuffer append failed"));
    this.sb.addEventListener("updateend", ok);
    this.sb.addEventListener("error", fail);
    const op = item.op;
    try {
      if ("bytes" in op) {
        this.sb.appendBuffer(op.bytes as Uint8Array<ArrayBuffer>);
      } else {
        if (op.to <= op.from) {
          done();
          return;
        }
        this.sb.remove(op.from, op.to);
      }
    } catch (e) {
      if ("bytes" in op && e instanceof DOMException && e.name === "QuotaExceededError") {
        // drop this chunk; the trimming below frees space for the next ones
        done();
        return;
      }
      if (!("bytes" in op)) {
        done(); // a removal that cannot run now is skipped
        return;
      }
      done(new StreamsError("media_error", `appendBuffer: ${String(e)}`, { cause: e }));
    }
  }

  /** Remove everything buffered (a new timeline follows, e.g. after reconnecting). */
  clear(): Promise<void> {
    const b = this.sb.buffered;
    if (b.length === 0) return Promise.resolve();
    return this.remove(0, Math.max(b.end(b.length - 1), 1) + 1);
  }

  /** Remove media older than `keepSeconds` behind `time` (skipped while operations are queued). */
  trim(time: number, keepSeconds: number): void {
    if (this.busy || this.queue.length > 0 || this.sb.buffered.length === 0) return;
    const start = this.sb.buffered.start(0);
    if (time - keepSeconds > start + 1) void this.remove(start, time - keepSeconds);
  }
}

/** Throughput estimate from objects big enough to arrive as a burst (keyframes). */
export class ThroughputEstimator {
  private estimate: number | undefined;
  sample(bytes: number, ms: number): void {
    if (bytes < 16_000 || ms < 2) return;
    const bps = (bytes * 8 * 1000) / ms;
    this.estimate = this.estimate === undefined ? bps : 0.7 * this.estimate + 0.3 * bps;
  }
  get bitsPerSecond(): number | undefined {
    return this.estimate;
  }
}

/**
 * ABR decision at a group boundary: index of the rendition to use next.
 * Down when throughput < 1.2× the current bitrate or playback stalled recently; up one step
 * when throughput > 1.6× the next bitrate and something is buffered ahead of the playhead
 * (at the live edge the buffer is bounded by the latency target, about
 * {@link LIVE_TARGET_S}, so it cannot be asked to hold a whole group).
 */
export function chooseRendition(
  renditions: readonly CatalogTrack[],
  current: number,
  throughputBps: number | undefined,
  bufferAheadS: number,
  groupDurationS: number,
  stalledRecently: boolean,
): number {
  if (renditions.length <= 1) return current;
  const cur = renditions[current];
  if (cur === undefined) return 0;
  if (stalledRecently || (throughputBps !== undefined && throughputBps < (cur.bitrate ?? 0) * 1.2)) return Math.max(0, current - 1);
  const up = renditions[current + 1];
  if (up !== undefined && throughputBps !== undefined && throughputBps > (up.bitrate ?? 0) * 1.6 && bufferAheadS >= Math.min(groupDurationS / 2, LIVE_TARGET_S / 3)) {
    return current + 1;
  }
  return current;
}

type Role = "video" | "audio";

/** A switch in progress: the next rendition's subscription, waiting for its switch group. */
interface PendingSwitch {
  readonly sub: Subscription;
  readonly track: CatalogTrack;
  /** First group taken from the new rendition (decided when its first object arrives). */
  switchAt: bigint | undefined;
  /** Its objects from `switchAt` on, until the old rendition reaches that group. */
  readonly buffered: TrackObject[];
}

/** One media type of a live playback: the SourceBuffer and the rendition feeding it. */
interface Lane {
  readonly role: Role;
  readonly feeder: Feeder;
  session: MoqtSession;
  current: CatalogTrack;
  active: Subscription | undefined;
  /** Newest group appended from `active`. */
  activeLast: bigint | undefined;
  /** `current` left the catalog (or its subscription ended): switch as soon as possible. */
  activeGone: boolean;
  pending: PendingSwitch | undefined;
  /** A SUBSCRIBE for a switch is in flight. */
  subscribing: boolean;
  /** Bumped when the lane restarts on a new session: older subscriptions stop feeding it. */
  epoch: number;
  /** Every MSE append of this lane, in order. */
  chain: Promise<void>;
  firstData: () => void;
}

interface LiveState {
  readonly gen: number;
  readonly id: string;
  readonly opts: PlayOptions;
  readonly ns: Namespace;
  sessionOpts: SessionOptions;
  /** The relay URL / certificate came from the playback API: ask again when reconnecting. */
  readonly resolved: boolean;
  catalog: Catalog | undefined;
  video: readonly CatalogTrack[];
  audio: readonly CatalogTrack[];
  readonly lanes: Map<Role, Lane>;
  migrating: boolean;
  timer: ReturnType<typeof setInterval> | undefined;
}

/** What {@link Viewer.stats} reports (plus `throughputBps`). */
export type ViewerStats = {
  joinGroup: bigint | undefined;
  firstGroup: bigint | undefined;
  firstObject: bigint | undefined;
  lastGroup: bigint | undefined;
  objects: number;
  bytes: number;
  video: string | undefined;
  audio: string | undefined;
  migrations: number;
  switches: number;
  catalogs: number;
};

const freshStats = (): ViewerStats => ({
  joinGroup: undefined, firstObject: undefined, firstGroup: undefined, lastGroup: undefined, objects: 0, bytes: 0, video: undefined, audio: undefined, migrations: 0, switches: 0, catalogs: 0,
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Viewer {
  private video: HTMLVideoElement | undefined;
  private mediaSource: MediaSource | undefined;
  private objectUrl: string | undefined;
  private session: MoqtSession | undefined;
  private subs: Subscription[] = [];
  private stopped = false;
  private started = false;
  private generation = 0;
  private readonly throughput = new ThroughputEstimator();
  private lastStall = -Infinity;
  private groupDurationS = 1;
  private feeders = new Map<Role, Feeder>();
  private live: LiveState | undefined;
  private pinned: string | undefined;
  private cap: number | undefined;
  private info: ViewerStats = freshStats();

  constructor(
    private readonly ctx: ViewerContext,
    private readonly options: ViewerOptions = {},
  ) {
    this.pinned = options.rendition;
    this.cap = options.maxBitrate;
  }

  /** Use this `<video>` element for playback. */
  attach(video: HTMLVideoElement): void {
    this.video = video;
    video.addEventListener("waiting", () => (this.lastStall = performance.now()));
  }

  /** Start playback of `lv_…` (live, MoQT) or `pb_…` (VOD, HTTPS). Resolves once data flows. */
  async play(id: string, opts: PlayOptions = {}): Promise<void> {
    if (this.video === undefined) throw new StreamsError("invalid_argument", "call attach(videoElement) before play()");
    this.teardown();
    this.stopped = false;
    this.started = false;
    const gen = ++this.generation;
    this.info = freshStats();
    try {
      const kind = playbackKind(id);
      if (kind === "live") await this.playLive(id, opts, gen);
      else await this.playVod(id, gen);
    } catch (e) {
      const err = toStreamsError(e);
      const current = gen === this.generation && !this.stopped;
      if (current) this.teardown();
      if (current) this.options.onError?.(err);
      throw err;
    }
  }

  /**
   * What the viewer is playing: the relay's newest video group when it subscribed (`joinGroup`,
   * from SUBSCRIBE_OK), the first (group, object) and latest group received (live), objects and
   * bytes received, the playing rendition track names, how often it moved sessions (GOAWAY),
   * switched video renditions and read a catalog.
   */
  get stats(): ViewerStats & { throughputBps: number | undefined } {
    return { ...this.info, throughputBps: this.throughput.bitsPerSecond };
  }

  /**
   * Live: the video renditions of the playing altGroup in the newest catalog, lowest bitrate
   * first (empty before the first catalog and for VOD).
   */
  get renditions(): readonly CatalogTrack[] {
    return this.live?.video ?? [];
  }

  /** Live: the video rendition playing now (its data is what MSE receives). */
  get rendition(): CatalogTrack | undefined {
    return this.live?.lanes.get("video")?.current;
  }

  /** Live: the newest catalog read from `.catalog`. */
  get catalog(): Catalog | undefined {
    return this.live?.catalog;
  }

  /**
   * Play this video rendition (a name from {@link renditions}) from the next group boundary on;
   * `undefined` hands the choice back to ABR. A name the catalog does not list is kept and used
   * once it appears.
   */
  setRendition(name: string | undefined): void {
    this.pinned = name;
    this.reconsider();
  }

  /** Cap ABR at `bitsPerSecond` from the next group boundary on (`undefined`: no cap). */
  setMaxBitrate(bitsPerSecond: number | undefined): void {
    this.cap = bitsPerSecond;
    this.reconsider();
  }

  /** Stop playback and release the session and the MediaSource. */
  stop(): void {
    this.stopped = true;
    this.generation++;
    this.teardown();
  }

  private teardown(): void {
    if (this.live?.timer !== undefined) clearInterval(this.live.timer);
    this.live = undefined;
    for (const s of this.subs) s.close();
    this.subs = [];
    this.session?.close(0, "viewer stopped");
    this.session = undefined;
    if (this.mediaSource !== undefined && this.mediaSource.readyState === "open") {
      try {
        this.mediaSource.endOfStream();
      } catch {
        /* ignore */
      }
    }
    this.mediaSource = undefined;
    this.feeders.clear();
    if (this.objectUrl !== undefined) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = undefined;
  }

  private error(gen: number, e: unknown): void {
    if (gen !== this.generation || this.stopped) return;
    this.options.onError?.(toStreamsError(e));
  }

  /**
   * An error from `session` (a subscription ending with it, a refused request): reported only
   * while that session is the current one and not going away — a session that sent GOAWAY is
   * replaced, and its close is expected.
   */
  private sessionError(session: MoqtSession, gen: number, e: unknown): void {
    if (session !== this.session || session.goAway !== undefined || this.live?.migrating === true) return;
    // A closed session is reported once, by its `closed` handler (see adoptSession).
    if (e instanceof SessionClosedError || session.isClosed) return;
    this.error(gen, e);
  }

  // ---------------------------------------------------------------- shared MSE setup

  private async openMediaSource(): Promise<MediaSource> {
    const video = this.video as HTMLVideoElement;
    const ms = new MediaSource();
    this.mediaSource = ms;
    this.objectUrl = URL.createObjectURL(ms);
    video.src = this.objectUrl;
    await new Promise<void>((resolve) => ms.addEventListener("sourceopen", () => resolve(), { once: true }));
    return ms;
  }

  private watchStart(gen: number): void {
    const video = this.video as HTMLVideoElement;
    const fire = () => {
      if (this.started || gen !== this.generation) return;
      this.started = true;
      this.options.onStarted?.();
    };
    const v = video as HTMLVideoElement & { requestVideoFrameCallback?: (cb: () => void) => number };
    if (typeof v.requestVideoFrameCallback === "function") v.requestVideoFrameCallback(fire);
    video.addEventListener("playing", fire, { once: true });
  }

  /**
   * Start at the first keyframe buffered (fast first frame), then hold the live edge: play
   * {@link CATCH_UP_RATE}× while more than {@link LIVE_TARGET_S} + 0.1 s behind the newest
   * frame, back to 1× within 0.05 s of the target, and seek when far behind (after a stall or a
   * background tab). Measured on loopback (bench/glass-to-glass): a wider band (+0.2 s) left
   * ~0.3 s of buffer; a tighter target (0.1 s) ran the element dry (stall, rebuffer).
   *
   * Works on the element's `buffered` ranges, the intersection of the audio and video
   * SourceBuffers (what can actually play). A playhead outside every range, or stuck at the end
   * of one with a later range buffered (a rendition switch, a reconnect, audio starting later
   * than video), jumps to the start of the next range; past everything buffered (a new
   * timeline after reconnecting to a restarted relay) it jumps to the newest range.
   */
  private keepLive(): void {
    const video = this.video;
    if (video === undefined || this.mediaSource === undefined) return;
    const b = video.buffered;
    if (b.length === 0) return;
    const t = video.currentTime;
    const last = b.length - 1;
    const end = b.end(last);
    let inRange = -1;
    for (let i = 0; i < b.length; i++) {
      if (t >= b.start(i) - 0.05 && t <= b.end(i) + 0.05) inRange = i;
    }
    let seekTo: number | undefined;
    if (!this.started && t === 0) {
      seekTo = b.start(last);
    } else if (inRange < 0) {
      // In a gap, before the first range, or past everything (new timeline).
      for (let i = 0; i < b.length && seekTo === undefined; i++) if (b.start(i) > t) seekTo = b.start(i);
      seekTo ??= b.start(last);
    } else if (inRange < last && b.end(inRange) - t < 0.1 && video.readyState < HTMLMediaElement.HAVE_FUTURE_DATA) {
      // Stuck at the end of a range with more buffered after a gap.
      seekTo = b.start(inRange + 1);
    }
    if (seekTo !== undefined) {
      video.currentTime = seekTo;
      startPlayback(video);
    } else {
      const lag = end - t;
      if (lag > Math.max(3, 2 * this.groupDurationS)) {
        video.currentTime = Math.max(b.start(last), end - LIVE_TARGET_S);
      } else if (lag > LIVE_TARGET_S + 0.1) {
        if (video.playbackRate !== CATCH_UP_RATE) video.playbackRate = CATCH_UP_RATE;
      } else if (lag < LIVE_TARGET_S + 0.05 && video.playbackRate !== 1) {
        video.playbackRate = 1;
      }
    }
    for (const f of this.feeders.values()) f.trim(video.currentTime, 20);
  }

  // ---------------------------------------------------------------- live

  private async liveTarget(id: string, opts: PlayOptions): Promise<{ info: PlaybackInfo | undefined; relayUrl: string; namespace: string }> {
    const { ctx } = this;
    let info: PlaybackInfo | undefined;
    let relayUrl = ctx.relayUrl;
    let namespace = opts.namespace ?? (ctx.orgId !== undefined ? `stream/${ctx.orgId}/${id}` : undefined) ?? namespaceFromToken(ctx.token, id);
    if (relayUrl === undefined || namespace === undefined) {
      info = await resolvePlayback(ctx.apiBase, id, ctx.token, ctx.fetch);
      relayUrl = relayUrl ?? info.relayUrl;
      namespace = namespace ?? info.namespace;
    }
    if (relayUrl === undefined) throw new StreamsError("invalid_argument", "no relay URL: pass relayUrl or a token the playback API resolves");
    if (namespace === undefined) throw new StreamsError("invalid_argument", `cannot tell the namespace of ${id}: pass orgId, a token with an org claim, or play(id, { namespace })`);
    return { info, relayUrl, namespace };
  }

  private sessionOptions(relayUrl: string, info: PlaybackInfo | undefined): SessionOptions {
    return {
      ...this.ctx.session,
      url: relayUrl,
      ...(this.ctx.token !== undefined ? { token: this.ctx.token } : {}),
      ...(info?.certificateSha256 !== undefined ? { certificateSha256: info.certificateSha256 } : {}),
    };
  }

  /** Keep `sub` to close on stop (and forget the ones already over). */
  private keepSub(sub: Subscription): void {
    this.subs = this.subs.filter((s) => !s.closed);
    this.subs.push(sub);
  }

  private token(): { token?: string } {
    return this.ctx.token !== undefined ? { token: this.ctx.token } : {};
  }

  private async playLive(id: string, opts: PlayOptions, gen: number): Promise<void> {
    const { info, relayUrl, namespace } = await this.liveTarget(id, opts);
    const ns = namespaceFromString(namespace);
    // The MediaSource opens while the session connects (it only needs the element).
    const msReady = this.openMediaSource();
    msReady.catch(() => undefined);
    const sessionOpts = this.sessionOptions(relayUrl, info);
    const session = await MoqtSession.connect(sessionOpts);
    if (gen !== this.generation) {
      session.close(0, "superseded");
      return;
    }
    const live: LiveState = {
      gen, id, opts, ns, sessionOpts, resolved: info !== undefined, catalog: undefined, video: [], audio: [], lanes: new Map(), migrating: false, timer: undefined,
    };
    this.live = live;
    this.adoptSession(session, gen);

    await this.openCatalog(session, live, performance.now() + 15_000);
    // A catalog written between the video and the audio configuration lists one of them: wait
    // briefly for the other (SourceBuffers cannot be added once media has started).
    const deadline = performance.now() + 1500;
    while ((live.video.length === 0 || live.audio.length === 0) && performance.now() < deadline && gen === this.generation) await sleep(100);
    if (gen !== this.generation) return;
    if (live.video.length === 0 && live.audio.length === 0) throw new StreamsError("not_supported", "no playable track in the catalog");

    const ms = await msReady;
    this.watchStart(gen);
    live.timer = setInterval(() => {
      if (gen === this.generation) this.keepLive();
    }, 250);
    const lanes: Array<Promise<void>> = [];
    for (const role of ["video", "audio"] as const) {
      const list = role === "video" ? live.video : live.audio;
      if (list.length > 0) lanes.push(this.startLane(live, role, session, ms));
    }
    await Promise.race([
      Promise.all(lanes),
      session.closed.then((e) => {
        if (session.goAway === undefined) throw e;
        return new Promise<void>(() => undefined); // moving sessions: the new one resolves the lanes
      }),
    ]);
  }

  /** Make `session` the current one: GOAWAY moves to a new session; any other close is an error. */
  private adoptSession(session: MoqtSession, gen: number): void {
    this.session = session;
    session.onGoAway = () => void this.migrate(gen);
    void session.closed.then((e) => {
      if (gen !== this.generation || this.stopped || this.session !== session) return;
      if (this.live?.migrating === true) return; // being replaced
      if (session.goAway !== undefined) void this.migrate(gen); // (a GOAWAY seen before adoption)
      else this.error(gen, e);
    });
    if (session.goAway !== undefined) void this.migrate(gen);
  }

  private setCatalog(live: LiveState, c: Catalog): void {
    live.catalog = c;
    this.info.catalogs++;
    const r = pickRenditions(c, (t) => typeof MediaSource !== "undefined" && MediaSource.isTypeSupported(mseType(t)));
    live.video = r.video;
    live.audio = r.audio;
    const groupMs = c.tracks.find((t) => t.maxGroupDuration !== undefined)?.maxGroupDuration;
    if (groupMs !== undefined) this.groupDurationS = groupMs / 1000;
  }

  /**
   * Subscribe `.catalog` (retrying while the broadcast does not exist yet, until `deadline`),
   * resolve with the first catalog, and keep applying the following ones (each catalog group's
   * object 0 is a full catalog).
   */
  private async openCatalog(session: MoqtSession, live: LiveState, deadline: number): Promise<Catalog> {
    const gen = live.gen;
    let sub: Subscription;
    for (;;) {
      try {
        sub = await session.subscribe(live.ns, CATALOG_TRACK, { join: "current", priority: 0, ...this.token() });
        break;
      } catch (e) {
        // The broadcast may not have started yet: retry DOES_NOT_EXIST for a while.
        if (e instanceof RequestError && e.errorCode === BigInt(RequestErrorCode.DOES_NOT_EXIST) && performance.now() < deadline && gen === this.generation) {
          await sleep(500);
          continue;
        }
        throw e;
      }
    }
    this.keepSub(sub);
    return new Promise<Catalog>((resolve, reject) => {
      let first = true;
      void (async () => {
        try {
          for await (const o of sub) {
            if (gen !== this.generation || this.session !== session) {
              sub.close();
              break;
            }
            if (o.objectId !== 0n) continue; // later objects of a group are deltas (not used)
            let c: Catalog;
            try {
              c = parseCatalog(o.payload);
            } catch (e) {
              if (first) throw e;
              continue; // keep playing what the previous catalog described
            }
            if (first) {
              first = false;
              this.setCatalog(live, c);
              this.options.onCatalog?.(c);
              resolve(c);
            } else {
              this.catalogUpdate(live, c);
            }
          }
          if (first) reject(new StreamsError("media_error", "catalog track ended without a catalog"));
        } catch (e) {
          if (first) reject(e);
          else this.sessionError(session, gen, e);
        }
      })();
    });
  }

  /** A new catalog: follow renditions that appear, leave those that went, re-init changed ones. */
  private catalogUpdate(live: LiveState, c: Catalog): void {
    this.setCatalog(live, c);
    this.options.onCatalog?.(c);
    for (const lane of live.lanes.values()) {
      const list = lane.role === "video" ? live.video : live.audio;
      const p = lane.pending;
      if (p !== undefined && !list.some((t) => t.name === p.track.name)) {
        lane.pending = undefined;
        p.sub.close();
      }
      const same = list.find((t) => t.name === lane.current.name);
      if (lane.active === undefined) {
        // No subscription (the catalog after a reconnect did not list this media type yet).
        if (list.length > 0) void this.resumeLane(live, lane);
      } else if (same === undefined) {
        // The playing rendition went (e.g. the transcoder died): move to what is left now.
        lane.activeGone = true;
        const next = this.target(lane);
        if (next !== undefined && lane.pending === undefined) void this.beginSwitch(live, lane, next);
      } else if (same.initData !== lane.current.initData && same.initData !== undefined) {
        // Same track, new configuration (an encoder reconnected with other settings).
        lane.current = same;
        this.enqueue(lane, () => this.appendInit(lane, same));
      }
    }
  }

  private enqueue(lane: Lane, f: () => Promise<void>): void {
    const gen = this.generation;
    lane.chain = lane.chain.then(f).catch((e) => this.error(gen, e));
  }

  private async appendInit(lane: Lane, t: CatalogTrack): Promise<void> {
    if (t.initData === undefined) throw new StreamsError("media_error", `track ${t.name} has no initData`);
    lane.feeder.changeType(mseType(t));
    await lane.feeder.append(base64Decode(t.initData));
  }

  /** Rendition choice for a lane now: pinned, else ABR within the bitrate cap. */
  private target(lane: Lane): CatalogTrack | undefined {
    const live = this.live;
    if (live === undefined) return undefined;
    if (lane.role === "audio") {
      return live.audio.find((t) => t.name === lane.current.name) ?? live.audio[live.audio.length - 1];
    }
    const list = live.video;
    const lowest = list[0];
    if (lowest === undefined) return undefined;
    if (this.pinned !== undefined) {
      const p = list.find((t) => t.name === this.pinned);
      if (p !== undefined) return p;
    }
    const cap = this.cap;
    const allowed = cap === undefined ? list : list.filter((t) => (t.bitrate ?? 0) <= cap);
    const cands = allowed.length > 0 ? allowed : [lowest];
    const cur = lane.activeGone ? -1 : cands.findIndex((t) => t.name === lane.current.name);
    if (cur < 0) {
      // The playing rendition is gone or above the cap: the best allowed one at or below it.
      const below = cands.filter((t) => (t.bitrate ?? 0) <= (lane.current.bitrate ?? Infinity));
      return below[below.length - 1] ?? cands[0];
    }
    if (this.options.abr === false) return cands[cur];
    const video = this.video as HTMLVideoElement;
    const b = video.buffered;
    const ahead = b.length > 0 ? b.end(b.length - 1) - video.currentTime : 0;
    const stalled = performance.now() - this.lastStall < 2 * this.groupDurationS * 1000;
    return cands[chooseRendition(cands, cur, this.throughput.bitsPerSecond, ahead, this.groupDurationS, stalled && this.started)];
  }

  /** Pin or cap changed: act at once when the playing rendition must change. */
  private reconsider(): void {
    const live = this.live;
    const lane = live?.lanes.get("video");
    if (live === undefined || lane === undefined || lane.pending !== undefined) return;
    const next = this.target(lane);
    if (next !== undefined && next.name !== lane.current.name) void this.beginSwitch(live, lane, next);
  }

  /** Video lane at a group boundary of the playing rendition: ABR decision. */
  private considerSwitch(live: LiveState, lane: Lane): void {
    if (lane.pending !== undefined || lane.subscribing) return;
    const next = this.target(lane);
    if (next !== undefined && next.name !== lane.current.name) void this.beginSwitch(live, lane, next);
  }

  /**
   * Subscribe `track` next to the playing rendition. It takes over at a group boundary: the
   * first group of it that arrives after the playing rendition's newest group (both share group
   * ids: the ladder is keyframe-aligned with the source).
   */
  private async beginSwitch(live: LiveState, lane: Lane, track: CatalogTrack): Promise<void> {
    if (lane.subscribing || lane.pending !== undefined) return;
    const session = lane.session;
    if (session.goAway !== undefined || session.isClosed) return;
    const epoch = lane.epoch;
    lane.subscribing = true;
    try {
      // A rendition that is gone needs data now: from the current group (overlaps replace).
      const sub = await session.subscribe(live.ns, track.name, { join: lane.activeGone ? "current" : "next", priority: lane.role === "video" ? 2 : 1, ...this.token() });
      if (live.gen !== this.generation || lane.epoch !== epoch || lane.pending !== undefined) {
        sub.close();
        return;
      }
      this.keepSub(sub);
      lane.pending = { sub, track, switchAt: undefined, buffered: [] };
      void this.pump(live, lane, sub, epoch);
    } catch {
      // Not there (yet): stay on the playing rendition; the next boundary tries again.
    } finally {
      lane.subscribing = false;
    }
  }

  /** Create (or reuse) the lane of `role` and subscribe its first rendition. Resolves at the first append. */
  private async startLane(live: LiveState, role: Role, session: MoqtSession, ms: MediaSource): Promise<void> {
    const list = role === "video" ? live.video : live.audio;
    const first =
      role === "video"
        ? ((this.pinned !== undefined ? list.find((t) => t.name === this.pinned) : undefined) ??
          (this.cap !== undefined ? [...list].reverse().find((t) => (t.bitrate ?? 0) <= (this.cap ?? 0)) : undefined) ??
          list[initialRendition(list)])
        : list[list.length - 1];
    if (first === undefined) return;
    // One SourceBuffer per media type for the life of the MediaSource (Chromium refuses new ones
    // once media has started): a lane restarted after GOAWAY keeps feeding the same one.
    let feeder = this.feeders.get(role);
    if (feeder === undefined) {
      feeder = new Feeder(ms.addSourceBuffer(mseType(first)), mseType(first));
      this.feeders.set(role, feeder);
    }
    let resolveFirst!: () => void;
    const firstData = new Promise<void>((r) => (resolveFirst = r));
    const lane: Lane = {
      role, feeder, session, current: first, active: undefined, activeLast: undefined, activeGone: false, pending: undefined, subscribing: false, epoch: 0, chain: Promise.resolve(), firstData: () => resolveFirst(),
    };
    live.lanes.set(role, lane);
    await this.subscribeActive(live, lane, first);
    await firstData;
  }

  private async subscribeActive(live: LiveState, lane: Lane, track: CatalogTrack): Promise<void> {
    const epoch = lane.epoch;
    const sub = await lane.session.subscribe(live.ns, track.name, { join: "current", priority: lane.role === "video" ? 2 : 1, ...this.token() });
    if (lane.epoch !== epoch || live.gen !== this.generation) {
      sub.close();
      return;
    }
    this.keepSub(sub);
    lane.active = sub;
    lane.current = track;
    lane.activeLast = undefined;
    lane.activeGone = false;
    if (lane.role === "video") this.info.joinGroup ??= sub.largest?.group;
    this.enqueue(lane, async () => {
      await this.appendInit(lane, track);
      this.noteRendition(lane, track);
    });
    void this.pump(live, lane, sub, epoch);
  }

  private noteRendition(lane: Lane, t: CatalogTrack): void {
    if (lane.role === "video") this.info.video = t.name;
    else this.info.audio = t.name;
    this.options.onRendition?.(t, lane.role);
  }

  private async pump(live: LiveState, lane: Lane, sub: Subscription, epoch: number): Promise<void> {
    const session = lane.session;
    try {
      for await (const o of sub) {
        if (live.gen !== this.generation || lane.epoch !== epoch) {
          sub.close();
          return;
        }
        if (sub === lane.active) this.onActiveObject(live, lane, o);
        else if (lane.pending?.sub === sub) this.onPendingObject(live, lane, o);
        else {
          sub.close(); // replaced
          return;
        }
      }
      // The subscription ended (PUBLISH_DONE, or the track went): a pending switch takes over.
      if (sub === lane.active && lane.epoch === epoch) {
        lane.activeGone = true;
        if (lane.pending !== undefined && lane.pending.buffered.length > 0) this.switchNow(live, lane);
      }
    } catch (e) {
      this.sessionError(session, live.gen, e);
    }
  }

  private onActiveObject(live: LiveState, lane: Lane, o: TrackObject): void {
    const p = lane.pending;
    if (p !== undefined && p.switchAt !== undefined && o.groupId >= p.switchAt) {
      // The new rendition covers this group: switch, drop this object.
      this.switchNow(live, lane);
      return;
    }
    this.throughput.sample(o.payload.length, o.transferMs);
    this.info.objects++;
    this.info.bytes += o.payload.length;
    const isVideo = lane.role === "video";
    if (isVideo) {
      if (this.info.firstGroup === undefined) {
        this.info.firstGroup = o.groupId;
        this.info.firstObject = o.objectId;
      }
      this.info.lastGroup = o.groupId;
    }
    const newGroup = lane.activeLast !== o.groupId;
    lane.activeLast = o.groupId;
    const feeder = lane.feeder;
    this.enqueue(lane, async () => {
      await feeder.append(o.payload);
      lane.firstData();
      this.keepLive();
    });
    if (isVideo && newGroup && o.objectId === 0n) this.considerSwitch(live, lane);
  }

  private onPendingObject(live: LiveState, lane: Lane, o: TrackObject): void {
    const p = lane.pending as PendingSwitch;
    if (p.switchAt === undefined) {
      const first = o.objectId === 0n ? o.groupId : o.groupId + 1n;
      const after = lane.activeGone || lane.activeLast === undefined ? first : lane.activeLast + 1n;
      p.switchAt = first > after ? first : after;
    }
    if (o.groupId < p.switchAt) return;
    p.buffered.push(o);
    // The playing rendition stopped (gone from the catalog, or stalled two groups behind).
    if (lane.activeGone || o.groupId > p.switchAt + 1n) this.switchNow(live, lane);
  }

  private switchNow(live: LiveState, lane: Lane): void {
    const p = lane.pending;
    if (p === undefined) return;
    lane.pending = undefined;
    const old = lane.active;
    lane.active = p.sub;
    old?.close();
    lane.current = p.track;
    lane.activeGone = false;
    lane.activeLast = undefined;
    if (lane.role === "video") this.info.switches++;
    const track = p.track;
    this.enqueue(lane, async () => {
      await this.appendInit(lane, track);
      this.noteRendition(lane, track);
    });
    for (const o of p.buffered) this.onActiveObject(live, lane, o);
  }

  /**
   * GOAWAY: open a new session (New Session URI, else the same URL; retried with back-off while
   * no relay answers or the broadcast is not there yet, up to `reconnectTimeoutMs`), read the
   * catalog there and restart every lane on it, then close the old session. The SourceBuffers
   * are emptied first: a restarted relay's broadcast may begin a new timeline.
   */
  private async migrate(gen: number): Promise<void> {
    const live = this.live;
    if (live === undefined || live.gen !== gen || live.migrating) return;
    live.migrating = true;
    this.info.migrations++;
    const old = this.session;
    const deadline = performance.now() + (this.options.reconnectTimeoutMs ?? 30_000);
    let delay = 250;
    let lastError: unknown;
    try {
      while (gen === this.generation) {
        let fresh: MoqtSession | undefined;
        try {
          if (live.resolved) {
            // The relay URL and its certificate hash came from the playback API: ask again.
            const info = await resolvePlayback(this.ctx.apiBase, live.id, this.ctx.token, this.ctx.fetch);
            live.sessionOpts = this.sessionOptions(this.ctx.relayUrl ?? info.relayUrl ?? live.sessionOpts.url, info);
          }
          fresh = await MoqtSession.reconnect(live.sessionOpts, old?.goAway);
          if (gen !== this.generation) {
            fresh.close(0, "superseded");
            return;
          }
          const goingAway = () => {
            if (fresh?.goAway !== undefined) throw new StreamsError("goaway", "the new session is going away too");
          };
          goingAway();
          this.session = fresh;
          await this.openCatalog(fresh, live, deadline);
          goingAway();
          for (const lane of live.lanes.values()) await this.restartLane(live, lane, fresh);
          live.migrating = false;
          this.adoptSession(fresh, gen);
          old?.close(0, "migrated");
          return;
        } catch (e) {
          lastError = e;
          if (fresh !== undefined && this.session === fresh) this.session = old;
          fresh?.close(0, "reconnect failed");
          const code = toStreamsError(e).code;
          if (code === "auth_failed" || performance.now() + delay > deadline) break;
          await sleep(delay);
          delay = Math.min(2 * delay, 2000);
        }
      }
      if (gen !== this.generation) return;
      live.migrating = false;
      this.error(gen, lastError ?? new StreamsError("goaway", "relay went away"));
    } finally {
      if (this.live === live && live.migrating && gen !== this.generation) live.migrating = false;
    }
  }

  /** Subscribe a lane that has no subscription to its rendition now listed in the catalog. */
  private async resumeLane(live: LiveState, lane: Lane): Promise<void> {
    if (lane.subscribing || lane.active !== undefined) return;
    const list = lane.role === "video" ? live.video : live.audio;
    const track = list.find((t) => t.name === lane.current.name) ?? (lane.role === "video" ? list[initialRendition(list)] : list[list.length - 1]);
    if (track === undefined) return;
    lane.subscribing = true;
    try {
      await this.subscribeActive(live, lane, track);
    } catch (e) {
      this.sessionError(lane.session, live.gen, e);
    } finally {
      lane.subscribing = false;
    }
  }

  private async restartLane(live: LiveState, lane: Lane, session: MoqtSession): Promise<void> {
    lane.epoch++;
    lane.pending?.sub.close();
    lane.pending = undefined;
    lane.active?.close();
    lane.active = undefined;
    lane.session = session;
    lane.activeGone = false;
    const list = lane.role === "video" ? live.video : live.audio;
    const track = list.find((t) => t.name === lane.current.name) ?? (lane.role === "video" ? list[initialRendition(list)] : list[list.length - 1]);
    const feeder = lane.feeder;
    this.enqueue(lane, () => feeder.clear());
    if (track === undefined) return; // resumed by the catalog update that lists it
    await this.subscribeActive(live, lane, track);
  }

  // ---------------------------------------------------------------- VOD

  private async playVod(id: string, gen: number): Promise<void> {
    const info = await resolvePlayback(this.ctx.apiBase, id, this.ctx.token, this.ctx.fetch);
    if (info.catalogUrl === undefined) throw new StreamsError("api_error", `playback ${id} has no catalogUrl`);
    const catalogUrl = info.catalogUrl;
    const res = await this.ctx.fetch(catalogUrl);
    if (!res.ok) throw new StreamsError(res.status === 401 || res.status === 403 ? "auth_failed" : "network", `GET ${catalogUrl}: HTTP ${res.status}`);
    const catalog = parseCatalog(new Uint8Array(await res.arrayBuffer()));
    const r = pickRenditions(catalog, (t) => MediaSource.isTypeSupported(mseType(t)));
    const chosen = [r.video[initialRendition(r.video)], r.audio[r.audio.length - 1]].filter((t): t is CatalogTrack => t !== undefined);
    if (chosen.length === 0) throw new StreamsError("not_supported", "no playable track in the catalog");
    const ms = await this.openMediaSource();
    this.watchStart(gen);
    const duration = Math.max(...catalog.tracks.map((t) => t.trackDuration ?? 0));
    if (duration > 0) ms.duration = duration / 1000;
    // Every lane reports when its first segment is buffered (then playback starts) and when it
    // reached the end of its track (all at the end: endOfStream; a seek back reopens it).
    const atEnd = new Set<number>();
    const primed: Promise<void>[] = [];
    const lanes = chosen.map((t, i) => {
      let ready: () => void = () => undefined;
      primed.push(new Promise<void>((r) => (ready = r)));
      const feeder = new Feeder(ms.addSourceBuffer(mseType(t)), mseType(t));
      return this.vodLane(catalogUrl, t, feeder, gen, {
        primed: () => ready(),
        end: (ended) => {
          if (ended) atEnd.add(i);
          else atEnd.delete(i);
          if (ended && atEnd.size === chosen.length && gen === this.generation && ms.readyState === "open") {
            try {
              ms.endOfStream();
            } catch {
              // A SourceBuffer is still updating (a trim): the element plays to the end anyway.
            }
          }
          if (ended) ready();
        },
      });
    });
    // Before playback starts a lane's failure rejects play(); later ones go to onError.
    let playing = false;
    for (const lane of lanes) lane.catch((e: unknown) => playing && this.error(gen, e));
    await Promise.race([Promise.all(primed), Promise.all(lanes)]);
    playing = true;
    startPlayback(this.video as HTMLVideoElement);
  }

  /**
   * Fetch init + segments of one track in order, staying at most 30 s ahead of playback. A seek
   * to a time that is not buffered restarts the lane at the segment holding it (from the
   * catalog's segment timing), so seeking into a long asset doesn't wait for everything before.
   */
  private async vodLane(
    catalogUrl: string,
    t: CatalogTrack,
    feeder: Feeder,
    gen: number,
    report: { primed: () => void; end: (atEnd: boolean) => void },
  ): Promise<void> {
    const video = this.video as HTMLVideoElement;
    if (t.initData !== undefined) await feeder.append(base64Decode(t.initData));
    else await feeder.append(await this.getBytes(vodSegmentUrl(catalogUrl, t, "init")) ?? new Uint8Array());
    let next = 0;
    let jumpTo: number | undefined;
    const buffered = (at: number) => {
      const b = feeder.sb.buffered;
      for (let k = 0; k < b.length; k++) if (at >= b.start(k) && at < b.end(k)) return true;
      return false;
    };
    const onSeeking = () => {
      if (!buffered(video.currentTime)) jumpTo = vodSegmentAt(t, video.currentTime);
    };
    video.addEventListener("seeking", onSeeking);
    try {
      for (;;) {
        if (gen !== this.generation) return;
        const b = feeder.sb.buffered;
        while (jumpTo === undefined && b.length > 0 && b.end(b.length - 1) - video.currentTime > 30 && gen === this.generation) {
          await new Promise((r) => setTimeout(r, 500));
        }
        if (jumpTo !== undefined) {
          next = jumpTo;
          jumpTo = undefined;
        }
        const seg = await this.getBytes(vodSegmentUrl(catalogUrl, t, next));
        if (seg === undefined) {
          // The end of the track; a later seek back into unbuffered time resumes the lane.
          report.end(true);
          while (jumpTo === undefined && gen === this.generation) await new Promise((r) => setTimeout(r, 250));
          report.end(false);
          continue;
        }
        next += 1;
        await feeder.append(seg);
        report.primed();
        feeder.trim(video.currentTime, 60);
      }
    } finally {
      video.removeEventListener("seeking", onSeeking);
    }
  }

  private async getBytes(url: string): Promise<Uint8Array | undefined> {
    const res = await this.ctx.fetch(url);
    if (res.status === 404) return undefined;
    if (!res.ok) throw new StreamsError(res.status === 401 || res.status === 403 ? "auth_failed" : "network", `GET ${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}

/** Start with the highest rendition at or below ~3 Mbit/s (fast start, decent quality). */
export function initialRendition(renditions: readonly CatalogTrack[]): number {
  let best = 0;
  renditions.forEach((t, i) => {
    if ((t.bitrate ?? 0) <= 3_000_000) best = i;
  });
  return best;
}

/**
 * `video.play()`; when the browser's autoplay policy refuses sound without a user gesture, play
 * muted instead (the page can offer an unmute button: `volumechange` fires).
 */
function startPlayback(video: HTMLVideoElement): void {
  video.play().catch((e: unknown) => {
    if (e instanceof DOMException && e.name === "NotAllowedError" && !video.muted) {
      video.muted = true;
      video.play().catch(() => undefined);
    }
  });
}
