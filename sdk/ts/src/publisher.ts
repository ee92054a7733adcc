/**
 * Browser publisher: WebCodecs capture → CMAF chunks → MoQT objects.
 *
 * Tracks (CMSF): `.catalog` (MSF JSON), `video` (H.264, else VP9), `audio` (Opus 48 kHz).
 * Every keyframe starts a new MoQT group (forced every `timesliceMs`); every encoded frame is one
 * object holding one CMAF chunk (moof+mdat). Audio groups follow the video groups' IDs so the
 * tracks are group-aligned. Each group goes on its own subgroup stream at the track's priority.
 */
import { RequestError, SessionClosedError, StreamsError } from "./errors.js";
import { CATALOG_TRACK, type Catalog, type CatalogTrack, MSF_VERSION, base64Encode, encodeCatalog } from "./media/catalog.js";
import { avcCodecString } from "./media/codecs.js";
import { ChunkWriter, type TrackConfig, initSegment } from "./media/fmp4.js";
import { type LocalTrack, MoqtSession, type SessionOptions } from "./moqt/session.js";
import { type Namespace, namespaceFromString } from "./moqt/wire.js";

/** Chromium's MediaStreamTrackProcessor (not in lib.dom). */
interface TrackProcessor<T> {
  readonly readable: ReadableStream<T>;
}
type TrackProcessorCtor = new <T>(init: { track: MediaStreamTrack }) => TrackProcessor<T>;

export interface PublisherOptions {
  /** Group (GOP) duration in milliseconds: a keyframe is forced this often. Default 1000. */
  readonly timesliceMs?: number;
  /** Target video bitrate in bits/s. Default 2_500_000. */
  readonly videoBitrate?: number;
  /** Target audio bitrate in bits/s. Default 96_000. */
  readonly audioBitrate?: number;
  /** Errors after `publish` resolved (session lost, encoder failure, auth revoked). */
  readonly onError?: (error: StreamsError) => void;
}

export const TRACK_PRIORITY = { catalog: 0, audio: 2, video: 4 } as const;

/** Codecs tried in order; H.264 first (level by resolution), VP9 when H.264 encoding is missing. */
export function videoCodecCandidates(width: number, height: number): string[] {
  const big = width * height > 1280 * 720;
  return big ? ["avc1.640028", "avc1.42e01f", "vp09.00.10.08"] : ["avc1.42e01f", "avc1.640028", "vp09.00.10.08"];
}

interface Media {
  readonly kind: "video" | "audio";
  readonly name: string;
  readonly priority: number;
  config: TrackConfig | undefined;
  codec: string | undefined;
  catalog: Omit<CatalogTrack, "initData"> | undefined;
  writer: ChunkWriter | undefined;
  group: bigint | undefined;
  nextObject: bigint;
  groupStartUs: number;
  /** added to a frame timestamp to put it on the shared clock (µs) */
  offsetUs: number | undefined;
  early: Array<() => void>;
}

export class Publisher {
  private readonly timesliceMs: number;
  private session: MoqtSession | undefined;
  private tracks = new Map<string, LocalTrack>();
  private readonly media: Media[] = [];
  private videoEncoder: VideoEncoder | undefined;
  private audioEncoder: AudioEncoder | undefined;
  private readers: Array<ReadableStreamDefaultReader<unknown>> = [];
  private stopped = false;
  private catalogPublished = false;
  private catalogGroup = 0n;
  private groupBase = 0n;
  private originUs = 0;
  private videoGroups: Array<{ id: bigint; startUs: number }> = [];
  private namespace: Namespace = [];
  private sessionOpts: SessionOptions | undefined;
  private streamKey = "";
  private catalogTimer: ReturnType<typeof setInterval> | undefined;
  private resolveReady: (() => void) | undefined;
  private rejectReady: ((e: unknown) => void) | undefined;

  constructor(
    private readonly base: Omit<SessionOptions, "token">,
    private readonly options: PublisherOptions = {},
  ) {
    this.timesliceMs = options.timesliceMs ?? 1000;
    if (!(this.timesliceMs > 0)) throw new StreamsError("invalid_argument", "timesliceMs must be > 0");
  }

  /**
   * Publish `mediaStream` as live input `externalInputId` under `namespace`
   * (`stream/<org>/<lv_id>`). Resolves once the catalog and the first media are on their way;
   * rejects with code `auth_failed` on a wrong stream key.
   */
  async publish(externalInputId: string, streamKey: string, mediaStream: MediaStream, namespace: string): Promise<void> {
    if (this.session !== undefined) throw new StreamsError("invalid_argument", "this publisher is already publishing");
    const ns = namespaceFromString(namespace);
    const last = namespace.split("/").filter((f) => f.length > 0).pop();
    if (ns.length === 0 || last !== externalInputId) {
      throw new StreamsError("invalid_argument", `namespace "${namespace}" must end with the input id "${externalInputId}"`);
    }
    const video = mediaStream.getVideoTracks()[0];
    const audio = mediaStream.getAudioTracks()[0];
    if (video === undefined && audio === undefined) throw new StreamsError("invalid_argument", "the MediaStream has no tracks");
    const Processor = (globalThis as { MediaStreamTrackProcessor?: TrackProcessorCtor }).MediaStreamTrackProcessor;
    if (Processor === undefined || (video !== undefined && typeof VideoEncoder === "undefined") || (audio !== undefined && typeof AudioEncoder === "undefined")) {
      throw new StreamsError("not_supported", "this browser lacks WebCodecs / MediaStreamTrackProcessor");
    }
    this.namespace = ns;
    this.streamKey = streamKey;
    this.sessionOpts = { ...this.base, token: streamKey };
    this.groupBase = BigInt(Date.now()); // restarts never reuse a group ID (MSF "Group numbering")
    this.catalogGroup = this.groupBase;
    this.originUs = nowUs();

    const blank = (kind: "video" | "audio", priority: number): Media => ({
      kind, name: kind, priority, config: undefined, codec: undefined, catalog: undefined, writer: undefined,
      group: undefined, nextObject: 0n, groupStartUs: 0, offsetUs: undefined, early: [],
    });
    if (video !== undefined) this.media.push(blank("video", TRACK_PRIORITY.video));
    if (audio !== undefined) this.media.push(blank("audio", TRACK_PRIORITY.audio));

    try {
      await this.connect();
      const ready = new Promise<void>((resolve, reject) => {
        this.resolveReady = resolve;
        this.rejectReady = reject;
      });
      ready.catch(() => undefined);
      if (video !== undefined) await this.startVideo(video, Processor);
      if (audio !== undefined) await this.startAudio(audio, Processor);
      await withTimeout(ready, 15_000, "encoders produced no output");
    } catch (e) {
      this.stop();
      const err = toStreamsError(e);
      if (err.code === "auth_failed") {
        throw new StreamsError(
          "auth_failed",
          `the relay refused the stream key for ${namespace} (auth_failed): use the input's current stream key (shown once by liveInputs.create or rotateStreamKey)`,
          { cause: err, reason: err.reason ?? "auth_failed" },
        );
      }
      throw err;
    }
  }

  /** Where the publisher is: current group IDs and the chosen codecs (for monitoring and tests). */
  get stats(): { videoGroup: bigint | undefined; audioGroup: bigint | undefined; videoCodec: string | undefined; audioCodec: string | undefined; live: boolean } {
    const v = this.media.find((m) => m.kind === "video");
    const a = this.media.find((m) => m.kind === "audio");
    return { videoGroup: v?.group, audioGroup: a?.group, videoCodec: v?.codec, audioCodec: a?.codec, live: this.catalogPublished && !this.stopped };
  }

  /** Open the session, PUBLISH_NAMESPACE, then PUBLISH every track. */
  private async connect(): Promise<void> {
    const opts = this.sessionOpts as SessionOptions;
    const session = await MoqtSession.connect(opts);
    try {
      await session.publishNamespace(this.namespace, this.streamKey);
      const tracks = new Map<string, LocalTrack>();
      const specs = [{ name: CATALOG_TRACK, priority: TRACK_PRIORITY.catalog }, ...this.media.map((m) => ({ name: m.name, priority: m.priority }))];
      for (const s of specs) tracks.set(s.name, session.createTrack({ namespace: this.namespace, name: s.name, priority: s.priority }));
      await Promise.all([...tracks.values()].map((t) => session.publishTrack(t, this.streamKey)));
      this.session = session;
      this.tracks = tracks;
    } catch (e) {
      session.close(0, "publish failed");
      throw e;
    }
    session.onGoAway = () => void this.migrate();
    void session.closed.then((err) => {
      if (this.session === session && !this.stopped) this.options.onError?.(err);
    });
  }

  /** GOAWAY: open a new session, re-announce and re-publish, continue at the next group. */
  private async migrate(): Promise<void> {
    const old = this.session;
    try {
      await this.connect();
      if (this.catalogPublished) this.publishCatalog();
    } catch (e) {
      this.options.onError?.(toStreamsError(e));
      return;
    }
    setTimeout(() => old?.close(0, "migrated"), 2000);
  }

  private async startVideo(track: MediaStreamTrack, Processor: TrackProcessorCtor): Promise<void> {
    const m = this.media.find((x) => x.kind === "video") as Media;
    const s = track.getSettings();
    const width = s.width ?? 1280;
    const height = s.height ?? 720;
    const framerate = s.frameRate ?? 30;
    const bitrate = this.options.videoBitrate ?? 2_500_000;
    let chosen: VideoEncoderConfig | undefined;
    for (const codec of videoCodecCandidates(width, height)) {
      const cfg: VideoEncoderConfig = {
        codec, width, height, bitrate, framerate, latencyMode: "realtime",
        ...(codec.startsWith("avc1") ? { avc: { format: "avc" } } : {}),
      };
      try {
        const r = await VideoEncoder.isConfigSupported(cfg);
        if (r.supported === true) {
          chosen = cfg;
          break;
        }
      } catch {
        /* try next */
      }
    }
    if (chosen === undefined) throw new StreamsError("not_supported", "no supported video encoder (H.264 or VP9)");
    const cfg = chosen;
    const encoder = new VideoEncoder({
      output: (chunk, meta) => this.onVideoChunk(m, cfg, chunk, meta),
      error: (e) => this.fail(new StreamsError("media_error", `video encoder: ${e.message}`)),
    });
    encoder.configure(cfg);
    this.videoEncoder = encoder;
    const reader = new Processor<VideoFrame>({ track }).readable.getReader();
    this.readers.push(reader as ReadableStreamDefaultReader<unknown>);
    let lastKeyUs: number | undefined;
    void (async () => {
      for (;;) {
        const { value: frame, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
        if (done || frame === undefined) return;
        if (this.stopped || encoder.state !== "configured") {
          frame.close();
          return;
        }
        if (m.offsetUs === undefined) m.offsetUs = nowUs() - frame.timestamp;
        if (encoder.encodeQueueSize > 2) {
          frame.close(); // encoder is behind: drop rather than add latency
          continue;
        }
        const keyFrame = lastKeyUs === undefined || frame.timestamp - lastKeyUs >= this.timesliceMs * 1000;
        if (keyFrame) lastKeyUs = frame.timestamp;
        encoder.encode(frame, { keyFrame });
        frame.close();
      }
    })();
  }

  private onVideoChunk(m: Media, cfg: VideoEncoderConfig, chunk: EncodedVideoChunk, meta: EncodedVideoChunkMetadata | undefined): void {
    if (this.stopped) return;
    const dc = meta?.decoderConfig;
    if (m.config === undefined || dc !== undefined) {
      const width = dc?.codedWidth ?? cfg.width;
      const height = dc?.codedHeight ?? cfg.height;
      if (cfg.codec.startsWith("avc1")) {
        const desc = dc?.description;
        if (desc === undefined) {
          if (m.config === undefined) return this.fail(new StreamsError("media_error", "H.264 encoder gave no avcC description"));
        } else {
          const avcC = toBytes(desc);
          m.config = { kind: "video", trackId: 1, timescale: 90000, width, height, codec: "avc", avcC };
          m.codec = avcCodecString(avcC);
        }
      } else if (m.config === undefined) {
        m.config = { kind: "video", trackId: 1, timescale: 90000, width, height, codec: "vp9", codecString: cfg.codec };
        m.codec = cfg.codec;
      }
      m.catalog = {
        name: m.name, packaging: "cmaf", isLive: true, role: "video", codec: m.codec as string,
        width, height, framerate: Math.round(cfg.framerate ?? 30), bitrate: cfg.bitrate ?? 0,
        timescale: 90000, altGroup: 1, renderGroup: 1, maxGrpSapStartingType: 1, maxGroupDuration: this.timesliceMs,
      };
      if (m.writer === undefined) m.writer = new ChunkWriter(1, 90000, this.originUs, false, Math.round(90000 / (cfg.framerate ?? 30)));
      this.maybePublishCatalog();
    }
    const data = new Uint8Array(chunk.byteLength);
    chunk.copyTo(data);
    const ts = chunk.timestamp + (m.offsetUs ?? 0);
    const emit = () => {
      const c = m.writer?.push({ data, timestampUs: ts, keyframe: chunk.type === "key" });
      if (c !== undefined) this.writeVideo(m, c.bytes, c.keyframe, c.timestampUs);
    };
    if (this.catalogPublished) emit();
    else m.early.push(emit);
  }

  private writeVideo(m: Media, bytes: Uint8Array, keyframe: boolean, tsUs: number): void {
    if (keyframe || m.group === undefined) {
      if (!keyframe) return; // a group must start with a keyframe
      m.group = m.group === undefined ? this.groupBase : m.group + 1n;
      m.nextObject = 0n;
      this.videoGroups.push({ id: m.group, startUs: tsUs });
      if (this.videoGroups.length > 8) this.videoGroups.shift();
    }
    this.tracks.get(m.name)?.write(m.group, m.nextObject++, bytes);
  }

  private async startAudio(track: MediaStreamTrack, Processor: TrackProcessorCtor): Promise<void> {
    const m = this.media.find((x) => x.kind === "audio") as Media;
    const s = track.getSettings();
    const bitrate = this.options.audioBitrate ?? 96_000;
    const probe: AudioEncoderConfig = { codec: "opus", sampleRate: s.sampleRate ?? 48000, numberOfChannels: Math.min(2, s.channelCount ?? 1), bitrate };
    const support = await AudioEncoder.isConfigSupported(probe).catch(() => undefined);
    if (support?.supported !== true) throw new StreamsError("not_supported", "Opus audio encoding is not supported");
    // Chromium's encoder wants AudioData whose rate and channel count equal its configuration,
    // and track settings do not always say what the capture delivers (e.g. a WebAudio
    // destination): configure from the first AudioData instead.
    let cfg: AudioEncoderConfig | undefined;
    const encoder = new AudioEncoder({
      output: (chunk, meta) => this.onAudioChunk(m, cfg as AudioEncoderConfig, chunk, meta),
      error: (e) => this.fail(new StreamsError("media_error", `audio encoder: ${e.message}`)),
    });
    this.audioEncoder = encoder;
    const reader = new Processor<AudioData>({ track }).readable.getReader();
    this.readers.push(reader as ReadableStreamDefaultReader<unknown>);
    void (async () => {
      for (;;) {
        const { value: data, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
        if (done || data === undefined) return;
        if (this.stopped || encoder.state === "closed") {
          data.close();
          return;
        }
        if (cfg === undefined) {
          if (data.numberOfChannels > 2) {
            data.close();
            return this.fail(new StreamsError("not_supported", `audio with ${data.numberOfChannels} channels (Opus here takes 1 or 2)`));
          }
          cfg = { codec: "opus", sampleRate: data.sampleRate, numberOfChannels: data.numberOfChannels, bitrate };
          encoder.configure(cfg);
        } else if (data.sampleRate !== cfg.sampleRate || data.numberOfChannels !== cfg.numberOfChannels) {
          data.close(); // the capture changed format mid-stream: drop rather than fail
          continue;
        }
        if (m.offsetUs === undefined) m.offsetUs = nowUs() - data.timestamp;
        encoder.encode(data);
        data.close();
      }
    })();
  }

  private onAudioChunk(m: Media, cfg: AudioEncoderConfig, chunk: EncodedAudioChunk, meta: EncodedAudioChunkMetadata | undefined): void {
    if (this.stopped) return;
    if (m.config === undefined) {
      const desc = meta?.decoderConfig?.description;
      const channels = meta?.decoderConfig?.numberOfChannels ?? cfg.numberOfChannels;
      m.config = {
        kind: "audio", trackId: 2, timescale: 48000, codec: "opus", channels, sampleRate: 48000,
        ...(desc !== undefined ? { opusHead: toBytes(desc) } : {}),
      };
      m.codec = "opus";
      m.catalog = {
        name: m.name, packaging: "cmaf", isLive: true, role: "audio", codec: "opus", samplerate: 48000,
        channelConfig: String(channels), bitrate: cfg.bitrate ?? 96_000, timescale: 48000, altGroup: 2, renderGroup: 1,
        maxGrpSapStartingType: 1,
      };
      m.writer = new ChunkWriter(2, 48000, this.originUs, true, 960);
      this.maybePublishCatalog();
    }
    const data = new Uint8Array(chunk.byteLength);
    chunk.copyTo(data);
    const ts = chunk.timestamp + (m.offsetUs ?? 0);
    const emit = () => {
      const c = m.writer?.push({ data, timestampUs: ts, keyframe: true, ...(chunk.duration !== null ? { durationUs: chunk.duration } : {}) });
      if (c !== undefined) this.writeAudio(m, c.bytes, c.timestampUs);
    };
    if (this.catalogPublished) emit();
    else m.early.push(emit);
  }

  private writeAudio(m: Media, bytes: Uint8Array, tsUs: number): void {
    const hasVideo = this.media.some((x) => x.kind === "video");
    let target: bigint | undefined;
    if (hasVideo) {
      for (const g of this.videoGroups) if (g.startUs <= tsUs) target = g.id;
      if (target === undefined) return; // before the first video keyframe: nothing to align to
    } else {
      target = m.group === undefined ? this.groupBase : tsUs - m.groupStartUs >= this.timesliceMs * 1000 ? m.group + 1n : m.group;
    }
    if (m.group === undefined || target > m.group) {
      m.group = target;
      m.nextObject = 0n;
      m.groupStartUs = tsUs;
    }
    this.tracks.get(m.name)?.write(m.group, m.nextObject++, bytes);
  }

  private maybePublishCatalog(): void {
    if (this.catalogPublished || this.media.some((m) => m.config === undefined)) return;
    this.catalogPublished = true;
    this.publishCatalog();
    for (const m of this.media) {
      const early = m.early;
      m.early = [];
      for (const f of early) f();
    }
    // Re-send the full catalog in a fresh group now and then so caches keep it (MSF §Catalog).
    this.catalogTimer = setInterval(() => this.publishCatalog(), 10_000);
    this.resolveReady?.();
  }

  /** The catalog as currently published. */
  catalog(): Catalog {
    return {
      version: MSF_VERSION,
      generatedAt: Date.now(),
      tracks: this.media.map((m) => ({ ...(m.catalog as CatalogTrack), initData: base64Encode(initSegment(m.config as TrackConfig)) })),
    };
  }

  private publishCatalog(): void {
    const t = this.tracks.get(CATALOG_TRACK);
    if (t === undefined) return;
    const group = this.catalogGroup;
    this.catalogGroup += 1n;
    t.write(group, 0n, encodeCatalog(this.catalog()));
    t.endGroup(group);
  }

  private fail(e: StreamsError): void {
    if (this.stopped) return;
    if (this.rejectReady !== undefined && !this.catalogPublished) this.rejectReady(e);
    else this.options.onError?.(e);
    this.stop();
  }

  /** Stop capture and encoders, end the tracks (PUBLISH_DONE) and close the session. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.catalogTimer !== undefined) clearInterval(this.catalogTimer);
    for (const r of this.readers) r.cancel().catch(() => undefined);
    for (const enc of [this.videoEncoder, this.audioEncoder]) {
      try {
        if (enc !== undefined && enc.state !== "closed") enc.close();
      } catch {
        /* closed */
      }
    }
    const session = this.session;
    const tracks = [...this.tracks.values()];
    this.rejectReady?.(new StreamsError("stopped", "publisher stopped"));
    void (async () => {
      await Promise.all(tracks.map((t) => t.end().catch(() => undefined)));
      session?.close(0, "publisher stopped");
    })();
  }
}

function nowUs(): number {
  return (typeof performance !== "undefined" ? performance.timeOrigin + performance.now() : Date.now()) * 1000;
}

function toBytes(src: AllowSharedBufferSource): Uint8Array {
  if (src instanceof Uint8Array) return new Uint8Array(src);
  if (ArrayBuffer.isView(src)) return new Uint8Array(src.buffer.slice(src.byteOffset, src.byteOffset + src.byteLength));
  return new Uint8Array(src.slice(0));
}

export function toStreamsError(e: unknown): StreamsError {
  if (e instanceof StreamsError) return e;
  return new StreamsError("network", e instanceof Error ? e.message : String(e), { cause: e });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StreamsError("timeout", what)), ms);
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

export { RequestError, SessionClosedError };
