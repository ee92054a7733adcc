/**
 * Async byte reader over a WebTransport receive stream (or any async source of chunks), with
 * MoQT varint support. Premature end of stream is a {@link DecodeError}.
 */
import { DecodeError } from "../errors.js";
import { decodeVarint, varintLengthFromFirstByte } from "./varint.js";

export interface ChunkSource {
  read(): Promise<{ done: true; value?: Uint8Array | undefined } | { done: false; value: Uint8Array }>;
  cancel?(reason?: unknown): Promise<void>;
  releaseLock?(): void;
}

export class StreamReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private eof = false;

  constructor(private readonly source: ChunkSource) {}

  /** Wrap a ReadableStream of bytes. */
  static from(stream: ReadableStream<Uint8Array>): StreamReader {
    return new StreamReader(stream.getReader());
  }

  /** Wrap in-memory chunks (tests, replay). */
  static fromChunks(chunks: readonly Uint8Array[]): StreamReader {
    let i = 0;
    return new StreamReader({
      read: async () => {
        const c = chunks[i++];
        return c === undefined ? { done: true } : { done: false, value: c };
      },
    });
  }

  /** Pull until at least `n` bytes are buffered; false when the stream ended first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      if (this.eof) return false;
      const r = await this.source.read();
      if (r.done) {
        this.eof = true;
        return this.buffered >= n;
      }
      if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.buffered += r.value.length;
      }
    }
    return true;
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0] as Uint8Array;
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }

  /** True when the stream has ended and every byte was consumed. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  async bytes(n: number, what = "bytes"): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0);
    if (!(await this.fill(n))) {
      throw new DecodeError(`stream ended inside ${what} (need ${n}, have ${this.buffered})`, { truncated: true });
    }
    return this.take(n);
  }

  async u8(what = "u8"): Promise<number> {
    return (await this.bytes(1, what))[0] as number;
  }

  async u16(what = "u16"): Promise<number> {
    const b = await this.bytes(2, what);
    return ((b[0] as number) << 8) | (b[1] as number);
  }

  /** A varint, or undefined when the stream ended cleanly before its first byte. */
  async varintOrEnd(what = "varint"): Promise<bigint | undefined> {
    if (!(await this.fill(1))) return undefined;
    return this.varint(what);
  }

  async varint(what = "varint"): Promise<bigint> {
    if (!(await this.fill(1))) throw new DecodeError(`stream ended before ${what}`, { truncated: true });
    const first = (this.chunks[0] as Uint8Array)[0] as number;
    const n = varintLengthFromFirstByte(first);
    const b = await this.bytes(n, what);
    return decodeVarint(b, 0).value;
  }

  async varintNum(what = "varint", max = Number.MAX_SAFE_INTEGER): Promise<number> {
    const v = await this.varint(what);
    if (v > BigInt(max)) throw new DecodeError(`${what} too large: ${v}`);
    return Number(v);
  }

  async cancel(reason?: unknown): Promise<void> {
    try {
      await this.source.cancel?.(reason);
    } catch {
      /* already closed */
    }
  }
}
