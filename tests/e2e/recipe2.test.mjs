// Recipe 2 (spec/recipes.txt) in Debian's chromium: an RTMP encoder (ffmpeg, configured like OBS)
// contributes once, the engine publishes the passthrough source plus an ffmpeg ABR ladder (one
// MSF altGroup, keyframe-aligned), and the browser viewer from the SDK plays it with a signed
// URL's token: it follows the catalog as renditions appear and go, plays every rendition, and
// ABR moves down when its bitrate cap drops.
//
// Throughput is constrained through the viewer's bitrate cap (`setMaxBitrate`), not the network:
// CDP's Network.emulateNetworkConditions does not reach WebTransport (measured in this Chromium:
// at a 10 kB/s emulated limit the viewer still received ~118 kB/s over the relay while a fetch()
// of the 167 kB SDK bundle took 15.5 s).
//
// Needs `cargo build -p clutchcall`, ffmpeg and /usr/bin/chromium (see README.md).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage } from './lib/browser.mjs';
import { startEngine } from './lib/engine.mjs';
import { watchLive, watchState } from './lib/live-viewer.mjs';
import { rtmpPush } from './lib/rtmp.mjs';
import { poller, sleep } from './lib/wait.mjs';

// Light enough for a small shared machine: a 640x360 source and two rungs below it.
const LADDER = '240:400,144:150';

let engine;
let browser;
let creds;
let encoder;
let viewPage;
let live;

before(async () => {
  engine = await startEngine({ publicPrefix: null, args: ['--ladder', LADDER] });
  creds = await engine.credentials();
  browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
});

after(async () => {
  await encoder?.stop();
  await browser?.close();
  const exit = await engine?.stop();
  if (exit && exit.code !== 0 && exit.signal == null) {
    process.stderr.write(`engine exited with ${JSON.stringify(exit)}:\n${engine.output()}\n`);
  }
});

const until = poller(60_000);

const state = () => viewPage.evaluate(watchState);

/** Frames keep decoding and the playhead moves (from now on). */
async function framesGrow(what) {
  const a = await state();
  await until(`${what}: frames grow`, async () => {
    const b = await state();
    return b.totalVideoFrames > a.totalVideoFrames + 10 && b.currentTime > a.currentTime ? b : null;
  });
}

test('recipe 2: RTMP with a ladder; the browser viewer follows the catalog and plays every rendition', async () => {
  // "Provision the input and rotate a fresh key", "Issue a signed URL per viewer".
  const ctl = await openPage(browser);
  await ctl.goto(`${engine.httpUrl}/`);
  live = await ctl.evaluate(async ({ baseUrl, apiKey, orgId }) => {
    const { Streams } = await import('@clutchcall/sdk/streams');
    const streams = new Streams({ baseUrl, apiKey, orgId });
    const { input } = await streams.liveInputs.create({ name: 'Keynote 2026', ingest: 'rtmp' });
    const { streamKey } = await input.rotateStreamKey(); // fresh key for the event
    const inp = await streams.liveInputs.get({ id: input.id });
    const { token } = await inp.signedPlaybackUrl({ ttlSeconds: 900 });
    return { id: input.external_input_id, streamKey, token };
  }, { baseUrl: engine.httpUrl, apiKey: creds.apiKey, orgId: creds.orgId });
  await ctl.context().close();
  assert.match(live.id, /^lv_/);

  // The viewer starts first (it waits for the broadcast), so it reads the catalog before the
  // ladder is up: the rungs can only reach it as catalog updates.
  viewPage = await openPage(browser);
  await viewPage.goto(`${engine.httpUrl}/`);
  await viewPage.evaluate(watchLive, { id: live.id, token: live.token });
  encoder = rtmpPush(engine.rtmpAddr(), live.id, live.streamKey);

  await until('onStarted', async () => (await state()).started);
  const first = await state();
  assert.deepEqual(first.errors, []);
  assert.equal(first.catalogs[0]?.includes('video/source'), true, JSON.stringify(first.catalogs));
  await framesGrow('source');

  // Every rendition of the altGroup: the source and both rungs, in the viewer's list.
  const all = await until('the catalog lists the source and both rungs', async () => {
    const s = await state();
    return s.renditions.length === 3 ? s.renditions : null;
  });
  assert.ok(all.some((r) => r.name === 'video/source' && r.height === 360), JSON.stringify(all));
  assert.deepEqual(all.map((r) => r.height).sort((a, b) => a - b), [144, 240, 360], JSON.stringify(all));

  // Play each one: the decoded picture has that rendition's height and frames keep coming.
  for (const r of [...all].reverse()) {
    await viewPage.evaluate((name) => window.watch.viewer.setRendition(name), r.name);
    await until(`playing ${r.name}`, async () => {
      const s = await state();
      return s.rendition === r.name && s.stats.video === r.name && s.height === r.height ? s : null;
    });
    await framesGrow(r.name);
  }
  const s2 = await state();
  for (const r of all) {
    assert.ok(s2.onRendition.some((e) => e.kind === 'video' && e.name === r.name), `onRendition ${r.name}: ${JSON.stringify(s2.onRendition)}`);
  }
  assert.ok(s2.onRendition.some((e) => e.kind === 'audio'), 'audio rendition');
  assert.ok(s2.audioDecodedBytes > first.audioDecodedBytes, 'audio decodes');
  assert.deepEqual(s2.errors, []);
  assert.equal(s2.error, null);
  process.stderr.write(`catalogs (video tracks): ${JSON.stringify(s2.catalogs)}\nonRendition: ${JSON.stringify(s2.onRendition)}\n`);
});

test('the ladder dies: its rungs leave the catalog, the viewer moves to the source and back when the ladder returns', async () => {
  assert.ok(live && viewPage, 'needs the first test');
  const rung = (await state()).renditions.find((r) => r.height === 240);
  await viewPage.evaluate((name) => window.watch.viewer.setRendition(name), rung.name);
  await until(`playing ${rung.name}`, async () => (await state()).height === 240);

  // Kill the engine's ffmpeg child (the ladder transcoder), not the encoder.
  const pids = execFileSync('pgrep', ['-P', String(engine.pid), '-x', 'ffmpeg']).toString().trim().split(/\s+/);
  assert.equal(pids.length, 1, `one ladder ffmpeg: ${pids}`);
  process.kill(Number(pids[0]), 'SIGKILL');

  const gone = await until('the rungs leave the viewer and it plays the source', async () => {
    const s = await state();
    return s.renditions.length === 1 && s.rendition === 'video/source' && s.height === 360 ? s : null;
  });
  assert.deepEqual(gone.errors, []);
  await framesGrow('source after the ladder died');

  // Restarted with back-off: the rungs come back, and the pinned one plays again.
  await until('the ladder is back and the pinned rung plays', async () => {
    const s = await state();
    return s.renditions.length === 3 && s.rendition === rung.name && s.height === 240 ? s : null;
  });
  await framesGrow(`${rung.name} again`);
  assert.deepEqual((await state()).errors, []);
});

test('ABR: lowering the bitrate cap moves playback down, and it keeps playing', async () => {
  assert.ok(live && viewPage, 'needs the first test');
  await viewPage.evaluate(() => window.watch.viewer.setRendition(undefined)); // back to ABR
  const list = (await state()).renditions;
  const lowest = list[0];
  // Below every rung but the lowest: ABR must take the lowest, whatever throughput it measures.
  await viewPage.evaluate((bps) => window.watch.viewer.setMaxBitrate(bps), lowest.bitrate);
  const down = await until(`ABR moves to ${lowest.name}`, async () => {
    const s = await state();
    return s.rendition === lowest.name && s.height === lowest.height ? s : null;
  });
  assert.ok(down.onRendition.at(-1).name === lowest.name || down.onRendition.some((e) => e.name === lowest.name));
  await framesGrow(`ABR at ${lowest.name}`);
  const later = await state();
  assert.equal(later.rendition, lowest.name, 'stays within the cap');
  assert.equal(later.paused, false);
  assert.deepEqual(later.errors, []);
  await viewPage.evaluate(() => window.watch.viewer.stop());
  await viewPage.context().close();
});

test('a viewer that switches rendition right at start-up plays on (no playhead stuck before the buffer)', async () => {
  assert.ok(live, 'needs the first test');
  const page = await openPage(browser);
  await page.goto(`${engine.httpUrl}/`);
  await page.evaluate(watchLive, { id: live.id, token: live.token });
  const st = () => page.evaluate(watchState);
  // As soon as the catalog is read (before or around the first frame), ask for the lowest rung:
  // the switch lands within the first groups, while the playhead is still finding its start.
  const lowest = await until('catalog read', async () => (await st()).renditions.find((r) => r.height === 144));
  await page.evaluate((name) => window.watch.viewer.setRendition(name), lowest.name);
  await until('onStarted', async () => (await st()).started);
  const a = await until(`playing ${lowest.name}`, async () => {
    const s = await st();
    return s.rendition === lowest.name && s.height === 144 ? s : null;
  });
  await until('frames grow and the playhead moves', async () => {
    const s = await st();
    return s.totalVideoFrames > a.totalVideoFrames + 10 && s.currentTime > a.currentTime + 0.5 ? s : null;
  });
  assert.deepEqual((await st()).errors, []);
  await page.evaluate(() => window.watch.viewer.stop());
  await page.context().close();
});
