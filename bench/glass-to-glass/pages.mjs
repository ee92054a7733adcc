// Browser-side halves of the glass-to-glass benchmark (passed to page.evaluate: self-contained).

/**
 * Publisher: a canvas shows the wall clock (Date.now(), ms) as 48 black/white blocks, captured
 * with captureStream and published with the SDK (plus a quiet oscillator as the audio track).
 */
export async function startClockPublisher({ baseUrl, apiKey, orgId, relayUrl, timesliceMs }) {
  const { Streams } = await import('@clutchcall/sdk/streams');
  const W = 640;
  const H = 360;
  const BITS = 48;
  const canvas = document.createElement('canvas');
  canvas.width = W;
  canvas.height = H;
  document.body.append(canvas);
  const ctx = canvas.getContext('2d');
  const draw = () => {
    const t = Date.now();
    ctx.fillStyle = '#808080';
    ctx.fillRect(0, 0, W, H);
    const bw = W / BITS;
    for (let i = 0; i < BITS; i++) {
      const bit = Math.floor(t / 2 ** (BITS - 1 - i)) % 2;
      ctx.fillStyle = bit ? '#fff' : '#000';
      ctx.fillRect(i * bw, 0, bw, H / 2);
    }
    ctx.fillStyle = '#fff';
    ctx.font = '40px monospace';
    ctx.fillText(new Date(t).toISOString().slice(11, 23), 20, H - 40);
  };
  draw();
  setInterval(draw, 5);
  const video = canvas.captureStream(30).getVideoTracks()[0];
  const ac = new AudioContext();
  const osc = ac.createOscillator();
  const gain = ac.createGain();
  gain.gain.value = 0.05;
  const dest = ac.createMediaStreamDestination();
  osc.connect(gain).connect(dest);
  osc.start();
  const stream = new MediaStream([video, ...dest.stream.getAudioTracks()]);

  const streams = new Streams({ baseUrl, apiKey, orgId });
  const { input, streamKey } = await streams.liveInputs.create({ name: `g2g ${timesliceMs}`, ingest: 'fmp4' });
  const pub = new Streams({ relayUrl }).publisher({ timesliceMs });
  await pub.publish(input.external_input_id, streamKey, stream, input.namespace);
  const { url } = await input.signedPlaybackUrl({ ttlSeconds: 3600 });
  window.bench = { pub, stop: () => { pub.stop(); osc.stop(); void ac.close(); } };
  return { url };
}

/**
 * Viewer (in the /watch/{id} player page): decode the clock from each presented frame.
 * Resolves with { ttffFromPlayMs, ttffFromNavMs, latencies: [ms…], bufferLags: [ms…] } after
 * `seconds`; a buffer lag is how far the shown frame is behind the newest buffered media (the
 * player's share of the latency).
 */
export async function measureViewer({ seconds }) {
  const BITS = 48;
  const video = document.querySelector('video');
  const canvas = new OffscreenCanvas(BITS * 4, 4);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const latencies = [];
  const bufferLags = [];
  let first;
  const read = () => {
    ctx.drawImage(video, 0, 0, video.videoWidth, video.videoHeight / 2, 0, 0, BITS * 4, 4);
    const px = ctx.getImageData(0, 0, BITS * 4, 4).data;
    let t = 0;
    for (let i = 0; i < BITS; i++) {
      const o = (2 * 4 * BITS + i * 4 + 2) * 4; // middle row, middle of block i
      t = t * 2 + (px[o] > 128 ? 1 : 0);
    }
    return t;
  };
  await new Promise((resolve) => {
    const end = performance.now() + seconds * 1000;
    const onFrame = () => {
      const now = Date.now();
      if (first === undefined) first = performance.now();
      const t = read();
      const lat = now - t;
      if (lat >= 0 && lat < 60_000) {
        latencies.push(lat);
        const b = video.buffered;
        if (b.length > 0) bufferLags.push((b.end(b.length - 1) - video.currentTime) * 1000);
      }
      if (performance.now() < end) video.requestVideoFrameCallback(onFrame);
      else resolve();
    };
    video.requestVideoFrameCallback(onFrame);
  });
  return {
    ttffFromPlayMs: first - window.player.playAt,
    ttffFromNavMs: first,
    latencies,
    bufferLags,
    errors: window.player.errors,
  };
}
