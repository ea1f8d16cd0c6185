// What one attempt reports: the delivery-lag, attempt and duration metrics, and with tracing
// on a `posthorn.attempt` span in the task's stored trace with the HTTP client span beneath
// it. Attributes name the task, the attempt and the URL without its query; never the task's
// headers or body.
import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
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
  /** The worker is stopping: the attempt was aborted and goes back unrecorded. */
  abandon(): void;
};

const NOTHING = () => {};

export function observeAttempt(task: ClaimedTask, now: number): AttemptObservation {
  if (task.run_at) deliveryLag.observe(Math.max(0, now - task.run_at.getTime()) / 1000);
  if (!tracingEnabled()) return { end: (result) => count(result), abandon: NOTHING };

  const url = urlWithoutQuery(task.url);
  const parent = contextFromTraceparent(task.traceparent);
  const span = tracer().startSpan(
    'posthorn.attempt',
    {
      kind: SpanKind.CONSUMER,
      attributes: { 'posthorn.task.id': task.id, 'posthorn.attempt': task.attempts, 'url.full': url, 'http.request.method': task.method },
    },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  return {
    logIds: logIds(span),
    clientSpan: () => {
      const client = tracer().startSpan(task.method, { kind: SpanKind.CLIENT, attributes: clientAttributes(task.method, url) }, ctx);
      return { traceparent: traceparentOf(client), end: (result) => finish(client, result) };
    },
    end(result, plan) {
      count(result);
      span.setAttributes({ 'posthorn.outcome': result.outcome, 'posthorn.task.status': plan.status });
      finish(span, result);
    },
    abandon() {
      span.setAttribute('posthorn.released', true);
      span.end();
    },
  };
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

function clientAttributes(method: string, url: string) {
  const attrs: Record<string, string | number> = { 'http.request.method': method, 'url.full': url };
  try {
    const u = new URL(url);
    attrs['server.address'] = u.hostname;
    attrs['server.port'] = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  } catch {
    /* a stored URL always parses; nothing to add if not */
  }
  return attrs;
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
