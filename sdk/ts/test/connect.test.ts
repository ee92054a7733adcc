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

test("certificate hash discovery: page origin / API base first; a failed pinned handshake retries without the hash", async () => {
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
  assert.deepEqual(fetched, ["http://api:8080/certificate.sha256"]);
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
