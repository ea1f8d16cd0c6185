// The producer claims due tasks for this worker: up to its free slots, in one statement, with
// FOR UPDATE SKIP LOCKED so workers never wait on each other's rows. It wakes on NOTIFY (new
// due tasks), on a poll timer (delayed tasks and retries coming due, lost notifications) and
// when slots free up after a full claim.

import { randomUUID } from 'node:crypto';
import type { Sql } from '../shared/db.ts';
import { type NewTask, TASK_NOTIFY_CHANNEL } from '../shared/tasks.ts';
import { claimAll, claimFree, claimGated } from './claim.ts';

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
  | 'body_encoding'
  | 'max_retries'
  | 'min_backoff_ms'
  | 'max_backoff_ms'
  | 'timeout_ms'
  | 'schedule_id'
> &
  // Optional so tasks built by hand (tests, bench) need not name them: absent = none.
  Partial<Pick<NewTask, 'auth_connection' | 'success' | 'qstash'>> & {
    attempts: number; // this attempt's number, 1-based
    retry_base: number;
    lease_token: string;
    traceparent: string | null;
    /** When the task came due (the delivery-lag metric); absent for tasks built by hand. */
    run_at?: Date;
    /**
     * Set when the claim left the body out for its size (body is null then, worker/claim.ts):
     * its length in bytes as stored. The attempt reads it (worker/task-body.ts).
     */
    body_bytes?: number | null;
  };

/** Claims up to `limit` due tasks, both paths (worker/claim.ts); the producer calls them itself. */
export async function claimTasks(sql: Sql, o: { workerId: string; limit: number; leaseMs: number }): Promise<ClaimedTask[]> {
  if (o.limit <= 0) return [];
  // One lease token per claim: every row claimed now shares it, and a later claim of the same
  // row (after a rescue) gets a new one, which is all the completer's guard needs.
  return claimAll(sql, { ...o, token: randomUUID() });
}

/** How long a gated claim that found nothing waits before the next unforced one. */
const GATED_RETRY_MS = 50;

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
  let gatedDue = true; // a task with a queue or key may be due: the free claim says
  let gatedForced = true;
  let lastGatedEmptyAt = 0;
  let pacingTimer: NodeJS.Timeout | undefined;
  let pacingAt = 0;

  function wake() {
    const w = wakeUp;
    wakeUp = null;
    w?.();
  }

  /** Claims once and dispatches what it got; returns how many. Tests call it directly. */
  async function runOnce(): Promise<number> {
    const want = Math.min(o.freeSlots(), maxBatch);
    maybeMore = false;
    const claim = { workerId: o.workerId, leaseMs: o.leaseMs, token: randomUUID() };
    // Tasks with a queue or key first, when any is due (learnt from the last free claim) and
    // the last gated claim found something, or was forced (NOTIFY, a pacing wake-up), or is
    // GATED_RETRY_MS old: a paused queue's backlog costs the drain at most 20 claims a second.
    let tasks: ClaimedTask[] = [];
    if (gatedDue && (gatedForced || Date.now() - lastGatedEmptyAt >= GATED_RETRY_MS)) {
      gatedForced = false;
      const g = await claimGated(o.sql, { ...claim, limit: want });
      tasks = g.tasks;
      if (tasks.length === 0) lastGatedEmptyAt = Date.now();
      else maybeMore = true;
      schedulePacingWake(g.wakeInMs);
    }
    const free = await claimFree(o.sql, { ...claim, limit: want - tasks.length });
    gatedDue = free.gatedDue;
    if (free.more || free.tasks.length === want - tasks.length) maybeMore = want > 0;
    tasks = tasks.length ? [...tasks, ...free.tasks] : free.tasks;
    if (tasks.length) o.dispatch(tasks);
    return tasks.length;
  }

  /** A paced queue may start its next task in `ms`: claim then, not at the next poll. */
  function schedulePacingWake(ms: number | null) {
    if (ms === null || stopped) return;
    const at = Date.now() + ms;
    if (pacingTimer && pacingAt <= at) return;
    clearTimeout(pacingTimer);
    pacingAt = at;
    pacingTimer = setTimeout(() => {
      pacingTimer = undefined;
      gatedForced = true;
      maybeMore = true;
      wake();
    }, ms + 1);
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
          gatedForced = true;
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
      clearTimeout(pacingTimer);
      wake();
      await loopDone;
      await unlisten?.().catch(() => {});
    },
  };
}
