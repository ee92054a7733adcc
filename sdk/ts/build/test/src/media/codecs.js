/** Codec-string helpers for the CMAF muxer and the catalog. */
/** `avc1.PPCCLL` from an AVCDecoderConfigurationRecord (the avcC payload). */
export function avcCodecString(avcC) {
    if (avcC.length < 4 || avcC[0] !== 1)
        throw new TypeError("not an AVCDecoderConfigurationRecord");
    const hex = (n) => n.toString(16).padStart(2, "0");
    return `avc1.${hex(avcC[1])}${hex(avcC[2])}${hex(avcC[3])}`;
}
/** Parse `vp09.PP.LL.DD[.CC.cp.tc.mc.FF]` (VP9 ISO-BMFF binding, codecs parameter). */
export function parseVp9CodecString(codec) {
    const parts = codec.split(".");
    if (parts[0] !== "vp09" || parts.length < 4)
        throw new TypeError(`not a vp09 codec string: ${codec}`);
    const n = (i, dflt) => (parts[i] !== undefined ? parseInt(parts[i], 10) : dflt);
    return {
        profile: n(1, 0),
        level: n(2, 10),
        bitDepth: n(3, 8),
        chromaSubsampling: n(4, 1),
        colourPrimaries: n(5, 1),
        transferCharacteristics: n(6, 1),
        matrixCoefficients: n(7, 1),
        videoFullRangeFlag: n(8, 0),
    };
}
/** Pre-skip from an OpusHead (RFC 7845 §5.1) when given one; else undefined. */
export function opusHeadPreSkip(head) {
    if (head === undefined || head.length < 19)
        return undefined;
    const magic = String.fromCharCode(...head.subarray(0, 8));
    if (magic !== "OpusHead")
        return undefined;
    return head[10] | (head[11] << 8); // little-endian
}
//# sourceMappingURL=codecs.js.map