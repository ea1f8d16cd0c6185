// The pruner (leader only): deletes finished tasks (and, by cascade, their attempts) once they
// are older than the retention, in batches of 1000 so no statement holds locks for long, plus
// expired idempotency keys. Retention: POSTHORN_RETENTION_HOURS (default 168 = 7 days).
// Notifications too (docs/notifications.md): events the notifier has dispatched and channel
// deliveries that are done (sent or failed), once older than POSTHORN_NOTIFY_RETENTION_HOURS
// (default 168). Pending deliveries are never pruned: their retries end within 3 hours.
import type { Queryable } from '../../shared/db.ts';
import type { Logger } from '../../shared/logger.ts';
import { createService } from './service.ts';

/** A pass a minute: finished tasks wait at most a minute past their retention. */
export const PRUNER_INTERVAL_MS = 60_000;
/** Rows per DELETE: short statements, short locks. */
export const PRUNE_BATCH = 1000;
/** Batches per pass (100k rows a minute): a backlog drains without one long pass. */
export const PRUNE_MAX_BATCHES = 100;

/** The smallest UUIDv7 of a millisecond: ids below it were created before that time. */
export function uuidv7Floor(ms: number): string {
  const h = Math.floor(ms).toString(16).padStart(12, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-7000-8000-000000000000`;
}

export async function pruneFinishedTasks(sql: Queryable, retentionHours: number, now: number, batch = PRUNE_BATCH): Promise<number> {
  const cutoff = now - retentionHours * 3_600_000;
  // Walk the primary key (team_id, id) team by team (ids sort by creation time) instead of
  // scanning the table for finished_at, which has no index: an index on it would cost every
  // completion a write. Each team is one probe of the key from its oldest id; the outer limit
  // stops the walk once a batch is found. One statement per batch, every shard's teams at once
  // when distributed (docs/scaling.md: pruning is one of the few statements that fan out).
  // finished_at is set exactly on terminal tasks (migration 005); the status test keeps the
  // plan's shape and says what is meant.
  const res = await sql`
    delete from tasks t using (
      select p.team_id, p.id from teams tm
      cross join lateral (
        select team_id, id from tasks
        where team_id = tm.id and id < ${uuidv7Floor(cutoff)}
          and status in ('succeeded', 'failed', 'canceled')
          and finished_at < ${new Date(cutoff)}
        order by id
        limit ${batch}) p
      limit ${batch}) d
    where t.team_id = d.team_id and t.id = d.id`;
  return res.count;
}

export async function pruneIdempotencyKeys(sql: Queryable, batch = PRUNE_BATCH): Promise<number> {
  const res = await sql`
    delete from idempotency_keys where ctid = any(array(
      select ctid from idempotency_keys where expires_at < now() limit ${batch}))`;
  return res.count;
}

/**
 * Events dispatched before the cutoff. The notifier marks events in id order but an event's
 * dispatch time is what the retention counts from, so the walk is on the partial index
 * events_dispatched (migration 012): only rows already dispatched, probed from the oldest.
 */
export async function pruneDispatchedEvents(sql: Queryable, retentionHours: number, now: number, batch = PRUNE_BATCH): Promise<number> {
  const cutoff = new Date(now - retentionHours * 3_600_000);
  const res = await sql`
    delete from events where id in (
      select id from events where dispatched_at < ${cutoff} order by dispatched_at limit ${batch})`;
  return res.count;
}

/**
 * Channel deliveries that are done and older than the cutoff. Their ids are UUIDv7 made at
 * creation (worker/maintenance/notifier.ts), so, as for tasks, the primary key bounds the walk
 * to old rows and no index on created_at is needed.
 */
export async function pruneChannelDeliveries(sql: Queryable, retentionHours: number, now: number, batch = PRUNE_BATCH): Promise<number> {
  const cutoff = now - retentionHours * 3_600_000;
  const res = await sql`
    delete from channel_deliveries where id in (
      select id from channel_deliveries
      where id < ${uuidv7Floor(cutoff)} and status in ('sent', 'failed') and created_at < ${new Date(cutoff)}
      order by id
      limit ${batch})`;
  return res.count;
}

export type PruneResult = { tasks: number; idempotency_keys: number; events: number; channel_deliveries: number };

/** Runs `step` in batches until one comes back short of a full batch, at most PRUNE_MAX_BATCHES. */
async function drain(step: () => Promise<number>): Promise<number> {
  let total = 0;
  for (let i = 0, n = PRUNE_BATCH; i < PRUNE_MAX_BATCHES && n >= PRUNE_BATCH; i++) total += n = await step();
  return total;
}

export function createPruner(o: {
  sql: Queryable;
  logger: Logger;
  retentionHours: number;
  /** POSTHORN_NOTIFY_RETENTION_HOURS; 168 when not given. */
  notifyRetentionHours?: number;
  now: () => number;
  intervalMs?: number;
}) {
  const notifyHours = o.notifyRetentionHours ?? 168;
  async function runOnce(): Promise<PruneResult> {
    let tasks = 0;
    for (let i = 0, n = -1; i < PRUNE_MAX_BATCHES && n !== 0; i++) tasks += n = await pruneFinishedTasks(o.sql, o.retentionHours, o.now());
    const idempotency_keys = await pruneIdempotencyKeys(o.sql);
    const events = await drain(() => pruneDispatchedEvents(o.sql, notifyHours, o.now()));
    const channel_deliveries = await drain(() => pruneChannelDeliveries(o.sql, notifyHours, o.now()));
    return { tasks, idempotency_keys, events, channel_deliveries };
  }
  const pruned = (r: PruneResult) => r.tasks + r.idempotency_keys + r.events + r.channel_deliveries > 0;
  return createService({
    name: 'pruner',
    intervalMs: o.intervalMs ?? PRUNER_INTERVAL_MS,
    logger: o.logger,
    runOnce,
    report: (r) => pruned(r) && o.logger.info(r, 'pruned'),
    trace: {
      span: 'posthorn.prune',
      attributes: (r) =>
        pruned(r)
          ? {
              'posthorn.pruned.tasks': r.tasks,
              'posthorn.pruned.idempotency_keys': r.idempotency_keys,
              'posthorn.pruned.events': r.events,
              'posthorn.pruned.channel_deliveries': r.channel_deliveries,
            }
          : null,
    },
  });
}
