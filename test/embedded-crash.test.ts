// `posthorn start` on its embedded PostgreSQL, as a single-box user runs it, survives that
// PostgreSQL being killed: mid-drain its postmaster gets SIGKILL (what the kernel's OOM killer
// does). The supervisor logs the death and starts the server again (it recovers from its WAL),
// the API answers again within 15 s of the kill, the same gateway and workers go on, and every
// task ends succeeded. Deliveries beyond one per task are reported: outcomes that could not be
// recorded while the server was away are held and written after (docs/reliability.md), so at
// most the attempts in flight at the kill can run twice (when the rescuer wins the race).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
const KEY = `ph_${'Crash0Key0'.repeat(4)}`;

const dataDir = mkdtempSync(path.join(tmpdir(), 'posthorn-pgcrash-'));
let start: Proc | null = null;

afterAll(async () => {
  await stopGracefully(start);
  await killAll();
  removeDataDir(dataDir);
}, 60_000);

describe('posthorn start with its embedded PostgreSQL killed mid-drain', () => {
  it('restarts the server; the API is back within 15 s and every task succeeds', async () => {
    // 10 ms per request: the drain lasts long enough to be interrupted.
    const sink = await startSink(() => ({ status: 200, body: 'ok', delayMs: 10 }));
    try {
      const pgPort = await freePort();
      start = spawnPosthorn(['start'], {
        ...baseEnv('DATABASE_URL', 'POSTHORN_BOOTSTRAP_KEY', 'PORT', 'HOST'),
        POSTHORN_DATA_DIR: dataDir,
        POSTHORN_PG_PORT: String(pgPort),
        POSTHORN_BOOTSTRAP_KEY: KEY,
        PORT: String(await freePort()),
        POSTHORN_METRICS_PORT: '0',
        POSTHORN_WORKERS: String(WORKERS),
        POSTHORN_WORKER_CONCURRENCY: String(CONCURRENCY),
        POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
        // Claims whose answer was lost with the server are rescued after this.
        POSTHORN_LEASE_MS: '5000',
      });
      const url = (await start.waitForOutput(/^posthorn ready url=(\S+)$/m, 120_000))[1]!;
      const call = api(url, KEY);
      const clusterDir = path.join(dataDir, 'pg');
      const databaseUrl = `postgres://postgres:${readFileSync(path.join(dataDir, 'pg-password'), 'utf8').trim()}@127.0.0.1:${pgPort}/posthorn`;
      const before = await waitFor(() => (fleetPids(start!).length === WORKERS + 1 ? fleetPids(start!) : null), { what: 'the fleet' });
      await enqueueMany(call, sink.url, TASKS);

      await waitFor(() => sink.received.length >= TASKS / 4, { timeoutMs: 30_000, what: 'a quarter of the drain' });
      const pid = postmasterPid(clusterDir)!;
      const deliveredAtKill = deliveries(sink).tasks;
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');

      const apiMs = await apiBackAfter(call, killedAt, 15_000);
      expect(apiMs).toBeLessThan(15_000);
      // One line for the death, naming the signal; a new postmaster on the same data dir.
      await start.waitForOutput(/embedded PostgreSQL died; restarting/, 5000);
      const line = start.stdout.split('\n').find((l) => l.includes('embedded PostgreSQL died'))!;
      expect(JSON.parse(line)).toMatchObject({ pid, signal: 'SIGKILL', restart_in_ms: expect.any(Number) });
      const again = postmasterPid(clusterDir);
      expect(again && again !== pid && alive(again)).toBe(true);

      await allSucceeded(databaseUrl, TASKS, 40_000);
      const d = deliveries(sink);
      expect(d.tasks).toBe(TASKS);
      // The same gateway and workers throughout: nothing but PostgreSQL was restarted.
      expect(fleetPids(start), outputBeforeDeath(start.output)).toEqual(before);
      expect(start.output).not.toMatch(/child process died/);
      console.log(
        `embedded PostgreSQL SIGKILLed with ${deliveredAtKill}/${TASKS} delivered; API answering ${apiMs} ms after the kill; ` +
          `${d.extra} deliveries beyond one per task (bound: ${WORKERS} workers x ${CONCURRENCY} slots in flight)`,
      );
      // Only an attempt in flight at the kill can run twice: at most every slot of every worker.
      expect(d.extra).toBeLessThanOrEqual(WORKERS * CONCURRENCY);

      // And it still stops cleanly, the restarted server with it.
      start.proc.kill('SIGTERM');
      expect(await start.exited, start.output.slice(-2000)).toEqual({ code: 0, signal: null });
      expect(pgrepF(dataDir)).toEqual([]);
    } finally {
      await sink.close();
    }
  }, 180_000);
});
