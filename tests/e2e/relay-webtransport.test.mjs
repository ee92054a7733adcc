// Chromium opens a WebTransport session to the engine's relay exactly as the browser SDK will:
// certificate pinned by the hash the engine publishes over HTTP, protocol `moqt-18`, then a MoQT
// SETUP on its control stream; the relay must answer with its own SETUP.
//
// Needs `cargo build -p clutchcall` (target/debug/clutchcall, or $CLUTCHCALL_BIN) and Debian's
// chromium (/usr/bin/chromium, or $CHROMIUM_PATH).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage } from './lib/browser.mjs';
import { startEngine } from './lib/engine.mjs';
import { servePage } from './lib/page.mjs';
import { SetupOption } from './lib/moqt-wire.mjs';

let engine;
let pageServer;
let browser;

before(async () => {
  engine = await startEngine();
  pageServer = await servePage();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await pageServer?.close();
  const exit = await engine?.stop();
  if (exit && exit.code !== 0 && exit.signal == null) {
    process.stderr.write(`engine exited with ${JSON.stringify(exit)}:\n${engine.output()}\n`);
  }
});

test('engine publishes its certificate hash with CORS', async () => {
  const res = await fetch(`${engine.httpUrl}/certificate.sha256`, {
    headers: { origin: new URL(pageServer.url).origin },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
  assert.match((await res.text()).trim(), /^[0-9a-f]{64}$/);
});

test('browser WebTransport session exchanges MoQT SETUP with the relay', async () => {
  const page = await openPage(browser);
  await page.goto(pageServer.url);
  await page.waitForFunction(() => window.pageReady === true);
  const result = await page.evaluate(
    (opts) => window.moqtSetupOverWebTransport(opts),
    { relayUrl: `${engine.relayUrl}/`, certUrl: `${engine.httpUrl}/certificate.sha256` },
  );
  assert.ok(result.isSetup, `server's control stream starts with ${result.firstBytesHex}`);
  assert.ok(result.firstBytesHex.startsWith('af00'), result.firstBytesHex);
  // WT-Protocol (where this chromium exposes it) must be the version we offered.
  if (result.protocol !== null && result.protocol !== '') assert.equal(result.protocol, 'moqt-18');
  // A server never sends PATH or AUTHORITY.
  const types = result.options.map((o) => o.type);
  assert.ok(!types.includes(Number(SetupOption.PATH)), JSON.stringify(result.options));
  assert.ok(!types.includes(Number(SetupOption.AUTHORITY)), JSON.stringify(result.options));
  await page.context().close();
});
