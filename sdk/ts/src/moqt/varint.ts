/**
 * The MoQT draft-18 variable-length integer (§"Variable-Length Integers"): 1 to 9 bytes, the
 * number of leading 1 bits of the first byte gives the length. This is NOT QUIC's varint.
 *
 * | leading bits | bytes | usable bits |
 * | 0            | 1     | 7           |
 * | 10           | 2     | 14          |
 * | …            | …     | …           |
 * | 11111110     | 8     | 56          |
 * | 11111111     | 9     | 64          |
 */
import { DecodeError } from "../errors.js";

export const MAX_VARINT = (1n << 64n) - 1n;

/** Length in bytes of the varint whose first byte is `first`. */
export function varintLengthFromFirstByte(first: number): number {
  let n = 1;
  for (let mask = 0x80; mask !== 0 && (first & mask) !== 0; mask >>= 1) n++;
  return n; // 0xFF gives 9
}

/** Smallest encoding length for `value`. */
export function varintSize(value: bigint | number): number {
  const v = toBig(value);
  for (let n = 1; n <= 8; n++) {
    if (v < 1n << BigInt(7 * n)) return n;
  }
  return 9;
}

function toBig(value: bigint | number): bigint {
  const v = typeof value === "bigint" ? value : numberToBig(value);
  if (v < 0n || v > MAX_VARINT) throw new RangeError(`varint out of range: ${v}`);
  return v;
}

function numberToBig(value: number): bigint {
  if (!Number.isSafeInteger(value)) throw new RangeError(`varint must be a safe integer: ${value}`);
  return BigInt(value);
}

/**
 * Write `value` at `out[offset]` using exactly `length` bytes (default: minimal). Returns the
 * number of bytes written. Non-minimal lengths are valid on the wire (draft-18).
 */
export function writeVarint(out: Uint8Array, offset: number, value: bigint | number, length?: number): number {
  const v = toBig(value);
  const n = length ?? varintSize(v);
  if (n < 1 || n > 9) throw new RangeError(`invalid varint length ${n}`);
  if (n < 9 && v >= 1n << BigInt(7 * n)) throw new RangeError(`${v} does not fit a ${n}-byte varint`);
  if (offset + n > out.length) throw new RangeError("buffer too small for varint");
  if (n === 9) {
    out[offset] = 0xff;
    let x = v;
    for (let i = 8; i >= 1; i--) {
      out[offset + i] = Number(x & 0xffn);
      x >>= 8n;
    }
    return 9;
  }
  if (n <= 4) {
    // fast path: fits 28 bits, plain number arithmetic
    let x = Number(v);
    for (let i = n - 1; i >= 0; i--) {
      out[offset + i] = x & 0xff;
      x = Math.floor(x / 256);
    }
  } else {
    let x = v;
    for (let i = n - 1; i >= 0; i--) {
      out[offset + i] = Number(x & 0xffn);
      x >>= 8n;
    }
  }
  const prefix = (0xff << (9 - n)) & 0xff; // n-1 leading ones then a zero
  out[offset] = (out[offset] ?? 0) | prefix;
  return n;
}

/** Encode `value` as a new byte array (minimal length unless `length` is given). */
export function encodeVarint(value: bigint | number, length?: number): Uint8Array {
  const n = length ?? varintSize(value);
  const out = new Uint8Array(n);
  writeVarint(out, 0, value, n);
  return out;
}

/**
 * Decode a varint at `buf[offset]`. Throws {@link DecodeError} (`truncated: true`) when the
 * buffer ends before the varint does.
 */
export function decodeVarint(buf: Uint8Array, offset = 0): { value: bigint; length: number } {
  const first = buf[offset];
  if (first === undefined) throw new DecodeError("truncated varint: no bytes", { truncated: true });
  const n = varintLengthFromFirstByte(first);
  if (offset + n > buf.length) {
    throw new DecodeError(`truncated varint: need ${n} bytes, have ${buf.length - offset}`, { truncated: true });
  }
  if (n === 1) return { value: BigInt(first), length: 1 };
  if (n === 9) {
    let v = 0n;
    for (let i = 1; i < 9; i++) v = (v << 8n) | BigInt(buf[offset + i] as number);
    return { value: v, length: 9 };
  }
  const firstBits = first & (0xff >> n); // drop the n-1 ones and the zero
  if (n <= 4) {
    let v = firstBits;
    for (let i = 1; i < n; i++) v = v * 256 + (buf[offset + i] as number);
    return { value: BigInt(v), length: n };
  }
  let v = BigInt(firstBits);
  for (let i = 1; i < n; i++) v = (v << 8n) | BigInt(buf[offset + i] as number);
  return { value: v, length: n };
}
