// The breaker's pure rules (worker/breaker.ts): thresholds, the one probe, doubling, reset.
import { describe, expect, it } from 'vitest';
import { type Breaker, CLOSED, countsAsFailure, gate, originOf, DEFAULT_BREAKER_SETTINGS as S, step } from '../worker/breaker.ts';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const win = (requests: number, failures: number) => ({ type: 'window' as const, requests, failures });

function opened(at = T0): Breaker {
  return step(CLOSED, win(10, 10), at).next;
}

describe('breaker transitions', () => {
  it('opens at 10 attempts with at least half failed, not before', () => {
    expect(step(CLOSED, win(9, 9), T0).reason).toBeNull();
    expect(step(CLOSED, win(10, 4), T0).reason).toBeNull();
    expect(step(CLOSED, win(100, 49), T0).reason).toBeNull();
    const r = step(CLOSED, win(10, 5), T0);
    expect(r.reason).toBe('5 of 10 attempts failed in the last 60 s');
    expect(r.next).toEqual({
      state: 'open',
      openedAt: T0,
      openMs: 30_000,
      nextProbeAt: T0 + 30_000,
      probeToken: null,
      probeDeadline: null,
    });
  });

  it('window events change nothing unless closed', () => {
    const o = opened();
    expect(step(o, win(50, 50), T0 + 1000)).toEqual({ next: o, reason: null });
  });

  it('takes exactly one probe once the open period is over', () => {
    const o = opened();
    expect(step(o, { type: 'probe', token: 'a', timeoutMs: 1000 }, T0 + 29_999).reason).toBeNull();
    const h = step(o, { type: 'probe', token: 'a', timeoutMs: 1000 }, T0 + 30_000);
    expect(h.next).toMatchObject({ state: 'half_open', probeToken: 'a', probeDeadline: T0 + 30_000 + 1000 + 5000, openedAt: T0 });
    // A second worker asking while the probe runs is refused.
    expect(step(h.next, { type: 'probe', token: 'b', timeoutMs: 1000 }, T0 + 31_000).reason).toBeNull();
    // ...until the probe's deadline passed without a result (its worker died).
    const again = step(h.next, { type: 'probe', token: 'b', timeoutMs: 1000 }, T0 + 36_000);
    expect(again.next).toMatchObject({ state: 'half_open', probeToken: 'b' });
  });

  it('a successful probe closes; a failed one re-opens for twice as long, up to 10 min', () => {
    let b = opened();
    let at = T0;
    const periods: number[] = [];
    for (let i = 0; i < 8; i++) {
      at = b.nextProbeAt!;
      b = step(b, { type: 'probe', token: `p${i}`, timeoutMs: 100 }, at).next;
      // A result from another token (a stale probe) is ignored.
      expect(step(b, { type: 'probe_result', token: 'other', ok: true, detail: 'HTTP 200' }, at + 10).reason).toBeNull();
      const r = step(b, { type: 'probe_result', token: `p${i}`, ok: false, detail: 'HTTP 503' }, at + 10);
      expect(r.reason).toMatch(/^probe failed \(HTTP 503\): open for \d+ s$/);
      b = r.next;
      expect(b.state).toBe('open');
      expect(b.openedAt).toBe(T0);
      periods.push(b.openMs);
      expect(b.nextProbeAt).toBe(at + 10 + b.openMs);
    }
    expect(periods).toEqual([60_000, 120_000, 240_000, 480_000, 600_000, 600_000, 600_000, 600_000]);
    b = step(b, { type: 'probe', token: 'last', timeoutMs: 100 }, b.nextProbeAt!).next;
    const closed = step(b, { type: 'probe_result', token: 'last', ok: true, detail: 'HTTP 200' }, at + 1);
    expect(closed).toEqual({ next: CLOSED, reason: 'probe succeeded (HTTP 200)' });
    // Closed again, the next opening starts from 30 s.
    expect(step(closed.next, win(10, 10), at + 2).next.openMs).toBe(30_000);
  });

  it('reset closes from any state and is a no-op when closed', () => {
    expect(step(opened(), { type: 'reset' }, T0 + 1)).toEqual({ next: CLOSED, reason: 'reset by an admin' });
    expect(step(CLOSED, { type: 'reset' }, T0).reason).toBeNull();
  });

  it('follows its settings', () => {
    const s = { ...S, openMs: 500, maxOpenMs: 1500, minRequests: 3 };
    let b = step(CLOSED, win(3, 2), T0, s).next;
    expect(b).toMatchObject({ state: 'open', nextProbeAt: T0 + 500 });
    b = step(b, { type: 'probe', token: 'x', timeoutMs: 10 }, T0 + 500, s).next;
    b = step(b, { type: 'probe_result', token: 'x', ok: false, detail: 'timeout' }, T0 + 600, s).next;
    expect(b.openMs).toBe(1000);
    b = step(b, { type: 'probe', token: 'y', timeoutMs: 10 }, T0 + 1600, s).next;
    b = step(b, { type: 'probe_result', token: 'y', ok: false, detail: 'timeout' }, T0 + 1700, s).next;
    expect(b.openMs).toBe(1500);
  });
});

describe('gate and counting', () => {
  it('sends when closed, holds until the probe time when open, probes when due', () => {
    const o = opened();
    expect(gate(undefined, T0)).toEqual({ action: 'send' });
    expect(gate(CLOSED, T0)).toEqual({ action: 'send' });
    expect(gate(o, T0 + 1)).toEqual({ action: 'hold', until: T0 + 30_000 });
    expect(gate(o, T0 + 30_000)).toEqual({ action: 'probe' });
    const h = step(o, { type: 'probe', token: 'a', timeoutMs: 1000 }, T0 + 30_000).next;
    expect(gate(h, T0 + 30_001)).toEqual({ action: 'hold', until: h.probeDeadline });
  });

  it('counts retryable failures only: network errors, timeouts, 408, 425, 429, 5xx', () => {
    expect(countsAsFailure('network_error', null)).toBe(true);
    expect(countsAsFailure('timeout', null)).toBe(true);
    for (const code of [408, 425, 429, 500, 503, 599]) expect(countsAsFailure('http_error', code)).toBe(true);
    for (const code of [400, 401, 403, 404, 410, 422, 301]) expect(countsAsFailure('http_error', code)).toBe(false);
    expect(countsAsFailure('blocked', null)).toBe(false);
    expect(countsAsFailure('success', 200)).toBe(false);
  });

  it('names origins with the port written out', () => {
    expect(originOf('https://API.example.com/x?y=1')).toBe('https://api.example.com:443');
    expect(originOf('http://example.com:80/')).toBe('http://example.com:80');
    expect(originOf('http://127.0.0.1:8080/a')).toBe('http://127.0.0.1:8080');
    expect(originOf('http://[::1]:9000/a')).toBe('http://[::1]:9000');
    expect(originOf('not a url')).toBeNull();
  });
});
