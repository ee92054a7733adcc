/**
 * Async byte reader over a WebTransport receive stream (or any async source of chunks), with
 * MoQT varint support. Premature end of stream is a {@link DecodeError}.
 */
import { DecodeError } from "../errors.js";
import { decodeVarint, varintLengthFromFirstByte } from "./varint.js";
export class StreamReader {
    source;
    chunks = [];
    buffered = 0;
    eof = false;
    constructor(source) {
        this.source = source;
    }
    /** Wrap a ReadableStream of bytes. */
    static from(stream) {
        return new StreamReader(stream.getReader());
    }
    /** Wrap in-memory chunks (tests, replay). */
    static fromChunks(chunks) {
        let i = 0;
        return new StreamReader({
            read: async () => {
                const c = chunks[i++];
                return c === undefined ? { done: true } : { done: false, value: c };
            },
        });
    }
    /** Pull until at least `n` bytes are buffered; false when the stream ended first. */
    async fill(n) {
        while (this.buffered < n) {
            if (this.eof)
                return false;
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
    take(n) {
        const first = this.chunks[0];
        if (first !== undefined && first.length >= n) {
            const out = first.subarray(0, n);
            if (first.length === n)
                this.chunks.shift();
            else
                this.chunks[0] = first.subarray(n);
            this.buffered -= n;
            return out;
        }
        const out = new Uint8Array(n);
        let o = 0;
        while (o < n) {
            const c = this.chunks[0];
            const k = Math.min(c.length, n - o);
            out.set(c.subarray(0, k), o);
            o += k;
            if (k === c.length)
                this.chunks.shift();
            else
                this.chunks[0] = c.subarray(k);
        }
        this.buffered -= n;
        return out;
    }
    /** True when the stream has ended and every byte was consumed. */
    async atEnd() {
        return !(await this.fill(1));
    }
    async bytes(n, what = "bytes") {
        if (n === 0)
            return new Uint8Array(0);
        if (!(await this.fill(n))) {
            throw new DecodeError(`stream ended inside ${what} (need ${n}, have ${this.buffered})`, { truncated: true });
        }
        return this.take(n);
    }
    async u8(what = "u8") {
        return (await this.bytes(1, what))[0];
    }
    async u16(what = "u16") {
        const b = await this.bytes(2, what);
        return (b[0] << 8) | b[1];
    }
    /** A varint, or undefined when the stream ended cleanly before its first byte. */
    async varintOrEnd(what = "varint") {
        if (!(await this.fill(1)))
            return undefined;
        return this.varint(what);
    }
    async varint(what = "varint") {
        if (!(await this.fill(1)))
            throw new DecodeError(`stream ended before ${what}`, { truncated: true });
        const first = this.chunks[0][0];
        const n = varintLengthFromFirstByte(first);
        const b = await this.bytes(n, what);
        return decodeVarint(b, 0).value;
    }
    async varintNum(what = "varint", max = Number.MAX_SAFE_INTEGER) {
        const v = await this.varint(what);
        if (v > BigInt(max))
            throw new DecodeError(`${what} too large: ${v}`);
        return Number(v);
    }
    async cancel(reason) {
        try {
            await this.source.cancel?.(reason);
        }
        catch {
            /* already closed */
        }
    }
}
//# sourceMappingURL=reader.js.map