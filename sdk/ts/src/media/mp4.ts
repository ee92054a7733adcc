/** Minimal ISO-BMFF box writing helpers (big-endian). */

export type BoxPart = Uint8Array | readonly BoxPart[];

function flatten(parts: readonly BoxPart[], out: Uint8Array[]): void {
  for (const p of parts) {
    if (p instanceof Uint8Array) out.push(p);
    else flatten(p, out);
  }
}

export function concat(parts: readonly BoxPart[]): Uint8Array {
  const flat: Uint8Array[] = [];
  flatten(parts, flat);
  let n = 0;
  for (const p of flat) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of flat) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function fourcc(s: string): Uint8Array {
  if (s.length !== 4) throw new RangeError(`fourcc must be 4 chars: ${s}`);
  return new Uint8Array([s.charCodeAt(0), s.charCodeAt(1), s.charCodeAt(2), s.charCodeAt(3)]);
}

export function u8(v: number): Uint8Array {
  return new Uint8Array([v & 0xff]);
}

export function u16(v: number): Uint8Array {
  return new Uint8Array([(v >> 8) & 0xff, v & 0xff]);
}

export function i16(v: number): Uint8Array {
  return u16(v < 0 ? v + 0x10000 : v);
}

export function u24(v: number): Uint8Array {
  return new Uint8Array([(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]);
}

export function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

export function i32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v);
  return b;
}

export function u64(v: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v));
  return b;
}

export function zeros(n: number): Uint8Array {
  return new Uint8Array(n);
}

export function box(type: string, ...payload: BoxPart[]): Uint8Array {
  const body = concat(payload);
  return concat([u32(body.length + 8), fourcc(type), body]);
}

export function fullBox(type: string, version: number, flags: number, ...payload: BoxPart[]): Uint8Array {
  return box(type, u8(version), u24(flags), ...payload);
}

/** Unity transformation matrix for mvhd/tkhd. */
export const MATRIX = concat([
  u32(0x00010000), u32(0), u32(0),
  u32(0), u32(0x00010000), u32(0),
  u32(0), u32(0), u32(0x40000000),
]);
