// What one attempt reports: the delivery-lag, attempt and duration metrics, and with tracing
// on a `posthorn.attempt` span in the task's stored trace with the HTTP client span beneath
// it. Attributes name the task, the attempt and the URL without its query; never the task's
// headers or body.
import { type Context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { attemptDuration, attempts, deliveryLag } from '../shared/metrics.ts';
import { contextFromTraceparent, logIds, traceparentOf, tracer, tracingEnabled, urlWithoutQuery } from '../shared/telemetry.ts';
import type { AttemptResult, ExecutorDeps } from './executor.ts';
import type { ClaimedTask } from './producer.ts';
import type { Plan } from './retry.ts';

export type AttemptObservation = {
  /** trace_id and span_id of the attempt span for log lines; undefined with tracing off. */
  logIds?: { trace_id: string; span_id: string };
  clientSpan?: ExecutorDeps['clientSpan'];
  /** The attempt was made and is being recorded. */
  end(result: AttemptResult, plan: Plan): void;
  /** The worker is stopping (the attempt was aborted), or the lease was lost before a large body was read: unrecorded. */
  abandon(): void;
};

const NOTHING = () => {};

// What an attempt costs with tracing on is mostly the SDK's span objects and their encoding
// for export; what this file adds around them is kept small: one URL parse per distinct URL
// (cached), one tracer looked up once (shared/telemetry.ts), and no closures per attempt
// (the spans live on one object whose methods the worker calls). Figures: docs/observability.md.
export function observeAttempt(task: ClaimedTask, now: number): AttemptObservation {
  if (task.run_at) deliveryLag.observe(Math.max(0, now - task.run_at.getTime()) / 1000);
  if (!tracingEnabled()) return { end: count, abandon: NOTHING };
  return new AttemptSpans(task);
}

class AttemptSpans implements AttemptObservation {
  readonly clientSpan: ExecutorDeps['clientSpan'];
  private readonly span: Span;

  constructor(task: ClaimedTask) {
    const target = targetOf(task.url);
    const parent = contextFromTraceparent(task.traceparent);
    const span = tracer().startSpan(
      'posthorn.attempt',
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'posthorn.task.id': task.id,
          'posthorn.attempt': task.attempts,
          'url.full': target.full,
          'http.request.method': task.method,
        },
      },
      parent,
    );
    this.span = span;
    const ctx = trace.setSpan(parent, span);
    this.clientSpan = () => new ClientSpan(task.method, target, ctx);
  }

  /** Only read for a warning's log line, so made then. */
  get logIds() {
    return logIds(this.span);
  }

  end(result: AttemptResult, plan: Plan) {
    count(result);
    this.span.setAttribute('posthorn.outcome', result.outcome);
    this.span.setAttribute('posthorn.task.status', plan.status);
    finish(this.span, result);
  }

  abandon() {
    this.span.setAttribute('posthorn.released', true);
    this.span.end();
  }
}

/** The outbound request's span (kind client); its context is the traceparent the target receives. */
class ClientSpan {
  readonly traceparent: string;
  private readonly span: Span;
  constructor(method: string, target: Target, ctx: Context) {
    this.span = tracer().startSpan(
      method,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': method,
          'url.full': target.full,
          'server.address': target.address,
          'server.port': target.port,
        },
      },
      ctx,
    );
    this.traceparent = traceparentOf(this.span);
  }
  end(result: AttemptResult) {
    finish(this.span, result);
  }
}

type Target = { full: string; address: string; port: number };

// Attempts mostly go to few URLs (a team's handful of endpoints): parsing each once, not twice
// per attempt, saves ≈2 µs an attempt. Bounded: emptied when it reaches 1,000 entries.
const targets = new Map<string, Target>();

function targetOf(url: string): Target {
  let t = targets.get(url);
  if (!t) {
    t = { full: urlWithoutQuery(url), address: '', port: 0 };
    try {
      const u = new URL(url);
      t.address = u.hostname;
      t.port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
    } catch {
      /* a stored URL always parses */
    }
    if (targets.size >= 1000) targets.clear();
    targets.set(url, t);
  }
  return t;
}

// The labelled series per outcome, looked up once: prom-client hashes a label object per call.
const perOutcome = new Map<string, { count: { inc(): void }; duration: { observe(v: number): void } }>();

function count(result: AttemptResult) {
  let m = perOutcome.get(result.outcome);
  if (!m) {
    m = { count: attempts.labels({ outcome: result.outcome }), duration: attemptDuration.labels({ outcome: result.outcome }) };
    perOutcome.set(result.outcome, m);
  }
  m.count.inc();
  m.duration.observe((result.finishedAt.getTime() - result.startedAt.getTime()) / 1000);
}

function finish(span: Span, result: AttemptResult) {
  if (result.statusCode !== null) span.setAttribute('http.response.status_code', result.statusCode);
  if (result.outcome !== 'success') {
    // error.type: the outcome or the status code, never the error text (it may quote the URL).
    span.setAttribute('error.type', result.statusCode !== null ? String(result.statusCode) : result.outcome);
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}
