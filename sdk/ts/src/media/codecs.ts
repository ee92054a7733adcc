/** Codec-string helpers for the CMAF muxer and the catalog. */

/** `avc1.PPCCLL` from an AVCDecoderConfigurationRecord (the avcC payload). */
export function avcCodecString(avcC: Uint8Array): string {
  if (avcC.length < 4 || avcC[0] !== 1) throw new TypeError("not an AVCDecoderConfigurationRecord");
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return `avc1.${hex(avcC[1] as number)}${hex(avcC[2] as number)}${hex(avcC[3] as number)}`;
}

export interface Vp9Config {
  profile: number;
  level: number;
  bitDepth: number;
  chromaSubsampling: number;
  colourPrimaries: number;
  transferCharacteristics: number;
  matrixCoefficients: number;
  videoFullRangeFlag: number;
}

/** Parse `vp09.PP.LL.DD[.CC.cp.tc.mc.FF]` (VP9 ISO-BMFF binding, codecs parameter). */
export function parseVp9CodecString(codec: string): Vp9Config {
  const parts = codec.split(".");
  if (parts[0] !== "vp09" || parts.length < 4) throw new TypeError(`not a vp09 codec string: ${codec}`);
  const n = (i: number, dflt: number) => (parts[i] !== undefined ? parseInt(parts[i] as string, 10) : dflt);
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
export function opusHeadPreSkip(head: Uint8Array | undefined): number | undefined {
  if (head === undefined || head.length < 19) return undefined;
  const magic = String.fromCharCode(...head.subarray(0, 8));
  if (magic !== "OpusHead") return undefined;
  return (head[10] as number) | ((head[11] as number) << 8); // little-endian
}
