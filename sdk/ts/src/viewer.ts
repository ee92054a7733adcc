/**
 * Browser viewer: `lv_…` over MoQT, `pb_…` over HTTPS, both into Media Source Extensions.
 *
 * Live: subscribe `.catalog` in `stream/<org>/<lv_id>` (Largest Object filter + Joining FETCH,
 * so the newest complete catalog arrives at once), pick video+audio renditions, subscribe them
 * from the start of the current group, append init segments then objects (one SourceBuffer per
 * media type, mode "segments"), hold the live edge, and switch renditions of one altGroup at
 * group boundaries (ABR).
 */
import { StreamsError } from "./errors.js";
import { CATALOG_TRACK, type Catalog, type CatalogTrack, base64Decode, mseType, parseCatalog, pickRenditions } from "./media/catalog.js";
import { MoqtSession, type SessionOptions, type Subscription, type TrackObject } from "./moqt/session.js";
import { type Namespace, namespaceFromString } from "./moqt/wire.js";
import { toStreamsError } from "./publisher.js";
import { type PlaybackInfo, namespaceFromToken, playbackKind, resolvePlayback, vodSegmentUrl } from "./playback.js";
import { RequestError, RequestErrorCode } from "./errors.js";

export interface ViewerOptions {
  /** Called once, when the first frame is shown. */
  readonly onStarted?: () => void;
  /** Playback errors; `error.code === "auth_failed"` on a bad or expired token. */
  readonly onError?: (error: StreamsError) => void;
  /** Enable ABR across renditions of one altGroup. Default true. */
  readonly abr?: boolean;
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

/** Serializes appends to one SourceBuffer. */
class Feeder {
  private queue: Array<{ bytes: Uint8Array; resolve: () => void; reject: (e: unknown) => void }> = [];
  private busy = false;
  constructor(
    readonly sb: SourceBuffer,
    private type = "",
  ) {
    sb.mode = "segments";
  }

  append(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes, resolve, reject });
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
    if (this.busy || this.sb.updating) return;
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
    try {
      this.sb.appendBuffer(item.bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      if (e instanceof DOMException && e.name === "QuotaExceededError") {
        // drop this chunk; the trimming below frees space for the next ones
        done();
        return;
      }
      done(new StreamsError("media_error", `appendBuffer: ${String(e)}`, { cause: e }));
    }
  }

  /** Remove media older than `keepSeconds` behind `time`. */
  trim(time: number, keepSeconds: number): void {
    if (this.sb.updating || this.sb.buffered.length === 0) return;
    const start = this.sb.buffered.start(0);
    if (time - keepSeconds > start + 1) {
      try {
        this.sb.remove(start, time - keepSeconds);
      } catch {
        /* busy */
      }
    }
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
 * when throughput > 1.6× the next bitrate and the buffer holds at least half a group.
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
  if (up !== undefined && throughputBps !== undefined && throughputBps > (up.bitrate ?? 0) * 1.6 && bufferAheadS >= groupDurationS / 2) {
    return current + 1;
  }
  return current;
}

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
  private feeders = new Map<"video" | "audio", Feeder>();
  private info: { joinGroup: bigint | undefined; firstGroup: bigint | undefined; firstObject: bigint | undefined; lastGroup: bigint | undefined; objects: number; bytes: number; video: string | undefined; audio: string | undefined; migrations: number } = {
    joinGroup: undefined, firstObject: undefined, firstGroup: undefined, lastGroup: undefined, objects: 0, bytes: 0, video: undefined, audio: undefined, migrations: 0,
  };

  constructor(
    private readonly ctx: ViewerContext,
    private readonly options: ViewerOptions = {},
  ) {}

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
    this.info = { joinGroup: undefined, firstObject: undefined, firstGroup: undefined, lastGroup: undefined, objects: 0, bytes: 0, video: undefined, audio: undefined, migrations: 0 };
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
   * bytes received, the chosen rendition track names and how often it moved sessions (GOAWAY).
   */
  get stats(): { joinGroup: bigint | undefined; firstGroup: bigint | undefined; firstObject: bigint | undefined; lastGroup: bigint | undefined; objects: number; bytes: number; video: string | undefined; audio: string | undefined; migrations: number; throughputBps: number | undefined } {
    return { ...this.info, throughputBps: this.throughput.bitsPerSecond };
  }

  /** Stop playback and release the session and the MediaSource. */
  stop(): void {
    this.stopped = true;
    this.generation++;
    this.teardown();
  }

  private teardown(): void {
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
   * video, back to 1× within 0.05 s of the target, and seek when far behind (after a stall or a
   * background tab). Measured on loopback (bench/glass-to-glass): a wider band (+0.2 s) left
   * ~0.3 s of buffer; a tighter target (0.1 s) ran the element dry (stall, rebuffer).
   */
  private keepLive(feeder: Feeder): void {
    const video = this.video as HTMLVideoElement;
    const b = feeder.sb.buffered;
    if (b.length === 0) return;
    const end = b.end(b.length - 1);
    if (video.currentTime < b.start(0) || (video.currentTime === 0 && !this.started)) {
      video.currentTime = b.start(b.length - 1);
      startPlayback(video);
    } else {
      const lag = end - video.currentTime;
      if (lag > Math.max(3, 2 * this.groupDurationS)) {
        video.currentTime = Math.max(b.start(b.length - 1), end - LIVE_TARGET_S);
      } else if (lag > LIVE_TARGET_S + 0.1) {
        if (video.playbackRate !== CATCH_UP_RATE) video.playbackRate = CATCH_UP_RATE;
      } else if (lag < LIVE_TARGET_S + 0.05 && video.playbackRate !== 1) {
        video.playbackRate = 1;
      }
    }
    feeder.trim(video.currentTime, 20);
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

  private async playLive(id: string, opts: PlayOptions, gen: number): Promise<void> {
    const { info, relayUrl, namespace } = await this.liveTarget(id, opts);
    const ns = namespaceFromString(namespace);
    // The MediaSource opens while the session connects (it only needs the element).
    const msReady = this.openMediaSource();
    msReady.catch(() => undefined);
    const sessionOpts: SessionOptions = {
      ...this.ctx.session,
      url: relayUrl,
      ...(this.ctx.token !== undefined ? { token: this.ctx.token } : {}),
      ...(info?.certificateSha256 !== undefined ? { certificateSha256: info.certificateSha256 } : {}),
    };
    const session = await MoqtSession.connect(sessionOpts);
    if (gen !== this.generation) {
      session.close(0, "superseded");
      return;
    }
    this.session = session;
    void session.closed.then((e) => {
      if (this.session === session) this.error(gen, e);
    });
    session.onGoAway = () => void this.migrate(sessionOpts, ns, gen);

    const catalog = await this.fetchLiveCatalog(session, ns);
    const canPlay = (t: CatalogTrack) => typeof MediaSource !== "undefined" && MediaSource.isTypeSupported(mseType(t));
    const r = pickRenditions(catalog, canPlay);
    if (r.video.length === 0 && r.audio.length === 0) throw new StreamsError("not_supported", "no playable track in the catalog");
    const groupMs = catalog.tracks.find((t) => t.maxGroupDuration !== undefined)?.maxGroupDuration;
    if (groupMs !== undefined) this.groupDurationS = groupMs / 1000;

    const ms = await msReady;
    this.watchStart(gen);
    const lanes: Array<Promise<void>> = [];
    if (r.video.length > 0) lanes.push(this.liveLane(session, ns, r.video, ms, gen, true));
    if (r.audio.length > 0) lanes.push(this.liveLane(session, ns, r.audio, ms, gen, false));
    await Promise.all(lanes);
  }

  private async fetchLiveCatalog(session: MoqtSession, ns: Namespace): Promise<Catalog> {
    const deadline = performance.now() + 15_000;
    for (;;) {
      try {
        const sub = await session.subscribe(ns, CATALOG_TRACK, { join: "current", priority: 0, ...(this.ctx.token !== undefined ? { token: this.ctx.token } : {}) });
        this.subs.push(sub);
        for await (const o of sub) {
          // Object 0 of a catalog group is a full catalog; later objects are deltas (ignored).
          if (o.objectId === 0n) {
            const c = parseCatalog(o.payload);
            sub.close();
            return c;
          }
        }
        throw new StreamsError("media_error", "catalog track ended without a catalog");
      } catch (e) {
        // The broadcast may not have started yet: retry DOES_NOT_EXIST for a while.
        if (e instanceof RequestError && e.errorCode === BigInt(RequestErrorCode.DOES_NOT_EXIST) && performance.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        throw e;
      }
    }
  }

  /** One media type: subscribe a rendition, feed MSE, switch renditions at group boundaries. */
  private async liveLane(session: MoqtSession, ns: Namespace, renditions: readonly CatalogTrack[], ms: MediaSource, gen: number, isVideo: boolean): Promise<void> {
    let index = isVideo ? initialRendition(renditions) : renditions.length - 1;
    let current = renditions[index] as CatalogTrack;
    const note = (t: CatalogTrack) => {
      if (isVideo) this.info.video = t.name;
      else this.info.audio = t.name;
    };
    note(current);
    // One SourceBuffer per media type for the life of the MediaSource (Chromium refuses new ones
    // once media has started): a lane restarted after GOAWAY keeps feeding the same one.
    const role = isVideo ? "video" : "audio";
    const existing = this.feeders.get(role);
    if (existing !== undefined) existing.changeType(mseType(current));
    const feeder = existing ?? new Feeder(ms.addSourceBuffer(mseType(current)), mseType(current));
    this.feeders.set(role, feeder);
    const token = this.ctx.token !== undefined ? { token: this.ctx.token } : {};
    const priority = isVideo ? 2 : 1;
    const lane: {
      active: Subscription;
      pending: { sub: Subscription; track: CatalogTrack; idx: number; firstGroup: bigint | undefined; buffered: Uint8Array[] } | undefined;
    } = { active: await session.subscribe(ns, current.name, { join: "current", priority, ...token }), pending: undefined };
    this.subs.push(lane.active);
    if (isVideo) this.info.joinGroup = lane.active.largest?.group;

    // Every MSE append goes through one promise chain, in order.
    let chain: Promise<void> = Promise.resolve();
    const enqueue = (f: () => Promise<void>) => {
      chain = chain.then(f).catch((e) => this.error(gen, e));
    };
    const appendInit = async (t: CatalogTrack) => {
      if (t.initData === undefined) throw new StreamsError("media_error", `track ${t.name} has no initData`);
      await feeder.append(base64Decode(t.initData));
    };
    enqueue(() => appendInit(current));

    let resolveFirst: (() => void) | undefined;
    const firstData = new Promise<void>((r) => (resolveFirst = r));
    let lastGroup: bigint | undefined;

    const switchNow = () => {
      const n = lane.pending;
      if (n === undefined) return;
      lane.pending = undefined;
      const old = lane.active;
      lane.active = n.sub;
      old.close();
      const buffered = n.buffered;
      n.buffered = [];
      const prevType = mseType(current);
      current = n.track;
      index = n.idx;
      note(current);
      const track = n.track;
      enqueue(async () => {
        if (mseType(track) !== prevType) feeder.changeType(mseType(track));
        await appendInit(track);
        for (const b of buffered) await feeder.append(b);
      });
    };

    const maybeSwitchRendition = async (o: TrackObject) => {
      if (!isVideo || o.objectId !== 0n || lastGroup === o.groupId) return;
      lastGroup = o.groupId;
      if (this.options.abr === false || lane.pending !== undefined) return;
      const video = this.video as HTMLVideoElement;
      const b = feeder.sb.buffered;
      const ahead = b.length > 0 ? b.end(b.length - 1) - video.currentTime : 0;
      const stalled = performance.now() - this.lastStall < 2 * this.groupDurationS * 1000;
      const want = chooseRendition(renditions, index, this.throughput.bitsPerSecond, ahead, this.groupDurationS, stalled);
      const track = renditions[want];
      if (want === index || track === undefined) return;
      // The new rendition starts at the next group; the old one plays until then.
      const sub = await session.subscribe(ns, track.name, { join: "next", priority, ...token });
      this.subs.push(sub);
      lane.pending = { sub, track, idx: want, firstGroup: undefined, buffered: [] };
      void pump(sub);
    };

    const pump = async (sub: Subscription) => {
      try {
        for await (const o of sub) {
          if (gen !== this.generation) return;
          if (sub === lane.active) {
            const p = lane.pending;
            if (p !== undefined && p.firstGroup !== undefined && o.groupId >= p.firstGroup) {
              switchNow();
              continue;
            }
            this.throughput.sample(o.payload.length, o.transferMs);
            this.info.objects++;
            this.info.bytes += o.payload.length;
            if (isVideo) {
              if (this.info.firstGroup === undefined) {
                this.info.firstGroup = o.groupId;
                this.info.firstObject = o.objectId;
              }
              this.info.lastGroup = o.groupId;
            }
            enqueue(async () => {
              await feeder.append(o.payload);
              resolveFirst?.();
              if (isVideo) this.keepLive(feeder);
            });
            await maybeSwitchRendition(o);
          } else if (lane.pending?.sub === sub) {
            if (lane.pending.firstGroup === undefined) lane.pending.firstGroup = o.groupId;
            lane.pending.buffered.push(o.payload);
          }
        }
        if (sub === lane.active && lane.pending !== undefined) switchNow();
      } catch (e) {
        this.error(gen, e);
      }
    };
    void pump(lane.active);
    await Promise.race([
      firstData,
      session.closed.then((e) => {
        throw e;
      }),
    ]);
  }

  /** GOAWAY: resubscribe on a fresh session; MSE (segments mode) absorbs the overlap. */
  private async migrate(sessionOpts: SessionOptions, ns: Namespace, gen: number): Promise<void> {
    const old = this.session;
    this.info.migrations++;
    try {
      const fresh = await MoqtSession.reconnect(sessionOpts, old?.goAway);
      if (gen !== this.generation) {
        fresh.close(0, "superseded");
        return;
      }
      const oldSubs = this.subs;
      this.subs = [];
      this.session = fresh;
      const catalog = await this.fetchLiveCatalog(fresh, ns);
      const r = pickRenditions(catalog, (t) => MediaSource.isTypeSupported(mseType(t)));
      const ms = this.mediaSource as MediaSource;
      void ms; // same MediaSource: new lanes reuse the existing SourceBuffers
      for (const s of oldSubs) s.close();
      old?.close(0, "migrated");
      // Simplest correct behaviour: restart playback lanes on the new session.
      await this.restartLanes(fresh, ns, r, gen);
    } catch (e) {
      this.error(gen, e);
    }
  }

  private async restartLanes(session: MoqtSession, ns: Namespace, r: ReturnType<typeof pickRenditions>, gen: number): Promise<void> {
    const ms = this.mediaSource;
    if (ms === undefined) return;
    // Same SourceBuffers (see liveLane): the new subscriptions start at the current group, which
    // the "segments" mode places by its own timestamps over or after what is buffered.
    const lanes: Array<Promise<void>> = [];
    if (r.video.length > 0) lanes.push(this.liveLane(session, ns, r.video, ms, gen, true));
    if (r.audio.length > 0) lanes.push(this.liveLane(session, ns, r.audio, ms, gen, false));
    await Promise.all(lanes);
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
    const lanes = chosen.map((t) => this.vodLane(catalogUrl, t, new Feeder(ms.addSourceBuffer(mseType(t)), mseType(t)), gen));
    let firstDone = false;
    await Promise.race(lanes.map((l) => l.then((first) => first)));
    void Promise.all(lanes).then(
      () => {
        if (gen === this.generation && ms.readyState === "open") ms.endOfStream();
      },
      (e) => this.error(gen, e),
    );
    firstDone = true;
    void firstDone;
    startPlayback(this.video as HTMLVideoElement);
  }

  /** Fetch init + segments of one track in order, staying at most 30 s ahead of playback. */
  private async vodLane(catalogUrl: string, t: CatalogTrack, feeder: Feeder, gen: number): Promise<void> {
    const video = this.video as HTMLVideoElement;
    if (t.initData !== undefined) await feeder.append(base64Decode(t.initData));
    else await feeder.append(await this.getBytes(vodSegmentUrl(catalogUrl, t, "init")) ?? new Uint8Array());
    for (let i = 0; ; i++) {
      if (gen !== this.generation) return;
      const b = feeder.sb.buffered;
      while (b.length > 0 && b.end(b.length - 1) - video.currentTime > 30 && gen === this.generation) {
        await new Promise((r) => setTimeout(r, 500));
      }
      const seg = await this.getBytes(vodSegmentUrl(catalogUrl, t, i));
      if (seg === undefined) return;
      await feeder.append(seg);
      feeder.trim(video.currentTime, 60);
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
