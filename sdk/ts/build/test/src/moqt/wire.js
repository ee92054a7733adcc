/**
 * Shared MoQT draft-18 structures: Location, Key-Value-Pair, Reason Phrase, Track Namespace and
 * Track Name, the Token of the AUTHORIZATION TOKEN parameter, Subscription Filter and Message
 * Parameters.
 */
import { DecodeError, SessionCode } from "../errors.js";
import { Reader, Writer, fromUtf8, utf8 } from "./buffer.js";
import { MAX_VARINT } from "./varint.js";
export function writeLocation(w, l) {
    w.varint(l.group).varint(l.object);
}
export function readLocation(r) {
    const group = r.varint("location group");
    const object = r.varint("location object");
    return { group, object };
}
export function compareLocation(a, b) {
    if (a.group !== b.group)
        return a.group < b.group ? -1 : 1;
    if (a.object !== b.object)
        return a.object < b.object ? -1 : 1;
    return 0;
}
/** Write a Key-Value-Pair list; types are delta-encoded so the list is sorted first. */
export function writeKeyValues(w, kvs) {
    const sorted = [...kvs].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
    let prev = 0n;
    for (const kv of sorted) {
        w.varint(kv.type - prev);
        prev = kv.type;
        const odd = (kv.type & 1n) === 1n;
        if (odd) {
            if (!(kv.value instanceof Uint8Array))
                throw new TypeError(`key ${kv.type} is odd: value must be bytes`);
            if (kv.value.length > 0xffff)
                throw new RangeError(`key ${kv.type}: value longer than 65535 bytes`);
            w.lenBytes(kv.value);
        }
        else {
            if (typeof kv.value !== "bigint")
                throw new TypeError(`key ${kv.type} is even: value must be a bigint`);
            w.varint(kv.value);
        }
    }
}
/** Read Key-Value-Pairs until the reader (already bounded to the list) is exhausted. */
export function readKeyValues(r, count) {
    const out = [];
    let prev = 0n;
    while (count === undefined ? !r.atEnd() : out.length < count) {
        const type = prev + r.varint("key-value type");
        if (type > MAX_VARINT)
            throw new DecodeError("key-value type overflows 2^64-1");
        prev = type;
        if ((type & 1n) === 1n) {
            out.push({ type, value: r.lenBytes("key-value value", 0xffff) });
        }
        else {
            out.push({ type, value: r.varint("key-value value") });
        }
    }
    return out;
}
// ---------------------------------------------------------------- Reason Phrase
export const MAX_REASON_PHRASE = 1024;
export function writeReason(w, reason) {
    const b = utf8(reason);
    if (b.length > MAX_REASON_PHRASE)
        throw new RangeError("reason phrase longer than 1024 bytes");
    w.lenBytes(b);
}
export function readReason(r) {
    return fromUtf8(r.lenBytes("reason phrase", MAX_REASON_PHRASE));
}
export const MAX_NAMESPACE_FIELDS = 32;
export const MAX_FULL_TRACK_NAME = 4096;
/** `"stream/org_abc/lv_1"` → `["stream","org_abc","lv_1"]` as UTF-8 fields. */
export function namespaceFromString(path) {
    const fields = path.split("/").filter((f) => f.length > 0);
    return fields.map((f) => utf8(f));
}
export function namespaceToString(ns) {
    return ns.map((f) => new TextDecoder().decode(f)).join("/");
}
export function namespaceEquals(a, b) {
    return a.length === b.length && a.every((f, i) => bytesEqual(f, b[i]));
}
export function bytesEqual(a, b) {
    if (a.length !== b.length)
        return false;
    for (let i = 0; i < a.length; i++)
        if (a[i] !== b[i])
            return false;
    return true;
}
function checkNamespace(ns) {
    if (ns.length > MAX_NAMESPACE_FIELDS)
        throw new RangeError("namespace has more than 32 fields");
    let total = 0;
    for (const f of ns) {
        if (f.length === 0)
            throw new RangeError("namespace field must not be empty");
        total += f.length;
    }
    if (total > MAX_FULL_TRACK_NAME)
        throw new RangeError("namespace longer than 4096 bytes");
    return total;
}
export function writeNamespace(w, ns) {
    checkNamespace(ns);
    w.varint(ns.length);
    for (const f of ns)
        w.lenBytes(f);
}
export function readNamespace(r) {
    const n = r.varintNum("namespace field count");
    if (n > MAX_NAMESPACE_FIELDS)
        throw new DecodeError(`namespace has ${n} fields (max 32)`);
    const out = [];
    let total = 0;
    for (let i = 0; i < n; i++) {
        const f = r.lenBytes("namespace field", MAX_FULL_TRACK_NAME);
        if (f.length === 0)
            throw new DecodeError("empty namespace field");
        total += f.length;
        if (total > MAX_FULL_TRACK_NAME)
            throw new DecodeError("namespace longer than 4096 bytes");
        out.push(f);
    }
    return out;
}
/** Full Track Name = namespace + name; total length ≤ 4096 bytes. */
export function writeFullTrackName(w, ns, name) {
    const total = checkNamespace(ns) + name.length;
    if (total > MAX_FULL_TRACK_NAME)
        throw new RangeError("full track name longer than 4096 bytes");
    writeNamespace(w, ns);
    w.lenBytes(name);
}
export function readFullTrackName(r) {
    const namespace = readNamespace(r);
    let total = 0;
    for (const f of namespace)
        total += f.length;
    const name = r.lenBytes("track name", MAX_FULL_TRACK_NAME - total);
    return { namespace, name };
}
// ---------------------------------------------------------------- Token
export const AliasType = { DELETE: 0, REGISTER: 1, USE_ALIAS: 2, USE_VALUE: 3 };
/** The token form this SDK sends: USE_VALUE, Token Type 0, the credential's UTF-8 bytes. */
export function useValueToken(credential) {
    return { aliasType: AliasType.USE_VALUE, tokenType: 0n, value: utf8(credential) };
}
export function encodeToken(t) {
    const w = new Writer();
    w.varint(t.aliasType);
    if (t.aliasType !== 3)
        w.varint(t.alias);
    if (t.aliasType === 1 || t.aliasType === 3)
        w.varint(t.tokenType).bytes(t.value);
    return w.finish();
}
export function decodeToken(b) {
    const r = new Reader(b);
    try {
        const aliasType = r.varintNum("token alias type", 3);
        switch (aliasType) {
            case 0:
            case 2: {
                const alias = r.varint("token alias");
                if (!r.atEnd())
                    throw new DecodeError("token: trailing bytes");
                return { aliasType, alias };
            }
            case 1: {
                const alias = r.varint("token alias");
                return { aliasType: 1, alias, tokenType: r.varint("token type"), value: r.rest() };
            }
            default:
                return { aliasType: 3, tokenType: r.varint("token type"), value: r.rest() };
        }
    }
    catch (e) {
        if (e instanceof DecodeError)
            throw new DecodeError(`token: ${e.message}`, { sessionCode: SessionCode.KEY_VALUE_FORMATTING_ERROR });
        throw e;
    }
}
// ---------------------------------------------------------------- Subscription Filter
export const FilterType = { NEXT_GROUP_START: 0x1, LARGEST_OBJECT: 0x2, ABSOLUTE_START: 0x3, ABSOLUTE_RANGE: 0x4 };
export function encodeFilter(f) {
    const w = new Writer(16);
    w.varint(f.type);
    if (f.type === 3 || f.type === 4)
        writeLocation(w, f.start);
    if (f.type === 4)
        w.varint(f.endGroupDelta);
    return w.finish();
}
export function decodeFilter(b) {
    const r = new Reader(b);
    const type = r.varintNum("filter type");
    let f;
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
            if (start.group + endGroupDelta > MAX_VARINT)
                throw new DecodeError("filter end group overflows");
            f = { type, start, endGroupDelta };
            break;
        }
        default:
            throw new DecodeError(`unknown subscription filter type ${type}`);
    }
    if (!r.atEnd())
        throw new DecodeError("subscription filter: trailing bytes");
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
};
/** Number of Parameters, then (Type Delta, Value) pairs in ascending type order. */
export function writeParams(w, p) {
    const items = [];
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
function u8Enum(r, what, allowed) {
    const v = r.u8(what);
    if (!allowed.includes(v))
        throw new DecodeError(`${what}: invalid value ${v}`);
    return v;
}
/** Read Number of Parameters and the parameters. Unknown types are a PROTOCOL_VIOLATION. */
export function readParams(r) {
    const count = r.varintNum("parameter count");
    const p = {};
    const tokens = [];
    let prev = 0n;
    const seen = new Set();
    for (let i = 0; i < count; i++) {
        const type = prev + r.varint("parameter type");
        if (type > MAX_VARINT)
            throw new DecodeError("parameter type overflows 2^64-1");
        if (i > 0 && type < prev)
            throw new DecodeError("parameters not ascending");
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
                p.forward = u8Enum(r, "FORWARD", [0, 1]);
                break;
            case ParamType.SUBSCRIBER_PRIORITY:
                p.subscriberPriority = r.u8("SUBSCRIBER_PRIORITY");
                break;
            case ParamType.SUBSCRIPTION_FILTER:
                p.subscriptionFilter = decodeFilter(r.lenBytes("SUBSCRIPTION_FILTER", 0xffff));
                break;
            case ParamType.GROUP_ORDER:
                p.groupOrder = u8Enum(r, "GROUP_ORDER", [1, 2]);
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
    if (tokens.length > 0)
        p.authorizationTokens = tokens;
    return p;
}
//# sourceMappingURL=wire.js.map