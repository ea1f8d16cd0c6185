// Waiting for the drain to finish, cheaply and boundedly: first on the sink's receipt count (no
// database load at all), then on a count of unfinished rows through the partial indexes. A run
// that makes no progress for stallS ends early, and the stuck rows are described.
import { performance } from 'node:perf_hooks';
import type { Sql } from '../shared/db.ts';
import { type Sink, sleep } from './harness.ts';

export type DrainOutcome = {
  /** performance.now() when nothing due was left; NaN when that never happened. */
  endedAt: number;
  stalled: boolean;
  succeeded: number;
  status: Record<string, number>;
  /** A few groups of unfinished rows (status, attempts, what the attempts said), when any. */
  stuck: Record<string, unknown>[];
};

export async function waitForDrain(o: {
  sql: Sql;
  sink: Sink;
  label: string;
  expected: number;
  deadline: number;
  stallS: number;
}): Promise<DrainOutcome> {
  const { sql, sink } = o;
  let lastSeen = -1;
  let lastProgress = performance.now();
  const stalled = (seen: number) => {
    if (seen !== lastSeen) [lastSeen, lastProgress] = [seen, performance.now()];
    return performance.now() - lastProgress > o.stallS * 1000;
  };
  let stall = false;
  while (sink.receipts.size < o.expected && performance.now() < o.deadline) {
    if ((stall = stalled(sink.receipts.size))) break;
    await sleep(50);
  }
  // Finished when nothing due is left: running rows, and runnable rows due within 30 minutes
  // (the bench's warm-up, batch and baseline rows are an hour or more ahead). Both counts use
  // the partial indexes, so polling stays cheap however large the table is.
  const unfinished = async () =>
    Number(
      (
        await sql`
        select (select count(*) from tasks where status = 'running')
             + (select count(*) from tasks where status in ('pending', 'retrying') and run_at < now() + interval '30 minutes') as n`
      )[0]!.n,
    );
  let endedAt = NaN;
  lastSeen = -1;
  while (!stall && performance.now() < o.deadline) {
    const left = await unfinished();
    if (left === 0) {
      endedAt = performance.now();
      break;
    }
    if ((stall = stalled(left))) break;
    await sleep(25);
  }
  const rows = await sql`select status, count(*)::int as n from tasks where label = ${o.label} group by status order by status`;
  const status: Record<string, number> = Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
  const succeeded = status.succeeded ?? 0;
  const stuck =
    succeeded < o.expected
      ? [
          ...(await sql`
            select t.status, t.attempts, t.locked_by is not null as locked, t.lease_expires_at > now() as lease_live,
              (select string_agg(a.outcome || coalesce(' ' || a.status_code, '') || coalesce(' ' || left(a.error, 60), ''), '; ' order by a.attempt)
               from task_attempts a where a.team_id = t.team_id and a.task_id = t.id) as attempts_said,
              count(*)::int as n
            from tasks t where t.label = ${o.label} and t.status <> 'succeeded'
            group by 1, 2, 3, 4, 5 order by n desc limit 10`),
        ]
      : [];
  return { endedAt, stalled: stall, succeeded, status, stuck };
}
