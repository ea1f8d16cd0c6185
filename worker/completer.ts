// Writes attempt outcomes in batches (River's batch completer took it from 10k to 46k jobs/s).
// One statement per batch: update the tasks (guarded by lease token), record the attempts and
// the notification events, and create callback tasks for the ones that just finished, so a
// crash can never leave a finished task without its attempt row, its event or its callback.

import type { Queryable } from '../shared/db.ts';
import { isUnavailableError } from '../shared/errors.ts';
import { createGroupCommit } from '../shared/group-commit.ts';
import { uuidv7 } from '../shared/ids.ts';
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, insertTaskRows, leaseCleared, notifyWorkers, type TaskStatus } from '../shared/tasks.ts';
import type { AttemptResult } from './executor.ts';
import { createOutcomeBuffer, type OutcomeBufferOptions } from './outcome-buffer.ts';
import type { ClaimedTask } from './producer.ts';
import type { Plan } from './retry.ts';

export type Completion = { task: ClaimedTask; result: AttemptResult; plan: Plan };

/** Whether the row was still ours (lease token matched), what status it ended in, and what made the task (logged when it failed). */
export type Completed = { written: boolean; status?: TaskStatus; origin?: 'api' | 'schedule' | 'callback' };

export async function completeTasks(sql: Queryable, items: Completion[]): Promise<Completed[]> {
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
    // task.failed's subject when the task has no schedule (docs/notifications.md).
    origin: plan.status === 'failed' ? originOf(task.url) : null,
  }));
  const done = await sql<{ id: string; status: TaskStatus; schedule_id: string | null; parent_id: string | null }[]>`
    with v as (
      select * from jsonb_to_recordset(${sql.json(rows)}::jsonb) as v(
        id uuid, token uuid, status text, delay_ms bigint, attempt int, started_at timestamptz,
        finished_at timestamptz, duration_ms int, outcome text, status_code int, response_headers jsonb,
        response_body text, response_encoding text, response_truncated boolean, error text, cb_id uuid, fcb_id uuid, origin text)
    ), upd as (
      -- A task canceled mid-attempt stays canceled: the attempt is recorded, not retried.
      update tasks t set
        status = case when t.status = 'canceled' then 'canceled' else v.status end,
        run_at = case when t.status <> 'canceled' and v.status = 'retrying'
                      then now() + v.delay_ms * interval '1 millisecond' else t.run_at end,
        finished_at = case when t.status = 'canceled' then t.finished_at
                           when v.status in ('succeeded', 'failed') then now() end,
        ${leaseCleared(sql)}
      from v
      where t.id = v.id and t.lease_token = v.token and t.status in ('running', 'canceled')
      returning t.id, t.team_id, t.status, t.attempts, t.callback_url, t.failure_callback_url, t.traceparent, t.schedule_id,
        t.parent_id, t.notify
    ), sched as (
      -- A schedule counts failures in a row and forgets them on the first success. p is the
      -- row as it was before (for schedule.recovered: the first success after failures).
      update schedules s set last_status = upd.status,
        consecutive_failures = case when upd.status = 'succeeded' then 0 else s.consecutive_failures + 1 end
      from upd, schedules p where s.id = upd.schedule_id and p.id = s.id and upd.status in ('succeeded', 'failed')
      returning s.id, s.team_id, s.name, s.notify, s.consecutive_failures, p.consecutive_failures as prev_failures,
        upd.id as task_id, upd.status
    ), fails as materialized (
      -- task.failed per subject in this batch: the latest task and how many (see ev). Grouped
      -- on its own (materialized) so the planner cannot re-run the grouping per joined row.
      select upd.team_id, coalesce(upd.schedule_id::text, v.origin, '') as subject, max(upd.id::text)::uuid as id, count(*) as n
      from upd join v on v.id = upd.id left join sched on sched.id = upd.schedule_id
      where upd.status = 'failed' and upd.notify and sched.notify is distinct from 'false'::jsonb
      group by 1, 2
    ), ev as (
      -- The event outbox (shared/events.ts), in this statement so an event exists exactly when
      -- its change committed. task.failed is about the schedule when there is one, else the
      -- origin; notify false on the task or its schedule keeps it silent. Failures of one batch
      -- with the same subject are one event (the latest task, and "count"): 10,000 tasks failing
      -- against a dead origin are ~100 event rows, not 10,000, which keeps the drain's cost low
      -- (docs/notifications.md). schedule.failed on the first failure in a row,
      -- schedule.recovered on the first success after failures.
      insert into events (team_id, type, subject, data)
      select f.team_id, 'task.failed', f.subject,
        jsonb_build_object('task_id', upd.id, 'origin', v.origin, 'schedule_id', upd.schedule_id, 'schedule_name', sched.name,
          'attempts', upd.attempts, 'outcome', v.outcome, 'status_code', v.status_code, 'error', left(v.error, 500), 'count', f.n)
      from fails f join upd on upd.id = f.id join v on v.id = f.id left join sched on sched.id = upd.schedule_id
      union all
      select sched.team_id, case when sched.status = 'failed' then 'schedule.failed' else 'schedule.recovered' end, sched.id::text,
        jsonb_build_object('schedule_id', sched.id, 'schedule_name', sched.name, 'task_id', sched.task_id,
          'consecutive_failures', greatest(sched.consecutive_failures, sched.prev_failures),
          'outcome', v.outcome, 'status_code', v.status_code, 'error', left(v.error, 500))
      from sched join v on v.id = sched.task_id
      where sched.notify is distinct from 'false'::jsonb
        and ((sched.status = 'failed' and sched.consecutive_failures = 1) or (sched.status = 'succeeded' and sched.prev_failures > 0))
    ), att as (
      insert into task_attempts (task_id, attempt, team_id, started_at, finished_at, duration_ms, outcome,
        status_code, response_headers, response_body, response_encoding, response_truncated, error)
      select v.id, v.attempt, upd.team_id, v.started_at, v.finished_at, v.duration_ms, v.outcome,
        v.status_code, v.response_headers, v.response_body, v.response_encoding, v.response_truncated, v.error
      from v join upd on upd.id = v.id
      on conflict (task_id, attempt) do nothing
    ), cb as (
      -- callback_url hears of every terminal outcome, failure_callback_url of failures only.
      -- Times in the payload are ISO 8601 in UTC with Z, like every time the API shows.
      select upd.id, upd.team_id, upd.status, upd.attempts, upd.callback_url, upd.failure_callback_url, upd.traceparent,
        v.attempt, v.outcome, v.status_code, v.started_at, v.finished_at, v.duration_ms, v.error, x.cb_id, x.url
      from upd join v on v.id = upd.id
      cross join lateral (values (v.cb_id, upd.callback_url), (v.fcb_id, upd.failure_callback_url)) as x(cb_id, url)
      where x.url is not null
        and (upd.status = 'failed' or (upd.status = 'succeeded' and x.cb_id = v.cb_id))
    ), new_tasks as (
      -- The callbacks as new tasks (NewTask's columns), inserted by the one INSERT of tasks.
      select cb.cb_id as id, cb.team_id, cb.url, 'POST' as method, '{}'::jsonb as headers,
        jsonb_build_object('task_id', cb.id, 'status', cb.status, 'attempts', cb.attempts,
          'last_attempt', jsonb_build_object('attempt', cb.attempt, 'outcome', cb.outcome, 'status_code', cb.status_code,
            'started_at', to_char(cb.started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'finished_at', to_char(cb.finished_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'duration_ms', cb.duration_ms, 'error', cb.error))::text as body,
        true as body_is_json, null::timestamptz as run_at, 0 as delay_ms, ${DEFAULT_RETRY.max_retries}::int as max_retries,
        ${DEFAULT_RETRY.min_backoff_ms}::int as min_backoff_ms, ${DEFAULT_RETRY.max_backoff_ms}::int as max_backoff_ms,
        ${DEFAULT_TIMEOUT_MS}::int as timeout_ms, null::text as queue, 'callback' as label, null::text as callback_url,
        null::text as failure_callback_url, null::text as idempotency_key, cb.id as parent_id, null::uuid as schedule_id,
        null::timestamptz as scheduled_for, cb.traceparent, true as notify
      from cb
    ), ins as (${insertTaskRows(sql)}
    ), wake as (
      ${notifyWorkers(sql)} from ins limit 1
    )
    select upd.id, upd.status, upd.schedule_id, upd.parent_id, (select count(*) from wake) as woke from upd`;
  // ev is a data-modifying CTE: PostgreSQL runs it whether or not it is referenced.
  const byId = new Map(done.map((r) => [r.id, r]));
  return items.map(({ task }): Completed => {
    const r = byId.get(task.id);
    if (!r) return { written: false };
    return { written: true, status: r.status, origin: r.parent_id ? 'callback' : r.schedule_id ? 'schedule' : 'api' };
  });
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

// Deadlock and serialization failures are the database asking us to try again; the batch is
// lease-guarded, so running it twice is safe. Other errors go to the caller (the lease expires
// and the task is rescued).
const RETRYABLE = new Set(['40P01', '40001']);

async function completeWithRetry(sql: Queryable, items: Completion[], tries = 3): Promise<Completed[]> {
  for (let i = 1; ; i++) {
    try {
      return await completeTasks(sql, items);
    } catch (err) {
      if (i >= tries || !RETRYABLE.has((err as { code?: string }).code ?? '')) throw err;
    }
  }
}

export function createCompleter(
  sql: Queryable,
  opts: {
    maxBatch?: number;
    lanes?: number;
    onBatch?: (items: Completion[]) => void;
    hold?: Partial<OutcomeBufferOptions<Completion>>;
  } = {},
) {
  const write = async (items: Completion[]) => {
    const done = await completeWithRetry(sql, items);
    opts.onBatch?.(items); // the circuit breakers count the batch (worker/breaker-gate.ts); never throws
    return done;
  };
  const commit = createGroupCommit<Completion, Completed>(write, {
    maxBatch: opts.maxBatch ?? 200,
    lanes: opts.lanes ?? 2,
  });
  // An outcome the database could not take because it was away is held and written when it
  // answers (worker/outcome-buffer.ts), instead of being delivered again after its lease.
  const held = createOutcomeBuffer<Completion>({ sizeOf: completionBytes, isUnavailable: isUnavailableError, ...opts.hold });
  return {
    add: (item: Completion) => held.run(item, () => commit.add(item)),
    drain: () => commit.drain(),
    get pending() {
      return commit.pending;
    },
    held: held.held,
    /** On shutdown: stop waiting for the database (held outcomes fail: at least once). */
    close: held.close,
  };
}

/** Memory a held completion takes, roughly: the response kept (body at most 64 KiB) plus 1 KiB for the rest. */
function completionBytes({ result: r }: Completion): number {
  let n = 1024 + (r.responseBody?.length ?? 0) + (r.error?.length ?? 0);
  for (const [k, v] of Object.entries(r.responseHeaders ?? {})) n += k.length + String(v).length;
  return n;
}
