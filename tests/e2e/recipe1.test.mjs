// Recipe 1 (spec/recipes.txt) end to end in Debian's chromium: one page creates a live input,
// publishes the (fake) webcam over MoQT and mints a signed URL; another page opens that URL
// (the engine's /watch/{id} player, which runs the recipe's viewer code) and plays it.
// Plus the failure paths: an expired token, a wrong stream key, and a viewer joining late.
//
// Needs `cargo build -p clutchcall` and /usr/bin/chromium (see README.md).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage } from './lib/browser.mjs';
import { startEngine } from './lib/engine.mjs';
import { goLive, videoStats } from './lib/recipe.mjs';
import { poller, sleep } from './lib/wait.mjs';

let engine;
let browser;
let creds;
let expiring; // a 60 s playback token minted at start (the engine's shortest TTL), used last

before(async () => {
  // Tokens enforced: no --public-prefix.
  engine = await startEngine({ publicPrefix: null });
  creds = await engine.credentials();
  expiring = await mintExpiring();
  // Lets the player start with sound (a user's click does this in a real browser).
  browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
});

after(async () => {
  await browser?.close();
  const exit = await engine?.stop();
  if (exit && exit.code !== 0 && exit.signal == null) {
    process.stderr.write(`engine exited with ${JSON.stringify(exit)}:\n${engine.output()}\n`);
  }
});

const until = poller(30_000);

async function publisherPage() {
  const page = await openPage(browser);
  await page.goto(`${engine.httpUrl}/`);
  return page;
}

test('recipe 1: publish the webcam from one page, watch it from a signed URL in another', async () => {
  const pubPage = await publisherPage();
  const live = await pubPage.evaluate(goLive, {
    baseUrl: engine.httpUrl, apiKey: creds.apiKey, orgId: creds.orgId, relayUrl: engine.relayUrl, timesliceMs: 1000,
  });
  assert.match(live.url, /\/watch\/lv_[A-Za-z0-9_]+\?token=/);

  const viewPage = await openPage(browser);
  await viewPage.goto(live.url);
  await until('onStarted', () => viewPage.evaluate(() => window.player?.started === true));
  const first = await viewPage.evaluate(videoStats);
  await sleep(3000);
  const later = await viewPage.evaluate(videoStats);
  assert.ok(later.totalVideoFrames > first.totalVideoFrames, `frames grow: ${JSON.stringify({ first, later })}`);
  assert.ok(later.currentTime > first.currentTime, 'playback advances');
  assert.equal(later.paused, false);
  assert.ok(later.width > 0 && later.height > 0);
  assert.ok(later.audioDecodedBytes > first.audioDecodedBytes, `audio decodes: ${JSON.stringify({ first, later })}`);
  assert.equal(later.muted, false, 'audio is not muted');
  assert.deepEqual(await viewPage.evaluate(() => window.player.errors), []);
  const pubStats = await pubPage.evaluate(() => ({ ...window.recipe.pub.stats, videoGroup: undefined, audioGroup: undefined }));
  assert.match(pubStats.videoCodec, /^(avc1|vp09)\./);
  assert.equal(pubStats.audioCodec, 'opus');
  process.stderr.write(`publisher codecs: ${pubStats.videoCodec} + ${pubStats.audioCodec}\n`);

  // Tear down: both ends stop cleanly.
  await pubPage.evaluate(() => window.recipe.pub.stop());
  await viewPage.evaluate(() => window.player.viewer.stop());
  const stopped = await viewPage.evaluate(videoStats);
  assert.equal(stopped.error, null);
  assert.deepEqual(await viewPage.evaluate(() => window.player.errors), []);
  await pubPage.context().close();
  await viewPage.context().close();
});

/** REST call with the admin key (node side). */
async function api(method, path, body) {
  const res = await fetch(`${engine.httpUrl}/v1/orgs/${creds.orgId}${path}`, {
    method,
    headers: { authorization: `Bearer ${creds.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function mintExpiring() {
  const { input } = await api('POST', '/live_inputs', { name: 'expiring', ingest: 'fmp4' });
  const signed = await api('POST', `/live_inputs/${input.id}/playback_tokens`, { ttlSeconds: 60 });
  return { ...signed, id: input.external_input_id };
}

test('a wrong stream key makes publish reject with auth_failed and a clear message', async () => {
  const { input } = await api('POST', '/live_inputs', { name: 'wrong key', ingest: 'fmp4' });
  const page = await publisherPage();
  const result = await page.evaluate(async ({ relayUrl, id, namespace }) => {
    const { Streams } = await import('@clutchcall/sdk/streams');
    const pub = new Streams({ relayUrl }).publisher({ timesliceMs: 500 });
    const cam = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    try {
      await pub.publish(id, 'sk_not_the_key', cam, namespace);
      return { resolved: true };
    } catch (e) {
      return { name: e.name, code: e.code, message: e.message };
    } finally {
      cam.getTracks().forEach((t) => t.stop());
    }
  }, { relayUrl: engine.relayUrl, id: input.external_input_id, namespace: input.namespace });
  assert.equal(result.resolved, undefined, 'publish must reject');
  assert.equal(result.code, 'auth_failed', JSON.stringify(result));
  assert.match(result.message, /stream key/);
  await page.context().close();
});

test('a viewer joining late starts at the current group, not the start of the cache', async () => {
  const pubPage = await publisherPage();
  const live = await pubPage.evaluate(goLive, {
    baseUrl: engine.httpUrl, apiKey: creds.apiKey, orgId: creds.orgId, relayUrl: engine.relayUrl, timesliceMs: 500,
  });
  // Let several groups go by (the relay caches them all).
  await until('five groups published', () =>
    pubPage.evaluate(() => {
      const s = window.recipe.pub.stats;
      return s.videoGroup !== undefined && window.recipe.firstGroup !== undefined
        ? Number(s.videoGroup - window.recipe.firstGroup) >= 5
        : ((window.recipe.firstGroup ??= s.videoGroup), false);
    }),
  );
  const firstPublished = BigInt(await pubPage.evaluate(() => String(window.recipe.firstGroup)));
  const viewPage = await openPage(browser);
  await viewPage.goto(live.url);
  await until('onStarted', () => viewPage.evaluate(() => window.player?.started === true));
  const s = await viewPage.evaluate(() => {
    const st = window.player.viewer.stats;
    return { joinGroup: String(st.joinGroup), firstGroup: String(st.firstGroup), firstObject: String(st.firstObject) };
  });
  // The relay's newest group when the viewer subscribed (SUBSCRIBE_OK) is where it starts, at
  // that group's first object (the keyframe): within one group of the live edge, not at the
  // oldest cached group.
  assert.equal(s.firstGroup, s.joinGroup, JSON.stringify(s));
  assert.equal(s.firstObject, '0', JSON.stringify(s));
  assert.ok(BigInt(s.firstGroup) >= firstPublished + 5n, `${JSON.stringify(s)} vs first published ${firstPublished}`);
  const a = await viewPage.evaluate(videoStats);
  await until('frames keep coming', async () => (await viewPage.evaluate(videoStats)).totalVideoFrames > a.totalVideoFrames + 10);
  assert.deepEqual(await viewPage.evaluate(() => window.player.errors), []);
  await pubPage.evaluate(() => window.recipe.pub.stop());
  await viewPage.evaluate(() => window.player.viewer.stop());
  await pubPage.context().close();
  await viewPage.context().close();
});

test('an expired playback token gives onError with auth_failed (relay and playback API)', async () => {
  const wait = Date.parse(expiring.expiresAt) - Date.now() + 1500;
  if (wait > 0) await sleep(wait);

  // 1. The signed URL's player page (recipe 1's viewer: relayUrl given, token from ?token=): the
  //    relay refuses the token and closes the session with auth_failed.
  const page = await openPage(browser);
  await page.goto(expiring.url);
  const errors = await until('onError', () => page.evaluate(() => (window.player?.errors.length ? window.player.errors : null)));
  assert.equal(errors[0].code, 'auth_failed', JSON.stringify(errors));
  assert.equal(await page.evaluate(() => window.player.started), false);

  // 2. Recipe 2's construction (no relayUrl: the SDK asks GET /v1/playback/{id}, which refuses).
  const viaApi = await page.evaluate(async ({ id, token }) => {
    const { Streams } = await import('@clutchcall/sdk/streams');
    const errs = [];
    const viewer = new Streams({ apiBase: '', token }).viewer({ onError: (e) => errs.push({ code: e.code, reason: e.reason }) });
    viewer.attach(document.createElement('video'));
    const rejected = await viewer.play(id).then(() => null, (e) => e.code);
    return { errs, rejected };
  }, { id: expiring.id, token: expiring.token });
  assert.equal(viaApi.rejected, 'auth_failed');
  assert.deepEqual(viaApi.errs, [{ code: 'auth_failed', reason: 'token_expired' }]);
  await page.context().close();
});

test('demo page at /: type an API key, go live, open the signed URL it shows', async () => {
  const page = await publisherPage();
  await page.fill('#apiKey', creds.apiKey);
  await page.fill('#orgId', creds.orgId);
  await page.selectOption('#timeslice', '250');
  await page.click('#start');
  const demo = await until('demo is live', () => page.evaluate(() => (window.demo.state === 'live' || window.demo.state === 'error' ? window.demo : null)));
  assert.equal(demo.state, 'live', JSON.stringify(demo.error));
  assert.equal(await page.getAttribute('#watch', 'href'), demo.url);
  const viewPage = await openPage(browser);
  await viewPage.goto(demo.url);
  await until('onStarted', () => viewPage.evaluate(() => window.player?.started === true));
  const a = await viewPage.evaluate(videoStats);
  await until('frames grow', async () => (await viewPage.evaluate(videoStats)).totalVideoFrames > a.totalVideoFrames + 10);
  await page.click('#stop');
  assert.equal(await page.evaluate(() => window.demo.state), 'stopped');
  await viewPage.evaluate(() => window.player.viewer.stop());
  await page.context().close();
  await viewPage.context().close();
});
