import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCatalog } from "../src/media/catalog.js";
import { vodSegmentAt } from "../src/playback.js";

// The shape rs/vod writes to catalog.json: 90 kHz video, segments of 2 s, 2 s, 1.5 s starting at 0.5 s.
const catalog = parseCatalog(JSON.stringify({
  version: 1,
  tracks: [
    {
      name: "video", packaging: "cmaf", isLive: false, role: "video", timescale: 90000,
      segmentCount: 3, segmentStartTime: 45000, segmentDurations: [180000, 180000, 135000],
    },
    { name: "bad", packaging: "cmaf", isLive: false, timescale: 1000, segmentDurations: [1000, "x"] },
  ],
}));

test("VOD catalog: segment timing fields are parsed; malformed durations are dropped", () => {
  const [video, bad] = catalog.tracks;
  assert.deepEqual(video?.segmentDurations, [180000, 180000, 135000]);
  assert.equal(video?.segmentStartTime, 45000);
  assert.equal(video?.segmentCount, 3);
  assert.equal(bad?.segmentDurations, undefined);
});

test("vodSegmentAt: the segment holding a time; clamped at both ends; 0 without timing", () => {
  const video = catalog.tracks[0];
  assert.ok(video);
  assert.equal(vodSegmentAt(video, 0), 0);
  assert.equal(vodSegmentAt(video, 0.5), 0);
  assert.equal(vodSegmentAt(video, 2.49), 0);
  assert.equal(vodSegmentAt(video, 2.5), 1);
  assert.equal(vodSegmentAt(video, 4.6), 2);
  assert.equal(vodSegmentAt(video, 600), 2);
  const bad = catalog.tracks[1];
  assert.ok(bad);
  assert.equal(vodSegmentAt(bad, 5), 0);
});
