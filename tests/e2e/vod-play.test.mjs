// Recipe 3's browser half: `streams.assets.createUpload` from the SDK against the engine, the
// recipe's TUS2 loop, then the same viewer that plays lv_… plays the pb_… asset over HTTPS
// (catalog.json + CMAF segments into MSE) in the engine's /watch/{id} player.
//
// Needs `cargo build -p clutchcall`, ffmpeg and /usr/bin/chromium.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage } from './lib/browser.mjs';
import { startEngine } from './lib/engine.mjs';
import { videoStats } from './lib/recipe.mjs';

let engine;
let browser;
let creds;
let dir;

before(async () => {
  engine = await startEngine({ publicPrefix: null });
  creds = await engine.credentials();
  browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
  dir = await mkdtemp(join(tmpdir(), 'clutchcall-vod-play-'));
});

after(async () => {
  await browser?.close();
  await engine?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('recipe 3: createUpload from the SDK, upload, then the viewer plays pb_… with audio; seeking works', async () => {
  const file = join(dir, 'Session-Recording.mp4');
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=40',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=40',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '50', '-pix_fmt', 'yuv420p', '-c:a', 'aac', file,
  ]);
  const bytes = new Uint8Array(await readFile(file));

  const page = await openPage(browser);
  await page.goto(`${engine.httpUrl}/`);
  const { uploadUrl, assetId } = await page.evaluate(async ({ baseUrl, apiKey, orgId }) => {
    const { Streams } = await import('@clutchcall/sdk/streams');
    const streams = new Streams({ baseUrl, apiKey, orgId });
    return streams.assets.createUpload({ name: 'Session-Recording.mp4' });
  }, { baseUrl: engine.httpUrl, apiKey: creds.apiKey, orgId: creds.orgId });
  assert.match(assetId, /^as_/);

  // The recipe's tusUpload loop (one chunk here).
  let offset = Number((await fetch(uploadUrl, { method: 'HEAD', headers: { 'tus-resumable': '2.0.0' } })).headers.get('upload-offset') ?? 0);
  while (offset < bytes.byteLength) {
    const res = await fetch(uploadUrl, {
      method: 'PATCH',
      headers: { 'tus-resumable': '2.0.0', 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
      body: bytes.slice(offset),
    });
    assert.ok(res.ok, `PATCH: ${res.status} ${await res.text()}`);
    offset = Number(res.headers.get('upload-offset') ?? bytes.byteLength);
  }

  let asset;
  for (let i = 0; i < 300; i++) {
    const res = await fetch(`${engine.httpUrl}/v1/orgs/${creds.orgId}/assets/${assetId}`, { headers: { authorization: `Bearer ${creds.apiKey}` } });
    asset = (await res.json()).asset;
    if (asset.status === 'ready' || asset.status === 'errored') break;
    await sleep(200);
  }
  assert.equal(asset.status, 'ready', JSON.stringify(asset));
  assert.match(asset.playback_id, /^pb_/);

  const view = await openPage(browser);
  await view.goto(`${engine.httpUrl}/watch/${asset.playback_id}`);
  const started = await (async () => {
    for (let i = 0; i < 150; i++) {
      const p = await view.evaluate(() => ({ started: window.player?.started, errors: window.player?.errors }));
      if (p.started || p.errors?.length) return p;
      await sleep(200);
    }
    return { started: false };
  })();
  assert.deepEqual(started, { started: true, errors: [] });
  const a = await view.evaluate(videoStats);
  await sleep(2000);
  const b = await view.evaluate(videoStats);
  assert.ok(b.totalVideoFrames > a.totalVideoFrames, JSON.stringify({ a, b }));
  assert.ok(b.currentTime > a.currentTime);
  assert.ok(b.audioDecodedBytes > a.audioDecodedBytes, JSON.stringify({ a, b }));
  assert.equal(b.width, 640);

  // Seeking: forward past what the player buffers ahead (30 s), then back to the start; each
  // time the element lands at the target and keeps decoding frames from there.
  for (const target of [35, 1]) {
    await view.evaluate((t) => { document.querySelector('video').currentTime = t; }, target);
    let s;
    for (let i = 0; i < 150; i++) {
      s = await view.evaluate(videoStats);
      if (s.currentTime > target + 0.5 && s.currentTime < target + 4.5) break;
      await sleep(200);
    }
    assert.ok(s.currentTime > target + 0.5 && s.currentTime < target + 4.5, `seek to ${target}: ${JSON.stringify(s)}`);
    const before = s.totalVideoFrames;
    await sleep(1000);
    const after = await view.evaluate(videoStats);
    assert.ok(after.totalVideoFrames > before, `frames after the seek to ${target}: ${JSON.stringify({ s, after })}`);
    assert.deepEqual(await view.evaluate(() => window.player.errors), []);
  }
  await view.evaluate(() => window.player.viewer.stop());
  await page.context().close();
  await view.context().close();
});
