// What the gateway answers, as zod schemas: /openapi.json is generated from them, and
// test/openapi.test.ts parses real responses with them (a field added to or dropped from a
// handler's answer without changing this file fails that test). Plain z.object: the document
// tells clients what is there, and leaves room to add fields later.
import { z } from 'zod';
import { listTasksQuerySchema, METHODS, problemSchema, scheduleInputSchema } from '../../shared/schemas.ts';

const timestamp = z.iso.datetime();
const taskId = z.string().meta({ description: 'opaque; ids sort by creation time' });
const taskStatus = listTasksQuerySchema.shape.status.unwrap();
const int = z.number().int();

export const healthSchema = z.object({ status: z.literal('ok') });

export const readySchema = z.object({
  status: z.enum(['ok', 'unavailable']),
  database: z.string().meta({ description: '"ok", or why the database did not answer' }),
  migrations: z.enum(['current', 'pending']).optional().meta({ description: 'absent when the database did not answer' }),
});

export const acceptedSchema = z.object({
  id: taskId,
  status: taskStatus.meta({ description: 'a new task is pending or scheduled; an idempotent replay shows the first task as it is now' }),
  run_at: timestamp,
  created_at: timestamp,
});

export const batchAcceptedSchema = z.object({
  tasks: z.array(z.object({ id: taskId, status: taskStatus, run_at: timestamp })).meta({ description: 'in the order sent' }),
});

export const replayedSchema = z.object({ id: taskId, status: taskStatus, run_at: timestamp });

export const triggeredSchema = acceptedSchema.extend({ schedule_id: z.string() });

export const attemptSummarySchema = z.object({
  attempt: int.min(1),
  started_at: timestamp,
  finished_at: timestamp,
  duration_ms: int,
  outcome: z.enum(['success', 'http_error', 'timeout', 'network_error', 'blocked']),
  status_code: int.nullable().meta({ description: "the target's HTTP status; null when no response arrived" }),
  error: z.string().nullable(),
});

export const attemptSchema = attemptSummarySchema.extend({
  response_headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])).nullable(),
  response_body: z.string().nullable().meta({ description: 'at most 64 KiB; base64 when response_encoding says so' }),
  response_encoding: z.literal('base64').optional().meta({ description: 'present only for a binary response body' }),
  response_truncated: z.boolean(),
});

export const attemptListSchema = z.object({ data: z.array(attemptSchema).meta({ description: 'oldest first' }) });

export const taskSchema = z.object({
  id: taskId,
  status: taskStatus,
  url: z.string(),
  method: z.enum(METHODS),
  headers: z.record(z.string(), z.string()),
  body: z.unknown().meta({ description: 'the string or JSON value sent; null for none' }),
  run_at: timestamp,
  retry: z.object({ max_retries: int, min_backoff_ms: int, max_backoff_ms: int }),
  timeout_ms: int,
  idempotency_key: z.string().nullable(),
  queue: z.string().nullable(),
  flow_control: z
    .object({ key: z.string(), parallelism: int.optional(), rate_per_second: z.number().optional() })
    .nullable()
    .meta({ description: 'per-key flow control as given (docs/queues.md); null without' }),
  label: z.string().nullable(),
  callback_url: z.string().nullable(),
  failure_callback_url: z.string().nullable(),
  notify: z.boolean().meta({ description: 'false: no task.failed notification for this task' }),
  attempts: int.meta({ description: 'attempts made so far' }),
  next_attempt_at: timestamp.nullable().meta({ description: 'when a pending, scheduled or retrying task runs next' }),
  last_attempt: attemptSummarySchema.nullable(),
  schedule_id: z.string().nullable(),
  scheduled_for: timestamp.nullable().meta({ description: 'the cron tick this task was made for' }),
  parent_id: z.string().nullable().meta({ description: 'for a callback: the task it reports on' }),
  created_at: timestamp,
  finished_at: timestamp.nullable(),
});

export const taskListSchema = z.object({
  data: z.array(taskSchema).meta({ description: 'newest first' }),
  next_cursor: z.string().nullable().meta({ description: 'pass as cursor for the next page; null on the last page' }),
});

// A schedule shows its stored template: the request fields as validated, defaults applied.
const { name, cron, timezone, paused, notify, body, ...templateFields } = scheduleInputSchema.shape;

export const scheduleSchema = z.object({
  id: z.string(),
  name,
  cron,
  timezone: z.string(),
  paused: z.boolean(),
  ...templateFields,
  body: z.unknown().meta({ description: 'the string or JSON value sent; null for none' }),
  notify: z.union([z.literal(false), z.record(z.string(), z.unknown())]).nullable(),
  next_run_at: timestamp.nullable().meta({ description: 'the next tick; null while paused' }),
  last_run_at: timestamp.nullable().meta({ description: 'the tick of the last task made' }),
  last_status: z.enum(['succeeded', 'failed']).nullable().meta({ description: "the last finished task's outcome" }),
  consecutive_failures: int,
  created_at: timestamp,
  updated_at: timestamp,
});

export const scheduleListSchema = z.object({ data: z.array(scheduleSchema).meta({ description: 'newest first, at most 1000' }) });

const role = z.enum(['read', 'write', 'admin']);

export const keySchema = z.object({ id: z.string(), name: z.string(), role, created_at: timestamp, revoked_at: timestamp.nullable() });

export const keyCreatedSchema = z.object({
  id: z.string(),
  name: z.string(),
  role,
  key: z.string().meta({ description: 'the API key; shown in this response only' }),
  created_at: timestamp,
});

export const keyListSchema = z.object({ data: z.array(keySchema).meta({ description: 'oldest first, revoked keys included' }) });

export const signingKeysSchema = z.object({
  current: z.string().meta({ description: 'whsec_ secret that signs every delivery' }),
  previous: z.string().nullable().meta({ description: 'still signs next to current until previous_expires_at' }),
  rotated_at: timestamp.nullable(),
  previous_expires_at: timestamp.nullable(),
});

export const teamSchema = z.object({
  slug: z.string(),
  name: z.string(),
  rate_limit: z.string().nullable().meta({ description: 'null: the gateway default (POSTHORN_RATE_LIMIT)' }),
  created_at: timestamp,
});

export const teamCreatedSchema = z.object({
  team: teamSchema,
  admin_key: z.string().meta({ description: "the team's first admin API key; shown in this response only" }),
});

export const teamListSchema = z.object({ data: z.array(teamSchema).meta({ description: 'oldest first' }) });

const channelType = z.enum(['email', 'slack', 'discord', 'webhook']);
export const channelSchema = z.object({
  id: z.string(),
  type: channelType,
  target: z.string().meta({ description: 'the e-mail address or webhook URL' }),
  events: z.array(z.string()),
  created_at: timestamp,
});
export const channelListSchema = z.object({ data: z.array(channelSchema).meta({ description: 'newest first' }), next_cursor: z.null() });
export const channelDeliverySchema = z.object({
  id: z.string(),
  kind: z.string().meta({ description: 'message, digest or test' }),
  event_type: z.string().nullable(),
  subject: z.string(),
  status: z.enum(['pending', 'retrying', 'sent', 'failed']),
  outcome: z.string().nullable(),
  attempts: int,
  last_status_code: int.nullable(),
  last_error: z.string().nullable(),
  next_attempt_at: timestamp.nullable(),
  created_at: timestamp,
  sent_at: timestamp.nullable(),
  history: z.array(z.record(z.string(), z.unknown())).meta({ description: 'one entry per send attempt' }),
});
export const channelDeliveryListSchema = z.object({
  data: z.array(channelDeliverySchema).meta({ description: 'the last 100, newest first' }),
  next_cursor: z.null(),
});

const circuitState = z.enum(['closed', 'open', 'half_open']);

export const circuitSchema = z.object({
  origin: z.string().meta({ description: 'scheme://host:port, the port written out: the breaker is per team and origin' }),
  state: circuitState,
  failure_rate: z.number().min(0).max(1).meta({ description: 'failures ÷ requests over the last 24 h' }),
  requests: int.meta({ description: 'attempts in the last 24 h' }),
  failures: int.meta({ description: 'retryable failures in the last 24 h (network errors, timeouts, 408, 425, 429, 5xx)' }),
  opened_at: timestamp.nullable().meta({ description: 'when the current open spell began; null when closed' }),
  next_probe_at: timestamp.nullable().meta({ description: 'while open: when one probe attempt may run' }),
  last_error: z.string().nullable(),
  endpoints: z
    .array(
      z.object({
        url: z.string().meta({ description: 'origin and path, never the query' }),
        last_status: int.nullable(),
        last_attempt_at: timestamp.nullable(),
        success_rate: z.number().min(0).max(1).nullable(),
      }),
    )
    .meta({ description: 'the 20 most requested in the last 24 h' }),
});

export const circuitListSchema = z.object({ data: z.array(circuitSchema).meta({ description: 'open first, then by origin' }) });

export const circuitDetailSchema = circuitSchema.extend({
  transitions: z
    .array(z.object({ at: timestamp, from: circuitState, to: circuitState, reason: z.string() }))
    .meta({ description: 'the last 50 changes of state, newest first' }),
});

export const statusPageSchema = z.object({
  public_url: z.string().nullable().meta({ description: '/status/<token>, readable without signing in; null when private' }),
});

const queueCounts = z.object(
  Object.fromEntries(['scheduled', 'pending', 'running', 'retrying', 'succeeded', 'failed', 'canceled'].map((k) => [k, int])),
);

export const queueSchema = z.object({
  name: z.string(),
  parallelism: int.nullable().meta({ description: 'null: no limit' }),
  rate_per_second: z.number().nullable().meta({ description: 'null: no limit' }),
  paused: z.boolean(),
  configured: z.boolean().meta({ description: 'false: no settings, only tasks naming it (no limits)' }),
  counts: queueCounts.meta({ description: "the queue's tasks per status" }),
  oldest_pending_age_ms: int.nullable().meta({ description: 'how long the oldest due pending task has waited; null when none' }),
  created_at: timestamp.nullable(),
  updated_at: timestamp.nullable(),
});

export const queueListSchema = z.object({
  data: z.array(queueSchema).meta({ description: 'configured queues, newest first, at most 1000' }),
  next_cursor: z.null(),
});

/** Component names in /openapi.json. A schema a route uses that is not named here is inlined. */
export const RESPONSE_SCHEMAS = {
  Problem: problemSchema,
  Health: healthSchema,
  Readiness: readySchema,
  Accepted: acceptedSchema,
  BatchAccepted: batchAcceptedSchema,
  Replayed: replayedSchema,
  Triggered: triggeredSchema,
  AttemptSummary: attemptSummarySchema,
  Attempt: attemptSchema,
  AttemptList: attemptListSchema,
  Task: taskSchema,
  TaskList: taskListSchema,
  Schedule: scheduleSchema,
  ScheduleList: scheduleListSchema,
  Key: keySchema,
  KeyCreated: keyCreatedSchema,
  KeyList: keyListSchema,
  SigningKeys: signingKeysSchema,
  Team: teamSchema,
  TeamCreated: teamCreatedSchema,
  TeamList: teamListSchema,
  Channel: channelSchema,
  ChannelList: channelListSchema,
  ChannelDelivery: channelDeliverySchema,
  ChannelDeliveryList: channelDeliveryListSchema,
  Circuit: circuitSchema,
  CircuitList: circuitListSchema,
  CircuitDetail: circuitDetailSchema,
  StatusPage: statusPageSchema,
  Queue: queueSchema,
  QueueList: queueListSchema,
} as const;
