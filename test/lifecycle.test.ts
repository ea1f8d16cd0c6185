// The task lifecycle (shared/tasks.ts) against the database: the table accepts exactly the
// statuses the code knows, finished_at is set exactly on terminal tasks (migration 005) and the
// API's cancel and replay keep it so, and the leader's services report what a pass did.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../shared/ids.ts';
import { TASK_STATUSES, type TaskStatus, TERMINAL_STATUSES } from '../shared/tasks.ts';
import { createPruner } from '../worker/maintenance/pruner.ts';
import { createRescuer } from '../worker/maintenance/rescuer.ts';
import { claimTasks } from '../worker/producer.ts';
import { startHarness } from './helpers/harness.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
const logger = pino({ level: 'silent' });
const DAY = 86_400_000;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

/** A task row written by hand, bypassing every code path: only the table's constraints judge it. */
function insertRow(status: string, finished: boolean, o: { createdMs?: number; finishedMs?: number } = {}) {
  const id = uuidv7(o.createdMs ?? Date.now());
  const finishedAt = finished ? new Date(o.finishedMs ?? Date.now()) : null;
  return h.sql`
    insert into tasks (id, team_id, status, url, method, run_at, max_retries, min_backoff_ms, max_backoff_ms, timeout_ms, finished_at)
    values (${id}, ${h.team.teamId}, ${status}, 'http://127.0.0.1:9/never', 'POST', now() + interval '1 day', 0, 0, 0, 1000, ${finishedAt})
    returning id`.then(([r]) => r!.id as string);
}

const terminal = (s: TaskStatus) => (TERMINAL_STATUSES as readonly string[]).includes(s);

describe('task lifecycle in the database', () => {
  it('accepts every TaskStatus with finished_at set exactly when it is terminal, and nothing else', async () => {
    for (const status of TASK_STATUSES) {
      await expect(insertRow(status, terminal(status)), status).resolves.toMatch(/^[0-9a-f-]{36}$/);
      await expect(insertRow(status, !terminal(status)), status).rejects.toMatchObject({
        code: '23514',
        constraint_name: 'tasks_finished_at_terminal',
      });
    }
    await expect(insertRow('scheduled', false)).rejects.toMatchObject({ code: '23514' });
  });

  it('a cancel sets finished_at (terminal at once), a replay clears it', async () => {
    const id = await h.enqueue({ url: 'http://127.0.0.1:9/later', delay: '1h' });
    expect((await h.task(id)).finished_at).toBeNull();
    const canceled = await h.api('DELETE', `/api/v1/tasks/${id}`);
    expect(canceled.body).toMatchObject({ status: 'canceled', finished_at: expect.any(String) });
    expect((await h.api('POST', `/api/v1/tasks/${id}/replay`)).status).toBe(202);
    expect(await h.task(id)).toMatchObject({ status: 'pending', finished_at: null });
    expect((await h.api('DELETE', `/api/v1/tasks/${id}`)).status).toBe(200); // not left for the rescuer test to claim
  });
});

describe('leader services report what a pass did', () => {
  it('the pruner counts the finished tasks past the retention it deleted, and keeps the rest', async () => {
    const old = Date.now() - 10 * DAY;
    const gone = await insertRow('succeeded', true, { createdMs: old, finishedMs: old });
    const recent = await insertRow('failed', true, { createdMs: old, finishedMs: Date.now() });
    const waiting = await insertRow('pending', false, { createdMs: old });
    const pruner = createPruner({ sql: h.sql, logger, retentionHours: 168, now: Date.now });
    expect(await pruner.runOnce()).toEqual({ tasks: 1, idempotency_keys: 0, events: 0, channel_deliveries: 0 });
    expect(await pruner.runOnce()).toEqual({ tasks: 0, idempotency_keys: 0, events: 0, channel_deliveries: 0 });
    const left = await h.sql<{ id: string }[]>`select id from tasks where id in (${gone}, ${recent}, ${waiting})`;
    expect(left.map((r) => r.id).sort()).toEqual([recent, waiting].sort());
  });

  it('the rescuer counts the expired leases it gave back', async () => {
    const id = await h.enqueue({ url: 'http://127.0.0.1:9/lost' });
    const [claimed] = await claimTasks(h.sql, { workerId: 'gone', limit: 1, leaseMs: 1 });
    expect(claimed!.id).toBe(id);
    await h.sql`update tasks set lease_expires_at = now() - interval '1 second' where id = ${id}`;
    const rescuer = createRescuer({ sql: h.sql, logger, leaseMs: 1000 });
    expect(rescuer.intervalMs).toBe(500);
    expect(await rescuer.runOnce()).toEqual({ rescued: 1 });
    expect(await rescuer.runOnce()).toEqual({ rescued: 0 });
    expect(await h.task(id)).toMatchObject({ status: 'pending', finished_at: null, attempts: 1 });
  });
});
