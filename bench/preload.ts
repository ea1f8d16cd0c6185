// BENCH_PENDING and BENCH_HISTORY: rows put into tasks before anything is measured, by
// generate_series INSERTs (a million rows in seconds, not through the API), so the hot path is
// measured against a large table:
//   pending  tasks waiting for run_at, spread over the next 7 days (all in tasks_runnable, none
//            due during the run: the due rows are the ones the bench enqueues);
//   history  succeeded tasks with one attempt each, finished over the past 7 days (the default
//            retention), with UUIDv7 ids of their creation time, as the pruner expects.
// Then VACUUM ANALYZE, the state autovacuum keeps a table in (migration 013).
import type { Sql } from '../shared/db.ts';

const COLUMNS = `id, team_id, status, url, method, headers, body, body_is_json, run_at, max_retries,
  min_backoff_ms, max_backoff_ms, timeout_ms, label, traceparent`;
const BATCH = 100_000; // rows per INSERT: one statement's memory stays small

export async function preload(sql: Sql, o: { teamId: string; url: string; pending: number; history: number }): Promise<number> {
  const t0 = performance.now();
  const week = 7 * 86_400;
  for (let from = 0; from < o.pending; from += BATCH) {
    const to = Math.min(o.pending, from + BATCH) - 1;
    await sql.unsafe(
      `insert into tasks (${COLUMNS})
       select uuidv7(), $1, 'pending', $2, 'POST', '{}', '{"event":"preload"}', true,
         now() + interval '1 hour' + (g % ${week}) * interval '1 second', 8, 10000, 3600000, 30000, 'bench-pending',
         '00-' || md5(g::text) || '-' || left(md5(g::text || 'x'), 16) || '-01'
       from generate_series($3::int, $4::int) g`,
      [o.teamId, o.url, from, to],
    );
  }
  for (let from = 0; from < o.history; from += BATCH) {
    const to = Math.min(o.history, from + BATCH) - 1;
    // Spread evenly over the week: row g was created (g / history) of a week ago, and finished 5 ms later.
    await sql.unsafe(
      `with h as (
         insert into tasks (${COLUMNS}, attempts, started_at, created_at, finished_at)
         select uuidv7(-ago), $1, 'succeeded', $2, 'POST', '{}', '{"event":"history"}', true, now() - ago, 8, 10000, 3600000,
           30000, 'bench-history', '00-' || md5(g::text) || '-' || left(md5(g::text || 'x'), 16) || '-01',
           1, now() - ago, now() - ago, now() - ago + interval '5 milliseconds'
         from generate_series($3::int, $4::int) g, lateral (select (g::float8 / $5) * interval '7 days' as ago) a
         returning id, team_id, started_at, finished_at)
       insert into task_attempts (task_id, attempt, team_id, started_at, finished_at, duration_ms, outcome, status_code,
         response_headers, response_body)
       select id, 1, team_id, started_at, finished_at, 5, 'success', 200, '{"content-type":"text/plain"}', 'ok' from h`,
      [o.teamId, o.url, from, to, o.history],
    );
  }
  if (o.pending + o.history > 0) await sql.unsafe('vacuum (analyze) tasks, task_attempts');
  return (performance.now() - t0) / 1000;
}
