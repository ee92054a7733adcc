import assert from "node:assert/strict";
import { test } from "node:test";
import { GroupAssembler, type TrackObject, connectUrl } from "../src/moqt/session.js";
import { chooseRendition } from "../src/viewer.js";
import { namespaceFromToken, parsePlaybackInfo, parseSignedPlaybackUrl, playbackKind, vodSegmentUrl } from "../src/playback.js";
import { SessionClosedError, RequestError } from "../src/errors.js";

const obj = (g: number, o: number): TrackObject => ({ groupId: BigInt(g), objectId: BigInt(o), payload: new Uint8Array([g, o]), receivedAt: 0, transferMs: 0 });
const ids = (l: TrackObject[]) => l.map((x) => `${x.groupId}.${x.objectId}`);

test("assembler: a late joiner without fetch starts at the next group boundary", () => {
  const out: TrackObject[] = [];
  const a = new GroupAssembler((o) => out.push(o));
  a.streamOpened(5n);
  a.onStreamObject(obj(5, 7)); // mid-group: dropped
  a.onStreamObject(obj(5, 8));
  a.streamClosed(5n);
  a.streamOpened(6n);
  a.onStreamObject(obj(6, 0));
  a.onStreamObject(obj(6, 1));
  assert.deepEqual(ids(out), ["6.0", "6.1"]);
  a.dispose();
});

test("assembler: joining fetch objects come first, then the subscription's", () => {
  const out: TrackObject[] = [];
  const a = new GroupAssembler((o) => out.push(o));
  a.expectJoin(5n);
  a.streamOpened(5n);
  a.onStreamObject(obj(5, 3)); // subscription starts at largest+1
  a.onFetchObject(obj(5, 0));
  a.onFetchObject(obj(5, 1));
  a.onFetchObject(obj(5, 2));
  a.onStreamObject(obj(5, 4));
  a.onFetchEnd(true);
  a.onStreamObject(obj(5, 5));
  a.streamClosed(5n);
  a.streamOpened(6n);
  a.onStreamObject(obj(6, 0));
  assert.deepEqual(ids(out), ["5.0", "5.1", "5.2", "5.3", "5.4", "5.5", "6.0"]);
  a.dispose();
});

test("assembler: failed fetch skips the partial group", () => {
  const out: TrackObject[] = [];
  const a = new GroupAssembler((o) => out.push(o));
  a.expectJoin(5n);
  a.streamOpened(5n);
  a.onStreamObject(obj(5, 3));
  a.onFetchEnd(false);
  a.onStreamObject(obj(5, 4));
  a.streamOpened(6n);
  a.onStreamObject(obj(6, 0));
  assert.deepEqual(ids(out), ["6.0"]);
  a.dispose();
});

test("assembler: next group waits for the current group's stream to finish", () => {
  const out: TrackObject[] = [];
  const a = new GroupAssembler((o) => out.push(o), 10_000);
  a.streamOpened(1n);
  a.onStreamObject(obj(1, 0));
  a.streamOpened(2n);
  a.onStreamObject(obj(2, 0)); // overtook the tail of group 1
  a.onStreamObject(obj(1, 1));
  a.streamClosed(1n);
  a.onStreamObject(obj(2, 1));
  a.onStreamObject(obj(1, 2)); // too late now
  assert.deepEqual(ids(out), ["1.0", "1.1", "2.0", "2.1"]);
  a.dispose();
});

test("signed playback URL and ids", () => {
  assert.deepEqual(parseSignedPlaybackUrl("https://app.example/watch/lv_abc?token=eyJ.x.y"), { id: "lv_abc", token: "eyJ.x.y" });
  assert.deepEqual(parseSignedPlaybackUrl("https://app.example/base/watch/pb_1"), { id: "pb_1", token: undefined });
  assert.throws(() => parseSignedPlaybackUrl("https://app.example/other/lv_abc"), /signed playback URL/);
  assert.throws(() => parseSignedPlaybackUrl("nope"), /not a URL/);
  assert.equal(playbackKind("lv_1"), "live");
  assert.equal(playbackKind("pb_1"), "vod");
  assert.throws(() => playbackKind("li_1"));
});

test("playback info, token claims, VOD URL mapping, connect URL", () => {
  assert.deepEqual(parsePlaybackInfo({ id: "lv_1", kind: "live", relayUrl: "https://r", certificateSha256: "ab" }, "lv_1"), { id: "lv_1", kind: "live", relayUrl: "https://r", certificateSha256: "ab" });
  assert.deepEqual(parsePlaybackInfo({ playbackId: "lv_2", kind: "live", orgId: "org_x", relayUrl: "https://r" }, "lv_2"), { id: "lv_2", kind: "live", orgId: "org_x", relayUrl: "https://r", namespace: "stream/org_x/lv_2" });
  const payload = Buffer.from(JSON.stringify({ org: "org_abc", sub: "lv_1" })).toString("base64url");
  assert.equal(namespaceFromToken(`h.${payload}.s`, "lv_1"), "stream/org_abc/lv_1");
  assert.equal(namespaceFromToken("garbage", "lv_1"), undefined);
  assert.equal(vodSegmentUrl("https://cdn/v/pb_1/catalog.json", { name: "video", packaging: "cmaf", isLive: false }, 3), "https://cdn/v/pb_1/video/3.m4s");
  assert.equal(vodSegmentUrl("http://h/vod/pb_1/catalog.json?token=j.w.t", { name: "video/source", packaging: "cmaf", isLive: false }, "init"), "http://h/vod/pb_1/video%2Fsource/init.mp4?token=j.w.t");
  assert.equal(connectUrl("https://relay:4443/", "a b"), "https://relay:4443/?token=a+b");
  assert.equal(connectUrl("moqt://relay/x", undefined), "https://relay/x");
});

test("typed errors: auth_failed surfaces exactly", () => {
  const e = new SessionClosedError(0, "auth_failed");
  assert.equal(e.code, "auth_failed");
  assert.equal(e.message, "auth_failed");
  assert.equal(new SessionClosedError(0, "bye").code, "session_closed");
  assert.equal(new RequestError(0x1n, "bad key", 0n, "PUBLISH").code, "auth_failed");
  assert.equal(new RequestError(0x10n, "", 0n, "SUBSCRIBE").code, "request_error");
});

test("ABR decision", () => {
  const r = [{ name: "sd", packaging: "cmaf", isLive: true, bitrate: 800_000 }, { name: "hd", packaging: "cmaf", isLive: true, bitrate: 5_000_000 }];
  assert.equal(chooseRendition(r, 0, 20_000_000, 1, 1, false), 1);
  assert.equal(chooseRendition(r, 0, 5_000_000, 1, 1, false), 0);
  assert.equal(chooseRendition(r, 1, 4_000_000, 1, 1, false), 0);
  assert.equal(chooseRendition(r, 1, 50_000_000, 1, 1, true), 0);
  // At the live edge the buffer holds about the latency target (0.15 s), never half a group:
  // that is enough to go up; an empty buffer is not.
  assert.equal(chooseRendition(r, 0, 20_000_000, 0.15, 1, false), 1);
  assert.equal(chooseRendition(r, 0, 20_000_000, 0, 1, false), 0);
  // No measurement yet: stay.
  assert.equal(chooseRendition(r, 1, undefined, 1, 1, false), 1);
});
