// The overdue check (leader only): monitors that missed their ping plus grace go down, with a
// monitor.down event in the same transaction (shared/monitors.ts, markOverdue). It runs on the
// database's clock, like the scheduler, so clock drift between workers cannot make a monitor
// late early. The state lives in the monitors row, not in the leader: a new leader's first
// pass finds whatever the old one had not marked yet, and finds nothing it had.
import { dbNow, type Sql } from '../../shared/db.ts';
import type { Logger } from '../../shared/logger.ts';
import { markOverdue } from '../../shared/monitors.ts';
import { createService } from './service.ts';

/**
 * 1 s: a monitor goes down at most about a second after its deadline. When nothing is due the
 * pass is one probe of the partial index monitors_overdue.
 */
export const MONITOR_CHECK_INTERVAL_MS = 1000;

export function createMonitorChecker(o: { sql: Sql; logger: Logger; intervalMs?: number }) {
  return createService({
    name: 'monitor-checker',
    intervalMs: o.intervalMs ?? MONITOR_CHECK_INTERVAL_MS,
    logger: o.logger,
    runOnce: async () => markOverdue(o.sql, await dbNow(o.sql)),
    report: (r) => {
      if (r.down.length) o.logger.info({ monitors: r.down.length }, 'monitors went down');
    },
  });
}
