import assert from "node:assert/strict";
import { test } from "node:test";
import { DecodeError } from "../src/errors.js";
import { Reader, Writer } from "../src/moqt/buffer.js";
import { type ControlMessage, decodeMessage, encodeMessage, parseFramedMessage } from "../src/moqt/messages.js";
import { decodeVarint, encodeVarint, varintSize } from "../src/moqt/varint.js";
import { encodeToken, decodeToken, readKeyValues, readParams, useValueToken, writeKeyValues, writeParams } from "../src/moqt/wire.js";

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const enc = (s: string) => new TextEncoder().encode(s);

test("varint: the draft's example encodings", () => {
  const cases: Array<[string, bigint]> = [
    ["25", 37n],
    ["8025", 37n],
    ["bbbd", 15293n],
    ["ed7f3e7d", 226442877n],
    ["faa1a0e403d8", 2893212287960n],
    ["fc8998abc66bc0", 151288809941952n],
    ["fefa318fa8e3ca11", 70423237261249041n],
    ["ffffffffffffffffff", 18446744073709551615n],
  ];
  for (const [h, v] of cases) {
    const { value, length } = decodeVarint(hex(h));
    assert.equal(value, v, h);
    assert.equal(length, h.length / 2, h);
  }
  // minimal encodings reproduce the examples (0x8025 is the non-minimal one)
  assert.equal(toHex(encodeVarint(37)), "25");
  assert.equal(toHex(encodeVarint(15293)), "bbbd");
  assert.equal(toHex(encodeVarint(226442877)), "ed7f3e7d");
  assert.equal(toHex(encodeVarint(2893212287960)), "faa1a0e403d8");
  assert.equal(toHex(encodeVarint(151288809941952n)), "fc8998abc66bc0");
  assert.equal(toHex(encodeVarint(70423237261249041n)), "fefa318fa8e3ca11");
  assert.equal(toHex(encodeVarint(18446744073709551615n)), "ffffffffffffffffff");
  assert.equal(toHex(encodeVarint(37, 2)), "8025");
});

test("varint: boundaries of every length round-trip", () => {
  const bounds = [0n, 127n, 128n, 16383n, 16384n, 2097151n, 2097152n, 268435455n, 268435456n, 34359738367n, 34359738368n,
    4398046511103n, 4398046511104n, 562949953421311n, 562949953421312n, 72057594037927935n, 72057594037927936n, (1n << 64n) - 1n];
  const lengths = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9];
  bounds.forEach((v, i) => {
    const b = encodeVarint(v);
    assert.equal(b.length, lengths[i], `length of ${v}`);
    assert.equal(varintSize(v), lengths[i]);
    assert.deepEqual(decodeVarint(b), { value: v, length: b.length });
    // every non-minimal length that fits also decodes
    for (let n = b.length; n <= 9; n++) assert.equal(decodeVarint(encodeVarint(v, n)).value, v);
  });
  assert.throws(() => encodeVarint(1n << 64n), RangeError);
  assert.throws(() => encodeVarint(-1), RangeError);
  assert.throws(() => encodeVarint(128, 1), RangeError);
});

test("varint: truncated input is a DecodeError", () => {
  for (const h of ["", "80", "c0ff", "feffffffffffff", "ffffffffffffffff"]) {
    assert.throws(() => decodeVarint(hex(h)), (e: unknown) => e instanceof DecodeError && e.truncated);
  }
});

test("key-value pairs: delta types, odd = bytes, even = varint", () => {
  const w = new Writer();
  writeKeyValues(w, [
    { type: 77n, value: enc("traceID:123456") },
    { type: 4n, value: 2186796243n },
  ]);
  const b = w.finish();
  // type 4 (delta 4) value; then type 77 (delta 73) len 14 bytes
  assert.equal(b[0], 4);
  const kvs = readKeyValues(new Reader(b));
  assert.deepEqual(kvs.map((k) => k.type), [4n, 77n]);
  assert.equal(kvs[0]?.value, 2186796243n);
  assert.deepEqual(kvs[1]?.value, enc("traceID:123456"));
});

test("message parameters: ascending delta-encoded types, typed values", () => {
  const w = new Writer();
  writeParams(w, {
    subscriptionFilter: { type: 0x3, start: { group: 5n, object: 1n } },
    authorizationTokens: [useValueToken("sk_live_123")],
    forward: 1,
    subscriberPriority: 7,
    largestObject: { group: 9n, object: 3n },
    groupOrder: 2,
    newGroupRequest: 0n,
  });
  const bytes = w.finish();
  const r = new Reader(bytes);
  assert.equal(r.varint(), 7n); // count
  assert.equal(r.varint(), 0x03n); // AUTHORIZATION_TOKEN first (delta from 0)
  const p = readParams(new Reader(bytes));
  assert.equal(p.forward, 1);
  assert.equal(p.subscriberPriority, 7);
  assert.equal(p.groupOrder, 2);
  assert.equal(p.newGroupRequest, 0n);
  assert.deepEqual(p.largestObject, { group: 9n, object: 3n });
  assert.deepEqual(p.subscriptionFilter, { type: 3, start: { group: 5n, object: 1n } });
  const t = p.authorizationTokens?.[0];
  assert.ok(t !== undefined && t.aliasType === 3);
  assert.equal(t.aliasType === 3 ? new TextDecoder().decode(t.value) : "", "sk_live_123");
});

test("token: USE_VALUE layout is alias type 3, token type 0, raw value", () => {
  const b = encodeToken(useValueToken("abc"));
  assert.equal(toHex(b), "0300616263");
  assert.deepEqual(decodeToken(b), useValueToken("abc"));
  assert.deepEqual(decodeToken(encodeToken({ aliasType: 1, alias: 5n, tokenType: 0n, value: enc("x") })), { aliasType: 1, alias: 5n, tokenType: 0n, value: enc("x") });
});

test("unknown message parameter is a protocol violation", () => {
  const w = new Writer().varint(1).varint(0x05).varint(1);
  assert.throws(() => readParams(new Reader(w.finish())), DecodeError);
});

const ns = [enc("stream"), enc("org_abc"), enc("lv_1")];
const samples: ControlMessage[] = [
  { type: "SETUP", options: [{ type: 0x07n, value: enc("test/1") }, { type: 0x9dn, value: enc("grease") }] },
  { type: "GOAWAY", newSessionUri: "https://other/relay", timeoutMs: 5000n, requestId: 4n },
  { type: "GOAWAY", newSessionUri: "", timeoutMs: 0n },
  { type: "SUBSCRIBE", requestId: 0n, namespace: ns, name: enc("video"), params: { authorizationTokens: [useValueToken("jwt")], forward: 1, subscriberPriority: 128, subscriptionFilter: { type: 0x2 }, groupOrder: 1 } },
  { type: "TRACK_STATUS", requestId: 2n, namespace: ns, name: enc("audio"), params: {} },
  { type: "SUBSCRIBE_OK", trackAlias: 12345678901n, params: { largestObject: { group: 1700000000000n, object: 12n }, expires: 0n }, properties: [{ type: 0x0en, value: 4n }] },
  { type: "REQUEST_OK", params: {}, properties: [] },
  { type: "REQUEST_ERROR", errorCode: 0x1n, retryInterval: 0n, reason: "auth_failed" },
  { type: "REQUEST_ERROR", errorCode: 0x34n, retryInterval: 1001n, reason: "moved", redirect: { connectUri: "https://edge2", namespace: ns, name: enc("video") } },
  { type: "REQUEST_UPDATE", requestId: 6n, params: { forward: 0 } },
  { type: "PUBLISH", requestId: 8n, namespace: ns, name: enc(".catalog"), trackAlias: 1n, params: { authorizationTokens: [useValueToken("sk")], forward: 1 }, properties: [] },
  { type: "PUBLISH_DONE", statusCode: 0x2n, streamCount: 17n, reason: "track ended" },
  { type: "PUBLISH_NAMESPACE", requestId: 10n, namespace: ns, params: { authorizationTokens: [useValueToken("sk")] } },
  { type: "SUBSCRIBE_NAMESPACE", requestId: 12n, namespace: [enc("stream")], params: {} },
  { type: "NAMESPACE", suffix: [enc("lv_2")] },
  { type: "NAMESPACE_DONE", suffix: [enc("lv_2")] },
  { type: "FETCH", requestId: 14n, fetchType: 0x2, joiningRequestId: 0n, joiningStart: 0n, params: { subscriberPriority: 1 } },
  { type: "FETCH", requestId: 16n, fetchType: 0x1, namespace: ns, name: enc("video"), start: { group: 3n, object: 0n }, end: { group: 4n, object: 0n }, params: {} },
  { type: "FETCH_OK", endOfTrack: false, end: { group: 3n, object: 9n }, params: {}, properties: [] },
];

test("control messages round-trip exactly", () => {
  for (const m of samples) {
    const bytes = encodeMessage(m);
    const parsed = parseFramedMessage(bytes);
    assert.ok(parsed !== undefined, m.type);
    assert.equal(parsed.length, bytes.length);
    assert.deepEqual(parsed.message, m, m.type);
  }
});

test("control message framing: type varint, 16-bit length", () => {
  const b = encodeMessage({ type: "REQUEST_OK", params: {}, properties: [] });
  assert.equal(toHex(b), "07000100");
  const setup = encodeMessage({ type: "SETUP", options: [] });
  assert.equal(toHex(setup), "af000000"); // 0x2F00 as a 2-byte varint, length 0
});

test("PUBLISH_OK legacy type 0x1E decodes as REQUEST_OK", () => {
  assert.deepEqual(decodeMessage(0x1en, hex("00")), { type: "REQUEST_OK", params: {}, properties: [] });
});

test("every truncation of every message is a DecodeError or incomplete, never another exception", () => {
  for (const m of samples) {
    const bytes = encodeMessage(m);
    for (let n = 0; n < bytes.length; n++) {
      assert.equal(parseFramedMessage(bytes.subarray(0, n)), undefined, `${m.type} prefix ${n}`);
    }
  }
  for (const m of samples) {
    const full = encodeMessage(m);
    const r = new Reader(full);
    const type = r.varint();
    r.u16();
    const payload = r.rest();
    for (let n = 0; n < payload.length; n++) {
      try {
        decodeMessage(type, payload.subarray(0, n));
      } catch (e) {
        assert.ok(e instanceof DecodeError, `${m.type} cut at ${n}: ${String(e)}`);
      }
    }
    // trailing garbage is a length mismatch (GOAWAY's optional Request ID would absorb it)
    if (m.type !== "GOAWAY") assert.throws(() => decodeMessage(type, new Uint8Array([...payload, 0])), DecodeError);
  }
});

test("random bytes never throw anything but DecodeError", () => {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
  for (let i = 0; i < 3000; i++) {
    const len = rnd() % 40;
    const b = Uint8Array.from({ length: len }, rnd);
    for (const t of [0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0x10, 0x16, 0x18, 0x1d, 0x2f00, 0x99]) {
      try {
        decodeMessage(BigInt(t), b);
      } catch (e) {
        assert.ok(e instanceof DecodeError, `type ${t}: ${String(e)}`);
      }
    }
  }
});

test("namespace limits: empty field and >32 fields rejected", () => {
  const one = new Writer().varint(1).varint(0).finish();
  assert.throws(() => decodeMessage(0x6n, new Uint8Array([0, ...one, 0])), DecodeError);
  const many = new Writer().varint(0).varint(33);
  for (let i = 0; i < 33; i++) many.lenBytes(enc("a"));
  many.varint(0);
  assert.throws(() => decodeMessage(0x6n, many.finish()), DecodeError);
});
