// One error type for everything a client is told, mapped to application/problem+json in one
// place (gateway/app.ts onError). Codes and statuses are fixed by API.md §3.
export const PROBLEM_STATUS = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  validation_failed: 400,
  target_not_allowed: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_conflict: 409,
  conflict: 409,
  rate_limited: 429,
  unavailable: 503,
} as const;

export type ProblemCode = keyof typeof PROBLEM_STATUS;
export type ProblemStatus = (typeof PROBLEM_STATUS)[ProblemCode];
export type FieldError = { path: string; message: string };

const TITLES: Record<ProblemCode, string> = {
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  validation_failed: 'Validation failed',
  target_not_allowed: 'Target not allowed',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  idempotency_conflict: 'Idempotency key reused with a different request',
  conflict: 'Conflict',
  rate_limited: 'Too many requests',
  unavailable: 'Service unavailable',
};

export class ProblemError extends Error {
  readonly status: ProblemStatus;
  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.status = PROBLEM_STATUS[code];
  }

  toJSON() {
    return {
      status: this.status,
      code: this.code,
      title: TITLES[this.code],
      detail: this.detail,
      ...(this.errors ? { errors: this.errors } : {}),
    };
  }
}

export const problem = (code: ProblemCode, detail: string, errors?: FieldError[], headers?: Record<string, string>) =>
  new ProblemError(code, detail, errors, headers);

// Errors that mean "the database is not there right now" rather than "the query is wrong".
// postgres.js surfaces socket failures with Node's codes and its own CONNECT_TIMEOUT/CONNECTION_*.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

export function isUnavailableError(err: unknown): boolean {
  type Cause = { code?: unknown; name?: unknown; cause?: unknown } | null | undefined;
  for (let e = err as Cause, depth = 0; e && depth < 5; e = e.cause as Cause, depth++) {
    if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
    if (e.name === 'DeadlineError') return true;
  }
  return false;
}
