// Leases: a claimed task belongs to its worker until lease_expires_at. The worker extends its
// leases while it runs (heartbeat), so POSTHORN_LEASE_MS bounds how long a dead worker's tasks
// wait, not how long a request may take (timeouts go up to 15 min).
import type { Sql } from '../../shared/db.ts';
import { TASK_NOTIFY_CHANNEL } from '../../shared/tasks.ts';

/**
 * Extends the leases of the attempts this worker is still running (by id, not "all my rows":
 * a task whose completion could not be written is no longer in `running` and must be let
 * expire, so the rescuer gives it back). SKIP LOCKED: a row the completer is writing is
 * skipped this round rather than waited for. Waiting deadlocked against completion batches
 * that lock the same rows in another order (40P01, seen in 3 of 6 bench runs at a 1.5 s lease).
 */
export async function extendLeases(sql: Sql, workerId: string, leaseMs: number, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const res = await sql`
    with mine as (
      select id from tasks
      where id = any(${ids}::uuid[]) and status = 'running' and locked_by = ${workerId}
      for update skip locked
    )
    update tasks t set lease_expires_at = now() + ${leaseMs} * interval '1 millisecond'
    from mine where t.id = mine.id`;
  return res.count;
}

/**
 * Tasks whose lease expired go back to pending (or to failed when their retries are spent).
 * The lost attempt is recorded as a network_error, so history shows what happened; the late
 * result of that attempt, should its worker come back, no longer matches the lease token.
 */
export async function rescueExpiredLeases(sql: Sql, limit = 1000): Promise<number> {
  const rows = await sql`
    with expired as (
      select id from tasks
      where status = 'running' and lease_expires_at < now()
      order by lease_expires_at
      limit ${limit}
      for update skip locked
    ), upd as (
      update tasks t set
        status = case when t.attempts - t.retry_base > t.max_retries then 'failed' else 'pending' end,
        finished_at = case when t.attempts - t.retry_base > t.max_retries then now() end,
        run_at = now(), lease_token = null, lease_expires_at = null, locked_by = null
      from expired where t.id = expired.id
      returning t.id, t.team_id, t.attempts, t.started_at, t.status
    ), att as (
      insert into task_attempts (task_id, attempt, team_id, started_at, finished_at, duration_ms, outcome, error)
      select id, attempts, team_id, coalesce(started_at, now()), now(),
        greatest(0, extract(epoch from now() - coalesce(started_at, now())) * 1000)::int,
        'network_error', 'lease expired: the worker running this attempt stopped answering'
      from upd
      on conflict (task_id, attempt) do nothing
    ), wake as (
      select pg_notify(${TASK_NOTIFY_CHANNEL}, '') from upd where status = 'pending' limit 1
    )
    select count(*)::int as n, (select count(*) from wake) as woke from upd`;
  return rows[0]!.n as number;
}

/**
 * On shutdown, tasks whose attempt was aborted go straight back to pending without using up an
 * attempt: they were never really tried.
 */
export async function releaseTasks(sql: Sql, leases: { id: string; token: string }[]): Promise<number> {
  if (leases.length === 0) return 0;
  const res = await sql`
    update tasks t set status = 'pending', attempts = t.attempts - 1, run_at = now(),
      lease_token = null, lease_expires_at = null, locked_by = null
    from jsonb_to_recordset(${sql.json(leases as any)}::jsonb) as v(id uuid, token uuid)
    where t.id = v.id and t.lease_token = v.token and t.status = 'running'`;
  return res.count;
}
