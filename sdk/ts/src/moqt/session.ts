/**
 * A MoQT draft-18 session over WebTransport.
 *
 * Wire layout (draft-18 §"Session initialization"): each peer opens one UNIDIRECTIONAL control
 * stream that starts with SETUP (whose type 0x2F00 is also the stream type); every request
 * (SUBSCRIBE, PUBLISH, PUBLISH_NAMESPACE, FETCH, TRACK_STATUS, …) travels on its OWN
 * BIDIRECTIONAL stream with its responses; objects travel on unidirectional SUBGROUP_HEADER /
 * FETCH_HEADER streams or datagrams. Client request IDs are even, starting at 0.
 *
 * Credentials go both in the connection URL (`?token=`) and in each request's AUTHORIZATION
 * TOKEN parameter (USE_VALUE, Token Type 0, UTF-8 bytes of the credential).
 */
import {
  DecodeError,
  RequestError,
  RequestErrorCode,
  SessionClosedError,
  SessionCode,
  StreamsError,
} from "../errors.js";
import { Writer } from "./buffer.js";
import {
  FETCH_HEADER_TYPE,
  FetchObjectDecoder,
  FetchObjectEncoder,
  type MoqObject,
  ObjectStatus,
  PADDING_STREAM_TYPE,
  type SubgroupHeader,
  decodeDatagram,
  encodeSubgroupHeader,
  encodeSubgroupObject,
  isSubgroupType,
  readSubgroupHeader,
  readSubgroupObject,
} from "./data.js";
import {
  CONTROL_STREAM_TYPE,
  type ControlMessage,
  type Fetch,
  type FetchOk,
  type GoAway,
  MessageType,
  type Publish,
  type PublishDone,
  type Subscribe,
  type SubscribeOk,
  decodeMessage,
  encodeMessage,
  setupOptions,
} from "./messages.js";
import { StreamReader } from "./reader.js";
import {
  type BidiStream,
  type CloseInfo,
  type ConnectOptions,
  type WebTransportFactory,
  type WebTransportLike,
  browserWebTransport,
  hexToBytes,
} from "./transport.js";
import {
  FilterType,
  type Location,
  type MessageParams,
  type Namespace,
  type SubscriptionFilter,
  bytesEqual,
  compareLocation,
  namespaceEquals,
  namespaceToString,
  useValueToken,
} from "./wire.js";

export const MOQT_PROTOCOL = "moqt-18";
export const IMPLEMENTATION = "clutchcall-sdk-ts/0.1";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface SessionOptions {
  /** https URL of the relay (a `moqt://` URL is converted to https). */
  readonly url: string;
  /** Credential (stream key or playback JWT): appended as `?token=` to the URL. */
  readonly token?: string;
  /** Hex SHA-256 of the relay's self-signed certificate (Chromium serverCertificateHashes). */
  readonly certificateSha256?: string;
  /**
   * Where to fetch the hex certificate hash when none is given: `"auto"` (default) tries, in
   * order, `<b>/certificate.sha256` for each of {@link certificateHashBases}, the page's own origin
   * and `http://<relay host>:<port>`, and connects without a hash when none answers (a relay
   * with a WebPKI certificate); a URL string fetches exactly that URL; `false` never fetches.
   */
  readonly certificateHashUrl?: string | "auto" | false;
  /** HTTP bases of the engine to ask first in `"auto"` mode (e.g. the control-plane base). */
  readonly certificateHashBases?: readonly string[];
  /** Milliseconds to wait for WebTransport + the peer's SETUP. Default 10000. */
  readonly connectTimeoutMs?: number;
  /** Injected transport (tests); default: the browser's WebTransport. */
  readonly transport?: WebTransportFactory;
  /** Injected fetch for the certificate hash (tests). */
  readonly fetch?: typeof fetch;
}

/** One object delivered to a subscriber, in group order. */
export interface TrackObject {
  readonly groupId: bigint;
  readonly objectId: bigint;
  readonly payload: Uint8Array;
  /** `performance.now()`-style timestamp (ms) when the object was complete. */
  readonly receivedAt: number;
  /** Milliseconds the object's bytes took to arrive (first to last byte), for throughput. */
  readonly transferMs: number;
}

export type JoinMode =
  /** Largest Object filter + relative Joining FETCH(0): start at the current group's first object. */
  | "current"
  /** Next Group Start filter: wait for the next group. */
  | "next";

export interface SubscribeOptions {
  readonly join?: JoinMode;
  /** SUBSCRIBER_PRIORITY (0 = highest). Default 128. */
  readonly priority?: number;
  /** Credential sent as AUTHORIZATION TOKEN. */
  readonly token?: string;
  /** RENDEZVOUS_TIMEOUT in ms: ask the relay to wait for a publisher. */
  readonly rendezvousTimeoutMs?: number;
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

function authParams(token: string | undefined): MessageParams {
  return token === undefined ? {} : { authorizationTokens: [useValueToken(token)] };
}

/** An async FIFO that ends with an optional error. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiters: Array<(r: IteratorResult<T>) => void> = [];
  private failers: Array<(e: unknown) => void> = [];
  private ended = false;
  private error: unknown;

  push(item: T): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    this.failers.shift();
    if (w !== undefined) w({ value: item, done: false });
    else this.items.push(item);
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    const waiters = this.waiters;
    const failers = this.failers;
    this.waiters = [];
    this.failers = [];
    waiters.forEach((w, i) => {
      if (error !== undefined) failers[i]?.(error);
      else w({ value: undefined, done: true });
    });
  }

  get isEnded(): boolean {
    return this.ended;
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.ended) {
      return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiters.push(resolve);
      this.failers.push(reject);
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}

/** A request's bidirectional stream: framed control messages in both directions. */
class RequestStream {
  readonly reader: StreamReader;
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private closed = false;

  constructor(readonly stream: BidiStream) {
    this.reader = StreamReader.from(stream.readable);
    this.writer = stream.writable.getWriter();
  }

  async send(m: ControlMessage): Promise<void> {
    await this.writer.write(encodeMessage(m));
  }

  /** Next message, or undefined at FIN. */
  async next(): Promise<ControlMessage | undefined> {
    const type = await this.reader.varintOrEnd("message type");
    if (type === undefined) return undefined;
    const len = await this.reader.u16("message length");
    const payload = await this.reader.bytes(len, "message payload");
    return decodeMessage(type, payload);
  }

  /** FIN our side. */
  async finish(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.writer.close();
    } catch {
      /* already reset */
    }
  }

  /** Cancel the request: reset our side and STOP_SENDING theirs. */
  cancel(): void {
    if (!this.closed) {
      this.closed = true;
      this.writer.abort(new Error("cancelled")).catch(() => undefined);
    }
    void this.reader.cancel("cancelled");
  }
}

// ====================================================================== subscriber side

/**
 * Puts objects from subgroup streams and an optional joining FETCH into group order, and makes
 * every delivered group start at its first object (a late joiner starts at a group boundary).
 */
export class GroupAssembler {
  private current: bigint | undefined;
  private joinGroup: bigint | undefined;
  private joinBuffer: TrackObject[] = [];
  private pending = new Map<bigint, TrackObject[]>();
  private openStreams = new Map<bigint, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** A group whose start we lost (failed joining FETCH): its objects are dropped. */
  private skip: bigint | undefined;

  constructor(
    private readonly out: (o: TrackObject) => void,
    /** How long a newer group waits for the current group's stream to finish. */
    private readonly holdMs = 300,
  ) {}

  /** A joining FETCH for `group` is in flight: its objects come first. */
  expectJoin(group: bigint): void {
    this.joinGroup = group;
    this.current = group;
  }

  streamOpened(group: bigint): void {
    this.openStreams.set(group, (this.openStreams.get(group) ?? 0) + 1);
  }

  streamClosed(group: bigint): void {
    const n = (this.openStreams.get(group) ?? 1) - 1;
    if (n <= 0) this.openStreams.delete(group);
    else this.openStreams.set(group, n);
    if (group === this.current && n <= 0 && this.joinGroup === undefined) this.advance();
  }

  onFetchObject(o: TrackObject): void {
    if (this.joinGroup === undefined || o.groupId !== this.joinGroup) return;
    this.out(o);
  }

  onFetchEnd(ok: boolean): void {
    if (this.joinGroup === undefined) return;
    const g = this.joinGroup;
    this.joinGroup = undefined;
    this.current = g;
    if (ok) for (const o of this.joinBuffer) this.out(o);
    else this.skip = g;
    this.joinBuffer = [];
    if (!ok || !this.openStreams.has(g)) this.advance();
  }

  onStreamObject(o: TrackObject): void {
    const g = o.groupId;
    if (g === this.skip) return;
    if (this.joinGroup !== undefined) {
      if (g === this.joinGroup) this.joinBuffer.push(o);
      else if (g > this.joinGroup) this.hold(o);
      return;
    }
    if (this.current === undefined) {
      if (o.objectId === 0n) {
        this.current = g;
        this.out(o);
      } else this.hold(o); // maybe a group start is still to come on this stream order
      return;
    }
    if (g === this.current) {
      this.out(o);
      return;
    }
    if (g < this.current) return; // late: that group is over for us
    this.hold(o);
    if (!this.openStreams.has(this.current) || this.current === this.skip) this.advance();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.advance();
      }, this.holdMs);
    }
  }

  private hold(o: TrackObject): void {
    const list = this.pending.get(o.groupId);
    if (list !== undefined) list.push(o);
    else if (o.objectId === 0n) this.pending.set(o.groupId, [o]);
    // objects of a group whose start we never saw are dropped
  }

  private advance(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    let next: bigint | undefined;
    for (const g of this.pending.keys()) {
      if ((this.current === undefined || g > this.current) && (next === undefined || g < next)) next = g;
    }
    for (const g of [...this.pending.keys()]) if (this.current !== undefined && g <= this.current && g !== next) this.pending.delete(g);
    if (next === undefined) return;
    const list = this.pending.get(next) ?? [];
    this.pending.delete(next);
    this.current = next;
    for (const o of list) this.out(o);
    if (!this.openStreams.has(next)) this.advance();
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

/** A live subscription: iterate it for objects in group order. */
export class Subscription implements AsyncIterable<TrackObject> {
  readonly queue = new AsyncQueue<TrackObject>();
  readonly assembler: GroupAssembler;
  trackAlias = 0n;
  /** Largest Location reported in SUBSCRIBE_OK (undefined when the track had no objects). */
  largest: Location | undefined;
  /** Resolves when the publisher sends PUBLISH_DONE or the subscription ends otherwise. */
  readonly done: Promise<PublishDone | undefined>;
  private resolveDone!: (d: PublishDone | undefined) => void;
  private readonly dataStreams = new Set<StreamReader>();
  closed = false;

  constructor(
    private readonly session: MoqtSession,
    readonly requestId: bigint,
    readonly namespace: Namespace,
    readonly name: Uint8Array,
    readonly request: RequestStream,
  ) {
    this.assembler = new GroupAssembler((o) => this.queue.push(o));
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  get trackName(): string {
    return decoder.decode(this.name);
  }

  [Symbol.asyncIterator](): AsyncIterator<TrackObject> {
    return this.queue[Symbol.asyncIterator]();
  }

  /** @internal */
  addDataStream(r: StreamReader): void {
    this.dataStreams.add(r);
  }
  /** @internal */
  removeDataStream(r: StreamReader): void {
    this.dataStreams.delete(r);
  }

  /** @internal */
  finish(done: PublishDone | undefined, error?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.assembler.dispose();
    this.queue.end(error);
    this.resolveDone(done);
    this.session.forgetSubscription(this);
  }

  /** Unsubscribe: STOP_SENDING on the request stream and on its data streams. */
  close(): void {
    if (this.closed) return;
    this.request.cancel();
    for (const r of this.dataStreams) void r.cancel("unsubscribed");
    this.finish(undefined);
  }
}

// ====================================================================== publisher side

/** One outgoing subgroup stream; bytes queue until the stream is open. */
class SinkStream {
  lastObject: bigint | undefined;
  private writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  private pending: Uint8Array[] = [];
  private closeRequested = false;
  private aborted = false;

  constructor(opening: Promise<WritableStream<Uint8Array>>, header: Uint8Array) {
    this.pending.push(header);
    opening.then(
      (ws) => {
        const w = ws.getWriter();
        if (this.aborted) {
          w.abort(new Error("cancelled")).catch(() => undefined);
          return;
        }
        this.writer = w;
        for (const chunk of this.pending) w.write(chunk).catch(() => undefined);
        this.pending = [];
        if (this.closeRequested) w.close().catch(() => undefined);
      },
      () => {
        this.aborted = true;
        this.pending = [];
      },
    );
  }

  write(bytes: Uint8Array): void {
    if (this.aborted || this.closeRequested) return;
    if (this.writer === undefined) this.pending.push(bytes);
    else this.writer.write(bytes).catch(() => undefined);
  }

  /** FIN after everything queued. */
  close(): void {
    if (this.closeRequested) return;
    this.closeRequested = true;
    this.writer?.close().catch(() => undefined);
  }

  /** Reset. */
  abort(): void {
    this.aborted = true;
    this.pending = [];
    this.writer?.abort(new Error("cancelled")).catch(() => undefined);
  }
}

/** Where a subscriber of one of our tracks is, and how far it wants objects. */
interface Sink {
  readonly alias: bigint;
  forward: boolean;
  start: Location | undefined;
  endGroup: bigint | undefined;
  readonly request: RequestStream;
  /** Largest Location when the subscription started forwarding (for joining FETCH). */
  joining: Location | undefined;
  /** Open subgroup stream per group. */
  readonly streams: Map<bigint, SinkStream>;
  streamCount: number;
  closed: boolean;
  readonly requestId: bigint | undefined;
}

export interface LocalTrackOptions {
  readonly namespace: Namespace;
  readonly name: string;
  /** Publisher priority (0 = highest) written in each subgroup header. */
  readonly priority: number;
  /** How many recent groups to keep for FETCH. Default 2. */
  readonly cacheGroups?: number;
}

/** A track this endpoint publishes. Write objects to it; every subscriber receives them. */
export class LocalTrack {
  readonly name: Uint8Array;
  readonly sinks = new Set<Sink>();
  largest: Location | undefined;
  private readonly cache = new Map<bigint, Array<{ objectId: bigint; payload: Uint8Array }>>();
  private readonly cacheGroups: number;
  private currentGroup: bigint | undefined;
  ended = false;

  constructor(
    private readonly session: MoqtSession,
    readonly options: LocalTrackOptions,
  ) {
    this.name = encoder.encode(options.name);
    this.cacheGroups = options.cacheGroups ?? 2;
  }

  get namespace(): Namespace {
    return this.options.namespace;
  }

  /** Append an object. A group ID larger than the current one closes the previous group. */
  write(groupId: bigint, objectId: bigint, payload: Uint8Array): void {
    if (this.ended) return;
    if (this.currentGroup !== undefined && groupId < this.currentGroup) throw new RangeError("group IDs must not go back");
    if (this.currentGroup !== undefined && groupId > this.currentGroup) this.endGroup(this.currentGroup);
    this.currentGroup = groupId;
    let g = this.cache.get(groupId);
    if (g === undefined) {
      g = [];
      this.cache.set(groupId, g);
      while (this.cache.size > this.cacheGroups) {
        const oldest = this.cache.keys().next().value as bigint;
        this.cache.delete(oldest);
      }
    }
    g.push({ objectId, payload });
    this.largest = { group: groupId, object: objectId };
    for (const sink of this.sinks) this.session.sendToSink(this, sink, groupId, objectId, payload);
  }

  /** FIN every subscriber's stream for `groupId`. */
  endGroup(groupId: bigint): void {
    for (const sink of this.sinks) this.session.closeSinkGroup(sink, groupId);
  }

  /** @internal cached objects in [start, end) (end.object 0 = whole group) */
  cached(start: Location, end: Location): Array<{ groupId: bigint; objectId: bigint; payload: Uint8Array }> {
    const out: Array<{ groupId: bigint; objectId: bigint; payload: Uint8Array }> = [];
    for (const [g, objs] of [...this.cache.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      for (const o of objs) {
        const loc = { group: g, object: o.objectId };
        if (compareLocation(loc, start) < 0) continue;
        if (end.object === 0n ? g > end.group : compareLocation(loc, end) >= 0) continue;
        out.push({ groupId: g, objectId: o.objectId, payload: o.payload });
      }
    }
    return out;
  }

  /** End the track: PUBLISH_DONE(TRACK_ENDED) to every subscriber. */
  async end(): Promise<void> {
    if (this.ended) return;
    if (this.currentGroup !== undefined) this.endGroup(this.currentGroup);
    this.ended = true;
    await Promise.all([...this.sinks].map((s) => this.session.endSink(this, s, 0x2n, "track ended")));
  }
}

// ====================================================================== session

interface PendingAlias {
  resolve: (s: Subscription | undefined) => void;
}

/** An established MoQT session (SETUP exchanged). */
export class MoqtSession {
  /** Resolves (never rejects) with the reason once the session is over. */
  readonly closed: Promise<SessionClosedError>;
  /** Called when the relay sends GOAWAY on the control stream. */
  onGoAway: ((goaway: GoAway) => void) | undefined;
  /** The relay's SETUP options, decoded where known. */
  peerImplementation: string | undefined;
  goAway: GoAway | undefined;

  private nextRequestId = 0n;
  private nextAlias = 1n;
  private controlWriter: WritableStreamDefaultWriter<Uint8Array> | undefined;
  private readonly subsByAlias = new Map<bigint, Subscription>();
  private readonly subsByRequest = new Map<bigint, Subscription>();
  private readonly aliasWaiters = new Map<bigint, PendingAlias[]>();
  private readonly fetches = new Map<bigint, { onObject: (o: TrackObject) => void; onEnd: (ok: boolean) => void }>();
  private readonly localTracks: LocalTrack[] = [];
  private readonly incomingSubs = new Map<bigint, { track: LocalTrack; sink: Sink }>();
  private closeReason: SessionClosedError | undefined;
  /** Requests carrying a token that the peer has not answered yet. */
  private credentialChecks = 0;
  private resolveClosed!: (e: SessionClosedError) => void;
  private peerSetup!: () => void;
  private readonly peerSetupSeen: Promise<void>;

  private constructor(
    readonly wt: WebTransportLike,
    readonly url: string,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.peerSetupSeen = new Promise((r) => (this.peerSetup = r));
    wt.closed.then(
      (info: CloseInfo) => this.onClosed(info.closeCode ?? 0, info.reason ?? ""),
      (err: unknown) => {
        const msg = err instanceof Error ? err.message : String(err);
        this.onClosed(SessionCode.INTERNAL_ERROR, /auth_failed/.test(msg) ? "auth_failed" : msg, false);
      },
    );
  }

  /** Connect, exchange SETUP, and start serving incoming streams. */
  static async connect(opts: SessionOptions): Promise<MoqtSession> {
    const hash = opts.certificateSha256 ?? (await fetchCertificateHash(opts));
    const handshake = { failed: false };
    try {
      return await MoqtSession.open(opts, hash, handshake);
    } catch (e) {
      if (!handshake.failed || opts.certificateSha256 !== undefined) throw e;
      // A discovered hash may be stale (a restarted relay generates a new self-signed
      // certificate; hashes are cached): ask again, uncached, and try the new one.
      if (hash !== undefined) {
        forgetCertificateHash(opts);
        const fresh = await fetchCertificateHash(opts);
        if (fresh !== undefined && fresh.toLowerCase() !== hash.toLowerCase()) return MoqtSession.open(opts, fresh, { failed: false });
      }
      // It may belong to an engine whose relay has a WebPKI certificate (which
      // serverCertificateHashes cannot pin): try once without it.
      if (hash !== undefined) return MoqtSession.open(opts, undefined, handshake);
      throw e;
    }
  }

  private static async open(opts: SessionOptions, hash: string | undefined, handshake: { failed: boolean }): Promise<MoqtSession> {
    const url = connectUrl(opts.url, opts.token);
    const connectOpts: ConnectOptions = { protocols: [MOQT_PROTOCOL] };
    if (hash !== undefined) connectOpts.serverCertificateHashes = [{ algorithm: "sha-256", value: hexToBytes(hash) }];
    const factory = opts.transport ?? browserWebTransport;
    let wt: WebTransportLike;
    try {
      wt = factory(url, connectOpts);
    } catch (e) {
      throw new StreamsError("network", `cannot open WebTransport to ${opts.url}: ${String(e)}`, { cause: e });
    }
    wt.ready.then(
      () => undefined,
      () => void (handshake.failed = true),
    );
    const session = new MoqtSession(wt, url);
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StreamsError("timeout", `MoQT connect to ${opts.url} timed out`)), timeoutMs);
    });
    const closedEarly = session.closed.then((e) => {
      throw e;
    });
    try {
      await Promise.race([
        (async () => {
          try {
            await wt.ready;
          } catch (e) {
            handshake.failed = true;
            throw new StreamsError("network", `WebTransport to ${opts.url} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
          }
          session.start();
          await session.openControlStream();
          await session.peerSetupSeen;
        })(),
        timeout,
        closedEarly,
      ]);
    } catch (e) {
      session.close(SessionCode.NO_ERROR, "connect failed");
      throw e;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    closedEarly.catch(() => undefined);
    return session;
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined;
  }

  private onClosed(code: number, reason: string, fromPeer = true): void {
    if (this.closeReason !== undefined) return;
    // A relay refusing a credential answers REQUEST_ERROR(UNAUTHORIZED) and closes the session
    // with `auth_failed` at once; Chromium sometimes loses both and reports only "Connection
    // lost.". A session lost while the relay was checking our credential is that refusal.
    if (!fromPeer && this.credentialChecks > 0) {
      code = SessionCode.UNAUTHORIZED;
      reason = "auth_failed";
    }
    const err = new SessionClosedError(code, reason, fromPeer);
    this.closeReason = err;
    for (const s of [...this.subsByRequest.values()]) s.finish(undefined, err);
    for (const f of this.fetches.values()) f.onEnd(false);
    this.fetches.clear();
    for (const ws of this.aliasWaiters.values()) for (const w of ws) w.resolve(undefined);
    this.aliasWaiters.clear();
    this.resolveClosed(err);
  }

  /** Close the session with an application code and reason phrase. */
  close(code: number = SessionCode.NO_ERROR, reason = ""): void {
    try {
      this.wt.close({ closeCode: code, reason });
    } catch {
      /* already closed */
    }
    this.onClosed(code, reason);
  }

  private fail(e: unknown): void {
    if (e instanceof DecodeError) this.close(e.sessionCode, e.message.slice(0, 1000));
  }

  private allocRequestId(): bigint {
    const id = this.nextRequestId;
    this.nextRequestId += 2n;
    return id;
  }

  private checkOpen(): void {
    if (this.closeReason !== undefined) throw this.closeReason;
  }

  // ------------------------------------------------------------------ control stream

  private async openControlStream(): Promise<void> {
    const ws = await this.wt.createUnidirectionalStream({ sendOrder: 1 << 30 });
    this.controlWriter = ws.getWriter();
    await this.controlWriter.write(encodeMessage({ type: "SETUP", options: setupOptions({ implementation: IMPLEMENTATION }) }));
  }

  private start(): void {
    void this.acceptUni();
    void this.acceptBidi();
    void this.acceptDatagrams();
  }

  private async acceptUni(): Promise<void> {
    const reader = this.wt.incomingUnidirectionalStreams.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        void this.handleUni(StreamReader.from(value)).catch((e) => this.fail(e));
      }
    } catch {
      /* session closed */
    }
  }

  private async acceptBidi(): Promise<void> {
    const reader = this.wt.incomingBidirectionalStreams.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        void this.handleBidi(new RequestStream(value)).catch((e) => this.fail(e));
      }
    } catch {
      /* session closed */
    }
  }

  private async acceptDatagrams(): Promise<void> {
    const readable = this.wt.datagrams?.readable;
    if (readable === undefined) return;
    const reader = readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        try {
          const d = decodeDatagram(value);
          const sub = this.subsByAlias.get(d.trackAlias);
          if (sub === undefined || d.status !== undefined) continue;
          const t = now();
          sub.assembler.onStreamObject({ groupId: d.groupId, objectId: d.objectId, payload: d.payload, receivedAt: t, transferMs: 0 });
        } catch (e) {
          this.fail(e);
        }
      }
    } catch {
      /* closed */
    }
  }

  private async handleUni(r: StreamReader): Promise<void> {
    const type = await r.varintOrEnd("stream type");
    if (type === undefined) return;
    if (type === BigInt(CONTROL_STREAM_TYPE)) return this.readControl(r);
    if (isSubgroupType(type)) return this.readSubgroup(type, r);
    if (type === BigInt(FETCH_HEADER_TYPE)) return this.readFetchStream(r);
    if (type === BigInt(PADDING_STREAM_TYPE)) return r.cancel("padding");
    throw new DecodeError(`unknown unidirectional stream type 0x${type.toString(16)}`);
  }

  private async readControl(r: StreamReader): Promise<void> {
    // The stream type we just read is SETUP's message type.
    const len = await r.u16("SETUP length");
    const setup = decodeMessage(BigInt(MessageType.SETUP), await r.bytes(len, "SETUP"));
    if (setup.type === "SETUP") {
      for (const o of setup.options) {
        if (o.type === 0x07n && o.value instanceof Uint8Array) this.peerImplementation = decoder.decode(o.value);
        if ((o.type === 0x01n || o.type === 0x05n) && o.value instanceof Uint8Array) {
          // PATH / AUTHORITY from a server is forbidden.
          throw new DecodeError("server sent PATH/AUTHORITY", {
            sessionCode: o.type === 0x01n ? SessionCode.INVALID_PATH : SessionCode.INVALID_AUTHORITY,
          });
        }
      }
    }
    this.peerSetup();
    for (;;) {
      const type = await r.varintOrEnd("message type");
      if (type === undefined) {
        // A relay closing the session (e.g. `auth_failed`) ends its control stream too; the
        // session close (with its reason) may be processed a moment later: wait for it.
        await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1000))]);
        if (this.closeReason !== undefined) return;
        throw new DecodeError("peer closed its control stream");
      }
      const l = await r.u16("message length");
      const m = decodeMessage(type, await r.bytes(l, "message"));
      if (m.type === "GOAWAY") {
        if (this.goAway !== undefined) throw new DecodeError("second GOAWAY on the control stream");
        this.goAway = m;
        this.onGoAway?.(m);
      } else {
        throw new DecodeError(`${m.type} is not allowed on the control stream`);
      }
    }
  }

  // ------------------------------------------------------------------ subscriber

  private async aliasSubscription(alias: bigint): Promise<Subscription | undefined> {
    const s = this.subsByAlias.get(alias);
    if (s !== undefined || this.closeReason !== undefined) return s;
    // Data can overtake SUBSCRIBE_OK: wait briefly for the alias.
    return new Promise((resolve) => {
      const list = this.aliasWaiters.get(alias) ?? [];
      const entry: PendingAlias = { resolve };
      list.push(entry);
      this.aliasWaiters.set(alias, list);
      setTimeout(() => {
        const l = this.aliasWaiters.get(alias);
        if (l === undefined) return;
        const i = l.indexOf(entry);
        if (i >= 0) {
          l.splice(i, 1);
          resolve(undefined);
        }
      }, 2000);
    });
  }

  private async readSubgroup(type: bigint, r: StreamReader): Promise<void> {
    const h: SubgroupHeader = await readSubgroupHeader(type, r);
    const sub = await this.aliasSubscription(h.trackAlias);
    if (sub === undefined || sub.closed) {
      await r.cancel("unknown track alias");
      return;
    }
    sub.addDataStream(r);
    sub.assembler.streamOpened(h.groupId);
    let prev: bigint | undefined;
    try {
      for (;;) {
        const t0 = now();
        const o: MoqObject | undefined = await readSubgroupObject(r, h, prev);
        if (o === undefined) break;
        prev = o.objectId;
        if (o.status === ObjectStatus.END_OF_TRACK) {
          sub.finish(undefined);
          break;
        }
        if (o.status !== ObjectStatus.NORMAL) continue;
        const t = now();
        sub.assembler.onStreamObject({ groupId: o.groupId, objectId: o.objectId, payload: o.payload, receivedAt: t, transferMs: t - t0 });
      }
    } catch (e) {
      if (e instanceof DecodeError && !e.truncated) throw e;
      // a reset stream: the rest of this subgroup is gone
    } finally {
      sub.removeDataStream(r);
      sub.assembler.streamClosed(h.groupId);
    }
  }

  private async readFetchStream(r: StreamReader): Promise<void> {
    const requestId = await r.varint("fetch request id");
    const f = this.fetches.get(requestId);
    if (f === undefined) {
      await r.cancel("unknown fetch");
      return;
    }
    const dec = new FetchObjectDecoder();
    let ok = true;
    try {
      for (;;) {
        const t0 = now();
        const item = await dec.next(r);
        if (item === undefined) break;
        if (item.kind !== "object" || item.payload.length === 0) continue;
        const t = now();
        f.onObject({ groupId: item.groupId, objectId: item.objectId, payload: item.payload, receivedAt: t, transferMs: t - t0 });
      }
    } catch (e) {
      ok = false;
      if (e instanceof DecodeError && !e.truncated) throw e;
    } finally {
      this.fetches.delete(requestId);
      f.onEnd(ok);
    }
  }

  /**
   * SUBSCRIBE to a track. With `join: "current"` (default) the subscription uses the Largest
   * Object filter and a relative Joining FETCH (start 0) so delivery begins at the first object
   * of the current group; with `"next"` it uses Next Group Start. Rejects with
   * {@link RequestError} on REQUEST_ERROR (code `auth_failed` for authorization errors).
   */
  async subscribe(namespace: Namespace, name: string, opts: SubscribeOptions = {}): Promise<Subscription> {
    this.checkOpen();
    const join = opts.join ?? "current";
    const requestId = this.allocRequestId();
    const request = new RequestStream(await this.wt.createBidirectionalStream({ sendOrder: 1 << 29 }));
    const nameBytes = encoder.encode(name);
    const sub = new Subscription(this, requestId, namespace, nameBytes, request);
    this.subsByRequest.set(requestId, sub);
    const filter: SubscriptionFilter = { type: join === "current" ? FilterType.LARGEST_OBJECT : FilterType.NEXT_GROUP_START };
    const params: MessageParams = {
      ...authParams(opts.token),
      ...(opts.rendezvousTimeoutMs !== undefined ? { rendezvousTimeout: BigInt(opts.rendezvousTimeoutMs) } : {}),
      forward: 1,
      subscriberPriority: opts.priority ?? 128,
      subscriptionFilter: filter,
      groupOrder: 1,
    };
    await request.send({ type: "SUBSCRIBE", requestId, namespace, name: nameBytes, params });
    const first = await this.response(request, `SUBSCRIBE ${namespaceToString(namespace)}/${name}`, opts.token !== undefined);
    if (first.type !== "SUBSCRIBE_OK") {
      this.subsByRequest.delete(requestId);
      request.cancel();
      throw new DecodeError(`expected SUBSCRIBE_OK, got ${first.type}`);
    }
    this.registerAlias(sub, first);
    if (join === "current" && sub.largest !== undefined) {
      sub.assembler.expectJoin(sub.largest.group);
      void this.joiningFetch(sub, opts).catch(() => sub.assembler.onFetchEnd(false));
    }
    void this.watchSubscription(sub);
    return sub;
  }

  private registerAlias(sub: Subscription, ok: SubscribeOk): void {
    if (this.subsByAlias.has(ok.trackAlias)) {
      this.close(SessionCode.DUPLICATE_TRACK_ALIAS, "duplicate track alias");
      throw new DecodeError("duplicate track alias", { sessionCode: SessionCode.DUPLICATE_TRACK_ALIAS });
    }
    sub.trackAlias = ok.trackAlias;
    sub.largest = ok.params.largestObject;
    this.subsByAlias.set(ok.trackAlias, sub);
    const waiters = this.aliasWaiters.get(ok.trackAlias);
    this.aliasWaiters.delete(ok.trackAlias);
    for (const w of waiters ?? []) w.resolve(sub);
  }

  private async joiningFetch(sub: Subscription, opts: SubscribeOptions): Promise<void> {
    const requestId = this.allocRequestId();
    const request = new RequestStream(await this.wt.createBidirectionalStream({ sendOrder: 1 << 29 }));
    let ended = false;
    this.fetches.set(requestId, {
      onObject: (o) => sub.assembler.onFetchObject(o),
      onEnd: (ok) => {
        if (ended) return;
        ended = true;
        sub.assembler.onFetchEnd(ok);
      },
    });
    const msg: Fetch = {
      type: "FETCH",
      requestId,
      fetchType: 0x2,
      joiningRequestId: sub.requestId,
      joiningStart: 0n,
      params: { ...authParams(opts.token), subscriberPriority: Math.max(0, (opts.priority ?? 128) - 1) },
    };
    await request.send(msg);
    try {
      const first = await this.response(request, "FETCH");
      if (first.type !== "FETCH_OK") throw new DecodeError(`expected FETCH_OK, got ${first.type}`);
      const _ok: FetchOk = first;
      void _ok;
    } catch (e) {
      const f = this.fetches.get(requestId);
      this.fetches.delete(requestId);
      f?.onEnd(false);
      if (e instanceof DecodeError) throw e;
    } finally {
      void request.finish();
    }
  }

  private async watchSubscription(sub: Subscription): Promise<void> {
    try {
      for (;;) {
        const m = await sub.request.next();
        if (m === undefined) {
          sub.finish(undefined);
          return;
        }
        if (m.type === "PUBLISH_DONE") {
          // Let late-opening streams drain briefly before ending the iteration.
          setTimeout(() => sub.finish(m), 1000);
          return;
        }
        if (m.type === "GOAWAY") {
          this.onGoAway?.(m);
          continue;
        }
        if (m.type === "REQUEST_OK" || m.type === "REQUEST_ERROR") continue; // REQUEST_UPDATE answers
        throw new DecodeError(`unexpected ${m.type} on a subscription stream`);
      }
    } catch (e) {
      if (e instanceof DecodeError && !e.truncated) this.fail(e);
      else if (!sub.closed) sub.finish(undefined, this.closeReason);
    }
  }

  /** @internal */
  forgetSubscription(sub: Subscription): void {
    this.subsByRequest.delete(sub.requestId);
    if (this.subsByAlias.get(sub.trackAlias) === sub) this.subsByAlias.delete(sub.trackAlias);
  }

  /** First response on a request stream; REQUEST_ERROR becomes a {@link RequestError}. */
  private async response(request: RequestStream, what: string, credentialed = false): Promise<ControlMessage> {
    if (credentialed) this.credentialChecks++;
    try {
      return await this.responseInner(request, what);
    } finally {
      if (credentialed) this.credentialChecks--;
    }
  }

  private async responseInner(request: RequestStream, what: string): Promise<ControlMessage> {
    let m: ControlMessage | undefined;
    const next = request.next();
    next.catch(() => undefined);
    try {
      m = await Promise.race([
        next,
        this.closed.then((e) => {
          throw e;
        }),
      ]);
    } catch (e) {
      if (this.closeReason !== undefined) {
        // The peer may have answered (REQUEST_ERROR, e.g. UNAUTHORIZED) just before closing the
        // session: that answer says more than the close, so read it if it is already here.
        const late = await Promise.race([next.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), 300))]);
        if (late?.type === "REQUEST_ERROR") throw new RequestError(late.errorCode, late.reason, late.retryInterval, what);
        throw this.closeReason;
      }
      throw e;
    }
    if (m === undefined) {
      // A reset without answer usually precedes the session close: give it a moment.
      const closed = await Promise.race([this.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]);
      if (closed !== undefined) throw closed;
      throw new StreamsError("request_error", `${what}: stream closed without a response`);
    }
    if (m.type === "REQUEST_ERROR") {
      request.cancel();
      throw new RequestError(m.errorCode, m.reason, m.retryInterval, what);
    }
    return m;
  }

  // ------------------------------------------------------------------ publisher

  /**
   * PUBLISH_NAMESPACE: announce that we publish tracks under `namespace`. Resolves on
   * REQUEST_OK; rejects with {@link RequestError} / {@link SessionClosedError}. The returned
   * function withdraws the namespace.
   */
  async publishNamespace(namespace: Namespace, token?: string): Promise<() => void> {
    this.checkOpen();
    const requestId = this.allocRequestId();
    const request = new RequestStream(await this.wt.createBidirectionalStream({ sendOrder: 1 << 29 }));
    await request.send({ type: "PUBLISH_NAMESPACE", requestId, namespace, params: authParams(token) });
    const m = await this.response(request, `PUBLISH_NAMESPACE ${namespaceToString(namespace)}`, token !== undefined);
    if (m.type !== "REQUEST_OK") throw new DecodeError(`expected REQUEST_OK, got ${m.type}`);
    void (async () => {
      try {
        while ((await request.next()) !== undefined) {
          /* REQUEST_UPDATE answers, ignored */
        }
      } catch {
        /* cancelled */
      }
    })();
    return () => request.cancel();
  }

  /** Create a track we publish; call {@link publishTrack} to PUBLISH it to the relay. */
  createTrack(options: LocalTrackOptions): LocalTrack {
    const t = new LocalTrack(this, options);
    this.localTracks.push(t);
    return t;
  }

  /**
   * PUBLISH `track` to the peer (a new subscription initiated by us). Resolves when the peer
   * answers PUBLISH_OK (REQUEST_OK); objects flow once Forward State is 1.
   */
  async publishTrack(track: LocalTrack, token?: string): Promise<void> {
    this.checkOpen();
    const requestId = this.allocRequestId();
    const alias = this.nextAlias++;
    const request = new RequestStream(await this.wt.createBidirectionalStream({ sendOrder: 1 << 29 }));
    const params: MessageParams = {
      ...authParams(token),
      ...(track.largest !== undefined ? { largestObject: track.largest } : {}),
      forward: 1,
    };
    const msg: Publish = {
      type: "PUBLISH",
      requestId,
      namespace: track.namespace,
      name: track.name,
      trackAlias: alias,
      params,
      properties: [{ type: 0x0en, value: BigInt(track.options.priority) }], // DEFAULT_PUBLISHER_PRIORITY
    };
    await request.send(msg);
    const m = await this.response(request, `PUBLISH ${namespaceToString(track.namespace)}/${track.options.name}`, token !== undefined);
    if (m.type !== "REQUEST_OK") throw new DecodeError(`expected PUBLISH_OK (REQUEST_OK), got ${m.type}`);
    const sink: Sink = {
      alias,
      forward: m.params.forward !== 0,
      start: undefined,
      endGroup: undefined,
      request,
      joining: track.largest,
      streams: new Map(),
      streamCount: 0,
      closed: false,
      requestId,
    };
    this.applyFilter(track, sink, m.params.subscriptionFilter);
    track.sinks.add(sink);
    void this.serveSinkRequests(track, sink);
  }

  private applyFilter(track: LocalTrack, sink: Sink, f: SubscriptionFilter | undefined): void {
    if (f === undefined) return;
    const largest = track.largest;
    switch (f.type) {
      case FilterType.LARGEST_OBJECT:
        sink.start = largest === undefined ? { group: 0n, object: 0n } : { group: largest.group, object: largest.object + 1n };
        break;
      case FilterType.NEXT_GROUP_START:
        sink.start = largest === undefined ? { group: 0n, object: 0n } : { group: largest.group + 1n, object: 0n };
        break;
      case FilterType.ABSOLUTE_START:
        sink.start = f.start;
        break;
      case FilterType.ABSOLUTE_RANGE:
        sink.start = f.start;
        sink.endGroup = f.start.group + f.endGroupDelta;
        break;
    }
  }

  /** Read REQUEST_UPDATEs (and the end) of a subscription to one of our tracks. */
  private async serveSinkRequests(track: LocalTrack, sink: Sink): Promise<void> {
    try {
      for (;;) {
        const m = await sink.request.next();
        if (m === undefined) break;
        if (m.type === "REQUEST_UPDATE") {
          if (m.params.forward !== undefined) {
            if (!sink.forward && m.params.forward === 1) sink.joining = track.largest;
            sink.forward = m.params.forward === 1;
          }
          this.applyFilter(track, sink, m.params.subscriptionFilter);
          await sink.request.send({
            type: "REQUEST_OK",
            params: track.largest !== undefined ? { largestObject: track.largest } : {},
            properties: [],
          });
        } else if (m.type === "GOAWAY") {
          // the peer asks us to migrate this request; the app layer reconnects on session GOAWAY
        } else {
          throw new DecodeError(`unexpected ${m.type} on a publish stream`);
        }
      }
    } catch (e) {
      if (e instanceof DecodeError && !e.truncated) this.fail(e);
    }
    // STOP_SENDING / FIN from the subscriber: the subscription is over.
    this.dropSink(track, sink);
  }

  private dropSink(track: LocalTrack, sink: Sink): void {
    if (sink.closed) return;
    sink.closed = true;
    track.sinks.delete(sink);
    for (const s of sink.streams.values()) s.abort();
    sink.streams.clear();
    if (sink.requestId !== undefined) this.incomingSubs.delete(sink.requestId);
  }

  /** @internal write one object to one subscriber, opening the group's stream if needed. */
  sendToSink(track: LocalTrack, sink: Sink, groupId: bigint, objectId: bigint, payload: Uint8Array): void {
    if (sink.closed || !sink.forward) return;
    if (sink.start !== undefined && compareLocation({ group: groupId, object: objectId }, sink.start) < 0) return;
    if (sink.endGroup !== undefined && groupId > sink.endGroup) return;
    let s = sink.streams.get(groupId);
    if (s === undefined) {
      const header = encodeSubgroupHeader({
        trackAlias: sink.alias,
        groupId,
        subgroupIdMode: 0,
        subgroupId: 0n,
        priority: track.options.priority,
        hasProperties: false,
        endOfGroup: true,
        firstObject: objectId === 0n,
      });
      // Newer groups of the same priority go first (live: the newest data matters most).
      const sendOrder = (255 - track.options.priority) * 2 ** 20 + Number(groupId % 1_000_000n);
      s = new SinkStream(this.wt.createUnidirectionalStream({ sendOrder }), header);
      sink.streams.set(groupId, s);
      sink.streamCount++;
    }
    s.write(encodeSubgroupObject(s.lastObject, { objectId, payload }, false));
    s.lastObject = objectId;
  }

  /** @internal FIN the subscriber's stream for a finished group. */
  closeSinkGroup(sink: Sink, groupId: bigint): void {
    const s = sink.streams.get(groupId);
    if (s === undefined) return;
    sink.streams.delete(groupId);
    s.close();
  }

  /** @internal PUBLISH_DONE on a subscription to one of our tracks. */
  async endSink(track: LocalTrack, sink: Sink, status: bigint, reason: string): Promise<void> {
    if (sink.closed) return;
    for (const g of [...sink.streams.keys()]) this.closeSinkGroup(sink, g);
    try {
      await sink.request.send({ type: "PUBLISH_DONE", statusCode: status, streamCount: BigInt(sink.streamCount), reason });
      await sink.request.finish();
    } catch {
      /* peer gone */
    }
    sink.closed = true;
    track.sinks.delete(sink);
  }

  private findTrack(namespace: Namespace, name: Uint8Array): LocalTrack | undefined {
    return this.localTracks.find((t) => !t.ended && namespaceEquals(t.namespace, namespace) && bytesEqual(t.name, name));
  }

  // ------------------------------------------------------------------ incoming requests

  private async handleBidi(request: RequestStream): Promise<void> {
    const m = await request.next();
    if (m === undefined) return;
    switch (m.type) {
      case "SUBSCRIBE":
        return this.onSubscribe(request, m);
      case "TRACK_STATUS": {
        const t = this.findTrack(m.namespace, m.name);
        if (t === undefined) return this.reject(request, RequestErrorCode.DOES_NOT_EXIST, "no such track");
        await request.send({ type: "REQUEST_OK", params: t.largest !== undefined ? { largestObject: t.largest } : {}, properties: [] });
        return request.finish();
      }
      case "FETCH":
        return this.onFetch(request, m);
      case "PUBLISH":
      case "PUBLISH_NAMESPACE":
        return this.reject(request, RequestErrorCode.UNINTERESTED, "not interested");
      case "SUBSCRIBE_NAMESPACE":
      case "SUBSCRIBE_TRACKS":
        return this.reject(request, RequestErrorCode.NOT_SUPPORTED, "not supported");
      default:
        throw new DecodeError(`${m.type} cannot open a request stream`);
    }
  }

  private async reject(request: RequestStream, code: number, reason: string): Promise<void> {
    await request.send({ type: "REQUEST_ERROR", errorCode: BigInt(code), retryInterval: 0n, reason });
    await request.finish();
  }

  private async onSubscribe(request: RequestStream, m: Subscribe): Promise<void> {
    const track = this.findTrack(m.namespace, m.name);
    if (track === undefined) return this.reject(request, RequestErrorCode.DOES_NOT_EXIST, "no such track");
    if (this.incomingSubs.has(m.requestId)) throw new DecodeError("duplicate request id", { sessionCode: SessionCode.INVALID_REQUEST_ID });
    const sink: Sink = {
      alias: this.nextAlias++,
      forward: m.params.forward !== 0,
      start: undefined,
      endGroup: undefined,
      request,
      joining: track.largest,
      streams: new Map(),
      streamCount: 0,
      closed: false,
      requestId: m.requestId,
    };
    // "Subscribe only requests newly published Objects": unfiltered starts after the largest.
    this.applyFilter(track, sink, m.params.subscriptionFilter ?? { type: FilterType.LARGEST_OBJECT });
    this.incomingSubs.set(m.requestId, { track, sink });
    await request.send({
      type: "SUBSCRIBE_OK",
      trackAlias: sink.alias,
      params: track.largest !== undefined ? { largestObject: track.largest } : {},
      properties: [{ type: 0x0en, value: BigInt(track.options.priority) }],
    });
    track.sinks.add(sink);
    await this.serveSinkRequests(track, sink);
  }

  private async onFetch(request: RequestStream, m: Fetch): Promise<void> {
    let track: LocalTrack | undefined;
    let start: Location;
    let end: Location;
    if (m.fetchType === 0x1) {
      track = this.findTrack(m.namespace, m.name);
      start = m.start;
      end = m.end;
    } else {
      const joined = this.incomingSubs.get(m.joiningRequestId);
      if (joined === undefined) return this.reject(request, RequestErrorCode.INVALID_JOINING_REQUEST_ID, "unknown subscription");
      track = joined.track;
      const j = joined.sink.joining;
      if (j === undefined) return this.reject(request, RequestErrorCode.INVALID_RANGE, "no objects");
      end = { group: j.group, object: j.object + 1n };
      const g = m.fetchType === 0x2 ? (j.group >= m.joiningStart ? j.group - m.joiningStart : 0n) : m.joiningStart;
      start = { group: g, object: 0n };
    }
    if (track === undefined) return this.reject(request, RequestErrorCode.DOES_NOT_EXIST, "no such track");
    const largest = track.largest;
    if (largest === undefined || compareLocation(start, largest) > 0) return this.reject(request, RequestErrorCode.INVALID_RANGE, "nothing in range");
    const largestPlus = { group: largest.group, object: largest.object + 1n };
    if (end.object === 0n ? end.group > largest.group : compareLocation(end, largestPlus) > 0) end = largestPlus;
    const objects = track.cached(start, end);
    await request.send({ type: "FETCH_OK", endOfTrack: false, end, params: {}, properties: [] });
    const ws = await this.wt.createUnidirectionalStream({ sendOrder: (255 - track.options.priority) * 2 ** 20 });
    const w = ws.getWriter();
    const enc = new FetchObjectEncoder();
    const out = new Writer(1024);
    out.bytes(enc.header(m.requestId));
    for (const o of objects) out.bytes(enc.object({ groupId: o.groupId, subgroupId: 0n, objectId: o.objectId, priority: track.options.priority, payload: o.payload }));
    await w.write(out.finish());
    await w.close();
    await request.finish();
  }

  /** Open a fresh session to `uri` (or the same URL), e.g. after GOAWAY. */
  static async reconnect(opts: SessionOptions, goaway: GoAway | undefined): Promise<MoqtSession> {
    const url = goaway !== undefined && goaway.newSessionUri.length > 0 ? goaway.newSessionUri : opts.url;
    return MoqtSession.connect({ ...opts, url });
  }
}

/** `https://relay/x` + token → `https://relay/x?token=…`; `moqt://` becomes `https://`. */
export function connectUrl(url: string, token: string | undefined): string {
  const u = new URL(url.replace(/^moqt:\/\//, "https://"));
  if (token !== undefined) u.searchParams.set("token", token);
  return u.toString();
}

const hashCache = new Map<string, Promise<string | undefined>>();

/** Where "auto" discovery looks for the hash, and the cache key of the answer. */
function hashSources(opts: SessionOptions): { key: string; bases: string[] } {
  const relay = new URL(opts.url.replace(/^moqt:\/\//, "https://"));
  const bases: string[] = [];
  const here = typeof location !== "undefined" && /^https?:$/.test(location.protocol) ? location.href : undefined;
  for (const b of opts.certificateHashBases ?? []) {
    try {
      if (b.length > 0 || here !== undefined) bases.push(new URL(b, here).href.replace(/\/+$/, ""));
    } catch {
      /* not a URL: skip */
    }
  }
  if (typeof location !== "undefined" && /^https?:$/.test(location.protocol)) bases.push(location.origin);
  bases.push(`http://${relay.host}`);
  return { key: `${relay.host}|${bases.join("|")}`, bases };
}

/** Drop the cached "auto" hash for this relay (its certificate changed). */
export function forgetCertificateHash(opts: SessionOptions): void {
  hashCache.delete(hashSources(opts).key);
}

/** Resolve the certificate hash per {@link SessionOptions.certificateHashUrl}. */
export async function fetchCertificateHash(opts: SessionOptions): Promise<string | undefined> {
  const mode = opts.certificateHashUrl ?? "auto";
  if (mode === false) return undefined;
  const f = opts.fetch ?? (typeof fetch === "function" ? (i: RequestInfo | URL, init?: RequestInit) => fetch(i, init) : undefined);
  if (f === undefined) return undefined;
  if (mode !== "auto") {
    const h = await fetchHash(f, mode);
    if (h === undefined) throw new StreamsError("network", `no hex SHA-256 certificate hash at ${mode}`);
    return h;
  }
  const { key, bases } = hashSources(opts);
  let p = hashCache.get(key);
  if (p === undefined) {
    p = (async () => {
      for (const b of [...new Set(bases)]) {
        const h = await fetchHash(f, `${b}/certificate.sha256`);
        if (h !== undefined) return h;
      }
      return undefined;
    })();
    hashCache.set(key, p);
    // A renewed certificate has a new hash: forget it after a minute.
    const entry = p;
    setTimeout(() => {
      if (hashCache.get(key) === entry) hashCache.delete(key);
    }, 60_000);
  }
  return p;
}

async function fetchHash(f: typeof fetch, target: string): Promise<string | undefined> {
  const ctl = typeof AbortController !== "undefined" ? new AbortController() : undefined;
  const timer = setTimeout(() => ctl?.abort(), 2000);
  try {
    const init: RequestInit = ctl !== undefined ? { signal: ctl.signal, cache: "no-store" } : {};
    const res = await f(target, init);
    if (!res.ok) return undefined;
    const text = (await res.text()).trim();
    return /^[0-9a-fA-F:]{64,95}$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
