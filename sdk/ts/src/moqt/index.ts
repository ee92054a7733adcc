/** The MoQT draft-18 codec and session, for advanced use. */
export * from "./varint.js";
export * from "./buffer.js";
export * from "./wire.js";
export * from "./messages.js";
export * from "./data.js";
export * from "./reader.js";
export * from "./transport.js";
export * from "./session.js";
