// One HTTP attempt with undici: the stored request plus Posthorn's headers, a timeout over the
// whole attempt, a bounded read of the response, and the outcome classified.
import { isUtf8 } from 'node:buffer';
import type { Dispatcher } from 'undici';
import { randomHex } from '../shared/ids.ts';
import { version } from '../shared/version.ts';
import { AuthError, type Credentials } from './connections/credentials.ts';
import { judgeSuccess } from './connections/success.ts';
import { request } from './http.ts';
import type { ClaimedTask } from './producer.ts';
import { requestBody } from './request-body.ts';
import type { Outcome } from './retry.ts';

export const STORED_BODY_BYTES = 64 * 1024; // kept with the attempt (docs/api.md §4)
export const MAX_READ_BYTES = 10 * 1024 * 1024; // reading stops here (docs/api.md §6)

export type AttemptResult = {
  outcome: Outcome;
  statusCode: number | null;
  responseHeaders: Record<string, string | string[]> | null;
  responseBody: string | null;
  responseEncoding: 'base64' | null;
  responseTruncated: boolean;
  retryAfter?: string;
  /** Set when a success rule decided (worker/connections/success.ts); else the outcome decides. */
  retryable?: boolean;
  error: string | null;
  startedAt: Date;
  finishedAt: Date;
};

export type ExecutorDeps = {
  dispatcher: Dispatcher;
  isBlocked?: (err: unknown) => boolean;
  /**
   * Adds signature headers (Standard Webhooks) for the body about to be sent. May look the
   * team's secrets up; a failure fails the attempt (retryable) rather than sending it unsigned.
   * `body` is the bytes sent (sentBody), decoded once per attempt.
   */
  sign?: (task: ClaimedTask, headers: Record<string, string>, body: string | Buffer | null) => void | Promise<void>;
  /** Tracing on: the HTTP client span around the request; its traceparent is what the target gets. */
  clientSpan?: (task: ClaimedTask) => { traceparent: string; end(result: AttemptResult): void };
  /** The `authorization` of tasks that name a connection (worker/connections/credentials.ts). */
  auth?: Credentials;
};

const USER_AGENT = `Posthorn/${version}`;

/** A child span id in the task's trace, so every attempt joins the enqueue request's trace. */
function childTraceparent(parent: string | null): string | undefined {
  if (!parent) return undefined;
  const [v, traceId, , flags] = parent.split('-');
  return `${v}-${traceId}-${randomHex(8)}-${flags}`;
}

export function outgoingHeaders(task: ClaimedTask, traceparent = childTraceparent(task.traceparent)): Record<string, string> {
  const h: Record<string, string> = { ...task.headers };
  if ((task.body !== null || task.body_bytes != null) && h['content-type'] === undefined) {
    h['content-type'] = task.body_is_json ? 'application/json' : 'text/plain; charset=utf-8';
  }
  h['user-agent'] = USER_AGENT;
  h['x-posthorn-task-id'] = task.id;
  h['x-posthorn-attempt'] = String(task.attempts);
  h['x-posthorn-retried'] = String(task.attempts - 1);
  if (task.schedule_id) h['x-posthorn-schedule-id'] = task.schedule_id;
  if (traceparent) h['traceparent'] = traceparent;
  return h;
}

/** The bytes a task sends: its stored text, or the bytes of a base64 body (body_encoding). */
export function sentBody(task: Pick<ClaimedTask, 'body' | 'body_encoding'>): string | Buffer | null {
  if (task.body === null) return null;
  return task.body_encoding === 'base64' ? Buffer.from(task.body, 'base64') : task.body;
}

/** Stored text where the bytes are UTF-8 without NUL (PostgreSQL text cannot hold NUL), else base64. */
export function encodeStoredBody(buf: Buffer): { body: string; encoding: 'base64' | null } {
  // The common case, a whole small response: isUtf8 checks without building a TextDecoder per
  // attempt (1.4% of a worker's busy time in the drain's profile, docs/bench.md).
  if (buf.length < STORED_BODY_BYTES && isUtf8(buf)) {
    const text = buf.toString('utf8');
    if (!text.includes('\0')) return { body: text, encoding: null };
  }
  try {
    // stream: true leaves a multi-byte character cut at the 64 KiB edge out instead of failing.
    const text = new TextDecoder('utf-8', { fatal: true }).decode(buf, { stream: true });
    if (!text.includes('\0')) return { body: text, encoding: null };
  } catch {
    /* not UTF-8: fall through to base64 */
  }
  return { body: buf.toString('base64'), encoding: 'base64' };
}

type ErrorLike = { code?: string; message?: string; name?: string; cause?: { code?: string } } | null | undefined;

function classifyError(thrown: unknown, signal: AbortSignal, deps: ExecutorDeps): { outcome: Outcome; error: string } {
  const err = thrown as ErrorLike;
  if (deps.isBlocked?.(thrown)) return { outcome: 'blocked', error: String(err?.message) };
  const code = err?.code ?? err?.cause?.code;
  if (signal.aborted && (signal.reason as ErrorLike)?.name === 'TimeoutError') return { outcome: 'timeout', error: 'timed out' };
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return { outcome: 'timeout', error: `${code}: ${err?.message}` };
  }
  return { outcome: 'network_error', error: code ? `${code}: ${err?.message}` : String(err?.message ?? thrown) };
}

/** Aborts an attempt as timed out: the reason executeAttempt reads as outcome `timeout`. */
export const timeoutReason = () => new DOMException('the attempt took longer than timeout_ms', 'TimeoutError');

/**
 * Performs one attempt; never throws. The caller owns `signal`: aborted with timeoutReason()
 * at the task's deadline (the worker runs one timer for all attempts, not one per attempt),
 * with anything else when shutting down. undici's headers and body timeouts are a backstop.
 * `body`: the bytes to send, when the claim left them out (worker/task-body.ts); else the
 * task's own, decoded once here for the signature and the request (and its repeat after a 401).
 */
export function executeAttempt(
  task: ClaimedTask,
  deps: ExecutorDeps,
  signal: AbortSignal,
  body: string | Buffer | null = sentBody(task),
): Promise<AttemptResult> {
  // Not async: no frame of this function holds `body` while the attempt waits (send lets it go).
  const span = deps.clientSpan?.(task);
  const sent = send(task, body, deps, signal, span?.traceparent);
  if (!span) return sent;
  return sent.then((result) => {
    span.end(result);
    return result;
  });
}

async function send(
  task: ClaimedTask,
  body: string | Buffer | null,
  deps: ExecutorDeps,
  signal: AbortSignal,
  traceparent?: string,
): Promise<AttemptResult> {
  const startedAt = new Date();
  const headers = outgoingHeaders(task, traceparent ?? childTraceparent(task.traceparent));
  const base = { startedAt, responseHeaders: null, responseBody: null, responseEncoding: null, responseTruncated: false } as const;
  try {
    await deps.sign?.(task, headers, body);
    if (task.auth_connection) {
      if (!deps.auth) throw new AuthError('this worker resolves no connections');
      await deps.auth.apply(task, headers, signal);
    }
    const options = {
      method: task.method as Dispatcher.HttpMethod,
      headers,
      body: requestBody(body, headers),
      dispatcher: deps.dispatcher,
      signal,
      headersTimeout: task.timeout_ms,
      bodyTimeout: task.timeout_ms,
    };
    // Only a repeat after a 401 sends the body again. Otherwise this attempt lets go of it now, and
    // a large body is freed once written (worker/request-body.ts), not when the answer comes.
    const repeat = task.auth_connection ? body : null;
    body = null;
    let res = await request(task.url, options);
    // A 401 to an OAuth2 token: a new one, and the request once more within this attempt.
    if (res.statusCode === 401 && task.auth_connection) {
      const first = res;
      const again = await deps.auth!.renew(task, headers, signal).catch(async (err) => {
        // The 401's body is not wanted: dump frees its socket. (destroy() without an error
        // listener raised an uncaught AbortError.)
        await first.body.dump().catch(() => {});
        throw err;
      });
      if (again) {
        await first.body.dump();
        // A body streamed to the first request is used up: make it again.
        res = await request(task.url, { ...options, body: requestBody(repeat, headers) });
      }
    }
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let total = 0;
    let cut = false;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (keptBytes < STORED_BODY_BYTES) {
        const part = chunk.subarray(0, STORED_BODY_BYTES - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      if (total > MAX_READ_BYTES) {
        cut = true;
        res.body.destroy();
        break;
      }
    }
    const keptBody = Buffer.concat(kept);
    const stored = encodeStoredBody(keptBody);
    // A success rule changes the outcome only: the response is recorded either way.
    const verdict = task.success ? judgeSuccess(task.success, res.statusCode, keptBody) : null;
    const ok = verdict ? verdict.ok : res.statusCode >= 200 && res.statusCode < 300;
    const retryAfter = res.headers['retry-after'];
    return {
      ...base,
      outcome: ok ? 'success' : 'http_error',
      statusCode: res.statusCode,
      responseHeaders: res.headers as Record<string, string | string[]>,
      responseBody: stored.body,
      responseEncoding: stored.encoding,
      responseTruncated: total > STORED_BODY_BYTES,
      retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      retryable: verdict && !verdict.ok ? verdict.retryable : undefined,
      error:
        [
          ok ? null : verdict && !verdict.ok ? verdict.error : `HTTP ${res.statusCode}`,
          cut ? `response cut off after ${MAX_READ_BYTES} bytes` : null,
        ]
          .filter(Boolean)
          .join('; ') || null,
      finishedAt: new Date(),
    };
  } catch (err) {
    if (err instanceof AuthError && !signal.aborted) {
      return { ...base, outcome: 'auth_error', statusCode: err.statusCode, error: err.message, finishedAt: new Date() };
    }
    return { ...base, ...classifyError(err, signal, deps), statusCode: null, finishedAt: new Date() };
  }
}
