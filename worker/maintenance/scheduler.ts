// The scheduler (leader only): turns due cron ticks into tasks. It works on the database's
// clock (`now()`), never the worker's, so clock drift between nodes cannot move a tick; the
// unique (team_id, schedule_id, scheduled_for) index makes a tick one task even if two leaders overlap
// for a moment. Ticks missed while no worker ran collapse into the most recent one.
//
// In that overlap, if the tick's task completes at the same moment, the two can deadlock: the
// pass holds the schedule row and waits on the unique index for the completion's new version of
// the task row, while the completion waits to update the schedule's counters. PostgreSQL fails
// one of them after deadlock_timeout (1 s): a failed pass is tried again 250 ms later, and a
// completion that deadlocked is run again at once (completeWithRetry in worker/completer.ts,
// lease-guarded). Nothing is lost or doubled.

import { latestTickAtOrBefore, nextTick } from '../../shared/cron.ts';
import { dbNow, type Sql } from '../../shared/db.ts';
import type { Logger } from '../../shared/logger.ts';
import type { TaskInput } from '../../shared/schemas.ts';
import { insertTasks, taskForTick } from '../../shared/tasks.ts';
import { startTickSpan, traceparentOf } from '../../shared/telemetry.ts';
import { createService } from './service.ts';

/**
 * 250 ms: a per-second schedule's task is at most a quarter second late; the query is one
 * index probe on schedules_due when nothing is due.
 */
export const SCHEDULER_INTERVAL_MS = 250;
/** Schedules per pass. */
export const SCHEDULER_BATCH = 100;

type ScheduleRow = { id: string; team_id: string; cron: string; timezone: string; template: TaskInput; next_run_at: Date; qstash: boolean };

/** One pass: every due schedule (up to `limit`) gets its tick's task and its next tick. */
export async function enqueueDueTicks(sql: Sql, limit = SCHEDULER_BATCH): Promise<{ ticks: number; created: number }> {
  return sql.begin(async (tx) => {
    const now = await dbNow(tx);
    const due = await tx<ScheduleRow[]>`
      select id, team_id::text, cron, timezone, template, next_run_at, qstash from schedules
      where not paused and next_run_at <= ${now}
      order by next_run_at
      limit ${limit}
      for update skip locked`;
    if (due.length === 0) return { ticks: 0, created: 0 };
    const tasks = [];
    const moves = [];
    const spans = [];
    for (const s of due) {
      const tick = latestTickAtOrBefore(s.cron, s.timezone, now) ?? s.next_run_at;
      const task = taskForTick(s, tick);
      const span = startTickSpan({
        'posthorn.schedule.id': s.id,
        'posthorn.task.id': task.id,
        'posthorn.scheduled_for': tick.toISOString(),
      });
      if (span) spans.push({ span, id: task.id });
      if (span) task.traceparent = traceparentOf(span); // the task's attempts continue the tick's trace
      tasks.push(task);
      moves.push({
        team_id: s.team_id,
        id: s.id,
        last_run_at: tick.toISOString(),
        next_run_at: nextTick(s.cron, s.timezone, now)?.toISOString() ?? null,
      });
    }
    let created = new Map<string, unknown>();
    try {
      created = await insertTasks(tx, tasks);
    } finally {
      // created false: another leader had already enqueued this tick (unique index), or the insert failed.
      for (const { span, id } of spans) span.setAttribute('posthorn.task.created', created.has(id)).end();
    }
    await tx`
      update schedules s set next_run_at = v.next_run_at, last_run_at = v.last_run_at, updated_at = now()
      from jsonb_to_recordset(${tx.json(moves)}::jsonb) as v(team_id bigint, id uuid, next_run_at timestamptz, last_run_at timestamptz)
      where s.team_id = v.team_id and s.id = v.id`;
    return { ticks: due.length, created: created.size };
  });
}

export function createScheduler(o: { sql: Sql; logger: Logger; intervalMs?: number }) {
  return createService({
    name: 'scheduler',
    intervalMs: o.intervalMs ?? SCHEDULER_INTERVAL_MS,
    logger: o.logger,
    runOnce: () => enqueueDueTicks(o.sql),
    // A failed pass delays ticks (they are not lost: the next pass takes the latest one).
    failureLevel: 'error',
  });
}
