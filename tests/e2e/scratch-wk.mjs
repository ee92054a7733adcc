import { launchBrowser, openPage } from './lib/browser.mjs';
import { startEngine } from './lib/engine.mjs';
const engine = await startEngine({ publicPrefix: null, env: { CLUTCHCALL_LOG: 'debug,quinn=info,sqlx=warn' } });
const creds = await engine.credentials();
const browser = await launchBrowser();
try {
  const res = await fetch(`${engine.httpUrl}/v1/orgs/${creds.orgId}/live_inputs`, { method: 'POST', headers: { authorization: `Bearer ${creds.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', ingest: 'fmp4' }) });
  const { input } = await res.json();
  const page = await openPage(browser);
  await page.goto(`${engine.httpUrl}/`);
  const r = await page.evaluate(async ({ relayUrl, id, namespace }) => {
    const { Streams, MoqtSession, moqt } = await import('@clutchcall/sdk/streams');
    const cam = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const s = await MoqtSession.connect({ url: relayUrl, token: 'sk_bad', certificateHashBases: [''] });
    const t0 = performance.now();
    s.wt.closed.then((i) => console.log('wt.closed resolved', JSON.stringify(i), performance.now() - t0), (e) => console.log('wt.closed rejected', e.name, e.message, e.source, e.streamErrorCode, performance.now() - t0));
    const ns = moqt.namespaceFromString(namespace);
    try { await s.publishNamespace(ns, 'sk_bad'); } catch (e) { return { code: e.code, msg: e.message, t: performance.now() - t0 }; }
    return 'ok';
  }, { relayUrl: engine.relayUrl, id: input.external_input_id, namespace: input.namespace });
  console.log(r);
  await new Promise((r) => setTimeout(r, 1000));
} finally {
  await browser.close();
  await engine.stop();
  console.log(engine.output().split('\n').filter((l) => /session|auth|clos|refus/i.test(l)).slice(-20).join('\n'));
}
