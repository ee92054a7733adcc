/**
 * The slice of the browser's WebTransport API the MoQT session uses, so a session can run over
 * `globalThis.WebTransport` or over an in-memory fake in tests.
 */

export interface BidiStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

export interface SendStreamOptions {
  /** Higher goes first (WebTransport `sendOrder`). */
  sendOrder?: number;
}

export interface CloseInfo {
  closeCode?: number;
  reason?: string;
}

export interface WebTransportLike {
  readonly ready: Promise<unknown>;
  readonly closed: Promise<CloseInfo>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  readonly incomingBidirectionalStreams: ReadableStream<BidiStream>;
  readonly datagrams?: { readonly readable: ReadableStream<Uint8Array> };
  /** Negotiated application protocol (WT-Available-Protocols), where the browser exposes it. */
  readonly protocol?: string;
  createUnidirectionalStream(options?: SendStreamOptions): Promise<WritableStream<Uint8Array>>;
  createBidirectionalStream(options?: SendStreamOptions): Promise<BidiStream>;
  close(info?: CloseInfo): void;
}

export interface ConnectOptions {
  serverCertificateHashes?: Array<{ algorithm: "sha-256"; value: Uint8Array }>;
  protocols?: string[];
}

export type WebTransportFactory = (url: string, options: ConnectOptions) => WebTransportLike;

/** Uses the browser's WebTransport. */
export const browserWebTransport: WebTransportFactory = (url, options) => {
  const Ctor = (globalThis as { WebTransport?: new (url: string, options?: object) => WebTransportLike }).WebTransport;
  if (Ctor === undefined) throw new TypeError("WebTransport is not available in this environment");
  const opts: Record<string, unknown> = {};
  if (options.serverCertificateHashes !== undefined) opts["serverCertificateHashes"] = options.serverCertificateHashes;
  if (options.protocols !== undefined) opts["protocols"] = options.protocols;
  return new Ctor(url, opts);
};

/** Parse a hex SHA-256 (64 hex digits, optional colons/whitespace) to bytes. */
export function hexToBytes(hex: string): Uint8Array {
  const clean = hex.replace(/[\s:]/g, "").toLowerCase();
  if (!/^[0-9a-f]*$/.test(clean) || clean.length % 2 !== 0) throw new TypeError("invalid hex string");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}
