// What only the leader runs: the cron scheduler, the lease rescuer, the pruner and the
// notifier, each a service in its own file with its own default interval (service.ts has their
// shape). Started when the elector wins the lock, stopped when it loses it.
import type { Sql } from '../../shared/db.ts';
import type { Logger } from '../../shared/logger.ts';
import { createEventPruner } from './event-pruner.ts';
import { createMonitorChecker } from './monitors.ts';
import { createNotifierService, type Notifier } from './notifier.ts';
import { createPruner } from './pruner.ts';
import { createRescuer } from './rescuer.ts';
import { createScheduler } from './scheduler.ts';

export type LeaderOptions = {
  sql: Sql;
  logger: Logger;
  leaseMs: number;
  retentionHours: number;
  /** Dispatched events and finished channel deliveries (pruner.ts); 168 when not given. */
  notifyRetentionHours?: number;
  now?: () => number;
  /** Channel notifications (worker/maintenance/notifier.ts), one pass every intervalMs. */
  notifier?: { notifier: Notifier; intervalMs: number };
};

export function createLeaderServices(o: LeaderOptions) {
  const now = o.now ?? Date.now;
  const scheduler = createScheduler({ sql: o.sql, logger: o.logger });
  const rescuer = createRescuer({ sql: o.sql, logger: o.logger, leaseMs: o.leaseMs });
  const pruner = createPruner({
    sql: o.sql,
    logger: o.logger,
    retentionHours: o.retentionHours,
    notifyRetentionHours: o.notifyRetentionHours,
    now,
  });
  const notifier = o.notifier
    ? createNotifierService({ notifier: o.notifier.notifier, intervalMs: o.notifier.intervalMs, logger: o.logger, now })
    : null;
  const monitors = createMonitorChecker({ sql: o.sql, logger: o.logger });
  const eventPruner = createEventPruner({ sql: o.sql, logger: o.logger, retentionHours: o.retentionHours, now });
  const services = [scheduler, rescuer, pruner, monitors, eventPruner, ...(notifier ? [notifier] : [])];
  return {
    scheduler,
    rescuer,
    pruner,
    monitors,
    notifier,
    start: () => services.forEach((s) => s.start()),
    stop: () => Promise.all(services.map((s) => s.stop())).then(() => undefined),
  };
}
