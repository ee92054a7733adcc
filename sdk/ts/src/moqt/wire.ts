/**
 * Shared MoQT draft-18 structures: Location, Key-Value-Pair, Reason Phrase, Track Namespace and
 * Track Name, the Token of the AUTHORIZATION TOKEN parameter, Subscription Filter and Message
 * Parameters.
 */
import { DecodeError, SessionCode } from "../errors.js";
import { Reader, Writer, fromUtf8, utf8 } from "./buffer.js";
import { MAX_VARINT } from "./varint.js";

// ---------------------------------------------------------------- Location

export interface Location {
  readonly group: bigint;
  readonly object: bigint;
}

export function writeLocation(w: Writer, l: Location): void {
  w.varint(l.group).varint(l.object);
}

export function readLocation(r: Reader): Location {
  const group = r.varint("location group");
  const object = r.varint("location object");
  return { group, object };
}

export function compareLocation(a: Location, b: Location): number {
  if (a.group !== b.group) return a.group < b.group ? -1 : 1;
  if (a.object !== b.object) return a.object < b.object ? -1 : 1;
  return 0;
}

// ---------------------------------------------------------------- Key-Value-Pair

/** Even types carry a varint, odd types a byte string (max 65535 bytes). */
export type KeyValue =
  | { readonly type: bigint; readonly value: bigint }
  | { readonly type: bigint; readonly value: Uint8Array };

/** Write a Key-Value-Pair list; types are delta-encoded so the list is sorted first. */
export function writeKeyValues(w: Writer, kvs: readonly KeyValue[]): void {
  const sorted = [...kvs].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  let prev = 0n;
  for (const kv of sorted) {
    w.varint(kv.type - prev);
    prev = kv.type;
    const odd = (kv.type & 1n) === 1n;
    if (odd) {
      if (!(kv.value instanceof Uint8Array)) throw new TypeError(`key ${kv.type} is odd: value must be bytes`);
      if (kv.value.length > 0xffff) throw new RangeError(`key ${kv.type}: value longer than 65535 bytes`);
      w.lenBytes(kv.value);
    } else {
      if (typeof kv.value !== "bigint") throw new TypeError(`key ${kv.type} is even: value must be a bigint`);
      w.varint(kv.value);
    }
  }
}

/** Read Key-Value-Pairs until the reader (already bounded to the list) is exhausted. */
export function readKeyValues(r: Reader, count?: number): KeyValue[] {
  const out: KeyValue[] = [];
  let prev = 0n;
  while (count === undefined ? !r.atEnd() : out.length < count) {
    const type = prev + r.varint("key-value type");
    if (type > MAX_VARINT) throw new DecodeError("key-value type overflows 2^64-1");
    prev = type;
    if ((type & 1n) === 1n) {
      out.push({ type, value: r.lenBytes("key-value value", 0xffff) });
    } else {
      out.push({ type, value: r.varint("key-value value") });
    }
  }
  return out;
}

// ---------------------------------------------------------------- Reason Phrase

export const MAX_REASON_PHRASE = 1024;

export function writeReason(w: Writer, reason: string): void {
  const b = utf8(reason);
  if (b.length > MAX_REASON_PHRASE) throw new RangeError("reason phrase longer than 1024 bytes");
  w.lenBytes(b);
}

export function readReason(r: Reader): string {
  return fromUtf8(r.lenBytes("reason phrase", MAX_REASON_PHRASE));
}

// ---------------------------------------------------------------- Namespace / Track Name

/** Track Namespace: 0..32 non-empty byte fields. */
export type Namespace = readonly Uint8Array[];

export const MAX_NAMESPACE_FIELDS = 32;
export const MAX_FULL_TRACK_NAME = 4096;

/** `"stream/org_abc/lv_1"` → `["stream","org_abc","lv_1"]` as UTF-8 fields. */
export function namespaceFromString(path: string): Namespace {
  const fields = path.split("/").filter((f) => f.length > 0);
  return fields.map((f) => utf8(f));
}

export function namespaceToString(ns: Namespace): string {
  return ns.map((f) => new TextDecoder().decode(f)).join("/");
}

export function namespaceEquals(a: Namespace, b: Namespace): boolean {
  return a.length === b.length && a.every((f, i) => bytesEqual(f, b[i] as Uint8Array));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkNamespace(ns: Namespace): number {
  if (ns.length > MAX_NAMESPACE_FIELDS) throw new RangeError("namespace has more than 32 fields");
  let total = 0;
  for (const f of ns) {
    if (f.length === 0) throw new RangeError("namespace field must not be empty");
    total += f.length;
  }
  if (total > MAX_FULL_TRACK_NAME) throw new RangeError("namespace longer than 4096 bytes");
  return total;
}

export function writeNamespace(w: Writer, ns: Namespace): void {
  checkNamespace(ns);
  w.varint(ns.length);
  for (const f of ns) w.lenBytes(f);
}

export function readNamespace(r: Reader): Namespace {
  const n = r.varintNum("namespace field count");
  if (n > MAX_NAMESPACE_FIELDS) throw new DecodeError(`namespace has ${n} fields (max 32)`);
  const out: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const f = r.lenBytes("namespace field", MAX_FULL_TRACK_NAME);
    if (f.length === 0) throw new DecodeError("empty namespace field");
    total += f.length;
    if (total > MAX_FULL_TRACK_NAME) throw new DecodeError("namespace longer than 4096 bytes");
    out.push(f);
  }
  return out;
}

/** Full Track Name = namespace + name; total length ≤ 4096 bytes. */
export function writeFullTrackName(w: Writer, ns: Namespace, name: Uint8Array): void {
  const total = checkNamespace(ns) + name.length;
  if (total > MAX_FULL_TRACK_NAME) throw new RangeError("full track name longer than 4096 bytes");
  writeNamespace(w, ns);
  w.lenBytes(name);
}

export function readFullTrackName(r: Reader): { namespace: Namespace; name: Uint8Array } {
  const namespace = readNamespace(r);
  let total = 0;
  for (const f of namespace) total += f.length;
  const name = r.lenBytes("track name", MAX_FULL_TRACK_NAME - total);
  return { namespace, name };
}

// ---------------------------------------------------------------- Token

export const AliasType = { DELETE: 0, REGISTER: 1, USE_ALIAS: 2, USE_VALUE: 3 } as const;

export type Token =
  | { readonly aliasType: 0 | 2; readonly alias: bigint }
  | { readonly aliasType: 1; readonly alias: bigint; readonly tokenType: bigint; readonly value: Uint8Array }
  | { readonly aliasType: 3; readonly tokenType: bigint; readonly value: Uint8Array };

/** The token form this SDK sends: USE_VALUE, Token Type 0, the credential's UTF-8 bytes. */
export function useValueToken(credential: string): Token {
  return { aliasType: AliasType.USE_VALUE, tokenType: 0n, value: utf8(credential) };
}

export function encodeToken(t: Token): Uint8Array {
  const w = new Writer();
  w.varint(t.aliasType);
  if (t.aliasType !== 3) w.varint(t.alias);
  if (t.aliasType === 1 || t.aliasType === 3) w.varint(t.tokenType).bytes(t.value);
  return w.finish();
}

export function decodeToken(b: Uint8Array): Token {
  const r = new Reader(b);
  try {
    const aliasType = r.varintNum("token alias type", 3);
    switch (aliasType) {
      case 0:
      case 2: {
        const alias = r.varint("token alias");
        if (!r.atEnd()) throw new DecodeError("token: trailing bytes");
        return { aliasType, alias };
      }
      case 1: {
        const alias = r.varint("token alias");
        return { aliasType: 1, alias, tokenType: r.varint("token type"), value: r.rest() };
      }
      default:
        return { aliasType: 3, tokenType: r.varint("token type"), value: r.rest() };
    }
  } catch (e) {
    if (e instanceof DecodeError) throw new DecodeError(`token: ${e.message}`, { sessionCode: SessionCode.KEY_VALUE_FORMATTING_ERROR });
    throw e;
  }
}

// ---------------------------------------------------------------- Subscription Filter

export const FilterType = { NEXT_GROUP_START: 0x1, LARGEST_OBJECT: 0x2, ABSOLUTE_START: 0x3, ABSOLUTE_RANGE: 0x4 } as const;

export type SubscriptionFilter =
  | { readonly type: 0x1 | 0x2 }
  | { readonly type: 0x3; readonly start: Location }
  | { readonly type: 0x4; readonly start: Location; readonly endGroupDelta: bigint };

export function encodeFilter(f: SubscriptionFilter): Uint8Array {
  const w = new Writer(16);
  w.varint(f.type);
  if (f.type === 3 || f.type === 4) writeLocation(w, f.start);
  if (f.type === 4) w.varint(f.endGroupDelta);
  return w.finish();
}

export function decodeFilter(b: Uint8Array): SubscriptionFilter {
  const r = new Reader(b);
  const type = r.varintNum("filter type");
  let f: SubscriptionFilter;
  switch (type) {
    case 1:
    case 2:
      f = { type };
      break;
    case 3:
      f = { type, start: readLocation(r) };
      break;
    case 4: {
      const start = readLocation(r);
      const endGroupDelta = r.varint("end group delta");
      if (start.group + endGroupDelta > MAX_VARINT) throw new DecodeError("filter end group overflows");
      f = { type, start, endGroupDelta };
      break;
    }
    default:
      throw new DecodeError(`unknown subscription filter type ${type}`);
  }
  if (!r.atEnd()) throw new DecodeError("subscription filter: trailing bytes");
  return f;
}

// ---------------------------------------------------------------- Message Parameters

export const ParamType = {
  OBJECT_DELIVERY_TIMEOUT: 0x02,
  AUTHORIZATION_TOKEN: 0x03,
  RENDEZVOUS_TIMEOUT: 0x04,
  SUBGROUP_DELIVERY_TIMEOUT: 0x06,
  EXPIRES: 0x08,
  LARGEST_OBJECT: 0x09,
  FILL_TIMEOUT: 0x0a,
  FORWARD: 0x10,
  SUBSCRIBER_PRIORITY: 0x20,
  SUBSCRIPTION_FILTER: 0x21,
  GROUP_ORDER: 0x22,
  NEW_GROUP_REQUEST: 0x32,
  TRACK_NAMESPACE_PREFIX: 0x34,
} as const;

/** Decoded Message Parameters. Every draft-18 parameter has a typed field. */
export interface MessageParams {
  /** AUTHORIZATION TOKEN (0x03); may repeat. */
  authorizationTokens?: readonly Token[];
  objectDeliveryTimeout?: bigint;
  rendezvousTimeout?: bigint;
  subgroupDeliveryTimeout?: bigint;
  expires?: bigint;
  largestObject?: Location;
  fillTimeout?: bigint;
  /** 0 = don't forward, 1 = forward */
  forward?: 0 | 1;
  subscriberPriority?: number;
  subscriptionFilter?: SubscriptionFilter;
  /** 1 = ascending, 2 = descending */
  groupOrder?: 1 | 2;
  newGroupRequest?: bigint;
  trackNamespacePrefix?: Namespace;
}

/** Number of Parameters, then (Type Delta, Value) pairs in ascending type order. */
export function writeParams(w: Writer, p: MessageParams): void {
  const items: Array<[number, (w: Writer) => void]> = [];
  if (p.objectDeliveryTimeout !== undefined) {
    const v = p.objectDeliveryTimeout;
    items.push([ParamType.OBJECT_DELIVERY_TIMEOUT, (w) => w.varint(v)]);
  }
  for (const t of p.authorizationTokens ?? []) {
    items.push([ParamType.AUTHORIZATION_TOKEN, (w) => w.lenBytes(encodeToken(t))]);
  }
  if (p.rendezvousTimeout !== undefined) {
    const v = p.rendezvousTimeout;
    items.push([ParamType.RENDEZVOUS_TIMEOUT, (w) => w.varint(v)]);
  }
  if (p.subgroupDeliveryTimeout !== undefined) {
    const v = p.subgroupDeliveryTimeout;
    items.push([ParamType.SUBGROUP_DELIVERY_TIMEOUT, (w) => w.varint(v)]);
  }
  if (p.expires !== undefined) {
    const v = p.expires;
    items.push([ParamType.EXPIRES, (w) => w.varint(v)]);
  }
  if (p.largestObject !== undefined) {
    const v = p.largestObject;
    items.push([ParamType.LARGEST_OBJECT, (w) => writeLocation(w, v)]);
  }
  if (p.fillTimeout !== undefined) {
    const v = p.fillTimeout;
    items.push([ParamType.FILL_TIMEOUT, (w) => w.varint(v)]);
  }
  if (p.forward !== undefined) {
    const v = p.forward;
    items.push([ParamType.FORWARD, (w) => w.u8(v)]);
  }
  if (p.subscriberPriority !== undefined) {
    const v = p.subscriberPriority;
    items.push([ParamType.SUBSCRIBER_PRIORITY, (w) => w.u8(v)]);
  }
  if (p.subscriptionFilter !== undefined) {
    const v = p.subscriptionFilter;
    items.push([ParamType.SUBSCRIPTION_FILTER, (w) => w.lenBytes(encodeFilter(v))]);
  }
  if (p.groupOrder !== undefined) {
    const v = p.groupOrder;
    items.push([ParamType.GROUP_ORDER, (w) => w.u8(v)]);
  }
  if (p.newGroupRequest !== undefined) {
    const v = p.newGroupRequest;
    items.push([ParamType.NEW_GROUP_REQUEST, (w) => w.varint(v)]);
  }
  if (p.trackNamespacePrefix !== undefined) {
    const v = p.trackNamespacePrefix;
    items.push([ParamType.TRACK_NAMESPACE_PREFIX, (w) => writeNamespace(w, v)]);
  }
  // items are pushed in ascending type order already; keep the sort as a guard.
  items.sort((a, b) => a[0] - b[0]);
  w.varint(items.length);
  let prev = 0;
  for (const [type, write] of items) {
    w.varint(type - prev);
    prev = type;
    write(w);
  }
}

function u8Enum<T extends number>(r: Reader, what: string, allowed: readonly T[]): T {
  const v = r.u8(what);
  if (!(allowed as readonly number[]).includes(v)) throw new DecodeError(`${what}: invalid value ${v}`);
  return v as T;
}

/** Read Number of Parameters and the parameters. Unknown types are a PROTOCOL_VIOLATION. */
export function readParams(r: Reader): MessageParams {
  const count = r.varintNum("parameter count");
  const p: {
    -readonly [K in keyof MessageParams]: MessageParams[K];
  } = {};
  const tokens: Token[] = [];
  let prev = 0n;
  const seen = new Set<bigint>();
  for (let i = 0; i < count; i++) {
    const type = prev + r.varint("parameter type");
    if (type > MAX_VARINT) throw new DecodeError("parameter type overflows 2^64-1");
    if (i > 0 && type < prev) throw new DecodeError("parameters not ascending");
    prev = type;
    if (seen.has(type) && type !== BigInt(ParamType.AUTHORIZATION_TOKEN)) {
      throw new DecodeError(`duplicate parameter 0x${type.toString(16)}`);
    }
    seen.add(type);
    switch (Number(type)) {
      case ParamType.OBJECT_DELIVERY_TIMEOUT:
        p.objectDeliveryTimeout = r.varint("OBJECT_DELIVERY_TIMEOUT");
        break;
      case ParamType.AUTHORIZATION_TOKEN:
        tokens.push(decodeToken(r.lenBytes("AUTHORIZATION_TOKEN", 0xffff)));
        break;
      case ParamType.RENDEZVOUS_TIMEOUT:
        p.rendezvousTimeout = r.varint("RENDEZVOUS_TIMEOUT");
        break;
      case ParamType.SUBGROUP_DELIVERY_TIMEOUT:
        p.subgroupDeliveryTimeout = r.varint("SUBGROUP_DELIVERY_TIMEOUT");
        break;
      case ParamType.EXPIRES:
        p.expires = r.varint("EXPIRES");
        break;
      case ParamType.LARGEST_OBJECT:
        p.largestObject = readLocation(r);
        break;
      case ParamType.FILL_TIMEOUT:
        p.fillTimeout = r.varint("FILL_TIMEOUT");
        break;
      case ParamType.FORWARD:
        p.forward = u8Enum(r, "FORWARD", [0, 1] as const);
        break;
      case ParamType.SUBSCRIBER_PRIORITY:
        p.subscriberPriority = r.u8("SUBSCRIBER_PRIORITY");
        break;
      case ParamType.SUBSCRIPTION_FILTER:
        p.subscriptionFilter = decodeFilter(r.lenBytes("SUBSCRIPTION_FILTER", 0xffff));
        break;
      case ParamType.GROUP_ORDER:
        p.groupOrder = u8Enum(r, "GROUP_ORDER", [1, 2] as const);
        break;
      case ParamType.NEW_GROUP_REQUEST:
        p.newGroupRequest = r.varint("NEW_GROUP_REQUEST");
        break;
      case ParamType.TRACK_NAMESPACE_PREFIX:
        p.trackNamespacePrefix = readNamespace(r);
        break;
      default:
        throw new DecodeError(`unknown message parameter 0x${type.toString(16)}`);
    }
  }
  if (tokens.length > 0) p.authorizationTokens = tokens;
  return p;
}
