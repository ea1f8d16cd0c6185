// One error type for everything a client is told, mapped to application/problem+json in one
// place (gateway/app.ts onError). Codes and statuses are fixed by docs/api.md §3.
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
  method_not_allowed: 405,
  request_timeout: 408,
  gone: 410,
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
  method_not_allowed: 'Method not allowed',
  request_timeout: 'Request timeout',
  gone: 'Gone',
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

/**
 * PostgreSQL refused a value a row held: SQLSTATE class 22 (data exception: a NUL, a lone
 * surrogate escape, a timestamp out of range). Client input that got past validation, so a
 * 400 for the request that carried it, never a 500.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 && code.startsWith('22');
}

/**
 * Whether a failed multi-row statement may have failed because of one row (data exception,
 * integrity constraint, program limit such as a row too large): then its rows are worth
 * writing again in smaller groups, so that only the row's own request fails.
 */
export function isRowError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 && /^(22|23|54)/.test(code);
}

/**
 * What of an error may be logged. A postgres.js error carries the statement's parameters and
 * its message or detail can quote a value ("Key (x)=(...)"): for a task INSERT that is a row
 * with the task's headers and body, an authorization header meant for its target included.
 * So a PostgreSQL error is logged by its code and the names of what it concerns, never data.
 */
export function errorForLog(err: unknown): Record<string, unknown> {
  if (!err || typeof err !== 'object') return { message: String(err) };
  const e = err as Record<string, unknown>;
  if (e.name === 'PostgresError' || (typeof e.severity === 'string' && typeof e.routine === 'string')) {
    return {
      type: 'PostgresError',
      code: e.code,
      severity: e.severity,
      constraint: e.constraint_name,
      table: e.table_name,
      column: e.column_name,
      routine: e.routine,
    };
  }
  return { type: e.name, code: e.code, message: e.message, stack: e.stack };
}
