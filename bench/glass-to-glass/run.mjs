// Glass-to-glass latency and time-to-first-frame, browser to browser over the engine on
// loopback: `node bench/glass-to-glass/run.mjs [seconds=15] [joins=3]` after `cargo build -p
// clutchcall` and `npm ci` in tests/e2e (playwright-core + Debian's chromium).
//
// A publisher page draws Date.now() into a canvas (captureStream) and publishes it with the SDK
// for each timesliceMs; viewer pages open the signed URL (the engine's /watch player) and decode
// the clock from each presented frame (requestVideoFrameCallback): latency = now − drawn time.
// Time to first frame: from viewer.play() to the first presented frame, over `joins` fresh
// viewer pages (each a late join into a running broadcast).
import { launchBrowser, openPage } from '../../tests/e2e/lib/browser.mjs';
import { startEngine } from '../../tests/e2e/lib/engine.mjs';
import { measureViewer, startClockPublisher } from './pages.mjs';

const seconds = Number(process.argv[2] ?? 15);
const joins = Number(process.argv[3] ?? 3);
const quiet = () => {};

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const engine = await startEngine({ publicPrefix: null });
const browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
const rows = [];
try {
  const { apiKey, orgId } = await engine.credentials();
  for (const timesliceMs of [250, 500, 1000]) {
    const pubPage = await openPage(browser, { log: quiet });
    await pubPage.goto(`${engine.httpUrl}/`);
    const { url } = await pubPage.evaluate(startClockPublisher, {
      baseUrl: engine.httpUrl, apiKey, orgId, relayUrl: engine.relayUrl, timesliceMs,
    });
    await new Promise((r) => setTimeout(r, 2000));
    const ttff = [];
    let latencies = [];
    for (let j = 0; j < joins; j++) {
      const viewPage = await openPage(browser, { log: quiet });
      await viewPage.goto(url);
      const r = await viewPage.evaluate(measureViewer, { seconds: j === 0 ? seconds : 2 });
      if (r.errors.length > 0) throw new Error(`viewer errors: ${JSON.stringify(r.errors)}`);
      ttff.push(r.ttffFromPlayMs);
      if (j === 0) latencies = r.latencies;
      await viewPage.context().close();
    }
    await pubPage.evaluate(() => window.bench.stop());
    await pubPage.context().close();
    // Skip the first second (start-up catch-up) for the steady-state latency.
    const steady = latencies.slice(Math.min(30, Math.floor(latencies.length / 4)));
    rows.push({
      timesliceMs,
      frames: steady.length,
      medianMs: Math.round(pct(steady, 50)),
      p95Ms: Math.round(pct(steady, 95)),
      ttffMedianMs: Math.round(pct(ttff, 50)),
      ttffMaxMs: Math.round(Math.max(...ttff)),
    });
    process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
  }
} finally {
  await browser.close();
  await engine.stop();
}
console.log('| timesliceMs | glass-to-glass median | p95 | time to first frame (median / max) | frames |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.timesliceMs} | ${r.medianMs} ms | ${r.p95Ms} ms | ${r.ttffMedianMs} / ${r.ttffMaxMs} ms | ${r.frames} |`);
