/**
 * CMAF / fragmented-MP4 writer: init segments (ftyp+moov with avcC, vpcC or Opus dOps) and
 * one moof+mdat chunk per call, with tfdt and per-sample durations, sizes and flags in trun.
 */
import { opusHeadPreSkip, parseVp9CodecString } from "./codecs.js";
import { MATRIX, box, concat, fourcc, fullBox, i16, i32, u16, u32, u64, u8, zeros } from "./mp4.js";
function ftyp() {
    return box("ftyp", fourcc("iso6"), u32(0), fourcc("iso6"), fourcc("cmfc"), fourcc("mp41"));
}
function mvhd(nextTrackId) {
    return fullBox("mvhd", 0, 0, u32(0), u32(0), u32(1000), u32(0), u32(0x00010000), u16(0x0100), zeros(10), MATRIX, zeros(24), u32(nextTrackId));
}
function tkhd(t) {
    const w = t.kind === "video" ? t.width : 0;
    const h = t.kind === "video" ? t.height : 0;
    return fullBox("tkhd", 0, 0x000003, u32(0), u32(0), u32(t.trackId), u32(0), u32(0), zeros(8), u16(0), u16(0), u16(t.kind === "audio" ? 0x0100 : 0), u16(0), MATRIX, u32(w * 0x10000), u32(h * 0x10000));
}
function mdhd(timescale) {
    // language 'und' = 0x55C4
    return fullBox("mdhd", 0, 0, u32(0), u32(0), u32(timescale), u32(0), u16(0x55c4), u16(0));
}
function hdlr(kind) {
    const name = kind === "video" ? "VideoHandler" : "SoundHandler";
    return fullBox("hdlr", 0, 0, u32(0), fourcc(kind === "video" ? "vide" : "soun"), zeros(12), new TextEncoder().encode(name), u8(0));
}
function visualSampleEntry(type, t, config) {
    return box(type, zeros(6), u16(1), u16(0), u16(0), zeros(12), u16(t.width), u16(t.height), u32(0x00480000), u32(0x00480000), u32(0), u16(1), zeros(32), u16(0x0018), i16(-1), config);
}
function vpcC(codecString) {
    const c = parseVp9CodecString(codecString);
    return fullBox("vpcC", 1, 0, u8(c.profile), u8(c.level), u8(((c.bitDepth & 0x0f) << 4) | ((c.chromaSubsampling & 0x07) << 1) | (c.videoFullRangeFlag & 1)), u8(c.colourPrimaries), u8(c.transferCharacteristics), u8(c.matrixCoefficients), u16(0));
}
function dOps(t) {
    if (t.channels > 2)
        throw new RangeError("Opus with more than 2 channels needs a channel mapping table");
    const preSkip = opusHeadPreSkip(t.opusHead) ?? 312;
    return box("dOps", u8(0), u8(t.channels), u16(preSkip), u32(t.sampleRate), i16(0), u8(0));
}
function sampleEntry(t) {
    if (t.kind === "audio") {
        return box("Opus", zeros(6), u16(1), zeros(8), u16(t.channels), u16(16), u16(0), u16(0), u32(48000 * 0x10000), dOps(t));
    }
    if (t.codec === "avc")
        return visualSampleEntry("avc1", t, box("avcC", t.avcC));
    return visualSampleEntry("vp09", t, vpcC(t.codecString));
}
function stbl(t) {
    return box("stbl", fullBox("stsd", 0, 0, u32(1), sampleEntry(t)), fullBox("stts", 0, 0, u32(0)), fullBox("stsc", 0, 0, u32(0)), fullBox("stsz", 0, 0, u32(0), u32(0)), fullBox("stco", 0, 0, u32(0)));
}
/** CMAF header (ftyp + moov) for one track. */
export function initSegment(t) {
    const mediaHeader = t.kind === "video" ? fullBox("vmhd", 0, 1, u16(0), u16(0), u16(0), u16(0)) : fullBox("smhd", 0, 0, i16(0), u16(0));
    const dinf = box("dinf", fullBox("dref", 0, 0, u32(1), fullBox("url ", 0, 1)));
    const trak = box("trak", tkhd(t), box("mdia", mdhd(t.timescale), hdlr(t.kind), box("minf", mediaHeader, dinf, stbl(t))));
    const mvex = box("mvex", fullBox("trex", 0, 0, u32(t.trackId), u32(1), u32(0), u32(0), u32(0)));
    return concat([ftyp(), box("moov", mvhd(t.trackId + 1), trak, mvex)]);
}
export const SAMPLE_FLAGS_SYNC = 0x02000000; // sample_depends_on = 2
export const SAMPLE_FLAGS_NON_SYNC = 0x01010000; // sample_depends_on = 1, is_non_sync_sample
/** One CMAF chunk: moof (mfhd, traf: tfhd, tfdt, trun) + mdat. */
export function fragment(trackId, sequence, baseDecodeTime, samples) {
    if (samples.length === 0)
        throw new RangeError("a fragment needs at least one sample");
    const withCts = samples.some((s) => (s.compositionOffset ?? 0) !== 0);
    // data-offset, duration, size, flags (+ composition time offset)
    const trunFlags = 0x000001 | 0x000100 | 0x000200 | 0x000400 | (withCts ? 0x000800 : 0);
    const build = (dataOffset) => {
        const entries = samples.map((s) => concat([u32(s.duration), u32(s.data.length), u32(s.keyframe ? SAMPLE_FLAGS_SYNC : SAMPLE_FLAGS_NON_SYNC), withCts ? i32(s.compositionOffset ?? 0) : zeros(0)]));
        return box("moof", fullBox("mfhd", 0, 0, u32(sequence)), box("traf", fullBox("tfhd", 0, 0x020000, u32(trackId)), // default-base-is-moof
        fullBox("tfdt", 1, 0, u64(baseDecodeTime)), fullBox("trun", withCts ? 1 : 0, trunFlags, u32(samples.length), i32(dataOffset), entries)));
    };
    const size = build(0).length;
    const moof = build(size + 8);
    const mdat = box("mdat", samples.map((s) => s.data));
    return concat([moof, mdat]);
}
/**
 * Turns encoded frames into one CMAF chunk per frame. Durations come from timestamps: a frame
 * is emitted when the next one arrives (its duration = next.dts − dts), so no sample is ever
 * short. Frames with an exact `durationUs` (audio) may be emitted at once (`immediate`).
 */
export class ChunkWriter {
    trackId;
    timescale;
    originUs;
    immediate;
    held;
    sequence = 1;
    lastDuration;
    constructor(trackId, timescale, 
    /** Microsecond origin of decode time 0 (shared by the tracks of one broadcast). */
    originUs, immediate = false, defaultDuration) {
        this.trackId = trackId;
        this.timescale = timescale;
        this.originUs = originUs;
        this.immediate = immediate;
        this.lastDuration = defaultDuration ?? Math.round(timescale / 30);
    }
    dts(tsUs) {
        return Math.max(0, Math.round(((tsUs - this.originUs) * this.timescale) / 1e6));
    }
    emit(frame, dts, duration) {
        const d = Math.max(1, duration);
        this.lastDuration = d;
        const bytes = fragment(this.trackId, this.sequence++, dts, [{ data: frame.data, duration: d, keyframe: frame.keyframe }]);
        return { bytes, keyframe: frame.keyframe, decodeTime: dts, duration: d, timestampUs: frame.timestampUs };
    }
    /** Add a frame; returns the chunk that became complete, if any. */
    push(frame) {
        const dts = this.dts(frame.timestampUs);
        if (this.immediate && frame.durationUs !== undefined && frame.durationUs > 0) {
            const end = this.dts(frame.timestampUs + frame.durationUs);
            return this.emit(frame, dts, end - dts);
        }
        const prev = this.held;
        this.held = { frame, dts };
        if (prev === undefined)
            return undefined;
        const duration = dts > prev.dts ? dts - prev.dts : this.lastDuration;
        return this.emit(prev.frame, prev.dts, duration);
    }
    /** Emit the held frame (end of stream), using its own or the previous duration. */
    flush() {
        const prev = this.held;
        this.held = undefined;
        if (prev === undefined)
            return undefined;
        const d = prev.frame.durationUs !== undefined && prev.frame.durationUs > 0
            ? this.dts(prev.frame.timestampUs + prev.frame.durationUs) - prev.dts
            : this.lastDuration;
        return this.emit(prev.frame, prev.dts, d);
    }
}
//# sourceMappingURL=fmp4.js.map