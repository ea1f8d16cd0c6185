// One PostgreSQL per test run: embedded (a fresh data dir and free port) unless DATABASE_URL
// is set. Migrations go into a template database once; each test file clones it (CREATE
// DATABASE ... TEMPLATE takes ≈50 ms), so files run in parallel on isolated databases.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createSql } from '../shared/db.ts';
import { startEmbeddedPostgres } from '../shared/embedded.ts';
import { migrate } from '../shared/migrate.ts';
import { freePort } from './helpers/net.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgServerUrl: string; // a URL without the database name: append /<db>
  }
}

export const TEMPLATE_DB = 'posthorn_test_template';

export default async function setup(project: TestProject) {
  let stop = async () => {};
  let serverUrl: string;
  if (process.env.DATABASE_URL) {
    const u = new URL(process.env.DATABASE_URL);
    u.pathname = '';
    serverUrl = u.toString().replace(/\/$/, '');
  } else {
    const dir = mkdtempSync(path.join(tmpdir(), 'posthorn-test-'));
    const db = await startEmbeddedPostgres({ dataDir: dir, port: await freePort() });
    serverUrl = db.url.replace(/\/posthorn$/, '');
    stop = async () => {
      await db.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const admin = createSql(`${serverUrl}/postgres`, { max: 1 });
  await admin.unsafe(`drop database if exists ${TEMPLATE_DB}`);
  await admin.unsafe(`create database ${TEMPLATE_DB}`);
  await admin.end();
  const tpl = createSql(`${serverUrl}/${TEMPLATE_DB}`, { max: 1 });
  await migrate(tpl);
  await tpl.end();
  project.provide('pgServerUrl', serverUrl);
  return stop;
}
