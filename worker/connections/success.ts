// Success rules (docs/connections.md): what a task counts as success instead of any 2xx. A
// response outside the rule is an http_error; it is retried unless its status is a 4xx that is
// never retried (worker/retry.ts), so a 200 without the expected text is tried again.
import type { SuccessRule } from '../../shared/schemas.ts';
import { isRetryable } from '../retry.ts';

export type Verdict = { ok: true } | { ok: false; error: string; retryable: boolean };

function statusMatches(rule: SuccessRule['status'], status: number): boolean {
  if (rule === undefined) return status >= 200 && status < 300;
  if (typeof rule === 'string') return Math.floor(status / 100) === Number(rule[0]);
  return rule.includes(status);
}

/** `body`: the part of the response an attempt keeps (the first 64 KiB). */
export function judgeSuccess(rule: SuccessRule, status: number, body: Buffer): Verdict {
  const retryable = status < 400 || isRetryable('http_error', status);
  if (!statusMatches(rule.status, status)) {
    const wanted = rule.status === undefined ? '2xx' : typeof rule.status === 'string' ? rule.status : rule.status.join(', ');
    return { ok: false, error: `HTTP ${status} is outside the success rule (status ${wanted})`, retryable };
  }
  if (rule.body_contains !== undefined && !body.includes(rule.body_contains, 0, 'utf8')) {
    return { ok: false, error: `HTTP ${status}: the response body does not contain the success rule's body_contains`, retryable };
  }
  return { ok: true };
}
