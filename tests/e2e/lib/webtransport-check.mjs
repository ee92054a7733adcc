// Runs in the page: opens a WebTransport session to the relay the way a browser viewer will,
// sends a MoQT SETUP on a new unidirectional (control) stream and reads the server's SETUP from
// the first unidirectional stream the server opens.
import {
  SETUP,
  SetupOption,
  decodeControlMessage,
  decodeKeyValuePairs,
  encodeSetup,
} from './moqt-wire.mjs';

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

function hexToBytes(hex) {
  const clean = hex.trim().replaceAll(':', '');
  if (!/^[0-9a-fA-F]{64}$/.test(clean)) throw new Error(`not a SHA-256 hex digest: ${JSON.stringify(hex)}`);
  return new Uint8Array(clean.match(/../g).map((h) => parseInt(h, 16)));
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Options: relayUrl (https://host:port/path), certUrl (fetched for the hex SHA-256) or certHash
 * (hex), protocols (default ['moqt-18']), timeoutMs (default 10 s).
 * Resolves to a plain object describing what happened (serializable for page.evaluate).
 */
export async function moqtSetupOverWebTransport({
  relayUrl,
  certUrl,
  certHash,
  protocols = ['moqt-18'],
  timeoutMs = 10_000,
}) {
  if (typeof WebTransport === 'undefined') throw new Error('WebTransport unavailable (secure context?)');
  let hex = certHash;
  if (!hex) {
    const res = await fetch(certUrl);
    if (!res.ok) throw new Error(`GET ${certUrl}: ${res.status}`);
    hex = await res.text();
  }
  const value = hexToBytes(hex);

  const transport = new WebTransport(relayUrl, {
    serverCertificateHashes: [{ algorithm: 'sha-256', value }],
    protocols,
  });
  // Avoid an unhandled rejection if the session fails before we await `closed`.
  const closed = transport.closed.then(
    (info) => ({ clean: true, ...info }),
    (err) => ({ clean: false, error: String(err) }),
  );
  try {
    await withTimeout(transport.ready, timeoutMs, 'WebTransport ready');

    // Our control stream: SETUP first; the stream stays open for the session's lifetime.
    const control = await transport.createUnidirectionalStream();
    const writer = control.getWriter();
    const sent = encodeSetup([[SetupOption.MOQT_IMPLEMENTATION, 'clutchcall-e2e']]);
    await writer.write(sent);

    // The server's control stream: the first unidirectional stream it opens.
    const incoming = transport.incomingUnidirectionalStreams.getReader();
    const next = await withTimeout(incoming.read(), timeoutMs, 'server control stream');
    if (next.done) throw new Error('session ended before the server opened its control stream');
    const reader = next.value.getReader();
    let buffered = new Uint8Array(0);
    let message = null;
    while (!message) {
      const chunk = await withTimeout(reader.read(), timeoutMs, 'server SETUP bytes');
      if (chunk.done) throw new Error(`server control stream ended after ${buffered.length} bytes`);
      const joined = new Uint8Array(buffered.length + chunk.value.length);
      joined.set(buffered);
      joined.set(chunk.value, buffered.length);
      buffered = joined;
      message = decodeControlMessage(buffered);
    }
    reader.releaseLock();

    const options = decodeKeyValuePairs(message.payload).map(({ type, value }) => ({
      type: Number(type),
      value: typeof value === 'bigint' ? value.toString() : toHex(value),
      text: typeof value === 'bigint' ? undefined : new TextDecoder().decode(value),
    }));
    return {
      protocol: transport.protocol ?? null,
      sentHex: toHex(sent),
      firstBytesHex: toHex(buffered.slice(0, message.size)),
      type: Number(message.type),
      isSetup: message.type === SETUP,
      length: message.length,
      options,
    };
  } finally {
    transport.close({ closeCode: 0, reason: 'e2e done' });
    await withTimeout(closed, 2_000, 'WebTransport close').catch(() => {});
  }
}
