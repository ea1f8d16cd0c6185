// Fleet-wide task counts for the posthorn_tasks gauge, computed on the leader when scraped and
// kept 5 s, so any number of scrapers cost at most one pass per 5 s.
//
// The tasks table holds every finished task for the retention (7 days by default): millions of
// rows. A count(*) over it each scrape would read all of them. Instead:
//   - pending, scheduled and retrying are counted on the tasks_runnable partial index and
//     running on tasks_leased: their cost follows the live backlog, not the history;
//   - succeeded, failed and canceled are estimated from the planner's statistics (the table's
//     row estimate × each status's share from ANALYZE): no table read at all, as fresh as the
//     last autovacuum/autoanalyze. A status too rare to be among ANALYZE's most common values
//     reads 0. Below 100k rows (by the same estimate, or never analysed) they are counted
//     exactly instead: a few milliseconds, and small tables often have no statistics yet.
// The oldest due task's age reads the first entry of tasks_runnable.
import type { Sql } from '../../shared/db.ts';
import type { TaskCounts } from '../../shared/metrics.ts';

const TERMINAL = ['succeeded', 'failed', 'canceled'];

export async function countTasks(sql: Sql, o: { exactBelowRows?: number } = {}): Promise<TaskCounts> {
  const [{ rows }] = await sql<{ rows: number }[]>`select reltuples::float8 as rows from pg_class where oid = 'tasks'::regclass`;
  const exact = rows < (o.exactBelowRows ?? 100_000);
  const [live, terminal, [oldest]] = await Promise.all([
    sql<{ status: string; due: string; later: string }[]>`
      select status, count(*) filter (where run_at <= now()) as due, count(*) filter (where run_at > now()) as later
      from tasks where status in ('pending', 'retrying') group by status
      union all
      select 'running', count(*), 0 from tasks where status = 'running'`,
    exact
      ? sql<{ status: string; n: number }[]>`select status, count(*) as n from tasks where status = any(${TERMINAL}) group by status`
      : sql<{ status: string; n: number }[]>`
      select s.status, greatest(c.reltuples, 0) * s.freq as n
      from pg_class c
      cross join lateral (
        select unnest(st.most_common_vals::text::text[]) as status, unnest(st.most_common_freqs) as freq
        from pg_stats st
        where st.schemaname = current_schema() and st.tablename = 'tasks' and st.attname = 'status'
      ) s
      where c.oid = 'tasks'::regclass and s.status = any(${TERMINAL})`,
    sql<{ age: number | null }[]>`
      select extract(epoch from now() - min(run_at))::float8 as age
      from tasks where status in ('pending', 'retrying') and run_at <= now()`,
  ]);
  const counts: Record<string, number> = { pending: 0, scheduled: 0, retrying: 0, running: 0, succeeded: 0, failed: 0, canceled: 0 };
  for (const r of live) {
    // A retrying task waiting out its backoff is "retrying"; a pending one with run_at ahead is "scheduled" (docs/api.md).
    if (r.status === 'pending') {
      counts.pending = Number(r.due);
      counts.scheduled = Number(r.later);
    } else counts[r.status] = Number(r.due) + Number(r.later);
  }
  for (const r of terminal) counts[r.status] = Math.round(Number(r.n));
  return { byStatus: counts, oldestDueSeconds: Math.max(0, oldest?.age ?? 0) };
}

/** countTasks at most once per `maxAgeMs`, one pass at a time. */
export function cachedTaskCounts(sql: Sql, maxAgeMs = 5000, now = Date.now) {
  let last: { at: number; value: TaskCounts } | null = null;
  let pending: Promise<TaskCounts> | null = null;
  return async (): Promise<TaskCounts> => {
    if (last && now() - last.at < maxAgeMs) return last.value;
    pending ??= countTasks(sql)
      .then((value) => {
        last = { at: now(), value };
        return value;
      })
      .finally(() => {
        pending = null;
      });
    return pending;
  };
}
