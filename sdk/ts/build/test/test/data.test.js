import assert from "node:assert/strict";
import { test } from "node:test";
import { DecodeError } from "../src/errors.js";
import { Reader, concatBytes } from "../src/moqt/buffer.js";
import { FetchObjectDecoder, FetchObjectEncoder, decodeDatagram, decodeSubgroupHeader, decodeSubgroupObject, encodeDatagram, encodeSubgroupHeader, encodeSubgroupObject, isSubgroupType, readSubgroupHeader, readSubgroupObject, subgroupType, } from "../src/moqt/data.js";
import { StreamReader } from "../src/moqt/reader.js";
const enc = (s) => new TextEncoder().encode(s);
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
test("subgroup: the draft's example stream (type 0x14) encodes byte for byte", () => {
    const h = { trackAlias: 2n, groupId: 0n, subgroupIdMode: 2, subgroupId: 0n, priority: 0, hasProperties: false, endOfGroup: false, firstObject: false };
    assert.equal(subgroupType(h), 0x14);
    const bytes = concatBytes([
        encodeSubgroupHeader(h),
        encodeSubgroupObject(undefined, { objectId: 0n, payload: enc("abcd") }, false),
        encodeSubgroupObject(0n, { objectId: 1n, payload: enc("efgh") }, false),
    ]);
    assert.equal(toHex(bytes), "14020000" + "00" + "00" + "04" + toHex(enc("abcd")) + "00" + "04" + toHex(enc("efgh")));
    const r = new Reader(bytes);
    const hh = decodeSubgroupHeader(r);
    assert.deepEqual(hh, h);
    assert.deepEqual(decodeSubgroupObject(r, hh, undefined).objectId, 0n);
    assert.deepEqual(decodeSubgroupObject(r, hh, 0n).payload, enc("efgh"));
    assert.ok(r.atEnd());
});
test("subgroup: the draft's example with properties (type 0x35)", () => {
    const h = { trackAlias: 2n, groupId: 0n, subgroupIdMode: 2, subgroupId: 0n, priority: undefined, hasProperties: true, endOfGroup: false, firstObject: false };
    assert.equal(subgroupType(h), 0x35);
    const o = encodeSubgroupObject(undefined, { objectId: 0n, payload: enc("abcd"), properties: [{ type: 4n, value: 2186796243n }, { type: 77n, value: enc("traceID:123456") }] }, true);
    const r = new Reader(concatBytes([encodeSubgroupHeader(h), o]));
    const hh = decodeSubgroupHeader(r);
    const obj = decodeSubgroupObject(r, hh, undefined);
    assert.equal(obj.properties.length, 2);
    assert.deepEqual(obj.payload, enc("abcd"));
});
test("subgroup header type validity", () => {
    for (let t = 0; t < 0x100; t++) {
        const expect = ((t >= 0x10 && t <= 0x1f) || (t >= 0x30 && t <= 0x3f) || (t >= 0x50 && t <= 0x5f) || (t >= 0x70 && t <= 0x7f)) && ((t & 6) >> 1) !== 3;
        assert.equal(isSubgroupType(t), expect, `0x${t.toString(16)}`);
    }
    // our publisher's header: subgroup 0, END_OF_GROUP, FIRST_OBJECT, explicit priority = 0x58
    assert.equal(subgroupType({ subgroupIdMode: 0, priority: 4, hasProperties: false, endOfGroup: true, firstObject: true }), 0x58);
});
test("subgroup stream read in 1-byte chunks: object id deltas, status, FIN", async () => {
    const h = { trackAlias: 7n, groupId: 1700000000123n, subgroupIdMode: 0, subgroupId: 0n, priority: 4, hasProperties: false, endOfGroup: true, firstObject: true };
    const payload = new Uint8Array(3000).map((_, i) => i & 0xff);
    const bytes = concatBytes([
        encodeSubgroupHeader(h),
        encodeSubgroupObject(undefined, { objectId: 0n, payload }, false),
        encodeSubgroupObject(0n, { objectId: 3n, payload: enc("x") }, false), // delta 2
        encodeSubgroupObject(3n, { objectId: 4n, payload: new Uint8Array(0), status: 3 }, false),
    ]);
    const r = StreamReader.fromChunks(Array.from(bytes, (b) => new Uint8Array([b])));
    const type = await r.varint();
    const hh = await readSubgroupHeader(type, r);
    assert.deepEqual(hh, h);
    const a = await readSubgroupObject(r, hh, undefined);
    const b = await readSubgroupObject(r, hh, a?.objectId);
    const c = await readSubgroupObject(r, hh, b?.objectId);
    assert.deepEqual(a?.payload, payload);
    assert.equal(b?.objectId, 3n);
    assert.equal(c?.status, 3);
    assert.equal(await readSubgroupObject(r, hh, 4n), undefined);
});
test("subgroup stream cut inside an object is a truncated DecodeError", async () => {
    const h = { trackAlias: 1n, groupId: 0n, subgroupIdMode: 0, subgroupId: 0n, priority: 0, hasProperties: false, endOfGroup: true, firstObject: true };
    const bytes = concatBytes([encodeSubgroupHeader(h), encodeSubgroupObject(undefined, { objectId: 0n, payload: enc("hello") }, false)]);
    for (let n = 5; n < bytes.length; n++) {
        const r = StreamReader.fromChunks([bytes.subarray(0, n)]);
        const hh = await readSubgroupHeader(await r.varint(), r);
        await assert.rejects(readSubgroupObject(r, hh, undefined), (e) => e instanceof DecodeError && e.truncated);
    }
});
test("object datagram round-trips and rejects invalid types", () => {
    const d = { trackAlias: 3n, groupId: 9n, objectId: 0n, priority: undefined, endOfGroup: true, properties: [], status: undefined, payload: enc("frame") };
    const b = encodeDatagram(d);
    assert.equal(b[0], 0x02 | 0x04 | 0x08);
    assert.deepEqual(decodeDatagram(b), d);
    const s = { trackAlias: 3n, groupId: 9n, objectId: 5n, priority: 10, endOfGroup: false, properties: [], status: 4, payload: new Uint8Array(0) };
    assert.deepEqual(decodeDatagram(encodeDatagram(s)), s);
    for (const t of [0x22, 0x23, 0x10, 0x30, 0x40])
        assert.throws(() => decodeDatagram(new Uint8Array([t, 1, 1, 1])), DecodeError);
});
test("fetch stream: encoder and decoder agree across groups", async () => {
    const e = new FetchObjectEncoder();
    const objs = [
        { groupId: 10n, subgroupId: 0n, objectId: 0n, priority: 4, payload: enc("a") },
        { groupId: 10n, subgroupId: 0n, objectId: 1n, priority: 4, payload: enc("b") },
        { groupId: 12n, subgroupId: 0n, objectId: 0n, priority: 4, payload: enc("c") },
    ];
    const bytes = concatBytes([e.header(6n), ...objs.map((o) => e.object(o))]);
    const r = StreamReader.fromChunks([bytes]);
    assert.equal(await r.varint(), 5n);
    assert.equal(await r.varint(), 6n);
    const d = new FetchObjectDecoder();
    for (const o of objs) {
        const item = await d.next(r);
        assert.ok(item?.kind === "object");
        assert.equal(item.groupId, o.groupId);
        assert.equal(item.objectId, o.objectId);
        assert.deepEqual(item.payload, o.payload);
    }
    assert.equal(await d.next(r), undefined);
});
//# sourceMappingURL=data.test.js.map