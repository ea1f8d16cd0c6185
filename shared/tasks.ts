// The task's one home: its statuses and who moves it between them, the default retry policy,
// the row a new task becomes and the one statement that inserts it (used by the gateway's
// enqueue, the scheduler's ticks and the completer's callback tasks), the SQL fragments that
// transitions share, and the API's view of a status.
import { createHash } from 'node:crypto';
import { fixedFragment, type Queryable } from './db.ts';
import { parseDelay } from './duration.ts';
import { randomHex, uuidv7 } from './ids.ts';
import { tasksEnqueued } from './metrics.ts';
import type { SuccessRule, TaskInput } from './schemas.ts';

// ---- lifecycle ----

/**
 * Every status a task row holds (migration 001 checks the column against this list), and
 * which part of Posthorn moves a task in and out of it, the way River documents its job states.
 * Every transition is one guarded UPDATE (or the INSERT), so two movers never both win.
 */
export const TASK_STATUSES = [
  /**
   * Waiting for run_at; shown as "scheduled" while run_at is ahead (displayStatus).
   * In: insertTasks (gateway enqueue and batch, scheduler ticks and the trigger endpoint,
   * completer's callback tasks); rescuer (lease expired, retries left); worker shutdown
   * (releaseTasks: an aborted attempt is given back without using up an attempt); the
   * circuit breaker gate (releaseHeld in worker/breaker-store.ts: a claimed task whose breaker
   * is open goes back, its claim undone, run_at the breaker's next look); replay.
   * Out: producer claim → running; cancel → canceled.
   */
  'pending',
  /**
   * An attempt holds a lease (lease_token, lease_expires_at, locked_by are set only here).
   * In: producer claim (worker/producer.ts) from pending or retrying.
   * Out: completer → succeeded, retrying or failed; rescuer → pending or failed; releaseTasks
   * → pending; releaseHeld (open breaker) → pending or retrying; cancel → canceled (the attempt runs on; its result is recorded, not acted on).
   */
  'running',
  /**
   * Failed an attempt that may be retried; run_at is when the next one may start.
   * In: completer (worker/completer.ts); releaseHeld (an open breaker put a retry back).
   * Out: producer claim → running; cancel → canceled.
   */
  'retrying',
  /** Terminal. In: completer (a 2xx). Out: only the pruner, which deletes it after the retention. */
  'succeeded',
  /**
   * Terminal. In: completer (not retryable, or the retries are spent); rescuer (lease expired
   * with the retries spent). Out: replay → pending (a fresh set of retries); the pruner.
   */
  'failed',
  /**
   * Terminal. In: cancel (DELETE /api/v1/tasks/:id) from pending, running or retrying;
   * finished_at is the moment of the cancel, also when an attempt was still running then (its
   * own end is the attempt row's finished_at). Out: replay → pending; the pruner.
   */
  'canceled',
] as const;

export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * The statuses a task ends in. finished_at is set exactly when the status is one of these
 * (migration 005's tasks_finished_at_terminal CHECK).
 */
export const TERMINAL_STATUSES = ['succeeded', 'failed', 'canceled'] as const satisfies readonly TaskStatus[];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export const isTerminal = (s: TaskStatus): s is TerminalStatus => (TERMINAL_STATUSES as readonly string[]).includes(s);

/** What the API shows and filters by: the stored statuses plus "scheduled" (docs/api.md §4). */
export const DISPLAY_STATUSES = ['scheduled', ...TASK_STATUSES] as const;
export type DisplayStatus = (typeof DISPLAY_STATUSES)[number];

/** "scheduled" is how a pending task whose run_at is still ahead is shown. */
export function displayStatus(status: TaskStatus, runAt: Date, now = Date.now()): DisplayStatus {
  return status === 'pending' && runAt.getTime() > now ? 'scheduled' : status;
}

// ---- defaults ----

/** How an attempt ended (task_attempts.outcome; worker/retry.ts decides what follows). */
export type Outcome = 'success' | 'http_error' | 'timeout' | 'network_error' | 'blocked' | 'auth_error';

export type RetryPolicy = { max_retries: number; min_backoff_ms: number; max_backoff_ms: number };

/**
 * The retry policy of a task that gives none, callback tasks included (docs/retries.md): 8
 * retries (9 attempts), waits of 10 s, 20 s, 40 s, ... 1280 s plus up to 25% upward jitter,
 * 42.5 to 53 minutes in all, so a receiver down for a deploy loses nothing (worker/retry.ts).
 */
export const DEFAULT_RETRY: Readonly<RetryPolicy> = { max_retries: 8, min_backoff_ms: 10_000, max_backoff_ms: 3_600_000 };

/** timeout_ms of a task that gives none, callback tasks included. */
export const DEFAULT_TIMEOUT_MS = 30_000;

export type NewTask = {
  id: string;
  team_id: string;
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | null;
  body_is_json: boolean;
  /** 'base64': `body` holds bytes that are not text (a forwarded webhook, gateway/inbound.ts). */
  body_encoding?: 'base64' | null;
  run_at: string | null; // absolute (ISO); null = now + delay_ms on the database clock
  delay_ms: number;
  max_retries: number;
  min_backoff_ms: number;
  max_backoff_ms: number;
  timeout_ms: number;
  queue: string | null;
  /** flow_control (docs/queues.md): its key and limits; all null without one. */
  flow_key: string | null;
  flow_parallelism: number | null;
  flow_rate: number | null;
  label: string | null;
  callback_url: string | null;
  failure_callback_url: string | null;
  idempotency_key: string | null;
  parent_id: string | null;
  schedule_id: string | null;
  scheduled_for: string | null;
  traceparent: string;
  /** false: a final failure sends no task.failed notification. */
  notify: boolean;
  /** The connection whose credentials go into `authorization` (docs/connections.md); null: none. */
  auth_connection: string | null;
  /** What counts as success instead of any 2xx (docs/connections.md); null: any 2xx. */
  success: SuccessRule | null;
  /** Enqueued through the QStash-compatible API (docs/qstash.md): deliveries also carry Upstash-Signature. */
  qstash?: boolean;
};

const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace a task's attempts join: the enqueue request's when it carried one, else a new one. */
export function taskTraceparent(incoming: string | undefined): string {
  const m = incoming ? TRACEPARENT_RE.exec(incoming.trim()) : null;
  if (m && !/^0+$/.test(m[1]!) && !/^0+$/.test(m[2]!)) return incoming!.trim();
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

export type EncodedBody = { body: string | null; isJson: boolean };

/** The bytes a task sends: a string as given, any other JSON value as JSON, nothing for null. */
export function encodeBody(value: unknown): EncodedBody {
  const isJson = typeof value !== 'string' && value !== undefined && value !== null;
  const body = typeof value === 'string' ? value : isJson ? JSON.stringify(value) : null;
  return { body, isJson };
}

export type BodyVerdict = { ok: true } | { ok: false; detail: string };

/** Whether an encoded body fits in maxBodyBytes (what gets stored and sent); the gateway answers 413 when not. */
export function checkBodySize(body: string | null, maxBodyBytes: number): BodyVerdict {
  if (body === null || Buffer.byteLength(body) <= maxBodyBytes) return { ok: true };
  return { ok: false, detail: `the task body is larger than ${maxBodyBytes} bytes when encoded` };
}

export function buildTask(input: TaskInput, ctx: { teamId: string; traceparent: string; now?: number; extra?: Partial<NewTask> }): NewTask {
  const now = ctx.now ?? Date.now();
  const { body, isJson } = encodeBody(input.body);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v;
  const retry = input.retry ?? DEFAULT_RETRY;
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
    flow_key: input.flow_control?.key ?? null,
    flow_parallelism: input.flow_control?.parallelism ?? null,
    flow_rate: input.flow_control?.rate_per_second ?? null,
    label: input.label ?? null,
    callback_url: input.callback_url ?? null,
    failure_callback_url: input.failure_callback_url ?? null,
    idempotency_key: input.idempotency_key ?? null,
    parent_id: null,
    schedule_id: null,
    scheduled_for: null,
    traceparent: ctx.traceparent,
    notify: input.notify ?? true,
    auth_connection: input.auth?.connection ?? null,
    success: input.success ?? null,
    ...ctx.extra,
  };
}

/**
 * The task for one tick of a schedule (scheduler ticks and the trigger endpoint; null = a
 * manual run). The body's size was checked when the schedule was saved.
 */
export function taskForTick(
  s: { id: string; team_id: string | number; template: TaskInput; qstash?: boolean },
  scheduledFor: Date | null,
): NewTask {
  return buildTask(s.template, {
    teamId: String(s.team_id),
    traceparent: taskTraceparent(undefined),
    extra: { schedule_id: s.id, scheduled_for: scheduledFor?.toISOString() ?? null, qstash: s.qstash === true },
  });
}

/** What makes two requests "the same" for idempotency: the task as stored, minus its new id and trace. */
export function requestHash(t: NewTask): Buffer {
  const { id: _id, traceparent: _tp, ...rest } = t;
  return createHash('sha256').update(JSON.stringify(rest)).digest();
}

export type InsertedTask = { id: string; run_at: Date; created_at: Date };

export const TASK_NOTIFY_CHANNEL = 'posthorn_tasks';

// ---- SQL shared by the transitions ----

/** Ends a lease: every move out of running clears all three lease columns together. */
export const leaseCleared = fixedFragment((sql) => sql`lease_token = null, lease_expires_at = null, locked_by = null`);

/**
 * A CTE body that wakes the workers (producers LISTEN on TASK_NOTIFY_CHANNEL). NOTIFY is
 * delivered on commit, so a worker never wakes for a row it cannot see yet.
 */
export const notifyWorkers = fixedFragment((sql) => sql`select pg_notify(${TASK_NOTIFY_CHANNEL}, '')`);

/**
 * The one INSERT of new tasks: every task comes into being through here, as pending. It reads
 * the CTE `new_tasks`, which the statement around it defines with NewTask's columns (run_at
 * null = now + delay_ms on the database's clock; a run_at in the past is now). Returns id,
 * run_at and created_at of each row inserted.
 */
export const insertTaskRows = fixedFragment(
  (sql) => sql`
  insert into tasks (id, team_id, status, url, method, headers, body, body_is_json, run_at,
    max_retries, min_backoff_ms, max_backoff_ms, timeout_ms, queue, label, callback_url,
    failure_callback_url, idempotency_key, parent_id, schedule_id, scheduled_for, traceparent, notify, body_encoding,
    flow_key, flow_parallelism, flow_rate, auth_connection, success, qstash)
  select r.id, r.team_id, 'pending', r.url, r.method, r.headers, r.body, r.body_is_json,
    greatest(coalesce(r.run_at, now() + r.delay_ms * interval '1 millisecond'), now()),
    r.max_retries, r.min_backoff_ms, r.max_backoff_ms, r.timeout_ms, r.queue, r.label, r.callback_url,
    r.failure_callback_url, r.idempotency_key, r.parent_id, r.schedule_id, r.scheduled_for, r.traceparent,
    coalesce(r.notify, true), r.body_encoding, r.flow_key, r.flow_parallelism, r.flow_rate, r.auth_connection, r.success,
    coalesce(r.qstash, false)
  from new_tasks as r
  -- A cron tick is one task, however many leaders try (tasks_schedule_tick).
  on conflict (team_id, schedule_id, scheduled_for) where schedule_id is not null and scheduled_for is not null do nothing
  returning id, run_at, created_at`,
);

/**
 * A flow key's limits are the most recent task's (docs/queues.md): the newest task per key in
 * this batch writes them. Keys in key order, so two batches never lock two keys in opposite
 * orders. A batch without keys finds no rows here and writes nothing.
 */
const upsertFlowKeys = fixedFragment(
  (sql) => sql`
  insert into flow_keys (team_id, key, parallelism, rate_per_second)
  select distinct on (r.team_id, r.flow_key) r.team_id, r.flow_key, r.flow_parallelism, r.flow_rate
  from new_tasks r where r.flow_key is not null
  order by r.team_id, r.flow_key, r.id desc
  on conflict (team_id, key) do update set parallelism = excluded.parallelism,
    rate_per_second = excluded.rate_per_second, updated_at = now()`,
);

/**
 * Inserts many tasks in one statement (one JSON parameter unpacked by jsonb_to_recordset) and
 * wakes the workers when any of them is due now.
 */
export async function insertTasks(sql: Queryable, tasks: NewTask[]): Promise<Map<string, InsertedTask>> {
  const rows = await sql<(InsertedTask & { due: boolean })[]>`
    with new_tasks as (
      select * from jsonb_to_recordset(${sql.json(tasks)}::jsonb) as j(
        id uuid, team_id bigint, url text, method text, headers jsonb, body text, body_is_json boolean,
        run_at timestamptz, delay_ms bigint, max_retries int, min_backoff_ms int, max_backoff_ms int,
        timeout_ms int, queue text, label text, callback_url text, failure_callback_url text,
        idempotency_key text, parent_id uuid, schedule_id uuid, scheduled_for timestamptz, traceparent text,
        notify boolean, body_encoding text, flow_key text, flow_parallelism int, flow_rate float8,
        auth_connection text, success jsonb, qstash boolean)
    ), ins as (${insertTaskRows(sql)}), flow as (${upsertFlowKeys(sql)}), wake as (
      ${notifyWorkers(sql)} from ins where run_at <= now() limit 1
    )
    select ins.id, ins.run_at, ins.created_at, exists (select 1 from wake) as due from ins`;
  // flow is a data-modifying CTE: PostgreSQL runs it whether or not it is referenced.
  tasksEnqueued.inc(rows.length);
  return new Map(rows.map((r) => [r.id, r]));
}
