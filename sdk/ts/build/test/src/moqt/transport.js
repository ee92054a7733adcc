/**
 * The slice of the browser's WebTransport API the MoQT session uses, so a session can run over
 * `globalThis.WebTransport` or over an in-memory fake in tests.
 */
/** Uses the browser's WebTransport. */
export const browserWebTransport = (url, options) => {
    const Ctor = globalThis.WebTransport;
    if (Ctor === undefined)
        throw new TypeError("WebTransport is not available in this environment");
    const opts = {};
    if (options.serverCertificateHashes !== undefined)
        opts["serverCertificateHashes"] = options.serverCertificateHashes;
    if (options.protocols !== undefined)
        opts["protocols"] = options.protocols;
    return new Ctor(url, opts);
};
/** Parse a hex SHA-256 (64 hex digits, optional colons/whitespace) to bytes. */
export function hexToBytes(hex) {
    const clean = hex.replace(/[\s:]/g, "").toLowerCase();
    if (!/^[0-9a-f]*$/.test(clean) || clean.length % 2 !== 0)
        throw new TypeError("invalid hex string");
    const out = new Uint8Array(clean.length / 2);
    for (let i = 0; i < out.length; i++)
        out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
    return out;
}
//# sourceMappingURL=transport.js.map