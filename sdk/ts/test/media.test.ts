import assert from "node:assert/strict";
import { test } from "node:test";
import { CATALOG_TRACK, base64Decode, base64Encode, encodeCatalog, mseType, parseCatalog, pickRenditions } from "../src/media/catalog.js";
import { avcCodecString, opusHeadPreSkip } from "../src/media/codecs.js";
import { ChunkWriter, SAMPLE_FLAGS_NON_SYNC, SAMPLE_FLAGS_SYNC, fragment, initSegment } from "../src/media/fmp4.js";

/** A small ISO-BMFF structure parser for the assertions. */
interface Box { type: string; start: number; size: number; body: Uint8Array; children?: Box[] }
const CONTAINERS = new Set(["moov", "trak", "mdia", "minf", "stbl", "dinf", "mvex", "moof", "traf"]);
function parseBoxes(b: Uint8Array, base = 0): Box[] {
  const out: Box[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  while (o < b.length) {
    assert.ok(o + 8 <= b.length, "box header fits");
    const size = dv.getUint32(o);
    assert.ok(size >= 8 && o + size <= b.length, `box size ${size} at ${o} fits`);
    const type = String.fromCharCode(...b.subarray(o + 4, o + 8));
    const body = b.subarray(o + 8, o + size);
    const box: Box = { type, start: base + o, size, body };
    if (CONTAINERS.has(type)) box.children = parseBoxes(body, base + o + 8);
    out.push(box);
    o += size;
  }
  return out;
}
function find(boxes: Box[], path: string): Box {
  const [head, ...rest] = path.split("/");
  const b = boxes.find((x) => x.type === head);
  assert.ok(b !== undefined, `missing ${head}`);
  return rest.length === 0 ? b : find(b.children ?? [], rest.join("/"));
}
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

// A real H.264 High 4.0 avcC (SPS/PPS truncated to plausible bytes)
const avcC = new Uint8Array([1, 0x64, 0x00, 0x28, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x28, 0x01, 0x00, 0x02, 0x68, 0xee]);

test("codec strings", () => {
  assert.equal(avcCodecString(avcC), "avc1.640028");
  const head = new Uint8Array(19);
  head.set(new TextEncoder().encode("OpusHead"));
  head[10] = 0x38; head[11] = 0x01; // 312
  assert.equal(opusHeadPreSkip(head), 312);
});

test("init segment (avc): ftyp + moov with avcC, mvex/trex", () => {
  const init = initSegment({ kind: "video", trackId: 1, timescale: 90000, width: 1280, height: 720, codec: "avc", avcC });
  const boxes = parseBoxes(init);
  assert.deepEqual(boxes.map((b) => b.type), ["ftyp", "moov"]);
  assert.equal(String.fromCharCode(...find(boxes, "ftyp").body.subarray(0, 4)), "iso6");
  const mdhd = find(boxes, "moov/trak/mdia/mdhd");
  assert.equal(dv(mdhd.body).getUint32(12), 90000); // version/flags(4) + ctime + mtime, then timescale
  const hdlr = find(boxes, "moov/trak/mdia/hdlr");
  assert.equal(String.fromCharCode(...hdlr.body.subarray(8, 12)), "vide");
  const stsd = find(boxes, "moov/trak/mdia/minf/stbl/stsd");
  const entries = parseBoxes(stsd.body.subarray(8));
  assert.equal(entries[0]?.type, "avc1");
  const avc1 = entries[0] as Box;
  assert.equal(dv(avc1.body).getUint16(24), 1280);
  assert.equal(dv(avc1.body).getUint16(26), 720);
  const inner = parseBoxes(avc1.body.subarray(78));
  assert.equal(inner[0]?.type, "avcC");
  assert.deepEqual(inner[0]?.body, avcC);
  const tkhd = find(boxes, "moov/trak/tkhd");
  assert.equal(dv(tkhd.body).getUint32(12), 1); // track id
  assert.equal(dv(tkhd.body).getUint32(76) / 65536, 1280);
  const trex = find(boxes, "moov/mvex/trex");
  assert.equal(dv(trex.body).getUint32(4), 1);
});

test("init segment (vp9 vpcC, opus dOps)", () => {
  const vp9 = parseBoxes(initSegment({ kind: "video", trackId: 1, timescale: 90000, width: 640, height: 480, codec: "vp9", codecString: "vp09.00.10.08" }));
  const v = parseBoxes(find(vp9, "moov/trak/mdia/minf/stbl/stsd").body.subarray(8))[0] as Box;
  assert.equal(v.type, "vp09");
  const vpcC = parseBoxes(v.body.subarray(78))[0] as Box;
  assert.equal(vpcC.type, "vpcC");
  assert.deepEqual(Array.from(vpcC.body.subarray(0, 7)), [1, 0, 0, 0, 0, 10, (8 << 4) | (1 << 1)]);
  const opus = parseBoxes(initSegment({ kind: "audio", trackId: 2, timescale: 48000, codec: "opus", channels: 2, sampleRate: 48000 }));
  assert.equal(String.fromCharCode(...find(opus, "moov/trak/mdia/hdlr").body.subarray(8, 12)), "soun");
  const o = parseBoxes(find(opus, "moov/trak/mdia/minf/stbl/stsd").body.subarray(8))[0] as Box;
  assert.equal(o.type, "Opus");
  assert.equal(dv(o.body).getUint16(16), 2); // channelcount
  assert.equal(dv(o.body).getUint32(24) >>> 16, 48000);
  const dOps = parseBoxes(o.body.subarray(28))[0] as Box;
  assert.equal(dOps.type, "dOps");
  assert.deepEqual(Array.from(dOps.body), [0, 2, 0x01, 0x38, 0x00, 0x00, 0xbb, 0x80, 0, 0, 0]);
});

test("fragment: moof(mfhd, traf(tfhd, tfdt, trun)) + mdat; data offset points at the samples", () => {
  const s1 = new Uint8Array([1, 2, 3]);
  const s2 = new Uint8Array([4, 5]);
  const frag = fragment(1, 7, 1234567890123n, [{ data: s1, duration: 3000, keyframe: true }, { data: s2, duration: 3003, keyframe: false }]);
  const boxes = parseBoxes(frag);
  assert.deepEqual(boxes.map((b) => b.type), ["moof", "mdat"]);
  assert.equal(dv(find(boxes, "moof/mfhd").body).getUint32(4), 7);
  const tfhd = find(boxes, "moof/traf/tfhd");
  assert.equal(dv(tfhd.body).getUint32(0) & 0xffffff, 0x020000);
  const tfdt = find(boxes, "moof/traf/tfdt");
  assert.equal(tfdt.body[0], 1);
  assert.equal(dv(tfdt.body).getBigUint64(4), 1234567890123n);
  const trun = dv(find(boxes, "moof/traf/trun").body);
  assert.equal(trun.getUint32(0) & 0xffffff, 0x000701);
  assert.equal(trun.getUint32(4), 2);
  const dataOffset = trun.getInt32(8);
  assert.deepEqual(Array.from(frag.subarray(dataOffset, dataOffset + 5)), [1, 2, 3, 4, 5]);
  assert.deepEqual([trun.getUint32(12), trun.getUint32(16), trun.getUint32(20)], [3000, 3, SAMPLE_FLAGS_SYNC]);
  assert.deepEqual([trun.getUint32(24), trun.getUint32(28), trun.getUint32(32)], [3003, 2, SAMPLE_FLAGS_NON_SYNC]);
});

test("ChunkWriter: durations from timestamps, one frame held, last sample never short", () => {
  const w = new ChunkWriter(1, 90000, 1_000_000);
  const ts = [1_000_000, 1_033_333, 1_066_667, 1_100_000, 1_140_000];
  const out = ts.map((t, i) => w.push({ data: new Uint8Array([i]), timestampUs: t, keyframe: i === 0 })).filter((c) => c !== undefined);
  assert.equal(out.length, 4);
  assert.deepEqual(out.map((c) => c.duration), [3000, 3000, 3000, 3600]);
  assert.deepEqual(out.map((c) => c.decodeTime), [0, 3000, 6000, 9000]);
  let sum = 0;
  for (const c of out) {
    assert.equal(c.decodeTime, sum); // contiguous: no gaps, no overlaps
    sum += c.duration;
  }
  const last = w.flush();
  assert.equal(last?.decodeTime, 12600);
  assert.equal(last?.duration, 3600); // previous duration, not a short stub
  // audio with exact durations goes out at once
  const a = new ChunkWriter(2, 48000, 0, true);
  const c = a.push({ data: new Uint8Array([1]), timestampUs: 20_000, durationUs: 20_000, keyframe: true });
  assert.equal(c?.duration, 960);
  assert.equal(c?.decodeTime, 960);
});

test("catalog: build, parse, pick renditions", () => {
  const init = initSegment({ kind: "audio", trackId: 2, timescale: 48000, codec: "opus", channels: 2, sampleRate: 48000 });
  assert.deepEqual(base64Decode(base64Encode(init)), init);
  const cat = {
    version: "draft-01", generatedAt: 1, tracks: [
      { name: "hd", packaging: "cmaf", isLive: true, role: "video", codec: "avc1.640028", width: 1920, height: 1080, bitrate: 5_000_000, framerate: 30, altGroup: 1, renderGroup: 1, initData: "AAAA" },
      { name: "sd", packaging: "cmaf", isLive: true, role: "video", codec: "avc1.42e01f", width: 640, height: 360, bitrate: 800_000, framerate: 30, altGroup: 1, renderGroup: 1, initData: "AAAA" },
      { name: "audio", packaging: "cmaf", isLive: true, role: "audio", codec: "opus", samplerate: 48000, channelConfig: "2", bitrate: 96_000, altGroup: 2, renderGroup: 1, initData: base64Encode(init) },
      { name: "events", packaging: "eventtimeline", isLive: true },
    ],
  };
  const parsed = parseCatalog(encodeCatalog(cat));
  assert.equal(parsed.tracks.length, 4);
  const r = pickRenditions(parsed);
  assert.deepEqual(r.video.map((t) => t.name), ["sd", "hd"]);
  assert.deepEqual(r.audio.map((t) => t.name), ["audio"]);
  assert.equal(mseType(r.audio[0]!), 'audio/mp4; codecs="opus"');
  assert.equal(CATALOG_TRACK, ".catalog");
  assert.throws(() => parseCatalog("{}"), /invalid catalog/);
  assert.throws(() => parseCatalog("not json"), /invalid catalog/);
  // CMSF's numeric version is accepted too
  assert.equal(parseCatalog(JSON.stringify({ version: 1, tracks: [] })).version, 1);
});
