// What only the leader runs: the cron scheduler, the lease rescuer and the pruner, each a
// service in its own file with its own default interval (service.ts has their shape). Started
// when the elector wins the lock, stopped when it loses it.
import type { Sql } from '../../shared/db.ts';
import type { Logger } from '../../shared/logger.ts';
import { createPruner } from './pruner.ts';
import { createRescuer } from './rescuer.ts';
import { createScheduler } from './scheduler.ts';

export type LeaderOptions = { sql: Sql; logger: Logger; leaseMs: number; retentionHours: number; now?: () => number };

export function createLeaderServices(o: LeaderOptions) {
  const scheduler = createScheduler({ sql: o.sql, logger: o.logger });
  const rescuer = createRescuer({ sql: o.sql, logger: o.logger, leaseMs: o.leaseMs });
  const pruner = createPruner({ sql: o.sql, logger: o.logger, retentionHours: o.retentionHours, now: o.now ?? Date.now });
  const services = [scheduler, rescuer, pruner];
  return {
    scheduler,
    rescuer,
    pruner,
    start: () => services.forEach((s) => s.start()),
    stop: () => Promise.all(services.map((s) => s.stop())).then(() => undefined),
  };
}
