// The rescuer (leader only): a task whose lease expired goes back to pending, or to failed
// when its retries are spent. A lease expires when its worker died or stopped answering (the
// heartbeat, worker/leases.ts, keeps a live worker's leases fresh).
import type { Queryable } from '../../shared/db.ts';
import type { Logger } from '../../shared/logger.ts';
import { leaseCleared, notifyWorkers } from '../../shared/tasks.ts';
import { heartbeatIntervalMs } from '../leases.ts';
import { createService } from './service.ts';

/**
 * Half the lease, within [200 ms, 5 s]: a dead worker's tasks wait at most lease + this, and a
 * short test lease does not make the rescuer spin.
 */
export const rescuerIntervalMs = (leaseMs: number) => Math.max(200, Math.min(5000, Math.floor(leaseMs / 2)));

/** Rows per pass: one statement, so a fleet-wide crash is rescued in a few passes. */
export const RESCUE_BATCH = 1000;

/**
 * Rescues up to `limit` expired leases and returns how many. The lost attempt is recorded as
 * a network_error, so history shows what happened; the late result of that attempt, should its
 * worker come back, no longer matches the lease token.
 */
export async function rescueExpiredLeases(sql: Queryable, limit = RESCUE_BATCH): Promise<number> {
  const rows = await sql<{ n: number }[]>`
    with expired as (
      select team_id, id from tasks
      where status = 'running' and lease_expires_at < now()
      order by lease_expires_at
      limit ${limit}
      for update skip locked
    ), upd as (
      update tasks t set
        status = case when t.attempts - t.retry_base > t.max_retries then 'failed' else 'pending' end,
        finished_at = case when t.attempts - t.retry_base > t.max_retries then now() end,
        run_at = now(), ${leaseCleared(sql)}
      from expired where t.team_id = expired.team_id and t.id = expired.id
      returning t.id, t.team_id, t.attempts, t.started_at, t.status
    ), att as (
      insert into task_attempts (task_id, attempt, team_id, started_at, finished_at, duration_ms, outcome, error)
      select id, attempts, team_id, coalesce(started_at, now()), now(),
        greatest(0, extract(epoch from now() - coalesce(started_at, now())) * 1000)::int,
        'network_error', 'lease expired: the worker running this attempt stopped answering'
      from upd
      on conflict (team_id, task_id, attempt) do nothing
    ), wake as (
      ${notifyWorkers(sql)} from upd where status = 'pending' limit 1
    )
    select count(*)::int as n, (select count(*) from wake) as woke from upd`;
  return rows[0]!.n;
}

export function createRescuer(o: { sql: Queryable; logger: Logger; leaseMs: number; intervalMs?: number }) {
  return createService({
    name: 'rescuer',
    intervalMs: o.intervalMs ?? rescuerIntervalMs(o.leaseMs),
    // A newly elected leader first lets one lease heartbeat pass (a third of the lease). After a
    // database restart (the usual reason for a new leader) leases ran out while no worker could
    // extend them; live workers extend theirs, and write the outcomes they held
    // (worker/outcome-buffer.ts), on their first heartbeat. Rescuing before that delivered those
    // tasks a second time. A dead worker's leases are not delayed by this: they run out a whole
    // lease after its last heartbeat, long after an election that takes at most 2 s.
    startDelayMs: heartbeatIntervalMs(o.leaseMs),
    logger: o.logger,
    runOnce: async () => ({ rescued: await rescueExpiredLeases(o.sql) }),
    report: (r) => r.rescued > 0 && o.logger.info(r, 'rescued tasks whose lease expired'),
    trace: { span: 'posthorn.rescue', attributes: (r) => (r.rescued > 0 ? { 'posthorn.rescued': r.rescued } : null) },
  });
}
