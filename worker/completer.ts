// Writes attempt outcomes in batches (River's batch completer took it from 10k to 46k jobs/s).
// One statement per batch: update the tasks (guarded by lease token), record the attempts,
// and create callback tasks for the ones that just finished, so a crash can never leave a
// finished task without its attempt row or its callback.

import type { Sql } from '../shared/db.ts';
import { createGroupCommit } from '../shared/group-commit.ts';
import { uuidv7 } from '../shared/ids.ts';
import { TASK_NOTIFY_CHANNEL } from '../shared/tasks.ts';
import type { AttemptResult, ClaimedTask } from './executor.ts';
import type { Plan } from './retry.ts';

export type Completion = { task: ClaimedTask; result: AttemptResult; plan: Plan };

/** Whether the row was still ours (lease token matched), what status it ended in, and what made the task (logged when it failed). */
export type Completed = { written: boolean; status?: string; origin?: 'api' | 'schedule' | 'callback' };

export async function completeTasks(sql: Sql, items: Completion[]): Promise<Completed[]> {
  const rows = items.map(({ task, result: r, plan }) => ({
    id: task.id,
    token: task.lease_token,
    status: plan.status,
    delay_ms: plan.status === 'retrying' ? plan.delayMs : 0,
    attempt: task.attempts,
    started_at: r.startedAt.toISOString(),
    finished_at: r.finishedAt.toISOString(),
    duration_ms: Math.max(0, r.finishedAt.getTime() - r.startedAt.getTime()),
    outcome: r.outcome,
    status_code: r.statusCode,
    response_headers: r.responseHeaders,
    response_body: r.responseBody,
    response_encoding: r.responseEncoding,
    response_truncated: r.responseTruncated,
    error: r.error,
    cb_id: uuidv7(),
    fcb_id: uuidv7(),
  }));
  const done = await sql`
    with v as (
      select * from jsonb_to_recordset(${sql.json(rows as any)}::jsonb) as v(
        id uuid, token uuid, status text, delay_ms bigint, attempt int, started_at timestamptz,
        finished_at timestamptz, duration_ms int, outcome text, status_code int, response_headers jsonb,
        response_body text, response_encoding text, response_truncated boolean, error text, cb_id uuid, fcb_id uuid)
    ), upd as (
      -- A task canceled mid-attempt stays canceled: the attempt is recorded, not retried.
      update tasks t set
        status = case when t.status = 'canceled' then 'canceled' else v.status end,
        run_at = case when t.status <> 'canceled' and v.status = 'retrying'
                      then now() + v.delay_ms * interval '1 millisecond' else t.run_at end,
        finished_at = case when t.status = 'canceled' then t.finished_at
                           when v.status in ('succeeded', 'failed') then now() end,
        lease_token = null, lease_expires_at = null, locked_by = null
      from v
      where t.id = v.id and t.lease_token = v.token and t.status in ('running', 'canceled')
      returning t.id, t.team_id, t.status, t.attempts, t.callback_url, t.failure_callback_url, t.traceparent, t.schedule_id, t.parent_id
    ), sched as (
      -- A schedule counts failures in a row and forgets them on the first success.
      update schedules s set last_status = upd.status,
        consecutive_failures = case when upd.status = 'succeeded' then 0 else s.consecutive_failures + 1 end
      from upd where s.id = upd.schedule_id and upd.status in ('succeeded', 'failed')
    ), att as (
      insert into task_attempts (task_id, attempt, team_id, started_at, finished_at, duration_ms, outcome,
        status_code, response_headers, response_body, response_encoding, response_truncated, error)
      select v.id, v.attempt, upd.team_id, v.started_at, v.finished_at, v.duration_ms, v.outcome,
        v.status_code, v.response_headers, v.response_body, v.response_encoding, v.response_truncated, v.error
      from v join upd on upd.id = v.id
      on conflict (task_id, attempt) do nothing
    ), cb as (
      -- callback_url hears of every terminal outcome, failure_callback_url of failures only.
      select upd.id, upd.team_id, upd.status, upd.attempts, upd.callback_url, upd.failure_callback_url, upd.traceparent,
        v.attempt, v.outcome, v.status_code, v.started_at, v.finished_at, v.duration_ms, v.error, x.cb_id, x.url
      from upd join v on v.id = upd.id
      cross join lateral (values (v.cb_id, upd.callback_url), (v.fcb_id, upd.failure_callback_url)) as x(cb_id, url)
      where x.url is not null
        and (upd.status = 'failed' or (upd.status = 'succeeded' and x.cb_id = v.cb_id))
    ), ins as (
      insert into tasks (id, team_id, status, url, method, headers, body, body_is_json, run_at, max_retries,
        min_backoff_ms, max_backoff_ms, timeout_ms, label, parent_id, traceparent)
      select cb.cb_id, cb.team_id, 'pending', cb.url, 'POST', '{}',
        jsonb_build_object('task_id', cb.id, 'status', cb.status, 'attempts', cb.attempts,
          'last_attempt', jsonb_build_object('attempt', cb.attempt, 'outcome', cb.outcome, 'status_code', cb.status_code,
            'started_at', cb.started_at, 'finished_at', cb.finished_at, 'duration_ms', cb.duration_ms, 'error', cb.error))::text,
        -- the task defaults (docs/retries.md): 8 retries, 10 s doubling to 1 h
        true, now(), 8, 10000, 3600000, 30000, 'callback', cb.id, cb.traceparent
      from cb
      returning id
    ), wake as (
      select pg_notify(${TASK_NOTIFY_CHANNEL}, '') from ins limit 1
    )
    select upd.id, upd.status, upd.schedule_id, upd.parent_id, (select count(*) from wake) as woke from upd`;
  const byId = new Map(done.map((r) => [r.id as string, r]));
  return items.map(({ task }) => {
    const r = byId.get(task.id);
    if (!r) return { written: false };
    return { written: true, status: r.status, origin: r.parent_id ? 'callback' : r.schedule_id ? 'schedule' : 'api' };
  });
}

// Deadlock and serialization failures are the database asking us to try again; the batch is
// lease-guarded, so running it twice is safe. Other errors go to the caller (the lease expires
// and the task is rescued).
const RETRYABLE = new Set(['40P01', '40001']);

async function completeWithRetry(sql: Sql, items: Completion[], tries = 3): Promise<Completed[]> {
  for (let i = 1; ; i++) {
    try {
      return await completeTasks(sql, items);
    } catch (err) {
      if (i >= tries || !RETRYABLE.has((err as { code?: string }).code ?? '')) throw err;
    }
  }
}

export function createCompleter(sql: Sql, opts: { maxBatch?: number; lanes?: number; onBatch?: (items: Completion[]) => void } = {}) {
  const write = async (items: Completion[]) => {
    const done = await completeWithRetry(sql, items);
    opts.onBatch?.(items); // the circuit breakers count the batch (worker/breaker-gate.ts); never throws
    return done;
  };
  return createGroupCommit<Completion, Completed>(write, {
    maxBatch: opts.maxBatch ?? 200,
    lanes: opts.lanes ?? 2,
  });
}
