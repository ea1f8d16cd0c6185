// The leader's fleet-wide task counts (worker/maintenance/task-counts.ts): exact for the live
// statuses, planner estimates for the finished ones, and no read of the whole table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTasks } from '../worker/maintenance/task-counts.ts';
import { createTestDb, seedTeam, type TestDb } from './helpers/db.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
  const { teamId } = await seedTeam(db.sql);
  // 60 succeeded, 30 failed, 10 canceled, 4 pending due, 2 pending an hour ahead, 3 retrying, 5 running.
  const plan: [string, number, string][] = [
    ['succeeded', 60, '-1 hour'],
    ['failed', 30, '-1 hour'],
    ['canceled', 10, '-1 hour'],
    ['pending', 4, '-30 seconds'],
    ['pending', 2, '1 hour'],
    ['retrying', 3, '10 minutes'],
    ['running', 5, '-1 minute'],
  ];
  for (const [status, n, offset] of plan) {
    await db.sql`
      insert into tasks (id, team_id, status, url, method, run_at, max_retries, min_backoff_ms, max_backoff_ms, timeout_ms,
        lease_expires_at, finished_at)
      select gen_random_uuid(), ${teamId}, ${status}, 'https://example.com/x', 'POST', now() + ${offset}::interval, 3, 1000, 60000, 30000,
        case when ${status} = 'running' then now() + interval '30 seconds' end,
        case when ${status} in ('succeeded', 'failed', 'canceled') then now() end
      from generate_series(1, ${n})`;
  }
});
afterAll(() => db.drop());

const expected = { pending: 4, scheduled: 2, retrying: 3, running: 5, succeeded: 60, failed: 30, canceled: 10 };

describe('task counts', () => {
  it('counts exactly on a small table', async () => {
    const c = await countTasks(db.sql);
    expect(c.byStatus).toEqual(expected);
    // The oldest due task came due 30 s ago.
    expect(c.oldestDueSeconds).toBeGreaterThanOrEqual(30);
    expect(c.oldestDueSeconds).toBeLessThan(300);
  });

  it('estimates the finished statuses from ANALYZE statistics on a large one', async () => {
    await db.sql`analyze tasks`;
    // exactBelowRows 0: the path a table of millions takes. ANALYZE read every row of this small
    // table, so the estimate is exact here; on a large one it is a sample's share × reltuples.
    const c = await countTasks(db.sql, { exactBelowRows: 0 });
    expect(c.byStatus).toEqual(expected);
  });

  it('the live counts use the partial indexes, not a scan of the table', async () => {
    // On a table this small the planner would rightly pick a sequential scan; forbidding it shows
    // the queries match the indexes' predicates, which is what keeps them cheap on a big table.
    const plans = await db.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      const runnable = await tx`explain select status, count(*) from tasks where status in ('pending', 'retrying') group by status`;
      const leased = await tx`explain select count(*) from tasks where status = 'running'`;
      const oldest = await tx`explain select min(run_at) from tasks where status in ('pending', 'retrying') and run_at <= now()`;
      return [runnable, leased, oldest].map((rows) => rows.map((r) => r['QUERY PLAN']).join('\n'));
    });
    expect(plans[0]).toContain('tasks_runnable');
    expect(plans[1]).toContain('tasks_leased');
    expect(plans[2]).toContain('tasks_runnable');
    for (const p of plans) expect(p).not.toMatch(/Seq Scan/);
  });
});
