// A worker's memory at full concurrency with the largest bodies: a real `posthorn worker`
// process with 64 slots, tasks whose bodies are 1 MiB (POSTHORN_MAX_BODY_BYTES' default), and a
// sink that holds every request until 64 are in flight at once. Not timed: it waits on the
// sink's count. The aim, held here: a peak RSS under 200 MB (PEAK_LIMIT_MB). Measured on
// 2026-11-30 (shared 2-core machine, 11 runs): idle 71-78 MB, 64 in flight 125-141 MB, peak
// 159-179 MB; before, idle 85 MB, 191-197 MB in flight and a peak of 247-256 MB (docs/bench.md,
// "Memory").
// What keeps it there: a claim leaves bodies over 64 KiB out and each attempt reads its own as
// bytes, 2 at a time (worker/claim.ts, worker/task-body.ts); a large body goes to the socket as
// 64 KiB views of that Buffer, let go once written (worker/request-body.ts), so 64 requests
// waiting on their answers hold no bodies. The rest of the peak is the idle worker and garbage
// not yet collected: the socket chunks postgres.js gathers each body from, and the bodies sent.
// The 64 MiB of bodies in flight may also cost at most 2.5 times their size over the idle
// worker (IN_FLIGHT_LIMIT_MB): measured 49-65 MB now, garbage included; 106-112 MB when each
// claimed task held its body as a string.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { taskInputSchema } from '../shared/schemas.ts';
import { buildTask, insertTasks, taskTraceparent } from '../shared/tasks.ts';
import { startHarness } from './helpers/harness.ts';
import { freePort, waitFor } from './helpers/net.ts';
import { killAll, spawnPosthorn, testWorkerEnv } from './helpers/proc.ts';

afterAll(killAll);

const SLOTS = 64;
const TASKS = SLOTS + 32; // a second claim refills the slots freed by the first wave
const BODY_BYTES = 1_048_576;
const PEAK_LIMIT_MB = 200;
const IN_FLIGHT_LIMIT_MB = (2.5 * SLOTS * BODY_BYTES) / 2 ** 20;

/** VmHWM (peak resident set) and VmRSS of a process, in MiB. */
function memoryMb(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

/** The V8 heap and external memory the worker reports on /metrics (prom-client's defaults), for the failure message. */
async function heapMb(port: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const v = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]) / 2 ** 20;
  return `heap used ${v('nodejs_heap_size_used_bytes').toFixed(0)} of ${v('nodejs_heap_size_total_bytes').toFixed(0)} MB, external ${v('nodejs_external_memory_bytes').toFixed(0)} MB`;
}

/** Reads each request's body whole (counting its bytes), then holds the answer until release(). */
async function startHoldingSink() {
  let held: ServerResponse[] = [];
  let holding = true;
  let bodies = 0;
  let bytes = 0;
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let n = 0;
    for await (const c of req) n += (c as Buffer).length;
    bodies++;
    bytes += n;
    if (holding) held.push(res);
    else res.end('ok');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get inFlight() {
      return held.length;
    },
    get bodies() {
      return bodies;
    },
    get bytes() {
      return bytes;
    },
    release() {
      holding = false;
      for (const r of held) r.end('ok');
      held = [];
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

describe.skipIf(process.platform !== 'linux')('worker memory (/proc)', () => {
  it(`${SLOTS} requests of 1 MiB bodies in flight cost under ${IN_FLIGHT_LIMIT_MB} MB; the peak stays under ${PEAK_LIMIT_MB} MB`, async () => {
    const h = await startHarness({ worker: false });
    const sink = await startHoldingSink();
    try {
      // A string body is sent as given: exactly 1 MiB, the most POSTHORN_MAX_BODY_BYTES allows by default.
      const body = 'x'.repeat(BODY_BYTES);
      for (let i = 0; i < TASKS; i += 8) {
        const batch = Array.from({ length: Math.min(8, TASKS - i) }, () =>
          buildTask(taskInputSchema.parse({ url: `${sink.url}/big`, body }), {
            teamId: h.team.teamId,
            traceparent: taskTraceparent(undefined),
          }),
        );
        await insertTasks(h.sql, batch);
      }
      const metricsPort = await freePort();
      const w = spawnPosthorn(
        ['worker'],
        testWorkerEnv(h.db.url, { POSTHORN_WORKER_CONCURRENCY: String(SLOTS), POSTHORN_METRICS_PORT: String(metricsPort) }),
        { ipc: true },
      );
      await w.ready;
      const idle = memoryMb(w.pid);
      // Every slot busy: 64 requests whose 1 MiB bodies have all arrived, none answered.
      await waitFor(() => sink.inFlight >= SLOTS, { timeoutMs: 90_000, intervalMs: 50, what: `${SLOTS} requests in flight` });
      const full = memoryMb(w.pid);
      const heap = await heapMb(metricsPort);
      expect(sink.bytes).toBeGreaterThanOrEqual(SLOTS * BODY_BYTES);
      sink.release();
      await waitFor(
        async () =>
          Number((await h.sql`select count(*)::int as n from tasks where team_id = ${h.team.teamId} and status = 'succeeded'`)[0]!.n) ===
          TASKS,
        { timeoutMs: 90_000, intervalMs: 100, what: `${TASKS} tasks succeeded` },
      );
      const after = memoryMb(w.pid);
      const report = `idle ${idle.now.toFixed(0)} MB, ${SLOTS} in flight ${full.now.toFixed(0)} MB (${heap}), peak ${after.peak.toFixed(0)} MB`;
      console.log(`worker memory: ${report}`);
      expect(sink.bodies).toBeGreaterThanOrEqual(TASKS);
      expect(full.now - idle.now, report).toBeLessThan(IN_FLIGHT_LIMIT_MB);
      expect(after.peak, report).toBeLessThan(PEAK_LIMIT_MB);
    } finally {
      await sink.close();
      await h.close();
    }
  }, 180_000);
});
