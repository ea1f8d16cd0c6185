// Request plumbing shared by every route: JSON bodies, zod validation to problem+json, and a
// deadline so that a lost database answers 503 instead of hanging (docs/api.md §3: within 5 s).
import type { Readable } from 'node:stream';
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { type FieldError, problem } from '../shared/errors.ts';
import { findBadString, jsonTooDeep, MAX_JSON_DEPTH } from '../shared/input-rules.ts';

/** Timestamps in responses: RFC 3339 in UTC, null stays null. */
export const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw problem('unsupported_media_type', 'send the request body as application/json');
  }
  const text = await c.req.text();
  // Before JSON.parse, which recurses: 5,000 levels overflowed the stack (a 500).
  if (jsonTooDeep(text))
    throw problem('validation_failed', `JSON may nest at most ${MAX_JSON_DEPTH} levels`, [{ path: '', message: 'nested too deeply' }]);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw problem('validation_failed', `the body is not valid JSON: ${(e as Error).message}`, [{ path: '', message: 'invalid JSON' }]);
  }
  refuseBadStrings(value);
  return value;
}

/** 400 naming the first string (at any depth, keys included) with a NUL or a lone surrogate. */
export function refuseBadStrings(value: unknown, prefix = '') {
  const bad = findBadString(value, prefix);
  if (bad) throw problem('validation_failed', `${bad.path || '(body)'}: ${bad.message}`, [bad]);
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

export type DeadlineOptions = {
  /** 10 s: how long a client may take to send its body before it is answered 408 (docs/api.md, errors). */
  bodyTimeoutMs?: number;
  /** Runs when a request is answered 408: a slow client, to be logged as one. */
  onSlowBody?: (c: Context) => void;
};

/**
 * Fails the request with 503 when it has not finished after ms (the database is the usual
 * cause), or with 408 when the client itself has not sent its whole body within bodyTimeoutMs:
 * a stalled body (Content-Length 100 with 10 bytes sent, a chunked body that stops) is the
 * client's doing, and was answered "the database is not reachable" at 4.5 s before. While the
 * body is still arriving the 503 clock waits; once it has arrived, the handler gets ms again.
 * Whether the body has arrived is Node's IncomingMessage.complete (no socket with
 * app.request: then only the 503 deadline applies).
 */
export function deadline(ms: number, opts: DeadlineOptions = {}): MiddlewareHandler {
  const bodyMs = opts.bodyTimeoutMs ?? 10_000;
  return async function requestDeadline(c, next) {
    const started = Date.now();
    const incoming = (c.env as { incoming?: Readable & { complete: boolean } } | undefined)?.incoming;
    // Waiting for the client: the body has not all arrived, and it is not sitting unread in our
    // buffer (a full buffer pauses the socket while auth waits for the database: that is us).
    const clientIsSlow = () => !!incoming && !incoming.complete && incoming.readableLength < incoming.readableHighWaterMark;
    let timer: NodeJS.Timeout | undefined;
    const abort = new AbortController();
    deadlines.set(c.req.raw, abort.signal);
    const expired = new Promise<never>((_, reject) => {
      const fail = (err: Error) => {
        abort.abort(err);
        reject(err);
      };
      let waitedForBody = false;
      const check = () => {
        if (clientIsSlow()) {
          const left = started + bodyMs - Date.now();
          if (left <= 0) {
            opts.onSlowBody?.(c);
            fail(
              problem('request_timeout', `the request body did not arrive within ${bodyMs / 1000} s`, undefined, { connection: 'close' }),
            );
            return;
          }
          waitedForBody = true;
          timer = setTimeout(check, Math.min(250, left)); // a stalled request only
          return;
        }
        if (waitedForBody) {
          waitedForBody = false;
          timer = setTimeout(check, ms);
          return;
        }
        fail(new DeadlineError(`request took longer than ${ms} ms`));
      };
      timer = setTimeout(check, Math.min(ms, bodyMs));
    });
    // Not shared/timeout.ts's withTimeout: this timer re-arms itself while the body arrives.
    try {
      await Promise.race([next(), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}
