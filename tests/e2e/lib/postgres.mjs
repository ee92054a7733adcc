// A throwaway PostgreSQL for the multi-node tests, like the Rust harness
// (rs/api/tests/support/pg.rs): `CLUTCHCALL_TEST_DATABASE_URL`'s server if set, else a cluster
// started once per test file from Debian's binaries under /usr/lib/postgresql/*/bin (initdb into
// a temp dir, as user `postgres` when we are root, loopback TCP on a free port), stopped and
// removed by `stopPostgres()`. Without either: `null` (the caller skips; with CI set it throws).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freeTcpPort } from './engine.mjs';

let cluster;

function pgBin() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .map((v) => join(root, v, 'bin'))
    .filter((b) => existsSync(join(b, 'initdb')) && existsSync(join(b, 'pg_ctl')))
    .sort();
  return versions.at(-1) ?? null;
}

const isRoot = () => process.getuid?.() === 0;

function asPostgres(program, args) {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
}

function run(program, args) {
  const [p, a] = asPostgres(program, args);
  execFileSync(p, a, { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function startCluster() {
  const bin = pgBin();
  if (!bin) return { why: 'no PostgreSQL binaries under /usr/lib/postgresql/*/bin' };
  const dir = mkdtempSync(join(tmpdir(), 'clutchcall-e2e-pg-'));
  if (isRoot()) execFileSync('chown', ['postgres:postgres', dir]);
  const data = join(dir, 'data');
  run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freeTcpPort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200`;
  run(join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  return {
    server: `postgres://postgres@127.0.0.1:${port}`,
    psql: join(bin, 'psql'),
    stop: () => {
      try {
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A fresh database URL, or null when no PostgreSQL is available (outside CI). */
export async function postgresDatabase() {
  if (!cluster) {
    const url = process.env.CLUTCHCALL_TEST_DATABASE_URL;
    cluster = url
      ? { server: url.replace(/\/[^/?]*(\?.*)?$/, ''), psql: 'psql', stop: () => {} }
      : await startCluster();
  }
  if (cluster.why) {
    if (process.env.CI) throw new Error(`PostgreSQL needed (CI is set): ${cluster.why}`);
    return null;
  }
  const name = `cc_e2e_${process.pid}_${Date.now()}`;
  execFileSync(cluster.psql, [`${cluster.server}/postgres`, '-qc', `CREATE DATABASE ${name}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return `${cluster.server}/${name}`;
}

/** Stop the cluster this file started (call in `after`). */
export function stopPostgres() {
  cluster?.stop?.();
  cluster = undefined;
}
