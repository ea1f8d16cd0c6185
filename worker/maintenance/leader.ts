// What only the leader runs: the cron scheduler, the lease rescuer, the pruner and the
// notifier. Started when the elector wins the lock, stopped when it loses it.
import type { Sql } from '../../shared/db.ts';
import type { Logger } from '../../shared/logger.ts';
import { recordPass } from '../../shared/telemetry.ts';
import { rescueExpiredLeases } from './leases.ts';
import type { Notifier } from './notifier.ts';
import { pruneFinishedTasks, pruneIdempotencyKeys } from './pruner.ts';
import { enqueueDueTicks } from './scheduler.ts';

export type LeaderOptions = {
  sql: Sql;
  logger: Logger;
  leaseMs: number;
  retentionHours: number;
  now?: () => number;
  /** Channel notifications (worker/maintenance/notifier.ts), one pass every intervalMs. */
  notifier?: { notifier: Notifier; intervalMs: number };
};

/** Runs fn now and then `ms` after each run ends (never two at once), until stopped. */
function every(ms: number, fn: () => Promise<unknown>) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const run = () => {
    running = fn().finally(() => {
      if (timer) timer = setTimeout(run, ms);
    });
  };
  return {
    start: () => void (timer = setTimeout(run, 0)),
    stop: async () => {
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}

export function createLeaderServices(o: LeaderOptions) {
  const now = o.now ?? Date.now;
  // 250 ms: a per-second schedule's task is at most a quarter second late; the query is one
  // index probe on schedules_due when nothing is due.
  const scheduler = every(250, async () => {
    try {
      await enqueueDueTicks(o.sql);
    } catch (err) {
      o.logger.error({ err }, 'scheduler pass failed');
    }
  });
  // Half the lease, within [200 ms, 5 s]: a dead worker's tasks wait at most lease + this.
  const rescuer = every(Math.max(200, Math.min(5000, Math.floor(o.leaseMs / 2))), async () => {
    const t0 = Date.now();
    try {
      const n = await rescueExpiredLeases(o.sql);
      if (n > 0) o.logger.info({ rescued: n }, 'rescued tasks whose lease expired');
      if (n > 0) recordPass('posthorn.rescue', t0, { 'posthorn.rescued': n });
    } catch (err) {
      o.logger.warn({ err }, 'rescue failed');
      recordPass('posthorn.rescue', t0, {}, err);
    }
  });
  const pruner = every(60_000, async () => {
    const t0 = Date.now();
    try {
      let total = 0;
      // Bounded: at most 100 batches (100k rows) a minute, so a backlog drains without a long lock.
      for (let i = 0, n = -1; i < 100 && n !== 0; i++) total += n = await pruneFinishedTasks(o.sql, o.retentionHours, now());
      const keys = await pruneIdempotencyKeys(o.sql);
      if (total || keys) o.logger.info({ tasks: total, idempotency_keys: keys }, 'pruned');
      if (total || keys) recordPass('posthorn.prune', t0, { 'posthorn.pruned.tasks': total, 'posthorn.pruned.idempotency_keys': keys });
    } catch (err) {
      o.logger.warn({ err }, 'prune failed');
      recordPass('posthorn.prune', t0, {}, err);
    }
  });
  const services = [scheduler, rescuer, pruner];
  const n = o.notifier;
  if (n) {
    services.push(
      every(n.intervalMs, async () => {
        try {
          await n.notifier.runOnce(new Date(now()));
        } catch (err) {
          o.logger.warn({ err }, 'notifier pass failed');
        }
      }),
    );
  }
  return {
    start: () => services.forEach((s) => s.start()),
    stop: () => Promise.all(services.map((s) => s.stop())).then(() => undefined),
  };
}
