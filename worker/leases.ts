// A worker's own leases: a claimed task belongs to its worker until lease_expires_at. The
// worker extends its leases while it runs (the heartbeat), so POSTHORN_LEASE_MS bounds how
// long a dead worker's tasks wait, not how long a request may take (timeouts go up to 15 min).
// What happens to a lease nobody extends is the leader's rescuer (maintenance/rescuer.ts).
import type { Queryable } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import { leaseCleared } from '../shared/tasks.ts';

/** A third of the lease (at least 100 ms): two heartbeats can fail before a live worker loses its tasks. */
export const heartbeatIntervalMs = (leaseMs: number) => Math.max(100, Math.floor(leaseMs / 3));

/** A claimed task as the lease statements find it: by its key, team first (migration 014). */
export type LeaseRef = { team_id: string; id: string };

/**
 * Extends the leases of the attempts this worker is still running (by key, not "all my rows":
 * a task whose completion could not be written is no longer in `running` and must be let
 * expire, so the rescuer gives it back). SKIP LOCKED: a row the completer is writing is
 * skipped this round rather than waited for. Waiting deadlocked against completion batches
 * that lock the same rows in another order (40P01, seen in 3 of 6 bench runs at a 1.5 s lease).
 */
export async function extendLeases(sql: Queryable, workerId: string, leaseMs: number, tasks: LeaseRef[]): Promise<number> {
  if (tasks.length === 0) return 0;
  const res = await sql`
    with mine as (
      select team_id, id from tasks
      where (team_id, id) in (select * from unnest(${tasks.map((t) => t.team_id)}::bigint[], ${tasks.map((t) => t.id)}::uuid[]))
        and status = 'running' and locked_by = ${workerId}
      for update skip locked
    )
    update tasks t set lease_expires_at = now() + ${leaseMs} * interval '1 millisecond'
    from mine where t.team_id = mine.team_id and t.id = mine.id`;
  return res.count;
}

/**
 * Extends the running attempts' leases every heartbeatIntervalMs until stopped. After a failure
 * (the database away) it tries again every 250 ms rather than a third of the lease later: once
 * the database is back, leases that ran out meanwhile are extended before a new leader's
 * rescuer looks at them (worker/maintenance/rescuer.ts). One warning per outage, not per try.
 */
export function startHeartbeat(o: { sql: Queryable; workerId: string; leaseMs: number; running: () => LeaseRef[]; logger: Logger }) {
  const every = heartbeatIntervalMs(o.leaseMs);
  let failing = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const beat = () => {
    extendLeases(o.sql, o.workerId, o.leaseMs, o.running()).then(
      () => {
        failing = false;
        if (!stopped) timer = setTimeout(beat, every);
      },
      (err: unknown) => {
        if (!failing) o.logger.warn({ err }, 'lease heartbeat failed');
        failing = true;
        if (!stopped) timer = setTimeout(beat, Math.min(250, every));
      },
    );
  };
  timer = setTimeout(beat, every);
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * On shutdown, tasks whose attempt was aborted go straight back to pending without using up an
 * attempt: they were never really tried.
 */
export async function releaseTasks(sql: Queryable, leases: (LeaseRef & { token: string })[]): Promise<number> {
  if (leases.length === 0) return 0;
  const res = await sql`
    update tasks t set status = 'pending', attempts = t.attempts - 1, run_at = now(), ${leaseCleared(sql)}
    from jsonb_to_recordset(${sql.json(leases)}::jsonb) as v(team_id bigint, id uuid, token uuid)
    where t.team_id = v.team_id and t.id = v.id and t.lease_token = v.token and t.status = 'running'`;
  return res.count;
}
