// An external PostgreSQL (DATABASE_URL) restarted under a draining fleet: a second embedded
// server, started by this file, stands in for it. Its postmaster is SIGKILLed mid-drain (what a
// crash or the kernel's OOM killer does) and started again on the same port and data dir (what a
// failover to the same address looks like). The same gateway and worker processes, none of them
// restarted, work again within seconds: the API answers, new tasks are claimed on NOTIFY (the
// poll is 30 s here, so a listener that did not come back would show), a leader holds the lock
// again, and every task ends succeeded (docs/reliability.md).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql } from '../shared/db.ts';
import { type EmbeddedDb, startEmbeddedPostgres } from '../shared/embedded.ts';
import { LEADER_LOCK } from '../worker/maintenance/elector.ts';
import {
  alive,
  allSucceeded,
  api,
  apiBackAfter,
  deliveries,
  enqueueMany,
  fleetPids,
  outputBeforeDeath,
  postmasterPid,
} from './helpers/db-crash.ts';
import { freePort, waitFor } from './helpers/net.ts';
import { baseEnv, killAll, type Proc, pgrepF, removeDataDir, spawnPosthorn, stopGracefully } from './helpers/proc.ts';
import { startSink } from './helpers/sink.ts';

const TASKS = 2000;
const WORKERS = 2;
const CONCURRENCY = 16;
const KEY = `ph_${'Restart0Key'.repeat(4)}`;

let dataDir: string;
let pgPort: number;
let pg: EmbeddedDb | null = null;
let start: Proc | null = null;
let sink: Awaited<ReturnType<typeof startSink>>;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'posthorn-dbrestart-'));
  pgPort = await freePort();
  pg = await startEmbeddedPostgres({ dataDir, port: pgPort });
  // 10 ms per request: the drain lasts long enough to be interrupted.
  sink = await startSink(() => ({ status: 200, body: 'ok', delayMs: 10 }));
}, 60_000);

afterAll(async () => {
  await stopGracefully(start);
  await killAll();
  await sink?.close();
  await pg?.stop().catch(() => {});
  removeDataDir(dataDir);
}, 60_000);

describe('an external PostgreSQL restarted under load', () => {
  it('the same fleet works again within seconds: API, NOTIFY, leader, every task succeeded', async () => {
    const env = {
      ...baseEnv('DATABASE_URL', 'POSTHORN_BOOTSTRAP_KEY', 'PORT', 'HOST'),
      DATABASE_URL: pg!.url,
      POSTHORN_BOOTSTRAP_KEY: KEY,
      POSTHORN_DATA_DIR: path.join(dataDir, 'unused'),
      PORT: String(await freePort()),
      POSTHORN_METRICS_PORT: '0',
      POSTHORN_WORKERS: String(WORKERS),
      POSTHORN_WORKER_CONCURRENCY: String(CONCURRENCY),
      POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
      // Only NOTIFY wakes a worker quickly: a listener lost with the old server shows as a 30 s wait.
      POSTHORN_POLL_INTERVAL_MS: '30000',
      // Claims whose answer was lost with the server are rescued after this.
      POSTHORN_LEASE_MS: '5000',
      POSTHORN_LOG_LEVEL: 'info',
    };
    start = spawnPosthorn(['start'], env);
    const url = (await start.waitForOutput(/^posthorn ready url=(\S+)$/m, 120_000))[1]!;
    const call = api(url, KEY);
    const before = await waitFor(() => (fleetPids(start!).length === WORKERS + 1 ? fleetPids(start!) : null), { what: 'the fleet' });
    const ids = await enqueueMany(call, sink.url, TASKS);

    await waitFor(() => sink.received.length >= TASKS / 4, { timeoutMs: 30_000, what: 'a quarter of the drain' });
    const pid = postmasterPid(pg!.clusterDir)!;
    const killedAt = Date.now();
    const deliveredAtKill = deliveries(sink).tasks;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid) && pgrepF(pg!.clusterDir).length === 0, {
      timeoutMs: 10_000,
      what: 'the server and its backends gone',
    });
    pg = await startEmbeddedPostgres({ dataDir, port: pgPort });
    const backAt = Date.now();

    const apiMs = await apiBackAfter(call, backAt, 15_000);
    // The drain goes on: a delivery made after the server was back.
    await waitFor(() => sink.received.some((r) => r.at > backAt), { timeoutMs: 10_000, what: 'deliveries to resume' });
    const resumedMs = Date.now() - backAt;
    // A worker holds the leader lock again (the old session, and its lock, died with the server).
    const check = createSql(pg.url, { max: 1 });
    try {
      await waitFor(
        async () => (await check`select 1 from pg_locks where locktype = 'advisory' and objid = ${LEADER_LOCK} and granted`).length === 1,
        { timeoutMs: 10_000, what: 'a leader again' },
      );
    } finally {
      await check.end();
    }
    const leaderMs = Date.now() - backAt;

    await allSucceeded(pg.url, TASKS, 40_000);
    // With the queue empty, a new task is claimed on NOTIFY (the poll is 30 s): the listeners are back.
    const t0 = Date.now();
    const probe = await call('POST', '/api/v1/queue', { url: `${sink.url}/probe` });
    expect(probe.status).toBe(202);
    await waitFor(() => sink.received.some((r) => r.path === '/probe'), { timeoutMs: 10_000, what: 'the probe task claimed on NOTIFY' });
    const probeMs = Date.now() - t0;
    const d = deliveries(sink);
    expect(d.tasks).toBe(TASKS + 1);
    // No process was restarted: the same gateway and workers, no death logged.
    expect(fleetPids(start), outputBeforeDeath(start.output)).toEqual(before);
    expect(start.output).not.toMatch(/child process died/);
    console.log(
      `external PostgreSQL down ${backAt - killedAt} ms (${deliveredAtKill}/${TASKS} delivered at the kill); API back ${apiMs} ms, ` +
        `deliveries ${resumedMs} ms, leader ${leaderMs} ms after it was back; a task claimed on NOTIFY ${probeMs} ms after its enqueue; ` +
        `${d.extra} deliveries beyond one per task`,
    );
    // At most the attempts in flight at the kill run twice (those whose outcome lost the race
    // with the rescuer); the outcome buffer keeps the rest from being delivered again.
    expect(d.extra).toBeLessThanOrEqual(WORKERS * CONCURRENCY);
    expect(ids).toHaveLength(TASKS);
  }, 180_000);
});
