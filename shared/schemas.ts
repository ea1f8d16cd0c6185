// The request schemas: they validate every request and generate /openapi.json, so the
// contract and the checks cannot drift apart.
import { z } from 'zod';
import { cronProblem, timezoneProblem } from './cron.ts';
import { parseDelay } from './duration.ts';
import { headerValueProblem, timestampProblem } from './input-rules.ts';
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, DISPLAY_STATUSES } from './tasks.ts';

export const MAX_DELAY_MS = 365 * 24 * 3_600_000;
export const MAX_HEADERS = 64;

// Hop-by-hop headers, and the ones the worker writes itself (docs/api.md §4).
const RESERVED_HEADERS = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'te', 'upgrade', 'keep-alive', 'trailer']);
const RESERVED_PREFIXES = ['proxy-', 'webhook-', 'x-posthorn-'];
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/; // RFC 9110 field-name

export function headerNameProblem(name: string): string | null {
  const lower = name.toLowerCase();
  if (!TOKEN_RE.test(name)) return 'is not a valid header name';
  if (RESERVED_HEADERS.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p))) return 'is a reserved header';
  return null;
}

const headersSchema = z.record(z.string().max(256), z.string().max(8192)).superRefine((h, ctx) => {
  const names = Object.keys(h);
  if (names.length > MAX_HEADERS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_HEADERS} headers` });
  const seen = new Set<string>();
  for (const name of names) {
    const why = headerNameProblem(name);
    if (why) ctx.addIssue({ code: 'custom', path: [name], message: `header "${name}" ${why}` });
    // Not only CR/LF/NUL: "ключ☃", \x01 or \x7f were stored, then every attempt failed in undici.
    const bad = headerValueProblem(h[name]!);
    if (bad) ctx.addIssue({ code: 'custom', path: [name], message: bad });
    if (seen.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: [name], message: 'header given twice' });
    seen.add(name.toLowerCase());
  }
});

export const httpUrl = z
  .string()
  .max(4096)
  .superRefine((raw, ctx) => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not a valid URL' });
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'scheme must be http or https' });
    if (u.username || u.password)
      ctx.addIssue({ code: 'custom', message: 'credentials in the URL are not allowed; send an authorization header' });
  });

// Defaults: DEFAULT_RETRY in shared/tasks.ts (docs/retries.md), the one copy, which the
// completer's callback tasks use too.
export const retrySchema = z
  .strictObject({
    max_retries: z.number().int().min(0).max(100).default(DEFAULT_RETRY.max_retries),
    min_backoff_ms: z.number().int().min(0).max(86_400_000).default(DEFAULT_RETRY.min_backoff_ms),
    max_backoff_ms: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400_000)
      .default(DEFAULT_RETRY.max_backoff_ms),
  })
  .refine((r) => r.min_backoff_ms <= r.max_backoff_ms, {
    message: 'min_backoff_ms must not exceed max_backoff_ms',
    path: ['min_backoff_ms'],
  });

const delaySchema = z.union([z.number().int().min(0), z.string().max(32)]).superRefine((d, ctx) => {
  const ms = parseDelay(d);
  if (ms === null) ctx.addIssue({ code: 'custom', message: 'expected whole seconds or a duration like 90s, 5m, 1h30m, 2d' });
  else if (ms > MAX_DELAY_MS) ctx.addIssue({ code: 'custom', message: 'at most 365 days ahead' });
});

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] as const;
const name = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only');

/** A queue's name (docs/queues.md): what tasks name in `queue` and /api/v1/queues/:name takes. */
export const queueNameSchema = name(64);

/**
 * Per-key flow control (docs/queues.md): tasks of a team sharing `key` share these limits; the
 * most recent task's values apply. Without parallelism and rate_per_second the key limits nothing.
 */
export const flowControlSchema = z.strictObject({
  key: z.string().min(1).max(256),
  parallelism: z.number().int().min(1).max(10_000).optional(),
  rate_per_second: z.number().gt(0).max(10_000).optional(),
});
export type FlowControl = z.output<typeof flowControlSchema>;

// What a task asks for, without timing: shared by tasks and by schedules' templates.
const requestFields = {
  url: httpUrl,
  method: z.enum(METHODS).default('POST'),
  headers: headersSchema.default({}),
  body: z.unknown().optional().meta({ description: 'a string (sent as is) or any JSON value (sent as JSON)' }),
  retry: retrySchema.optional(),
  timeout_ms: z.number().int().min(1).max(900_000).default(DEFAULT_TIMEOUT_MS),
  queue: queueNameSchema.optional(),
  flow_control: flowControlSchema.optional(),
  callback_url: httpUrl.optional(),
  failure_callback_url: httpUrl.optional(),
  label: z.string().min(1).max(128).optional(),
};

function refuseBodyWithoutPayloadMethod(t: { method: string; body?: unknown }, ctx: z.RefinementCtx) {
  if ((t.method === 'GET' || t.method === 'HEAD') && t.body !== undefined && t.body !== null) {
    ctx.addIssue({ code: 'custom', path: ['body'], message: `${t.method} requests carry no body` });
  }
}

export const taskInputSchema = z
  .strictObject({
    ...requestFields,
    delay: delaySchema.optional(),
    run_at: z.iso
      .datetime({ offset: true })
      .superRefine((at, ctx) => {
        const why = timestampProblem(at);
        if (why) ctx.addIssue({ code: 'custom', message: why });
      })
      .optional(),
    idempotency_key: z.string().min(1).max(256).optional(),
    notify: z.boolean().optional().meta({ description: 'false: no task.failed notification for this task (docs/notifications.md)' }),
  })
  .superRefine((t, ctx) => {
    if (t.delay !== undefined && t.run_at !== undefined)
      ctx.addIssue({ code: 'custom', path: ['run_at'], message: 'give delay or run_at, not both' });
    if (t.run_at !== undefined && Date.parse(t.run_at) - Date.now() > MAX_DELAY_MS)
      ctx.addIssue({ code: 'custom', path: ['run_at'], message: 'at most 365 days ahead' });
    refuseBodyWithoutPayloadMethod(t, ctx);
  });

export type TaskInput = z.output<typeof taskInputSchema>;

const cronSchema = z
  .string()
  .max(256)
  .superRefine((c, ctx) => {
    const why = cronProblem(c);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });
const timezoneSchema = z
  .string()
  .max(64)
  .superRefine((tz, ctx) => {
    const why = timezoneProblem(tz);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });

export const scheduleInputSchema = z
  .strictObject({
    name: z.string().min(1).max(128),
    cron: cronSchema,
    timezone: timezoneSchema.default('UTC'),
    paused: z.boolean().default(false),
    notify: z
      .union([z.literal(false), z.record(z.string(), z.unknown())])
      .optional()
      .meta({ description: 'false: no schedule.* or task.failed notifications for this schedule (docs/notifications.md)' }),
    ...requestFields,
  })
  .superRefine(refuseBodyWithoutPayloadMethod);

export type ScheduleInput = z.output<typeof scheduleInputSchema>;

export const batchInputSchema = z.strictObject({ tasks: z.array(z.unknown()).min(1).max(1000) });

export const listTasksQuerySchema = z.strictObject({
  status: z.enum(DISPLAY_STATUSES).optional(),
  queue: z.string().max(64).optional(),
  schedule_id: z.uuid().optional(),
  label: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

export const problemSchema = z.object({
  status: z.number().int(),
  code: z.string(),
  title: z.string(),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
