// Retry policy as pure functions: `now` and `random` are passed in, so tests can pin them.
import type { Outcome, RetryPolicy } from '../shared/tasks.ts';

export type { Outcome, RetryPolicy };

/**
 * Exponential backoff with upward jitter (docs/retries.md): the wait before retry n (1-based)
 * is d = min(max_backoff_ms, min_backoff_ms × 2^(n-1)) plus up to 25% of d, so no retry comes
 * sooner than min_backoff_ms after a failure. (Full jitter, uniform in [0, d], let a retry follow
 * its failure after 120 ms, and the old defaults gave up 4 s after the first attempt.) With the
 * defaults (8 retries, 10 s, 1 h: DEFAULT_RETRY in shared/tasks.ts) d runs 10 s, 20 s, 40 s,
 * ... 1280 s: 42.5 to 53 minutes in all.
 */
export function backoffMs(retry: number, p: RetryPolicy, random: () => number): number {
  const d = Math.min(p.max_backoff_ms, p.min_backoff_ms * 2 ** Math.min(Math.max(retry, 1) - 1, 52));
  return d + Math.floor(random() * 0.25 * d);
}

/**
 * Retryable: network errors, timeouts, auth errors (the credentials could not be had: the token
 * endpoint may be back next time), 408, 425, 429 and 5xx. Not: other 3xx/4xx and blocked.
 */
export function isRetryable(outcome: Outcome, statusCode: number | null): boolean {
  if (outcome === 'timeout' || outcome === 'network_error' || outcome === 'auth_error') return true;
  if (outcome !== 'http_error' || statusCode === null) return false;
  return statusCode === 408 || statusCode === 425 || statusCode === 429 || statusCode >= 500;
}

/** Retry-After as seconds or an HTTP date, in ms from now; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export type Plan = { status: 'succeeded' } | { status: 'failed' } | { status: 'retrying'; delayMs: number };

/**
 * What follows an attempt. `retriesUsed` counts attempts since the last replay, this one
 * included: with max_retries 3, attempts 1-3 may be followed by a retry, attempt 4 may not.
 */
export function planNext(
  a: { outcome: Outcome; statusCode: number | null; retryAfter?: string; retryable?: boolean },
  retriesUsed: number,
  p: RetryPolicy,
  now: number,
  random: () => number,
): Plan {
  if (a.outcome === 'success') return { status: 'succeeded' };
  // retryable: set by a success rule the response missed (worker/connections/success.ts).
  if (!(a.retryable ?? isRetryable(a.outcome, a.statusCode)) || retriesUsed > p.max_retries) return { status: 'failed' };
  const honoured = a.statusCode === 429 || a.statusCode === 503 ? parseRetryAfter(a.retryAfter, now) : null;
  const delayMs = honoured !== null ? Math.min(honoured, p.max_backoff_ms) : backoffMs(retriesUsed, p, random);
  return { status: 'retrying', delayMs };
}
