// Leader failover with real processes: 3 workers, a schedule every second, the leader
// SIGKILLed again and again. Ticks keep coming (no gap longer than the failover bound) and no
// scheduled_for appears twice.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LEADER_LOCK } from '../worker/maintenance/elector.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { baseEnv, killAll, type Proc, spawnPosthorn } from './helpers/proc.ts';
import { startSink } from './helpers/sink.ts';

const FAILOVER_BOUND_MS = 10_000; // issue #3: another worker takes over within 10 s
const KILLS = 3;

let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;
const workers = new Map<number, Proc>();

function spawnWorker() {
  const p = spawnPosthorn(['worker'], {
    ...baseEnv('DATABASE_URL'),
    DATABASE_URL: h.db.url,
    POSTHORN_LEASE_MS: '2000',
    POSTHORN_POLL_INTERVAL_MS: '100',
    POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
    POSTHORN_METRICS_PORT: '0',
    POSTHORN_LOG_LEVEL: 'info',
    POSTHORN_WORKER_CONCURRENCY: '8',
  });
  workers.set(p.pid, p);
  return p;
}

/** The pid of the worker process holding the leader lock, from pg_locks (application_name carries the pid). */
async function leaderPid(): Promise<number | null> {
  const rows = await h.sql`
    select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.objid = ${LEADER_LOCK} and l.granted
      and l.database = (select oid from pg_database where datname = current_database())`; // other files' leaders share the server
  const m = rows[0] ? /posthorn-worker-(\d+)/.exec(rows[0].application_name as string) : null;
  return m ? Number(m[1]) : null;
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  sink = await startSink();
  for (let i = 0; i < 3; i++) spawnWorker();
  await Promise.all([...workers.values()].map((w) => w.waitForOutput(/worker started/)));
});
afterAll(async () => {
  await killAll();
  await sink?.close();
  await h?.close();
});

it('ticks keep coming through repeated leader kills, each tick exactly once', async () => {
  const r = await h.api('POST', '/api/v1/schedules', { name: 'heartbeat', cron: '* * * * * *', url: `${sink.url}/tick` });
  expect(r.status).toBe(201);
  const scheduleId = r.body.id;
  await waitFor(() => sink.received.length >= 2, { what: 'first ticks', timeoutMs: 10_000 });

  const killed: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    const pid = await waitFor(leaderPid, { what: 'a leader', timeoutMs: FAILOVER_BOUND_MS });
    const leader = workers.get(pid);
    expect(leader, `leader pid ${pid} is one of ours`).toBeDefined();
    await leader!.waitForOutput(/became leader/, 5000); // the lock shows before the log line is read
    await new Promise((res) => setTimeout(res, 1500)); // let it lead for a moment
    leader!.proc.kill('SIGKILL');
    await leader!.exited;
    killed.push(pid);
    workers.delete(pid);
    spawnWorker(); // keep three
    const next = await waitFor(
      async () => {
        const p = await leaderPid();
        return p && p !== pid ? p : null;
      },
      { what: 'a new leader', timeoutMs: FAILOVER_BOUND_MS },
    );
    expect(next).not.toBe(pid);
  }
  await new Promise((res) => setTimeout(res, 2500)); // ticks after the last failover

  const ticks =
    await h.sql`select scheduled_for from tasks where schedule_id = ${scheduleId} and scheduled_for is not null order by scheduled_for`;
  const times = ticks.map((t) => (t.scheduled_for as Date).getTime());
  expect(new Set(times).size).toBe(times.length); // no tick twice
  expect(times.length).toBeGreaterThanOrEqual(8);
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  expect(Math.max(...gaps)).toBeLessThanOrEqual(FAILOVER_BOUND_MS);
  expect(killed).toHaveLength(KILLS);

  // Every tick's task is delivered (tasks held by a killed worker come back after the 2 s lease).
  await waitFor(
    async () => {
      const [row] = await h.sql`select count(*)::int as n from tasks where schedule_id = ${scheduleId} and status <> 'succeeded'`;
      return row!.n === 0;
    },
    { what: 'every tick delivered', timeoutMs: 20_000 },
  );
  const delivered = new Set(sink.received.map((r) => r.headers['x-posthorn-task-id']));
  expect(delivered.size).toBeGreaterThanOrEqual(times.length);
});
