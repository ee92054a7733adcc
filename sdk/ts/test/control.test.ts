import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, Streams } from "../src/streams.js";
import { parsePlaybackInfo, resolvePlayback } from "../src/playback.js";

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
}

/** A fetch that records calls and answers from `routes` ("METHOD path" → [status, body]). */
function fakeFetch(routes: Record<string, [number, unknown]>): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const f = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const method = init?.method ?? "GET";
    const headers = (init?.headers ?? {}) as Record<string, string>;
    calls.push({ url, method, headers, body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined });
    const path = new URL(url).pathname + new URL(url).search;
    const hit = routes[`${method} ${path}`];
    if (hit === undefined) return new Response(JSON.stringify({ error: { code: "not_found", message: "route not found" } }), { status: 404 });
    return new Response(JSON.stringify(hit[1]), { status: hit[0], headers: { "content-type": "application/json" } });
  };
  return { fetch: f as typeof fetch, calls };
}

const input = {
  id: "li_1", external_input_id: "lv_1", org_id: "org_abc", name: "Live Demo", ingest: "fmp4",
  namespace: "stream/org_abc/lv_1", status: "idle", created_at: "2026-01-01T00:00:00Z",
};

test("liveInputs.create / get / list, rotateStreamKey, signedPlaybackUrl: paths, auth, bodies", async () => {
  const { fetch, calls } = fakeFetch({
    "POST /v1/orgs/org_abc/live_inputs": [201, { input, streamKey: "sk_1" }],
    "GET /v1/orgs/org_abc/live_inputs/li_1": [200, { input }],
    "GET /v1/orgs/org_abc/live_inputs?limit=2": [200, { data: [input], nextCursor: "c1" }],
    "POST /v1/orgs/org_abc/live_inputs/li_1/stream_key": [200, { input, streamKey: "sk_2" }],
    "POST /v1/orgs/org_abc/live_inputs/li_1/playback_tokens": [201, { url: "http://h/watch/lv_1?token=t", token: "t", expiresAt: "2026-01-01T01:00:00Z", playbackId: "lv_1", kid: "k" }],
  });
  const streams = new Streams({ baseUrl: "http://h/", apiKey: "ak_x", orgId: "org_abc", fetch });
  const { input: created, streamKey } = await streams.liveInputs.create({ name: "Live Demo", ingest: "fmp4" });
  assert.equal(streamKey, "sk_1");
  assert.equal(created.external_input_id, "lv_1");
  assert.equal(created.namespace, "stream/org_abc/lv_1");
  assert.deepEqual(calls[0]?.body, { name: "Live Demo", ingest: "fmp4" });
  assert.equal(calls[0]?.headers["authorization"], "Bearer ak_x");
  assert.equal(calls[0]?.url, "http://h/v1/orgs/org_abc/live_inputs");

  const got = await streams.liveInputs.get({ id: "li_1" });
  assert.equal(got.name, "Live Demo");
  const page = await streams.liveInputs.list({ limit: 2 });
  assert.equal(page.data.length, 1);
  assert.equal(page.nextCursor, "c1");

  const rotated = await got.rotateStreamKey();
  assert.equal(rotated.streamKey, "sk_2");
  const signed = await got.signedPlaybackUrl({ ttlSeconds: 3600 });
  assert.equal(signed.url, "http://h/watch/lv_1?token=t");
  assert.equal(signed.token, "t");
  assert.equal(signed.playbackId, "lv_1");
  assert.deepEqual(calls.at(-1)?.body, { ttlSeconds: 3600 });
});

test("REST errors become ApiError with the API's code and the HTTP status", async () => {
  const { fetch } = fakeFetch({
    "POST /v1/orgs/org_abc/live_inputs": [400, { error: { code: "invalid_parameter", message: "name is required" } }],
    "GET /v1/orgs/org_abc/live_inputs/li_x": [401, { error: { code: "unauthorized", message: "bad key" } }],
  });
  const streams = new Streams({ baseUrl: "http://h", apiKey: "ak_x", orgId: "org_abc", fetch });
  await assert.rejects(streams.liveInputs.create({ name: "", ingest: "fmp4" }), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, "invalid_parameter");
    assert.equal(e.status, 400);
    assert.equal(e.message, "name is required");
    return true;
  });
  await assert.rejects(streams.liveInputs.get({ id: "li_x" }), { code: "unauthorized", status: 401 });
  // Not JSON at all: code from the status.
  const bad = new Streams({ baseUrl: "http://h", apiKey: "k", orgId: "o", fetch: (async () => new Response("oops", { status: 502 })) as typeof fetch });
  await assert.rejects(bad.liveInputs.list(), { code: "http_502", status: 502 });
  // Missing configuration is an argument error, not a network call.
  await assert.rejects(new Streams({ baseUrl: "http://h" }).liveInputs.list(), { code: "invalid_argument" });
});

test("assets.createUpload: POST /v1/orgs/{org}/assets/uploads → absolute uploadUrl", async () => {
  const { fetch, calls } = fakeFetch({
    "POST /v1/orgs/org_abc/assets/uploads": [201, { uploadUrl: "/v1/uploads/up_1", assetId: "as_1" }],
  });
  const streams = new Streams({ baseUrl: "http://h:8080", apiKey: "ak", orgId: "org_abc", fetch });
  const r = await streams.assets.createUpload({ name: "Session-Recording.mp4" });
  assert.deepEqual(r, { uploadUrl: "http://h:8080/v1/uploads/up_1", assetId: "as_1" });
  assert.deepEqual(calls[0]?.body, { name: "Session-Recording.mp4" });
});

test("playback info: the engine's live shape; token errors are auth_failed with the API code as reason", async () => {
  const info = parsePlaybackInfo({
    playbackId: "lv_1", kind: "live", orgId: "org_abc", namespace: "stream/org_abc/lv_1", catalogTrack: ".catalog",
    relayUrl: "https://127.0.0.1:4443", relayUrls: ["https://127.0.0.1:4443"], certificateSha256: null, token: "t", expiresAt: "x",
  }, "lv_1");
  assert.equal(info.namespace, "stream/org_abc/lv_1");
  assert.equal(info.relayUrl, "https://127.0.0.1:4443");
  assert.equal(info.certificateSha256, undefined);
  assert.deepEqual(info.relayUrls, ["https://127.0.0.1:4443"]);

  const { fetch } = fakeFetch({ "GET /v1/playback/lv_1?token=old": [401, { error: { code: "token_expired", message: "playback token expired" } }] });
  await assert.rejects(resolvePlayback("http://h", "lv_1", "old", fetch), { code: "auth_failed", reason: "token_expired" });
  await assert.rejects(resolvePlayback("http://h", "lv_2", "t", fetch), { code: "not_found" });
});
