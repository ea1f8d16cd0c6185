// Upstash-* request headers → the native task fields (docs/qstash.md has the table). A QStash
// message is the native task input built from its destination, its body and these headers; the
// native schema then validates it exactly as it validates POST /api/v1/queue, so nothing gets in
// this way that the native API would refuse.
import { createHash } from 'node:crypto';
import { parseDelay } from '../../shared/duration.ts';
import { problem } from '../../shared/errors.ts';

const FORWARD = 'upstash-forward-';

/** Upstash-* headers with no native counterpart: refused by name rather than ignored. */
const REFUSED: Record<string, string> = {
  'upstash-retry-delay': 'custom retry delay expressions are not supported; retries back off exponentially (docs/retries.md)',
  'upstash-redact-fields': 'redaction is not supported; Posthorn stores the request as sent',
};
/** Sent by the official client on every request, about itself: nothing to act on. */
const IGNORED_PREFIXES = ['upstash-telemetry-'];

/** Which Upstash-* headers a kind of request understands (beyond Upstash-Forward-*). */
const MESSAGE_HEADERS = new Set([
  'upstash-method',
  'upstash-delay',
  'upstash-not-before',
  'upstash-retries',
  'upstash-timeout',
  'upstash-callback',
  'upstash-failure-callback',
  'upstash-deduplication-id',
  'upstash-content-based-deduplication',
  'upstash-label',
  'upstash-flow-control-key',
  'upstash-flow-control-value',
]);
const SCHEDULE_HEADERS = new Set([
  'upstash-method',
  'upstash-retries',
  'upstash-timeout',
  'upstash-callback',
  'upstash-failure-callback',
  'upstash-label',
  'upstash-cron',
  'upstash-schedule-id',
  'upstash-queue-name',
  'upstash-flow-control-key',
  'upstash-flow-control-value',
]);

/** A destination the gateway can deliver to: an http(s) URL; QStash's URL groups and APIs are names. */
export function destinationUrl(raw: string): string {
  let dest = raw;
  if (!/^https?:\/\//i.test(dest)) {
    try {
      const decoded = decodeURIComponent(dest); // some callers encode the whole URL
      if (/^https?:\/\//i.test(decoded)) dest = decoded;
    } catch {
      /* not percent-encoded: refused below */
    }
  }
  if (!/^https?:\/\//i.test(dest)) {
    throw problem(
      'validation_failed',
      `destination "${raw.slice(0, 200)}" is not an http(s) URL; URL groups (topics) and API destinations are not supported (docs/qstash.md)`,
    );
  }
  return dest;
}

/** upstash-retry-delay → Upstash-Retry-Delay: headers arrive lower-cased, messages name them as documented. */
const headerName = (lower: string) => lower.replace(/(^|-)([a-z])/g, (_, dash: string, ch: string) => dash + ch.toUpperCase());

export type ParsedMessage = {
  /** Input for taskInputSchema (or scheduleInputSchema's request fields). */
  input: Record<string, unknown>;
  /** The key this message claims in idempotency_keys, or null. */
  dedupKey: string | null;
  cron?: string;
  scheduleId?: string;
};

const intHeader = (name: string, v: string): number => {
  if (!/^\d{1,12}$/.test(v.trim())) throw problem('validation_failed', `${name} must be a whole number, got "${v.slice(0, 40)}"`);
  return Number(v.trim());
};

const durationMs = (name: string, v: string): number => {
  const ms = parseDelay(v.trim());
  if (ms === null)
    throw problem('validation_failed', `${name} must be whole seconds or a duration like 10s, 5m, 1h, 2d; got "${v.slice(0, 40)}"`);
  return ms;
};

/**
 * Upstash-Flow-Control-Value ("parallelism=2, rate=10, period=1m") → the native flow_control
 * (docs/queues.md): QStash's rate per period becomes a rate per second.
 */
function flowControl(key: string, value: string): Record<string, unknown> {
  const fc: Record<string, unknown> = { key };
  let rate: number | undefined;
  let periodS = 1;
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(parallelism|rate|period)=(.+)$/.exec(part);
    if (!m) throw problem('validation_failed', `Upstash-Flow-Control-Value: "${part.slice(0, 40)}" is not parallelism=, rate= or period=`);
    if (m[1] === 'parallelism') fc.parallelism = intHeader('Upstash-Flow-Control-Value parallelism', m[2]!);
    else if (m[1] === 'rate') rate = intHeader('Upstash-Flow-Control-Value rate', m[2]!);
    else periodS = durationMs('Upstash-Flow-Control-Value period', m[2]!) / 1000;
  }
  if (rate !== undefined) {
    if (periodS <= 0) throw problem('validation_failed', 'Upstash-Flow-Control-Value: period must be at least 1s');
    fc.rate_per_second = rate / periodS;
  }
  return fc;
}

/**
 * QStash's content-based deduplication id: a hash of what it documents as the message's
 * content, the destination, the body, and the headers it forwards (Content-Type and every
 * Upstash-Forward-*), so two publishes that would deliver the same request are one.
 */
export function contentDedupId(destination: string, body: string | null, forwarded: Record<string, string>): string {
  const h = createHash('sha256')
    .update(destination)
    .update('\n')
    .update(body ?? '');
  for (const name of Object.keys(forwarded).sort()) h.update(`\n${name}:${forwarded[name]}`);
  return h.digest('hex');
}

/**
 * Parses one message: `headers` are the request's (or a batch entry's) headers, lower-cased.
 * kind 'schedule' reads Upstash-Cron and Upstash-Schedule-Id instead of delays and deduplication.
 */
export function parseMessage(
  destination: string,
  headers: Iterable<[string, string]>,
  body: string | null,
  kind: 'message' | 'schedule' = 'message',
): ParsedMessage {
  const url = destinationUrl(destination);
  const known = kind === 'schedule' ? SCHEDULE_HEADERS : MESSAGE_HEADERS;
  const forwarded: Record<string, string> = {};
  const up = new Map<string, string>();
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase();
    const shown = headerName(name);
    if (name === 'content-type') forwarded['content-type'] = value;
    else if (name.startsWith(FORWARD)) {
      const target = name.slice(FORWARD.length);
      if (target.startsWith('upstash-'))
        throw problem('validation_failed', `${shown}: Upstash-* headers are set by Posthorn, not forwarded`);
      forwarded[target] = value;
    } else if (name.startsWith('upstash-')) {
      if (IGNORED_PREFIXES.some((p) => name.startsWith(p))) continue;
      if (REFUSED[name]) throw problem('validation_failed', `${shown}: ${REFUSED[name]}`);
      if (!known.has(name)) throw problem('validation_failed', `${shown} is not supported here (docs/qstash.md)`);
      up.set(name, value);
    }
  }
  const input: Record<string, unknown> = { url, headers: forwarded };
  if (body !== null && body !== '') input.body = body;
  const method = up.get('upstash-method');
  if (method !== undefined) input.method = method.trim().toUpperCase();
  const notBefore = up.get('upstash-not-before');
  const delay = up.get('upstash-delay');
  // Upstash-Not-Before wins over Upstash-Delay, as in QStash.
  if (notBefore !== undefined) input.run_at = new Date(intHeader('Upstash-Not-Before', notBefore) * 1000).toISOString();
  else if (delay !== undefined) input.delay = Math.round(durationMs('Upstash-Delay', delay) / 1000);
  const retries = up.get('upstash-retries');
  if (retries !== undefined) input.retry = { max_retries: intHeader('Upstash-Retries', retries) };
  const timeout = up.get('upstash-timeout');
  if (timeout !== undefined) input.timeout_ms = durationMs('Upstash-Timeout', timeout);
  const callback = up.get('upstash-callback');
  if (callback !== undefined) input.callback_url = callback;
  const failureCallback = up.get('upstash-failure-callback');
  if (failureCallback !== undefined) input.failure_callback_url = failureCallback;
  const label = up.get('upstash-label');
  if (label !== undefined) input.label = label;
  const queue = up.get('upstash-queue-name');
  if (queue !== undefined) input.queue = queue;

  const flowKey = up.get('upstash-flow-control-key');
  if (flowKey !== undefined) input.flow_control = flowControl(flowKey, up.get('upstash-flow-control-value') ?? '');
  else if (up.has('upstash-flow-control-value'))
    throw problem('validation_failed', 'Upstash-Flow-Control-Value needs Upstash-Flow-Control-Key');

  let dedupKey: string | null = null;
  const dedupId = up.get('upstash-deduplication-id');
  if (dedupId !== undefined) {
    if (!dedupId || dedupId.length > 200) throw problem('validation_failed', 'Upstash-Deduplication-Id must be 1 to 200 characters');
    dedupKey = `qstash-dedup:${dedupId}`;
  } else if (up.get('upstash-content-based-deduplication')?.trim().toLowerCase() === 'true') {
    dedupKey = `qstash-content:${contentDedupId(url, body, forwarded)}`;
  }
  const out: ParsedMessage = { input, dedupKey };
  if (kind === 'schedule') {
    const cron = up.get('upstash-cron');
    if (!cron) throw problem('validation_failed', 'Upstash-Cron is required: a cron expression, optionally prefixed "CRON_TZ=<zone> "');
    out.cron = cron.trim();
    const id = up.get('upstash-schedule-id');
    if (id !== undefined) out.scheduleId = id;
  }
  return out;
}

/** Native field names in validation messages → the Upstash header the caller sent. */
const FIELD_HEADERS: [RegExp, string][] = [
  [/^url\b/, 'destination'],
  [/^method\b/, 'Upstash-Method'],
  [/^headers\.([^:]+)/, 'forwarded header $1'],
  [/^delay\b/, 'Upstash-Delay'],
  [/^run_at\b/, 'Upstash-Not-Before'],
  [/^retry\.max_retries\b/, 'Upstash-Retries'],
  [/^timeout_ms\b/, 'Upstash-Timeout'],
  [/^callback_url\b/, 'Upstash-Callback'],
  [/^failure_callback_url\b/, 'Upstash-Failure-Callback'],
  [/^label\b/, 'Upstash-Label'],
  [/^queue\b/, 'queue name'],
  [/^cron\b/, 'Upstash-Cron'],
  [/^timezone\b/, 'CRON_TZ'],
];

/** A native field path (`timeout_ms`) as the QStash caller knows it (`Upstash-Timeout`). */
export function qstashFieldName(path: string): string {
  for (const [re, name] of FIELD_HEADERS) if (re.test(path)) return path.replace(re, name);
  return path;
}
