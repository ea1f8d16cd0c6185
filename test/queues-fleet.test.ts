// Queue limits across a fleet of 3 real `posthorn worker` processes and a target on 127.0.0.1
// that records every request's start, end and the requests in flight per queue (docs/queues.md):
// parallelism 1 and 3 never exceeded, FIFO kept through a retry, pacing at 5 per second, pause
// holds and resume releases, a flow key limits only its own tasks, and a worker SIGKILLed while
// it holds a FIFO queue's one slot lets the queue move on once its lease expires.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { killAll, type Proc, spawnPosthorn, testWorkerEnv } from './helpers/proc.ts';
import { type Behaviour, startRecordingTarget, type Visit } from './helpers/recording-target.ts';

type Harness = Awaited<ReturnType<typeof startHarness>>;
let h: Harness;
let workers: Proc[] = [];
const LEASE_MS = 2000;
// What the current test wants the target to do; each test sets its own.
let behave: (v: Visit) => Behaviour = () => ({});
let target: Awaited<ReturnType<typeof startRecordingTarget>>;

async function spawnWorker(): Promise<Proc> {
  const w = spawnPosthorn(['worker'], testWorkerEnv(h.db.url, { POSTHORN_LEASE_MS: String(LEASE_MS) }), { ipc: true });
  await w.ready;
  return w;
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  target = await startRecordingTarget((v) => behave(v));
  workers = await Promise.all([spawnWorker(), spawnWorker(), spawnWorker()]);
}, 60_000);
afterAll(async () => {
  await killAll();
  await target?.close();
  await h?.close();
});
afterEach(() => {
  behave = () => ({});
});

/** Enqueues in one batch (created_at in order) and returns the ids in order. */
async function enqueue(tasks: Record<string, unknown>[]): Promise<string[]> {
  const r = await h.api('POST', '/api/v1/queue/batch', { tasks });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return r.body.tasks.map((t: { id: string }) => t.id);
}

const succeeded = async (ids: string[]) => {
  const [{ n }] = await h.sql`select count(*)::int as n from tasks where id = any(${ids}::uuid[]) and status = 'succeeded'`;
  return n === ids.length;
};

describe('queues across 3 workers', () => {
  it('never runs more than parallelism at once: 1 (in created_at order) and 3', { timeout: 60_000 }, async () => {
    expect((await h.api('PUT', '/api/v1/queues/p1', { parallelism: 1 })).status).toBe(200);
    expect((await h.api('PUT', '/api/v1/queues/p3', { parallelism: 3 })).status).toBe(200);
    behave = () => ({ holdMs: 150 });
    const p1 = await enqueue(Array.from({ length: 10 }, (_, i) => ({ url: `${target.url}/p1/${i}`, queue: 'p1' })));
    const p3 = await enqueue(Array.from({ length: 15 }, (_, i) => ({ url: `${target.url}/p3/${i}`, queue: 'p3' })));
    await waitFor(() => succeeded([...p1, ...p3]), { timeoutMs: 40_000, what: 'both queues to drain' });
    expect(target.maxInFlight('p1')).toBe(1);
    expect(target.maxInFlight('p3')).toBeLessThanOrEqual(3);
    expect(target.maxInFlight('p3')).toBeGreaterThanOrEqual(2); // limited, not serialised
    expect(target.of('p1').map((v) => v.taskId)).toEqual(p1); // FIFO
  });

  it('keeps FIFO order through a retry: later tasks wait while the first is retrying', { timeout: 60_000 }, async () => {
    await h.api('PUT', '/api/v1/queues/fifo', { parallelism: 1 });
    behave = (v) => (v.path === '/fifo/0' && v.attempt === 1 ? { status: 503 } : {});
    const retry = { max_retries: 3, min_backoff_ms: 800, max_backoff_ms: 800 };
    const ids = await enqueue(Array.from({ length: 5 }, (_, i) => ({ url: `${target.url}/fifo/${i}`, queue: 'fifo', retry })));
    await waitFor(() => succeeded(ids), { timeoutMs: 40_000, what: 'the FIFO queue to drain' });
    const seen = target.of('fifo').map((v) => `${ids.indexOf(v.taskId)}#${v.attempt}`);
    // The first task's failed attempt, its retry ≥ 800 ms later, then the others in order.
    expect(seen).toEqual(['0#1', '0#2', '1#1', '2#1', '3#1', '4#1']);
    const v = target.of('fifo');
    expect(v[1]!.start - v[0]!.end!).toBeGreaterThanOrEqual(700);
  });

  it('paces 20 tasks at rate_per_second 5: between 3.5 s and 5.5 s from first to last start', { timeout: 60_000 }, async () => {
    await h.api('PUT', '/api/v1/queues/paced', { rate_per_second: 5 });
    const ids = await enqueue(Array.from({ length: 20 }, (_, i) => ({ url: `${target.url}/paced/${i}`, queue: 'paced' })));
    await waitFor(() => succeeded(ids), { timeoutMs: 30_000, what: 'the paced queue to drain' });
    const starts = target
      .of('paced')
      .map((v) => v.start)
      .sort((a, b) => a - b);
    expect(starts).toHaveLength(20);
    const span = starts[19]! - starts[0]!;
    expect(span).toBeGreaterThanOrEqual(3500);
    expect(span).toBeLessThanOrEqual(5500);
    // No burst: the closest two starts are well apart (200 ms apart at the claim; the target's
    // clock adds the request's own jitter).
    const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(120);
  });

  it('pause holds every attempt without using retries; resume releases them', { timeout: 60_000 }, async () => {
    await h.api('PUT', '/api/v1/queues/held', { paused: true, parallelism: 5 });
    const ids = await enqueue(Array.from({ length: 6 }, (_, i) => ({ url: `${target.url}/held/${i}`, queue: 'held' })));
    // Long enough for every worker to have polled many times (100 ms poll).
    await new Promise((r) => setTimeout(r, 1500));
    expect(target.of('held')).toHaveLength(0);
    const [{ attempts }] = await h.sql`select coalesce(sum(attempts), 0)::int as attempts from tasks where id = any(${ids}::uuid[])`;
    expect(attempts).toBe(0);
    const q = await h.api('GET', '/api/v1/queues/held');
    expect(q.body.counts.pending).toBe(6);
    expect(q.body.oldest_pending_age_ms).toBeGreaterThanOrEqual(1000);

    const resumedAt = Date.now();
    await h.api('PUT', '/api/v1/queues/held', { paused: false, parallelism: 5 });
    await waitFor(() => succeeded(ids), { timeoutMs: 20_000, what: 'the resumed queue to drain' });
    expect(target.of('held').every((v) => v.start >= resumedAt)).toBe(true);
    expect(target.of('held').every((v) => v.attempt === 1)).toBe(true);
  });

  it('a flow key limits only its own tasks', { timeout: 60_000 }, async () => {
    behave = () => ({ holdMs: 200 });
    const keyed = Array.from({ length: 6 }, (_, i) => ({
      url: `${target.url}/key1/${i}`,
      flow_control: { key: 'customer-1', parallelism: 1 },
    }));
    const keyed2 = Array.from({ length: 6 }, (_, i) => ({
      url: `${target.url}/key2/${i}`,
      flow_control: { key: 'customer-2', parallelism: 2 },
    }));
    const free = Array.from({ length: 12 }, (_, i) => ({ url: `${target.url}/nokey/${i}` }));
    const ids = await enqueue([...keyed, ...keyed2, ...free]);
    await waitFor(() => succeeded(ids), { timeoutMs: 40_000, what: 'keyed and free tasks to finish' });
    expect(target.maxInFlight('key1')).toBe(1);
    expect(target.maxInFlight('key2')).toBeLessThanOrEqual(2);
    expect(target.maxInFlight('nokey')).toBeGreaterThanOrEqual(3); // not held back by the keys
  });

  it('a worker SIGKILLed while it holds a FIFO slot: the queue moves on once the lease expires', { timeout: 90_000 }, async () => {
    await h.api('PUT', '/api/v1/queues/solo', { parallelism: 1 });
    // The first attempt of the first task hangs (its worker is killed meanwhile); all else is quick.
    behave = (v) => (v.path === '/solo/0' && v.attempt === 1 ? { holdMs: 60_000 } : {});
    const ids = await enqueue(Array.from({ length: 3 }, (_, i) => ({ url: `${target.url}/solo/${i}`, queue: 'solo' })));
    const first = ids[0]!;
    await waitFor(() => target.of('solo').length === 1, { timeoutMs: 15_000, what: 'the first attempt to arrive' });
    const [row] = await h.sql`select locked_by from tasks where id = ${first}`;
    const pid = Number(String(row!.locked_by).split(':').at(-2));
    const holder = workers.find((w) => w.pid === pid);
    expect(holder, `worker ${row!.locked_by}`).toBeDefined();
    holder!.proc.kill('SIGKILL');
    await holder!.exited;
    const killedAt = Date.now();
    workers = workers.filter((w) => w !== holder);
    await waitFor(() => succeeded(ids), { timeoutMs: 30_000, what: 'the queue to move on after the kill' });
    const after = target.of('solo').filter((v) => v.start >= killedAt);
    expect(after.map((v) => `${ids.indexOf(v.taskId)}#${v.attempt}`)).toEqual(['0#2', '1#1', '2#1']);
    // Within the lease, the rescuer's pass and a new leader's election (a few seconds).
    expect(after[0]!.start - killedAt).toBeLessThan(LEASE_MS + 10_000);
    // Nothing of the queue is left running: the dead worker's slot was its row, and it is free.
    const [{ n }] = await h.sql`select count(*)::int as n from tasks where queue = 'solo' and status = 'running'`;
    expect(n).toBe(0);
  });
});
