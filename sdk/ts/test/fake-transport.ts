import type { BidiStream, CloseInfo, WebTransportLike } from "../src/moqt/transport.js";

/** Two in-memory WebTransport endpoints wired to each other. */
export function pair(): [WebTransportLike, WebTransportLike] {
  let closeAll: (info: CloseInfo) => void = () => undefined;
  const closed = new Promise<CloseInfo>((r) => (closeAll = r));
  const mk = () => {
    let uniCtl!: ReadableStreamDefaultController<ReadableStream<Uint8Array>>;
    let bidiCtl!: ReadableStreamDefaultController<BidiStream>;
    const ep = {
      ready: Promise.resolve(),
      closed,
      incomingUnidirectionalStreams: new ReadableStream<ReadableStream<Uint8Array>>({ start: (c) => void (uniCtl = c) }),
      incomingBidirectionalStreams: new ReadableStream<BidiStream>({ start: (c) => void (bidiCtl = c) }),
      peer: undefined as unknown as { uni: (r: ReadableStream<Uint8Array>) => void; bidi: (b: BidiStream) => void },
      async createUnidirectionalStream() {
        const t = new TransformStream<Uint8Array, Uint8Array>();
        ep.peer.uni(t.readable);
        return t.writable;
      },
      async createBidirectionalStream() {
        const ab = new TransformStream<Uint8Array, Uint8Array>();
        const ba = new TransformStream<Uint8Array, Uint8Array>();
        ep.peer.bidi({ readable: ab.readable, writable: ba.writable });
        return { readable: ba.readable, writable: ab.writable };
      },
      close(info?: CloseInfo) {
        closeAll(info ?? {});
      },
      uni: (r: ReadableStream<Uint8Array>) => uniCtl.enqueue(r),
      bidi: (b: BidiStream) => bidiCtl.enqueue(b),
    };
    return ep;
  };
  const a = mk();
  const b = mk();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

