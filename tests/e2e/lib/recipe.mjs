// Browser-side steps of recipe 1 (spec/recipes.txt), run in a page the engine serves (its import
// map resolves `@clutchcall/sdk/streams` to the engine's `/sdk/streams.js`). Each function is
// passed to `page.evaluate`, so it must be self-contained; the recipe's code is kept as written,
// with the engine's URLs and org in place of app.clutchcall.dev / relay.clutchcall.dev / org_abc.

/** "Create a live input", "Publish a webcam over MoQT", "Mint a signed playback URL". */
export async function goLive({ baseUrl, apiKey, orgId, relayUrl, timesliceMs = 1000 }) {
  const { Streams } = await import('@clutchcall/sdk/streams');
  const streams = new Streams({ baseUrl, apiKey, orgId });
  const { input, streamKey } = await streams.liveInputs.create({
    name: 'Live Demo', ingest: 'fmp4',
  });
  // Persist streamKey now — it is never returned again.
  const dataPlane = new Streams({ relayUrl });
  const pub = dataPlane.publisher({ timesliceMs });
  const cam = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  await pub.publish(
    input.external_input_id,
    streamKey,
    cam,
    `stream/${orgId}/${input.external_input_id}`,
  );
  const { url } = await input.signedPlaybackUrl({ ttlSeconds: 3600 });
  window.recipe = { pub, cam, input, streamKey, errors: [] };
  return { url, id: input.external_input_id, inputId: input.id };
}

/** Snapshot of a `<video>`: what a user (or a test) can check about playback. */
export function videoStats(selector = 'video') {
  const v = document.querySelector(selector);
  const q = v.getVideoPlaybackQuality();
  const ranges = (r) => Array.from({ length: r.length }, (_, i) => [r.start(i), r.end(i)]);
  const ms = v.srcObject ? undefined : v.src;
  return {
    currentTime: v.currentTime,
    paused: v.paused,
    muted: v.muted,
    readyState: v.readyState,
    totalVideoFrames: q.totalVideoFrames,
    droppedVideoFrames: q.droppedVideoFrames,
    audioDecodedBytes: v.webkitAudioDecodedByteCount ?? null,
    videoDecodedBytes: v.webkitVideoDecodedByteCount ?? null,
    buffered: ranges(v.buffered),
    src: ms,
    error: v.error ? { code: v.error.code, message: v.error.message } : null,
    width: v.videoWidth,
    height: v.videoHeight,
  };
}
