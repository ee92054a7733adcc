/**
 * MoQT draft-18 data plane: SUBGROUP_HEADER streams with their objects (Object ID deltas,
 * properties, status), OBJECT_DATAGRAM, and FETCH_HEADER streams with their objects.
 */
import { DecodeError } from "../errors.js";
import { Reader, Writer } from "./buffer.js";
import type { StreamReader } from "./reader.js";
import { MAX_VARINT } from "./varint.js";
import { type KeyValue, readKeyValues, writeKeyValues } from "./wire.js";

export const ObjectStatus = { NORMAL: 0x0, END_OF_GROUP: 0x3, END_OF_TRACK: 0x4 } as const;
export type ObjectStatusCode = 0x0 | 0x3 | 0x4;

export const FETCH_HEADER_TYPE = 0x05;
export const PADDING_STREAM_TYPE = 0x132b3e28;
export const PADDING_DATAGRAM_TYPE = 0x132b3e29;

// ---------------------------------------------------------------- SUBGROUP_HEADER

export interface SubgroupHeader {
  readonly trackAlias: bigint;
  readonly groupId: bigint;
  /** How the Subgroup ID is carried: 0 = absent (0), 1 = first Object ID, 2 = explicit. */
  readonly subgroupIdMode: 0 | 1 | 2;
  /** Explicit Subgroup ID (mode 2), or 0 for mode 0; for mode 1 it is set by the first object. */
  readonly subgroupId: bigint;
  /** Publisher Priority; undefined = DEFAULT_PRIORITY bit set (inherit from the subscription). */
  readonly priority: number | undefined;
  /** PROPERTIES bit: every object carries a Properties field. */
  readonly hasProperties: boolean;
  /** END_OF_GROUP bit: this subgroup holds the group's largest object; FIN ends the group. */
  readonly endOfGroup: boolean;
  /** FIRST_OBJECT bit: the first object here is the first published in the subgroup. */
  readonly firstObject: boolean;
}

/** True when `t` is a valid SUBGROUP_HEADER stream type (0b0XX1XXXX, mode ≠ 0b11). */
export function isSubgroupType(t: bigint | number): boolean {
  const v = Number(t);
  if (v < 0x10 || v > 0x7f) return false;
  if ((v & 0x10) === 0) return false;
  return ((v & 0x06) >> 1) !== 3;
}

export function subgroupType(h: Omit<SubgroupHeader, "trackAlias" | "groupId" | "subgroupId">): number {
  let t = 0x10;
  if (h.hasProperties) t |= 0x01;
  t |= h.subgroupIdMode << 1;
  if (h.endOfGroup) t |= 0x08;
  if (h.priority === undefined) t |= 0x20;
  if (h.firstObject) t |= 0x40;
  return t;
}

export function encodeSubgroupHeader(h: SubgroupHeader): Uint8Array {
  const w = new Writer(24);
  w.varint(subgroupType(h)).varint(h.trackAlias).varint(h.groupId);
  if (h.subgroupIdMode === 2) w.varint(h.subgroupId);
  if (h.priority !== undefined) w.u8(h.priority);
  return w.finish();
}

function headerFromType(t: number, trackAlias: bigint, groupId: bigint, subgroupId: bigint, priority: number | undefined): SubgroupHeader {
  return {
    trackAlias,
    groupId,
    subgroupIdMode: ((t & 0x06) >> 1) as 0 | 1 | 2,
    subgroupId,
    priority,
    hasProperties: (t & 0x01) !== 0,
    endOfGroup: (t & 0x08) !== 0,
    firstObject: (t & 0x40) !== 0,
  };
}

/** Read the rest of a SUBGROUP_HEADER after its stream type varint. */
export async function readSubgroupHeader(type: bigint, r: StreamReader): Promise<SubgroupHeader> {
  if (!isSubgroupType(type)) throw new DecodeError(`invalid SUBGROUP_HEADER type 0x${type.toString(16)}`);
  const t = Number(type);
  const trackAlias = await r.varint("track alias");
  const groupId = await r.varint("group id");
  const mode = (t & 0x06) >> 1;
  const subgroupId = mode === 2 ? await r.varint("subgroup id") : 0n;
  const priority = (t & 0x20) === 0 ? await r.u8("publisher priority") : undefined;
  return headerFromType(t, trackAlias, groupId, subgroupId, priority);
}

/** Synchronous variant for complete buffers (tests). */
export function decodeSubgroupHeader(r: Reader): SubgroupHeader {
  const type = r.varint("stream type");
  if (!isSubgroupType(type)) throw new DecodeError(`invalid SUBGROUP_HEADER type 0x${type.toString(16)}`);
  const t = Number(type);
  const trackAlias = r.varint("track alias");
  const groupId = r.varint("group id");
  const mode = (t & 0x06) >> 1;
  const subgroupId = mode === 2 ? r.varint("subgroup id") : 0n;
  const priority = (t & 0x20) === 0 ? r.u8("publisher priority") : undefined;
  return headerFromType(t, trackAlias, groupId, subgroupId, priority);
}

// ---------------------------------------------------------------- Objects on a subgroup stream

export interface MoqObject {
  readonly groupId: bigint;
  readonly objectId: bigint;
  readonly status: ObjectStatusCode;
  readonly properties: readonly KeyValue[];
  readonly payload: Uint8Array;
}

/**
 * Serialize one object for a subgroup stream. `prevObjectId` is the previous object's ID on
 * this stream (undefined for the first). `hasProperties` must match the header's bit.
 */
export function encodeSubgroupObject(
  prevObjectId: bigint | undefined,
  o: { objectId: bigint; payload: Uint8Array; status?: ObjectStatusCode; properties?: readonly KeyValue[] },
  hasProperties: boolean,
): Uint8Array {
  const delta = prevObjectId === undefined ? o.objectId : o.objectId - prevObjectId - 1n;
  if (delta < 0n) throw new RangeError("object IDs must increase on a subgroup stream");
  const status = o.status ?? ObjectStatus.NORMAL;
  if (status !== ObjectStatus.NORMAL && o.payload.length > 0) throw new RangeError("non-normal object must be empty");
  const w = new Writer(o.payload.length + 16);
  w.varint(delta);
  if (hasProperties) {
    const pw = new Writer();
    if (o.properties !== undefined) writeKeyValues(pw, o.properties);
    const props = pw.finish();
    if (props.length > 0 && status !== ObjectStatus.NORMAL) throw new RangeError("only normal objects carry properties");
    w.lenBytes(props);
  } else if (o.properties !== undefined && o.properties.length > 0) {
    throw new RangeError("properties given but the subgroup header has no PROPERTIES bit");
  }
  w.varint(o.payload.length);
  if (o.payload.length === 0) w.varint(status);
  else w.bytes(o.payload);
  return w.finish();
}

function checkStatus(s: bigint): ObjectStatusCode {
  if (s === 0n || s === 3n || s === 4n) return Number(s) as ObjectStatusCode;
  throw new DecodeError(`invalid object status ${s}`);
}

/**
 * Read the next object of a subgroup stream; undefined at a clean FIN between objects.
 * A FIN inside an object is a {@link DecodeError}.
 */
export async function readSubgroupObject(
  r: StreamReader,
  h: SubgroupHeader,
  prevObjectId: bigint | undefined,
  maxPayload = 64 << 20,
): Promise<MoqObject | undefined> {
  const delta = await r.varintOrEnd("object id delta");
  if (delta === undefined) return undefined;
  const objectId = prevObjectId === undefined ? delta : prevObjectId + delta + 1n;
  if (objectId > MAX_VARINT) throw new DecodeError("object id overflows 2^64-1");
  let properties: KeyValue[] = [];
  if (h.hasProperties) {
    const n = await r.varintNum("properties length", 0xffffff);
    if (n > 0) properties = readKeyValues(new Reader(await r.bytes(n, "object properties")));
  }
  const len = await r.varintNum("payload length", maxPayload);
  let status: ObjectStatusCode = 0;
  let payload: Uint8Array = new Uint8Array(0);
  if (len === 0) {
    status = checkStatus(await r.varint("object status"));
    if (status !== 0 && properties.length > 0) throw new DecodeError("properties on a non-normal object");
  } else {
    payload = await r.bytes(len, "object payload");
  }
  return { groupId: h.groupId, objectId, status, properties, payload };
}

/** Synchronous variant for complete buffers (tests). */
export function decodeSubgroupObject(r: Reader, h: SubgroupHeader, prevObjectId: bigint | undefined): MoqObject {
  const delta = r.varint("object id delta");
  const objectId = prevObjectId === undefined ? delta : prevObjectId + delta + 1n;
  if (objectId > MAX_VARINT) throw new DecodeError("object id overflows 2^64-1");
  let properties: KeyValue[] = [];
  if (h.hasProperties) {
    const n = r.varintNum("properties length");
    properties = readKeyValues(new Reader(r.bytes(n, "object properties")));
  }
  const len = r.varintNum("payload length");
  let status: ObjectStatusCode = 0;
  let payload: Uint8Array = new Uint8Array(0);
  if (len === 0) {
    status = checkStatus(r.varint("object status"));
    if (status !== 0 && properties.length > 0) throw new DecodeError("properties on a non-normal object");
  } else payload = r.bytes(len, "object payload");
  return { groupId: h.groupId, objectId, status, properties, payload };
}

// ---------------------------------------------------------------- OBJECT_DATAGRAM

export interface ObjectDatagram {
  readonly trackAlias: bigint;
  readonly groupId: bigint;
  readonly objectId: bigint;
  /** undefined = DEFAULT_PRIORITY (inherit) */
  readonly priority: number | undefined;
  readonly endOfGroup: boolean;
  readonly properties: readonly KeyValue[];
  /** Present (and payload empty) when the STATUS bit is set. */
  readonly status: ObjectStatusCode | undefined;
  readonly payload: Uint8Array;
}

export function isDatagramType(t: number): boolean {
  if (t > 0x2f || (t > 0x0f && t < 0x20)) return false;
  if ((t & 0x20) !== 0 && (t & 0x02) !== 0) return false; // STATUS with END_OF_GROUP
  return true;
}

export function encodeDatagram(d: ObjectDatagram): Uint8Array {
  let t = 0;
  const props = new Writer();
  if (d.properties.length > 0) {
    writeKeyValues(props, d.properties);
    t |= 0x01;
  }
  if (d.endOfGroup) t |= 0x02;
  if (d.objectId === 0n) t |= 0x04;
  if (d.priority === undefined) t |= 0x08;
  if (d.status !== undefined) {
    if (d.endOfGroup) throw new RangeError("a status datagram cannot signal end of group");
    if (d.status !== 0 && d.properties.length > 0) throw new RangeError("only normal objects carry properties");
    t |= 0x20;
  }
  const w = new Writer(d.payload.length + 24);
  w.varint(t).varint(d.trackAlias).varint(d.groupId);
  if (d.objectId !== 0n) w.varint(d.objectId);
  if (d.priority !== undefined) w.u8(d.priority);
  if ((t & 0x01) !== 0) w.lenBytes(props.finish());
  if (d.status !== undefined) w.varint(d.status);
  else w.bytes(d.payload);
  return w.finish();
}

export function decodeDatagram(buf: Uint8Array): ObjectDatagram {
  const r = new Reader(buf);
  const t = r.varintNum("datagram type");
  if (!isDatagramType(t)) throw new DecodeError(`invalid OBJECT_DATAGRAM type 0x${t.toString(16)}`);
  const trackAlias = r.varint("track alias");
  const groupId = r.varint("group id");
  const objectId = (t & 0x04) !== 0 ? 0n : r.varint("object id");
  const priority = (t & 0x08) !== 0 ? undefined : r.u8("publisher priority");
  let properties: KeyValue[] = [];
  if ((t & 0x01) !== 0) {
    const n = r.varintNum("properties length");
    if (n === 0) throw new DecodeError("PROPERTIES bit set with zero-length properties");
    properties = readKeyValues(new Reader(r.bytes(n, "datagram properties")));
  }
  let status: ObjectStatusCode | undefined;
  let payload: Uint8Array = new Uint8Array(0);
  if ((t & 0x20) !== 0) {
    status = checkStatus(r.varint("object status"));
    if (status !== 0 && properties.length > 0) throw new DecodeError("properties on a non-normal object");
    if (!r.atEnd()) throw new DecodeError("status datagram has trailing bytes");
  } else payload = r.rest();
  return { trackAlias, groupId, objectId, priority, endOfGroup: (t & 0x02) !== 0, properties, status, payload };
}

// ---------------------------------------------------------------- FETCH stream

export const FetchFlag = {
  SUBGROUP_MASK: 0x03,
  OBJECT_ID_DELTA: 0x04,
  GROUP_ID_DELTA: 0x08,
  PRIORITY: 0x10,
  PROPERTIES: 0x20,
  DATAGRAM: 0x40,
  END_OF_NON_EXISTENT_RANGE: 0x8c,
  END_OF_UNKNOWN_RANGE: 0x10c,
} as const;

export type FetchItem =
  | { readonly kind: "object"; readonly groupId: bigint; readonly subgroupId: bigint | undefined; readonly objectId: bigint; readonly priority: number; readonly properties: readonly KeyValue[]; readonly payload: Uint8Array }
  | { readonly kind: "endOfRange"; readonly unknown: boolean; readonly groupId: bigint; readonly objectId: bigint };

/** Decoder state carried across the objects of one FETCH stream. */
export class FetchObjectDecoder {
  private prev: { group: bigint; object: bigint } | undefined;
  private prevSubgroup: bigint | undefined;
  private prevPriority: number | undefined;
  constructor(private readonly descending = false) {}

  async next(r: StreamReader): Promise<FetchItem | undefined> {
    const flagsBig = await r.varintOrEnd("serialization flags");
    if (flagsBig === undefined) return undefined;
    if (flagsBig > 0x10cn) throw new DecodeError(`invalid fetch serialization flags 0x${flagsBig.toString(16)}`);
    const flags = Number(flagsBig);
    if (flags === FetchFlag.END_OF_NON_EXISTENT_RANGE || flags === FetchFlag.END_OF_UNKNOWN_RANGE) {
      // Group and Object fields follow, with the same delta rules as an object's.
      const groupId = this.group(await r.varint("group id delta"));
      const objectId = this.objectInNewGroup(groupId, await r.varint("object id delta"));
      this.prev = { group: groupId, object: objectId };
      return { kind: "endOfRange", unknown: flags === FetchFlag.END_OF_UNKNOWN_RANGE, groupId, objectId };
    }
    if (flags >= 0x80) throw new DecodeError(`invalid fetch serialization flags 0x${flags.toString(16)}`);
    const prev = this.prev;
    if (prev === undefined && ((flags & FetchFlag.GROUP_ID_DELTA) === 0 || (flags & FetchFlag.OBJECT_ID_DELTA) === 0)) {
      throw new DecodeError("first fetch object must carry group and object IDs");
    }
    // Field order: [Group ID Delta] [Subgroup ID] [Object ID Delta] [Priority] [Properties]
    const hasGroup = (flags & FetchFlag.GROUP_ID_DELTA) !== 0;
    const groupId = hasGroup ? this.group(await r.varint("group id delta")) : (prev as { group: bigint }).group;
    let subgroupId: bigint | undefined;
    if ((flags & FetchFlag.DATAGRAM) === 0) {
      switch (flags & FetchFlag.SUBGROUP_MASK) {
        case 0:
          subgroupId = 0n;
          break;
        case 1:
          if (this.prevSubgroup === undefined) throw new DecodeError("fetch object references a missing prior subgroup");
          subgroupId = this.prevSubgroup;
          break;
        case 2:
          if (this.prevSubgroup === undefined) throw new DecodeError("fetch object references a missing prior subgroup");
          subgroupId = this.prevSubgroup + 1n;
          break;
        default:
          subgroupId = await r.varint("subgroup id");
      }
    }
    let objectId: bigint;
    if ((flags & FetchFlag.OBJECT_ID_DELTA) !== 0) {
      const d = await r.varint("object id delta");
      objectId = hasGroup ? d : (prev as { object: bigint }).object + d;
    } else {
      objectId = (prev as { object: bigint }).object + 1n;
    }
    if (objectId > MAX_VARINT) throw new DecodeError("object id overflows");
    let priority: number;
    if ((flags & FetchFlag.PRIORITY) !== 0) priority = await r.u8("priority");
    else if (this.prevPriority === undefined) throw new DecodeError("fetch object references a missing prior priority");
    else priority = this.prevPriority;
    let properties: KeyValue[] = [];
    if ((flags & FetchFlag.PROPERTIES) !== 0) {
      const n = await r.varintNum("properties length", 0xffffff);
      properties = readKeyValues(new Reader(await r.bytes(n, "fetch object properties")));
    }
    const len = await r.varintNum("payload length", 64 << 20);
    const payload = await r.bytes(len, "fetch object payload");
    this.prev = { group: groupId, object: objectId };
    if (subgroupId !== undefined) this.prevSubgroup = subgroupId;
    this.prevPriority = priority;
    return { kind: "object", groupId, subgroupId, objectId, priority, properties, payload };
  }

  private objectInNewGroup(groupId: bigint, d: bigint): bigint {
    if (this.prev === undefined || this.prev.group !== groupId) return d;
    return this.prev.object + d;
  }

  private group(delta: bigint): bigint {
    if (this.prev === undefined) return delta;
    const g = this.descending ? this.prev.group - (delta + 1n) : this.prev.group + delta + 1n;
    if (g < 0n || g > MAX_VARINT) throw new DecodeError("fetch group id out of range");
    return g;
  }
}

/** Encoder for a FETCH response stream: always writes explicit IDs, subgroup and priority. */
export class FetchObjectEncoder {
  private prev: { group: bigint; object: bigint } | undefined;

  header(requestId: bigint): Uint8Array {
    return new Writer(12).varint(FETCH_HEADER_TYPE).varint(requestId).finish();
  }

  object(o: { groupId: bigint; subgroupId: bigint; objectId: bigint; priority: number; payload: Uint8Array }): Uint8Array {
    const w = new Writer(o.payload.length + 24);
    const prev = this.prev;
    if (prev !== undefined && o.groupId === prev.group) {
      if (o.objectId <= prev.object) throw new RangeError("fetch objects must ascend within a group");
      // same group: no Group ID Delta; Object ID Delta is relative to the prior object
      w.varint(0x03 | FetchFlag.OBJECT_ID_DELTA | FetchFlag.PRIORITY);
      w.varint(o.subgroupId).varint(o.objectId - prev.object).u8(o.priority);
    } else {
      if (prev !== undefined && o.groupId < prev.group) throw new RangeError("fetch groups must ascend");
      w.varint(0x03 | FetchFlag.GROUP_ID_DELTA | FetchFlag.OBJECT_ID_DELTA | FetchFlag.PRIORITY);
      w.varint(prev === undefined ? o.groupId : o.groupId - prev.group - 1n);
      w.varint(o.subgroupId).varint(o.objectId).u8(o.priority);
    }
    w.varint(o.payload.length).bytes(o.payload);
    this.prev = { group: o.groupId, object: o.objectId };
    return w.finish();
  }
}
