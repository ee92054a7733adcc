import assert from "node:assert/strict";
import { test } from "node:test";
import { MoqtSession, type TrackObject } from "../src/moqt/session.js";
import { pair } from "./fake-transport.js";
import { namespaceFromString } from "../src/moqt/wire.js";

test("loopback: SETUP, SUBSCRIBE with joining FETCH, objects in group order, PUBLISH_DONE", async () => {
  const [wa, wb] = pair();
  const [pubS, subS] = await Promise.all([
    MoqtSession.connect({ url: "https://a/", transport: () => wa, certificateHashUrl: false }),
    MoqtSession.connect({ url: "https://b/", transport: () => wb, certificateHashUrl: false }),
  ]);
  assert.match(pubS.peerImplementation ?? "", /clutchcall/);
  const ns = namespaceFromString("stream/org_abc/lv_1");
  const track = pubS.createTrack({ namespace: ns, name: "video", priority: 4 });
  // group 100: objects 0..2 already published before the viewer joins
  for (let o = 0; o < 3; o++) track.write(100n, BigInt(o), new Uint8Array([100, o]));
  const sub = await subS.subscribe(ns, "video", { join: "current", token: "jwt" });
  assert.deepEqual(sub.largest, { group: 100n, object: 2n });
  track.write(100n, 3n, new Uint8Array([100, 3]));
  track.write(101n, 0n, new Uint8Array([101, 0]));
  track.write(101n, 1n, new Uint8Array([101, 1]));
  const got: TrackObject[] = [];
  for await (const o of sub) {
    got.push(o);
    if (got.length === 6) break;
  }
  assert.deepEqual(got.map((o) => `${o.groupId}.${o.objectId}`), ["100.0", "100.1", "100.2", "100.3", "101.0", "101.1"]);
  await track.end();
  const done = await sub.done;
  assert.equal(done?.statusCode, 2n);
  const missing = await subS.subscribe(ns, "nope").then(() => "ok", (e: { code: string }) => e.code);
  assert.equal(missing, "request_error");
  pubS.close(0, "auth_failed");
  const reason = await subS.closed;
  assert.equal(reason.code, "auth_failed");
});
