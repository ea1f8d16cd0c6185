// The retry policy is pure: pinned random and clock, exact numbers.
import { describe, expect, it } from 'vitest';
import { retrySchema } from '../shared/schemas.ts';
import { backoffMs, isRetryable, parseRetryAfter, planNext } from '../worker/retry.ts';

const policy = { max_retries: 3, min_backoff_ms: 1000, max_backoff_ms: 3_600_000 };
const defaults = retrySchema.parse({});
const now = Date.parse('2026-11-29T12:00:00Z');

describe('backoff', () => {
  it('d = min(max, min × 2^(n-1)) plus an upward jitter of up to 25% of d', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, () => 0))).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, () => 0.999999))).toEqual([1249, 2499, 4999, 9999, 19999]);
    expect(backoffMs(3, policy, () => 0.5)).toBe(4500);
  });

  it('never comes sooner than min_backoff_ms', () => {
    for (let i = 0; i < 1000; i++) expect(backoffMs(1 + (i % 20), policy, Math.random)).toBeGreaterThanOrEqual(1000);
  });

  it('d is capped by max_backoff_ms, even for huge retry numbers; the jitter comes on top', () => {
    expect(backoffMs(13, policy, () => 0)).toBe(3_600_000);
    expect(backoffMs(1000, policy, () => 0.999999)).toBe(4_499_999);
    expect(backoffMs(5, { ...policy, max_backoff_ms: 2500 }, () => 0)).toBe(2500);
  });

  it('the defaults are 8 retries, 10 s doubling to 1 h: 42.5 to 53 minutes from the first attempt to the last', () => {
    expect(defaults).toEqual({ max_retries: 8, min_backoff_ms: 10_000, max_backoff_ms: 3_600_000 });
    const waits = (r: () => number) => Array.from({ length: defaults.max_retries }, (_, i) => backoffMs(i + 1, defaults, r));
    expect(waits(() => 0)).toEqual([10, 20, 40, 80, 160, 320, 640, 1280].map((s) => s * 1000));
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sum(waits(() => 0))).toBe(2_550_000); // 42.5 min: the schedule in docs/retries.md
    expect(sum(waits(() => 0.999999))).toBeLessThan(2_550_000 * 1.25);
    // A 10-second deploy is covered from the first retry on; the old 4 s was not.
    expect(waits(() => 0)[0]).toBeGreaterThanOrEqual(10_000);
  });
});

describe('classification', () => {
  it.each([
    ['timeout', null, true],
    ['network_error', null, true],
    ['http_error', 408, true],
    ['http_error', 425, true],
    ['http_error', 429, true],
    ['http_error', 500, true],
    ['http_error', 503, true],
    ['http_error', 599, true],
    ['http_error', 301, false],
    ['http_error', 400, false],
    ['http_error', 404, false],
    ['http_error', 410, false],
    ['blocked', null, false],
    ['success', 200, false],
  ] as const)('%s %s retryable=%s', (outcome, status, expected) => {
    expect(isRetryable(outcome, status)).toBe(expected);
  });
});

describe('Retry-After', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});

describe('planNext', () => {
  const r = () => 0.5;
  it('success ends the task', () => {
    expect(planNext({ outcome: 'success', statusCode: 200 }, 1, policy, now, r)).toEqual({ status: 'succeeded' });
  });
  it('max_retries 3 allows retries after attempts 1-3 and fails after attempt 4', () => {
    for (const used of [1, 2, 3]) expect(planNext({ outcome: 'timeout', statusCode: null }, used, policy, now, r).status).toBe('retrying');
    expect(planNext({ outcome: 'timeout', statusCode: null }, 4, policy, now, r)).toEqual({ status: 'failed' });
  });
  it('non-retryable outcomes fail at once', () => {
    expect(planNext({ outcome: 'http_error', statusCode: 404 }, 1, policy, now, r)).toEqual({ status: 'failed' });
    expect(planNext({ outcome: 'blocked', statusCode: null }, 1, policy, now, r)).toEqual({ status: 'failed' });
  });
  it('the wait for retry n uses the backoff of n', () => {
    expect(planNext({ outcome: 'http_error', statusCode: 500 }, 3, policy, now, r)).toEqual({ status: 'retrying', delayMs: 4500 });
  });
  it('Retry-After on 429 and 503 wins over backoff, capped at max_backoff_ms; ignored on 500', () => {
    expect(planNext({ outcome: 'http_error', statusCode: 429, retryAfter: '7' }, 1, policy, now, r)).toEqual({
      status: 'retrying',
      delayMs: 7000,
    });
    expect(planNext({ outcome: 'http_error', statusCode: 503, retryAfter: '99999' }, 1, policy, now, r)).toEqual({
      status: 'retrying',
      delayMs: 3_600_000,
    });
    expect(planNext({ outcome: 'http_error', statusCode: 500, retryAfter: '7' }, 1, policy, now, r)).toEqual({
      status: 'retrying',
      delayMs: 1125,
    });
  });
});
