/** CMAF/fMP4 writer, codec helpers and the MSF catalog. */
export * from "./mp4.js";
export * from "./fmp4.js";
export * from "./codecs.js";
export * from "./catalog.js";
//# sourceMappingURL=index.js.map