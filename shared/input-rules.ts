// Rules that hold for every field of every endpoint (docs/api.md, errors): strings are valid
// Unicode without NUL, timestamps lie in 1970..9999, JSON nests at most 64 levels. Checked here,
// once, before a value reaches zod or PostgreSQL: PostgreSQL refuses a NUL or a lone surrogate
// escape in text and jsonb, and refusing it there failed every request that shared the
// statement (an enqueue group commit holds up to 500 rows of many teams).
//
// Nothing here recurses: JSON.parse overflowed the stack on about 5,000 nested levels (4,000
// on a freshly started process), so depth is measured on the raw text before parsing, and the
// parsed value is walked with an explicit stack.

import type { FieldError } from './errors.ts';

export const MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether JSON text nests objects/arrays deeper than max, by one pass over its characters
 * (brackets inside strings do not count). Invalid JSON is left for JSON.parse to report.
 */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === BACKSLASH) i++;
      else if (ch === QUOTE) inString = false;
    } else if (ch === QUOTE) inString = true;
    else if (ch === OPEN_BRACE || ch === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (ch === CLOSE_BRACE || ch === CLOSE_BRACKET) depth--;
  }
  return false;
}

// String.prototype.isWellFormed is native in Node 20 (ES2024; the TypeScript lib here is ES2022).
const wellFormed = (s: string) => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** Why a string may not be stored, or null. */
export function stringProblem(s: string): string | null {
  if (!wellFormed(s)) return 'is not valid Unicode (a lone surrogate such as \\ud800)';
  if (s.includes('\0')) return 'may not contain NUL characters';
  return null;
}

/**
 * The first string (value or object key) in a JSON value that breaks stringProblem, with its
 * dotted path (`tasks.17.label`, `headers.x-a`, `body.a.0`), or null. Iterative; depth is
 * bounded by jsonTooDeep before a parsed value gets here.
 */
export function findBadString(value: unknown, prefix = ''): FieldError | null {
  const stack: [unknown, string][] = [[value, prefix]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const why = stringProblem(v);
      if (why) return { path, message: why };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], path ? `${path}.${i}` : String(i)]);
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const k = keys[i]!;
        const p = path ? `${path}.${k}` : k;
        const why = stringProblem(k);
        if (why) return { path: p, message: `the field name ${why}` };
        stack.push([(v as Record<string, unknown>)[k], p]);
      }
    }
  }
  return null;
}

// 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z: PostgreSQL has no year 0, and a JS Date
// past 9999 prints as "+010000-..." which no ISO reader downstream expects.
export const MIN_TIMESTAMP_MS = 0;
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Why an RFC 3339 timestamp (already syntax-checked) is out of range, or null. */
export function timestampProblem(iso: string): string | null {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return 'is not a valid timestamp';
  if (ms < MIN_TIMESTAMP_MS || ms > MAX_TIMESTAMP_MS) return 'must lie between 1970-01-01 and 9999-12-31 (UTC)';
  return null;
}

/** Header values a request can actually carry: visible ASCII, space and tab (RFC 9110 field-value, no obs-text). */
const HEADER_VALUE_RE = /^[\t\x20-\x7e]*$/;
export const headerValueProblem = (v: string): string | null =>
  HEADER_VALUE_RE.test(v) ? null : 'header values may hold only visible ASCII, space and tab (anything else can never be sent)';
