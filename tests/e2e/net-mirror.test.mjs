// Chromium against the `net` crate alone (no relay, no MoQT logic): the `mirror` example echoes
// the browser's first unidirectional stream back on one of its own, so the browser's SETUP comes
// back as the "server SETUP". Checks the WebTransport layer: serverCertificateHashes accepts the
// generated certificate, `moqt-18` is negotiated, streams flow both ways.
//
// Needs `cargo build -p clutchcall-net --example mirror`; skipped when that binary is missing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage } from './lib/browser.mjs';
import { REPO_ROOT } from './lib/engine.mjs';
import { servePage } from './lib/page.mjs';

const MIRROR = process.env.CLUTCHCALL_MIRROR_BIN ?? join(REPO_ROOT, 'target', 'debug', 'examples', 'mirror');
const skip = existsSync(MIRROR) ? false : `${MIRROR} not built (cargo build -p clutchcall-net --example mirror)`;

let mirror;
let listening;
let pageServer;
let browser;
let output = '';

before(async () => {
  if (skip) return;
  mirror = spawn(MIRROR, ['127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  mirror.stderr.on('data', (d) => {
    output += d;
  });
  listening = await new Promise((resolve, reject) => {
    let line = '';
    mirror.stdout.on('data', (d) => {
      line += d;
      const m = line.match(/mirror listening (\S+) sha256 ([0-9a-f]{64})/);
      if (m) resolve({ addr: m[1].split(',')[0], hash: m[2] });
    });
    mirror.once('exit', (code) => reject(new Error(`mirror exited ${code}: ${output}`)));
  });
  pageServer = await servePage({
    routes: {
      '/certificate.sha256': (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${listening.hash}\n`);
      },
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await pageServer?.close();
  mirror?.kill('SIGTERM');
});

test('chromium opens a moqt-18 WebTransport session to net::Server', { skip }, async () => {
  const page = await openPage(browser);
  await page.goto(pageServer.url);
  await page.waitForFunction(() => window.pageReady === true);
  const result = await page.evaluate((opts) => window.moqtSetupOverWebTransport(opts), {
    relayUrl: `https://${listening.addr}/stream/org_1/lv_x?jwt=abc`,
    certUrl: new URL('/certificate.sha256', pageServer.url).href,
  });
  assert.ok(result.isSetup, result.firstBytesHex);
  assert.equal(result.firstBytesHex, result.sentHex);
  if (result.protocol !== null && result.protocol !== '') assert.equal(result.protocol, 'moqt-18');
  assert.match(output, /over webtransport \(moqt-18\), url Some\("https:\/\/127\.0\.0\.1:\d+\/stream\/org_1\/lv_x\?jwt=abc"\)/);
  process.stderr.write(`mirror result: ${JSON.stringify(result)}\n`);
  await page.context().close();
});

test('a wrong pinned hash is refused by chromium', { skip }, async () => {
  const page = await openPage(browser);
  await page.goto(pageServer.url);
  await page.waitForFunction(() => window.pageReady === true);
  const error = await page.evaluate(
    (opts) => window.moqtSetupOverWebTransport(opts).then(() => null, (e) => String(e)),
    { relayUrl: `https://${listening.addr}/`, certHash: '00'.repeat(32), timeoutMs: 5_000 },
  );
  assert.ok(error, 'connecting with a wrong hash must fail');
  await page.context().close();
});
