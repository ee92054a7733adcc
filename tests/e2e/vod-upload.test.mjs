// Recipe 3 against the real engine, in node (needs `cargo build -p clutchcall` and ffmpeg):
// createUpload → the recipe's `tusUpload` loop as written, through a TCP proxy that cuts the
// connection at random points at least 20 times (each cut resumes via HEAD) → the stored
// bytes hash equal to the source → the asset becomes ready → its pb_… catalog and segments
// are served (CORS). Then tus-js-client (the standard tus client) uploads a file end to end.
//
// The browser playback of pb_… (frames decode, seeking) is the TS viewer's test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tus from 'tus-js-client';
import { startEngine, freeTcpPort } from './lib/engine.mjs';

const MB = 1_000_000;

/** A ≥ `minBytes` H.264/AAC MP4 (moov at the end, padded with a trailing `free` box). */
async function makeMedia(dir, minBytes) {
  const path = join(dir, 'Session-Recording.mp4');
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25:duration=40',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=40',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '50', '-b:v', '10M', '-maxrate', '10M', '-bufsize', '20M',
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', path,
  ]);
  let bytes = new Uint8Array(await readFile(path));
  if (bytes.byteLength < minBytes) {
    const pad = minBytes - bytes.byteLength + 8;
    const out = new Uint8Array(bytes.byteLength + pad);
    out.set(bytes);
    new DataView(out.buffer).setUint32(bytes.byteLength, pad);
    out.set([0x66, 0x72, 0x65, 0x65], bytes.byteLength + 4); // 'free'
    bytes = out;
  }
  return bytes;
}

// ---- recipe 3, as written (types removed) ----------------------------------------------------
async function tusUpload(uploadUrl, bytes, chunk = 8 << 20) {
  // On reconnect, HEAD uploadUrl to read Upload-Offset and resume there.
  let offset = Number(
    (await fetch(uploadUrl, { method: "HEAD", headers: { "tus-resumable": "2.0.0" } }))
      .headers.get("upload-offset") ?? 0,
  );
  while (offset < bytes.byteLength) {
    const end = Math.min(offset + chunk, bytes.byteLength);
    const res = await fetch(uploadUrl, {
      method: "PATCH",
      headers: {
        "tus-resumable": "2.0.0",
        "upload-offset": String(offset),
        "content-type": "application/offset+octet-stream",
      },
      body: bytes.slice(offset, end),
    });
    offset = Number(res.headers.get("upload-offset") ?? end);
  }
}
// ------------------------------------------------------------------------------------------------

async function api(engine, creds, method, path, body) {
  const res = await fetch(`${engine.httpUrl}/v1/orgs/${creds.orgId}${path}`, {
    method,
    headers: { authorization: `Bearer ${creds.apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => null);
  return { status: res.status, json };
}

async function waitReady(engine, creds, assetId, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { json } = await api(engine, creds, 'GET', `/assets/${assetId}`);
    const a = json.asset;
    if (a.status === 'ready') return a;
    assert.notEqual(a.status, 'errored', JSON.stringify(a));
    assert.ok(Date.now() < deadline, `asset not ready: ${JSON.stringify(a)}`);
    await sleep(200);
  }
}

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

test('recipe 3: tusUpload through a connection-cutting proxy, then pb_ is served', { timeout: 600_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cc-vod-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bytes = await makeMedia(dir, 50 * MB);
  assert.ok(bytes.byteLength >= 50 * MB);

  // The engine's public URL is the proxy, so uploadUrl goes through it.
  const proxyPort = await freeTcpPort();
  const engine = await startEngine({ args: ['--public-url', `http://127.0.0.1:${proxyPort}`] });
  t.after(() => engine.stop());
  const proxy = await cuttingProxyOn(proxyPort, engine.httpPort);
  t.after(() => proxy.close());
  const creds = await engine.credentials();

  // streams.assets.createUpload({ name }) is this call:
  const created = await api(engine, creds, 'POST', '/assets/uploads', { name: 'Session-Recording.mp4' });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const { uploadUrl, assetId } = created.json;
  assert.ok(uploadUrl.startsWith(`http://127.0.0.1:${proxyPort}/v1/uploads/up_`), uploadUrl);

  let resumes = 0;
  for (;;) {
    try {
      await tusUpload(uploadUrl, bytes);
      break;
    } catch {
      resumes += 1; // the proxy cut us: the next call HEADs and resumes
      assert.ok(resumes < 500, 'too many resumes');
    }
  }
  assert.ok(proxy.state.cuts >= 20, `only ${proxy.state.cuts} cuts`);
  assert.ok(resumes >= 1);
  t.diagnostic(`cuts=${proxy.state.cuts} resumes=${resumes}`);

  const asset = await waitReady(engine, creds, assetId);
  assert.equal(asset.size_bytes, bytes.byteLength);
  const stored = await readFile(join(engine.dataDir, 'objects', 'uploads', assetId, 'source'));
  assert.equal(sha256(stored), sha256(bytes), 'stored bytes hash equal to the source');

  const pb = asset.playback_id;
  assert.match(pb, /^pb_/);
  const info = await (await fetch(`${engine.httpUrl}/v1/playback/${pb}`)).json();
  assert.equal(info.kind, 'vod');
  const catalogUrl = info.catalogUrl.replace(`:${proxyPort}`, `:${engine.httpPort}`);
  const catRes = await fetch(catalogUrl, { headers: { origin: 'http://example.test' } });
  assert.equal(catRes.status, 200);
  assert.equal(catRes.headers.get('access-control-allow-origin'), '*');
  const catalog = await catRes.json();
  const video = catalog.tracks.find((t) => t.role === 'video');
  const audio = catalog.tracks.find((t) => t.role === 'audio');
  assert.ok(video && audio, JSON.stringify(catalog.tracks.map((t) => t.name)));
  assert.match(video.codec, /^avc1\./);
  assert.equal(video.width, 1280);
  assert.ok(video.segmentCount >= 19, `segments: ${video.segmentCount}`);
  const base = new URL('.', catalogUrl);
  for (const tr of [video, audio]) {
    const seg = await fetch(new URL(tr.segmentTemplate.replace('{index}', '0'), base), { headers: { origin: 'http://example.test' } });
    assert.equal(seg.status, 200);
    assert.equal(seg.headers.get('access-control-allow-origin'), '*');
    const b = new Uint8Array(await seg.arrayBuffer());
    assert.equal(new TextDecoder().decode(b.subarray(4, 8)), 'moof');
    const past = await fetch(new URL(tr.segmentTemplate.replace('{index}', String(tr.segmentCount)), base));
    assert.equal(past.status, 404);
  }
});

/**
 * TCP proxy on `port` to `targetPort` that destroys each connection after a random number of
 * bytes (either direction), `maxCuts` times at most; then it passes everything through.
 */
async function cuttingProxyOn(port, targetPort) {
  const state = { cuts: 0 };
  const server = cuttingProxyFactory(targetPort, state);
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { port, state, close: () => new Promise((r) => server.close(r)) };
}

function cuttingProxyFactory(targetPort, state, { maxCuts = 40, minBytes = 32 << 10, maxBytes = 3 << 20 } = {}) {
  return createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    let budget = state.cuts < maxCuts ? minBytes + Math.floor(Math.random() * (maxBytes - minBytes)) : Infinity;
    let done = false;
    const cut = () => {
      if (done) return;
      done = true;
      state.cuts += 1;
      client.destroy();
      upstream.destroy();
    };
    const pipe = (from, to) =>
      from.on('data', (chunk) => {
        if (done) return;
        if (chunk.length >= budget) {
          to.write(chunk.subarray(0, budget));
          cut();
          return;
        }
        budget -= chunk.length;
        to.write(chunk);
      });
    pipe(client, upstream);
    pipe(upstream, client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
}

test('tus-js-client completes an upload (creation + PATCH, 1 MiB chunks)', { timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cc-vod-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'clip.mp4');
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=8',
    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=8',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '50', '-b:v', '8M', '-pix_fmt', 'yuv420p', '-c:a', 'aac', path,
  ]);
  const buf = await readFile(path);
  assert.ok((await stat(path)).size > 2 << 20);
  const engine = await startEngine();
  t.after(() => engine.stop());
  const creds = await engine.credentials();
  let assetId = null;
  await new Promise((resolve, reject) => {
    const up = new tus.Upload(buf, {
      endpoint: `${engine.httpUrl}/v1/uploads`,
      headers: { authorization: `Bearer ${creds.apiKey}` },
      chunkSize: 1 << 20,
      metadata: { filename: 'clip.mp4', filetype: 'video/mp4' },
      retryDelays: [0, 200, 500],
      onAfterResponse: (_req, res) => {
        const id = res.getHeader('Clutchcall-Asset-Id');
        if (id) assetId = id;
      },
      onError: reject,
      onSuccess: resolve,
    });
    up.start();
  });
  assert.match(assetId ?? '', /^as_/);
  const asset = await waitReady(engine, creds, assetId);
  assert.equal(asset.name, 'clip.mp4');
  const stored = await readFile(join(engine.dataDir, 'objects', 'uploads', assetId, 'source'));
  assert.equal(sha256(stored), sha256(buf));
});
