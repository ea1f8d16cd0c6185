// Deletes inbound endpoint events (migration 010) older than POSTHORN_RETENTION_HOURS, like the
// pruner does finished tasks: events hold whole request bodies (up to POSTHORN_MAX_BODY_BYTES
// each), so they must not pile up. Batches of 1000 on the received_at index, short locks.
import type { Queryable } from '../../shared/db.ts';
import type { Logger } from '../../shared/logger.ts';
import { PRUNE_BATCH, PRUNE_MAX_BATCHES, PRUNER_INTERVAL_MS } from './pruner.ts';
import { createService } from './service.ts';

export async function pruneEndpointEvents(sql: Queryable, retentionHours: number, now: number, batch = PRUNE_BATCH): Promise<number> {
  const cutoff = new Date(now - retentionHours * 3_600_000);
  const res = await sql`
    delete from endpoint_events where (team_id, id) in (
      select team_id, id from endpoint_events where received_at < ${cutoff} order by received_at limit ${batch})`;
  return res.count;
}

export function createEventPruner(o: { sql: Queryable; logger: Logger; retentionHours: number; now: () => number }) {
  return createService({
    name: 'event-pruner',
    intervalMs: PRUNER_INTERVAL_MS,
    logger: o.logger,
    runOnce: async () => {
      let events = 0;
      for (let i = 0, n = -1; i < PRUNE_MAX_BATCHES && n !== 0; i++)
        events += n = await pruneEndpointEvents(o.sql, o.retentionHours, o.now());
      return { events };
    },
    report: (r) => r.events && o.logger.info(r, 'pruned endpoint events'),
  });
}
