import assert from "node:assert/strict";
import { test } from "node:test";
import { MoqtSession } from "../src/moqt/session.js";
import type { ConnectOptions, WebTransportLike } from "../src/moqt/transport.js";
import { pair } from "./fake-transport.js";

const HASH = "ab".repeat(32);

/** A transport whose handshake fails (as Chromium does when a pinned hash does not match). */
function refused(): WebTransportLike {
  const err = new Error("QUIC_TLS_CERTIFICATE_UNKNOWN");
  const ready = Promise.reject(err);
  const closed = Promise.reject(err);
  ready.catch(() => undefined);
  closed.catch(() => undefined);
  const never = new ReadableStream<never>();
  return {
    ready, closed, incomingUnidirectionalStreams: never, incomingBidirectionalStreams: never,
    createUnidirectionalStream: () => Promise.reject(err), createBidirectionalStream: () => Promise.reject(err), close: () => undefined,
  };
}

test("certificate hash discovery: page origin / API base first; a failed pinned handshake asks again, then retries without the hash", async () => {
  const [wa, wb] = pair();
  const fetched: string[] = [];
  const fetchHash = (async (u: RequestInfo | URL) => {
    fetched.push(String(u));
    return String(u).startsWith("http://api:8080/") ? new Response(HASH) : new Response("", { status: 404 });
  }) as typeof fetch;
  const seen: Array<ConnectOptions["serverCertificateHashes"]> = [];
  const client = MoqtSession.connect({
    url: "https://relay:4443/",
    certificateHashBases: ["http://api:8080"],
    fetch: fetchHash,
    transport: (_u, o) => {
      seen.push(o.serverCertificateHashes);
      return seen.length === 1 ? refused() : wa;
    },
  });
  const server = MoqtSession.connect({ url: "https://client/", transport: () => wb, certificateHashUrl: false });
  const [c] = await Promise.all([client, server]);
  // Asked again (uncached) after the failed handshake: the same hash, so WebPKI is tried.
  assert.deepEqual(fetched, ["http://api:8080/certificate.sha256", "http://api:8080/certificate.sha256"]);
  assert.equal(seen.length, 2);
  assert.equal(seen[0]?.[0]?.value.length, 32, "first attempt pins the discovered hash");
  assert.equal(seen[1], undefined, "second attempt uses WebPKI");
  c.close();
});

test("an explicit certificate hash is never dropped", async () => {
  let attempts = 0;
  await assert.rejects(
    MoqtSession.connect({ url: "https://relay:4443/", certificateSha256: HASH, transport: () => (attempts++, refused()) }),
  );
  assert.equal(attempts, 1);
});

test("a relay that restarted with a new self-signed certificate: the cached hash is replaced by the new one", async () => {
  const NEW = "cd".repeat(32);
  let served = HASH;
  const fetchHash = (async () => new Response(served)) as typeof fetch;
  const opts = { url: "https://relay2:4443/", certificateHashBases: ["http://api2:8080"], fetch: fetchHash };
  // First connection pins HASH (and caches it).
  const [a1, b1] = pair();
  const seen: string[] = [];
  const hex = (o: ConnectOptions) => Array.from(o.serverCertificateHashes?.[0]?.value ?? [], (x: number) => x.toString(16).padStart(2, "0")).join("");
  const c1 = MoqtSession.connect({ ...opts, transport: (_u, o) => (seen.push(hex(o)), a1) });
  const s1 = MoqtSession.connect({ url: "https://client/", transport: () => b1, certificateHashUrl: false });
  (await Promise.all([c1, s1]))[0].close();
  // The relay restarts: a new certificate. The cached hash fails; the new one is fetched and used.
  served = NEW;
  const [a2, b2] = pair();
  const c2 = MoqtSession.connect({ ...opts, transport: (_u, o) => (seen.push(hex(o)), hex(o) === NEW ? a2 : refused()) });
  const s2 = MoqtSession.connect({ url: "https://client/", transport: () => b2, certificateHashUrl: false });
  (await Promise.all([c2, s2]))[0].close();
  assert.deepEqual(seen, [HASH, HASH, NEW]);
});
