// Starts the engine binary on free ports for a test and stops it with SIGTERM afterwards.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests/e2e/lib/../../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The engine binary: $CLUTCHCALL_BIN, else target/debug/clutchcall. */
export const ENGINE_BIN = process.env.CLUTCHCALL_BIN ?? join(REPO_ROOT, 'target', 'debug', 'clutchcall');

/** A TCP port that was free a moment ago on `host` (bind port 0, read it, close). */
export function freeTcpPort(host = '127.0.0.1') {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** A UDP port that was free a moment ago on `host`. */
export function freeUdpPort(host = '127.0.0.1') {
  return new Promise((resolvePort, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      const { port } = socket.address();
      socket.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `clutchcall serve` on free ports with a fresh data directory and waits for
 * `GET /healthz` to answer 200.
 *
 * `publicPrefix` ('' by default: every namespace open, no tokens) is passed as
 * `--public-prefix`; `null` leaves it out so stream keys and playback tokens are enforced.
 *
 * Returns { httpUrl, relayUrl, httpPort, relayPort, dataDir, pid, credentials(), rtmpAddr(), output(), stop() };
 * `credentials()` reads `<data-dir>/credentials` → { apiKey, orgId }; `rtmpAddr()` is the RTMP
 * ingest address the engine printed (`host:port`).
 * `stop()` sends SIGTERM, waits for the exit (SIGKILL after `stopTimeoutMs`), removes the data
 * directory (unless `stop({ keepDataDir: true })`) and returns the exit code; call it in
 * `after`/`t.after`. `pid` is the engine's process id (its ffmpeg ladder children are its
 * children).
 *
 * Restarting "the same engine" (GOAWAY tests): stop the first with `{ keepDataDir: true }`, then
 * `startEngine({ dataDir, httpPort, relayPort })` with the first one's values: same database
 * (inputs, keys, signing keys), same HTTP and relay ports (a new self-signed certificate).
 */
export async function startEngine({
  bin = ENGINE_BIN,
  args = [],
  env = {},
  publicPrefix = '',
  readyTimeoutMs = 30_000,
  stopTimeoutMs = 10_000,
  dataDir: reuseDataDir = undefined,
  httpPort: reuseHttpPort = undefined,
  relayPort: reuseRelayPort = undefined,
} = {}) {
  if (!existsSync(bin)) {
    throw new Error(`engine binary not found at ${bin}: run \`cargo build -p clutchcall\` first`);
  }
  const dataDir = reuseDataDir ?? (await mkdtemp(join(tmpdir(), 'clutchcall-e2e-')));
  const httpPort = reuseHttpPort ?? (await freeTcpPort());
  const relayPort = reuseRelayPort ?? (await freeUdpPort());
  const child = spawn(
    bin,
    [
      'serve',
      '--data-dir', dataDir,
      '--http', `127.0.0.1:${httpPort}`,
      '--relay', `127.0.0.1:${relayPort}`,
      ...(publicPrefix === null ? [] : ['--public-prefix', publicPrefix]),
      ...args,
    ],
    {
      cwd: REPO_ROOT,
      // Every listener on a free port: RTMP ingest too (its default 1935 may be taken).
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', CLUTCHCALL_RTMP: '127.0.0.1:0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );

  // Keep the last 64 KiB of output for error messages.
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-64 * 1024);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let exit = null;
  exited.then((e) => {
    exit = e;
  });

  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const relayUrl = `https://127.0.0.1:${relayPort}`;

  const stop = async ({ keepDataDir = false } = {}) => {
    if (!exit) {
      child.kill('SIGTERM');
      const timer = sleep(stopTimeoutMs).then(() => 'timeout');
      if ((await Promise.race([exited, timer])) === 'timeout') {
        child.kill('SIGKILL');
      }
      await exited;
    }
    if (!keepDataDir) await rm(dataDir, { recursive: true, force: true });
    return exit;
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exit) {
      await rm(dataDir, { recursive: true, force: true });
      throw new Error(`engine exited early (${JSON.stringify(exit)}):\n${output}`);
    }
    try {
      const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`engine not healthy after ${readyTimeoutMs} ms:\n${output}`);
    }
    await sleep(100);
  }

  const credentials = async () => {
    const text = await readFile(join(dataDir, 'credentials'), 'utf8');
    const get = (k) => text.match(new RegExp(`^${k}=(.*)$`, 'm'))?.[1]?.trim().replace(/^['"]|['"]$/g, '');
    return { apiKey: get('CLUTCHCALL_CREDENTIALS'), orgId: get('CLUTCHCALL_ORG_ID') };
  };

  // The RTMP listener's address (`rtmp=ADDR` on the `clutchcall listening …` stdout line).
  const rtmpAddr = () => output.match(/^clutchcall listening .*\brtmp=(\S+)/m)?.[1];

  return { httpUrl, relayUrl, httpPort, relayPort, dataDir, pid: child.pid, credentials, rtmpAddr, output: () => output, stop };
}
