// The producer claims due tasks for this worker: up to its free slots, in one statement, with
// FOR UPDATE SKIP LOCKED so workers never wait on each other's rows. It wakes on NOTIFY (new
// due tasks), on a poll timer (delayed tasks and retries coming due, lost notifications) and
// when slots free up after a full claim.

import { randomUUID } from 'node:crypto';
import type { Queryable, Sql } from '../shared/db.ts';
import { type NewTask, TASK_NOTIFY_CHANNEL } from '../shared/tasks.ts';

/** A task as the producer claims it: the stored request plus the claim's attempt and lease. */
export type ClaimedTask = Pick<
  NewTask,
  | 'id'
  | 'team_id'
  | 'url'
  | 'method'
  | 'headers'
  | 'body'
  | 'body_is_json'
  | 'max_retries'
  | 'min_backoff_ms'
  | 'max_backoff_ms'
  | 'timeout_ms'
  | 'schedule_id'
  | 'qstash'
> & {
  attempts: number; // this attempt's number, 1-based
  retry_base: number;
  lease_token: string;
  traceparent: string | null;
  /** When the task came due (the delivery-lag metric); absent for tasks built by hand. */
  run_at?: Date;
};

export async function claimTasks(sql: Queryable, o: { workerId: string; limit: number; leaseMs: number }): Promise<ClaimedTask[]> {
  if (o.limit <= 0) return [];
  // One lease token per claim: every row claimed now shares it, and a later claim of the same
  // row (after a rescue) gets a new one, which is all the completer's guard needs.
  const token = randomUUID();
  const rows = await sql<ClaimedTask[]>`
    with c as (
      select id from tasks
      where status in ('pending', 'retrying') and run_at <= now()
      order by run_at
      limit ${o.limit}
      for update skip locked
    )
    update tasks t set status = 'running', attempts = t.attempts + 1, started_at = now(),
      lease_token = ${token}, lease_expires_at = now() + ${o.leaseMs} * interval '1 millisecond', locked_by = ${o.workerId}
    from c where t.id = c.id
    returning t.id, t.team_id::text, t.url, t.method, t.headers, t.body, t.body_is_json, t.attempts, t.retry_base,
      t.max_retries, t.min_backoff_ms, t.max_backoff_ms, t.timeout_ms, t.lease_token, t.traceparent, t.schedule_id, t.run_at, t.qstash`;
  return rows;
}

export type ProducerOptions = {
  sql: Sql;
  workerId: string;
  leaseMs: number;
  pollIntervalMs: number;
  concurrency: number;
  freeSlots: () => number;
  dispatch: (tasks: ClaimedTask[]) => void;
  onError: (err: unknown) => void;
};

export function createProducer(o: ProducerOptions) {
  // Claim only when at least this many slots are free (or nothing runs), so a busy worker
  // claims in batches of 8+ instead of one row per finished request.
  const threshold = Math.max(1, Math.floor(o.concurrency / 8));
  const maxBatch = Math.min(o.concurrency, 500);
  let maybeMore = true; // something may be due: set by NOTIFY, the poll timer, a full claim
  let stopped = false;
  let wakeUp: (() => void) | null = null;
  let loopDone: Promise<void> = Promise.resolve();
  let pollTimer: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | null = null;

  function wake() {
    const w = wakeUp;
    wakeUp = null;
    w?.();
  }

  /** Claims once and dispatches what it got; returns how many. Tests call it directly. */
  async function runOnce(): Promise<number> {
    const want = Math.min(o.freeSlots(), maxBatch);
    maybeMore = false;
    const tasks = await claimTasks(o.sql, { workerId: o.workerId, limit: want, leaseMs: o.leaseMs });
    if (tasks.length === want && want > 0) maybeMore = true;
    if (tasks.length) o.dispatch(tasks);
    return tasks.length;
  }

  const ready = () => {
    const free = o.freeSlots();
    return maybeMore && free > 0 && (free >= threshold || free === o.concurrency);
  };

  async function loop() {
    while (!stopped) {
      if (!ready()) {
        await new Promise<void>((r) => (wakeUp = r));
        continue;
      }
      try {
        await runOnce();
      } catch (err) {
        o.onError(err);
        await new Promise((r) => setTimeout(r, Math.min(o.pollIntervalMs, 1000)));
        maybeMore = true;
      }
    }
  }

  return {
    runOnce,
    /** A slot freed up: claim again if the last look suggested more work. */
    slotFreed() {
      if (ready()) wake();
    },
    async start() {
      stopped = false;
      maybeMore = true;
      const sub = await o.sql.listen(
        TASK_NOTIFY_CHANNEL,
        () => {
          maybeMore = true;
          wake();
        },
        () => {
          // (re)connected: anything notified while the listener was down is found by this claim.
          maybeMore = true;
          wake();
        },
      );
      unlisten = sub.unlisten;
      pollTimer = setInterval(() => {
        maybeMore = true;
        wake();
      }, o.pollIntervalMs);
      loopDone = loop();
    },
    async stop() {
      stopped = true;
      clearInterval(pollTimer);
      wake();
      await loopDone;
      await unlisten?.().catch(() => {});
    },
  };
}
