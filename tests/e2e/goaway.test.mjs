// GOAWAY in Chromium: the engine sends GOAWAY on every MoQT session when it gets SIGTERM (then
// drains and exits). The browser viewer must move to a new session by itself — here the same URL,
// served again by the engine restarted on the same ports with the same data directory — and keep
// playing, without onError. The RTMP encoder reconnects like OBS does.
//
// Needs `cargo build -p clutchcall`, ffmpeg and /usr/bin/chromium (see README.md).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage } from './lib/browser.mjs';
import { startEngine } from './lib/engine.mjs';
import { watchLive, watchState } from './lib/live-viewer.mjs';
import { rtmpPush } from './lib/rtmp.mjs';
import { poller, sleep } from './lib/wait.mjs';

const ARGS = ['--ladder', 'none'];

let engine;
let browser;
let encoder;

before(async () => {
  engine = await startEngine({ publicPrefix: null, args: ARGS });
  browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
});

after(async () => {
  await encoder?.stop();
  await browser?.close();
  await engine?.stop();
});

const until = poller(90_000);

/** REST call with the admin key (node side). */
async function api(creds, method, path, body) {
  const res = await fetch(`${engine.httpUrl}/v1/orgs/${creds.orgId}${path}`, {
    method,
    headers: { authorization: `Bearer ${creds.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

test('SIGTERM sends GOAWAY: the viewer re-subscribes on the restarted engine and plays on, no onError', async () => {
  const creds = await engine.credentials();
  const { input, streamKey } = await api(creds, 'POST', '/live_inputs', { name: 'goaway', ingest: 'rtmp' });
  const { token } = await api(creds, 'POST', `/live_inputs/${input.id}/playback_tokens`, { ttlSeconds: 3600 });
  const id = input.external_input_id;

  encoder = rtmpPush(engine.rtmpAddr(), id, streamKey);
  const page = await openPage(browser);
  await page.goto(`${engine.httpUrl}/`);
  await page.evaluate(watchLive, { id, token, viewerOptions: { reconnectTimeoutMs: 90_000 } });
  const state = () => page.evaluate(watchState);
  await until('onStarted', async () => (await state()).started);
  const a = await state();
  // Long enough that the restarted broadcast's timeline (from 0 again) lies behind the playhead.
  await until('frames grow for 12 s of media', async () => {
    const s = await state();
    return s.totalVideoFrames > a.totalVideoFrames + 10 && s.currentTime > 12;
  });

  // SIGTERM: GOAWAY to every session, drain, exit 0. Keep the data directory (inputs, keys).
  const { dataDir, httpPort, relayPort } = engine;
  const exit = await engine.stop({ keepDataDir: true });
  assert.deepEqual(exit, { code: 0, signal: null }, 'the engine drains and exits cleanly');
  await encoder.exited; // the encoder lost its server
  const down = await state();
  assert.equal(down.stats.migrations, 1, `the viewer received GOAWAY: ${JSON.stringify(down.stats)}`);

  // The same engine again: same ports, same data; a new self-signed certificate.
  engine = await startEngine({ publicPrefix: null, args: ARGS, dataDir, httpPort, relayPort });
  encoder = rtmpPush(engine.rtmpAddr(), id, streamKey);

  const back = await until('frames grow again after the restart', async () => {
    const s = await state();
    return s.totalVideoFrames > down.totalVideoFrames + 30 && s.currentTime !== down.currentTime ? s : null;
  });
  process.stderr.write(`before SIGTERM: currentTime ${down.currentTime.toFixed(2)}, group ${down.stats.lastGroup}; after the restart: currentTime ${back.currentTime.toFixed(2)}, group ${back.stats.lastGroup}\n`);
  assert.deepEqual(back.errors, [], 'no onError across GOAWAY and the reconnect');
  // The restarted engine's broadcast has a new timeline (from 0; the viewer joins it within a
  // few seconds of its start): the viewer plays it at once instead of freezing until it
  // reaches the old playhead.
  assert.ok(back.currentTime < down.currentTime, `plays the new timeline: ${back.currentTime} vs ${down.currentTime} before`);
  // Still going (not a last burst): frames keep coming, audio too.
  await until('frames keep growing', async () => (await state()).totalVideoFrames > back.totalVideoFrames + 30);
  const end = await state();
  assert.ok(end.audioDecodedBytes > back.audioDecodedBytes, 'audio plays after the reconnect');
  assert.equal(end.paused, false);
  assert.deepEqual(end.errors, []);
  assert.equal(end.error, null);
  await page.evaluate(() => window.watch.viewer.stop());
  await page.context().close();
});
