// Browser-side helpers for live viewer tests. Each function is passed to `page.evaluate` in a page
// the engine serves (its import map resolves `@clutchcall/sdk/streams`), so it is self-contained.

/**
 * Recipe 2's "Each browser plays the URL" (`new Streams({ apiBase: "", token })`, `viewer()`,
 * `attach`, `play("lv_…")`), with the viewer's callbacks recorded in `window.watch`:
 * `errors`, `started`, `renditions` (onRendition: `{name, kind, height}` in order) and
 * `catalogs` (onCatalog: the video track names of each catalog). `viewerOptions` are passed on.
 */
export async function watchLive({ id, token, viewerOptions = {} }) {
  const { Streams } = await import('@clutchcall/sdk/streams');
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.id = 'cc-live-viewer';
  document.body.append(video);
  const watch = (window.watch = { errors: [], started: false, renditions: [], catalogs: [], viewer: undefined });
  const dataPlane = new Streams({ apiBase: '', token });
  const viewer = dataPlane.viewer({
    ...viewerOptions,
    onStarted: () => (watch.started = true),
    onError: (e) => watch.errors.push({ code: e.code, message: e.message, reason: e.reason }),
    onRendition: (t, kind) => watch.renditions.push({ name: t.name, kind, height: t.height ?? null }),
    onCatalog: (c) => watch.catalogs.push(c.tracks.filter((t) => t.role === 'video').map((t) => t.name)),
  });
  watch.viewer = viewer;
  viewer.attach(video);
  watch.playing = viewer.play(id).then(
    () => 'ok',
    (e) => `rejected: ${e.code}: ${e.message}`,
  );
  return true;
}

/** What the test checks: the element's playback and the viewer's view of the stream. */
export function watchState() {
  const v = document.getElementById('cc-live-viewer');
  const w = window.watch;
  const q = v.getVideoPlaybackQuality();
  const s = w.viewer.stats;
  return {
    started: w.started,
    errors: w.errors,
    currentTime: v.currentTime,
    paused: v.paused,
    totalVideoFrames: q.totalVideoFrames,
    audioDecodedBytes: v.webkitAudioDecodedByteCount ?? null,
    width: v.videoWidth,
    height: v.videoHeight,
    rendition: w.viewer.rendition?.name ?? null,
    renditions: (w.viewer.renditions ?? []).map((t) => ({ name: t.name, height: t.height ?? null, bitrate: t.bitrate ?? null })),
    onRendition: w.renditions,
    catalogs: w.catalogs,
    stats: { video: s.video ?? null, audio: s.audio ?? null, switches: s.switches, migrations: s.migrations, catalogs: s.catalogs, lastGroup: s.lastGroup === undefined ? null : String(s.lastGroup) },
    error: v.error ? { code: v.error.code, message: v.error.message } : null,
  };
}
