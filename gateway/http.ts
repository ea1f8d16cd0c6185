// Request plumbing shared by every route: JSON bodies, zod validation to problem+json, and a
// deadline so that a lost database answers 503 instead of hanging (API.md §3: within 5 s).
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { type FieldError, problem } from '../shared/errors.ts';
import { findNul } from '../shared/schemas.ts';
import { withTimeout } from '../shared/timeout.ts';

/** Timestamps in responses: RFC 3339 in UTC, null stays null. */
export const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw problem('unsupported_media_type', 'send the request body as application/json');
  }
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw problem('validation_failed', `the body is not valid JSON: ${(e as Error).message}`, [{ path: '', message: 'invalid JSON' }]);
  }
  const nulAt = findNul(value);
  if (nulAt !== null)
    throw problem('validation_failed', 'strings may not contain NUL characters', [{ path: nulAt, message: 'contains a NUL character' }]);
  return value;
}

export function toFieldErrors(error: z.ZodError, prefix: (string | number)[] = []): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    const base = [...prefix, ...issue.path.map(String)];
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push({ path: [...base, k].join('.'), message: 'unknown field' });
    } else out.push({ path: base.join('.'), message: issue.message });
  }
  return out;
}

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix: (string | number)[] = []): z.output<S> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const errors = toFieldErrors(res.error, prefix);
  throw problem('validation_failed', errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; '), errors);
}

export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

const deadlines = new WeakMap<Request, AbortSignal>();

/** Aborted when the request's deadline has passed and it has been answered 503. */
export const deadlineSignal = (c: Context): AbortSignal | undefined => deadlines.get(c.req.raw);

/**
 * A request answered 503 at its deadline must not go on to write afterwards: the client was told
 * to try again. Its handler keeps running (a query stuck in the driver's queue while the
 * database is away completes when it is back), so writes check this before they start.
 */
export function throwIfPastDeadline(c: Context) {
  deadlineSignal(c)?.throwIfAborted();
}

/** Fails the request with 503 when it has not finished after ms (the database is the usual cause). */
export function deadline(ms: number): MiddlewareHandler {
  return async function requestDeadline(c, next) {
    const abort = new AbortController();
    deadlines.set(c.req.raw, abort.signal);
    await withTimeout(next(), ms, () => {
      const err = new DeadlineError(`request took longer than ${ms} ms`);
      abort.abort(err);
      return err;
    });
  };
}
