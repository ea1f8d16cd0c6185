// The completer holds an outcome the database could not take because it was away, and writes it
// when the database answers (worker/outcome-buffer.ts, docs/reliability.md). The database goes
// away for the completer only: its pool reaches the test PostgreSQL through a TCP proxy that the
// test cuts and restores. The lease guard still wins over a held outcome; the bound and close()
// give outcomes up (at least once); an error that is not an outage is not held.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnavailableError } from '../shared/errors.ts';
import { type Completion, createCompleter } from '../worker/completer.ts';
import type { AttemptResult } from '../worker/executor.ts';
import { rescueExpiredLeases } from '../worker/maintenance/rescuer.ts';
import { claimTasks } from '../worker/producer.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { poolViaProxy } from './helpers/tcp-proxy.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
let via: Awaited<ReturnType<typeof poolViaProxy>>;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  via = await poolViaProxy(h.db.url);
});

afterAll(async () => {
  await via?.close();
  await h?.close();
});

async function claimOne(): Promise<Completion> {
  const r = await h.api('POST', '/api/v1/queue', { url: 'http://127.0.0.1:9/held', body: 'x' });
  expect(r.status).toBe(202);
  const [task] = await claimTasks(h.sql, { workerId: 'outcome-test', limit: 1, leaseMs: 60_000 });
  expect(task?.id).toBe(r.body.id);
  const now = new Date();
  const result: AttemptResult = {
    outcome: 'success',
    statusCode: 200,
    responseHeaders: { 'content-type': 'text/plain' },
    responseBody: 'ok',
    responseEncoding: null,
    responseTruncated: false,
    error: null,
    startedAt: now,
    finishedAt: now,
  };
  return { task: task!, result, plan: { status: 'succeeded' } };
}

const taskRow = async (id: string) =>
  (
    await h.sql`select status, attempts, (select count(*)::int from task_attempts a where a.task_id = t.id) as rows from tasks t where id = ${id}`
  )[0];

describe('outcomes while the database is away', () => {
  it('are held and written when it answers: the task succeeds once, with one attempt', async () => {
    const completer = createCompleter(via.sql);
    const c = await claimOne();
    await via.proxy.down();
    const done = completer.add(c);
    await waitFor(() => completer.held().count === 1, { timeoutMs: 10_000, what: 'the outcome held' });
    expect(await taskRow(c.task.id)).toMatchObject({ status: 'running', rows: 0 });
    await new Promise((r) => setTimeout(r, 1500)); // several retries fail meanwhile
    expect(completer.held().count).toBe(1);
    await via.proxy.up();
    expect(await done).toMatchObject({ written: true, status: 'succeeded' });
    expect(completer.held()).toEqual({ count: 0, bytes: 0 });
    expect(await taskRow(c.task.id)).toMatchObject({ status: 'succeeded', attempts: 1, rows: 1 });
  });

  it('lose to the lease guard when the task was rescued meanwhile', async () => {
    const completer = createCompleter(via.sql);
    const c = await claimOne();
    await via.proxy.down();
    const done = completer.add(c);
    await waitFor(() => completer.held().count === 1, { timeoutMs: 10_000, what: 'the outcome held' });
    // The lease runs out while the worker cannot reach the database; the leader gives it back.
    await h.sql`update tasks set lease_expires_at = now() - interval '1 second' where id = ${c.task.id}`;
    expect(await rescueExpiredLeases(h.sql)).toBe(1);
    await via.proxy.up();
    expect(await done).toEqual({ written: false });
    // Pending for another attempt; attempt 1 is the rescuer's record, not the held success.
    expect(await taskRow(c.task.id)).toMatchObject({ status: 'pending', rows: 1 });
    const [att] = await h.sql`select outcome from task_attempts where task_id = ${c.task.id}`;
    expect(att!.outcome).toBe('network_error');
    expect((await h.api('DELETE', `/api/v1/tasks/${c.task.id}`)).status).toBe(200); // out of the next claims
  });

  it('past the bound an outcome is not held: its write fails at once, as without the buffer', async () => {
    const completer = createCompleter(via.sql, { hold: { maxBytes: 100 } });
    const c = await claimOne();
    await via.proxy.down();
    try {
      const err = await completer.add(c).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isUnavailableError(err), String(err)).toBe(true);
      expect(completer.held().count).toBe(0);
    } finally {
      await via.proxy.up();
    }
    expect(await taskRow(c.task.id)).toMatchObject({ status: 'running' }); // its lease will expire
  });

  it('close() (the worker stopping) gives held outcomes up; an error that is not an outage is never held', async () => {
    const completer = createCompleter(via.sql);
    const c = await claimOne();
    await via.proxy.down();
    const done = completer.add(c).then(
      () => null,
      (e: unknown) => e,
    );
    await waitFor(() => completer.held().count === 1, { timeoutMs: 10_000, what: 'the outcome held' });
    completer.close();
    expect(isUnavailableError(await done)).toBe(true);
    expect(completer.held().count).toBe(0);
    await via.proxy.up();

    // A value PostgreSQL refuses (a lease token that is not a uuid): refused at once, not held.
    const other = createCompleter(via.sql);
    const bad = await claimOne();
    const err = await other.add({ ...bad, task: { ...bad.task, lease_token: 'not-a-uuid' } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as { code?: string }).code).toBe('22P02');
    expect(other.held().count).toBe(0);
  });
});
