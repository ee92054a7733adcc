/** Byte writer and bounds-checked reader used by every MoQT codec in this package. */
import { DecodeError } from "../errors.js";
import { decodeVarint, varintSize, writeVarint } from "./varint.js";
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
export function utf8(s) {
    return encoder.encode(s);
}
/** Decode UTF-8, turning invalid bytes into a DecodeError. */
export function fromUtf8(b) {
    try {
        return decoder.decode(b);
    }
    catch {
        throw new DecodeError("invalid UTF-8");
    }
}
export function concatBytes(parts) {
    let n = 0;
    for (const p of parts)
        n += p.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
        out.set(p, o);
        o += p.length;
    }
    return out;
}
/** Growable big-endian writer. */
export class Writer {
    buf;
    len = 0;
    constructor(initial = 64) {
        this.buf = new Uint8Array(initial);
    }
    get length() {
        return this.len;
    }
    reserve(n) {
        if (this.len + n <= this.buf.length)
            return;
        let cap = this.buf.length * 2;
        while (cap < this.len + n)
            cap *= 2;
        const next = new Uint8Array(cap);
        next.set(this.buf.subarray(0, this.len));
        this.buf = next;
    }
    u8(v) {
        if (!Number.isInteger(v) || v < 0 || v > 0xff)
            throw new RangeError(`u8 out of range: ${v}`);
        this.reserve(1);
        this.buf[this.len++] = v;
        return this;
    }
    u16(v) {
        if (!Number.isInteger(v) || v < 0 || v > 0xffff)
            throw new RangeError(`u16 out of range: ${v}`);
        this.reserve(2);
        this.buf[this.len++] = v >> 8;
        this.buf[this.len++] = v & 0xff;
        return this;
    }
    varint(v) {
        const n = varintSize(v);
        this.reserve(n);
        this.len += writeVarint(this.buf, this.len, v, n);
        return this;
    }
    bytes(b) {
        this.reserve(b.length);
        this.buf.set(b, this.len);
        this.len += b.length;
        return this;
    }
    /** varint length followed by the bytes */
    lenBytes(b) {
        return this.varint(b.length).bytes(b);
    }
    finish() {
        return this.buf.slice(0, this.len);
    }
}
/** Bounds-checked reader over one buffer; every failure is a {@link DecodeError}. */
export class Reader {
    buf;
    off = 0;
    constructor(buf) {
        this.buf = buf;
    }
    get offset() {
        return this.off;
    }
    get remaining() {
        return this.buf.length - this.off;
    }
    atEnd() {
        return this.off >= this.buf.length;
    }
    need(n, what) {
        if (this.off + n > this.buf.length) {
            throw new DecodeError(`truncated ${what}: need ${n} bytes, have ${this.buf.length - this.off}`, {
                truncated: true,
            });
        }
    }
    u8(what = "u8") {
        this.need(1, what);
        return this.buf[this.off++];
    }
    u16(what = "u16") {
        this.need(2, what);
        const v = (this.buf[this.off] << 8) | this.buf[this.off + 1];
        this.off += 2;
        return v;
    }
    varint(what = "varint") {
        try {
            const { value, length } = decodeVarint(this.buf, this.off);
            this.off += length;
            return value;
        }
        catch (e) {
            if (e instanceof DecodeError)
                throw new DecodeError(`truncated ${what}`, { truncated: true });
            throw e;
        }
    }
    /** A varint that must fit a JS number (lengths, counts). */
    varintNum(what = "varint", max = Number.MAX_SAFE_INTEGER) {
        const v = this.varint(what);
        if (v > BigInt(max))
            throw new DecodeError(`${what} too large: ${v} > ${max}`);
        return Number(v);
    }
    bytes(n, what = "bytes") {
        this.need(n, what);
        const out = this.buf.slice(this.off, this.off + n);
        this.off += n;
        return out;
    }
    /** varint length then that many bytes; the length must not exceed `max`. */
    lenBytes(what = "bytes", max = 0xffff) {
        const n = this.varintNum(`${what} length`, Number.MAX_SAFE_INTEGER);
        if (n > max)
            throw new DecodeError(`${what} length ${n} exceeds ${max}`);
        return this.bytes(n, what);
    }
    rest() {
        const out = this.buf.slice(this.off);
        this.off = this.buf.length;
        return out;
    }
}
//# sourceMappingURL=buffer.js.map