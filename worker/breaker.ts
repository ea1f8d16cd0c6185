// The circuit breaker's rules as one pure function: (state, event, now) → state. No clock, no
// database: worker/breaker-store.ts reads the row under a lock, calls step() with the
// database's clock, and writes what comes back (docs/circuits.md).
//
// closed ──(≥ minRequests attempts in the window and ≥ failureRate of them failed)──▶ open
// open ──(next_probe_at reached, one worker takes the probe)──▶ half_open
// half_open ──(probe succeeded)──▶ closed      half_open ──(probe failed)──▶ open, period doubled
// any ──(reset by an admin)──▶ closed

import type { Outcome } from './retry.ts';
import { isRetryable } from './retry.ts';

export type CircuitState = 'closed' | 'open' | 'half_open';

export type Breaker = {
  state: CircuitState;
  openedAt: number | null;
  /** The current open period; doubles on each re-open. 0 while it has never opened since closing. */
  openMs: number;
  nextProbeAt: number | null;
  probeToken: string | null;
  probeDeadline: number | null;
};

export type BreakerSettings = {
  /** First open period (30 s). */
  openMs: number;
  /** Longest open period (10 min). */
  maxOpenMs: number;
  /** Attempts in the window before the breaker may open (10). */
  minRequests: number;
  /** Share of failures in the window that opens it (0.5). */
  failureRate: number;
};

export const DEFAULT_BREAKER_SETTINGS: BreakerSettings = { openMs: 30_000, maxOpenMs: 600_000, minRequests: 10, failureRate: 0.5 };

/** The window the thresholds look at: attempts of the last 60 s. */
export const WINDOW_MS = 60_000;

export const CLOSED: Breaker = { state: 'closed', openedAt: null, openMs: 0, nextProbeAt: null, probeToken: null, probeDeadline: null };

export type BreakerEvent =
  /** The window's totals after new outcomes were counted. */
  | { type: 'window'; requests: number; failures: number }
  /** A worker holds a task for this origin and would send it as the probe. */
  | { type: 'probe'; token: string; timeoutMs: number }
  /** The probe's outcome; only the probe holding `token` counts. */
  | { type: 'probe_result'; token: string; ok: boolean; detail: string }
  /** An admin closed it (POST /api/v1/circuits/:origin/reset). */
  | { type: 'reset' };

export type Step = { next: Breaker; reason: string | null };

/** Beyond the probe's own timeout, how long before another worker may probe instead (its worker died). */
export const PROBE_GRACE_MS = 5_000;

/** Whether an outcome counts toward opening: retryable failures only, never `blocked` or other 4xx. */
export function countsAsFailure(outcome: Outcome, statusCode: number | null): boolean {
  return isRetryable(outcome, statusCode);
}

const open = (b: Breaker, openMs: number, now: number, openedAt: number): Breaker => ({
  ...CLOSED,
  state: 'open',
  openedAt,
  openMs,
  nextProbeAt: now + openMs,
});

/**
 * The transition an event causes. `reason` is null when the state did not change (the caller
 * then writes nothing); otherwise it says why, in words for the transition log.
 */
export function step(b: Breaker, e: BreakerEvent, now: number, s: BreakerSettings = DEFAULT_BREAKER_SETTINGS): Step {
  switch (e.type) {
    case 'window': {
      if (b.state !== 'closed' || e.requests < s.minRequests) return { next: b, reason: null };
      if (e.failures < e.requests * s.failureRate) return { next: b, reason: null };
      const reason = `${e.failures} of ${e.requests} attempts failed in the last ${WINDOW_MS / 1000} s`;
      return { next: open(b, s.openMs, now, now), reason };
    }
    case 'probe': {
      const due =
        (b.state === 'open' && b.nextProbeAt !== null && now >= b.nextProbeAt) ||
        (b.state === 'half_open' && b.probeDeadline !== null && now >= b.probeDeadline);
      if (!due) return { next: b, reason: null };
      const next: Breaker = {
        ...b,
        state: 'half_open',
        nextProbeAt: null,
        probeToken: e.token,
        probeDeadline: now + e.timeoutMs + PROBE_GRACE_MS,
      };
      // half_open → half_open (the last probe's worker vanished) is not a change of state, but
      // the new probe must be written: the reason says so and the store logs it as such.
      return {
        next,
        reason:
          b.state === 'open'
            ? `open for ${Math.round(b.openMs / 1000)} s: one probe attempt`
            : 'the last probe did not report back: another probe',
      };
    }
    case 'probe_result': {
      if (b.state !== 'half_open' || b.probeToken !== e.token) return { next: b, reason: null };
      if (e.ok) return { next: CLOSED, reason: `probe succeeded (${e.detail})` };
      const openMs = Math.min(s.maxOpenMs, Math.max(s.openMs, b.openMs * 2));
      return {
        next: open(b, openMs, now, b.openedAt ?? now),
        reason: `probe failed (${e.detail}): open for ${Math.round(openMs / 1000)} s`,
      };
    }
    case 'reset':
      if (b.state === 'closed') return { next: b, reason: null };
      return { next: CLOSED, reason: 'reset by an admin' };
  }
}

/**
 * What a worker does with a claimed task, by its local view of the breaker: send it, hold it
 * back until `until` (put back untouched), or try to become the probe.
 */
export type Gate = { action: 'send' } | { action: 'hold'; until: number } | { action: 'probe' };

export function gate(b: Pick<Breaker, 'state' | 'nextProbeAt' | 'probeDeadline'> | undefined, now: number): Gate {
  if (!b || b.state === 'closed') return { action: 'send' };
  if (b.state === 'open')
    return b.nextProbeAt !== null && now < b.nextProbeAt ? { action: 'hold', until: b.nextProbeAt } : { action: 'probe' };
  return b.probeDeadline !== null && now < b.probeDeadline ? { action: 'hold', until: b.probeDeadline } : { action: 'probe' };
}

/**
 * The origin, scheme://host:port with the port written out (https://api.example.com:443), is
 * the key of a breaker; the path (no query, no fragment) names an endpoint. The WHATWG parser
 * lowercases the host and drops default ports, so both spellings of one origin give one key.
 * null for a URL that does not parse (never stored: tasks are validated).
 */
export function urlParts(url: string): { origin: string; path: string } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const port = u.port || (u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '');
  return { origin: `${u.protocol}//${u.hostname}:${port}`, path: u.pathname };
}

export const originOf = (url: string): string | null => urlParts(url)?.origin ?? null;
