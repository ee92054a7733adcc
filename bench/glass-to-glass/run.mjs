// Glass-to-glass latency and time-to-first-frame, browser to browser over the engine on
// loopback: `node bench/glass-to-glass/run.mjs [seconds=15] [joins=3] [runs=3]` after
// `cargo build -p clutchcall` and `npm ci` in tests/e2e (playwright-core + Debian's chromium).
// TIMESLICES=250,500 picks the group durations (default 250,500,1000).
//
// A publisher page draws Date.now() into a canvas (captureStream) and publishes it with the SDK
// for each timesliceMs; viewer pages open the signed URL (the engine's /watch player) and decode
// the clock from each presented frame (requestVideoFrameCallback): latency = now − drawn time.
// Time to first frame: from viewer.play() to the first presented frame, over `joins` fresh
// viewer pages (each a late join into a running broadcast).
import { loadavg } from 'node:os';

import { launchBrowser, openPage } from '../../tests/e2e/lib/browser.mjs';
import { startEngine } from '../../tests/e2e/lib/engine.mjs';
import { measureViewer, startClockPublisher } from './pages.mjs';

const seconds = Number(process.argv[2] ?? 15);
const joins = Number(process.argv[3] ?? 3);
const runs = Number(process.argv[4] ?? 3);
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
  for (const timesliceMs of (process.env.TIMESLICES ?? '250,500,1000').split(',').map(Number)) {
    // Each run: a fresh broadcast, one long viewer (latency), `joins` late joiners (TTFF).
    // Samples are pooled over the runs; the first second of each viewer (catch-up) is skipped.
    const ttff = [];
    const steady = [];
    const lags = [];
    const perRun = [];
    for (let run = 0; run < runs; run++) {
      const pubPage = await openPage(browser, { log: quiet });
      await pubPage.goto(`${engine.httpUrl}/`);
      const { url } = await pubPage.evaluate(startClockPublisher, {
        baseUrl: engine.httpUrl, apiKey, orgId, relayUrl: engine.relayUrl, timesliceMs,
      });
      await new Promise((r) => setTimeout(r, 2000));
      for (let j = 0; j < joins; j++) {
        const viewPage = await openPage(browser, { log: quiet });
        await viewPage.goto(url);
        const r = await viewPage.evaluate(measureViewer, { seconds: j === 0 ? seconds : 2 });
        if (r.errors.length > 0) throw new Error(`viewer errors: ${JSON.stringify(r.errors)}`);
        ttff.push(r.ttffFromPlayMs);
        if (j === 0) {
          const s = r.latencies.slice(Math.min(30, Math.floor(r.latencies.length / 4)));
          steady.push(...s);
          lags.push(...r.bufferLags.slice(Math.min(30, Math.floor(r.bufferLags.length / 4))));
          perRun.push(Math.round(pct(s, 50)));
        }
        await viewPage.context().close();
      }
      await pubPage.evaluate(() => window.bench.stop());
      await pubPage.context().close();
    }
    rows.push({
      timesliceMs,
      frames: steady.length,
      medianMs: Math.round(pct(steady, 50)),
      p95Ms: Math.round(pct(steady, 95)),
      ttffMedianMs: Math.round(pct(ttff, 50)),
      ttffP95Ms: Math.round(pct(ttff, 95)),
      perRunMedians: perRun,
      playerBufferMedianMs: Math.round(pct(lags, 50)),
      loadavg: loadavg()[0].toFixed(1),
    });
    process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
  }
} finally {
  await browser.close();
  await engine.stop();
}
console.log(`${runs} runs × ${seconds} s per group duration, ${joins} joins per run`);
console.log('| timesliceMs | glass-to-glass median | p95 | per-run medians | of which player buffer (median) | time to first frame median | p95 | frames | load avg |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.timesliceMs} | ${r.medianMs} ms | ${r.p95Ms} ms | ${r.perRunMedians.join(', ')} | ${r.playerBufferMedianMs} ms | ${r.ttffMedianMs} ms | ${r.ttffP95Ms} ms | ${r.frames} | ${r.loadavg} |`);
}
