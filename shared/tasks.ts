// A task from validated input to stored row, and from row back to the API's view. Shared by
// the gateway (enqueue), the worker's callbacks and the scheduler: one insert path for all.
import { createHash, randomBytes } from 'node:crypto';
import type { Sql } from './db.ts';
import { parseDelay } from './duration.ts';
import { problem } from './errors.ts';
import { uuidv7 } from './ids.ts';
import type { TaskInput } from './schemas.ts';

export type NewTask = {
  id: string;
  team_id: string;
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | null;
  body_is_json: boolean;
  run_at: string | null; // absolute (ISO); null = now + delay_ms on the database clock
  delay_ms: number;
  max_retries: number;
  min_backoff_ms: number;
  max_backoff_ms: number;
  timeout_ms: number;
  queue: string | null;
  label: string | null;
  callback_url: string | null;
  failure_callback_url: string | null;
  idempotency_key: string | null;
  parent_id: string | null;
  schedule_id: string | null;
  scheduled_for: string | null;
  traceparent: string;
};

const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace a task's attempts join: the enqueue request's when it carried one, else a new one. */
export function taskTraceparent(incoming: string | undefined): string {
  const m = incoming ? TRACEPARENT_RE.exec(incoming.trim()) : null;
  if (m && !/^0+$/.test(m[1]!) && !/^0+$/.test(m[2]!)) return incoming!.trim();
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

/**
 * The bytes a task sends: a string as given, any other JSON value as JSON, nothing for null.
 * Refused (413) past maxBodyBytes, since that is what gets stored and sent.
 */
export function encodeBody(value: unknown, maxBodyBytes: number): { body: string | null; isJson: boolean } {
  const isJson = typeof value !== 'string' && value !== undefined && value !== null;
  const body = typeof value === 'string' ? value : isJson ? JSON.stringify(value) : null;
  if (body !== null && Buffer.byteLength(body) > maxBodyBytes) {
    const detail = `the task body is larger than ${maxBodyBytes} bytes when encoded`;
    throw problem('payload_too_large', detail, [{ path: 'body', message: detail }]);
  }
  return { body, isJson };
}

export function buildTask(
  input: TaskInput,
  ctx: { teamId: string; traceparent: string; maxBodyBytes: number; now?: number; extra?: Partial<NewTask> },
): NewTask {
  const now = ctx.now ?? Date.now();
  const { body, isJson } = encodeBody(input.body, ctx.maxBodyBytes);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v;
  // The defaults of retrySchema in shared/schemas.ts (docs/retries.md).
  const retry = input.retry ?? { max_retries: 8, min_backoff_ms: 10_000, max_backoff_ms: 3_600_000 };
  return {
    id: uuidv7(now),
    team_id: ctx.teamId,
    url: input.url,
    method: input.method,
    headers,
    body,
    body_is_json: isJson,
    run_at: input.run_at ? new Date(input.run_at).toISOString() : null,
    delay_ms: input.delay !== undefined ? parseDelay(input.delay)! : 0,
    max_retries: retry.max_retries,
    min_backoff_ms: retry.min_backoff_ms,
    max_backoff_ms: retry.max_backoff_ms,
    timeout_ms: input.timeout_ms,
    queue: input.queue ?? null,
    label: input.label ?? null,
    callback_url: input.callback_url ?? null,
    failure_callback_url: input.failure_callback_url ?? null,
    idempotency_key: input.idempotency_key ?? null,
    parent_id: null,
    schedule_id: null,
    scheduled_for: null,
    traceparent: ctx.traceparent,
    ...ctx.extra,
  };
}

// Ample: a schedule's body was checked against POSTHORN_MAX_BODY_BYTES when it was saved.
const NO_BODY_LIMIT = Number.MAX_SAFE_INTEGER;

/** The task for one tick of a schedule (scheduler ticks and the trigger endpoint; null = a manual run). */
export function taskForTick(s: { id: string; team_id: string | number; template: TaskInput }, scheduledFor: Date | null): NewTask {
  return buildTask(s.template, {
    teamId: String(s.team_id),
    traceparent: taskTraceparent(undefined),
    maxBodyBytes: NO_BODY_LIMIT,
    extra: { schedule_id: s.id, scheduled_for: scheduledFor?.toISOString() ?? null },
  });
}

/** What makes two requests "the same" for idempotency: the task as stored, minus its new id and trace. */
export function requestHash(t: NewTask): Buffer {
  const { id: _id, traceparent: _tp, ...rest } = t;
  return createHash('sha256').update(JSON.stringify(rest)).digest();
}

export type InsertedTask = { id: string; run_at: Date; created_at: Date };

export const TASK_NOTIFY_CHANNEL = 'posthorn_tasks';

/**
 * Inserts many tasks in one statement (one JSON parameter unpacked by jsonb_to_recordset) and
 * wakes the workers with NOTIFY when any of them is due now. NOTIFY is delivered on commit,
 * so a worker never wakes for a row it cannot see yet.
 */
export async function insertTasks(sql: Sql, tasks: NewTask[]): Promise<Map<string, InsertedTask>> {
  const rows = await sql<(InsertedTask & { due: boolean })[]>`
    with ins as (
      insert into tasks (id, team_id, status, url, method, headers, body, body_is_json, run_at,
        max_retries, min_backoff_ms, max_backoff_ms, timeout_ms, queue, label, callback_url,
        failure_callback_url, idempotency_key, parent_id, schedule_id, scheduled_for, traceparent)
      select r.id, r.team_id, 'pending', r.url, r.method, r.headers, r.body, r.body_is_json,
        greatest(coalesce(r.run_at, now() + r.delay_ms * interval '1 millisecond'), now()),
        r.max_retries, r.min_backoff_ms, r.max_backoff_ms, r.timeout_ms, r.queue, r.label, r.callback_url,
        r.failure_callback_url, r.idempotency_key, r.parent_id, r.schedule_id, r.scheduled_for, r.traceparent
      from jsonb_to_recordset(${sql.json(tasks as any)}::jsonb) as r(
        id uuid, team_id bigint, url text, method text, headers jsonb, body text, body_is_json boolean,
        run_at timestamptz, delay_ms bigint, max_retries int, min_backoff_ms int, max_backoff_ms int,
        timeout_ms int, queue text, label text, callback_url text, failure_callback_url text,
        idempotency_key text, parent_id uuid, schedule_id uuid, scheduled_for timestamptz, traceparent text)
      -- A cron tick is one task, however many leaders try (tasks_schedule_tick).
      on conflict (schedule_id, scheduled_for) where schedule_id is not null and scheduled_for is not null do nothing
      returning id, run_at, created_at
    ), wake as (
      select pg_notify(${TASK_NOTIFY_CHANNEL}, '') from ins where run_at <= now() limit 1
    )
    select ins.id, ins.run_at, ins.created_at, exists (select 1 from wake) as due from ins`;
  return new Map(rows.map((r) => [r.id, r]));
}

/** "scheduled" is how a pending task whose run_at is still ahead is shown (API.md §4 statuses). */
export function displayStatus(status: string, runAt: Date, now = Date.now()): string {
  return status === 'pending' && runAt.getTime() > now ? 'scheduled' : status;
}
