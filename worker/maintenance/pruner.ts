// The pruner (leader only): deletes finished tasks (and, by cascade, their attempts) once they
// are older than the retention, in batches of 1000 so no statement holds locks for long, plus
// expired idempotency keys. Retention: POSTHORN_RETENTION_HOURS (default 168 = 7 days).
import type { Sql } from '../../shared/db.ts';

/** The smallest UUIDv7 of a millisecond: ids below it were created before that time. */
export function uuidv7Floor(ms: number): string {
  const h = Math.floor(ms).toString(16).padStart(12, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-7000-8000-000000000000`;
}

export async function pruneFinishedTasks(sql: Sql, retentionHours: number, now: number, batch = 1000): Promise<number> {
  const cutoff = now - retentionHours * 3_600_000;
  // Walk the primary key (ids sort by creation time) instead of scanning the table for
  // finished_at, which has no index: an index on it would cost every completion a write.
  const res = await sql`
    delete from tasks where id in (
      select id from tasks
      where id < ${uuidv7Floor(cutoff)}
        and status in ('succeeded', 'failed', 'canceled')
        and finished_at < ${new Date(cutoff)}
      order by id
      limit ${batch})`;
  return res.count;
}

export async function pruneIdempotencyKeys(sql: Sql, batch = 1000): Promise<number> {
  const res = await sql`
    delete from idempotency_keys where ctid = any(array(
      select ctid from idempotency_keys where expires_at < now() limit ${batch}))`;
  return res.count;
}
