/**
 * MoQT draft-18 control messages: `Type (vi64), Length (16), Payload`. Every message of the
 * draft has a typed form here; {@link encodeMessage} and {@link decodeMessage} are exact inverses.
 */
import { DecodeError } from "../errors.js";
import { Reader, Writer, fromUtf8, utf8 } from "./buffer.js";
import { readFullTrackName, readKeyValues, readLocation, readNamespace, readParams, readReason, writeFullTrackName, writeKeyValues, writeLocation, writeNamespace, writeParams, writeReason, } from "./wire.js";
export const MessageType = {
    REQUEST_UPDATE: 0x2,
    SUBSCRIBE: 0x3,
    SUBSCRIBE_OK: 0x4,
    REQUEST_ERROR: 0x5,
    PUBLISH_NAMESPACE: 0x6,
    REQUEST_OK: 0x7,
    NAMESPACE: 0x8,
    PUBLISH_DONE: 0xb,
    TRACK_STATUS: 0xd,
    NAMESPACE_DONE: 0xe,
    PUBLISH_BLOCKED: 0xf,
    GOAWAY: 0x10,
    FETCH: 0x16,
    FETCH_OK: 0x18,
    PUBLISH: 0x1d,
    /**
     * Listed in draft-18's table, but the same draft made PUBLISH_OK an alias of REQUEST_OK
     * (change log #1611). We send REQUEST_OK (0x7) and accept 0x1E with REQUEST_OK's layout.
     */
    PUBLISH_OK_LEGACY: 0x1e,
    SUBSCRIBE_NAMESPACE: 0x50,
    SUBSCRIBE_TRACKS: 0x51,
    SETUP: 0x2f00,
};
/** Stream type of the unidirectional control stream (= the SETUP message type). */
export const CONTROL_STREAM_TYPE = 0x2f00;
export const SetupOption = {
    PATH: 0x01,
    AUTHORIZATION_TOKEN: 0x03,
    MAX_AUTH_TOKEN_CACHE_SIZE: 0x04,
    AUTHORITY: 0x05,
    MOQT_IMPLEMENTATION: 0x07,
};
export const FetchType = { STANDALONE: 0x1, RELATIVE_JOINING: 0x2, ABSOLUTE_JOINING: 0x3 };
const MAX_URI = 8192;
const REDIRECT_CODE = 0x34n;
function typeCode(m) {
    switch (m.type) {
        case "SETUP":
            return MessageType.SETUP;
        case "GOAWAY":
            return MessageType.GOAWAY;
        case "SUBSCRIBE":
            return MessageType.SUBSCRIBE;
        case "TRACK_STATUS":
            return MessageType.TRACK_STATUS;
        case "SUBSCRIBE_OK":
            return MessageType.SUBSCRIBE_OK;
        case "REQUEST_OK":
            return MessageType.REQUEST_OK;
        case "REQUEST_ERROR":
            return MessageType.REQUEST_ERROR;
        case "REQUEST_UPDATE":
            return MessageType.REQUEST_UPDATE;
        case "PUBLISH":
            return MessageType.PUBLISH;
        case "PUBLISH_DONE":
            return MessageType.PUBLISH_DONE;
        case "PUBLISH_NAMESPACE":
            return MessageType.PUBLISH_NAMESPACE;
        case "SUBSCRIBE_NAMESPACE":
            return MessageType.SUBSCRIBE_NAMESPACE;
        case "SUBSCRIBE_TRACKS":
            return MessageType.SUBSCRIBE_TRACKS;
        case "NAMESPACE":
            return MessageType.NAMESPACE;
        case "NAMESPACE_DONE":
            return MessageType.NAMESPACE_DONE;
        case "PUBLISH_BLOCKED":
            return MessageType.PUBLISH_BLOCKED;
        case "FETCH":
            return MessageType.FETCH;
        case "FETCH_OK":
            return MessageType.FETCH_OK;
    }
}
function writePayload(w, m) {
    switch (m.type) {
        case "SETUP":
            writeKeyValues(w, m.options);
            return;
        case "GOAWAY": {
            const uri = utf8(m.newSessionUri);
            if (uri.length > MAX_URI)
                throw new RangeError("GOAWAY URI longer than 8192 bytes");
            w.lenBytes(uri).varint(m.timeoutMs);
            if (m.requestId !== undefined)
                w.varint(m.requestId);
            return;
        }
        case "SUBSCRIBE":
        case "TRACK_STATUS":
            w.varint(m.requestId);
            writeFullTrackName(w, m.namespace, m.name);
            writeParams(w, m.params);
            return;
        case "SUBSCRIBE_OK":
            w.varint(m.trackAlias);
            writeParams(w, m.params);
            writeKeyValues(w, m.properties);
            return;
        case "REQUEST_OK":
            writeParams(w, m.params);
            writeKeyValues(w, m.properties);
            return;
        case "REQUEST_ERROR":
            w.varint(m.errorCode).varint(m.retryInterval);
            writeReason(w, m.reason);
            if (m.errorCode === REDIRECT_CODE) {
                const r = m.redirect ?? { connectUri: "", namespace: [], name: new Uint8Array() };
                w.lenBytes(utf8(r.connectUri));
                writeNamespace(w, r.namespace);
                w.lenBytes(r.name);
            }
            return;
        case "REQUEST_UPDATE":
            w.varint(m.requestId);
            writeParams(w, m.params);
            return;
        case "PUBLISH":
            w.varint(m.requestId);
            writeFullTrackName(w, m.namespace, m.name);
            w.varint(m.trackAlias);
            writeParams(w, m.params);
            writeKeyValues(w, m.properties);
            return;
        case "PUBLISH_DONE":
            w.varint(m.statusCode).varint(m.streamCount);
            writeReason(w, m.reason);
            return;
        case "PUBLISH_NAMESPACE":
        case "SUBSCRIBE_NAMESPACE":
        case "SUBSCRIBE_TRACKS":
            w.varint(m.requestId);
            writeNamespace(w, m.namespace);
            writeParams(w, m.params);
            return;
        case "NAMESPACE":
        case "NAMESPACE_DONE":
            writeNamespace(w, m.suffix);
            return;
        case "PUBLISH_BLOCKED":
            writeFullTrackName(w, m.suffix, m.name);
            return;
        case "FETCH":
            w.varint(m.requestId).varint(m.fetchType);
            if (m.fetchType === 1) {
                writeFullTrackName(w, m.namespace, m.name);
                writeLocation(w, m.start);
                writeLocation(w, m.end);
            }
            else {
                w.varint(m.joiningRequestId).varint(m.joiningStart);
            }
            writeParams(w, m.params);
            return;
        case "FETCH_OK":
            w.u8(m.endOfTrack ? 1 : 0);
            writeLocation(w, m.end);
            writeParams(w, m.params);
            writeKeyValues(w, m.properties);
            return;
    }
}
/** Serialize a control message with its type and 16-bit length. */
export function encodeMessage(m) {
    const payload = new Writer(128);
    writePayload(payload, m);
    if (payload.length > 0xffff)
        throw new RangeError(`${m.type} payload exceeds 65535 bytes`);
    const w = new Writer(payload.length + 8);
    w.varint(typeCode(m)).u16(payload.length).bytes(payload.finish());
    return w.finish();
}
/** Decode one message payload of the given type. The payload must be consumed exactly. */
export function decodeMessage(type, payload) {
    const r = new Reader(payload);
    let m;
    switch (Number(type)) {
        case MessageType.SETUP:
            m = { type: "SETUP", options: readKeyValues(r) };
            break;
        case MessageType.GOAWAY: {
            const uri = fromUtf8(r.lenBytes("GOAWAY URI", MAX_URI));
            const timeoutMs = r.varint("GOAWAY timeout");
            m = r.atEnd()
                ? { type: "GOAWAY", newSessionUri: uri, timeoutMs }
                : { type: "GOAWAY", newSessionUri: uri, timeoutMs, requestId: r.varint("GOAWAY request id") };
            break;
        }
        case MessageType.SUBSCRIBE:
        case MessageType.TRACK_STATUS: {
            const requestId = r.varint("request id");
            const { namespace, name } = readFullTrackName(r);
            m = {
                type: Number(type) === MessageType.SUBSCRIBE ? "SUBSCRIBE" : "TRACK_STATUS",
                requestId,
                namespace,
                name,
                params: readParams(r),
            };
            break;
        }
        case MessageType.SUBSCRIBE_OK: {
            const trackAlias = r.varint("track alias");
            const params = readParams(r);
            m = { type: "SUBSCRIBE_OK", trackAlias, params, properties: readKeyValues(r) };
            break;
        }
        case MessageType.REQUEST_OK:
        case MessageType.PUBLISH_OK_LEGACY: {
            const params = readParams(r);
            m = { type: "REQUEST_OK", params, properties: readKeyValues(r) };
            break;
        }
        case MessageType.REQUEST_ERROR: {
            const errorCode = r.varint("error code");
            const retryInterval = r.varint("retry interval");
            const reason = readReason(r);
            if (errorCode === REDIRECT_CODE) {
                const connectUri = fromUtf8(r.lenBytes("redirect URI", MAX_URI));
                const { namespace, name } = readFullTrackName(r);
                m = { type: "REQUEST_ERROR", errorCode, retryInterval, reason, redirect: { connectUri, namespace, name } };
            }
            else {
                m = { type: "REQUEST_ERROR", errorCode, retryInterval, reason };
            }
            break;
        }
        case MessageType.REQUEST_UPDATE: {
            const requestId = r.varint("request id");
            m = { type: "REQUEST_UPDATE", requestId, params: readParams(r) };
            break;
        }
        case MessageType.PUBLISH: {
            const requestId = r.varint("request id");
            const { namespace, name } = readFullTrackName(r);
            const trackAlias = r.varint("track alias");
            const params = readParams(r);
            m = { type: "PUBLISH", requestId, namespace, name, trackAlias, params, properties: readKeyValues(r) };
            break;
        }
        case MessageType.PUBLISH_DONE: {
            const statusCode = r.varint("status code");
            const streamCount = r.varint("stream count");
            m = { type: "PUBLISH_DONE", statusCode, streamCount, reason: readReason(r) };
            break;
        }
        case MessageType.PUBLISH_NAMESPACE:
        case MessageType.SUBSCRIBE_NAMESPACE:
        case MessageType.SUBSCRIBE_TRACKS: {
            const requestId = r.varint("request id");
            const namespace = readNamespace(r);
            const t = Number(type) === MessageType.PUBLISH_NAMESPACE
                ? "PUBLISH_NAMESPACE"
                : Number(type) === MessageType.SUBSCRIBE_NAMESPACE
                    ? "SUBSCRIBE_NAMESPACE"
                    : "SUBSCRIBE_TRACKS";
            m = { type: t, requestId, namespace, params: readParams(r) };
            break;
        }
        case MessageType.NAMESPACE:
        case MessageType.NAMESPACE_DONE:
            m = { type: Number(type) === MessageType.NAMESPACE ? "NAMESPACE" : "NAMESPACE_DONE", suffix: readNamespace(r) };
            break;
        case MessageType.PUBLISH_BLOCKED: {
            const { namespace, name } = readFullTrackName(r);
            m = { type: "PUBLISH_BLOCKED", suffix: namespace, name };
            break;
        }
        case MessageType.FETCH: {
            const requestId = r.varint("request id");
            const fetchType = r.varintNum("fetch type");
            if (fetchType === 1) {
                const { namespace, name } = readFullTrackName(r);
                const start = readLocation(r);
                const end = readLocation(r);
                m = { type: "FETCH", requestId, fetchType, namespace, name, start, end, params: readParams(r) };
            }
            else if (fetchType === 2 || fetchType === 3) {
                const joiningRequestId = r.varint("joining request id");
                const joiningStart = r.varint("joining start");
                m = { type: "FETCH", requestId, fetchType, joiningRequestId, joiningStart, params: readParams(r) };
            }
            else {
                throw new DecodeError(`unknown fetch type ${fetchType}`);
            }
            break;
        }
        case MessageType.FETCH_OK: {
            const eot = r.u8("end of track");
            if (eot > 1)
                throw new DecodeError(`FETCH_OK end of track must be 0 or 1, got ${eot}`);
            const end = readLocation(r);
            const params = readParams(r);
            m = { type: "FETCH_OK", endOfTrack: eot === 1, end, params, properties: readKeyValues(r) };
            break;
        }
        default:
            throw new DecodeError(`unknown control message type 0x${type.toString(16)}`);
    }
    if (!r.atEnd())
        throw new DecodeError(`${m.type}: ${r.remaining} trailing bytes (length mismatch)`);
    return m;
}
/**
 * Parse one framed message from the start of `buf`. Returns undefined when `buf` does not yet
 * hold the whole message; throws {@link DecodeError} when it is malformed.
 */
export function parseFramedMessage(buf) {
    const r = new Reader(buf);
    let type;
    let len;
    try {
        type = r.varint("message type");
        len = r.u16("message length");
    }
    catch (e) {
        if (e instanceof DecodeError && e.truncated)
            return undefined;
        throw e;
    }
    if (r.remaining < len)
        return undefined;
    const payload = r.bytes(len);
    return { message: decodeMessage(type, payload), length: r.offset };
}
// ---------------------------------------------------------------- SETUP option helpers
/** Build SETUP options for a client on WebTransport: no PATH/AUTHORITY (forbidden there). */
export function setupOptions(o) {
    const out = [];
    if (o.path !== undefined)
        out.push({ type: BigInt(SetupOption.PATH), value: utf8(o.path) });
    if (o.maxAuthTokenCacheSize !== undefined) {
        out.push({ type: BigInt(SetupOption.MAX_AUTH_TOKEN_CACHE_SIZE), value: o.maxAuthTokenCacheSize });
    }
    if (o.authority !== undefined)
        out.push({ type: BigInt(SetupOption.AUTHORITY), value: utf8(o.authority) });
    if (o.implementation !== undefined) {
        out.push({ type: BigInt(SetupOption.MOQT_IMPLEMENTATION), value: utf8(o.implementation) });
    }
    return out;
}
//# sourceMappingURL=messages.js.map