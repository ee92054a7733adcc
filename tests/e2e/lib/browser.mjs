// Launches Debian's chromium through playwright-core. No browser is ever downloaded:
// install it with `apt-get install -y chromium` (or point CHROMIUM_PATH at another build).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// WebTransport runs over QUIC, so QUIC must stay enabled (no --disable-quic). A self-signed
// certificate pinned with `serverCertificateHashes` needs neither --origin-to-force-quic-on nor
// --webtransport-developer-mode: it only has to be ECDSA and valid for at most 14 days.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

/** Starts a headless chromium. The caller closes it (`await browser.close()`). */
export async function launchBrowser({ args = [], headless = true } = {}) {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `chromium not found at ${CHROMIUM_PATH}: run \`apt-get update && apt-get install -y chromium\``,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless,
    args: [...CHROMIUM_ARGS, ...args],
  });
}

/**
 * Opens a page in a fresh context (with $CLUTCHCALL_SDK_BUNDLE set, that file answers
 * `/sdk/streams.js`: e.g. `CLUTCHCALL_SDK_BUNDLE=../../rs/api/src/web/streams.js`) and forwards its console and errors to `log`
 * (default: stderr), so a failing test shows what the page saw.
 */
export async function openPage(browser, { log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const context = await browser.newContext();
  // SDK development: serve this file as the engine's /sdk/streams.js without rebuilding Rust.
  const bundle = process.env.CLUTCHCALL_SDK_BUNDLE;
  if (bundle) {
    await context.route('**/sdk/streams.js', async (route) =>
      route.fulfill({ contentType: 'text/javascript', body: await readFile(bundle, 'utf8') }),
    );
  }
  const page = await context.newPage();
  page.on('console', (msg) => log(`[page ${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => log(`[page error] ${err.message}`));
  return page;
}
