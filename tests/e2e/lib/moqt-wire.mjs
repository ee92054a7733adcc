// The few MoQT draft-18 wire pieces the browser tests need, written from the spec
// (draft-ietf-moq-transport-18: "Variable-Length Integers", "Key-Value-Pair Structure",
// "Control Messages", "SETUP"). Plain ES module with no imports: it runs in node and in the page.
//
// MoQT's varint is NOT QUIC's: the number of leading 1 bits of the first byte gives the length
// (0 → 1 byte/7 bits, 10 → 2/14, 110 → 3/21, ... 11111110 → 8/56, 11111111 → 9/64).

/** Stream type of the control stream = message type of SETUP. */
export const SETUP = 0x2f00n;

/** Setup Option types. */
export const SetupOption = Object.freeze({
  PATH: 0x01n,
  AUTHORIZATION_TOKEN: 0x03n,
  MAX_AUTH_TOKEN_CACHE_SIZE: 0x04n,
  AUTHORITY: 0x05n,
  MOQT_IMPLEMENTATION: 0x07n,
});

const MAX_U64 = (1n << 64n) - 1n;

/** Encodes `value` (number or bigint, 0 ≤ value < 2^64) in the fewest bytes. */
export function encodeVarint(value) {
  const v = BigInt(value);
  if (v < 0n || v > MAX_U64) throw new RangeError(`varint out of range: ${value}`);
  if (v >= 1n << 56n) {
    const out = new Uint8Array(9);
    out[0] = 0xff;
    for (let i = 0; i < 8; i++) out[8 - i] = Number((v >> BigInt(8 * i)) & 0xffn);
    return out;
  }
  let len = 1;
  while (v >= 1n << BigInt(7 * len)) len++;
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[len - 1 - i] = Number((v >> BigInt(8 * i)) & 0xffn);
  // len-1 leading ones, then a zero, above the value bits of the first byte.
  out[0] |= (0xff << (9 - len)) & 0xff;
  return out;
}

/**
 * Decodes a varint at `offset`. Returns { value: bigint, size } or null if `bytes` ends first.
 */
export function decodeVarint(bytes, offset = 0) {
  if (offset >= bytes.length) return null;
  const first = bytes[offset];
  let ones = 0;
  while (ones < 8 && first & (0x80 >> ones)) ones++;
  const size = ones === 8 ? 9 : ones + 1;
  if (offset + size > bytes.length) return null;
  let value = ones === 8 ? 0n : BigInt(first & (0xff >> (ones + 1)));
  for (let i = 1; i < size; i++) value = (value << 8n) | BigInt(bytes[offset + i]);
  return { value, size };
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Encodes Key-Value-Pairs. `pairs` is [[type, value], ...] sorted by type; an odd type takes a
 * Uint8Array (or string, UTF-8) value, an even type a number/bigint.
 */
export function encodeKeyValuePairs(pairs) {
  const parts = [];
  let previous = 0n;
  for (const [rawType, value] of pairs) {
    const type = BigInt(rawType);
    if (type < previous) throw new RangeError('key-value pairs must be sorted by type');
    parts.push(encodeVarint(type - previous));
    previous = type;
    if (type & 1n) {
      const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
      if (bytes.length > 0xffff) throw new RangeError('key-value value longer than 65535 bytes');
      parts.push(encodeVarint(bytes.length), bytes);
    } else {
      parts.push(encodeVarint(value));
    }
  }
  return concat(parts);
}

/** Decodes Key-Value-Pairs spanning all of `bytes`: [{ type: bigint, value: bigint|Uint8Array }]. */
export function decodeKeyValuePairs(bytes) {
  const pairs = [];
  let at = 0;
  let previous = 0n;
  while (at < bytes.length) {
    const delta = decodeVarint(bytes, at);
    if (!delta) throw new Error('truncated key-value type');
    at += delta.size;
    const type = previous + delta.value;
    if (type > MAX_U64) throw new Error('key-value type overflow');
    previous = type;
    if (type & 1n) {
      const len = decodeVarint(bytes, at);
      if (!len) throw new Error('truncated key-value length');
      at += len.size;
      if (len.value > 0xffffn) throw new Error('key-value length over 65535');
      const end = at + Number(len.value);
      if (end > bytes.length) throw new Error('truncated key-value value');
      pairs.push({ type, value: bytes.slice(at, end) });
      at = end;
    } else {
      const value = decodeVarint(bytes, at);
      if (!value) throw new Error('truncated key-value value');
      at += value.size;
      pairs.push({ type, value: value.value });
    }
  }
  return pairs;
}

/** A control message: Type (vi64), Length (16), Payload. */
export function encodeControlMessage(type, payload) {
  if (payload.length > 0xffff) throw new RangeError('control message payload over 65535 bytes');
  return concat([encodeVarint(type), new Uint8Array([payload.length >> 8, payload.length & 0xff]), payload]);
}

/**
 * Decodes the control message at the start of `bytes`: { type, length, payload, size }, or null
 * if more bytes are needed.
 */
export function decodeControlMessage(bytes) {
  const type = decodeVarint(bytes, 0);
  if (!type || bytes.length < type.size + 2) return null;
  const length = (bytes[type.size] << 8) | bytes[type.size + 1];
  const start = type.size + 2;
  if (bytes.length < start + length) return null;
  return { type: type.value, length, payload: bytes.slice(start, start + length), size: start + length };
}

/** A SETUP message with the given Setup Options ([[type, value], ...], sorted by type). */
export function encodeSetup(options = []) {
  return encodeControlMessage(SETUP, encodeKeyValuePairs(options));
}
