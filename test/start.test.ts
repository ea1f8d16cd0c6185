// `posthorn start` as a new user runs it: its own embedded PostgreSQL in a fresh data dir, the
// bootstrap key printed once and written 0600, the gateway answering, workers delivering, a
// killed worker restarted by the supervisor, and SIGTERM stopping everything (PostgreSQL too)
// with exit code 0 (docs/api.md, docs/configuration.md).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { freePort, waitFor } from './helpers/net.ts';
import { baseEnv, childPids, cmdline, killAll, type Proc, pgrepF, spawnPosthorn } from './helpers/proc.ts';
import { startSink } from './helpers/sink.ts';

const dirs: string[] = [];
const starts: Proc[] = [];
const dbs: TestDb[] = [];

function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const c of childPids(pid)) out.push(c, ...descendants(c));
  return out;
}

afterAll(async () => {
  // A test that failed half-way must not leave a supervisor, its children or a PostgreSQL behind.
  for (const s of starts) {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) continue;
    const tree = descendants(s.pid);
    s.proc.kill('SIGTERM');
    const done = await Promise.race([s.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 15_000))]);
    if (!done)
      for (const pid of [s.pid, ...tree])
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
  }
  await killAll();
  for (const d of dirs) {
    for (const pid of pgrepF(d))
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    rmSync(d, { recursive: true, force: true });
  }
  for (const db of dbs) await db.drop().catch(() => {});
}, 60_000);

function freshDir() {
  const d = mkdtempSync(path.join(tmpdir(), 'posthorn-start-'));
  dirs.push(d);
  return d;
}

async function startEnv(dataDir: string, extra: Record<string, string> = {}) {
  return {
    ...baseEnv('DATABASE_URL', 'POSTHORN_BOOTSTRAP_KEY', 'PORT', 'HOST'),
    POSTHORN_DATA_DIR: dataDir,
    POSTHORN_PG_PORT: String(await freePort()),
    PORT: String(await freePort()),
    POSTHORN_METRICS_PORT: '0', // each worker a free port (a fixed base + 1 may be taken)
    POSTHORN_WORKERS: '2',
    POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
    POSTHORN_POLL_INTERVAL_MS: '200',
    ...extra,
  };
}

function runStart(env: Record<string, string>): Proc {
  const p = spawnPosthorn(['start'], env);
  starts.push(p);
  return p;
}

async function readyUrl(p: Proc): Promise<string> {
  // Generous: on a loaded 2-core machine a cold start (tsx, initdb, migrations, 3 children) took
  // over 60 s once; nothing here is about speed.
  const m = await p.waitForOutput(/^posthorn ready url=(\S+)$/m, 120_000);
  return m[1]!;
}

const workerPids = (startPid: number) => childPids(startPid).filter((pid) => cmdline(pid).endsWith('bin/posthorn.js worker'));

async function call(url: string, method: string, key: string | null, body?: unknown) {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

async function stopAndCheck(p: Proc, dataDir: string | null) {
  const t0 = Date.now();
  p.proc.kill('SIGTERM');
  const exit = await Promise.race([
    p.exited,
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`start did not exit within 30 s:\n${p.output}`)), 30_000)),
  ]);
  expect(exit, p.output).toEqual({ code: 0, signal: null });
  expect(Date.now() - t0).toBeLessThan(30_000);
  if (dataDir) expect(pgrepF(dataDir), 'processes left for the data dir').toEqual([]);
  return Date.now() - t0;
}

describe('posthorn', () => {
  it('--help prints the usage and exits 0; an unknown command exits 2', async () => {
    for (const args of [['--help'], ['help'], []]) {
      const p = spawnPosthorn(args, baseEnv());
      expect(await p.exited, p.output).toEqual({ code: 0, signal: null });
      expect(p.stdout).toMatch(/^usage: posthorn <command>/);
    }
    const bad = spawnPosthorn(['frobnicate'], baseEnv());
    expect((await bad.exited).code).toBe(2);
    expect(bad.stderr).toMatch(/^posthorn: unknown command "frobnicate"/);
  });
});

describe('posthorn start', () => {
  it('runs the whole thing on its own embedded PostgreSQL, supervises workers and stops cleanly', async () => {
    const dataDir = freshDir();
    const env = await startEnv(dataDir);
    const sink = await startSink(() => ({ status: 200, body: 'thanks' }));
    try {
      const p = runStart(env);
      const url = await readyUrl(p);
      expect(url).toBe(`http://127.0.0.1:${env.PORT}`);

      // The bootstrap key: printed once on stdout, and the same key in <data dir>/bootstrap-key, 0600.
      const printed = /^posthorn bootstrap admin key .*: (ph_[A-Za-z0-9]{32,})$/m.exec(p.stdout);
      expect(printed, p.output).not.toBeNull();
      const key = printed![1]!;
      const keyFile = path.join(dataDir, 'bootstrap-key');
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(keyFile, 'utf8').trim()).toBe(key);
      // The key is on the terminal once, never in a log line.
      expect(p.output.split(key).length - 1).toBe(1);

      expect((await call(`${url}/healthz`, 'GET', null)).status).toBe(200);
      const ready = await call(`${url}/readyz`, 'GET', null);
      expect(ready.status, ready.text).toBe(200);
      const openapi = await call(`${url}/openapi.json`, 'GET', null);
      expect(openapi.status).toBe(200);
      expect(openapi.body.paths['/api/v1/queue']).toBeDefined();
      expect((await call(`${url}/api/v1/tasks`, 'GET', null)).status).toBe(401);

      // Enqueue and watch it arrive.
      const enq = await call(`${url}/api/v1/queue`, 'POST', key, {
        url: `${sink.url}/hooks/welcome`,
        method: 'PUT',
        headers: { 'x-tenant': '42' },
        body: { user_id: '123' },
      });
      expect(enq.status, enq.text).toBe(202);
      const got = await waitFor(() => sink.received.find((r) => r.headers['x-posthorn-task-id'] === enq.body.id), {
        timeoutMs: 15_000,
        what: 'the delivery',
      });
      expect(got.method).toBe('PUT');
      expect(got.path).toBe('/hooks/welcome');
      expect(JSON.parse(got.body)).toEqual({ user_id: '123' });
      expect(got.headers['content-type']).toBe('application/json');
      expect(got.headers['x-tenant']).toBe('42');
      expect(got.headers['x-posthorn-attempt']).toBe('1');
      expect(got.headers['user-agent']).toMatch(/^Posthorn\//);
      await waitFor(async () => (await call(`${url}/api/v1/tasks/${enq.body.id}`, 'GET', key)).body?.status === 'succeeded', {
        what: 'status succeeded',
      });

      // Kill a worker: the supervisor logs the death and starts a new one.
      const before = await waitFor(() => (workerPids(p.pid).length === 2 ? workerPids(p.pid) : null), { what: 'two worker children' });
      const victim = before[0]!;
      process.kill(victim, 'SIGKILL');
      await p.waitForOutput(/child process died; restarting/, 10_000);
      const deathLine = p.stdout.split('\n').find((l) => l.includes('child process died; restarting'))!;
      expect(JSON.parse(deathLine)).toMatchObject({ child: expect.stringMatching(/^worker-/), pid: victim, signal: 'SIGKILL' });
      const after = await waitFor(
        () => {
          const now = workerPids(p.pid);
          return now.length === 2 && !now.includes(victim) ? now : null;
        },
        { timeoutMs: 15_000, what: 'a replacement worker' },
      );
      const replacement = after.find((pid) => !before.includes(pid))!;
      expect(replacement).toBeDefined();
      // It is up (claiming) when it says so.
      await waitFor(() => p.stdout.split('\n').some((l) => l.includes('"worker started"') && l.includes(`"pid":${replacement}`)), {
        what: `the replacement worker ${replacement} to start`,
      });

      // Delivery still works, on both the old worker and the new one.
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await call(`${url}/api/v1/queue`, 'POST', key, { url: `${sink.url}/after/${i}`, body: `n=${i}` });
        expect(r.status, r.text).toBe(202);
        ids.push(r.body.id);
      }
      await waitFor(() => ids.every((id) => sink.received.some((r) => r.headers['x-posthorn-task-id'] === id)), {
        timeoutMs: 15_000,
        what: 'deliveries after the restart',
      });

      await stopAndCheck(p, dataDir);
      expect(workerPids(p.pid)).toEqual([]);
      // The leader gives up leadership on the way out: routine, logged at info, not a warning.
      expect(p.stdout).toMatch(/"level":30,.*"msg":"released leadership"/);
      expect(p.stdout).not.toMatch(/lost leadership/);

      // A second start on the same data dir: the same database, no new key.
      const env2 = { ...env, PORT: String(await freePort()) };
      const p2 = runStart(env2);
      const url2 = await readyUrl(p2);
      expect(p2.stdout).not.toMatch(/bootstrap admin key/);
      expect(p2.output).not.toContain(key);
      expect(readFileSync(keyFile, 'utf8').trim()).toBe(key);
      const old = await call(`${url2}/api/v1/tasks/${enq.body.id}`, 'GET', key);
      expect(old.status, old.text).toBe(200);
      expect(old.body.status).toBe('succeeded');
      await stopAndCheck(p2, dataDir);
    } finally {
      await sink.close();
    }
  }, 240_000);

  it('Ctrl-C (SIGINT to the whole process group) lets attempts in flight finish before PostgreSQL stops', async () => {
    const dataDir = freshDir();
    const key = `ph_${'CtrlC0Key0'.repeat(4)}`;
    const sink = await startSink(() => ({ status: 200, delayMs: 1500 }));
    try {
      // Detached: a group of its own, which the test signals as a terminal's Ctrl-C would.
      const p = spawnPosthorn(['start'], await startEnv(dataDir, { POSTHORN_BOOTSTRAP_KEY: key }), { detached: true });
      starts.push(p);
      const url = await readyUrl(p);
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await call(`${url}/api/v1/queue`, 'POST', key, { url: `${sink.url}/slow` })).body.id);
      await waitFor(() => sink.received.length === 4, { what: 'all four attempts in flight' });
      process.kill(-p.pid, 'SIGINT');
      const exit = await Promise.race([
        p.exited,
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no exit after Ctrl-C:\n${p.output}`)), 30_000)),
      ]);
      expect(exit, p.output).toEqual({ code: 0, signal: null });
      expect(pgrepF(dataDir), 'processes left for the data dir').toEqual([]);

      // Start again on the same data: the attempts that were in flight were recorded, once each.
      const again = runStart(await startEnv(dataDir));
      const url2 = await readyUrl(again);
      for (const id of ids) {
        const t = await call(`${url2}/api/v1/tasks/${id}`, 'GET', key);
        expect(t.body, t.text).toMatchObject({ status: 'succeeded', attempts: 1, last_attempt: { outcome: 'success' } });
      }
      expect(sink.received).toHaveLength(4);
      await stopAndCheck(again, dataDir);
    } finally {
      await sink.close();
    }
  }, 240_000);

  it('uses POSTHORN_BOOTSTRAP_KEY as the admin key on an empty database given by DATABASE_URL', async () => {
    const db = await createTestDb();
    dbs.push(db);
    const dataDir = freshDir();
    const key = `ph_${'Preset0Key'.repeat(4)}`;
    const env = await startEnv(dataDir, { DATABASE_URL: db.url, POSTHORN_BOOTSTRAP_KEY: key, POSTHORN_WORKERS: '1' });
    const sink = await startSink();
    try {
      const p = runStart(env);
      const url = await readyUrl(p);
      // Nothing printed or written: the operator chose the key.
      expect(p.output).not.toMatch(/bootstrap admin key/);
      expect(p.output).not.toContain(key);
      expect(existsSync(path.join(dataDir, 'bootstrap-key'))).toBe(false);
      // No embedded PostgreSQL either: only the generated POSTHORN_SECRET_KEY (docs/connections.md).
      expect(readdirSync(dataDir)).toEqual(['secret-key']);

      const [team] = await db.sql`select t.slug, k.role from teams t join api_keys k on k.team_id = t.id`;
      expect(team).toMatchObject({ slug: 'default', role: 'admin' });
      const enq = await call(`${url}/api/v1/queue`, 'POST', key, { url: `${sink.url}/preset`, body: 'hi' });
      expect(enq.status, enq.text).toBe(202);
      await waitFor(() => sink.received.some((r) => r.headers['x-posthorn-task-id'] === enq.body.id), { what: 'the delivery' });
      expect((await call(`${url}/api/v1/tasks`, 'GET', `ph_${'x'.repeat(40)}`)).status).toBe(401);
      await stopAndCheck(p, null);
    } finally {
      await sink.close();
    }
  }, 180_000);
});
