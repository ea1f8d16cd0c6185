// Reads and state changes of one team's tasks. Every query names team_id: another team's id
// is simply not found (404, never 403: no existence leak).

import { fixedFragment, type Queryable } from '../../shared/db.ts';
import { isUuid } from '../../shared/ids.ts';
import {
  type DisplayStatus,
  displayStatus,
  leaseCleared,
  type NewTask,
  notifyWorkers,
  type Outcome,
  type TaskStatus,
} from '../../shared/tasks.ts';
import { iso } from '../http.ts';

/** A task_attempts row. */
export type AttemptRow = {
  task_id: string;
  attempt: number;
  team_id: string;
  started_at: Date;
  finished_at: Date;
  duration_ms: number;
  outcome: Outcome;
  status_code: number | null;
  response_headers: Record<string, string | string[]> | null;
  response_body: string | null;
  response_encoding: 'base64' | null;
  response_truncated: boolean;
  error: string | null;
};

/** A tasks row with its latest attempt (null before the first): the stored request plus its state. */
export type TaskRow = Omit<NewTask, 'run_at' | 'delay_ms' | 'scheduled_for' | 'traceparent'> & {
  status: TaskStatus;
  run_at: Date;
  scheduled_for: Date | null;
  traceparent: string | null;
  attempts: number;
  retry_base: number;
  started_at: Date | null;
  lease_token: string | null;
  lease_expires_at: Date | null;
  locked_by: string | null;
  created_at: Date;
  finished_at: Date | null;
  last_attempt: AttemptRow | null;
};

/** The task's columns and its latest attempt as one jsonb column, for `from tasks t`. */
export const taskWithLastAttempt = fixedFragment(
  (sql) =>
    sql`t.*, (select to_jsonb(a) from task_attempts a where a.team_id = t.team_id and a.task_id = t.id order by a.attempt desc limit 1) as last_attempt`,
);

/** jsonb carries the attempt's timestamps as text: make them Dates again. */
export function parseLastAttempt(row: TaskRow): TaskRow {
  const a = row.last_attempt;
  if (a) row.last_attempt = { ...a, started_at: new Date(a.started_at), finished_at: new Date(a.finished_at) };
  return row;
}

export function attemptView(a: AttemptRow, withBody = true) {
  return {
    attempt: a.attempt,
    started_at: iso(a.started_at),
    finished_at: iso(a.finished_at),
    duration_ms: a.duration_ms,
    outcome: a.outcome,
    status_code: a.status_code ?? null,
    error: a.error ?? null,
    ...(withBody
      ? {
          response_headers: a.response_headers ?? null,
          response_body: a.response_body ?? null,
          ...(a.response_encoding ? { response_encoding: a.response_encoding } : {}),
          response_truncated: a.response_truncated,
        }
      : {}),
  };
}

export function taskView(t: TaskRow, now = Date.now()) {
  const waiting = t.status === 'pending' || t.status === 'retrying';
  return {
    id: t.id,
    status: displayStatus(t.status, t.run_at, now),
    url: t.url,
    method: t.method,
    headers: t.headers,
    body: t.body === null ? null : t.body_is_json ? JSON.parse(t.body) : t.body,
    // A forwarded webhook's binary body (gateway/inbound.ts) shows as base64, and says so.
    ...(t.body_encoding ? { body_encoding: t.body_encoding } : {}),
    run_at: iso(t.run_at),
    retry: { max_retries: t.max_retries, min_backoff_ms: t.min_backoff_ms, max_backoff_ms: t.max_backoff_ms },
    timeout_ms: t.timeout_ms,
    idempotency_key: t.idempotency_key,
    queue: t.queue,
    flow_control: flowControlView(t),
    label: t.label,
    callback_url: t.callback_url,
    failure_callback_url: t.failure_callback_url,
    notify: t.notify,
    auth: t.auth_connection ? { connection: t.auth_connection } : null,
    success: t.success ?? null,
    attempts: t.attempts,
    next_attempt_at: waiting ? iso(t.run_at) : null,
    last_attempt: t.last_attempt ? attemptView(t.last_attempt, false) : null,
    schedule_id: t.schedule_id,
    scheduled_for: iso(t.scheduled_for),
    parent_id: t.parent_id,
    created_at: iso(t.created_at),
    finished_at: iso(t.finished_at),
  };
}

/** A task's flow_control as given: only the fields it carried. */
function flowControlView(t: Pick<TaskRow, 'flow_key' | 'flow_parallelism' | 'flow_rate'>) {
  if (t.flow_key === null || t.flow_key === undefined) return null;
  return {
    key: t.flow_key,
    ...(t.flow_parallelism !== null ? { parallelism: t.flow_parallelism } : {}),
    ...(t.flow_rate !== null ? { rate_per_second: t.flow_rate } : {}),
  };
}

export async function getTask(sql: Queryable, teamId: string, id: string): Promise<TaskRow | null> {
  if (!isUuid(id)) return null;
  const [row] = await sql<TaskRow[]>`select ${taskWithLastAttempt(sql)} from tasks t where t.id = ${id} and t.team_id = ${teamId}`;
  return row ? parseLastAttempt(row) : null;
}

export type ListFilter = { status?: DisplayStatus; queue?: string; schedule_id?: string; label?: string; limit: number; cursor?: string };

export const encodeCursor = (id: string) => Buffer.from(id).toString('base64url');
export function decodeCursor(cursor: string): string | null {
  const id = Buffer.from(cursor, 'base64url').toString();
  return isUuid(id) ? id : null;
}

export async function listTasks(sql: Queryable, teamId: string, f: ListFilter & { after?: string }) {
  const statusCond =
    f.status === 'scheduled'
      ? sql`and t.status = 'pending' and t.run_at > now()`
      : f.status === 'pending'
        ? sql`and t.status = 'pending' and t.run_at <= now()`
        : f.status
          ? sql`and t.status = ${f.status}`
          : sql``;
  const rows = await sql<TaskRow[]>`
    select ${taskWithLastAttempt(sql)}
    from tasks t
    where t.team_id = ${teamId} ${statusCond}
      ${f.queue ? sql`and t.queue = ${f.queue}` : sql``}
      ${f.schedule_id ? sql`and t.schedule_id = ${f.schedule_id}` : sql``}
      ${f.label ? sql`and t.label = ${f.label}` : sql``}
      ${f.after ? sql`and t.id < ${f.after}` : sql``}
    order by t.id desc
    limit ${f.limit + 1}`;
  rows.forEach(parseLastAttempt);
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  return { data: page, next_cursor: more ? encodeCursor(page.at(-1)!.id) : null };
}

export async function listAttempts(sql: Queryable, teamId: string, taskId: string) {
  return sql<AttemptRow[]>`select * from task_attempts where task_id = ${taskId} and team_id = ${teamId} order by attempt`;
}

/** Cancels an unfinished task. A running attempt finishes, but the completer will not retry it. */
export async function cancelTask(sql: Queryable, teamId: string, id: string): Promise<'canceled' | 'finished' | 'missing'> {
  if (!isUuid(id)) return 'missing';
  // The status condition sits on the UPDATE itself, so a concurrent completion is re-checked
  // under the row lock and a just-finished task is never turned into canceled.
  // finished_at is the moment of the cancel (shared/tasks.ts, canceled).
  const [row] = await sql<{ canceled: boolean; found: boolean }[]>`
    with upd as (
      update tasks set status = 'canceled', finished_at = now()
      where id = ${id} and team_id = ${teamId} and status in ('pending', 'running', 'retrying')
      returning id)
    select exists (select 1 from upd) as canceled,
           exists (select 1 from tasks where id = ${id} and team_id = ${teamId}) as found`;
  if (!row!.found) return 'missing';
  return row!.canceled ? 'canceled' : 'finished';
}

/**
 * A failed or canceled task runs again with a fresh set of retries: retry_base moves up to the
 * attempts so far, and the old attempts stay. Clearing lease_token means a canceled task's
 * still-running attempt can no longer write its result over the new run.
 */
type Replayed = { id: string; status: TaskStatus; run_at: Date; created_at: Date };

export async function replayTask(sql: Queryable, teamId: string, id: string): Promise<Replayed | 'not_replayable' | 'missing'> {
  if (!isUuid(id)) return 'missing';
  const [row] = await sql<(Partial<Replayed> & { found: boolean })[]>`
    with upd as (
      update tasks set status = 'pending', run_at = now(), retry_base = attempts, finished_at = null, ${leaseCleared(sql)}
      where id = ${id} and team_id = ${teamId} and status in ('failed', 'canceled')
      returning id, status, run_at, created_at),
    wake as (${notifyWorkers(sql)} from upd)
    select upd.*, (select count(*) from wake) as woke,
           exists (select 1 from tasks where id = ${id} and team_id = ${teamId}) as found
    from (select 1) one left join upd on true`;
  if (!row!.found) return 'missing';
  if (!row!.id) return 'not_replayable';
  return row as Replayed;
}
