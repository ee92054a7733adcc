// An RTMP encoder for tests: Debian's ffmpeg pushing a test pattern and a tone, configured the
// way recipe 2 configures OBS (server `rtmp://<host>/live/<external_input_id>`, stream key).
import { spawn } from 'node:child_process';

/**
 * Starts ffmpeg pushing `testsrc2` (`size`, `fps`, one keyframe per second: `-g fps`) plus a
 * 440 Hz sine as H.264 (x264 ultrafast, `videoKbps`) + AAC over RTMP to `addr` (`host:port`)
 * as input `lv` with stream key `key`, in real time (`-re`) until stopped.
 * Returns { child, stop(), output() }; `stop()` sends SIGTERM and waits for the exit.
 */
export function rtmpPush(addr, lv, key, { size = '640x360', fps = 24, videoKbps = 800 } = {}) {
  const child = spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${fps}`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(fps), '-pix_fmt', 'yuv420p',
    '-b:v', `${videoKbps}k`, '-maxrate', `${videoKbps}k`, '-bufsize', `${videoKbps}k`,
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'flv', '-rtmp_app', `live/${lv}`, '-rtmp_playpath', key,
    `rtmp://${addr}/live/${lv}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr.on('data', (c) => {
    output = (output + c.toString()).slice(-16 * 1024);
  });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return {
    child,
    exited,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
