// Recipe 2 at scale in Debian's chromium: the encoder contributes over RTMP to the origin, and
// browsers watch at an edge (`serve --origin`, same PostgreSQL). The viewer is the recipe's,
// pointed at the edge's API (`apiBase`), so playback info sends it to the edge's relay; a
// second, late viewer starts on a keyframe from the edge's cache without the origin seeing
// another subscription.
//
// Needs `cargo build -p clutchcall`, ffmpeg, /usr/bin/chromium and PostgreSQL (Debian's
// `postgresql`, or CLUTCHCALL_TEST_DATABASE_URL).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage } from './lib/browser.mjs';
import { startEngine } from './lib/engine.mjs';
import { watchLive, watchState } from './lib/live-viewer.mjs';
import { postgresDatabase, stopPostgres } from './lib/postgres.mjs';
import { rtmpPush } from './lib/rtmp.mjs';
import { poller } from './lib/wait.mjs';

let origin;
let edge;
let browser;
let encoder;

before(async () => {
  const db = await postgresDatabase();
  if (!db) return;
  origin = await startEngine({ publicPrefix: null, args: ['--database-url', db, '--ladder', '144:150'] });
  edge = await startEngine({
    publicPrefix: null,
    args: ['--database-url', db, '--origin', `moqt://127.0.0.1:${origin.relayPort}`, '--origin-http', origin.httpUrl],
  });
  browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
});

after(async () => {
  await encoder?.stop();
  await browser?.close();
  await edge?.stop();
  await origin?.stop();
  stopPostgres();
});

const until = poller(60_000);

/** A counter from an engine's /metrics (0 when absent). */
async function metric(engine, series) {
  const text = await (await fetch(`${engine.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function framesGrow(page, what) {
  const a = await page.evaluate(watchState);
  await until(`${what}: frames grow`, async () => {
    const b = await page.evaluate(watchState);
    return b.totalVideoFrames > a.totalVideoFrames + 10 && b.currentTime > a.currentTime ? b : null;
  });
}

test('recipe 2 through a relay mesh: RTMP into the origin, browsers watch at an edge', async (t) => {
  if (!origin) {
    t.skip('PostgreSQL unavailable');
    return;
  }
  const creds = await origin.credentials();
  const ctl = await openPage(browser);
  await ctl.goto(`${origin.httpUrl}/`);
  const live = await ctl.evaluate(async ({ baseUrl, apiKey, orgId }) => {
    const { Streams } = await import('@clutchcall/sdk/streams');
    const streams = new Streams({ baseUrl, apiKey, orgId });
    const { input } = await streams.liveInputs.create({ name: 'Keynote 2026', ingest: 'rtmp' });
    const { streamKey } = await input.rotateStreamKey();
    const inp = await streams.liveInputs.get({ id: input.id });
    const { token } = await inp.signedPlaybackUrl({ ttlSeconds: 900 });
    return { id: input.external_input_id, streamKey, token };
  }, { baseUrl: origin.httpUrl, apiKey: creds.apiKey, orgId: creds.orgId });
  await ctl.context().close();

  // Viewer 1 at the edge, before the encoder is up (it waits for the broadcast): the edge's API
  // names the edge's relay, which pulls from the origin.
  const first = await openPage(browser);
  await first.goto(`${edge.httpUrl}/`);
  await first.evaluate(watchLive, { id: live.id, token: live.token, viewerOptions: { rendition: 'video/source' } });
  encoder = rtmpPush(origin.rtmpAddr(), live.id, live.streamKey);
  await until('viewer 1 starts', async () => (await first.evaluate(watchState)).started);
  await framesGrow(first, 'viewer 1');
  const renditions = await until('the catalog reaches the edge with the ladder', async () => {
    const s = await first.evaluate(watchState);
    return s.renditions.length === 2 ? s.renditions : null;
  });
  assert.deepEqual(renditions.map((r) => r.height).sort((a, b) => a - b), [144, 360], JSON.stringify(renditions));
  const upstream = await metric(origin, 'relay_requests_total{type="SUBSCRIBE"}');
  assert.ok(upstream >= 1, 'the edge subscribed at the origin');
  assert.ok((await metric(edge, 'relay_requests_total{type="SUBSCRIBE"}')) >= 2, 'the viewer subscribed at the edge');

  // Viewer 2 joins late at the same edge: it starts on a keyframe from the edge's cache, and
  // the origin sees no new subscription for the tracks already pulled.
  const second = await openPage(browser);
  await second.goto(`${edge.httpUrl}/`);
  await second.evaluate(watchLive, { id: live.id, token: live.token, viewerOptions: { rendition: 'video/source' } });
  await until('viewer 2 starts', async () => (await second.evaluate(watchState)).started);
  await framesGrow(second, 'viewer 2');
  assert.equal(await metric(origin, 'relay_requests_total{type="SUBSCRIBE"}'), upstream, 'one upstream subscription per track');
  for (const [name, page] of [['viewer 1', first], ['viewer 2', second]]) {
    const s = await page.evaluate(watchState);
    assert.deepEqual(s.errors, [], `${name}: ${JSON.stringify(s.errors)}`);
    assert.equal(s.error, null, `${name}: media element error`);
    assert.equal(s.height, 360, `${name} plays the source`);
  }
});
