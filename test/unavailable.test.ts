// A lost database: the gateway answers 503 `unavailable` (problem+json, Retry-After) within 5 s,
// never hangs and never answers 500 (docs/api.md §3), whether the API key is still in the gateway's
// 2 s cache or has to be looked up. When PostgreSQL is back, so is the gateway.
// This file runs its own embedded PostgreSQL: stopping the shared one would break other files.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_TTL_MS } from '../gateway/auth.ts';
import { startGateway } from '../gateway/server.ts';
import { parseConfig } from '../shared/config.ts';
import { createSql, type Sql } from '../shared/db.ts';
import { type EmbeddedDb, startEmbeddedPostgres } from '../shared/embedded.ts';
import { migrate } from '../shared/migrate.ts';
import { seedTeam } from './helpers/db.ts';
import { freePort, waitFor } from './helpers/net.ts';
import { childPids, pgrepF, removeDataDir, signalEach } from './helpers/proc.ts';

const BUDGET_MS = 5000;

let dataDir: string;
let pgPort: number;
let pg: EmbeddedDb | null = null;
let sql: Sql;
let gw: Awaited<ReturnType<typeof startGateway>>;
let team: Awaited<ReturnType<typeof seedTeam>>;
const target = 'http://127.0.0.1:9/never-delivered'; // no worker runs in this file

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'posthorn-unavail-'));
  pgPort = await freePort();
  pg = await startEmbeddedPostgres({ dataDir, port: pgPort });
  sql = createSql(pg.url, { max: 2 });
  await migrate(sql);
  team = await seedTeam(sql);
  await sql.end();
  const config = parseConfig({
    DATABASE_URL: pg.url,
    PORT: String(await freePort()),
    POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
    POSTHORN_LOG_LEVEL: 'silent',
  });
  gw = await startGateway({ ...config, databaseUrl: pg.url });
}, 60_000);

afterAll(async () => {
  // A test that stopped the server with SIGSTOP: it must run again to stop.
  signalEach(pgrepF(dataDir), 'SIGCONT');
  await Promise.race([gw?.stop(), new Promise((r) => setTimeout(r, 10_000))]);
  await pg?.stop().catch(() => {});
  removeDataDir(dataDir);
}, 60_000);

type Timed = { status: number; headers: Headers; body: any; text: string; ms: number };

async function timed(method: string, p: string, key: string, body?: unknown): Promise<Timed> {
  const t0 = performance.now();
  const res = await fetch(`${gw.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    // A hang fails the test instead of stalling it.
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  let parsed: any = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: parsed, text, ms };
}

function expectUnavailable(r: Timed, what: string) {
  expect(r.status, `${what}: ${r.text}`).toBe(503);
  expect(r.headers.get('content-type'), what).toMatch(/^application\/problem\+json/);
  expect(r.body, what).toMatchObject({ status: 503, code: 'unavailable' });
  const retryAfter = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter > 0, `${what}: Retry-After ${r.headers.get('retry-after')}`).toBe(true);
  expect(r.ms, `${what} took ${Math.round(r.ms)} ms`).toBeLessThan(BUDGET_MS);
}

const enqueue = (key: string) => timed('POST', '/api/v1/queue', key, { url: target, body: { hello: 'world' } });

describe('gateway with the database gone', () => {
  it('answers 503 unavailable within 5 s while PostgreSQL is stopped, and recovers when it is back', async () => {
    // Warm: the write and admin keys are looked up and cached; the read key never is.
    const first = await enqueue(team.keys.write);
    expect(first.status, first.text).toBe(202);
    expect((await timed('GET', '/api/v1/tasks', team.keys.admin)).status).toBe(200);
    const cachedAt = performance.now();

    const t0 = performance.now();
    await pg!.stop();
    pg = null;
    const stopMs = performance.now() - t0;
    expect(pgrepF(dataDir)).toEqual([]);

    // Cached key: authentication passes from memory, the INSERT / SELECT fails.
    const cachedEnqueue = await enqueue(team.keys.write);
    const cachedList = await timed('GET', '/api/v1/tasks', team.keys.admin);
    // Still inside the 2 s cache window, so these really took the cached path.
    expect(performance.now() - cachedAt, `PostgreSQL took ${Math.round(stopMs)} ms to stop`).toBeLessThan(CACHE_TTL_MS);
    expectUnavailable(cachedEnqueue, 'POST /api/v1/queue, cached key');
    expectUnavailable(cachedList, 'GET /api/v1/tasks, cached key');

    // Uncached keys: the key lookup itself fails. Not 401: the gateway cannot tell.
    expectUnavailable(await timed('GET', '/api/v1/tasks', team.keys.read), 'GET /api/v1/tasks, uncached key');
    expectUnavailable(await timed('GET', `/api/v1/tasks/${first.body.id}`, team.keys.read), 'GET /api/v1/tasks/:id, uncached key');
    expectUnavailable(await timed('GET', '/api/v1/tasks', `ph_${'U'.repeat(40)}`), 'GET /api/v1/tasks, unknown key');
    // After the cache expired, the once-cached keys are looked up again: still 503.
    await new Promise((r) => setTimeout(r, CACHE_TTL_MS + 100));
    expectUnavailable(await enqueue(team.keys.write), 'POST /api/v1/queue, expired cache');
    expectUnavailable(
      await timed('POST', '/api/v1/queue/batch', team.keys.write, { tasks: [{ url: target }] }),
      'POST /api/v1/queue/batch',
    );
    // A malformed task: refused as input (400) or, since the key must be looked up first,
    // 503; never a 500, never slow.
    const bad = await timed('POST', '/api/v1/queue', team.keys.admin, { url: 'ftp://example.com' });
    expect([400, 503]).toContain(bad.status);
    expect(bad.ms).toBeLessThan(BUDGET_MS);

    // Liveness stays up; readiness says what is wrong.
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
    const t1 = performance.now();
    const ready = await fetch(`${gw.url}/readyz`, { signal: AbortSignal.timeout(15_000) });
    expect(ready.status).toBe(503);
    expect(performance.now() - t1).toBeLessThan(BUDGET_MS);

    // A burst while down: every one a 503, none a 500, none slow.
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => enqueue(i % 2 ? team.keys.write : team.keys.admin)));
    for (const r of burst) expectUnavailable(r, 'burst');

    // PostgreSQL back: the same gateway, without a restart, accepts tasks again.
    pg = await startEmbeddedPostgres({ dataDir, port: pgPort });
    const backAt = performance.now();
    const again = await waitFor(
      async () => {
        const r = await enqueue(team.keys.write);
        expect([202, 503]).toContain(r.status);
        return r.status === 202 ? r : null;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'the gateway to recover' },
    );
    // A client that honours Retry-After (5 s) gets in on its next try.
    const recoveredMs = performance.now() - backAt;
    expect(recoveredMs).toBeLessThan(5000);
    console.log(
      `503s while down took ${Math.round(Math.min(...burst.map((r) => r.ms)))}-${Math.round(Math.max(...burst.map((r) => r.ms)))} ms; accepting again ${Math.round(recoveredMs)} ms after PostgreSQL was back`,
    );
    expect(again.body.status).toBe('pending');
    expect((await timed('GET', '/api/v1/tasks', team.keys.read)).status).toBe(200);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
    // Only the tasks answered 202 were stored: a request answered 503 does not go on to
    // store its task when the database comes back.
    const check = createSql(pg.url, { max: 1 });
    const [{ n }] = await check`select count(*)::int as n from tasks where team_id = ${team.teamId}`;
    await check.end();
    expect(n).toBe(2);
  }, 60_000);

  it('answers 503 within 5 s when PostgreSQL accepts connections but does not answer (SIGSTOP), and stores nothing it answered 503', async () => {
    const admin = createSql(pg!.url, { max: 1 });
    const count = async () => (await admin`select count(*)::int as n from tasks where team_id = ${team.teamId}`)[0]!.n as number;
    try {
      expect((await enqueue(team.keys.write)).status).toBe(202); // the write key is cached now
      await new Promise((r) => setTimeout(r, CACHE_TTL_MS + 100)); // the admin key is not
      expect((await enqueue(team.keys.write)).status).toBe(202);
      const before = await count();

      // The postmaster (its command line names the data dir) and every backend under it.
      const postmaster = pgrepF(dataDir);
      expect(postmaster.length).toBe(1);
      const frozen = [postmaster[0]!, ...childPids(postmaster[0]!)];
      expect(frozen.length).toBeGreaterThan(2);
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
      try {
        // Pooled connections hang on their query; new ones cannot complete the handshake.
        const results = await Promise.all([
          enqueue(team.keys.write),
          enqueue(team.keys.admin),
          timed('POST', '/api/v1/queue/batch', team.keys.admin, { tasks: [{ url: target }, { url: target }] }),
          timed('GET', '/api/v1/tasks', team.keys.read),
          timed('GET', '/api/v1/tasks', `ph_${'F'.repeat(40)}`),
        ]);
        expectUnavailable(results[0]!, 'POST /api/v1/queue, cached key, frozen database');
        expectUnavailable(results[1]!, 'POST /api/v1/queue, uncached key, frozen database');
        expectUnavailable(results[2]!, 'POST /api/v1/queue/batch, frozen database');
        expectUnavailable(results[3]!, 'GET /api/v1/tasks, frozen database');
        expectUnavailable(results[4]!, 'GET /api/v1/tasks, frozen database, unknown key');
      } finally {
        for (const pid of frozen)
          try {
            process.kill(pid, 'SIGCONT');
          } catch {
            /* gone */
          }
      }
      // Thawed, the queries the 503'd requests were waiting on complete; the requests must not
      // go on to store their tasks (the clients were told to try again).
      await waitFor(async () => (await enqueue(team.keys.write)).status === 202, {
        timeoutMs: 15_000,
        intervalMs: 200,
        what: 'the gateway to recover',
      });
      await new Promise((r) => setTimeout(r, 1000));
      expect(await count()).toBe(before + 1);
    } finally {
      await admin.end();
    }
  }, 60_000);
});
