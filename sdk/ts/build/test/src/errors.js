/**
 * Typed errors. Every error the SDK throws or hands to a callback is a {@link StreamsError}
 * with a stable machine-readable `code`; switch on `code`, never on `message`.
 */
export class StreamsError extends Error {
    /** Stable machine code: one of {@link StreamsErrorCode}, or the REST API's `error.code`. */
    code;
    /** Finer detail where there is one: the REST API's own error code, the relay's reason phrase. */
    reason;
    constructor(code, message, options) {
        super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
        this.name = "StreamsError";
        this.code = code;
        this.reason = options?.reason;
    }
}
/** MoQT session termination codes (draft-18 §"Session Termination Error Codes"). */
export const SessionCode = {
    NO_ERROR: 0x0,
    INTERNAL_ERROR: 0x1,
    UNAUTHORIZED: 0x2,
    PROTOCOL_VIOLATION: 0x3,
    INVALID_REQUEST_ID: 0x4,
    DUPLICATE_TRACK_ALIAS: 0x5,
    KEY_VALUE_FORMATTING_ERROR: 0x6,
    INVALID_PATH: 0x8,
    MALFORMED_PATH: 0x9,
    GOAWAY_TIMEOUT: 0x10,
    CONTROL_MESSAGE_TIMEOUT: 0x11,
    DATA_STREAM_TIMEOUT: 0x12,
    AUTH_TOKEN_CACHE_OVERFLOW: 0x13,
    DUPLICATE_AUTH_TOKEN_ALIAS: 0x14,
    VERSION_NEGOTIATION_FAILED: 0x15,
    MALFORMED_AUTH_TOKEN: 0x16,
    UNKNOWN_AUTH_TOKEN_ALIAS: 0x17,
    EXPIRED_AUTH_TOKEN: 0x18,
    INVALID_AUTHORITY: 0x19,
    MALFORMED_AUTHORITY: 0x1a,
};
/**
 * Malformed or truncated MoQT bytes. `sessionCode` is the termination code the draft asks for
 * (PROTOCOL_VIOLATION unless stated otherwise). `truncated` is true when more bytes could
 * complete the input (a stream reader uses it to wait for more data).
 */
export class DecodeError extends StreamsError {
    sessionCode;
    truncated;
    constructor(message, opts = {}) {
        super("decode_error", message);
        this.name = "DecodeError";
        this.sessionCode = opts.sessionCode ?? SessionCode.PROTOCOL_VIOLATION;
        this.truncated = opts.truncated ?? false;
    }
}
/** REQUEST_ERROR codes (draft-18 §"REQUEST_ERROR Codes"). */
export const RequestErrorCode = {
    INTERNAL_ERROR: 0x0,
    UNAUTHORIZED: 0x1,
    TIMEOUT: 0x2,
    NOT_SUPPORTED: 0x3,
    MALFORMED_AUTH_TOKEN: 0x4,
    EXPIRED_AUTH_TOKEN: 0x5,
    GOING_AWAY: 0x6,
    EXCESSIVE_LOAD: 0x9,
    DOES_NOT_EXIST: 0x10,
    INVALID_RANGE: 0x11,
    MALFORMED_TRACK: 0x12,
    DUPLICATE_SUBSCRIPTION: 0x19,
    UNINTERESTED: 0x20,
    PREFIX_OVERLAP: 0x30,
    NAMESPACE_TOO_LARGE: 0x31,
    INVALID_JOINING_REQUEST_ID: 0x32,
    UNSUPPORTED_EXTENSION: 0x33,
    REDIRECT: 0x34,
};
const AUTH_REQUEST_CODES = new Set([
    BigInt(RequestErrorCode.UNAUTHORIZED),
    BigInt(RequestErrorCode.MALFORMED_AUTH_TOKEN),
    BigInt(RequestErrorCode.EXPIRED_AUTH_TOKEN),
]);
/**
 * The peer answered a request with REQUEST_ERROR. `code` is `auth_failed` for
 * UNAUTHORIZED / MALFORMED_AUTH_TOKEN / EXPIRED_AUTH_TOKEN, else `request_error`.
 */
export class RequestError extends StreamsError {
    errorCode;
    reason;
    /** Milliseconds before a retry makes sense, or undefined when it should not be retried. */
    retryAfterMs;
    constructor(errorCode, reason, retryInterval, what) {
        const auth = AUTH_REQUEST_CODES.has(errorCode);
        super(auth ? "auth_failed" : "request_error", `${what} refused: ${requestErrorName(errorCode)}${reason ? ` (${reason})` : ""}`);
        this.name = "RequestError";
        this.errorCode = errorCode;
        this.reason = reason;
        this.retryAfterMs = retryInterval === 0n ? undefined : Number(retryInterval - 1n);
    }
}
export function requestErrorName(code) {
    for (const [name, value] of Object.entries(RequestErrorCode)) {
        if (BigInt(value) === code)
            return name;
    }
    return `0x${code.toString(16)}`;
}
/**
 * The MoQT session ended. `code` is `auth_failed` when the relay closed with reason phrase
 * `auth_failed` (or an auth-related close code), else `session_closed`.
 */
export class SessionClosedError extends StreamsError {
    closeCode;
    reason;
    /** False when the transport failed without the peer's close code and reason ("Connection lost"). */
    fromPeer;
    constructor(closeCode, reason, fromPeer = true) {
        const auth = reason === "auth_failed" ||
            closeCode === SessionCode.UNAUTHORIZED ||
            closeCode === SessionCode.EXPIRED_AUTH_TOKEN ||
            closeCode === SessionCode.MALFORMED_AUTH_TOKEN;
        super(auth ? "auth_failed" : "session_closed", auth ? "auth_failed" : `session closed (code ${closeCode}${reason ? `: ${reason}` : ""})`);
        this.name = "SessionClosedError";
        this.closeCode = closeCode;
        this.reason = reason;
        this.fromPeer = fromPeer;
    }
}
/** A control-plane (REST) error: `code` is the API's `{error:{code}}`, `status` the HTTP status. */
export class ApiError extends StreamsError {
    status;
    constructor(status, code, message) {
        super(code, message);
        this.name = "ApiError";
        this.status = status;
    }
}
//# sourceMappingURL=errors.js.map